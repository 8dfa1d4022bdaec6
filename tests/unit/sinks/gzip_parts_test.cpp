// gzip of a body in parts (daemon/sinks/gzip_parts.h): what a shared part and a per-response
// part compress to is one gzip member that zlib, as a client, accepts and restores.
#include "daemon/sinks/gzip_parts.h"

#include <gtest/gtest.h>

#include <string>

#include "inflate.h"

namespace facility {
namespace {

using testing::gunzip;

std::string sample_text(int lines) {
  std::string t;
  for (int i = 0; i < lines; ++i) {
    t += "facility_cabinet_power_watts{site=\"m\",cabinet=\"C" + std::to_string(i) + "\"} " +
         std::to_string(1000 + (i * 37) % 900) + "\n";
  }
  return t;
}

TEST(Gzip, AWholeBodyRoundTripsAndIsSmaller) {
  const std::string text = sample_text(5000);
  const std::string gz = gzip::compress(text);
  EXPECT_EQ(gz.substr(0, 3), std::string("\x1f\x8b\x08", 3)) << "gzip magic, deflate";
  EXPECT_LT(gz.size(), text.size() / 4);
  EXPECT_EQ(gunzip(gz), text);
  EXPECT_EQ(gunzip(gzip::compress("")), "");
}

TEST(Gzip, ASharedPartAndAResponsePartMakeOneMember) {
  const std::string shared = sample_text(3000);
  const std::string own = "process_cpu_seconds_total 12.5\nfacility_up 1\n";
  const gzip::Part a = gzip::deflate(shared, false);
  const gzip::Part b = gzip::deflate(own, true);
  const gzip::Part* parts[] = {&a, &b};
  const std::string body = gzip::header() + a.bytes + b.bytes + gzip::trailer(parts);
  EXPECT_EQ(gunzip(body), shared + own);

  // The trailer is checked: the CRC of the last part alone, or a wrong size, is rejected.
  const gzip::Part* only_last[] = {&b};
  EXPECT_EQ(gunzip(gzip::header() + a.bytes + b.bytes + gzip::trailer(only_last)), std::nullopt);
  // A shared part that ended its stream (a final block) would end the member early.
  const gzip::Part final_a = gzip::deflate(shared, true);
  EXPECT_EQ(gunzip(gzip::header() + final_a.bytes + b.bytes + gzip::trailer(parts)), std::nullopt);
}

TEST(Gzip, AcceptEncodingIsReadAsRfc9110Says) {
  EXPECT_TRUE(gzip::accepted("gzip"));
  EXPECT_TRUE(gzip::accepted("gzip, deflate, br"));
  EXPECT_TRUE(gzip::accepted("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(gzip::accepted("x-gzip"));
  EXPECT_TRUE(gzip::accepted("*"));
  EXPECT_TRUE(gzip::accepted("identity, *;q=0.1"));
  EXPECT_FALSE(gzip::accepted(""));
  EXPECT_FALSE(gzip::accepted("identity"));
  EXPECT_FALSE(gzip::accepted("deflate, br"));
  EXPECT_FALSE(gzip::accepted("gzip;q=0"));
  EXPECT_FALSE(gzip::accepted("gzip; q=0.000"));
  EXPECT_FALSE(gzip::accepted("*;q=0"));
  EXPECT_FALSE(gzip::accepted("gzip;q=0, *")) << "the explicit entry decides";
  EXPECT_FALSE(gzip::accepted("gzip;q=x")) << "an unreadable q is no acceptance";
  EXPECT_FALSE(gzip::accepted("gzipped"));
}

}  // namespace
}  // namespace facility
