// Secret key material: a 32-byte key that wipes itself when destroyed, and the OS/OpenSSL
// random generator (RAND_bytes) every key, salt and nonce in cairn comes from.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cairn/digest.h"
#include "cairn/status.h"

namespace cairn::crypto {

// Overwrites `n` bytes at `p` with zeros in a way the compiler may not elide (explicit_bzero).
void Cleanse(void* p, size_t n);
inline void Cleanse(std::string& s) {
  Cleanse(s.data(), s.size());
  s.clear();
}

// A 256-bit symmetric key. Copies are allowed (each copy wipes itself); comparison is constant
// time. Never log or print one.
struct Key32 {
  static constexpr size_t kSize = 32;
  std::array<uint8_t, kSize> b{};

  Key32() = default;
  Key32(const Key32&) = default;
  Key32& operator=(const Key32&) = default;
  ~Key32() { Cleanse(b.data(), b.size()); }

  std::span<const uint8_t, kSize> span() const { return std::span<const uint8_t, kSize>(b); }
  // The key as a Digest, for MakeHasher(algo, key) (BLAKE3 keyed mode / HMAC-SHA-256).
  Digest AsDigest() const {
    Digest d;
    d.bytes = b;
    return d;
  }
  static Key32 FromBytes(std::span<const uint8_t, kSize> raw) {
    Key32 k;
    for (size_t i = 0; i < kSize; i++) k.b[i] = raw[i];
    return k;
  }
  bool operator==(const Key32& o) const;  // CRYPTO_memcmp
};

// Fills `out` from the CSPRNG (OpenSSL's RAND_bytes). Draws of up to 256 bytes come from a
// per-thread buffer of its output, refilled 4 KiB at a time and after a fork. Fails only if
// OpenSSL cannot seed itself.
Status RandomBytes(std::span<uint8_t> out);
// A fresh random key.
Result<Key32> RandomKey();

}  // namespace cairn::crypto
