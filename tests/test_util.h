// Helpers for tests: temporary directories, deterministic data, in-memory sources and sinks.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cairn/io.h"

namespace cairn::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& s) const { return path_ + "/" + s; }

 private:
  std::string path_;
};

inline std::vector<uint8_t> RandomData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x = rng();
    for (size_t j = 0; j < 8 && i + j < n; j++) v[i + j] = static_cast<uint8_t>(x >> (8 * j));
  }
  return v;
}

// Compressible text-like data.
inline std::vector<uint8_t> TextData(size_t n, uint64_t seed) {
  static const char* words[] = {"cairn ", "chunk ",  "store ", "dedup ",    "index ",  "segment ",
                                "zstd ",  "blake3 ", "\n",     "manifest ", "extent ", "refcount "};
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v;
  v.reserve(n);
  while (v.size() < n) {
    const char* w = words[rng() % 12];
    for (const char* p = w; *p && v.size() < n; p++) v.push_back(static_cast<uint8_t>(*p));
  }
  return v;
}

class MemSource : public ByteSource {
 public:
  explicit MemSource(const std::vector<uint8_t>& d, size_t max_read = SIZE_MAX)
      : d_(d), max_read_(max_read) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = std::min({out.size(), d_.size() - pos_, max_read_});
    std::copy_n(d_.begin() + pos_, n, out.begin());
    pos_ += n;
    return n;
  }
  uint64_t SizeHint() const override { return d_.size(); }

 private:
  const std::vector<uint8_t>& d_;
  size_t pos_ = 0, max_read_;
};

class MemSink : public ByteSink {
 public:
  Status Write(std::span<const uint8_t> d) override {
    data.insert(data.end(), d.begin(), d.end());
    return Status::Ok();
  }
  std::vector<uint8_t> data;
};

}  // namespace cairn::testing
