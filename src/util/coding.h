// Little-endian fixed-width encoding and a bounds-checked reader, for every binary record we
// persist (see docs/format.md).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace cairn {

inline void PutU8(std::string& dst, uint8_t v) { dst.push_back(static_cast<char>(v)); }
inline void PutU32(std::string& dst, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = static_cast<char>(v >> (8 * i));
  dst.append(b, 4);
}
inline void PutU64(std::string& dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (8 * i));
  dst.append(b, 8);
}
// Big-endian u64, for keys whose byte order must follow numeric order.
inline void PutU64BE(std::string& dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (8 * (7 - i)));
  dst.append(b, 8);
}
inline uint64_t DecodeU64BE(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline void PutBytes(std::string& dst, std::string_view s) {
  PutU32(dst, static_cast<uint32_t>(s.size()));
  dst.append(s);
}

// Reads fixed-width fields from a record; any read past the end marks the reader failed,
// so a truncated record is detected once, at the end, by ok().
class Reader {
 public:
  explicit Reader(std::string_view s) : p_(s) {}
  uint8_t U8() { return static_cast<uint8_t>(Take(1)[0]); }
  uint32_t U32() {
    auto s = Take(4);
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[i]);
    return v;
  }
  uint64_t U64() {
    auto s = Take(8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[i]);
    return v;
  }
  std::string_view Raw(size_t n) { return Take(n); }
  std::string_view Bytes() { return Take(U32()); }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && p_.empty(); }
  size_t remaining() const { return p_.size(); }

 private:
  std::string_view Take(size_t n) {
    static const char kZeros[8] = {};
    if (!ok_ || p_.size() < n) {
      ok_ = false;
      p_ = {};
      return n <= 8 ? std::string_view(kZeros, n) : std::string_view();
    }
    auto r = p_.substr(0, n);
    p_.remove_prefix(n);
    return r;
  }
  std::string_view p_;
  bool ok_ = true;
};

}  // namespace cairn
