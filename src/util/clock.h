// The wall clock as cairn records it: nanoseconds since the Unix epoch (system clock), for the
// times stored in rows and files (seal epochs, refcount-zero marks, writer leases, snapshot and
// version times). Not for measuring durations (std::chrono::steady_clock is).
#pragma once

#include <chrono>
#include <cstdint>

namespace cairn {

// Now, in ns since 1970-01-01T00:00:00Z (system clock; may step backwards if the clock is set).
inline uint64_t UnixNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace cairn
