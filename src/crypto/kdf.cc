// HKDF-SHA-256 through OpenSSL's EVP_KDF, with the KDF fetched once and a context per thread.
#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace cairn::crypto {
namespace {

EVP_KDF* HkdfAlgo() {
  static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  return kdf;
}

struct ThreadKdf {
  EVP_KDF_CTX* ctx = nullptr;
  ~ThreadKdf() { EVP_KDF_CTX_free(ctx); }  // frees and wipes the stored key
};

// OSSL_PARAM wants non-const pointers; OpenSSL only reads these buffers.
void* Mut(const void* p) { return const_cast<void*>(p); }
const uint8_t kEmpty[1] = {0};

}  // namespace

Status HkdfRaw(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
               std::span<const uint8_t> info, std::span<uint8_t> out) {
  if (out.empty() || out.size() > 255 * 32) return Status::Invalid("HKDF: bad output length");
  thread_local ThreadKdf tk;
  if (tk.ctx == nullptr) {
    if (HkdfAlgo() == nullptr || (tk.ctx = EVP_KDF_CTX_new(HkdfAlgo())) == nullptr) {
      ERR_clear_error();
      return Status::IOError("HKDF unavailable in OpenSSL");
    }
  } else {
    EVP_KDF_CTX_reset(tk.ctx);
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, Mut(ikm.empty() ? kEmpty : ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, Mut(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, Mut(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  int rc = EVP_KDF_derive(tk.ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_reset(tk.ctx);  // do not keep the input key around between calls
  if (rc != 1) {
    ERR_clear_error();
    Cleanse(out.data(), out.size());
    return Status::IOError("HKDF derivation failed in OpenSSL");
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
