// RocksDB index: one default column family, WAL on, synced batches for commits. Tuned small:
// the index holds about one row per MiB of unique data, so a modest block cache is plenty.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/debug.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "index/index.h"

namespace cairn {
namespace {

// RocksDB's own info log, written best-effort to index/LOG with warnings and errors only. The
// stock logger of Debian's RocksDB (built with assertions) aborts the process when a log write
// fails, which turned a full disk into a crash; a failed log line must never do that.
class BestEffortLogger : public rocksdb::Logger {
 public:
  explicit BestEffortLogger(const std::string& path)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), f_(std::fopen(path.c_str(), "ae")) {}
  ~BestEffortLogger() override {
    if (f_) std::fclose(f_);
  }
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (!f_) return;
    std::vfprintf(f_, format, ap);
    std::fputc('\n', f_);
    std::fflush(f_);  // errors (ENOSPC) are ignored on purpose
  }

 private:
  std::FILE* f_;
};

Status FromRocks(const rocksdb::Status& s, const std::string& where) {
  if (s.ok()) return Status::Ok();
  if (s.IsNoSpace()) return Status::NoSpace(where + ": " + s.ToString());
  if (s.IsCorruption()) return Status::Corruption(where + ": " + s.ToString());
  if (s.IsNotFound()) return Status::NotFound(where + ": " + s.ToString());
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos)
    return Status::Busy(where + ": " + s.ToString());
  return Status::IOError(where + ": " + s.ToString());
}

rocksdb::Options MakeOptions(const std::string& dir, bool create);

// A read-only open races with the writer's compactions: a table file listed in the MANIFEST it
// read can be deleted before it opens it. Such an open is simply tried again.
rocksdb::Status OpenReadOnly(const rocksdb::Options& o, const std::string& dir, rocksdb::DB** db) {
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, dir, db);
  for (int attempt = 0; !s.ok() && !s.IsNotFound() && attempt < 5; attempt++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
    s = rocksdb::DB::OpenForReadOnly(o, dir, db);
  }
  return s;
}

class RocksIndex : public Index {
 public:
  RocksIndex(std::unique_ptr<rocksdb::DB> db, std::string dir, bool read_only)
      : db_(std::move(db)), dir_(std::move(dir)), read_only_(read_only) {}

  Result<std::optional<std::string>> Get(std::string_view key) override {
    std::shared_lock lk(mu_);
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, dir_);
    return std::optional<std::string>(std::move(v));
  }

  Status Write(const WriteBatch& batch, bool sync) override {
    std::shared_lock lk(mu_);
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      if (op.is_delete)
        wb.Delete(op.key);
      else
        wb.Put(op.key, op.value);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return FromRocks(db_->Write(wo, &wb), "writing index " + dir_);
  }

  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    std::shared_lock lk(mu_);
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<std::string> values;
    std::vector<rocksdb::Status> st = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
    std::vector<std::optional<std::string>> out(keys.size());
    for (size_t i = 0; i < keys.size(); i++) {
      if (st[i].IsNotFound()) continue;
      if (!st[i].ok()) return FromRocks(st[i], dir_);
      out[i] = std::move(values[i]);
    }
    return out;
  }

  Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    // Held for the whole scan: Refresh must not close the database under a live iterator.
    std::shared_lock lk(mu_);
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    rocksdb::Slice p(prefix.data(), prefix.size());
    std::string_view from = start < prefix ? prefix : start;
    for (it->Seek(rocksdb::Slice(from.data(), from.size()));
         it->Valid() && it->key().starts_with(p); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size())))
        break;
    }
    return FromRocks(it->status(), "scanning index " + dir_);
  }

  std::string Describe() const override { return dir_; }

  Status Compact() override {
    if (read_only_) return Status::Invalid("index " + dir_ + " is open read-only: cannot compact");
    std::shared_lock lk(mu_);
    CAIRN_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flushing index " + dir_));
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    o.exclusive_manual_compaction = true;
    return FromRocks(db_->CompactRange(o, nullptr, nullptr), "compacting index " + dir_);
  }

  Status ScanHistory(std::string_view prefix, const ScanFn& fn) override;

  Status Refresh() override {
    if (!read_only_) return Status::Ok();
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = OpenReadOnly(MakeOptions(dir_, false), dir_, &raw);
    if (!s.ok()) return FromRocks(s, "reopening index " + dir_);
    std::unique_ptr<rocksdb::DB> fresh(raw);
    std::unique_lock lk(mu_);
    db_.swap(fresh);
    return Status::Ok();  // the old view closes here, after every reader has left it
  }

 private:
  std::shared_mutex mu_;  // readers share; Refresh swaps the database exclusively
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
  bool read_only_;
};

// Pages through rocksdb::GetAllKeyVersions (utilities/debug.h: memtables and every SST file) so
// that memory stays bounded: each page ends short of its last key, which the next page starts at.
Status RocksIndex::ScanHistory(std::string_view prefix, const ScanFn& fn) {
  // ValueType::kTypeValue in RocksDB's db/dbformat.h (not public): a Put. cairn writes no
  // merges; deletions and the other types carry no row value.
  constexpr int kRocksTypeValue = 0x1;
  constexpr size_t kPage = 65536;
  std::shared_lock lk(mu_);
  // The bound (inclusive) is the prefix's successor, or none ("") for "" or a last byte 0xff.
  std::string begin(prefix), end(prefix);
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
  for (;;) {
    std::vector<rocksdb::KeyVersion> page;
    rocksdb::Status s = rocksdb::GetAllKeyVersions(db_.get(), begin, end, kPage, &page);
    if (!s.ok()) return FromRocks(s, "listing row versions of index " + dir_);
    const bool full = page.size() >= kPage;
    std::string last = full ? page.back().user_key : std::string();
    for (const auto& kv : page) {
      if (full && kv.user_key == last) break;  // its versions come whole with the next page
      if (!std::string_view(kv.user_key).starts_with(prefix)) continue;
      if (kv.type != kRocksTypeValue) continue;
      if (!fn(kv.user_key, kv.value)) return Status::Ok();
    }
    if (!full) return Status::Ok();
    if (last == begin)
      return Status::Corruption("index " + dir_ + ": row has more than " + std::to_string(kPage) +
                                " versions");
    begin = std::move(last);
  }
}

rocksdb::Options MakeOptions(const std::string& dir, bool create) {
  rocksdb::Options o;
  o.info_log = std::make_shared<BestEffortLogger>(dir + "/LOG");
  // No WAL preallocation: on a nearly full disk it takes the last free space before the data.
  o.allow_fallocate = false;
  o.create_if_missing = create;
  o.error_if_exists = create;
  o.paranoid_checks = true;
  o.max_open_files = 256;
  o.keep_log_file_num = 2;
  o.max_background_jobs = 2;
  o.write_buffer_size = 16 << 20;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(16 << 20);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

Result<std::unique_ptr<Index>> OpenRocksIndex(const std::string& dir, bool create, bool read_only) {
  rocksdb::Options o = MakeOptions(dir, create);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = read_only ? OpenReadOnly(o, dir, &raw) : rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) return FromRocks(s, "opening index " + dir);
  return std::unique_ptr<Index>(new RocksIndex(std::unique_ptr<rocksdb::DB>(raw), dir, read_only));
}

}  // namespace cairn
