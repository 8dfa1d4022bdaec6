// Small helpers shared by the exposition files (metrics.cpp, metrics_facility.cpp): a set of
// metric families filled through stable references, and gauge/counter samples.
//
// Thread-safety: a Families object is local to one render; the functions are reentrant.
#pragma once

#include <prometheus/metric_family.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "daemon/model.h"

namespace facility::metrics_detail {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Families are filled through references handed out by family(); a deque keeps those
// references valid while more families are added.
class Families {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    out_.push_back(MetricFamily{name, help, type, {}});
    return out_.back();
  }
  std::vector<MetricFamily> take() {
    // Families without samples are dropped so that exposition only shows what is known.
    std::vector<MetricFamily> res;
    for (auto& f : out_) {
      if (!f.metric.empty()) res.push_back(std::move(f));
    }
    return res;
  }

 private:
  std::deque<MetricFamily> out_;
};

inline void gauge(MetricFamily& f, Labels labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}
inline void gauge(MetricFamily& f, Labels labels, const std::optional<double>& v) {
  if (v) gauge(f, std::move(labels), *v);
}
inline void counter(MetricFamily& f, Labels labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  f.metric.push_back(std::move(m));
}

// Labels {site, room, row, cabinet} of a cabinet, plus any extra pairs.
inline Labels cabinet_labels(const Cabinet& c, Labels extra = {}) {
  Labels l{{"site", c.site}, {"room", c.room}, {"row", c.row}, {"cabinet", c.id}};
  for (auto& e : extra) l.push_back(std::move(e));
  return l;
}

// The facility families (cabinets, racks, cooling units, rooms, sites): metrics_facility.cpp.
void render_facility(Families& fam, const FacilitySnapshot& snap);

}  // namespace facility::metrics_detail
