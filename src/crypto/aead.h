// AES-256-GCM authenticated encryption (OpenSSL EVP), the AEAD that seals every chunk,
// manifest and key file. Sealed layout: nonce (12, random) || ciphertext || tag (16).
//
// Nonces are random 96-bit values. That is safe for up to ~2^32 seals under one key; chunk
// keys are unique per chunk (see keys.h), so only long-lived keys such as the metadata key
// ever approach that, and they stay far below it.
//
// Speed: each thread keeps its own EVP_CIPHER_CTX (one per direction), so a seal or open costs
// a key schedule plus the bulk AES-GCM work; OpenSSL's AES-NI/VAES code does the rest. The
// expanded key of the last operation stays in that thread's context until the next one (or
// until an error or thread exit resets it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cairn/status.h"
#include "crypto/secret.h"

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX

namespace cairn::crypto {

inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kSealOverhead = kNonceSize + kTagSize;  // 28

// out = nonce || ciphertext || tag (resized to plain.size() + kSealOverhead); `out` must not
// be the vector `plain` points into.
Status Seal(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
            std::vector<uint8_t>& out);
// Verifies and decrypts `sealed`. Any mismatch (wrong key or aad, altered or truncated
// input) gives Corruption("authentication failed") and leaves `plain` empty.
Status Open(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
            std::vector<uint8_t>& plain);

// Into a caller buffer: out.size() must equal plain.size() + kSealOverhead; out must not
// overlap plain.
Status SealInto(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                std::span<uint8_t> out);
// The same for the plaintext plain || tail, encrypted in one pass without joining the two in a
// buffer first: out.size() must equal plain.size() + tail.size() + kSealOverhead.
Status SealInto(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                std::span<const uint8_t> tail, std::span<uint8_t> out);
// SealInto(key, aad, plain, tail, out) with a nonce the caller drew at random (fresh: never
// used before with `key`), for callers that draw the random bytes of many seals at once.
Status SealIntoWithNonce(const Key32& key, std::span<const uint8_t> aad,
                         std::span<const uint8_t> plain, std::span<const uint8_t> tail,
                         std::span<const uint8_t, kNonceSize> nonce, std::span<uint8_t> out);
// plain.size() must equal sealed.size() - kSealOverhead. `plain` may be exactly
// sealed.subspan(kNonceSize) (in-place decryption); any other overlap is not allowed. On
// failure `plain` is zeroed (unauthenticated plaintext is never handed out).
Status OpenInto(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
                std::span<uint8_t> plain);

// Many seals, or many opens, under one key with one key schedule: the slots of a vdisk block
// group (StoreCrypto::SealGroupInto), whose key seals nothing else. Seal and Open give exactly
// what SealIntoWithNonce(key, aad, plain, {}, nonce, out) and OpenInto(key, aad, sealed,
// plain) give, without expanding the key and its GHASH table again for every message (about
// as costly as sealing a 4 KiB block). Not thread-safe; the context, and so the expanded key,
// is freed (OpenSSL wipes it) with the batch.
class AeadBatch {
 public:
  AeadBatch(const Key32& key, bool encrypt) : key_(key), enc_(encrypt ? 1 : 0) {}
  ~AeadBatch();
  AeadBatch(const AeadBatch&) = delete;
  AeadBatch& operator=(const AeadBatch&) = delete;
  Status Seal(std::span<const uint8_t> aad, std::span<const uint8_t> plain,
              std::span<const uint8_t, kNonceSize> nonce, std::span<uint8_t> out);
  Status Open(std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
              std::span<uint8_t> plain);

 private:
  // The context set for a message with `nonce` (keyed at first use or after a failure).
  evp_cipher_ctx_st* Start(const uint8_t* nonce);
  void Fail();
  Key32 key_;
  int enc_;
  evp_cipher_ctx_st* ctx_ = nullptr;
  bool keyed_ = false;
};

namespace internal {
// Test hook for known-answer vectors: seals with a caller-chosen nonce. Never use a fixed nonce
// in real code: reusing a (key, nonce) pair breaks GCM completely.
Status SealWithNonce(const Key32& key, std::span<const uint8_t, kNonceSize> nonce,
                     std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                     std::span<uint8_t> out);
}  // namespace internal

}  // namespace cairn::crypto
