// The crash-simulating rocksdb::FileSystem of the index (crash_fs.h).
#include "index/crash_fs.h"

#include <rocksdb/file_system.h>

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "index/index_fs.h"

namespace cairn {
namespace {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// A directory change that is not durable until its directory is fsynced.
struct DirEntry {
  enum Kind { kCreateFile, kCreateDir, kRename } kind;
  std::string path;                   // created, or the rename's target
  std::string from;                   // the rename's source
  std::optional<std::string> target;  // what the rename replaced (small files only)
};

class CrashFs : public rocksdb::FileSystemWrapper, public CrashSim::Participant {
 public:
  explicit CrashFs(CrashSim* sim)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()), sim_(sim) {
    sim_->AddParticipant(this);
  }
  ~CrashFs() override { sim_->RemoveParticipant(this); }
  const char* Name() const override { return "CairnCrashFs"; }

  // --- the power
  IOStatus Dead(const std::string& what) const {
    return IOStatus::IOError(sim_->PowerOff(what).message());
  }
  // Gate for a change: nullopt to go ahead, an error when the power is (now) off.
  std::optional<IOStatus> Gate(const std::string& what, bool* tear = nullptr) {
    CrashSim::Gate g = sim_->Enter(what);
    if (g == CrashSim::Gate::kGo) return std::nullopt;
    if (g == CrashSim::Gate::kTear && tear) {
      *tear = true;
      return std::nullopt;
    }
    return Dead(what);
  }
  bool Off() const { return sim_->cut(); }
  CrashSim* sim() const { return sim_; }

  // --- bookkeeping (under mu_)
  void Appended(const std::string& f, uint64_t size) {
    std::lock_guard lk(mu_);
    files_[f].size = size;
  }
  void Synced(const std::string& f, uint64_t size) {
    std::lock_guard lk(mu_);
    auto& st = files_[f];
    st.size = size;
    st.synced = size;
  }
  void Pending(DirEntry e) {
    std::lock_guard lk(mu_);
    pending_[ParentDir(e.path)].push_back(std::move(e));
  }
  void DirSynced(const std::string& dir) override {
    std::lock_guard lk(mu_);
    pending_.erase(dir);
  }

  // --- files
  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r,
                           IODebugContext* dbg) override;
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<rocksdb::FSWritableFile>* r,
                              IODebugContext* dbg) override;
  IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSWritableFile>* r,
                             IODebugContext* dbg) override {
    (void)f, (void)old, (void)o, (void)r, (void)dbg;
    return IOStatus::NotSupported("crash simulation: WAL recycling");
  }
  IOStatus NewRandomRWFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                           IODebugContext* dbg) override {
    (void)f, (void)o, (void)r, (void)dbg;
    return IOStatus::NotSupported("crash simulation: random read-write files");
  }
  IOStatus NewSequentialFile(const std::string& f, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSSequentialFile>* r,
                             IODebugContext* dbg) override {
    if (Off()) return Dead("reading " + f);
    return target()->NewSequentialFile(f, o, r, dbg);
  }
  IOStatus NewRandomAccessFile(const std::string& f, const FileOptions& o,
                               std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                               IODebugContext* dbg) override {
    if (Off()) return Dead("reading " + f);
    return target()->NewRandomAccessFile(f, o, r, dbg);
  }
  IOStatus NewDirectory(const std::string& d, const IOOptions& o,
                        std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* dbg) override;
  IOStatus FileExists(const std::string& f, const IOOptions& o, IODebugContext* dbg) override {
    if (Off()) return Dead("looking up " + f);
    return target()->FileExists(f, o, dbg);
  }
  IOStatus GetChildren(const std::string& d, const IOOptions& o, std::vector<std::string>* r,
                       IODebugContext* dbg) override {
    if (Off()) return Dead("listing " + d);
    return target()->GetChildren(d, o, r, dbg);
  }
  IOStatus GetChildrenFileAttributes(const std::string& d, const IOOptions& o,
                                     std::vector<rocksdb::FileAttributes>* r,
                                     IODebugContext* dbg) override {
    if (Off()) return Dead("listing " + d);
    return target()->GetChildrenFileAttributes(d, o, r, dbg);
  }
  IOStatus GetFileSize(const std::string& f, const IOOptions& o, uint64_t* s,
                       IODebugContext* dbg) override {
    if (Off()) return Dead("sizing " + f);
    return target()->GetFileSize(f, o, s, dbg);
  }
  IOStatus DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) override {
    if (auto e = Gate("deleting " + f)) return *e;
    IOStatus s = target()->DeleteFile(f, o, dbg);
    std::lock_guard lk(mu_);
    files_.erase(f);
    return s;
  }
  IOStatus Truncate(const std::string& f, size_t size, const IOOptions& o,
                    IODebugContext* dbg) override {
    if (auto e = Gate("truncating " + f)) return *e;
    IOStatus s = target()->Truncate(f, size, o, dbg);
    std::lock_guard lk(mu_);
    auto it = files_.find(f);
    if (it != files_.end()) {
      it->second.size = size;
      it->second.synced = std::min<uint64_t>(it->second.synced, size);
    }
    return s;
  }
  IOStatus CreateDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) override {
    return MakeDir(d, o, dbg, false);
  }
  IOStatus CreateDirIfMissing(const std::string& d, const IOOptions& o,
                              IODebugContext* dbg) override {
    return MakeDir(d, o, dbg, true);
  }
  IOStatus DeleteDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) override {
    if (auto e = Gate("removing " + d)) return *e;
    return target()->DeleteDir(d, o, dbg);
  }
  IOStatus RenameFile(const std::string& s, const std::string& t, const IOOptions& o,
                      IODebugContext* dbg) override;
  IOStatus LinkFile(const std::string& s, const std::string& t, const IOOptions& o,
                    IODebugContext* dbg) override {
    (void)s, (void)t, (void)o, (void)dbg;
    return IOStatus::NotSupported("crash simulation: hard links");
  }
  IOStatus LockFile(const std::string& f, const IOOptions& o, rocksdb::FileLock** l,
                    IODebugContext* dbg) override {
    if (Off()) return Dead("locking " + f);
    return target()->LockFile(f, o, l, dbg);
  }
  // Always passes: a database closed after the cut must still drop its lock.
  IOStatus UnlockFile(rocksdb::FileLock* l, const IOOptions& o, IODebugContext* dbg) override {
    return target()->UnlockFile(l, o, dbg);
  }

  // --- the restart
  Status Recover(std::mt19937_64& rng) override;
  void Reset() override {
    std::lock_guard lk(mu_);
    files_.clear();
    pending_.clear();
  }

 private:
  IOStatus MakeDir(const std::string& d, const IOOptions& o, IODebugContext* dbg, bool if_missing);
  Status RemoveTree(const std::string& path);
  Status WriteWhole(const std::string& path, const std::string& data);

  struct FileState {
    uint64_t size = 0, synced = 0;
  };
  CrashSim* sim_;
  std::mutex mu_;
  std::map<std::string, FileState> files_;                // written since the last restart
  std::map<std::string, std::vector<DirEntry>> pending_;  // by directory, oldest first
};

// A file RocksDB writes: appends and syncs are recorded.
class CrashWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  CrashWritableFile(CrashFs* fs, std::string path, std::unique_ptr<rocksdb::FSWritableFile> f,
                    uint64_t size)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(f)),
        fs_(fs),
        path_(std::move(path)),
        size_(size) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    bool tear = false;
    if (auto e = fs_->Gate("appending to " + path_, &tear)) return *e;
    Slice part = data;
    if (tear) part = Slice(data.data(), data.size() ? fs_->sim()->Random() % data.size() : 0);
    IOStatus s = target()->Append(part, o, dbg);
    if (s.ok()) size_ += part.size();
    fs_->Appended(path_, size_);
    if (tear) return fs_->Dead("appending to " + path_);
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo&,
                  IODebugContext* dbg) override {
    return Append(data, o, dbg);
  }
  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::NotSupported("crash simulation: positioned appends");
  }
  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&,
                            const rocksdb::DataVerificationInfo&, IODebugContext*) override {
    return IOStatus::NotSupported("crash simulation: positioned appends");
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    if (auto e = fs_->Gate("truncating " + path_)) return *e;
    IOStatus s = target()->Truncate(size, o, dbg);
    if (s.ok()) size_ = size;
    fs_->Appended(path_, size_);
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override { return DoSync(o, dbg, false); }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override { return DoSync(o, dbg, true); }
  IOStatus Flush(const IOOptions& o, IODebugContext* dbg) override {
    if (fs_->Off()) return fs_->Dead("flushing " + path_);
    return target()->Flush(o, dbg);
  }
  // Closing is not a sync; the descriptor is always closed.
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = target()->Close(o, dbg);
    if (fs_->Off()) return fs_->Dead("closing " + path_);
    return s;
  }
  IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();  // not a durability point; skipping it changes nothing
  }

 private:
  IOStatus DoSync(const IOOptions& o, IODebugContext* dbg, bool full) {
    if (auto e = fs_->Gate("syncing " + path_)) return *e;
    IOStatus s = full ? target()->Fsync(o, dbg) : target()->Sync(o, dbg);
    if (s.ok()) fs_->Synced(path_, size_);
    return s;
  }
  CrashFs* fs_;
  std::string path_;
  uint64_t size_;
};

// A directory handle: its fsync makes the directory's entries durable.
class CrashDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  CrashDirectory(CrashFs* fs, CrashSim* sim, std::string path,
                 std::unique_ptr<rocksdb::FSDirectory> d)
      : rocksdb::FSDirectoryWrapper(std::move(d)), fs_(fs), sim_(sim), path_(std::move(path)) {}
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return FsyncWithDirOptions(o, dbg, rocksdb::DirFsyncOptions());
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& opts) override {
    if (auto e = fs_->Gate("syncing directory " + path_)) return *e;
    IOStatus s = rocksdb::FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, opts);
    if (s.ok()) sim_->DirSynced(path_);
    return s;
  }

 private:
  CrashFs* fs_;
  CrashSim* sim_;
  std::string path_;
};

IOStatus CrashFs::NewWritableFile(const std::string& f, const FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                  IODebugContext* dbg) {
  if (auto e = Gate("creating " + f)) return *e;
  bool existed = target()->FileExists(f, IOOptions(), nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> inner;
  IOStatus s = target()->NewWritableFile(f, o, &inner, dbg);
  if (!s.ok()) return s;
  if (!existed) Pending({DirEntry::kCreateFile, f, {}, {}});
  Synced(f, 0);  // an existing file was truncated: that is as durable as anything
  {
    std::lock_guard lk(mu_);
    files_[f].synced = 0;
  }
  r->reset(new CrashWritableFile(this, f, std::move(inner), 0));
  return s;
}

IOStatus CrashFs::ReopenWritableFile(const std::string& f, const FileOptions& o,
                                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                                     IODebugContext* dbg) {
  if (auto e = Gate("reopening " + f)) return *e;
  bool existed = target()->FileExists(f, IOOptions(), nullptr).ok();
  uint64_t size = 0;
  if (existed) (void)target()->GetFileSize(f, IOOptions(), &size, nullptr);
  std::unique_ptr<rocksdb::FSWritableFile> inner;
  IOStatus s = target()->ReopenWritableFile(f, o, &inner, dbg);
  if (!s.ok()) return s;
  if (!existed) Pending({DirEntry::kCreateFile, f, {}, {}});
  {
    std::lock_guard lk(mu_);
    auto it = files_.find(f);
    if (it == files_.end()) files_[f] = {size, size};
  }
  r->reset(new CrashWritableFile(this, f, std::move(inner), size));
  return s;
}

IOStatus CrashFs::NewDirectory(const std::string& d, const IOOptions& o,
                               std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* dbg) {
  if (Off()) return Dead("opening " + d);
  std::unique_ptr<rocksdb::FSDirectory> inner;
  IOStatus s = target()->NewDirectory(d, o, &inner, dbg);
  if (s.ok()) r->reset(new CrashDirectory(this, sim_, d, std::move(inner)));
  return s;
}

IOStatus CrashFs::MakeDir(const std::string& d, const IOOptions& o, IODebugContext* dbg,
                          bool if_missing) {
  if (auto e = Gate("creating " + d)) return *e;
  bool existed = target()->FileExists(d, IOOptions(), nullptr).ok();
  IOStatus s =
      if_missing ? target()->CreateDirIfMissing(d, o, dbg) : target()->CreateDir(d, o, dbg);
  if (s.ok() && !existed) Pending({DirEntry::kCreateDir, d, {}, {}});
  return s;
}

IOStatus CrashFs::RenameFile(const std::string& s, const std::string& t, const IOOptions& o,
                             IODebugContext* dbg) {
  if (auto e = Gate("renaming " + s)) return *e;
  DirEntry entry{DirEntry::kRename, t, s, {}};
  uint64_t size = 0;
  if (target()->GetFileSize(t, IOOptions(), &size, nullptr).ok() && size <= (1u << 20)) {
    std::string data(size, '\0');
    std::unique_ptr<rocksdb::FSSequentialFile> in;
    Slice got;
    if (target()->NewSequentialFile(t, FileOptions(), &in, nullptr).ok() &&
        in->Read(size, IOOptions(), &got, data.data(), nullptr).ok() && got.size() == size)
      entry.target = got.ToString();
  }
  IOStatus st = target()->RenameFile(s, t, o, dbg);
  if (!st.ok()) return st;
  Pending(std::move(entry));
  std::lock_guard lk(mu_);
  auto it = files_.find(s);
  if (it != files_.end()) {
    files_[t] = it->second;
    files_.erase(s);
  }
  return st;
}

Status CrashFs::WriteWhole(const std::string& path, const std::string& data) {
  std::unique_ptr<rocksdb::FSWritableFile> f;
  IOStatus s = target()->NewWritableFile(path, FileOptions(), &f, nullptr);
  if (s.ok()) s = f->Append(data, IOOptions(), nullptr);
  if (s.ok()) s = f->Sync(IOOptions(), nullptr);
  if (s.ok()) s = f->Close(IOOptions(), nullptr);
  if (!s.ok()) return Status::IOError("crash simulation: restoring " + path + ": " + s.ToString());
  return Status::Ok();
}

Status CrashFs::RemoveTree(const std::string& path) {
  std::vector<std::string> children;
  if (!target()->GetChildren(path, IOOptions(), &children, nullptr).ok()) {
    (void)target()->DeleteFile(path, IOOptions(), nullptr);
    return Status::Ok();
  }
  for (const auto& c : children) {
    if (c == "." || c == "..") continue;
    CAIRN_RETURN_IF_ERROR(RemoveTree(path + "/" + c));
  }
  (void)target()->DeleteDir(path, IOOptions(), nullptr);
  return Status::Ok();
}

Status CrashFs::Recover(std::mt19937_64& rng) {
  std::lock_guard lk(mu_);
  // Appended data past the last sync: a random prefix of it reached the disk.
  for (const auto& [path, st] : files_) {
    if (st.size <= st.synced) continue;
    // All of it, none of it, or a random prefix (a torn last write), one third each.
    const uint64_t unsynced = st.size - st.synced;
    const uint64_t r = rng() % 3;
    uint64_t keep = st.synced + (r == 0 ? unsynced : r == 1 ? 0 : rng() % (unsynced + 1));
    if (!target()->FileExists(path, IOOptions(), nullptr).ok()) continue;
    // The default file system has no Truncate(path): cut through a reopened handle.
    std::unique_ptr<rocksdb::FSWritableFile> f;
    IOStatus s = target()->ReopenWritableFile(path, FileOptions(), &f, nullptr);
    if (s.ok()) s = f->Truncate(keep, IOOptions(), nullptr);
    if (s.ok()) s = f->Fsync(IOOptions(), nullptr);
    if (s.ok()) s = f->Close(IOOptions(), nullptr);
    if (!s.ok())
      return Status::IOError("crash simulation: truncating " + path + ": " + s.ToString());
  }
  // Directory changes no fsync covered: the newest ones are lost, oldest kept. Deeper
  // directories first (they sort after their parents): a directory whose own entry is then lost
  // goes as a whole, with whatever was pending inside it.
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    auto& [dir, entries] = *it;
    size_t keep = rng() % (entries.size() + 1);
    for (size_t i = entries.size(); i-- > keep;) {
      const DirEntry& e = entries[i];
      if (e.kind == DirEntry::kRename) {
        (void)target()->RenameFile(e.path, e.from, IOOptions(), nullptr);
        if (e.target) CAIRN_RETURN_IF_ERROR(WriteWhole(e.path, *e.target));
      } else {
        CAIRN_RETURN_IF_ERROR(RemoveTree(e.path));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

CrashIndexRoute::CrashIndexRoute(CrashSim& sim, std::string root) : root_(std::move(root)) {
  auto fs = std::make_shared<CrashFs>(&sim);
  fs_ = fs;
  RouteIndexFiles(root_, fs);
}

CrashIndexRoute::~CrashIndexRoute() { UnrouteIndexFiles(root_); }

}  // namespace cairn
