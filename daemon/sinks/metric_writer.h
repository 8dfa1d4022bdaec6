// The exposition writer shared by the metric files (metrics.cpp, metrics_facility.cpp,
// history_metrics.cpp): families of samples written either straight into Prometheus text format
// 0.0.4 (what /metrics serves) or into prometheus-cpp MetricFamily objects (the reference the
// unit tests compare the text with, and the previous design the scrape benchmark measures).
//
// Why our own text writer: building prometheus-cpp MetricFamily objects and serializing them with
// TextSerializer (ostream formatting) takes 5-8 times as long as writing the text directly with
// std::to_chars: ~310 ms against ~55 ms for 100k series on the target machine (bench/RESULTS.md,
// "Scrape latency and size while polling").
//
// Labels hold string_views: every label value must outlive the call that adds the sample
// (config strings do; keep computed values in a named local).
//
// Thread-safety: a Families object belongs to one render; the functions are reentrant.
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/model/model.h"

namespace facility::metrics_detail {

struct Label {
  std::string_view name;
  std::string_view value;
};

// A short list of labels, stored inline (no allocation per sample).
class Labels {
 public:
  static constexpr std::size_t kMax = 12;
  Labels() = default;
  Labels(std::initializer_list<Label> l) { append(l); }
  Labels with(std::initializer_list<Label> extra) const {
    Labels r = *this;
    r.append(extra);
    return r;
  }
  std::span<const Label> items() const { return {a_.data(), n_}; }

 private:
  void append(std::initializer_list<Label> l);
  std::array<Label, kMax> a_{};
  std::size_t n_ = 0;
};

enum class Type { kGauge, kCounter, kHistogram };

// One metric family: its HELP, TYPE and samples.
class Family {
 public:
  void gauge(const Labels& l, double v) { scalar(l, v); }
  void gauge(const Labels& l, const std::optional<double>& v) {
    if (v) scalar(l, *v);
  }
  void counter(const Labels& l, double v) { scalar(l, v); }
  // Upper bounds (without +Inf) and non-cumulative counts per bucket (the last entry of
  // `buckets` may be the overflow above the last bound; it is only counted in `count`).
  void histogram(const Labels& l, std::span<const double> bounds,
                 std::span<const std::uint64_t> buckets, std::uint64_t count, double sum);
  std::size_t samples() const { return n_; }

 private:
  friend class Families;
  Family(std::string_view name, std::string_view help, Type type, bool text);
  void scalar(const Labels& l, double v);  // a gauge or counter sample, as the family's type
  void text_sample(std::string_view suffix, const Labels& l, const Label* extra, double v);

  std::string name_, help_;
  Type type_;
  bool text_;
  std::string body_;              // text mode: the sample lines
  prometheus::MetricFamily mf_;   // reference mode
  std::size_t n_ = 0;             // series (a histogram counts buckets + sum + count)
};

class Families {
 public:
  enum class Mode { kText, kPrometheusCpp };
  explicit Families(Mode m = Mode::kText) : text_(m == Mode::kText) {}

  // The reference stays valid for the lifetime of this object. Each name once per render.
  Family& family(std::string_view name, std::string_view help, Type type) {
    fams_.push_back(Family(name, help, type, text_));
    return fams_.back();
  }
  // Text mode: appends "# HELP", "# TYPE" and the samples of every family that has samples
  // (a family without samples is left out: only what is known is exposed).
  void append_text(std::string& out) const;
  // Reference mode: the families with samples.
  std::vector<prometheus::MetricFamily> take();
  std::size_t series() const;

 private:
  bool text_;
  std::deque<Family> fams_;  // deque: references stay valid while families are added
};

// Prometheus text format of a sample value: shortest round-trip decimal, NaN, +Inf, -Inf.
void append_number(std::string& out, double v);
// A label value escaped for the text format (backslash, double quote, newline).
void append_escaped(std::string& out, std::string_view v);

// Labels {site, room, row, cabinet} of a cabinet.
inline Labels cabinet_labels(const Cabinet& c) {
  return Labels{{"site", c.site}, {"room", c.room}, {"row", c.row}, {"cabinet", c.id}};
}

// The facility families (cabinets, racks, cooling units, rooms, sites, devices, model alerts):
// metrics_facility.cpp. Everything there is a function of the snapshot alone, so the text can be
// cached per snapshot. In a sharded daemon (daemon.shard) only the shard's entities and the
// site aggregates that are whole are written (docs/prometheus.md, "Sharding").
void render_facility(Families& fam, const FacilitySnapshot& snap);

}  // namespace facility::metrics_detail
