// Key32 wiping/comparison, the public SecureWipe (cairn/secure.h) and the CSPRNG, on OpenSSL.
#include "crypto/secret.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <atomic>
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

namespace {

Status DrawDirect(std::span<uint8_t> out) {
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

// Small draws (ids, salts, nonces: a vdisk write makes one per block) come from a per-thread
// buffer that RAND_bytes fills 4 KiB at a time: each RAND_bytes call costs about 1 us whatever
// its size (OpenSSL 3's DRBG dispatch), 5% of a server's time under random 4 KiB writes. Bytes
// are wiped from the buffer as they are handed out, so it only ever holds bytes not yet drawn
// (as the DRBG's own state determines them). A forked child must never hand out the bytes its
// parent will: fork bumps a generation number that makes every buffer refill first.
constexpr size_t kPoolSize = 4096, kPoolMaxDraw = 256;
std::atomic<uint64_t> fork_generation{0};

struct RandomPool {
  uint64_t generation = ~uint64_t{0};
  size_t pos = kPoolSize;  // bytes [pos, kPoolSize) not yet handed out
  std::array<uint8_t, kPoolSize> bytes;
  ~RandomPool() { Cleanse(bytes.data(), bytes.size()); }
};

void OnFork() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

Status RandomBytes(std::span<uint8_t> out) {
  static const bool forks_seen = pthread_atfork(nullptr, nullptr, OnFork) == 0;
  if (!forks_seen || out.size() > kPoolMaxDraw) return DrawDirect(out);
  thread_local RandomPool pool;
  const uint64_t gen = fork_generation.load(std::memory_order_relaxed);
  if (pool.generation != gen || kPoolSize - pool.pos < out.size()) {
    pool.pos = kPoolSize;  // left wiped if the refill fails
    CAIRN_RETURN_IF_ERROR(DrawDirect(pool.bytes));
    pool.generation = gen;
    pool.pos = 0;
  }
  std::memcpy(out.data(), pool.bytes.data() + pool.pos, out.size());
  Cleanse(pool.bytes.data() + pool.pos, out.size());
  pool.pos += out.size();
  return Status::Ok();
}

Result<Key32> RandomKey() {
  Key32 k;
  CAIRN_RETURN_IF_ERROR(DrawDirect(k.b));  // keys straight from the DRBG, never buffered
  return k;
}

}  // namespace cairn::crypto
