// Digest: a 32-byte hash value (chunk id, manifest id, content hash), with hex rendering.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cairn {

struct Digest {
  static constexpr size_t kSize = 32;
  std::array<uint8_t, kSize> bytes{};

  std::string Hex() const;
  std::string ShortHex() const { return Hex().substr(0, 16); }
  std::string_view View() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static std::optional<Digest> FromHex(std::string_view hex);
  static Digest FromBytes(std::string_view raw);  // raw.size() must be kSize
  auto operator<=>(const Digest&) const = default;
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

}  // namespace cairn
