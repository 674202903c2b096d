// HKDF-SHA-256 (RFC 5869) over HMAC-SHA-256 (RFC 2104) over OpenSSL's SHA-256 block functions.
#include "crypto/kdf.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <vector>

// SHA256_Init/Update/Final are deprecated in OpenSSL 3.0 in favour of EVP, but kept (in every
// 3.x) and dispatched to the same SHA-NI / AVX2 code; see Hmac below for why they are used.
// (A pragma, not OPENSSL_SUPPRESS_DEPRECATED: in the unity build another file may have
// included OpenSSL's headers first; popped at the end of the file.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace cairn::crypto {
namespace {

constexpr size_t kBlock = 64;  // SHA-256's block size

// SHA-256 of the concatenation of `parts` into out[32] (FIPS 180-4), with the state on the
// stack and wiped after.
void Sha256Of(std::initializer_list<std::span<const uint8_t>> parts, uint8_t* out) {
  SHA256_CTX c;
  SHA256_Init(&c);
  for (const auto& p : parts)
    if (!p.empty()) SHA256_Update(&c, p.data(), p.size());
  SHA256_Final(out, &c);
  Cleanse(&c, sizeof c);
}

// HMAC-SHA-256 under `key` of the concatenation of `parts`, into out[32]:
// H((K ^ opad) || H((K ^ ipad) || message)), K the key padded to a block (hashed first when
// longer than one). Written over SHA-256's block functions because each chunk key is an HKDF
// (two HMACs, nine SHA-256 blocks) and every 4 KiB vdisk block read or written derives one:
// OpenSSL's EVP_MAC set up its key through the provider layer on every call (2.6 us), and an
// EVP digest context per HMAC step still cost 0.94 us per chunk key, against 0.6 us here.
void Hmac(std::span<const uint8_t> key, std::initializer_list<std::span<const uint8_t>> parts,
          uint8_t* out) {
  uint8_t k[kBlock] = {}, pad[kBlock], inner[32];
  if (key.size() > kBlock)
    Sha256Of({key}, k);
  else if (!key.empty())
    std::memcpy(k, key.data(), key.size());
  for (size_t i = 0; i < kBlock; i++) pad[i] = k[i] ^ 0x36;
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, pad, kBlock);
  for (const auto& p : parts)
    if (!p.empty()) SHA256_Update(&c, p.data(), p.size());
  SHA256_Final(inner, &c);
  for (size_t i = 0; i < kBlock; i++) pad[i] = k[i] ^ 0x5c;
  Sha256Of({std::span<const uint8_t>(pad, kBlock), inner}, out);
  Cleanse(&c, sizeof c);
  Cleanse(k, sizeof k);
  Cleanse(pad, sizeof pad);
  Cleanse(inner, sizeof inner);
}

}  // namespace

// RFC 5869: PRK = HMAC(salt, IKM); T(i) = HMAC(PRK, T(i-1) || info || i); OKM = T(1) || ...
Status HkdfRaw(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
               std::span<const uint8_t> info, std::span<uint8_t> out) {
  if (out.empty() || out.size() > 255 * 32) return Status::Invalid("HKDF: bad output length");
  static const uint8_t kZeroSalt[32] = {};
  uint8_t prk[32], t[32];
  Hmac(salt.empty() ? std::span<const uint8_t>(kZeroSalt) : salt, {ikm}, prk);
  size_t done = 0;
  for (uint8_t i = 1; done < out.size(); i++) {
    const uint8_t counter[1] = {i};
    Hmac(prk, {std::span<const uint8_t>(t, i == 1 ? 0 : 32), info, counter}, t);
    const size_t n = std::min<size_t>(32, out.size() - done);
    std::memcpy(out.data() + done, t, n);
    done += n;
  }
  Cleanse(prk, sizeof prk);
  Cleanse(t, sizeof t);
  return Status::Ok();
}

Key32 Hkdf(const Key32& ikm, std::span<const uint8_t> salt, std::string_view info_label,
           std::span<const uint8_t> info_extra) {
  // info on the stack when it fits (every label and extra cairn uses does), else on the heap;
  // wiped after use either way.
  uint8_t stack[160];
  std::vector<uint8_t> heap;
  const size_t n = info_label.size() + 1 + info_extra.size();
  uint8_t* info = stack;
  if (n > sizeof stack) {
    heap.resize(n);
    info = heap.data();
  }
  std::memcpy(info, info_label.data(), info_label.size());
  info[info_label.size()] = 0;
  if (!info_extra.empty())
    std::memcpy(info + info_label.size() + 1, info_extra.data(), info_extra.size());
  Key32 k;
  Status s = HkdfRaw(ikm.b, salt, {info, n}, k.b);
  Cleanse(info, n);
  if (!s.ok()) {  // only a bad output length, and 32 bytes is not one
    std::fprintf(stderr, "cairn: fatal: %s\n", s.message().c_str());
    std::abort();
  }
  return k;
}

}  // namespace cairn::crypto

#pragma GCC diagnostic pop
