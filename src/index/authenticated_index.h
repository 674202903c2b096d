// AuthenticatedIndex: an Index wrapper that appends a MAC to every value it writes and checks it
// on every read, so a changed bit in any index value (or a value moved to another key) is an
// error naming the row instead of a silently wrong record. The MAC function and the row namer
// come from the layer above (an encrypted store supplies a keyed MAC); the index layer itself
// knows nothing about keys.
#pragma once

#include <array>
#include <functional>
#include <memory>

#include "index/index.h"

namespace cairn {

inline constexpr size_t kIndexTagSize = 16;
using IndexTagFn =
    std::function<std::array<uint8_t, kIndexTagSize>(std::string_view key, std::string_view value)>;
// Says what a row is for messages ("chunk 3fa2...", "free extent row").
using RowNamer = std::function<std::string(std::string_view key)>;

// Wraps `inner`. Get and Scan return Corruption("<row>: index value fails authentication ...")
// for a row whose tag does not match; Scan stops there.
std::unique_ptr<Index> MakeAuthenticatedIndex(std::unique_ptr<Index> inner, IndexTagFn tag,
                                              RowNamer namer);

}  // namespace cairn
