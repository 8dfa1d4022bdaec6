// The top-level `daemon` and `defaults` sections, and what a sharded daemon cannot do.
#include <yaml-cpp/yaml.h>

#include <regex>

#include "daemon/config/reader.h"

namespace facility::config_detail {

YAML::Node parse_daemon_section(Diagnostics& d, const YAML::Node& node, DaemonSettings& out) {
  YAML::Node shard_node;  // set when the daemon is sharded
  MapReader r(
      d, node, "daemon",
      {"listen", "stale_after_intervals", "powered_threshold_w", "state_dir", "auth", "shard"});
  if (auto l = r.str("listen")) {
    // A host name, an IPv4 address or an [IPv6] address, and a port 1..65535. (Port 0, "any
    // free port", is for --listen on the command line, which prints where it landed.)
    static const std::regex re(R"(^([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$)");
    std::smatch m;
    const bool form = std::regex_match(*l, m, re);
    const long port = form ? std::stol(m[2].str()) : 0;
    if (!form) {
      d.error(r.get("listen"), "daemon: listen \"" + *l +
                                   "\" must be HOST:PORT, e.g. 127.0.0.1:10044 or [::1]:10044");
    } else if (port < 1 || port > 65535) {
      d.error(r.get("listen"), "daemon: listen \"" + *l + "\": port " + std::to_string(port) +
                                   " is out of range 1..65535");
    } else {
      out.listen = *l;
    }
  }
  if (auto n = r.integer("stale_after_intervals", 1, 100)) out.stale_after_intervals = int(*n);
  if (auto n = r.num("powered_threshold_w")) {
    if (*n < 0) d.error(r.get("powered_threshold_w"), "daemon: powered_threshold_w must be >= 0");
    out.powered_threshold_w = *n;
  }
  if (auto v = r.str("state_dir")) {
    if (v->empty() || v->front() != '/')
      d.error(r.get("state_dir"), "daemon: state_dir must be an absolute path");
    else
      out.state_dir = *v;
  }
  if (r.has("auth")) {
    const std::size_t before = d.errors().size();
    config_detail::parse_credentials(d, r.get("auth"), "daemon.auth", out.auth);
    if (d.errors().size() == before && (!out.auth.username || !out.auth.password))
      d.error(r.key_node("auth"),
              "daemon.auth: basic authentication needs a user name and a "
              "password (username_file or username_env, password_file or "
              "password_env)");
  }
  if (auto v = r.str("shard")) {
    static const std::regex re(R"(^([0-9]{1,4})/([0-9]{1,4})$)");
    std::smatch m;
    const int index = std::regex_match(*v, m, re) ? std::stoi(m[1].str()) : -1;
    const int count = index >= 0 ? std::stoi(m[2].str()) : 0;
    if (index < 0 || count < 1 || count > 1000 || index >= count) {
      d.error(r.get("shard"), "daemon: shard \"" + *v +
                                  "\" must be INDEX/COUNT with 0 <= INDEX < COUNT <= 1000, "
                                  "e.g. \"0/2\" and \"1/2\" for two daemons");
    } else {
      out.shard.index = index;
      out.shard.count = count;
      shard_node = r.get("shard");
    }
  }
  return shard_node;
}

void check_sharded(Diagnostics& d, const YAML::Node& shard_node, const Config& cfg) {
  if (!cfg.daemon.shard.sharded()) return;
  // A shard sees part of each site: MQTT summaries and the history's site minutes would be
  // partial and would overwrite each other (docs/prometheus.md, "Sharding").
  if (cfg.mqtt.enabled)
    d.error(shard_node,
            "daemon: a sharded daemon cannot publish MQTT (every shard would "
            "publish partial site summaries): set mqtt.enabled: false here and run "
            "one unsharded daemon for MQTT");
  if (cfg.history.enabled)
    d.error(shard_node,
            "daemon: a sharded daemon cannot keep the history (site minutes would "
            "be partial): set history.enabled: false here");
}

Defaults parse_defaults(Diagnostics& d, const YAML::Node& node) {
  Defaults defs;
  MapReader r(d, node, "defaults", {"interval", "timeout", "retries", "rated_kw", "feeds"});
  if (auto v = r.duration("interval")) defs.interval = *v;
  if (auto v = r.integer("retries", 0, 10)) defs.retries = int(*v);
  if (auto v = r.duration("timeout")) defs.timeout = *v;
  if (auto v = r.num("rated_kw")) {
    if (*v <= 0) d.error(r.get("rated_kw"), "defaults: rated_kw must be > 0");
    defs.rated_w = *v * 1000;
  }
  if (r.has("feeds")) {
    defs.feeds.clear();
    for (auto& [f, at] : r.str_list("feeds")) defs.feeds.push_back(f);
  }
  return defs;
}

}  // namespace facility::config_detail
