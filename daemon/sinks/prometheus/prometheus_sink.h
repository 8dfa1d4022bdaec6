// The Prometheus exposition as a sink. It is pull-based: take() only keeps the newest snapshot,
// and a scrape (the HTTP front door, daemon/app/http_gate.h) renders it through the Exposition,
// which renders the facility part once per snapshot and caches it. The live part is read at
// every scrape from the sources the daemon provides.
//
// Thread-safety: take() from the model thread, sources() and the exposition from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "daemon/sinks/prometheus/exposition.h"
#include "daemon/sinks/sink.h"

namespace facility {

class PrometheusSink : public Sink {
 public:
  // `live`: everything a scrape reads besides the snapshot (configuration, collector counters,
  // the sinks whose health is written, reload status); called at every scrape.
  explicit PrometheusSink(std::function<ScrapeSources()> live)
      : live_(std::move(live)), exposition_(std::make_shared<Exposition>()) {}

  void start() override {}
  void take(std::shared_ptr<const FacilitySnapshot> snap) override {
    std::lock_guard lock(mu_);
    latest_ = std::move(snap);
  }
  void stop() override {}
  void health(MetricWriter&) const override {}

  std::shared_ptr<const FacilitySnapshot> latest() const {
    std::lock_guard lock(mu_);
    return latest_;
  }
  // What the next scrape renders: the live sources with the newest snapshot.
  ScrapeSources sources() const {
    ScrapeSources s = live_();
    s.snapshot = latest();
    return s;
  }
  std::shared_ptr<const Exposition> exposition() const { return exposition_; }

 private:
  std::function<ScrapeSources()> live_;
  std::shared_ptr<const Exposition> exposition_;
  mutable std::mutex mu_;
  std::shared_ptr<const FacilitySnapshot> latest_;
};

}  // namespace facility
