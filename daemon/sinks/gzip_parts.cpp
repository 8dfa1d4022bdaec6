#include "daemon/sinks/gzip_parts.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <vector>

namespace facility::gzip {
namespace {

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string header() {
  // ID1 ID2, CM = deflate, FLG = 0, MTIME = 0, XFL = 4 (fastest), OS = 3 (Unix).
  return std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03", 10);
}

Part deflate(std::string_view text, bool last) {
  z_stream zs{};
  // Raw deflate (negative window bits): the gzip header and trailer are ours.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
  Part p;
  p.text_size = text.size();
  p.crc = static_cast<std::uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(text.data()), text.size()));
  // The bound covers a final block; a sync flush adds at most 5 bytes more, and a few spare.
  p.bytes.resize(deflateBound(&zs, static_cast<uLong>(text.size())) + 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));  // NOLINT: zlib API
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(p.bytes.data());
  zs.avail_out = static_cast<uInt>(p.bytes.size());
  const int rc = ::deflate(&zs, last ? Z_FINISH : Z_SYNC_FLUSH);
  const bool done = last ? rc == Z_STREAM_END : rc == Z_OK && zs.avail_in == 0 && zs.avail_out > 0;
  p.bytes.resize(zs.total_out);
  deflateEnd(&zs);
  if (!done) throw std::runtime_error("zlib: deflate did not complete");
  return p;
}

std::string trailer(std::span<const Part* const> parts) {
  std::uint32_t crc = 0;
  std::uint64_t size = 0;
  for (const Part* p : parts) {
    crc = static_cast<std::uint32_t>(
        size == 0 ? p->crc : crc32_combine64(crc, p->crc, static_cast<z_off64_t>(p->text_size)));
    size += p->text_size;
  }
  std::string out;
  put_le32(out, crc);
  put_le32(out, static_cast<std::uint32_t>(size & 0xffffffffU));
  return out;
}

std::string compress(std::string_view text) {
  const Part p = deflate(text, true);
  const Part* parts[] = {&p};
  return header() + p.bytes + trailer(parts);
}

bool accepted(std::string_view accept_encoding) {
  // An explicit gzip entry decides; otherwise "*" does (RFC 9110, 12.5.3).
  std::optional<double> gzip_q, star_q;
  std::string_view rest = accept_encoding;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    std::string_view coding = item;
    double q = 1;
    if (const auto semi = item.find(';'); semi != std::string_view::npos) {
      coding = item.substr(0, semi);
      const std::string_view param = trim(item.substr(semi + 1));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        const auto* end = param.data() + param.size();
        if (std::from_chars(param.data() + 2, end, q).ptr != end) q = 0;  // unreadable: no
      }
    }
    coding = trim(coding);
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) gzip_q = q;
    if (coding == "*") star_q = q;
  }
  if (gzip_q) return *gzip_q > 0;
  return star_q && *star_q > 0;
}

}  // namespace facility::gzip
