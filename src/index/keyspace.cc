// Row descriptions for messages (keyspace.h).
#include "index/keyspace.h"

#include "cairn/digest.h"
#include "util/coding.h"

namespace cairn::keyspace {
namespace {

std::string DigestAfterPrefix(std::string_view k) {
  return k.size() == 1 + Digest::kSize ? Digest::FromBytes(k.substr(1)).Hex() : "?";
}

uint32_t U32BE(std::string_view k, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; i++) v = (v << 8) | static_cast<uint8_t>(k[at + i]);
  return v;
}

}  // namespace

const RowType* RowTypeOf(std::string_view key) {
  if (key.empty()) return nullptr;
  for (const auto& t : kRowTypes)
    if (t.prefix == key[0]) return &t;
  return nullptr;
}

std::string DescribeRow(std::string_view k) {
  if (k.empty()) return "an empty index key";
  switch (k[0]) {
    case kChunk:
      return "index row of chunk " + DigestAfterPrefix(k);
    case kQuarantine:
      return "quarantine row of chunk " + DigestAfterPrefix(k);
    case kSegment:
      return k.size() == 5 ? "index row of segment " + std::to_string(U32BE(k, 1))
                           : "index row of a segment";
    case kManifest:
      return "index row of manifest " + DigestAfterPrefix(k);
    case kManifestRefs:
      return "refcount row of manifest " + DigestAfterPrefix(k);
    case kVersion:
      return k.size() >= 9 ? "version row " + std::to_string(DecodeU64BE(k.data() + k.size() - 8)) +
                                 " of an object"
                           : "a version row";
    case kFreeExtent:
      return "free-extent row of the extent allocator";
    case kHead:
      return "head row of an object";
    case kReencryptPass:
      return "the re-encryption pass row";
    default:
      break;
  }
  if (const RowType* t = RowTypeOf(k)) return "index row (" + std::string(t->name) + ")";
  return "index row of type '" + std::string(1, k[0]) + "'";
}

}  // namespace cairn::keyspace
