// The NOC view (daemon/web/): what the pages and the JSON API say about a known snapshot, the
// routes' answers, and the last hour each cabinet keeps.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "daemon/config/shard.h"
#include "daemon/sinks/payloads.h"
#include "daemon/web/api.h"
#include "daemon/web/live_view.h"
#include "daemon/web/pages.h"
#include "daemon/web/routes.h"
#include "daemon/web/status.h"
#include "model_rig.h"

namespace facility {
namespace {

using nlohmann::json;
using testing::at_s;
using testing::Rig;
using testing::watts;

// Four 4.4 kW cabinets on A/B PDUs (one with a rack sensor) and a site whose name needs
// escaping. Overload holds 2 s, failover 2 s.
const char* kSite = R"(
daemon: {stale_after_intervals: 3}
mqtt: {enabled: false}
history: {enabled: false}
defaults: {interval: 10s}
facility: {overload: {hold: 2s}, failover: {hold: 2s}, pue_windows: [1m, 5m]}
sites:
  - id: s
    name: "Hall <b>\"one\"</b> & co"
    rooms:
      - id: r
        name: Room R
        rows:
          - id: w2
            cabinets:
              - {id: hot, breaker: {amps: 20, volts: 220}, status: sold}
              - {id: risky, breaker: {amps: 20, volts: 220}, status: sold}
          - id: w1
            cabinets:
              - {id: calm, breaker: {amps: 20, volts: 220}, status: sold}
              - {id: empty, breaker: {amps: 20, volts: 220}, status: free}
              - {id: "odd.id", breaker: {amps: 20, volts: 220}, status: sold}
    devices:
      - {id: hot-a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: hot, feed: A}
      - {id: hot-b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: hot, feed: B}
      - {id: risky-a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: risky, feed: A}
      - {id: risky-b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4, cabinet: risky, feed: B}
      - {id: calm-a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 5, cabinet: calm, feed: A}
      - {id: calm-b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 6, cabinet: calm, feed: B}
      - {id: calm-env, kind: rack_sensor, profile: env, endpoint: "tcp://127.0.0.1:1", unit: 7, cabinet: calm}
      - {id: empty-a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 8, cabinet: empty, feed: A}
      - {id: empty-b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 9, cabinet: empty, feed: B}
      - {id: odd-a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:2", unit: 1, cabinet: "odd.id", feed: A}
      - {id: odd-b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:2", unit: 2, cabinet: "odd.id", feed: B}
)";

// hot: 4.4 kW x 0.97 (critical: >= 0.95); risky: 3.74 kW = 85 % (warning), more than one
// feed's derated 3.52 kW (failover risk); calm 50 %; empty 0 W; odd.id: no data (B silent).
void feed_all(Rig& rig, double t, bool odd_b = false) {
  const auto half = [&](const char* a, const char* b, double w) {
    rig.put(a, watts(w / 2), at_s(t));
    rig.put(b, watts(w / 2), at_s(t));
  };
  half("hot-a", "hot-b", 4268);
  half("risky-a", "risky-b", 3740);
  half("calm-a", "calm-b", 2200);
  half("empty-a", "empty-b", 0);
  rig.put("calm-env", {{"inlet_temperature", {24.5, "celsius"}}, {"humidity", {45, "percent"}}},
          at_s(t));
  rig.put("odd-a", watts(1000), at_s(t));
  if (odd_b) rig.put("odd-b", watts(1000), at_s(t));
}

std::shared_ptr<const FacilitySnapshot> settled(Rig& rig, double until = 6) {
  std::shared_ptr<const FacilitySnapshot> snap;
  for (double t = 0; t <= until; t += 1) {
    feed_all(rig, t);
    snap = rig.update(at_s(t));
  }
  return snap;
}

// The opening tag of the tile of `cabinet` and its text up to </a>.
std::string tile_of(const std::string& page, const std::string& cabinet) {
  const auto at = page.find("data-cabinet=\"" + cabinet + "\"");
  if (at == std::string::npos) return "";
  const auto start = page.rfind("<a ", at);
  return page.substr(start, page.find("</a>", at) - start);
}

TEST(WebPages, FloorMapTilesSayNumberLevelRiskAndNoDataDistinctFromZero) {
  Rig rig(kSite);
  const auto snap = settled(rig);
  const auto page = web::site_page(*snap, "s", {});
  ASSERT_TRUE(page);
  const std::string hot = tile_of(*page, "hot");
  EXPECT_NE(hot.find("data-level=\"critical\""), std::string::npos) << hot;
  EXPECT_NE(hot.find("data-alert=\"critical\""), std::string::npos) << hot;
  EXPECT_NE(hot.find(">97.0 %<"), std::string::npos) << hot;
  EXPECT_NE(hot.find("critical</span>"), std::string::npos) << "the level in words: " << hot;
  const std::string risky = tile_of(*page, "risky");
  EXPECT_NE(risky.find("data-level=\"warning\""), std::string::npos) << risky;
  EXPECT_NE(risky.find("data-failover-risk=\"1\""), std::string::npos) << risky;
  EXPECT_NE(risky.find("failover risk"), std::string::npos) << risky;
  EXPECT_EQ(tile_of(*page, "calm").find("failover risk"), std::string::npos);
  EXPECT_NE(tile_of(*page, "calm").find("24.5 \u00b0C"), std::string::npos) << "inlet shown";
  const std::string empty = tile_of(*page, "empty");
  EXPECT_NE(empty.find("data-level=\"ok\""), std::string::npos) << empty;
  EXPECT_NE(empty.find(">0.0 %<"), std::string::npos) << "0 W is a number: " << empty;
  const std::string odd = tile_of(*page, "odd.id");
  EXPECT_NE(odd.find("data-level=\"nodata\""), std::string::npos) << odd;
  EXPECT_NE(odd.find(">no data<"), std::string::npos) << odd;
  EXPECT_EQ(odd.find(" %<"), std::string::npos) << "no number for an unknown power: " << odd;
  EXPECT_NE(odd.find("href=\"/sites/s/cabinets/odd.id\""), std::string::npos) << odd;
  // Rows in their configured order, with totals that say when they are a lower bound.
  EXPECT_LT(page->find("data-row=\"w2\""), page->find("data-row=\"w1\""));
  EXPECT_NE(page->find("2 of 3 cabinets measured: at least"), std::string::npos);
  // Names are escaped, never markup.
  EXPECT_EQ(page->find("<b>\"one\"</b>"), std::string::npos);
  EXPECT_NE(page->find("Hall &lt;b&gt;&quot;one&quot;&lt;/b&gt; &amp; co"), std::string::npos);
}

TEST(WebPages, LevelIsTheBandNowAndSaysWhenItsAlertIsPendingOrHeld) {
  Rig rig(kSite);
  feed_all(rig, 0);
  auto snap = rig.update(at_s(0));
  const auto* hot = web::find_cabinet(testing::site_of(*snap, "s"), "hot");
  ASSERT_TRUE(hot);
  EXPECT_EQ(web::cabinet_level(*hot), web::Level::kCritical);
  EXPECT_EQ(web::level_text(*hot), "critical, alert pending") << "the 2 s hold has not passed";
  snap = settled(rig);
  hot = web::find_cabinet(testing::site_of(*snap, "s"), "hot");
  EXPECT_EQ(web::level_text(*hot), "critical");
  // Back under the warning threshold but inside the hysteresis: the alert is still on.
  for (double t = 7; t <= 8; t += 1) {
    feed_all(rig, t);
    rig.put("hot-a", watts(1750), at_s(t));
    rig.put("hot-b", watts(1750), at_s(t));  // 79.5 %: below 80 %, above 80 - 5 %
    snap = rig.update(at_s(t));
  }
  hot = web::find_cabinet(testing::site_of(*snap, "s"), "hot");
  EXPECT_EQ(web::cabinet_level(*hot), web::Level::kOk);
  EXPECT_EQ(web::level_text(*hot), "ok, critical alert until it clears");
}

TEST(WebPages, OverviewCardsAndAlertsNewestFirst) {
  Rig rig(kSite);
  const auto snap = settled(rig);
  const std::string page = web::overview_page(*snap, {});
  EXPECT_NE(page.find("data-site=\"s\""), std::string::npos);
  EXPECT_NE(page.find("1 critical"), std::string::npos) << "hot";
  // hot: failover risk too; risky: overload warning and failover risk; calm: nothing.
  EXPECT_NE(page.find("3 warning"), std::string::npos);
  EXPECT_NE(page.find("Active alerts (4)"), std::string::npos);
  EXPECT_NE(page.find("data-subject=\"hot\" data-severity=\"critical\""), std::string::npos);
  EXPECT_NE(page.find("href=\"/sites/s/cabinets/hot\""), std::string::npos);
  // Devices up: odd-b never answered.
  EXPECT_NE(page.find("10 / 11"), std::string::npos);
  // Headroom: 22 kW rated - measured is unknown while odd.id has no data.
  EXPECT_NE(page.find("<dt>Headroom</dt><dd><span class=\"nd\">no data</span>"), std::string::npos);
  // No resource from anywhere: nothing but relative links.
  EXPECT_FALSE(std::regex_search(page, std::regex("(src|href)=\"(https?:)?//")));
  EXPECT_NE(page.find("<script>"), std::string::npos) << "refreshes itself";
  web::PageOptions still;
  still.refresh_s = 0;
  EXPECT_EQ(web::overview_page(*snap, still).find("<script>"), std::string::npos);
  // A model that stopped: its last snapshot is said to be frozen, not shown as live.
  EXPECT_EQ(page.find("data-frozen"), std::string::npos);
  still.now = snap->computed_at + std::chrono::seconds(14);  // under three 5 s model steps
  EXPECT_EQ(web::overview_page(*snap, still).find("data-frozen"), std::string::npos);
  still.now = snap->computed_at + std::chrono::seconds(95);
  const std::string frozen = web::overview_page(*snap, still);
  EXPECT_NE(frozen.find("data-frozen"), std::string::npos);
  EXPECT_NE(frozen.find("is 95 s old"), std::string::npos);
}

TEST(WebPages, DeviceHealthListsEveryDeviceNotUpWithItsReasonAndEndpoint) {
  Rig rig(kSite);
  auto snap = settled(rig);
  std::string page = web::devices_page(*snap, "", false, {});
  EXPECT_NE(page.find("data-device=\"odd-b\" data-state=\"down\""), std::string::npos);
  EXPECT_NE(page.find("never (since start)"), std::string::npos);
  EXPECT_NE(page.find("tcp://127.0.0.1:2 unit 2"), std::string::npos);
  EXPECT_EQ(page.find("data-device=\"hot-a\""), std::string::npos) << "up devices are counted only";
  EXPECT_NE(page.find("Down, no data or partial (1)"), std::string::npos);
  // all=1: every device, each with the anchor the cabinet pages link to.
  const std::string all = web::devices_page(*snap, "", true, {});
  EXPECT_NE(all.find("<tr id=\"dev-hot-a\" data-device=\"hot-a\" data-state=\"up\""),
            std::string::npos);
  EXPECT_NE(all.find("Every device (11)"), std::string::npos);
  EXPECT_NE(web::cabinet_page(*snap, "s", "hot", {}, {})
                ->find("href=\"/devices?site=s&amp;all=1#dev-hot-a\""),
            std::string::npos);
  // calm-a goes silent: down once stale (3 x 10 s), with when it last gave data.
  for (double t = 7; t <= 40; t += 1) {
    feed_all(rig, t, true);
    rig.forget("calm-a");
    rig.put("calm-a", watts(1100), at_s(6));
    snap = rig.update(at_s(t));
  }
  page = web::devices_page(*snap, "", false, {});
  EXPECT_NE(page.find("data-device=\"calm-a\" data-state=\"down\""), std::string::npos) << page;
  EXPECT_NE(page.find("34 s ago"), std::string::npos);
  EXPECT_EQ(page.find("data-device=\"odd-b\""), std::string::npos) << "odd-b answers now";
  EXPECT_NE(tile_of(*web::site_page(*snap, "s", {}), "calm").find("no data"), std::string::npos);
}

TEST(WebPages, CabinetPageFeedsSensorsChartAndDevices) {
  Rig rig(kSite);
  const auto snap = settled(rig);
  std::vector<LiveView::Sample> h;
  for (int i = 0; i < 6; ++i) {
    h.push_back({at_s(6) - std::chrono::seconds(30 * (5 - i)),
                 i == 1 ? std::nullopt : std::optional<double>(2000 + 10 * i)});
  }
  const auto page = web::cabinet_page(*snap, "s", "calm", h, {});
  ASSERT_TRUE(page);
  EXPECT_NE(page->find("data-feed=\"A\""), std::string::npos);
  EXPECT_NE(page->find("3.52 kW"), std::string::npos) << "derated feed capacity 0.8 x 4.4 kW";
  EXPECT_NE(page->find("24.5 \u00b0C"), std::string::npos);
  EXPECT_NE(page->find(">calm-env</a>"), std::string::npos);
  EXPECT_FALSE(web::cabinet_page(*snap, "s", "nope", h, {}));
  EXPECT_FALSE(web::site_page(*snap, "nope", {}));
  // The chart: two lines (broken at the unknown sample), threshold lines at 80 and 95 %.
  const Cabinet& calm = *web::find_cabinet(testing::site_of(*snap, "s"), "calm")->cabinet;
  const std::string svg = web::power_chart_svg(h, at_s(6), calm);
  std::size_t lines = 0;
  for (auto p = svg.find("<polyline"); p != std::string::npos; p = svg.find("<polyline", p + 1))
    ++lines;
  EXPECT_EQ(lines, 1u) << "1 point, a gap, 4 points: the lone point is a circle";
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  EXPECT_NE(svg.find("warning 80 %"), std::string::npos);
  EXPECT_NE(svg.find("critical 95 %"), std::string::npos);
  EXPECT_NE(web::power_chart_svg({}, at_s(6), calm).find("no power measured yet"),
            std::string::npos);
  // Samples missing (a restart): the line breaks there too.
  const std::vector<LiveView::Sample> restart = {
      {at_s(0), 2000.0}, {at_s(30), 2010.0}, {at_s(300), 2020.0}, {at_s(330), 2030.0}};
  const std::string gap = web::power_chart_svg(restart, at_s(330), calm);
  std::size_t parts = 0;
  for (auto p = gap.find("<polyline"); p != std::string::npos; p = gap.find("<polyline", p + 1))
    ++parts;
  EXPECT_EQ(parts, 2u) << gap;
}

TEST(WebPages, UnknownPoweredStateAndUnmeasuredRowsAreNotCountedAsKnown) {
  Rig rig(kSite);
  std::shared_ptr<const FacilitySnapshot> snap;
  for (double t = 0; t <= 40; t += 1) {
    feed_all(rig, t, true);
    rig.forget("empty-a");
    rig.forget("empty-b");
    if (t > 5) {  // silent since 5 s: stale after 3 x 10 s
      rig.put("hot-a", watts(2134), at_s(5));
      rig.put("hot-b", watts(2134), at_s(5));
      rig.put("risky-a", watts(1870), at_s(5));
      rig.put("risky-b", watts(1870), at_s(5));
    }
    snap = rig.update(at_s(t));
  }
  // empty: both PDUs silent, powered state unknown; hot and risky: stale (row w2 unmeasured).
  EXPECT_NE(web::overview_page(*snap, {}).find("\u2265 2 powered (3 unknown)"), std::string::npos);
  const std::string page = *web::site_page(*snap, "s", {});
  const auto w2 = page.find("data-row=\"w2\"");
  ASSERT_NE(w2, std::string::npos);
  EXPECT_NE(page.find("<span class=\"nd\">no data</span> of 8.8 kW", w2), std::string::npos)
      << "no 0.0 kW for a row without a measured cabinet";
  EXPECT_EQ(page.find("0.0 kW of 8.8 kW"), std::string::npos);
}

TEST(WebPages, AShardShowsItsOwnCabinetsAndDevicesAndMarksTheOthers) {
  std::string yaml = kSite;
  yaml.replace(yaml.find("daemon: {"), 9, "daemon: {shard: \"0/2\", ");
  Rig rig(yaml);
  const auto snap = settled(rig);
  const Config& cfg = rig.config();
  const std::string page = *web::site_page(*snap, "s", {});
  const std::string devices = web::devices_page(*snap, "", true, {});
  int mine = 0, theirs = 0;
  for (const auto& c : cfg.sites[0].cabinets) {
    const std::string t = tile_of(page, c.id);
    if (owns_cabinet(cfg.daemon.shard, "s", c.id)) {
      ++mine;
      EXPECT_EQ(t.find("other shard"), std::string::npos) << c.id;
    } else {
      ++theirs;
      EXPECT_NE(t.find("data-level=\"other_shard\""), std::string::npos) << c.id;
      EXPECT_NE(t.find("other shard"), std::string::npos) << c.id;
    }
  }
  ASSERT_GT(mine, 0);
  ASSERT_GT(theirs, 0) << "the test site must have cabinets on both shards";
  for (const auto& d : cfg.sites[0].devices) {
    EXPECT_EQ(devices.find("data-device=\"" + d.id + "\"") != std::string::npos,
              owns_device(cfg.daemon.shard, d))
        << d.id;
  }
  EXPECT_NE(page.find("This daemon is shard 0/2"), std::string::npos);
  const json api = web::api_devices(*snap);
  std::set<std::string> listed;
  for (const auto& e : api["devices"]) listed.insert(e["device"]["device"].get<std::string>());
  for (const Device* d : cfg.all_devices())
    EXPECT_EQ(listed.count(d->id) == 1, owns_device(cfg.daemon.shard, *d)) << d->id;
}

TEST(WebPages, SitePageListsCoolingUnitsPerRoomAndTheUps) {
  Rig rig(R"(
daemon: {stale_after_intervals: 3}
mqtt: {enabled: false}
history: {enabled: false}
defaults: {interval: 10s}
sites:
  - id: s
    rooms:
      - id: r
        rows: [{id: w, cabinets: [{id: c, breaker: {amps: 20, volts: 220}, status: sold}]}]
      - id: q
        rows: [{id: v, cabinets: [{id: d, breaker: {amps: 20, volts: 220}, status: sold}]}]
    devices:
      - {id: c-a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c, feed: A}
      - {id: crah-1, kind: cooling, profile: crah, endpoint: "tcp://127.0.0.1:1", unit: 2, room: r, capacity_kw: 60}
      - {id: crah-2, kind: cooling, profile: crah, endpoint: "tcp://127.0.0.1:1", unit: 3, room: q}
      - {id: ups-1, kind: ups, profile: ups, endpoint: "tcp://127.0.0.1:1", unit: 4, room: r}
)");
  for (double t = 0; t <= 3; t += 1) {
    rig.put("c-a", watts(2000), at_s(t));
    rig.put("crah-1",
            {{"supply_temperature", {18.5, "celsius"}},
             {"return_temperature", {29, "celsius"}},
             {"running", {1, "none"}}},
            at_s(t));
    rig.put("ups-1",
            {{"active_power_l1", {10000, "W"}},
             {"active_power_l2", {10000, "W"}},
             {"active_power_l3", {10000, "W"}},
             {"load_ratio_l1", {40, "percent"}},
             {"load_ratio_l2", {55, "percent"}},
             {"load_ratio_l3", {45, "percent"}},
             {"battery_runtime", {20, "min"}},
             {"battery_charge", {100, "percent"}},
             {"output_source", {0, "none"}}},
            at_s(t), {}, {{"output_source", "normal"}});
  }
  const auto snap = rig.update(at_s(3));
  const std::string page = *web::site_page(*snap, "s", {});
  const auto room_r = page.find("data-room=\"r\""), room_q = page.find("data-room=\"q\"");
  const auto crah1 = page.find("data-cooling=\"crah-1\""),
             crah2 = page.find("data-cooling=\"crah-2\"");
  ASSERT_NE(crah1, std::string::npos);
  ASSERT_NE(crah2, std::string::npos);
  EXPECT_TRUE(room_r < crah1 && crah1 < room_q && room_q < crah2) << "each unit in its room";
  const std::string row1 = page.substr(crah1, page.find("</tr>", crah1) - crah1);
  EXPECT_NE(row1.find("running"), std::string::npos) << row1;
  EXPECT_NE(row1.find("18.5 \u00b0C"), std::string::npos) << row1;
  EXPECT_NE(row1.find("10.5 \u00b0C"), std::string::npos) << "delta T: " << row1;
  EXPECT_NE(row1.find("60.0 kW"), std::string::npos) << "capacity: " << row1;
  const std::string row2 = page.substr(crah2, page.find("</tr>", crah2) - crah2);
  EXPECT_NE(row2.find(">down<"), std::string::npos) << "never answered: " << row2;
  EXPECT_EQ(row2.find("\u00b0C"), std::string::npos) << "no temperature without data: " << row2;
  const auto ups = page.find("data-ups=\"ups-1\"");
  ASSERT_NE(ups, std::string::npos);
  const std::string urow = page.substr(ups, page.find("</tr>", ups) - ups);
  EXPECT_NE(urow.find("30.0 kW"), std::string::npos) << urow;
  EXPECT_NE(urow.find("55.0 %"), std::string::npos) << "the highest phase's load: " << urow;
  EXPECT_NE(urow.find("20 min"), std::string::npos) << urow;
  EXPECT_NE(urow.find("normal"), std::string::npos) << urow;
}

TEST(WebApi, SameTruthAsThePages) {
  Rig rig(kSite);
  const auto snap = settled(rig);
  const json sites = web::api_sites(*snap);
  ASSERT_EQ(sites["sites"].size(), 1u);
  const json& s = sites["sites"][0];
  EXPECT_EQ(s["alerts"]["critical"], 1);
  EXPECT_EQ(s["alerts"]["warning"], 3);
  EXPECT_EQ(s["devices"]["up"], 10);
  EXPECT_TRUE(s["capacity"]["headroom_w"].is_null());
  EXPECT_EQ(s["summary"]["site"], "s");
  const auto site = web::api_site(*snap, "s");
  ASSERT_TRUE(site);
  std::map<std::string, json> cabs;
  for (const auto& c : (*site)["cabinets"]) cabs[c["cabinet"]["cabinet"]] = c;
  EXPECT_EQ(cabs.at("hot")["level"], "critical");
  EXPECT_EQ(cabs.at("risky")["failover_risk"], true);
  EXPECT_EQ(cabs.at("calm")["failover_risk"], false);
  EXPECT_EQ(cabs.at("empty")["cabinet"]["power_w"], 0.0);
  EXPECT_TRUE(cabs.at("odd.id")["cabinet"]["power_w"].is_null());
  EXPECT_EQ(cabs.at("odd.id")["level"], "nodata");
  EXPECT_EQ((*site)["rooms"][0]["rows"][0]["id"], "w2");
  const auto cab = web::api_cabinet(*snap, "s", "hot", {{at_s(0), 4268.0}, {at_s(30), {}}});
  ASSERT_TRUE(cab);
  EXPECT_EQ((*cab)["history"]["points"].size(), 2u);
  EXPECT_TRUE((*cab)["history"]["points"][1]["power_w"].is_null());
  EXPECT_EQ((*cab)["devices"].size(), 2u);
  EXPECT_FALSE(web::api_cabinet(*snap, "s", "nope", {}));
  const json alerts = web::api_alerts(*snap);
  EXPECT_EQ(alerts["alerts"].size(), 4u);
  const json devices = web::api_devices(*snap);
  EXPECT_EQ(devices["counts"]["pdu"]["down"], 1);
  EXPECT_EQ(devices["counts"]["pdu"]["total"], 10);
  EXPECT_EQ(devices["devices"].size(), 11u);
}

// The API's alerts carry their subject's quality as the MQTT alert payloads do (one rule, in
// daemon/sinks/payloads.h), indexed over every site.
TEST(WebApi, AlertQualityIsTheSubjectsOwn) {
  Rig rig(kSite);
  const auto snap = settled(rig);
  const AlertSubjectQuality quality(*snap);
  const auto of = [&](const std::string& subject, std::optional<double> value) {
    AlertState a;
    a.site = "s";
    a.subject = subject;
    a.value = value;
    return std::string(quality.of(a));
  };
  EXPECT_EQ(of("hot", std::nullopt), "good") << "a fresh cabinet";
  EXPECT_EQ(of("odd.id", 1.0), "stale") << "a cabinet whose B feed never answered";
  EXPECT_EQ(of("odd-b", 1.0), "error") << "a device that never answered";
  EXPECT_EQ(of("s", 1.0), "stale") << "the site summary: its IT term is not fully covered";
  EXPECT_EQ(of("nothing", 1.0), "good") << "no entity: the alert's own value";
  EXPECT_EQ(of("nothing", std::nullopt), "stale");
  AlertState other;
  other.site = "elsewhere";
  other.subject = "hot";
  EXPECT_EQ(std::string(quality.of(other)), "stale") << "subjects are per site";
  const nlohmann::json alerts = web::api_alerts(*snap);  // the loop must not outlive it
  for (const auto& a : alerts["alerts"]) EXPECT_EQ(a["quality"], "good");
}

TEST(LiveViewTest, OneSampleEvery30sForAnHourAndRemovedCabinetsForgotten) {
  Rig rig(kSite);
  LiveView view;
  EXPECT_FALSE(view.latest());
  for (double t = 0; t <= 2 * 3600; t += 10) {
    feed_all(rig, t);
    view.take(rig.stateless(at_s(t)));
  }
  const auto h = view.cabinet_history("s", "hot");
  ASSERT_EQ(h.size(), LiveView::kSamples);
  EXPECT_EQ(h.back().t, at_s(7200));
  EXPECT_EQ(h.front().t, at_s(7200 - 30 * 119));
  ASSERT_TRUE(h.back().power_w);
  EXPECT_DOUBLE_EQ(*h.back().power_w, 4268);
  EXPECT_FALSE(view.cabinet_history("s", "odd.id").back().power_w) << "no data stays no data";
  EXPECT_TRUE(view.cabinet_history("s", "nope").empty());
  // A snapshot without the cabinet (a reload removed it): forgotten at the next sample.
  Rig other(testing::kThreePhaseSite);
  view.take(other.stateless(at_s(7230)));
  EXPECT_TRUE(view.cabinet_history("s", "hot").empty());
  EXPECT_EQ(view.cabinet_history("s", "g").size(), 1u);
}

TEST(WebRoutes, AnswersFromTheNewestSnapshotWithHeadersAnd404s) {
  Rig rig(kSite);
  auto view = std::make_shared<LiveView>();
  auto routes = std::make_shared<const web::Routes>(view, web::PageOptions{});
  const auto get = [&](const std::string& path, const std::string& query_site = "") {
    http::Request req;
    req.method = "GET";
    req.path = path;
    if (!query_site.empty()) req.query["site"] = query_site;
    auto reply = routes->handle(req);
    if (!reply) return http::Response::text(-1, "not routed");
    EXPECT_TRUE(std::holds_alternative<http::Deferred>(*reply)) << "never on the I/O thread";
    return std::get<http::Deferred>(*reply)();
  };
  const auto body = [](const http::Response& r) {
    std::string b;
    for (const auto& p : r.body) b += *p;
    return b;
  };
  const auto header = [](const http::Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return std::string();
  };
  EXPECT_EQ(get("/").status, 503) << "no snapshot yet";
  EXPECT_EQ(get("/metrics").status, -1) << "not the view's";
  EXPECT_EQ(get("/reports/s").status, -1);
  feed_all(rig, 0);
  view->take(rig.stateless(at_s(0)));
  const auto home = get("/");
  EXPECT_EQ(home.status, 200);
  EXPECT_EQ(home.content_type, "text/html; charset=utf-8");
  EXPECT_NE(header(home, "Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(header(home, "Cache-Control"), "no-store");
  EXPECT_EQ(get("/sites/s").status, 200);
  EXPECT_EQ(get("/sites/s/cabinets/odd.id").status, 200);
  EXPECT_EQ(get("/sites/s/cabinets/odd.id/more").status, 404);
  EXPECT_EQ(get("/sites/s/rooms").status, 404);
  EXPECT_EQ(get("/sites/s/cabinets/nope").status, 404);
  EXPECT_EQ(get("/sites/nope").status, 404);
  EXPECT_EQ(get("/devices").status, 200);
  EXPECT_EQ(get("/devices", "s").status, 200);
  EXPECT_EQ(get("/devices", "nope").status, 404);
  const auto api = get("/api/v1/sites/s/cabinets/odd.id");
  EXPECT_EQ(api.status, 200);
  EXPECT_EQ(api.content_type, "application/json");
  EXPECT_EQ(json::parse(body(api))["cabinet"]["cabinet"], "odd.id");
  EXPECT_EQ(get("/api/v1/sites/nope").status, 404);
  EXPECT_EQ(get("/api/v1/nothing").status, 404);
  EXPECT_EQ(json::parse(body(get("/api/v1/alerts")))["api"], "facilityd/v1");
  EXPECT_TRUE(header(api, "Content-Security-Policy").empty());
}

}  // namespace
}  // namespace facility
