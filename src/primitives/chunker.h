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
#include <string_view>

#include "cairn/digest.h"
#include "cairn/status.h"

namespace cairn {

// Versions of the FastCDC cut rules; a store records its version in config.json
// (chunker.algorithm) and keeps it for life, since other cut points stop dedup against old data.
enum class FastCdcVersion : uint8_t {
  // "fastcdc-2020-nc2": the normal point (where the hard mask gives way to the easy one) at `avg`
  // bytes from the chunk start. With hashing skipped below `min`, the real mean is above `avg`
  // (1.34 MiB at the defaults on text; ADR 0018).
  kV1 = 1,
  // "fastcdc-2020-nc2-v2": the normal point moved back by the skipped prefix so that the real
  // mean is about `avg` (ADR 0018). Default for new stores.
  kV2 = 2,
};

// The config.json name of a version, and back (InvalidArgument naming an unknown name).
std::string_view FastCdcVersionName(FastCdcVersion v);
Result<FastCdcVersion> FastCdcVersionFromName(std::string_view name);

struct ChunkerParams {
  uint32_t min_size = 256 * 1024;
  uint32_t avg_size = 1024 * 1024;
  uint32_t max_size = 4 * 1024 * 1024;
  FastCdcVersion version = FastCdcVersion::kV2;
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
  size_t normal_;  // bytes from the chunk start where mask_s gives way to mask_l
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
