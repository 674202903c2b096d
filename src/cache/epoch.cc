// Epoch-based reclamation (see epoch.h): the registry of per-thread slots and the global epoch.
#include "cache/epoch.h"

#include <sched.h>

#include <atomic>
#include <deque>
#include <limits>
#include <mutex>

namespace cairn::epoch {

namespace {

// One thread's announcement, alone on its cache line so that readers never share a line.
struct alignas(64) Slot {
  std::atomic<uint64_t> epoch{0};  // 0: outside any ReadGuard
  bool used = false;               // guarded by Registry::mu
};

// Slots of live threads; a deque keeps their addresses stable as it grows. Slots are reused,
// never freed.
struct Registry {
  std::mutex mu;
  std::deque<Slot> slots;
};

// Leaked on purpose: threads may exit (and release slots) after static destructors have run.
Registry& Reg() {
  static Registry* r = new Registry;
  return *r;
}

std::atomic<uint64_t> g_epoch{1};

struct ThreadState {
  Slot* slot = nullptr;
  uint32_t index = 0;
  uint32_t depth = 0;
  ~ThreadState() {
    if (slot == nullptr) return;
    std::lock_guard lk(Reg().mu);
    slot->used = false;
  }
  void Register() {
    Registry& r = Reg();
    std::lock_guard lk(r.mu);
    for (size_t i = 0; i < r.slots.size(); i++) {
      if (!r.slots[i].used) {
        slot = &r.slots[i];
        index = static_cast<uint32_t>(i);
        slot->used = true;
        return;
      }
    }
    index = static_cast<uint32_t>(r.slots.size());
    slot = &r.slots.emplace_back();
    slot->used = true;
  }
};

thread_local ThreadState t_state;

}  // namespace

ReadGuard::ReadGuard() {
  ThreadState& ts = t_state;
  if (ts.slot == nullptr) ts.Register();
  index_ = ts.index;
  if (ts.depth++ == 0) ts.slot->epoch.store(g_epoch.load(), std::memory_order_seq_cst);
}

ReadGuard::~ReadGuard() {
  ThreadState& ts = t_state;
  if (--ts.depth == 0) ts.slot->epoch.store(0, std::memory_order_release);
}

uint64_t Advance() { return g_epoch.fetch_add(1, std::memory_order_seq_cst); }

uint64_t MinActive() {
  uint64_t min = std::numeric_limits<uint64_t>::max();
  Registry& r = Reg();
  std::lock_guard lk(r.mu);
  for (Slot& s : r.slots) {
    const uint64_t e = s.epoch.load(std::memory_order_seq_cst);
    if (e != 0 && e < min) min = e;
  }
  return min;
}

bool WaitPast(uint64_t r) {
  if (t_state.depth > 0) return false;
  while (MinActive() <= r) sched_yield();
  return true;
}

}  // namespace cairn::epoch
