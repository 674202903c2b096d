// Chunkers: content-defined FastCDC-2020 (gear hash, rolling two bytes per step, normalized
// chunking level 2) for objects, and fixed-size for virtual disks. Both find the next cut point
// in a buffer; the caller owns the buffering, so the same chunker serves files, stdin and pipes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "cairn/digest.h"
#include "cairn/status.h"

namespace cairn {

struct ChunkerParams {
  uint32_t min_size = 256 * 1024;
  uint32_t avg_size = 1024 * 1024;
  uint32_t max_size = 4 * 1024 * 1024;
  Status Validate() const;
};

class Chunker {
 public:
  virtual ~Chunker() = default;
  // Length of the next chunk at the start of `data`, or 0 when more data is needed to decide
  // (only when !eof). With eof, returns data.size() at most and never 0 for non-empty data.
  virtual size_t NextCut(std::span<const uint8_t> data, bool eof) const = 0;
  virtual size_t max_size() const = 0;
};

class FastCdcChunker : public Chunker {
 public:
  // `gear_key`: nullopt for the public gear table; a store secret for keyed chunking, so that
  // chunk boundaries do not fingerprint known files.
  explicit FastCdcChunker(const ChunkerParams& p, std::optional<Digest> gear_key = std::nullopt);
  size_t NextCut(std::span<const uint8_t> data, bool eof) const override;
  size_t max_size() const override { return p_.max_size; }

 private:
  ChunkerParams p_;
  uint64_t mask_s_, mask_l_, mask_s_ls_, mask_l_ls_;
  std::array<uint64_t, 256> gear_, gear_ls_;
};

class FixedChunker : public Chunker {
 public:
  explicit FixedChunker(size_t size) : size_(size) {}
  size_t NextCut(std::span<const uint8_t> data, bool eof) const override;
  size_t max_size() const override { return size_; }

 private:
  size_t size_;
};

}  // namespace cairn
