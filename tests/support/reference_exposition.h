// The reference for the /metrics text: the same samples the product writes, built into
// prometheus-cpp MetricFamily objects and serialized by prometheus::TextSerializer. The unit
// tests check that the product's text equals it; the scrape benchmark measures it as the design
// the product replaced (bench/RESULTS.md). Not part of the product: it serves no scrape.
//
// Thread-safety: reentrant; a ReferenceExposition is as thread-safe as the product's Exposition.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "daemon/sinks/prometheus/exposition.h"

namespace facility {

enum class ExpositionMode {
  kCached,         // the product's Exposition: facility part cached per snapshot
  kDirect,         // the product's writer, everything rendered at every scrape
  kPrometheusCpp,  // MetricFamily + prometheus::TextSerializer at every scrape
};

// Every family of a scrape as prometheus-cpp objects (families without samples left out).
std::vector<prometheus::MetricFamily> render_metrics(const ScrapeSources& src);

namespace testing {

class ReferenceExposition {
 public:
  explicit ReferenceExposition(ExpositionMode mode = ExpositionMode::kCached) : mode_(mode) {}
  Exposition::Body render(const ScrapeSources& src) const;

 private:
  ExpositionMode mode_;
  Exposition cached_;
};

}  // namespace testing
}  // namespace facility
