// Epoch-based reclamation for the hot cache's lock-free read path: readers mark a short
// read-side critical section by writing only their own thread's slot; a writer that unlinked an
// object frees it once every reader that might still see it has left (Fraser, "Practical
// lock-freedom", 2004, section 5.2.3; the same grace-period idea as RCU).
//
// Why not liburcu: its read side orders memory with membarrier()/signals, which ThreadSanitizer
// (run on the cache tests in CI) cannot see, so every reclamation would be reported as a race;
// the packaged 0.13 has no TSan support and liburcu-dev is not installed. This scheme is C++
// seq_cst atomics only, which TSan models exactly.
//
// Protocol. A global epoch G starts at 1. A reader entering stores G into its slot (seq_cst:
// an xchg on x86, to its own cache line) and on leaving stores 0. A writer unlinks objects with
// seq_cst stores, then calls Advance(), which returns r = G and raises G to r+1. A reader whose
// slot holds e > r loaded G after the unlinks and cannot reach the objects; a reader whose slot
// is 0 is outside (and by the seq_cst total order, if it enters later it sees the unlinks). So
// the objects may be freed once no slot holds a value in 1..r: MinActive() > r.
#pragma once

#include <cstdint>

namespace cairn::epoch {

// Marks the calling thread as reading shared objects for its lifetime: objects unlinked while
// it is alive are not freed before it ends. Nestable; cheap (a thread-local access and one
// store to the thread's own slot on entry and on exit); never blocks.
class ReadGuard {
 public:
  ReadGuard();
  ~ReadGuard();
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
  // A small number naming the calling thread among live threads (dense from 0; reused after a
  // thread exits), for per-thread counters.
  uint32_t thread_index() const { return index_; }

 private:
  uint32_t index_;
};

// Writer side, after unlinking objects: returns the epoch r to tag them with and raises the
// global epoch.
uint64_t Advance();
// The lowest epoch any reader is inside now, or UINT64_MAX when none is: objects tagged r may be
// freed when MinActive() > r. Takes the slot registry's mutex; for writers.
uint64_t MinActive();
// Waits (yielding) until MinActive() > r. Returns false at once, without waiting, when the
// calling thread is itself inside a ReadGuard (waiting would never end).
bool WaitPast(uint64_t r);

}  // namespace cairn::epoch
