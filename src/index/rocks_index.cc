// RocksDB index: one default column family, WAL on, synced batches for commits. Tuned small:
// the index holds about one row per MiB of unique data, so a modest block cache is plenty.
//
// Damage is never a silent rollback: the WAL is replayed with kTolerateCorruptedTailRecords, so
// a record that fails its checksum is an error (only an incomplete last record, which a crash
// during its write leaves, is dropped); RocksDB's default, kPointInTimeRecovery, would drop
// everything after it without a word. A truncated or deleted WAL is caught one level up, by the
// store's commit mark (ADR 0016).
//
// A read-only open of an index that a writer in another process is changing can race with the
// writer's memtable flush: RocksDB reads the MANIFEST, then lists the WAL files, and a WAL that
// the flush deleted in between is simply missing from the view (rows of the middle of history
// gone, later ones there). Such an open is detected by comparing the MANIFEST and WAL files
// before and after it, and tried again.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/debug.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <thread>

#include "index/index.h"
#include "index/index_fs.h"

namespace cairn {
namespace {

// Hands a scanned row to cairn's callback. The iterator's key and value point into RocksDB's
// memtable, which the library (Debian's, built without ThreadSanitizer) fills and publishes to
// readers through atomics that TSan cannot see: a TSan build would report every read of a row
// that another thread committed moments before, from whichever cairn function reads it (a hash, a
// parse, a compare). So in a TSan build only, the row is copied out with TSan's checks off for the
// copy (AnnotateIgnoreReadsBegin turns off the thread's read and write checks alike), and the
// callback reads the copy, with every check on; no callback keeps the view past its return. Other
// builds pass the memtable's bytes as they are, without a copy.
#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
class RowView {
 public:
  bool Call(const ScanFn& fn, const rocksdb::Slice& key, const rocksdb::Slice& value) {
    {
      // Ends the ignored section even when an assign throws (bad_alloc).
      struct Ignored {
        Ignored() { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
        ~Ignored() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
      } ignored;
      key_.assign(key.data(), key.size());
      value_.assign(value.data(), value.size());
    }
    return fn(key_, value_);
  }

 private:
  std::string key_, value_;
};
#else
struct RowView {
  bool Call(const ScanFn& fn, const rocksdb::Slice& key, const rocksdb::Slice& value) {
    return fn(std::string_view(key.data(), key.size()),
              std::string_view(value.data(), value.size()));
  }
};
#endif

std::mutex routes_mu;
std::map<std::string, std::shared_ptr<rocksdb::FileSystem>>& Routes() {
  static auto* routes = new std::map<std::string, std::shared_ptr<rocksdb::FileSystem>>();
  return *routes;
}

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

rocksdb::Options MakeOptions(const std::string& dir, bool create, rocksdb::Env* env);

// The files a read-only open depends on: every MANIFEST with its size, and the names of the WAL
// files. A writer's flush or MANIFEST switch changes it; appends to the live WAL do not (a view
// that stops anywhere in the live WAL is consistent).
using FileStamp = std::vector<std::pair<std::string, uint64_t>>;

FileStamp StampOf(rocksdb::Env* env, const std::string& dir) {
  std::vector<rocksdb::Env::FileAttributes> files;
  FileStamp out;
  if (!env->GetChildrenFileAttributes(dir, &files).ok()) return {{"?", 0}};
  for (const auto& f : files) {
    if (f.name.rfind("MANIFEST-", 0) == 0 || f.name == "CURRENT")
      out.emplace_back(f.name, f.size_bytes);
    else if (f.name.size() > 4 && f.name.compare(f.name.size() - 4, 4, ".log") == 0)
      out.emplace_back(f.name, 0);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A read-only open that no writer's flush or compaction raced with (see the top of this file).
// A table file a writer deleted under the open fails it: also tried again.
rocksdb::Status OpenReadOnly(const rocksdb::Options& o, const std::string& dir, rocksdb::DB** db) {
  rocksdb::Status s;
  for (int attempt = 0; attempt < 20; attempt++) {
    if (attempt > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 * attempt, 50)));
    FileStamp before = StampOf(o.env, dir);
    s = rocksdb::DB::OpenForReadOnly(o, dir, db);
    if (s.ok() && before == StampOf(o.env, dir)) return s;
    if (s.ok()) {
      delete *db;
      *db = nullptr;
      s = rocksdb::Status::Busy("the index changed while it was opened; tried 20 times");
      continue;
    }
    // No CURRENT file: there is no index here (not a race).
    if (s.IsNotFound() || !o.env->FileExists(dir + "/CURRENT").ok()) return s;
  }
  return s;
}

// ---- the space reserve (RocksIndexOptions::reserve_bytes)

constexpr uint64_t kMiB = 1 << 20;

std::string ReservePath(const std::string& dir) { return dir + ".reserve"; }

// Free bytes on the filesystem of `dir`; UINT64_MAX when it cannot be told.
uint64_t FreeBytes(rocksdb::Env* env, const std::string& dir) {
  uint64_t free = 0;
  return env->GetFreeSpace(dir, &free).ok() ? free : UINT64_MAX;
}

// Deletes the reserve; whether there was one.
bool ReleaseReserve(rocksdb::Env* env, const std::string& dir) {
  return env->DeleteFile(ReservePath(dir)).ok();
}

// Creates the reserve when it is missing and the disk has three times its size free. Best
// effort: a reserve that cannot be written is simply not there.
void EnsureReserve(rocksdb::Env* env, const std::string& dir, uint64_t bytes) {
  const std::string path = ReservePath(dir);
  if (bytes == 0 || env->FileExists(path).ok() || FreeBytes(env, dir) < 3 * bytes) return;
  const std::string tmp = path + ".tmp";
  std::unique_ptr<rocksdb::WritableFile> f;
  rocksdb::Status s = env->NewWritableFile(tmp, &f, rocksdb::EnvOptions());
  const std::string zeros(kMiB, '\0');
  for (uint64_t done = 0; s.ok() && done < bytes; done += zeros.size())
    s = f->Append(rocksdb::Slice(zeros.data(), std::min<uint64_t>(zeros.size(), bytes - done)));
  if (s.ok()) s = f->Sync();
  if (f) (void)f->Close();
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) (void)env->DeleteFile(tmp);
}

class RocksIndex : public Index {
 public:
  RocksIndex(std::unique_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db, std::string dir,
             bool read_only)
      : env_(std::move(env)), db_(std::move(db)), dir_(std::move(dir)), read_only_(read_only) {}

  Result<std::optional<std::string>> Get(std::string_view key) override {
    std::shared_lock lk(mu_);
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, dir_);
    return std::optional<std::string>(std::move(v));
  }

  Status Write(WriteBatch batch, bool sync) override {
    std::shared_lock lk(mu_);
    CAIRN_RETURN_IF_ERROR(RoomFor(batch));
    // In key order: the memtable's skip list keeps the place of the last insert (its "splice"),
    // so keys inserted in order each take a short step instead of a search from the top, which
    // with random keys (chunk ids, masked rows) cost a cache miss per level. The sort is stable:
    // two operations on one key keep their order, the later one winning as before.
    const auto& ops = batch.ops();
    std::vector<uint32_t> order(ops.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return ops[a].key < ops[b].key; });
    // Sized up front: grown by doubling, the batch of a commit of thousands of rows was copied
    // again and again into fresh pages.
    size_t bytes = 64;
    for (const auto& op : ops) bytes += op.key.size() + op.value.size() + 16;
    rocksdb::WriteBatch wb(bytes);
    for (uint32_t i : order) {
      const auto& op = ops[i];
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
    RowView row;
    for (it->Seek(rocksdb::Slice(from.data(), from.size()));
         it->Valid() && it->key().starts_with(p); it->Next()) {
      if (!row.Call(fn, it->key(), it->value())) break;
    }
    return FromRocks(it->status(), "scanning index " + dir_);
  }

  std::string Describe() const override { return dir_; }

  // NoSpace unless the disk has room for the batch in the WAL (see OpenRocksIndex).
  Status RoomFor(const WriteBatch& batch) {
    uint64_t need = kMiB;
    for (const auto& op : batch.ops()) need += 2 * (op.key.size() + op.value.size() + 16);
    rocksdb::Env* env = env_ ? env_.get() : rocksdb::Env::Default();
    uint64_t free = FreeBytes(env, dir_);
    if (free >= need) return Status::Ok();
    if (ReleaseReserve(env, dir_)) free = FreeBytes(env, dir_);
    if (free >= need) return Status::Ok();
    return Status::NoSpace("writing index " + dir_ + ": No space left on device (" +
                           std::to_string(free) + " bytes free, a commit needs " +
                           std::to_string(need) + ")");
  }

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
    rocksdb::Status s = OpenReadOnly(MakeOptions(dir_, false, env_.get()), dir_, &raw);
    if (!s.ok()) return FromRocks(s, "reopening index " + dir_);
    std::unique_ptr<rocksdb::DB> fresh(raw);
    std::unique_lock lk(mu_);
    db_.swap(fresh);
    return Status::Ok();  // the old view closes here, after every reader has left it
  }

 private:
  std::shared_mutex mu_;               // readers share; Refresh swaps the database exclusively
  std::unique_ptr<rocksdb::Env> env_;  // a routed file system's (index_fs.h); outlives db_
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

rocksdb::Options MakeOptions(const std::string& dir, bool create, rocksdb::Env* env) {
  rocksdb::Options o;
  if (env) o.env = env;
  o.info_log = std::make_shared<BestEffortLogger>(dir + "/LOG");
  // A record that fails its checksum is an error, never the silent end of the log.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // No WAL preallocation: on a nearly full disk it takes the last free space before the data.
  o.allow_fallocate = false;
  o.create_if_missing = create;
  o.error_if_exists = create;
  o.paranoid_checks = true;
  o.max_open_files = 256;
  o.keep_log_file_num = 2;
  o.max_background_jobs = 2;
  o.write_buffer_size = 16 << 20;
  // A bloom filter over the memtable's keys (rocksdb/advanced_options.h): a lookup of a key
  // that is not there, which is every dedup lookup of a new chunk, skips the skiplist search
  // (11% of a server's time under 1 MiB deduplicated writes, mostly cache misses).
  o.memtable_prefix_bloom_size_ratio = 0.02;
  o.memtable_whole_key_filtering = true;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(16 << 20);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

void RouteIndexFiles(const std::string& root, std::shared_ptr<rocksdb::FileSystem> fs) {
  std::lock_guard lk(routes_mu);
  Routes()[root] = std::move(fs);
}

void UnrouteIndexFiles(const std::string& root) {
  std::lock_guard lk(routes_mu);
  Routes().erase(root);
}

std::shared_ptr<rocksdb::FileSystem> IndexFileSystemFor(const std::string& dir) {
  std::lock_guard lk(routes_mu);
  std::shared_ptr<rocksdb::FileSystem> best;
  size_t best_len = 0;
  for (const auto& [root, fs] : Routes()) {
    bool inside =
        dir == root || (dir.size() > root.size() && dir.compare(0, root.size(), root) == 0 &&
                        dir[root.size()] == '/');
    if (inside && root.size() >= best_len) {
      best = fs;
      best_len = root.size();
    }
  }
  return best;
}

Result<std::unique_ptr<Index>> OpenRocksIndex(const std::string& dir, bool create, bool read_only,
                                              const RocksIndexOptions& opts) {
  std::unique_ptr<rocksdb::Env> env;
  if (auto fs = IndexFileSystemFor(dir)) env = rocksdb::NewCompositeEnv(fs);
  rocksdb::Options o = MakeOptions(dir, create, env.get());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (read_only) {
    s = OpenReadOnly(o, dir, &raw);
  } else {
    // Opening writes (a MANIFEST, an OPTIONS file, the recovered log as a table): on a nearly
    // full disk the reserve makes room first.
    const bool low = opts.reserve_bytes && FreeBytes(o.env, dir) < opts.reserve_bytes;
    if (low) ReleaseReserve(o.env, dir);
    s = rocksdb::DB::Open(o, dir, &raw);
    if (s.IsNoSpace() && ReleaseReserve(o.env, dir)) s = rocksdb::DB::Open(o, dir, &raw);
    if (s.ok() && !low) EnsureReserve(o.env, dir, opts.reserve_bytes);
  }
  if (!s.ok()) return FromRocks(s, "opening index " + dir);
  return std::unique_ptr<Index>(
      new RocksIndex(std::move(env), std::unique_ptr<rocksdb::DB>(raw), dir, read_only));
}

}  // namespace cairn
