// Index: ordered key/value metadata with atomic write batches. The embedded implementation is
// RocksDB; a distributed one keeps the same keyspace in RADOS omap. Callers own the key layout
// (see docs/format.md); the index only stores bytes.
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
  bool empty() const { return ops_.empty(); }
  void Clear() { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

class Index {
 public:
  virtual ~Index() = default;
  // nullopt when the key is absent.
  virtual Result<std::optional<std::string>> Get(std::string_view key) = 0;
  // Applies the batch atomically; with `sync`, durable before returning.
  virtual Status Write(const WriteBatch& batch, bool sync) = 0;
  // Calls `fn(key, value)` for every key starting with `prefix`, in key order, until it returns
  // false.
  virtual Status Scan(std::string_view prefix,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  virtual std::string Describe() const = 0;
  // Checks every row's integrity where the index can (an authenticated index checks each MAC),
  // calling `problem` with a message for each bad row.
  virtual Status Verify(const std::function<void(std::string)>& problem) {
    (void)problem;
    return Status::Ok();
  }
  // A read-only index sees the rows committed when it was opened; Refresh moves it to what is
  // committed now (a reader that finds a chunk moved by another process's compaction or
  // re-encryption refreshes and looks again). No-op for a writer, which always sees the latest.
  virtual Status Refresh() { return Status::Ok(); }
};

// RocksDB in `dir`; `read_only` opens a consistent view while another process may write.
Result<std::unique_ptr<Index>> OpenRocksIndex(const std::string& dir, bool create,
                                              bool read_only);

}  // namespace cairn
