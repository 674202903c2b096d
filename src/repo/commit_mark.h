// The commit mark of a store (ADR 0016): how a damaged index is told apart from a good one.
//
// Every batch written to a store's index through CommitCounter also writes the `k` row, the
// number of batches committed so far. The store's commit mark, the small file
// "<store>/commit-mark.json", records that number as of a moment when it was durable: a writable
// handle writes it when it closes, and every 30 s while it commits. An index whose `k` row is
// below the mark has lost commits that were acknowledged (its log was damaged, truncated or
// deleted, or an older copy of it was put back). Opening such a store is an error that names the
// index and the mark, before recovery could cut a segment tail or remove a segment that the lost
// commits used; nothing is written. A crash never causes it: the mark only ever records commits
// that were durable before it was written, so after a crash the index is at or past it.
// Only a loss of the commits since the last mark in a store whose writer then crashed goes
// unnoticed (docs/durability.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "index/index.h"

namespace cairn {

// Adds the `k` row (commit count) to every batch. Thread-safe; batches are numbered in the
// order they reach the index.
class CommitCounter : public IndexWrapper {
 public:
  // Reads the count from `inner` (0 when the row is absent: a store older than the mark).
  static Result<std::unique_ptr<CommitCounter>> Wrap(std::unique_ptr<Index> inner);
  Status Write(WriteBatch batch, bool sync) override;

  // Commits known durable: the count after the last synced batch. nullopt once a write failed
  // (the index may then hold a batch that is not durable; no mark may name it).
  std::optional<uint64_t> durable() const;
  // Called (under the counter's lock, after a synced batch) with the durable count at most
  // every `period`: the store writes its mark from there.
  void OnDurable(std::chrono::seconds period, std::function<void(uint64_t)> fn);

 private:
  CommitCounter(std::unique_ptr<Index> inner, uint64_t count)
      : IndexWrapper(std::move(inner)), count_(count), durable_(count) {}
  mutable std::mutex mu_;
  uint64_t count_;
  uint64_t durable_;
  bool failed_ = false;
  std::chrono::seconds period_{0};
  std::function<void(uint64_t)> on_durable_;
  std::chrono::steady_clock::time_point last_call_ = std::chrono::steady_clock::now();
};

// The number of batches the index holds (its `k` row; 0 when absent).
Result<uint64_t> ReadCommitCount(Index& index);

// The store's mark: nullopt when there is none. Corruption naming the file when it does not
// parse.
Result<std::optional<uint64_t>> LoadCommitMark(Storage& storage, const std::string& store_dir);
// Replaces the mark atomically.
Status SaveCommitMark(Storage& storage, const std::string& store_dir, uint64_t commits);

// Corruption naming the index and the mark when `count` (the index's) is below `mark`: the
// message says what was lost and that nothing was changed. `label`: "system store", ...
Status CheckCommitMark(Storage& storage, const std::string& store_dir, const std::string& label,
                       const std::string& index_where, uint64_t count,
                       std::optional<uint64_t> mark);

}  // namespace cairn
