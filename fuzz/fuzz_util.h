// Helpers shared by the libFuzzer targets in fuzz/ (one decoder family each, built by
// -DCAIRN_FUZZ=ON with clang; `make fuzz` runs them, `make test` runs each for a bounded time).
// A target feeds arbitrary bytes to a decoder, which must return an error value, never crash,
// read out of bounds or allocate without bound; what decodes must survive an encode/decode
// round trip (FUZZ_CHECK aborts, which libFuzzer reports as a crash with the input saved).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace cairn::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace cairn::fuzz
