// cairn-stress readers (stress_readers.cc): read-only handles beside a writer process; every
// failure that is not "the object was removed" is counted as spurious.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cairn/repository.h"
#include "tests/stress/stress_model.h"

namespace cairn::stress {

// The writer: loops until `seconds` have passed; 0 when every call succeeded.
int WriteLoop(const std::string& repo, uint64_t seed, double seconds);
// Runs `readers` reader threads for `seconds`, then `wait_writer` (the writer's exit code);
// prints the counts. 0 when nothing failed spuriously and the writer succeeded.
int RunReaders(const std::string& repo, int readers, double seconds, uint64_t seed,
               const std::function<int()>& wait_writer);

}  // namespace cairn::stress
