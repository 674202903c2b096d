// Parallel cutting: the cut points of a buffer found by several threads at once, always the
// same as the serial chain of Chunker::NextCut calls from the buffer's start would give.
//
// Method (speculative cutting). The buffer is split into parts. The calling thread cuts the
// first part as the serial chain does; every other part is cut at the same time, on a helper
// thread, as if a chunk began at the part's start. The serial chain, once it has crossed into
// a part, meets a cut of that part's speculative chain within a chunk or two: a FastCDC cut
// depends only on the bytes from the chunk start + min size on, and its gear hash only on the
// last 64 of them (src/primitives/chunker.cc), so two chains that look at the same bytes with
// the same mask pick the same candidate. Every NextCut result depends on its start position
// alone, so from the first position both chains share on, they are the same chain: the rest of
// the speculative cuts are taken as they are. Where the chains never meet (a fixed-size
// chunker, or data so regular that only forced cuts at max size happen), the calling thread
// cuts that part serially: slower, never different.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "primitives/chunker.h"
#include "util/thread_pool.h"

namespace cairn {

// The end offsets (from data.data(), increasing) of every chunk that the serial chain
// `NextCut(data), NextCut(data.subspan(end_1)), ...` decides: with `eof`, up to data.size();
// without, up to where NextCut returns 0 (the undecided rest, which more data may change, is
// left out). `helpers`: threads for the parts after the first (null or empty: all serial);
// `parts`: how many parts at most. Parts are at least 2 * chunker.max_size() bytes, so a
// small buffer is cut serially. Thread-safe as long as `chunker` is (NextCut is const); not to
// be called from one of `helpers`' own threads (it waits for their tasks).
std::vector<size_t> FindCuts(const Chunker& chunker, std::span<const uint8_t> data, bool eof,
                             ThreadPool* helpers, size_t parts);

// The same, with the parts starting at `starts` (increasing, starts[0] = 0, each at most
// data.size()), whatever their sizes: for tests, which need parts that start exactly on, or
// just beside, a serial cut.
std::vector<size_t> FindCutsFrom(const Chunker& chunker, std::span<const uint8_t> data, bool eof,
                                 ThreadPool* helpers, const std::vector<size_t>& starts);

}  // namespace cairn
