// The sinks a configuration gets (daemon/sinks/sink.h), as factories in start order. The
// Prometheus exposition is not among them: it lives as long as the HTTP listener, across
// reloads, and the daemon puts it at the front of its list itself.
#pragma once

#include <memory>
#include <span>

#include "daemon/config/config.h"
#include "daemon/sinks/sink.h"

namespace facility {

// A factory returns null when its sink is off in the configuration, and throws when the
// configuration cannot make one (a broker URI Paho refuses).
using SinkFactory = std::shared_ptr<Sink> (*)(const std::shared_ptr<const Config>& config);

std::span<const SinkFactory> sink_factories();

}  // namespace facility
