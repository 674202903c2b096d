// HKDF-SHA-256 (RFC 5869) over HMAC-SHA-256 (RFC 2104) over OpenSSL's SHA-256, with the digest
// fetched once and a context per thread.
#include "crypto/kdf.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace cairn::crypto {
namespace {

// HMAC-SHA-256 (RFC 2104) written over OpenSSL's SHA-256 (EVP_MD fetched once, one digest
// context per thread). OpenSSL's own HMAC (EVP_MAC) set up its key schedule through the
// provider layer on every call: 2.6 us per chunk key, twice an AES-GCM seal of a 4 KiB block,
// where the two digests of each HMAC take 0.25 us.
const EVP_MD* Sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct ThreadDigest {
  EVP_MD_CTX* ctx = nullptr;
  ~ThreadDigest() { EVP_MD_CTX_free(ctx); }  // frees and wipes the state
};

EVP_MD_CTX* DigestCtx() {
  thread_local ThreadDigest td;
  if (td.ctx == nullptr) td.ctx = EVP_MD_CTX_new();
  return td.ctx;
}

constexpr size_t kBlock = 64;  // SHA-256's block size

bool Sha256Of(EVP_MD_CTX* ctx, std::initializer_list<std::span<const uint8_t>> parts,
              uint8_t* out) {
  if (EVP_DigestInit_ex2(ctx, Sha256(), nullptr) != 1) return false;
  for (const auto& p : parts)
    if (!p.empty() && EVP_DigestUpdate(ctx, p.data(), p.size()) != 1) return false;
  unsigned n = 0;
  return EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32;
}

// HMAC-SHA-256 under `key` of the concatenation of `parts`, into out[32]:
// H((K ^ opad) || H((K ^ ipad) || message)), K the key padded to a block (hashed first when
// longer than one).
bool Hmac(std::span<const uint8_t> key, std::initializer_list<std::span<const uint8_t>> parts,
          uint8_t* out) {
  EVP_MD_CTX* ctx = DigestCtx();
  if (ctx == nullptr || Sha256() == nullptr) return false;
  uint8_t k[kBlock] = {}, pad[kBlock], inner[32];
  bool ok = true;
  if (key.size() > kBlock)
    ok = Sha256Of(ctx, {key}, k);
  else if (!key.empty())
    std::memcpy(k, key.data(), key.size());
  for (size_t i = 0; i < kBlock; i++) pad[i] = k[i] ^ 0x36;
  if (ok && EVP_DigestInit_ex2(ctx, Sha256(), nullptr) == 1 &&
      EVP_DigestUpdate(ctx, pad, kBlock) == 1) {
    for (const auto& p : parts)
      if (ok && !p.empty()) ok = EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
    unsigned n = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, inner, &n) == 1 && n == 32;
  } else {
    ok = false;
  }
  for (size_t i = 0; i < kBlock; i++) pad[i] = k[i] ^ 0x5c;
  ok = ok && Sha256Of(ctx, {std::span<const uint8_t>(pad, kBlock), inner}, out);
  Cleanse(k, sizeof k);
  Cleanse(pad, sizeof pad);
  Cleanse(inner, sizeof inner);
  return ok;
}

}  // namespace

// RFC 5869: PRK = HMAC(salt, IKM); T(i) = HMAC(PRK, T(i-1) || info || i); OKM = T(1) || ...
Status HkdfRaw(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
               std::span<const uint8_t> info, std::span<uint8_t> out) {
  if (out.empty() || out.size() > 255 * 32) return Status::Invalid("HKDF: bad output length");
  static const uint8_t kZeroSalt[32] = {};
  uint8_t prk[32], t[32];
  bool ok = Hmac(salt.empty() ? std::span<const uint8_t>(kZeroSalt) : salt, {ikm}, prk);
  size_t done = 0;
  for (uint8_t i = 1; ok && done < out.size(); i++) {
    const uint8_t counter[1] = {i};
    ok = Hmac(prk, {std::span<const uint8_t>(t, i == 1 ? 0 : 32), info, counter}, t);
    const size_t n = std::min<size_t>(32, out.size() - done);
    if (ok) std::memcpy(out.data() + done, t, n);
    done += n;
  }
  Cleanse(prk, sizeof prk);
  Cleanse(t, sizeof t);
  // The context keeps the last digest's state: start a fresh one, so that no key stays behind.
  if (EVP_MD_CTX* ctx = DigestCtx(); ctx && Sha256())
    (void)EVP_DigestInit_ex2(ctx, Sha256(), nullptr);
  if (!ok) {
    ERR_clear_error();
    Cleanse(out.data(), out.size());
    return Status::IOError("HKDF (HMAC-SHA-256) failed in OpenSSL");
  }
  return Status::Ok();
}

Key32 Hkdf(const Key32& ikm, std::span<const uint8_t> salt, std::string_view info_label,
           std::span<const uint8_t> info_extra) {
  // Small enough for the stack in practice; a vector keeps it simple and is wiped after use.
  std::vector<uint8_t> info;
  info.reserve(info_label.size() + 1 + info_extra.size());
  info.insert(info.end(), info_label.begin(), info_label.end());
  info.push_back(0);
  info.insert(info.end(), info_extra.begin(), info_extra.end());
  Key32 k;
  Status s = HkdfRaw(ikm.b, salt, info, k.b);
  Cleanse(info.data(), info.size());
  if (!s.ok()) {
    std::fprintf(stderr, "cairn: fatal: %s\n", s.message().c_str());
    std::abort();
  }
  return k;
}

}  // namespace cairn::crypto
