// Helpers for tests: temporary directories, deterministic data, in-memory sources and sinks.
#pragma once

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cairn/io.h"

namespace cairn::testing {

// Whether `part` occurs in `s`.
inline bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The whole of file `path` ("" when it cannot be opened or sized), read in one call, not byte by
// byte as istreambuf_iterator does (slow on large files, most of all under ASan).
inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  std::ifstream f(path, std::ios::binary);
  if (ec || !f) return {};
  std::string bytes(size, '\0');
  f.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(f.gcount()));
  return bytes;
}

// ReadFileBytes as bytes: the whole of file `path` ({} when it cannot be opened or sized).
inline std::vector<uint8_t> ReadFileData(const std::filesystem::path& path) {
  const std::string bytes = ReadFileBytes(path);
  return {bytes.begin(), bytes.end()};
}

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

// `n` pseudo-random bytes, the same for the same `seed`: libsodium's
// randombytes_buf_deterministic (ChaCha20 keyed by the seed), one call that runs at the library's
// speed even in the ASan tree, where the tests' own code is built at -O0.
inline std::vector<uint8_t> RandomData(size_t n, uint64_t seed) {
  unsigned char key[randombytes_SEEDBYTES] = {};
  for (int i = 0; i < 8; i++) key[i] = static_cast<unsigned char>(seed >> (8 * i));
  std::vector<uint8_t> v(n);
  if (n > 0) randombytes_buf_deterministic(v.data(), n, key);  // data() is null when n == 0
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

// A positional sink in memory, like a fresh output file: Reset sizes it (zeros), WriteAt fills
// disjoint ranges from any thread. Records the threads that wrote and counts the calls; an
// ordered Write is refused. `fail_from`: WriteAt at or past this offset fails (IOError).
class PositionalMemSink : public ByteSink {
 public:
  Status Write(std::span<const uint8_t>) override {
    ordered_writes++;
    return Status::IOError("ordered write to a positional sink");
  }
  bool positional() const override { return true; }
  Status Reset(uint64_t size) override {
    data.assign(size, 0);
    resets++;
    return Status::Ok();
  }
  Status WriteAt(uint64_t offset, std::span<const uint8_t> d) override {
    calls++;
    if (fail_from && offset >= *fail_from) return Status::IOError("writing sink: injected");
    if (offset > data.size() || d.size() > data.size() - offset)
      return Status::Invalid("write past the end of the sink");
    std::copy(d.begin(), d.end(), data.begin() + static_cast<ptrdiff_t>(offset));
    std::lock_guard lk(mu);
    threads.insert(std::this_thread::get_id());
    writes++;
    return Status::Ok();
  }
  std::vector<uint8_t> data;
  std::optional<uint64_t> fail_from;
  std::atomic<int> resets{0}, ordered_writes{0}, calls{0};  // calls: every WriteAt
  std::mutex mu;
  std::set<std::thread::id> threads;  // under mu
  int writes = 0;                     // under mu
};

}  // namespace cairn::testing
