// The metrics writer: families of samples written straight into Prometheus text format 0.0.4,
// the body of /metrics. The facility families (sinks/prometheus) and every sink's health
// (Sink::health) are written through it.
//
// Why our own text writer: building prometheus-cpp MetricFamily objects and serializing them with
// TextSerializer (ostream formatting) takes 5-8 times as long as writing the text directly with
// std::to_chars: ~310 ms against ~55 ms for 100k series on the target machine (bench/RESULTS.md,
// "Scrape latency and size while polling"). prometheus-cpp stays the reference the text must
// match: the unit tests and the scrape benchmark attach a SampleObserver that builds its
// MetricFamily objects from the same samples (tests/support/reference_exposition.h).
//
// Labels hold string_views: every label value must outlive the call that adds the sample
// (config strings do; keep computed values in a named local).
//
// Thread-safety: a Families object belongs to one render; the functions are reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>


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

class Family;

// Takes every sample instead of the text writer, before any formatting (tests and benchmarks:
// the prometheus-cpp reference). The product attaches none.
class SampleObserver {
 public:
  virtual ~SampleObserver() = default;
  virtual void scalar(const Family& f, const Labels& l, double v) = 0;
  virtual void histogram(const Family& f, const Labels& l, std::span<const double> bounds,
                         std::span<const std::uint64_t> buckets, std::uint64_t count,
                         double sum) = 0;
};

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
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  Type type() const { return type_; }

 private:
  friend class Families;
  Family(std::string_view name, std::string_view help, Type type, SampleObserver* observer);
  void scalar(const Labels& l, double v);  // a gauge or counter sample, as the family's type
  void text_sample(std::string_view suffix, const Labels& l, const Label* extra, double v);

  std::string name_, help_;
  Type type_;
  SampleObserver* observer_;  // null in the product
  std::string body_;          // the sample lines
  std::size_t n_ = 0;         // series (a histogram counts buckets + sum + count)
};

class Families {
 public:
  // With an observer, samples go to it and no text is written.
  explicit Families(SampleObserver* observer = nullptr) : observer_(observer) {}

  // The reference stays valid for the lifetime of this object. Each name once per render.
  Family& family(std::string_view name, std::string_view help, Type type) {
    fams_.push_back(Family(name, help, type, observer_));
    return fams_.back();
  }
  // Appends "# HELP", "# TYPE" and the samples of every family that has samples (a family
  // without samples is left out: only what is known is exposed).
  void append_text(std::string& out) const;
  std::size_t series() const;

 private:
  SampleObserver* observer_;
  std::deque<Family> fams_;  // deque: references stay valid while families are added
};

// Prometheus text format of a sample value: shortest round-trip decimal, NaN, +Inf, -Inf.
void append_number(std::string& out, double v);
// A label value escaped for the text format (backslash, double quote, newline).
void append_escaped(std::string& out, std::string_view v);

}  // namespace facility::metrics_detail

namespace facility {
// What sinks write their health metrics with (Sink::health).
using MetricWriter = metrics_detail::Families;
}  // namespace facility
