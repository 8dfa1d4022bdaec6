// `facilityd probe` option checks (the reads themselves are covered end to end in
// tests/integration/test_modbus_peers.py and test_modbus_faults.py).
#include <gtest/gtest.h>

#include <sstream>

#include "daemon/app/probe.h"

namespace facility {
namespace {

int probe(const std::string& endpoint, int unit, std::string* err) {
  ProbeOptions o;
  o.endpoint = endpoint;
  o.unit = unit;
  o.profile = "no-such-profile";
  o.profiles_dir = "/nonexistent";
  std::ostringstream out, e;
  const int rc = run_probe(o, out, e);
  *err = e.str();
  return rc;
}

TEST(Probe, UnitIdsFollowTheTransportLikeTheConfiguration) {
  std::string err;
  EXPECT_EQ(probe("rtu-over-tcp://127.0.0.1:1", 0, &err), 2);
  EXPECT_NE(err.find("broadcast"), std::string::npos) << err;
  EXPECT_EQ(probe("rtu:///dev/ttyS0", 250, &err), 2);
  EXPECT_NE(err.find("1..247"), std::string::npos) << err;
  EXPECT_EQ(probe("tcp://127.0.0.1:1", 256, &err), 2);
  EXPECT_NE(err.find("0..255"), std::string::npos) << err;
  // 255 is fine on Modbus TCP: the probe gets as far as looking for the profile.
  EXPECT_EQ(probe("tcp://127.0.0.1:1", 255, &err), 2);
  EXPECT_NE(err.find("no profile \"no-such-profile\""), std::string::npos) << err;
}

}  // namespace
}  // namespace facility
