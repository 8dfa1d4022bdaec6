// Decompresses a gzip body with zlib (the test side of daemon/sinks/gzip_parts.h).
#pragma once

#include <zlib.h>

#include <optional>
#include <string>
#include <string_view>

namespace facility::testing {

// The text of a whole gzip member, or nullopt if zlib rejects it (a bad CRC, size or stream) or
// it does not end exactly where the input does.
inline std::optional<std::string> gunzip(std::string_view gz) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + 15) != Z_OK) return std::nullopt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  const bool ok = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace facility::testing
