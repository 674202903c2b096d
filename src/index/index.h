// Index: ordered key/value metadata with atomic write batches. The embedded implementation is
// RocksDB; a distributed one keeps the same keyspace in RADOS omap. Every row prefix, the layer
// that owns it and its record version are listed in keyspace.h; the index itself only stores
// bytes. How one logical change maps onto batches is written down in docs/commit-protocol.md.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"

namespace cairn {

// A set of puts and deletes applied all-or-nothing.
class WriteBatch {
 public:
  struct Op {
    bool is_delete;
    std::string key, value;
  };
  void Put(std::string key, std::string value) {
    ops_.push_back({false, std::move(key), std::move(value)});
  }
  void Delete(std::string key) { ops_.push_back({true, std::move(key), {}}); }
  const std::vector<Op>& ops() const { return ops_; }
  // For an index wrapper that rewrites the batch it was handed (Index::Write takes it by value).
  std::vector<Op>& mutable_ops() { return ops_; }
  void Reserve(size_t ops) { ops_.reserve(ops); }
  bool empty() const { return ops_.empty(); }
  void Clear() { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;

class Index {
 public:
  virtual ~Index() = default;
  // nullopt when the key is absent.
  virtual Result<std::optional<std::string>> Get(std::string_view key) = 0;
  // Looks up many keys in one call (RocksDB MultiGet; one omap_get_vals_by_keys per shard on
  // RADOS): out[i] is the value of keys[i], nullopt when absent. The first error fails the
  // whole call. The default asks Get for each key.
  virtual Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys);
  // Applies the batch atomically; with `sync`, durable before returning. The batch is taken by
  // value so that a wrapper (masking, MACs, the commit counter) rewrites it in place and hands
  // it on with std::move: a caller that has no further use for it moves it in, and a commit of
  // thousands of rows is not copied once per layer.
  virtual Status Write(WriteBatch batch, bool sync) = 0;
  // Calls `fn(key, value)` for every key that starts with `prefix` and is >= `start`, in key
  // order, until it returns false. `start` below `prefix` means from the beginning of the
  // prefix, so a long scan can stop and resume after the last key it saw (pass that key plus a
  // zero byte) without holding anything open between the two.
  virtual Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) = 0;
  // Every key starting with `prefix`: ScanFrom(prefix, prefix, fn).
  Status Scan(std::string_view prefix, const ScanFn& fn) { return ScanFrom(prefix, prefix, fn); }
  virtual std::string Describe() const = 0;
  // Checks every row's integrity where the index can (an authenticated index checks each MAC),
  // calling `problem` with a message for each bad row.
  virtual Status Verify(const std::function<void(std::string)>& problem) {
    (void)problem;
    return Status::Ok();
  }
  // The caller now holds the store's cross-process commit gate (shared writers, ADR 0015):
  // finish any batch a crashed writer left half applied and see everything other writers
  // created. No-op for an index with one writer process.
  virtual Status CatchUp() { return Status::Ok(); }
  // A read-only index sees the rows committed when it was opened; Refresh moves it to what is
  // committed now (a reader that finds a chunk moved by another process's compaction or
  // re-encryption refreshes and looks again). No-op for a writer, which always sees the latest.
  virtual Status Refresh() { return Status::Ok(); }
  // Rewrites the index files so that no overwritten or deleted row version is left in them
  // (RocksDB: flush the memtable, then compact every level down to the bottommost, forced), as
  // re-encryption needs before an old key version may be retired. Writable handles only. The
  // default, for an index that keeps no old versions a client can reach, does nothing.
  virtual Status Compact() { return Status::Ok(); }
  // Calls `fn(key, value)` for every version of every row under `prefix` that the index files
  // still hold, overwritten ones included (deletions are skipped), in key order, until it
  // returns false. The default, for an index without old versions, is Scan.
  virtual Status ScanHistory(std::string_view prefix, const ScanFn& fn) { return Scan(prefix, fn); }
};

// Forwards every call to `inner`. Decorators (counting, fault injection, a crash simulator)
// derive from it and override only what they change.
class IndexWrapper : public Index {
 public:
  explicit IndexWrapper(std::unique_ptr<Index> inner) : inner_(std::move(inner)) {}
  Result<std::optional<std::string>> Get(std::string_view key) override { return inner_->Get(key); }
  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    return inner_->MultiGet(keys);
  }
  Status Write(WriteBatch batch, bool sync) override {
    return inner_->Write(std::move(batch), sync);
  }
  Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    return inner_->ScanFrom(prefix, start, fn);
  }
  std::string Describe() const override { return inner_->Describe(); }
  Status Verify(const std::function<void(std::string)>& problem) override {
    return inner_->Verify(problem);
  }
  Status Refresh() override { return inner_->Refresh(); }
  Status CatchUp() override { return inner_->CatchUp(); }
  Status Compact() override { return inner_->Compact(); }
  Status ScanHistory(std::string_view prefix, const ScanFn& fn) override {
    return inner_->ScanHistory(prefix, fn);
  }

 protected:
  Index& inner() { return *inner_; }

 private:
  std::unique_ptr<Index> inner_;
};

struct RocksIndexOptions {
  // A writable index keeps a file of this many bytes (DIR.reserve, beside its directory) that it
  // deletes when the disk is nearly full, so that it can still open and commit the removals
  // that free space (rm, forget, maintain) on a full disk; 0 = none. It is created again when
  // the disk has room (three times its size free) at a later writable open.
  uint64_t reserve_bytes = 0;
};

// RocksDB in `dir`; `read_only` opens a consistent view while another process may write.
// A writable index refuses a batch (NoSpace, naming the index) when the disk has less than
// 1 MiB plus twice the batch free after its reserve is gone, before RocksDB sees it: RocksDB
// (as Debian builds it, with assertions) aborts the process when a WAL write fails.
Result<std::unique_ptr<Index>> OpenRocksIndex(const std::string& dir, bool create, bool read_only,
                                              const RocksIndexOptions& opts = {});

}  // namespace cairn
