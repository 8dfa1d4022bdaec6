// The facility families of /metrics (cabinets, racks, cooling units, rooms, sites, devices,
// model alerts), written from one snapshot: facility_metrics.cpp. Everything there is a function
// of the snapshot alone, so the text can be cached per snapshot. In a sharded daemon
// (daemon.shard) only the shard's entities and the site aggregates that are whole are written
// (docs/prometheus.md, "Sharding").
//
// Thread-safety: reentrant.
#pragma once

#include "daemon/model/model.h"
#include "daemon/sinks/metric_writer.h"

namespace facility::metrics_detail {

// Labels {site, room, row, cabinet} of a cabinet.
inline Labels cabinet_labels(const Cabinet& c) {
  return Labels{{"site", c.site}, {"room", c.room}, {"row", c.row}, {"cabinet", c.id}};
}

void render_facility(Families& fam, const FacilitySnapshot& snap);

}  // namespace facility::metrics_detail
