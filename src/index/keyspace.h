// The index keyspace in one place (as LevelDB's db/dbformat.h is for its keys): every row
// prefix, the layer that owns the rows, and the version of the record each holds. Only the
// owning layer reads or writes its rows; other layers ask it (check and stat included). The
// byte layout of every key and value is in docs/format.md; how the rows of one logical change
// are committed is in docs/commit-protocol.md.
//
// Keys start with one prefix byte; integers in keys are big-endian so that key order is numeric
// order; ids are 32 raw bytes. A new row type takes an unused prefix here first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::keyspace {

// Row prefixes. Owner layer and record version (the first byte of the value) beside each.
inline constexpr char kChunk = 'c';       // chunkstore  ChunkRecord v3 (v1, v2 read; 0x83 masked)
inline constexpr char kSegment = 's';     // chunkstore  SegmentRecord v1
inline constexpr char kFreeExtent = 'f';  // chunkstore  extent allocator, u8 1 + u64 length
inline constexpr char kSegmentIdMark = 'g';  // chunkstore  u8 1 + u32 next segment id
inline constexpr char kQuarantine = 'q';     // chunkstore  damaged chunk found by check (reserved)
inline constexpr char kZeroSince = 'z';      // chunkstore  u8 1 + u64 unix ns: refcount 0 since
inline constexpr char kManifest = 'm';       // objects     Manifest v1 (sealed when encrypted)
inline constexpr char kManifestRefs = 'n';   // objects     counter v1
inline constexpr char kHead = 'h';           // objects     ObjectHead v2 (v1 still read)
inline constexpr char kVersion = 'v';        // objects     VersionRecord v1
inline constexpr char kVdisk = 'd';        // vdisk       VdiskDescriptor v1 (sealed when encrypted)
inline constexpr char kBlockMap = 'b';     // vdisk       BlockMapPage v1/v2 (sealed when encrypted)
inline constexpr char kVdiskBitmap = 'x';  // vdisk       BitmapSlice v1 (sealed when encrypted)
inline constexpr char kStoreIdentity = 'i';  // repo        StoreIdentity v1 (sealed when encrypted)
inline constexpr char kCommitCount = 'k';    // repo        u8 1 + u64 batches committed (ADR 0016)
inline constexpr char kReencryptPass = 'p';  // repo        u8 1 + u64 cut-off, unix ns

struct RowType {
  char prefix;
  std::string_view name;   // what a row of this type is, for messages
  std::string_view owner;  // the layer that reads and writes it
};

// Every prefix above, in prefix order.
inline constexpr RowType kRowTypes[] = {
    {kBlockMap, "vdisk block map row", "vdisk"},
    {kChunk, "chunk record", "chunkstore"},
    {kVdisk, "vdisk descriptor", "vdisk"},
    {kFreeExtent, "free-extent row of the extent allocator", "chunkstore"},
    {kSegmentIdMark, "segment id high-water mark", "chunkstore"},
    {kHead, "object head", "objects"},
    {kStoreIdentity, "store identity row", "repo"},
    {kCommitCount, "commit counter row", "repo"},
    {kManifest, "manifest", "objects"},
    {kManifestRefs, "manifest refcount row", "objects"},
    {kReencryptPass, "re-encryption pass row", "repo"},
    {kQuarantine, "quarantine row", "chunkstore"},
    {kSegment, "segment row", "chunkstore"},
    {kVersion, "object version row", "objects"},
    {kVdiskBitmap, "vdisk bitmap slice", "vdisk"},
    {kZeroSince, "zero-refcount mark of a chunk", "chunkstore"},
};

// The row type of `key`, or nullptr for a key no layer owns.
const RowType* RowTypeOf(std::string_view key);

// Says what an index row is, for messages ("index row of chunk 3fa2...", "version row 4 of an
// object"). Never reveals more than the key does (object names are keyed hashes when encrypted).
std::string DescribeRow(std::string_view key);

}  // namespace cairn::keyspace
