#include "tests/support/reference_exposition.h"

#include <prometheus/text_serializer.h>

#include <limits>
#include <map>
#include <string>

namespace facility {
namespace {

using metrics_detail::Families;
using metrics_detail::Family;
using metrics_detail::Labels;
using metrics_detail::Type;

prometheus::MetricType to_prometheus(Type t) {
  switch (t) {
    case Type::kCounter:
      return prometheus::MetricType::Counter;
    case Type::kHistogram:
      return prometheus::MetricType::Histogram;
    case Type::kGauge:
      break;
  }
  return prometheus::MetricType::Gauge;
}

std::vector<prometheus::ClientMetric::Label> to_prometheus(const Labels& l) {
  std::vector<prometheus::ClientMetric::Label> r;
  r.reserve(l.items().size());
  for (const auto& x : l.items()) r.push_back({std::string(x.name), std::string(x.value)});
  return r;
}

// Collects every sample into MetricFamily objects, one per family name, in order of first sample.
class Collector : public metrics_detail::SampleObserver {
 public:
  void scalar(const Family& f, const Labels& l, double v) override {
    prometheus::ClientMetric m;
    m.label = to_prometheus(l);
    (f.type() == Type::kCounter ? m.counter.value : m.gauge.value) = v;
    of(f).metric.push_back(std::move(m));
  }
  void histogram(const Family& f, const Labels& l, std::span<const double> bounds,
                 std::span<const std::uint64_t> buckets, std::uint64_t count, double sum) override {
    prometheus::ClientMetric m;
    m.label = to_prometheus(l);
    m.histogram.sample_count = count;
    m.histogram.sample_sum = sum;
    std::uint64_t cum = 0;
    for (std::size_t b = 0; b < bounds.size(); ++b) {
      cum += b < buckets.size() ? buckets[b] : 0;
      m.histogram.bucket.push_back({cum, bounds[b]});
    }
    m.histogram.bucket.push_back({count, std::numeric_limits<double>::infinity()});
    of(f).metric.push_back(std::move(m));
  }
  std::vector<prometheus::MetricFamily> take() { return std::move(families_); }

 private:
  prometheus::MetricFamily& of(const Family& f) {
    auto [it, fresh] = index_.emplace(f.name(), families_.size());
    if (fresh) {
      prometheus::MetricFamily mf;
      mf.name = f.name();
      mf.help = f.help();
      mf.type = to_prometheus(f.type());
      families_.push_back(std::move(mf));
    }
    return families_[it->second];
  }
  std::map<std::string, std::size_t> index_;
  std::vector<prometheus::MetricFamily> families_;
};

}  // namespace

std::vector<prometheus::MetricFamily> render_metrics(const ScrapeSources& src) {
  Collector collector;
  Families fam(&collector);
  render_scrape(fam, src);
  return collector.take();
}

namespace testing {

Exposition::Body ReferenceExposition::render(const ScrapeSources& src) const {
  Exposition::Body body;
  switch (mode_) {
    case ExpositionMode::kCached:
      return cached_.render(src);
    case ExpositionMode::kDirect: {
      Families fam;
      render_scrape(fam, src);
      fam.append_text(body.live);
      return body;
    }
    case ExpositionMode::kPrometheusCpp:
      body.live = prometheus::TextSerializer().Serialize(render_metrics(src));
      return body;
  }
  return body;
}

}  // namespace testing
}  // namespace facility
