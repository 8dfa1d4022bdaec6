// gzip (RFC 1952) of a response body made of parts, where a part shared by many responses (the
// facility part of /metrics, the same for every scrape of one snapshot) is compressed once and
// each response only compresses what is its own.
//
// Every part but the last is raw deflate ending on a byte boundary without a final block
// (Z_SYNC_FLUSH), so the next part's deflate stream can follow it directly; the trailer's CRC-32
// of the whole text is combined from the parts' CRCs (crc32_combine) without reading them again.
// The result is one ordinary gzip member: any client that accepts "Content-Encoding: gzip"
// (Prometheus, curl --compressed, browsers) decompresses it.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace facility::gzip {

struct Part {
  std::string bytes;            // raw deflate
  std::uint32_t crc = 0;        // CRC-32 of the text
  std::uint64_t text_size = 0;  // bytes of text
};

// The 10-byte gzip header (no name, no time).
std::string header();
// Raw deflate of `text` at the fastest level; `last`: ends the deflate stream (the final block).
Part deflate(std::string_view text, bool last);
// The 8-byte trailer: CRC-32 and size (mod 2^32) of the parts' texts, in order.
std::string trailer(std::span<const Part* const> parts);
// header + deflate(text, true) + trailer: a whole body in one part.
std::string compress(std::string_view text);

// True if an Accept-Encoding request header accepts gzip ("gzip", "x-gzip" or "*", with a
// non-zero q).
bool accepted(std::string_view accept_encoding);

}  // namespace facility::gzip
