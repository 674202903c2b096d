// Byte sources and sinks for streaming objects in and out, and the progress callback.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "cairn/status.h"

namespace cairn {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes; 0 means end of input.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
  // Total size when known in advance (a regular file), else 0.
  virtual uint64_t SizeHint() const { return 0; }
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(std::span<const uint8_t> data) = 0;
};

// A file descriptor as a source or sink; `name` is used in messages ("reading FILE: ...").
class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string name, uint64_t size_hint = 0)
      : fd_(fd), name_(std::move(name)), size_(size_hint) {}
  Result<size_t> Read(std::span<uint8_t> out) override;
  uint64_t SizeHint() const override { return size_; }

 private:
  int fd_;
  std::string name_;
  uint64_t size_;
};

class FdSink : public ByteSink {
 public:
  // `holes`: `fd` is a fresh, empty regular file written from offset 0. Every whole
  // kHoleBlock-byte block of zeros (aligned in the file) is then skipped with lseek instead of
  // written, so it stays a hole; Finish() sets the final length. Otherwise writes go straight
  // through write(2) (pipes, terminals, existing files).
  FdSink(int fd, std::string name, bool holes = false)
      : fd_(fd), name_(std::move(name)), holes_(holes) {}
  Status Write(std::span<const uint8_t> data) override;
  // With holes: makes the file as long as everything written (ftruncate) when it ends in a
  // hole. Call once after the last Write; errors name the file.
  Status Finish();
  static constexpr size_t kHoleBlock = 64 * 1024;

 private:
  Status WriteAll(const uint8_t* p, size_t n);
  int fd_;
  std::string name_;
  bool holes_;
  uint64_t pos_ = 0;  // bytes written or skipped (with holes)
  bool ends_in_hole_ = false;
};

// Called from the ordered stage with bytes done so far and the total (0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace cairn
