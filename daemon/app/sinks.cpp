// Sink registration: one line per sink. Order is start order (stop is the reverse): the history
// opens first, so a sink that fails later (a broker URI Paho refuses) is stopped with the others.
#include "daemon/app/sinks.h"

#include "daemon/sinks/history/history_sink.h"
#include "daemon/sinks/mqtt/mqtt_sink.h"

namespace facility {

std::span<const SinkFactory> sink_factories() {
  static constexpr SinkFactory kFactories[] = {
      &make_history_sink,
      &make_mqtt_sink,
  };
  return kFactories;
}

}  // namespace facility
