#include "daemon/sinks/metric_writer.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace facility::metrics_detail {

void Labels::append(std::initializer_list<Label> l) {
  if (n_ + l.size() > kMax) throw std::logic_error("metrics: too many labels on one sample");
  for (const auto& x : l) a_[n_++] = x;
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

namespace {

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kHistogram:
      return "histogram";
    case Type::kGauge:
      break;
  }
  return "gauge";
}

}  // namespace

Family::Family(std::string_view name, std::string_view help, Type type, SampleObserver* observer)
    : name_(name), help_(help), type_(type), observer_(observer) {}

void Family::text_sample(std::string_view suffix, const Labels& l, const Label* extra, double v) {
  body_ += name_;
  body_ += suffix;
  const auto items = l.items();
  if (!items.empty() || extra) {
    body_ += '{';
    bool first = true;
    auto one = [this, &first](const Label& x) {
      if (!first) body_ += ',';
      first = false;
      body_ += x.name;
      body_ += "=\"";
      append_escaped(body_, x.value);
      body_ += '"';
    };
    for (const auto& x : items) one(x);
    if (extra) one(*extra);
    body_ += '}';
  }
  body_ += ' ';
  append_number(body_, v);
  body_ += '\n';
}

void Family::scalar(const Labels& l, double v) {
  ++n_;
  if (observer_) {
    observer_->scalar(*this, l, v);
    return;
  }
  text_sample("", l, nullptr, v);
}

void Family::histogram(const Labels& l, std::span<const double> bounds,
                       std::span<const std::uint64_t> buckets, std::uint64_t count, double sum) {
  n_ += bounds.size() + 3;
  if (observer_) {
    observer_->histogram(*this, l, bounds, buckets, count, sum);
    return;
  }
  std::uint64_t cum = 0;
  std::string le;
  for (std::size_t b = 0; b < bounds.size(); ++b) {
    cum += b < buckets.size() ? buckets[b] : 0;
    le.clear();
    append_number(le, bounds[b]);
    const Label x{"le", le};
    text_sample("_bucket", l, &x, static_cast<double>(cum));
  }
  const Label inf{"le", "+Inf"};
  text_sample("_bucket", l, &inf, static_cast<double>(count));
  text_sample("_sum", l, nullptr, sum);
  text_sample("_count", l, nullptr, static_cast<double>(count));
}

void Families::append_text(std::string& out) const {
  for (const auto& f : fams_) {
    if (f.n_ == 0) continue;
    out += "# HELP ";
    out += f.name_;
    out += ' ';
    append_help(out, f.help_);
    out += "\n# TYPE ";
    out += f.name_;
    out += ' ';
    out += type_name(f.type_);
    out += '\n';
    out += f.body_;
  }
}

std::size_t Families::series() const {
  std::size_t n = 0;
  for (const auto& f : fams_) n += f.n_;
  return n;
}

}  // namespace facility::metrics_detail
