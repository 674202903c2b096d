// Hashers: BLAKE3 (official C sources, SIMD dispatch) and SHA-256 (OpenSSL, SHA-NI), each
// plain or keyed (BLAKE3 keyed mode / HMAC-SHA-256). The algorithm is chosen per store at init.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cairn/digest.h"
#include "cairn/status.h"

namespace cairn {

enum class HashAlgo : uint8_t { kBlake3 = 1, kSha256 = 2 };

std::string_view HashAlgoName(HashAlgo a);
Result<HashAlgo> ParseHashAlgo(std::string_view name);

// Incremental hashing of a stream (whole-object content hash).
class StreamHasher {
 public:
  virtual ~StreamHasher() = default;
  virtual void Update(std::span<const uint8_t> data) = 0;
  virtual Digest Finish() = 0;
};

class Blake3Tree;

// A stateless, thread-safe hash function producing 32-byte digests.
class Hasher {
 public:
  virtual ~Hasher() = default;
  virtual Digest Hash(std::span<const uint8_t> data) const = 0;
  virtual std::unique_ptr<StreamHasher> Stream() const = 0;
  // The same hash built from 1 MiB blocks hashed apart (blake3_tree.h), or null when the
  // algorithm is not a tree (SHA-256).
  virtual std::unique_ptr<Blake3Tree> Tree() const;
  // outs[i] = Hash(inputs[i]) for i below the smaller of the two sizes (the contents may
  // differ in length). BLAKE3 hashes contents of 2^k whole KiB, 2 to 64 KiB, together
  // (Blake3Tree::HashMany: all SIMD lanes busy, where one 4 KiB block alone fills a quarter of
  // AVX-512's); the default hashes one by one.
  virtual void HashMany(std::span<const std::span<const uint8_t>> inputs,
                        std::span<Digest> outs) const;
  virtual HashAlgo algo() const = 0;
  virtual bool keyed() const = 0;

  Digest Hash(std::string_view s) const {
    return Hash({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }
};

// key: nullopt for the plain hash, 32 bytes for the keyed hash.
std::unique_ptr<Hasher> MakeHasher(HashAlgo algo, std::optional<Digest> key = std::nullopt);

// BLAKE3 extendable output in derive-key mode: fills `out` from (context, material).
void Blake3DeriveKey(std::string_view context, std::span<const uint8_t> material,
                     std::span<uint8_t> out);

}  // namespace cairn
