// Key32 wiping/comparison, the public SecureWipe (cairn/secure.h) and the CSPRNG, on OpenSSL.
#include "crypto/secret.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <string.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "cairn/secure.h"

namespace cairn::crypto {

// glibc's explicit_bzero: its optimised memset behind a compiler barrier, so never elided; a
// restore wipes every plaintext chunk it releases, and OPENSSL_cleanse's byte loop cost ~9% of
// a restore's CPU.
void Cleanse(void* p, size_t n) {
  if (n != 0) ::explicit_bzero(p, n);
}

}  // namespace cairn::crypto

namespace cairn {

void SecureWipe(void* p, size_t n) { crypto::Cleanse(p, n); }

void SecureWipe(std::string& s) {
  // Bytes between size() and capacity() may hold an earlier, longer value: wipe them too.
  s.resize(s.capacity());
  crypto::Cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace cairn

namespace cairn::crypto {

bool Key32::operator==(const Key32& o) const {
  return CRYPTO_memcmp(b.data(), o.b.data(), kSize) == 0;
}

Status RandomBytes(std::span<uint8_t> out) {
  while (!out.empty()) {
    size_t n = std::min<size_t>(out.size(), INT_MAX / 2);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      ERR_clear_error();
      return Status::IOError("random number generator failed (OpenSSL RAND_bytes)");
    }
    out = out.subspan(n);
  }
  return Status::Ok();
}

Result<Key32> RandomKey() {
  Key32 k;
  CAIRN_RETURN_IF_ERROR(RandomBytes(k.b));
  return k;
}

}  // namespace cairn::crypto
