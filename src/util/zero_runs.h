// Splitting output bytes into runs of data and runs of whole zero blocks, so that a writer into
// a fresh file can skip the zero blocks and leave them holes (FdSink, DirectSink).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cairn/status.h"

namespace cairn::zero_runs {

// True when all `n` bytes are zero; stops at the first non-zero byte (usually the first).
inline bool IsZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// Splits `n` bytes at file offset `pos` into runs of data and of whole zero blocks of `block`
// bytes aligned in the file (a block is a hole candidate only when it lies whole in the
// bytes), and calls fn(zero, from, to) for each run in order; stops at the first error.
template <typename Fn>
Status ForEachRun(const uint8_t* p, size_t n, uint64_t pos, size_t block, Fn&& fn) {
  auto zero_block = [&](size_t i, size_t* end) {
    *end = std::min(n, i + (block - (pos + i) % block));
    return *end - i == block && IsZero(p + i, block);
  };
  size_t i = 0;
  while (i < n) {
    size_t j = 0;
    const bool zero = zero_block(i, &j);
    for (size_t e = 0; j < n && zero_block(j, &e) == zero;) j = e;  // extend the run
    CAIRN_RETURN_IF_ERROR(fn(zero, i, j));
    i = j;
  }
  return Status::Ok();
}

}  // namespace cairn::zero_runs
