// ChunkBuffer: one verified plaintext chunk in RAM, immutable once published and shared by
// reference (ChunkRef), so the hot cache and every reader of a chunk hold the same bytes and a
// cache hit never copies them. A buffer of an encrypted store wipes its bytes (explicit_bzero)
// when its last reference goes, so plaintext that leaves the cache does not linger in freed heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace cairn {

class ChunkBuffer;
// What readers and the cache hold: shared ownership of an immutable buffer.
using ChunkRef = std::shared_ptr<const ChunkBuffer>;

class ChunkBuffer {
  struct Passkey {};  // only the factories below construct buffers

 public:
  // Called from the destructor with the buffer's bytes after the wipe (when `wipe`) and before
  // they are freed. Tests use it to observe the wipe; it must outlive the buffer.
  using ReleaseHook = std::function<void(std::span<const uint8_t> bytes)>;

  // A buffer of `size` uninitialized bytes, to be filled through mutable_span() (for example
  // decompressed into) before it is shared. `wipe`: cleanse the bytes on release.
  static std::shared_ptr<ChunkBuffer> Allocate(size_t size, bool wipe);
  // Takes `bytes` without copying (the vector's heap block becomes the buffer). On release the
  // whole allocation (capacity, not only size) is wiped when `wipe`.
  static std::shared_ptr<ChunkBuffer> Adopt(std::vector<uint8_t>&& bytes, bool wipe);
  // Copies `bytes` into a new buffer.
  static std::shared_ptr<ChunkBuffer> Copy(std::span<const uint8_t> bytes, bool wipe);

  ChunkBuffer(Passkey, size_t size, bool wipe);
  ChunkBuffer(Passkey, std::vector<uint8_t>&& bytes, bool wipe);
  ~ChunkBuffer();
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  // Write access, only while the caller holds the sole reference (before publishing).
  std::span<uint8_t> mutable_span() { return {data_, size_}; }
  // Whether the bytes are cleansed when the last reference goes.
  bool wipes() const { return wipe_; }

  // Test hook, see ReleaseHook; nullptr removes it.
  void SetReleaseHookForTesting(const ReleaseHook* hook) { hook_ = hook; }

 private:
  std::unique_ptr<uint8_t[]> raw_;  // storage of Allocate/Copy
  std::vector<uint8_t> vec_;        // storage of Adopt
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool wipe_ = false;
  const ReleaseHook* hook_ = nullptr;
};

}  // namespace cairn
