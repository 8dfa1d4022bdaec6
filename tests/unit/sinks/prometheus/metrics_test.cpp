// The /metrics exposition: the direct text writer against prometheus-cpp's own serializer, the
// per-snapshot cache, what a sharded daemon exports, and the HTTP front door (basic auth on every
// route) on a real listener.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "daemon/app/http_gate.h"
#include "daemon/config/shard.h"
#include "daemon/http/server.h"
#include "daemon/reports/http_routes.h"
#include "daemon/sinks/metric_writer.h"
#include "daemon/sinks/prometheus/exposition.h"
#include "http_client.h"
#include "inflate.h"
#include "model_rig.h"
#include "tests/support/reference_exposition.h"

namespace facility {
namespace {

using testing::Rig;
using testing::at_s;
using testing::Points;
using testing::ReferenceExposition;
using testing::http;

// ---- A small parser of the text format, independent of the writer ------------------------

struct Parsed {
  std::map<std::string, double> samples;            // "name{k=\"v\",...}" (labels sorted)
  std::map<std::string, std::string> types, helps;  // per family
  std::vector<std::string> errors;
};

std::string unescape(const std::string& s) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      o += s[i] == 'n' ? '\n' : s[i];
    } else {
      o += s[i];
    }
  }
  return o;
}

Parsed parse(const std::string& text) {
  Parsed p;
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  static const std::regex label(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?)re");
  std::istringstream in(text);
  std::string current;  // family of the last # TYPE
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      const auto sp = line.find(' ', 7);
      const std::string name = line.substr(7, sp - 7);
      if (p.helps.count(name)) p.errors.push_back("second HELP for " + name);
      p.helps[name] = line.substr(sp + 1);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const auto sp = line.find(' ', 7);
      current = line.substr(7, sp - 7);
      if (p.types.count(current)) p.errors.push_back("second TYPE for " + current);
      p.types[current] = line.substr(sp + 1);
      continue;
    }
    std::smatch m;
    if (!std::regex_match(line, m, sample)) {
      p.errors.push_back("bad line: " + line);
      continue;
    }
    const std::string name = m[1].str();
    if (name.rfind(current, 0) != 0) p.errors.push_back("sample outside its family: " + line);
    std::map<std::string, std::string> labels;
    const std::string ls = m[3].str();
    for (std::sregex_iterator it(ls.begin(), ls.end(), label), end; it != end; ++it) {
      labels[(*it)[1].str()] = unescape((*it)[2].str());
    }
    std::string key = name + "{";
    for (const auto& [k, v] : labels) key += k + "=\"" + v + "\",";
    key += "}";
    const std::string vs = m[4].str();
    const double v = vs == "+Inf" ? std::numeric_limits<double>::infinity()
                     : vs == "-Inf" ? -std::numeric_limits<double>::infinity()
                                    : std::stod(vs);
    if (!p.samples.emplace(key, v).second) p.errors.push_back("duplicate series " + key);
  }
  return p;
}

std::map<std::string, double> without_process(std::map<std::string, double> m) {
  std::erase_if(m, [](const auto& e) { return e.first.rfind("process_", 0) == 0; });
  return m;
}

std::size_t count_prefix(const Parsed& p, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& [k, v] : p.samples) n += k.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

// ---- The writer ---------------------------------------------------------------------------

TEST(MetricsText, NumbersLabelsAndHelpAreEscaped) {
  using namespace metrics_detail;
  Families fam;
  const std::string tricky = "a \"quoted\" back\\slash\nnewline";
  auto& g = fam.family("t_gauge", "help with \\ and\nnewline", Type::kGauge);
  g.gauge(Labels{{"v", tricky}}, 0.1);
  g.gauge(Labels{{"v", "nan"}}, std::nan(""));
  g.gauge(Labels{{"v", "inf"}}, std::numeric_limits<double>::infinity());
  g.gauge(Labels{{"v", "-inf"}}, -std::numeric_limits<double>::infinity());
  g.gauge(Labels{{"v", "int"}}, 4400);
  g.gauge(Labels{{"v", "big"}}, 1.796170012247908e9);
  g.gauge(Labels{{"v", "absent"}}, std::optional<double>{});
  fam.family("t_empty", "no samples", Type::kGauge);
  std::string out;
  fam.append_text(out);

  EXPECT_NE(out.find("# HELP t_gauge help with \\\\ and\\nnewline\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_gauge{v=\"a \\\"quoted\\\" back\\\\slash\\nnewline\"} 0.1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("t_gauge{v=\"nan\"} NaN\n"), std::string::npos);
  EXPECT_NE(out.find("t_gauge{v=\"inf\"} +Inf\n"), std::string::npos);
  EXPECT_NE(out.find("t_gauge{v=\"-inf\"} -Inf\n"), std::string::npos);
  EXPECT_NE(out.find("t_gauge{v=\"int\"} 4400\n"), std::string::npos);
  EXPECT_EQ(out.find("absent"), std::string::npos) << "an unknown value has no series";
  EXPECT_EQ(out.find("t_empty"), std::string::npos) << "a family without samples is left out";

  const Parsed p = parse(out);
  EXPECT_TRUE(p.errors.empty()) << p.errors.front();
  EXPECT_EQ(p.samples.at("t_gauge{v=\"" + tricky + "\",}"), 0.1);
  EXPECT_EQ(p.samples.at("t_gauge{v=\"big\",}"), 1.796170012247908e9) << "round trip";
  EXPECT_EQ(fam.series(), 6u);
}

TEST(MetricsText, HistogramIsCumulativeWithInfSumAndCount) {
  using namespace metrics_detail;
  Families fam;
  const std::array<double, 3> bounds{0.01, 0.1, 1};
  const std::array<std::uint64_t, 3> per_bucket{2, 3, 0};  // 1 more above 1 s: count 6
  fam.family("t_seconds", "h", Type::kHistogram)
      .histogram(Labels{{"endpoint", "tcp://x:502"}}, bounds, per_bucket, 6, 4.5);
  std::string out;
  fam.append_text(out);
  const Parsed p = parse(out);
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  EXPECT_EQ(p.types.at("t_seconds"), "histogram");
  EXPECT_EQ(p.samples.at("t_seconds_bucket{endpoint=\"tcp://x:502\",le=\"0.01\",}"), 2);
  EXPECT_EQ(p.samples.at("t_seconds_bucket{endpoint=\"tcp://x:502\",le=\"0.1\",}"), 5);
  EXPECT_EQ(p.samples.at("t_seconds_bucket{endpoint=\"tcp://x:502\",le=\"1\",}"), 5);
  EXPECT_EQ(p.samples.at("t_seconds_bucket{endpoint=\"tcp://x:502\",le=\"+Inf\",}"), 6);
  EXPECT_EQ(p.samples.at("t_seconds_sum{endpoint=\"tcp://x:502\",}"), 4.5);
  EXPECT_EQ(p.samples.at("t_seconds_count{endpoint=\"tcp://x:502\",}"), 6);
}

// ---- A site for the exposition tests ------------------------------------------------------

// Site "m" has IT and facility meters and a cooling unit; site "p" takes IT from its PDUs.
// Every cabinet has A/B PDUs (three-phase in m's first row) and a rack sensor.
std::string site_yaml(const std::string& shard) {
  std::ostringstream y;
  y << "daemon: {" << (shard.empty() ? "" : "shard: \"" + shard + "\"") << "}\n"
    << "mqtt: {enabled: false}\nhistory: {enabled: false}\n"
    << "defaults: {interval: 10s}\nfacility: {pue_target: 1.4}\nsites:\n";
  int unit = 0;
  for (const std::string site : {"m", "p"}) {
    y << "  - id: " << site << "\n    name: \"Site " << site << " \\\"quoted\\\"\"\n"
      << "    rooms:\n      - id: r1\n        rows:\n";
    for (int row = 0; row < 2; ++row) {
      y << "          - id: w" << row << "\n            cabinets:\n";
      for (int c = 0; c < 6; ++c) {
        y << "              - {id: c" << row << c << ", status: " << (c % 3 ? "sold" : "free")
          << "}\n";
      }
    }
    y << "    devices:\n";
    for (int row = 0; row < 2; ++row) {
      for (int c = 0; c < 6; ++c) {
        const std::string cab = "c" + std::to_string(row) + std::to_string(c);
        const std::string prof = site == "m" && row == 0 ? "pdu3" : "pdu";
        for (const char* f : {"A", "B"}) {
          y << "      - {id: " << site << cab << f << ", kind: pdu, profile: " << prof
            << ", endpoint: \"tcp://127.0.0.1:1\", unit: " << ++unit << ", cabinet: " << cab
            << ", feed: " << f << "}\n";
        }
        y << "      - {id: " << site << cab << "e, kind: rack_sensor, profile: env, endpoint: "
          << "\"tcp://127.0.0.1:1\", unit: " << ++unit << ", cabinet: " << cab << "}\n";
      }
    }
    if (site == "m") {
      y << "      - {id: mmain, kind: meter, role: facility_total, profile: meter, endpoint: "
        << "\"tcp://127.0.0.1:2\", unit: 1}\n"
        << "      - {id: mups, kind: meter, role: it_at_ups_output, profile: meter, endpoint: "
        << "\"tcp://127.0.0.1:2\", unit: 2}\n"
        << "      - {id: mcrah, kind: cooling, profile: crah, endpoint: \"tcp://127.0.0.1:2\", "
        << "unit: 3, room: r1, capacity_kw: 60}\n";
    }
  }
  return y.str();
}

// Readings of every device the rig's shard polls (all of them when not sharded), at `t`.
void feed(Rig& rig, double t, bool only_own = true) {
  const Config& cfg = rig.config();
  int i = 0;
  for (const Device* d : cfg.all_devices()) {
    ++i;
    if (only_own && !owns_device(cfg.daemon.shard, *d)) continue;
    const double w = 1200 + 37 * i;
    Points pts;
    switch (d->kind) {
      case DeviceKind::kPdu:
        if (d->profile_name == "pdu3") {
          for (int ph = 1; ph <= 3; ++ph) {
            pts["current_l" + std::to_string(ph)] = {w / 3 / 220 * (1 + 0.05 * ph), "A"};
            pts["active_power_l" + std::to_string(ph)] = {w / 3 * (1 + 0.05 * ph), "W"};
          }
          pts["active_power"] = {w * 1.1, "W"};
        } else {
          pts = {{"active_power", {w, "W"}}, {"voltage", {229.5, "V"}},
                 {"current", {w / 229.5 / 0.97, "A"}}, {"power_factor", {0.97, "ratio"}},
                 {"energy", {100 + t * w / 3.6e6, "kWh"}}, {"outlets_on", {4, "none"}}};
        }
        break;
      case DeviceKind::kRackSensor:
        pts = {{"inlet_temperature", {22 + i % 5, "celsius"}}, {"humidity", {45, "percent"}},
               {"u_occupied", {20, "none"}}};
        break;
      case DeviceKind::kCooling:
        pts = {{"supply_temperature", {18, "celsius"}}, {"return_temperature", {29, "celsius"}},
               {"running", {1, "none"}}};
        break;
      case DeviceKind::kMeter:
        pts = testing::kw(d->role == MeterRole::kFacilityTotal ? 40 : 30, 1000 + t / 100);
        break;
      case DeviceKind::kUps:
        pts = {{"active_power", {w * 10, "W"}},
               {"load_ratio", {55, "percent"}},
               {"battery_runtime", {20, "min"}},
               {"on_battery", {0, "none"}}};
        break;
    }
    rig.put(d->id, pts, at_s(t));
  }
}

ScrapeSources sources_of(const Rig&, std::shared_ptr<const FacilitySnapshot> snap) {
  ScrapeSources s;
  s.config = snap->config;
  s.snapshot = std::move(snap);
  return s;
}

TEST(Exposition, TextEqualsPrometheusCppSerializerAndIsWellFormed) {
  Rig rig(site_yaml(""));
  feed(rig, 0);
  auto snap = rig.update(at_s(0));
  feed(rig, 10);
  snap = rig.update(at_s(10));
  const ScrapeSources src = sources_of(rig, snap);
  auto collector = std::make_shared<CollectorStats>();
  collector->configure({"mmain", "mups"}, {"tcp://127.0.0.1:2"}, {0, 0});
  modbus::RequestEvent ev{};
  ev.device_index = 1;
  ev.function = 3;
  ev.result = modbus::RequestResult::kTimeout;
  collector->on_request(ev);
  collector->on_poll(0, 0.02, true);
  collector->on_poll(1, 0.3, false);
  collector->set_unreadable_points(1, 2);
  ScrapeSources full = src;
  full.collector = collector;

  const Parsed text = parse(ReferenceExposition(ExpositionMode::kDirect).render(full).text());
  ASSERT_TRUE(text.errors.empty()) << text.errors.front();
  const Parsed ref = parse(prometheus::TextSerializer().Serialize(render_metrics(full)));
  ASSERT_TRUE(ref.errors.empty()) << ref.errors.front();
  const auto a = without_process(text.samples), b = without_process(ref.samples);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : b) {
    ASSERT_TRUE(a.count(k)) << k;
    EXPECT_NEAR(a.at(k), v, std::abs(v) * 1e-14) << k;
  }
  for (const auto& [name, type] : ref.types) EXPECT_EQ(text.types.at(name), type) << name;
  for (const auto& [name, help] : text.helps) EXPECT_FALSE(help.empty()) << name;

  // Per endpoint, not per device; unreadable points only where there are some.
  EXPECT_EQ(a.at("facility_modbus_poll_duration_seconds_count{endpoint=\"tcp://127.0.0.1:2\",}"),
            2);
  EXPECT_EQ(a.at("facility_modbus_poll_duration_seconds_bucket{endpoint=\"tcp://127.0.0.1:2\","
                 "le=\"0.025\",}"),
            1);
  EXPECT_EQ(a.at("facility_modbus_unreadable_points{device=\"mups\",}"), 2);
  EXPECT_FALSE(a.count("facility_modbus_unreadable_points{device=\"mmain\",}"));
  EXPECT_EQ(a.at("facility_modbus_requests_total{device=\"mups\",function=\"3\",result=\"timeout\",}"),
            1);
  // The site name with quotes survives escaping; the PUE target is exported.
  EXPECT_EQ(a.at("facility_site_info{it_power_source=\"meter\",name=\"Site m \"quoted\"\","
                 "ownership=\"self_built\",site=\"m\",}"),
            1);
  EXPECT_EQ(a.at("facility_site_info{it_power_source=\"pdu_sum\",name=\"Site p \"quoted\"\","
                 "ownership=\"self_built\",site=\"p\",}"),
            1);
  EXPECT_EQ(a.at("facility_site_pue_target_ratio{site=\"m\",}"), 1.4);
  EXPECT_EQ(a.at("facility_shards{}"), 1);
}

TEST(Exposition, OneSeriesPerCabinetForQuantitiesThatAreTheSameOnEveryFeed) {
  Rig rig(site_yaml(""));
  feed(rig, 0);
  const Parsed p =
      parse(ReferenceExposition(ExpositionMode::kDirect).render(sources_of(rig, rig.update(at_s(0)))).text());
  EXPECT_EQ(count_prefix(p, "facility_cabinet_failover_headroom_watts{"), 24u);
  EXPECT_EQ(count_prefix(p, "facility_cabinet_phase_failover_headroom_watts{"), 6u * 3);
  EXPECT_EQ(count_prefix(p, "facility_cabinet_feed_power_watts{"), 48u);
  EXPECT_EQ(count_prefix(p, "facility_cabinet_feed_power_estimated{"), 0u)
      << "every feed is measured: no estimated series";
  // The restated families are gone (docs/prometheus.md, "Cardinality").
  for (const char* gone :
       {"facility_cabinet_power_estimated{", "facility_cabinet_power_coverage_ratio{",
        "facility_cabinet_derated_feed_capacity_watts{", "facility_cabinet_failover_risk{",
        "facility_cabinet_inlet_state{", "facility_cabinet_peak_power_watts{",
        "facility_site_alerts{", "facility_device_poll_duration_seconds"}) {
    EXPECT_EQ(count_prefix(p, gone), 0u) << gone;
  }
}

TEST(Exposition, ExportsTheThresholdsTheModelDecidesWith) {
  // Cabinet c1 of the default, c2 of a class with its own overload thresholds; site t's own
  // facility.overload and inlet class. The shipped alert rules compare with these series.
  Rig rig(R"(mqtt: {enabled: false}
history: {enabled: false}
cabinet_classes:
  - {id: gpu, rated_kw: 8.8, overload: {warning: 0.92, critical: 0.98}}
sites:
  - id: s
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1, feeds: [A]}, {id: c2, class: gpu, feeds: [A]}]}]}]
    devices:
      - {id: p1, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c1, feed: A}
  - id: t
    facility: {overload: {warning: 0.6, critical: 0.7}, inlet: {class: A3}}
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c3, feeds: [A]}]}]}]
    devices:
      - {id: p3, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: c3, feed: A}
)");
  const Parsed p = parse(
      ReferenceExposition(ExpositionMode::kDirect).render(sources_of(rig, rig.update(at_s(0)))).text());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  const auto threshold = [&p](const char* site, const char* cab, const char* sev) {
    return p.samples.at(std::string("facility_cabinet_utilization_threshold_ratio{cabinet=\"") +
                        cab + "\",room=\"r1\",row=\"w1\",severity=\"" + sev + "\",site=\"" +
                        site + "\",}");
  };
  EXPECT_EQ(threshold("s", "c1", "warning"), 0.8);
  EXPECT_EQ(threshold("s", "c1", "critical"), 0.95);
  EXPECT_EQ(threshold("s", "c2", "warning"), 0.92);
  EXPECT_EQ(threshold("s", "c2", "critical"), 0.98);
  EXPECT_EQ(threshold("t", "c3", "warning"), 0.6);
  EXPECT_EQ(threshold("t", "c3", "critical"), 0.7);
  const auto inlet = [&p](const char* site, const char* sev, const char* bound) {
    return p.samples.at(std::string("facility_site_inlet_threshold_celsius{bound=\"") + bound +
                        "\",severity=\"" + sev + "\",site=\"" + site + "\",}");
  };
  EXPECT_EQ(inlet("s", "warning", "low"), 18);  // A1
  EXPECT_EQ(inlet("s", "warning", "high"), 27);
  EXPECT_EQ(inlet("s", "critical", "low"), 15);
  EXPECT_EQ(inlet("s", "critical", "high"), 32);
  EXPECT_EQ(inlet("t", "critical", "low"), 5);  // A3
  EXPECT_EQ(inlet("t", "critical", "high"), 40);
}

TEST(Exposition, ExportsTheWindowEnergyOfEachRole) {
  // Facility 36 kW and IT 24 kW, read every 5 s: over the 20 s window 720 kJ and 480 kJ, the
  // terms of its PUE 1.5 (the fleet PUE rule adds these up).
  Rig rig(R"(mqtt: {enabled: false}
history: {enabled: false}
defaults: {interval: 5s}
facility: {pue_windows: [20s]}
sites:
  - id: m
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1, feeds: [A]}]}]}]
    devices:
      - {id: fac, kind: meter, role: facility_total, profile: meter, endpoint: "tcp://127.0.0.1:2", unit: 1}
      - {id: it, kind: meter, role: it_at_ups_output, profile: meter, endpoint: "tcp://127.0.0.1:2", unit: 2}
)");
  std::shared_ptr<const FacilitySnapshot> snap;
  for (int t = 0; t <= 60; t += 5) {
    rig.put("fac", testing::kw(36, 1000 + 36.0 * t / 3600), at_s(t));
    rig.put("it", testing::kw(24, 500 + 24.0 * t / 3600), at_s(t));
    snap = rig.update(at_s(t));
  }
  const Parsed p = parse(ReferenceExposition(ExpositionMode::kDirect).render(sources_of(rig, snap)).text());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  const auto window = [&p](const char* role) {
    return p.samples.at(std::string("facility_site_energy_window_joules{role=\"") + role +
                        "\",site=\"m\",window=\"20s\",}");
  };
  EXPECT_NEAR(window("facility_total"), 720000, 1e-6);
  EXPECT_NEAR(window("it_at_ups_output"), 480000, 1e-6);
  EXPECT_NEAR(p.samples.at("facility_site_pue_ratio{category=\"1\",site=\"m\",window=\"20s\",}"),
              1.5, 1e-9);
}

TEST(Exposition, CachesTheFacilityPartPerSnapshotButNotTheLivePart) {
  Rig rig(site_yaml(""));
  feed(rig, 0);
  auto s1 = rig.update(at_s(0));
  auto collector = std::make_shared<CollectorStats>();
  collector->configure({"mmain"}, {"tcp://127.0.0.1:2"}, {0});
  ScrapeSources src = sources_of(rig, s1);
  src.collector = collector;
  const ReferenceExposition cached(ExpositionMode::kCached);
  const auto a = cached.render(src);
  collector->on_poll(0, 0.01, true);
  const auto b = cached.render(src);
  EXPECT_EQ(a.facility.get(), b.facility.get()) << "same snapshot: the same text, not re-rendered";
  EXPECT_NE(a.live, b.live) << "counters are read at every scrape";
  EXPECT_EQ(parse(b.text()).samples.at(
                "facility_modbus_poll_duration_seconds_count{endpoint=\"tcp://127.0.0.1:2\",}"),
            1);

  feed(rig, 10);
  src.snapshot = rig.update(at_s(10));
  const auto c = cached.render(src);
  EXPECT_NE(c.facility.get(), b.facility.get()) << "a new snapshot is rendered again";
  EXPECT_NE(*c.facility, *b.facility);
  // Every mode serves the same series.
  const auto direct = parse(ReferenceExposition(ExpositionMode::kDirect).render(src).text()).samples;
  const auto ref = parse(ReferenceExposition(ExpositionMode::kPrometheusCpp).render(src).text()).samples;
  const auto mine = parse(c.text()).samples;
  EXPECT_EQ(without_process(mine), without_process(direct));
  EXPECT_EQ(without_process(mine).size(), without_process(ref).size());
}

// ---- Sharding -----------------------------------------------------------------------------

TEST(Shard, Fnv1a64MatchesTheReferenceVectors) {
  // Test vectors of the FNV reference implementation (test_fnv.c, FNV-1a 64-bit).
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(Shard, EveryDevicePolledByExactlyOneShardWithItsCabinet) {
  Rig rig(site_yaml(""));
  const Config& cfg = rig.config();
  for (int count : {1, 2, 3, 7}) {
    std::map<std::string, int> polled;  // device -> shard
    std::set<int> used;
    for (int i = 0; i < count; ++i) {
      Config c = cfg;
      c.daemon.shard = {i, count};
      const Config mine = devices_of_shard(c);
      for (const Device* d : mine.all_devices()) {
        EXPECT_TRUE(polled.emplace(d->id, i).second) << d->id << " polled twice";
        used.insert(i);
      }
    }
    EXPECT_EQ(polled.size(), cfg.all_devices().size()) << count << " shards";
    for (const Device* d : cfg.all_devices()) {
      const int s = polled.at(d->id);
      if (!d->cabinet.empty()) {
        EXPECT_EQ(s, cabinet_shard(d->site, d->cabinet, count)) << d->id;
      } else {
        EXPECT_EQ(s, site_home_shard(d->site, count)) << d->id << " is with its site's meters";
      }
    }
    if (count <= 3) {
      EXPECT_EQ(int(used.size()), count) << "24 cabinets reach every shard";
    }
  }
}

// Two shards, each with the readings of its own devices only (as in a real deployment),
// against one unsharded daemon with every reading.
TEST(Shard, ShardsExportDisjointSeriesAndOnlyWholeSiteAggregates) {
  Rig whole(site_yaml(""));
  feed(whole, 0);
  const auto all = parse(Exposition().render(sources_of(whole, whole.update(at_s(0)))).text());
  ASSERT_TRUE(all.errors.empty());
  std::map<std::string, double> union_of_shards;
  std::map<std::string, int> site_series_by_shard;
  for (int i = 0; i < 2; ++i) {
    Rig rig(site_yaml(std::to_string(i) + "/2"));
    feed(rig, 0);
    const auto p = parse(Exposition().render(sources_of(rig, rig.update(at_s(0)))).text());
    ASSERT_TRUE(p.errors.empty()) << p.errors.front();
    for (const auto& [k, v] : p.samples) {
      if (k.rfind("facility_shard", 0) == 0 || k.rfind("facility_snapshot", 0) == 0 ||
          k.rfind("facility_config", 0) == 0 || k.rfind("facility_build", 0) == 0 ||
          k.rfind("process_", 0) == 0)
        continue;
      EXPECT_TRUE(union_of_shards.emplace(k, v).second) << k << " exported by both shards";
      if (k.rfind("facility_site_", 0) == 0 || k.rfind("facility_room_", 0) == 0)
        ++site_series_by_shard[k.substr(k.find("site=\""), 8) + std::to_string(i)];
      // Nothing partial: what a shard exports at site level equals the unsharded value.
      if (k.rfind("facility_site_", 0) == 0 || k.rfind("facility_room_", 0) == 0 ||
          k.rfind("facility_cabinet_", 0) == 0 || k.rfind("facility_rack_", 0) == 0 ||
          k.rfind("facility_cooling_", 0) == 0) {
        ASSERT_TRUE(all.samples.count(k)) << k << " is not in the unsharded exposition";
        EXPECT_DOUBLE_EQ(v, all.samples.at(k)) << k;
      }
    }
    EXPECT_EQ(p.samples.at("facility_shards{}"), 2);
    EXPECT_EQ(p.samples.at("facility_shard_index{}"), i);
    // Counts and states that would only cover a shard are not exported by any shard.
    for (const char* partial :
         {"facility_site_cabinets{site=\"m\",state=\"powered\",}",
          "facility_site_cabinets{site=\"p\",state=\"measured\",}",
          "facility_site_coverage_ratio{", "facility_site_rack_units{",
          "facility_room_cooling_state{", "facility_site_it_power_watts{site=\"p\""}) {
      EXPECT_EQ(count_prefix(p, partial), 0u) << partial << " in shard " << i;
    }
  }
  // Each site's series come from one shard only (its home).
  for (const std::string site : {"m", "p"}) {
    const int home = site_home_shard(site, 2);
    EXPECT_GT(site_series_by_shard["site=\"" + site + "\"" + std::to_string(home)], 0) << site;
    EXPECT_EQ(site_series_by_shard["site=\"" + site + "\"" + std::to_string(1 - home)], 0)
        << site;
  }
  // Every cabinet-level series of the unsharded daemon comes from exactly one shard.
  std::size_t cabinet_series = 0;
  for (const auto& [k, v] : all.samples) {
    if (k.rfind("facility_cabinet_", 0) != 0 && k.rfind("facility_rack_", 0) != 0) continue;
    ++cabinet_series;
    EXPECT_TRUE(union_of_shards.count(k)) << k << " lost by sharding";
  }
  EXPECT_GT(cabinet_series, 24u * 10);
  // The meter site's whole aggregates are on its home shard.
  EXPECT_TRUE(union_of_shards.count("facility_site_it_power_watts{site=\"m\",source=\"meter\",}"));
  EXPECT_TRUE(union_of_shards.count(
      "facility_site_pue_ratio{category=\"1\",site=\"m\",window=\"instant\",}"));
}

// ---- The HTTP front door ------------------------------------------------------------------

TEST(HttpGate, BasicAuthOnEveryRouteAndNothingBeforePublish) {
  Rig rig(site_yaml(""));
  feed(rig, 0);
  const auto src = sources_of(rig, rig.update(at_s(0)));
  HttpGate gate;
  http::ServerOptions opt;
  opt.listen = "127.0.0.1:0";
  http::Server server(opt, [&gate](const http::Request& r) { return gate.handle(r); });
  const int port = server.port();
  EXPECT_EQ(http(port, "/metrics").status, 503) << "not published yet: fail closed";

  Credentials auth;
  auth.username = "noc";
  auth.password = "s3cret";
  gate.set_auth(auth);
  gate.set_metrics(std::make_shared<Exposition>(), [&src] { return src; });
  auto cfg = std::make_shared<const Config>(rig.config());
  gate.set_routes(std::make_shared<const ReportRoutes>(cfg, ""));
  auto view = std::make_shared<LiveView>();
  view->take(src.snapshot);
  gate.set_web(std::make_shared<const web::Routes>(view, web::PageOptions{}));
  gate.publish();

  const std::string good = "Authorization: Basic bm9jOnMzY3JldA==\r\n";  // noc:s3cret
  const std::string bad = "Authorization: Basic bm9jOnMzY3JldHg=\r\n";   // noc:s3cretx
  for (const char* path : {"/metrics", "/", "/reports", "/reports/m", "/nothing", "/sites/m",
                           "/api/v1/sites", "/devices"}) {
    const auto r = http(port, path);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_NE(r.head.find("WWW-Authenticate: Basic realm=\"facilityd\""), std::string::npos)
        << path;
    EXPECT_EQ(http(port, path, bad).status, 401) << path;
  }
  const auto m = http(port, "/metrics", good);
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const Parsed p = parse(m.body);
  EXPECT_TRUE(p.errors.empty());
  EXPECT_EQ(p.samples.at("facility_site_pue_target_ratio{site=\"m\",}"), 1.4);
  const auto landing = http(port, "/", good);
  EXPECT_EQ(landing.status, 200);
  EXPECT_NE(landing.body.find("<a href=\"/metrics\">"), std::string::npos);
  EXPECT_NE(landing.body.find("data-site=\"m\""), std::string::npos) << "the NOC view";
  EXPECT_EQ(http(port, "/api/v1/sites", good).status, 200);
  EXPECT_EQ(http(port, "/reports", good).status, 200);
  EXPECT_EQ(http(port, "/reports/m", good).status, 503) << "authorised; the history is off";
  EXPECT_EQ(http(port, "/nothing", good).status, 404);

  // New credentials (a reload) apply to the next request; without credentials it is open.
  auth.password = "changed";
  gate.set_auth(auth);
  EXPECT_EQ(http(port, "/metrics", good).status, 401);
  EXPECT_EQ(http(port, "/metrics", "Authorization: Basic bm9jOmNoYW5nZWQ=\r\n").status, 200);
  gate.set_auth(Credentials{});
  EXPECT_EQ(http(port, "/metrics").status, 200);
}

// Prometheus asks for gzip: the facility part is compressed once per snapshot and shared, the
// live part per scrape, and the two make one gzip body with the same text as the plain one.
TEST(HttpGate, MetricsAreGzippedWhenTheScraperAcceptsIt) {
  Rig rig(site_yaml(""));
  feed(rig, 0);
  auto src = sources_of(rig, rig.update(at_s(0)));
  HttpGate gate;
  http::ServerOptions opt;
  opt.listen = "127.0.0.1:0";
  http::Server server(opt, [&gate](const http::Request& r) { return gate.handle(r); });
  const int port = server.port();
  auto expo = std::make_shared<Exposition>();
  gate.set_metrics(expo, [&src] { return src; });
  gate.publish();

  const auto plain = http(port, "/metrics");
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(plain.head.find("Content-Encoding"), std::string::npos);
  EXPECT_NE(plain.head.find("Vary: Accept-Encoding"), std::string::npos);
  const auto gz = http(port, "/metrics", "Accept-Encoding: gzip\r\n");
  ASSERT_EQ(gz.status, 200);
  EXPECT_NE(gz.head.find("Content-Encoding: gzip"), std::string::npos);
  EXPECT_LT(gz.body.size(), plain.body.size() / 2);
  const auto text = testing::gunzip(gz.body);
  ASSERT_TRUE(text.has_value()) << "one valid gzip member";
  const Parsed p = parse(*text);
  EXPECT_TRUE(p.errors.empty());
  EXPECT_EQ(without_process(p.samples), without_process(parse(plain.body).samples));

  // The same snapshot again: the shared part is reused, and still decompresses (the trailer
  // combines its CRC with the new live part's).
  const auto again = expo->render(src, true);
  const auto first = expo->render(src, true);
  EXPECT_EQ(again.facility.get(), first.facility.get());
  EXPECT_TRUE(testing::gunzip(*again.facility + again.live).has_value());
  // A new snapshot is compressed anew.
  feed(rig, 10);
  src.snapshot = rig.update(at_s(10));
  const auto next = expo->render(src, true);
  EXPECT_NE(next.facility.get(), first.facility.get());
  const auto next_text = testing::gunzip(*next.facility + next.live);
  ASSERT_TRUE(next_text.has_value());
  EXPECT_EQ(without_process(parse(*next_text).samples),
            without_process(parse(expo->render(src).text()).samples));
  // Before the first snapshot there is only the live part: one member all the same.
  ScrapeSources live_only = src;
  live_only.snapshot = nullptr;
  const auto early = expo->render(live_only, true);
  EXPECT_FALSE(early.facility);
  const auto early_text = testing::gunzip(early.live);
  ASSERT_TRUE(early_text.has_value());
  EXPECT_EQ(without_process(parse(*early_text).samples),
            without_process(parse(expo->render(live_only).text()).samples));
  // Not accepted: plain text.
  EXPECT_EQ(http(port, "/metrics", "Accept-Encoding: gzip;q=0\r\n").head.find("Content-Encoding"),
            std::string::npos);
}

}  // namespace
}  // namespace facility
