// ChunkBuffer: allocation without zero-filling, adoption of a vector, and the wipe on release.
#include "cache/chunk_buffer.h"

#include <cstring>

#include "crypto/secret.h"

namespace cairn {

std::shared_ptr<ChunkBuffer> ChunkBuffer::Allocate(size_t size, bool wipe) {
  return std::make_shared<ChunkBuffer>(Passkey{}, size, wipe);
}

std::shared_ptr<ChunkBuffer> ChunkBuffer::Adopt(std::vector<uint8_t>&& bytes, bool wipe) {
  return std::make_shared<ChunkBuffer>(Passkey{}, std::move(bytes), wipe);
}

std::shared_ptr<ChunkBuffer> ChunkBuffer::Copy(std::span<const uint8_t> bytes, bool wipe) {
  auto buf = Allocate(bytes.size(), wipe);
  if (!bytes.empty()) std::memcpy(buf->data_, bytes.data(), bytes.size());
  return buf;
}

// make_unique_for_overwrite: a chunk is about to be overwritten whole, so zero-filling 1 MiB
// first would only cost time.
ChunkBuffer::ChunkBuffer(Passkey, size_t size, bool wipe)
    : raw_(std::make_unique_for_overwrite<uint8_t[]>(size)),
      data_(raw_.get()),
      size_(size),
      wipe_(wipe) {}

ChunkBuffer::ChunkBuffer(Passkey, std::vector<uint8_t>&& bytes, bool wipe)
    : vec_(std::move(bytes)), data_(vec_.data()), size_(vec_.size()), wipe_(wipe) {}

ChunkBuffer::~ChunkBuffer() {
  if (wipe_) {
    if (raw_) {
      crypto::Cleanse(data_, size_);
    } else {
      // The spare capacity may hold plaintext from before a shrink: grow into it (no
      // reallocation) so that every byte of the heap block is wiped.
      vec_.resize(vec_.capacity());
      crypto::Cleanse(vec_.data(), vec_.size());
    }
  }
  if (hook_ != nullptr) (*hook_)(std::span<const uint8_t>(data_, size_));
}

}  // namespace cairn
