// AES-256-GCM through OpenSSL EVP, with one cached cipher context per thread and direction.
#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace cairn::crypto {
namespace {

constexpr size_t kMaxUpdate = size_t{1} << 30;  // EVP lengths are int

// The cipher implementation, fetched once (an implicit fetch per init is measurably slower).
const EVP_CIPHER* Aes256Gcm() {
  static const EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    return c != nullptr ? static_cast<const EVP_CIPHER*>(c) : EVP_aes_256_gcm();
  }();
  return cipher;
}

// A per-thread context for one direction. The cipher is bound once; each operation only
// sets key and nonce. After any failure the context is reset and re-bound on next use.
class ThreadCtx {
 public:
  explicit ThreadCtx(int enc) : enc_(enc) {}
  ~ThreadCtx() { EVP_CIPHER_CTX_free(ctx_); }
  ThreadCtx(const ThreadCtx&) = delete;
  ThreadCtx& operator=(const ThreadCtx&) = delete;

  // Returns a context keyed with (key, nonce), or nullptr.
  EVP_CIPHER_CTX* Begin(const Key32& key, const uint8_t* nonce) {
    if (ctx_ == nullptr && (ctx_ = EVP_CIPHER_CTX_new()) == nullptr) return nullptr;
    if (!bound_) {
      if (EVP_CipherInit_ex2(ctx_, Aes256Gcm(), nullptr, nullptr, enc_, nullptr) != 1) {
        Fail();
        return nullptr;
      }
      bound_ = true;
    }
    if (EVP_CipherInit_ex2(ctx_, nullptr, key.b.data(), nonce, enc_, nullptr) != 1) {
      Fail();
      return nullptr;
    }
    return ctx_;
  }
  void Fail() {
    ERR_clear_error();
    if (ctx_ != nullptr) EVP_CIPHER_CTX_reset(ctx_);  // also wipes the key schedule
    bound_ = false;
  }

 private:
  int enc_;
  EVP_CIPHER_CTX* ctx_ = nullptr;
  bool bound_ = false;
};

ThreadCtx& EncCtx() {
  thread_local ThreadCtx ctx(1);
  return ctx;
}
ThreadCtx& DecCtx() {
  thread_local ThreadCtx ctx(0);
  return ctx;
}

bool UpdateAad(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad) {
  while (!aad.empty()) {
    size_t n = std::min(aad.size(), kMaxUpdate);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, nullptr, &outl, aad.data(), static_cast<int>(n)) != 1) return false;
    aad = aad.subspan(n);
  }
  return true;
}

bool UpdateData(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> in, uint8_t* out) {
  while (!in.empty()) {
    size_t n = std::min(in.size(), kMaxUpdate);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out, &outl, in.data(), static_cast<int>(n)) != 1 ||
        static_cast<size_t>(outl) != n) {
      return false;
    }
    in = in.subspan(n);
    out += n;
  }
  return true;
}

Status SealFailed() { return Status::IOError("AES-256-GCM encryption failed in OpenSSL"); }
Status AuthFailed() { return Status::Corruption("authentication failed"); }

// The GCM passes of one seal, `ctx` keyed for its nonce: the AAD, plain || tail encrypted into
// `ct`, the tag after them.
bool SealPasses(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                std::span<const uint8_t> tail, uint8_t* ct) {
  const size_t n = plain.size() + tail.size();
  int outl = 0;
  return UpdateAad(ctx, aad) && UpdateData(ctx, plain, ct) &&
         UpdateData(ctx, tail, ct + plain.size()) && EVP_EncryptFinal_ex(ctx, ct + n, &outl) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, ct + n) == 1;
}

// A sealed message taken apart before it is opened: nonce and tag copied out first, as an
// in-place decryption overwrites the ciphertext.
struct SealedParts {
  uint8_t nonce[kNonceSize];
  uint8_t tag[kTagSize];
  std::span<const uint8_t> ct;
};
Status SplitSealed(std::span<const uint8_t> sealed, std::span<uint8_t> plain, SealedParts& p) {
  if (sealed.size() < kSealOverhead) return AuthFailed();
  const size_t n = sealed.size() - kSealOverhead;
  if (plain.size() != n) return Status::Invalid("open: output buffer must be sealed size - 28");
  std::memcpy(p.nonce, sealed.data(), kNonceSize);
  std::memcpy(p.tag, sealed.data() + kNonceSize + n, kTagSize);
  p.ct = sealed.subspan(kNonceSize, n);
  return Status::Ok();
}

// The GCM passes of one open, `ctx` keyed for its nonce: the AAD, the ciphertext decrypted
// into `plain`, the tag checked.
bool OpenPasses(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad, SealedParts& p,
                std::span<uint8_t> plain) {
  int outl = 0;
  return UpdateAad(ctx, aad) && UpdateData(ctx, p.ct, plain.data()) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTagSize, p.tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, plain.data() + plain.size(), &outl) == 1;
}

// Seals the concatenation plain || tail (tail may be empty) into out.
Status DoSeal(const Key32& key, const uint8_t* nonce, std::span<const uint8_t> aad,
              std::span<const uint8_t> plain, std::span<const uint8_t> tail,
              std::span<uint8_t> out) {
  const size_t n = plain.size() + tail.size();
  if (out.size() != n + kSealOverhead) {
    return Status::Invalid("seal: output buffer must be plaintext size + 28");
  }
  if (nonce != out.data()) std::memcpy(out.data(), nonce, kNonceSize);
  ThreadCtx& tc = EncCtx();
  EVP_CIPHER_CTX* ctx = tc.Begin(key, out.data());
  if (ctx == nullptr) return SealFailed();
  if (!SealPasses(ctx, aad, plain, tail, out.data() + kNonceSize)) {
    tc.Fail();
    return SealFailed();
  }
  return Status::Ok();
}

}  // namespace

Status SealInto(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                std::span<uint8_t> out) {
  if (out.size() != plain.size() + kSealOverhead) {
    return Status::Invalid("seal: output buffer must be plaintext size + 28");
  }
  CAIRN_RETURN_IF_ERROR(RandomBytes(out.first(kNonceSize)));
  return DoSeal(key, out.data(), aad, plain, {}, out);
}

Status SealInto(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                std::span<const uint8_t> tail, std::span<uint8_t> out) {
  if (out.size() != plain.size() + tail.size() + kSealOverhead) {
    return Status::Invalid("seal: output buffer must be plaintext size + 28");
  }
  CAIRN_RETURN_IF_ERROR(RandomBytes(out.first(kNonceSize)));
  return DoSeal(key, out.data(), aad, plain, tail, out);
}

Status SealIntoWithNonce(const Key32& key, std::span<const uint8_t> aad,
                         std::span<const uint8_t> plain, std::span<const uint8_t> tail,
                         std::span<const uint8_t, kNonceSize> nonce, std::span<uint8_t> out) {
  return DoSeal(key, nonce.data(), aad, plain, tail, out);
}

Status Seal(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> plain,
            std::vector<uint8_t>& out) {
  out.resize(plain.size() + kSealOverhead);
  Status s = SealInto(key, aad, plain, out);
  if (!s.ok()) out.clear();
  return s;
}

Status OpenInto(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
                std::span<uint8_t> plain) {
  SealedParts parts;
  CAIRN_RETURN_IF_ERROR(SplitSealed(sealed, plain, parts));
  ThreadCtx& tc = DecCtx();
  EVP_CIPHER_CTX* ctx = tc.Begin(key, parts.nonce);
  if (ctx == nullptr) return Status::IOError("AES-256-GCM decryption failed in OpenSSL");
  if (!OpenPasses(ctx, aad, parts, plain)) {
    tc.Fail();
    Cleanse(plain.data(), plain.size());
    return AuthFailed();
  }
  return Status::Ok();
}

Status Open(const Key32& key, std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
            std::vector<uint8_t>& plain) {
  if (sealed.size() < kSealOverhead) {
    plain.clear();
    return AuthFailed();
  }
  plain.resize(sealed.size() - kSealOverhead);
  Status s = OpenInto(key, aad, sealed, plain);
  if (!s.ok()) plain.clear();
  return s;
}

AeadBatch::~AeadBatch() { EVP_CIPHER_CTX_free(ctx_); }

void AeadBatch::Fail() {
  ERR_clear_error();
  if (ctx_ != nullptr) EVP_CIPHER_CTX_reset(ctx_);  // wipes the key schedule too
  keyed_ = false;
}

EVP_CIPHER_CTX* AeadBatch::Start(const uint8_t* nonce) {
  if (ctx_ == nullptr && (ctx_ = EVP_CIPHER_CTX_new()) == nullptr) return nullptr;
  // Keyed once; after that only the nonce changes, which starts a new GCM message under the
  // key schedule already in the context.
  const bool ok =
      keyed_ ? EVP_CipherInit_ex2(ctx_, nullptr, nullptr, nonce, enc_, nullptr) == 1
             : EVP_CipherInit_ex2(ctx_, Aes256Gcm(), key_.b.data(), nonce, enc_, nullptr) == 1;
  if (!ok) {
    Fail();
    return nullptr;
  }
  keyed_ = true;
  return ctx_;
}

Status AeadBatch::Seal(std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                       std::span<const uint8_t, kNonceSize> nonce, std::span<uint8_t> out) {
  if (!enc_ || out.size() != plain.size() + kSealOverhead)
    return Status::Invalid("batch seal: an opening batch, or an output not plaintext size + 28");
  std::memcpy(out.data(), nonce.data(), kNonceSize);
  EVP_CIPHER_CTX* ctx = Start(out.data());
  if (ctx == nullptr) return SealFailed();
  if (!SealPasses(ctx, aad, plain, {}, out.data() + kNonceSize)) {
    Fail();
    return SealFailed();
  }
  return Status::Ok();
}

Status AeadBatch::Open(std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
                       std::span<uint8_t> plain) {
  if (enc_) return Status::Invalid("batch open: a sealing batch");
  SealedParts parts;
  CAIRN_RETURN_IF_ERROR(SplitSealed(sealed, plain, parts));
  EVP_CIPHER_CTX* ctx = Start(parts.nonce);
  if (ctx == nullptr) return Status::IOError("AES-256-GCM decryption failed in OpenSSL");
  if (!OpenPasses(ctx, aad, parts, plain)) {
    Fail();
    Cleanse(plain.data(), plain.size());
    return AuthFailed();
  }
  return Status::Ok();
}

namespace internal {
Status SealWithNonce(const Key32& key, std::span<const uint8_t, kNonceSize> nonce,
                     std::span<const uint8_t> aad, std::span<const uint8_t> plain,
                     std::span<uint8_t> out) {
  return DoSeal(key, nonce.data(), aad, plain, {}, out);
}
}  // namespace internal

}  // namespace cairn::crypto
