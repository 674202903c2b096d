// Repair of a damaged repository (`cairn repair`, ADR 0017), in the manner of restic's `repair
// index|snapshots|packs`: salvage everything undamaged, put back what has a copy, and name
// exactly what is lost. Repair never deletes data it could still read: a damaged index is moved
// aside, not removed; versions with lost byte ranges are kept (their other ranges still read).
//
// What it does, store by store (every store, or the one of `user`):
//   - key ring (encrypted repositories): keys/keyring.sealed and its copy
//     keys/keyring.copy.sealed are made to hold the newest ring that opens (a truncated or
//     damaged one is rewritten from the other);
//   - index: when the store does not open (its index is missing, damaged, or below its commit
//     mark), the index is moved to index.damaged-<unix seconds> and the copy kept beside it
//     (index.copy, written when a writable handle closes) is put back; commits made after that
//     copy are lost and counted; the store's commit mark is set to the copy;
//   - data: every chunk of every version of every object is read and verified; a chunk that
//     fails makes its byte ranges lost (named by object, version, offset and length).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/status.h"

namespace cairn {

struct RepairOptions {
  std::string password;             // ignored for an unencrypted repository
  std::optional<std::string> user;  // one user's store; nullopt: the system store and every user's
};

// Bytes of one object version that cannot be read (a chunk missing or failing verification).
struct LostRange {
  std::string object;
  uint64_t version = 0;
  uint64_t offset = 0, length = 0;  // bytes
  std::string why;                  // the read error of the first chunk of the range
};

struct StoreRepair {
  std::string store;                 // "system", "user bob"
  std::vector<std::string> actions;  // what repair changed, in order
  std::vector<std::string> lost;     // what is lost beyond `ranges`, in words
  std::vector<LostRange> ranges;     // lost byte ranges, by object then version then offset
  uint64_t objects = 0, versions = 0, chunks_read = 0, bytes_read = 0;
  uint64_t lost_commits = 0;  // commits made after the index copy that was put back
};

struct RepairReport {
  std::vector<std::string> actions;  // repository-wide (key ring)
  std::vector<StoreRepair> stores;
  // Nothing lost anywhere (repair may still have changed things: see actions).
  bool clean() const;
};

// Repairs the repository at `path`. Fails (changing nothing further) when the repository cannot
// be unlocked or a store's lock is held; a store that cannot be repaired is reported in its
// `lost` and the others are still repaired.
Result<RepairReport> Repair(const std::string& path, const RepairOptions& opts);

}  // namespace cairn
