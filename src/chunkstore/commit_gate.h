// CommitGate: serialises the commits of a store across processes (shared writers on RADOS,
// ADR 0015). A store with one writer process has none: its in-process commit lock is enough.
#pragma once

#include "cairn/status.h"

namespace cairn {

class CommitGate {
 public:
  virtual ~CommitGate() = default;
  // Waits until this process may commit to the store; other processes' commits wait meanwhile.
  // Fails (Busy naming the holder) when the gate stays closed longer than the implementation's
  // patience, or with the storage's error.
  virtual Status Enter() = 0;
  // Opens the gate again (after Enter succeeded).
  virtual void Leave() = 0;
};

}  // namespace cairn
