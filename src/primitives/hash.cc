// BLAKE3 and SHA-256 hashers behind one interface.
#include "primitives/hash.h"

#include <blake3.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <stdexcept>

#include "primitives/blake3_tree.h"

namespace cairn {

std::string_view HashAlgoName(HashAlgo a) { return a == HashAlgo::kSha256 ? "sha256" : "blake3"; }

Result<HashAlgo> ParseHashAlgo(std::string_view name) {
  if (name == "blake3") return HashAlgo::kBlake3;
  if (name == "sha256") return HashAlgo::kSha256;
  return Status::Invalid("unknown hash '" + std::string(name) + "' (use blake3 or sha256)");
}

std::unique_ptr<Blake3Tree> Hasher::Tree() const { return nullptr; }

void Hasher::HashMany(std::span<const std::span<const uint8_t>> inputs,
                      std::span<Digest> outs) const {
  for (size_t i = 0; i < inputs.size() && i < outs.size(); i++) outs[i] = Hash(inputs[i]);
}

namespace {

// BLAKE3's C sources detect the CPU's features on first use and cache them in a global without
// synchronisation. Hashing once during static initialisation (before any thread of ours
// exists, 2 KiB so that the SIMD dispatch runs) makes every later use read it only.
const bool kBlake3FeaturesDetected = [] {
  static const uint8_t kZeros[2048] = {};
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, kZeros, sizeof kZeros);
  uint8_t out[BLAKE3_OUT_LEN];
  blake3_hasher_finalize(&h, out, sizeof out);
  return true;
}();

class Blake3Stream : public StreamHasher {
 public:
  explicit Blake3Stream(const std::optional<Digest>& key) {
    if (key)
      blake3_hasher_init_keyed(&h_, key->bytes.data());
    else
      blake3_hasher_init(&h_);
  }
  void Update(std::span<const uint8_t> d) override {
    blake3_hasher_update(&h_, d.data(), d.size());
  }
  Digest Finish() override {
    Digest out;
    blake3_hasher_finalize(&h_, out.bytes.data(), Digest::kSize);
    return out;
  }

 private:
  blake3_hasher h_;
};

class Blake3Hasher : public Hasher {
 public:
  explicit Blake3Hasher(std::optional<Digest> key) : key_(key) {}
  Digest Hash(std::span<const uint8_t> d) const override {
    Blake3Stream s(key_);
    s.Update(d);
    return s.Finish();
  }
  std::unique_ptr<StreamHasher> Stream() const override {
    return std::make_unique<Blake3Stream>(key_);
  }
  std::unique_ptr<Blake3Tree> Tree() const override { return std::make_unique<Blake3Tree>(key_); }
  void HashMany(std::span<const std::span<const uint8_t>> inputs,
                std::span<Digest> outs) const override {
    const size_t n = std::min(outs.size(), inputs.size());
    Blake3Tree(key_).HashMany(inputs.first(n), outs.first(n));
  }
  HashAlgo algo() const override { return HashAlgo::kBlake3; }
  bool keyed() const override { return key_.has_value(); }

 private:
  std::optional<Digest> key_;
};

// SHA-256 through EVP (uses SHA-NI when present); HMAC-SHA-256 when keyed.
class Sha256Stream : public StreamHasher {
 public:
  explicit Sha256Stream(const std::optional<Digest>& key) {
    if (key) {
      mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      mctx_ = EVP_MAC_CTX_new(mac_);
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA256"), 0),
          OSSL_PARAM_construct_end()};
      if (!mctx_ || !EVP_MAC_init(mctx_, key->bytes.data(), key->bytes.size(), params))
        throw std::runtime_error("HMAC-SHA-256 init failed");
    } else {
      ctx_ = EVP_MD_CTX_new();
      if (!ctx_ || !EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr))
        throw std::runtime_error("SHA-256 init failed");
    }
  }
  ~Sha256Stream() override {
    EVP_MD_CTX_free(ctx_);
    EVP_MAC_CTX_free(mctx_);
    EVP_MAC_free(mac_);
  }
  void Update(std::span<const uint8_t> d) override {
    if (ctx_)
      EVP_DigestUpdate(ctx_, d.data(), d.size());
    else
      EVP_MAC_update(mctx_, d.data(), d.size());
  }
  Digest Finish() override {
    Digest out;
    if (ctx_) {
      unsigned int n = 0;
      EVP_DigestFinal_ex(ctx_, out.bytes.data(), &n);
    } else {
      size_t n = 0;
      EVP_MAC_final(mctx_, out.bytes.data(), &n, out.bytes.size());
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_ = nullptr;
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* mctx_ = nullptr;
};

class Sha256Hasher : public Hasher {
 public:
  explicit Sha256Hasher(std::optional<Digest> key) : key_(key) {}
  Digest Hash(std::span<const uint8_t> d) const override {
    Sha256Stream s(key_);
    s.Update(d);
    return s.Finish();
  }
  std::unique_ptr<StreamHasher> Stream() const override {
    return std::make_unique<Sha256Stream>(key_);
  }
  HashAlgo algo() const override { return HashAlgo::kSha256; }
  bool keyed() const override { return key_.has_value(); }

 private:
  std::optional<Digest> key_;
};

}  // namespace

std::unique_ptr<Hasher> MakeHasher(HashAlgo algo, std::optional<Digest> key) {
  if (algo == HashAlgo::kSha256) return std::make_unique<Sha256Hasher>(key);
  return std::make_unique<Blake3Hasher>(key);
}

void Blake3DeriveKey(std::string_view context, std::span<const uint8_t> material,
                     std::span<uint8_t> out) {
  blake3_hasher h;
  blake3_hasher_init_derive_key_raw(&h, context.data(), context.size());
  blake3_hasher_update(&h, material.data(), material.size());
  blake3_hasher_finalize(&h, out.data(), out.size());
}

}  // namespace cairn
