// Hex rendering and parsing of digests.
#include "cairn/digest.h"

#include <cassert>

namespace cairn {

std::string Digest::Hex() const {
  static const char* kHex = "0123456789abcdef";
  std::string s(kSize * 2, '0');
  for (size_t i = 0; i < kSize; i++) {
    s[2 * i] = kHex[bytes[i] >> 4];
    s[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return s;
}

static int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != kSize * 2) return std::nullopt;
  Digest d;
  for (size_t i = 0; i < kSize; i++) {
    int hi = HexVal(hex[2 * i]), lo = HexVal(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

Digest Digest::FromBytes(std::string_view raw) {
  assert(raw.size() == kSize);
  Digest d;
  std::memcpy(d.bytes.data(), raw.data(), kSize);
  return d;
}

}  // namespace cairn
