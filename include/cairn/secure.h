// Wiping secrets from memory: callers that hold a password (read from a file, the environment
// or a terminal) overwrite it once it has been used.
#pragma once

#include <cstddef>
#include <string>

namespace cairn {

// The longest password cairn accepts, in bytes, wherever it comes from (a password file, the
// environment, a prompt, the API): a longer one is refused, never truncated.
inline constexpr size_t kMaxPasswordBytes = 4096;

// Overwrites the `n` bytes at `p` with zeros in a way the compiler may not elide
// (explicit_bzero). `n` may be 0.
void SecureWipe(void* p, size_t n);

// Overwrites every byte of `s` (its size, not its capacity) with zeros, then clears it.
void SecureWipe(std::string& s);

}  // namespace cairn
