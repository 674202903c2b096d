// Byte sources and sinks for streaming objects in and out, and the progress callback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
  // Appends `data` (the next bytes of the content, in order).
  virtual Status Write(std::span<const uint8_t> data) = 0;

  // A positional sink (a fresh regular file) also takes Reset and WriteAt, and a restore then
  // writes each chunk from the pool thread that read it, in any order, instead of calling
  // Write in order from one thread.
  virtual bool positional() const { return false; }
  // Positional sinks: makes the output `size` bytes long and all zeros (a hole), dropping
  // anything written before (a restore calls it before each attempt). Errors name the sink.
  virtual Status Reset(uint64_t size);
  // Positional sinks: writes `data` at byte `offset` of the output (within the size given to
  // Reset). Safe to call from several threads at once on disjoint ranges. Errors name the sink.
  virtual Status WriteAt(uint64_t offset, std::span<const uint8_t> data);
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
  // kHoleBlock-byte block of zeros (aligned in the file) is then skipped (lseek, or no pwrite)
  // instead of written, so it stays a hole; Finish() sets the final length. Otherwise writes go
  // straight through write(2) (pipes, terminals, existing files). `positional` (with `holes`
  // only): Reset (ftruncate) and WriteAt (pwrite(2), from any thread) work too, and a restore
  // writes each chunk from the thread that read it. `get -o` does not ask for it: on ext4 the
  // workers' buffered pwrites take turns on the file's lock, and a 1.36 GB restore took 1.37 s
  // that way against 0.88 s written in order by one thread (quiet 2-core VM).
  FdSink(int fd, std::string name, bool holes = false, bool positional = false)
      : fd_(fd), name_(std::move(name)), holes_(holes), positional_(holes && positional) {}
  Status Write(std::span<const uint8_t> data) override;
  bool positional() const override { return positional_; }
  Status Reset(uint64_t size) override;
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  // With holes: makes the file as long as everything written with Write (ftruncate) when it
  // ends in a hole. Call once after the last Write; errors name the file.
  Status Finish();
  static constexpr size_t kHoleBlock = 64 * 1024;

 private:
  Status WriteAll(const uint8_t* p, size_t n);
  Status PwriteAll(const uint8_t* p, size_t n, uint64_t offset);
  int fd_;
  std::string name_;
  bool holes_;
  bool positional_;
  uint64_t pos_ = 0;  // bytes written or skipped (with holes)
  bool ends_in_hole_ = false;
};

// DirectSink: the ordered output of a restore (`get -o`) into a fresh regular file, written past
// the page cache (O_DIRECT, open(2), set on the caller's descriptor with fcntl(2) F_SETFL and
// left set) by a writer thread from aligned buffers, so that the restoring threads never copy
// the output into the page cache.
//
// Why: a buffered write copies every output byte into a freshly allocated page-cache page, on
// the one thread that writes in order. On this project's 2-core VMs that copy cost ~0.5 ms/MiB
// on a good day and 6.3 ms/MiB after bench/run.sh's three puts (8.2 s of sys time for 1.3 GB:
// likely pages the host had taken back, docs/performance.md, "Why a warm restore is sometimes
// slower"); an O_DIRECT write hands the buffer to the device instead (1.3-1.4 GB/s here with
// `dd oflag=direct bs=4M`), and a restore of a large file no longer evicts the page cache.
//
// The first `direct_after` bytes still go through the page cache (FdSink with holes), so a small
// restore stays a few page-cache copies and its file is cached for whatever reads it next. Zero
// blocks (FdSink::kHoleBlock, aligned) are skipped and stay holes either way. A file system that
// refuses O_DIRECT (fcntl(2) or a write failing with EINVAL) gets buffered writes instead, with
// the same result, and so does a process that cannot start the writer thread; no data ever
// depends on which path wrote it.
class DirectSink : public ByteSink {
 public:
  static constexpr size_t kBuffer = 4u << 20;          // bytes per buffer
  static constexpr size_t kBuffers = 4;                // buffers: 16 MiB of memory in all
  static constexpr size_t kAlign = 4096;               // O_DIRECT offset, length and memory
  static constexpr uint64_t kDirectAfter = 16u << 20;  // default: bytes written buffered first

  // `fd`: a fresh, empty regular file open for writing (it stays the caller's to close);
  // `name`: the file's name in messages. `direct_after` is rounded up to a multiple of kBuffer.
  DirectSink(int fd, std::string name, uint64_t direct_after = kDirectAfter);
  ~DirectSink() override;  // waits for the writer thread; Finish reports its errors
  DirectSink(const DirectSink&) = delete;
  DirectSink& operator=(const DirectSink&) = delete;

  // Appends `data`. Errors name the file: a buffered write's at once, the writer thread's first
  // at the next Write that fills a buffer, or at Finish (what was queued behind it is dropped).
  // After an error the output is incomplete, and every later call returns that error.
  Status Write(std::span<const uint8_t> data) override;
  // Writes what is buffered and makes the file exactly as long as everything written
  // (ftruncate(2)). Call once after the last Write; errors name the file.
  Status Finish();
  // Bytes written with O_DIRECT so far, the tail's padding included (the rest went through the
  // page cache, or were holes).
  uint64_t direct_bytes() const;

 private:
  struct Impl;  // util/direct_sink.cc
  std::unique_ptr<Impl> impl_;
};

// Called from the ordered stage with bytes done so far and the total (0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace cairn
