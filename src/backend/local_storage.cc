// Local storage: a repository as a directory tree. Every name is walked from a descriptor of the
// root, one component at a time, with openat(O_NOFOLLOW) (O_DIRECTORY for directories), so no
// symbolic link inside the repository is ever followed; a link where a file or directory should
// be is an error naming it. The root path itself may be a link (the user chose it).
//
// On disk:
//   - WriteFile writes ".<name>.tmp-<12 hex>" (random, O_CREAT|O_EXCL, 0600) beside the target,
//     fsyncs it, renames it over the target (renameat2(RENAME_NOREPLACE), or link + unlink where
//     the filesystem lacks it, for `exclusive`), then fsyncs the directory. The temporary file is
//     removed on every failure path; one left by a crash is hidden from List and may be deleted.
//   - A lock is flock(LOCK_EX|LOCK_NB) on a regular file (created 0600, never deleted) holding
//     the owner's description and "\n"; the kernel releases it when the holder exits or dies.
//     A file holding only digits (older cairn: a bare pid) is shown as "pid N".
//   - Segments: "%08x.seg" files in the segment directory, positional reads and writes (pread/
//     pwrite are safe from many threads at once), fdatasync for durability. A read-only handle
//     opens them O_RDONLY, so it works on read-only media.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "backend/storage.h"

namespace cairn {
namespace {

// An owned file descriptor, closed when destroyed.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes the descriptor and returns close()'s errno (0 when it succeeded).
  int Close() {
    int err = 0;
    if (fd_ >= 0 && ::close(fd_) != 0) err = errno;
    fd_ = -1;
    return err;
  }

 private:
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::string SymlinkMessage(const std::string& what) {
  return what + " is a symbolic link: cairn does not follow links inside a repository";
}

// What kind of file `mode` is, for messages.
const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// The error for a failed open of `leaf` (named `what`) in directory `parent`: a symbolic link or
// a non-directory gets its own message, anything else its errno.
Status OpenError(int err, int parent, const std::string& leaf, const std::string& what) {
  if (err == ELOOP || err == ENOTDIR) {
    struct stat st;
    if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(st.st_mode)) return Status::Invalid(SymlinkMessage(what));
      if (!S_ISDIR(st.st_mode)) return Status::Invalid(what + " is not a directory");
    }
  }
  return Status::FromErrno(err, what);
}

// stat of `leaf` in `dir` without following a link; nullopt when it does not exist.
Result<std::optional<struct stat>> StatAt(int dir, const std::string& leaf,
                                          const std::string& what) {
  struct stat st;
  if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<struct stat>();
    return Status::FromErrno(errno, what);
  }
  return std::optional<struct stat>(st);
}

Status FsyncDir(int fd, const std::string& what) {
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "syncing directory " + what);
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing " + what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<std::string> RandomHex(size_t bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::vector<unsigned char> b(bytes);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1)
    return Status::IOError("no randomness for a temporary file name");
  std::string out;
  for (unsigned char c : b) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// The names in directory `dir` (an open descriptor, not consumed), without "." and "..". The
// directory is read through a descriptor of its own (a dup would share the read position with
// `dir`, and with other threads listing it).
Result<std::vector<std::string>> ReadDirNames(int dir, const std::string& what) {
  int own = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (own < 0) return Status::FromErrno(errno, what);
  DIR* d = ::fdopendir(own);
  if (d == nullptr) {
    int err = errno;
    ::close(own);
    return Status::FromErrno(err, what);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno(err, "listing " + what);
  return names;
}

// Removes directory `leaf` of `parent` and everything in it, never following a link (a link
// inside is removed itself).
Status RemoveTree(int parent, const std::string& leaf, const std::string& what) {
  Fd dir(::openat(parent, leaf.c_str(), kDirFlags));
  if (!dir.valid()) return OpenError(errno, parent, leaf, what);
  CAIRN_ASSIGN_OR_RETURN(auto names, ReadDirNames(dir.get(), what));
  for (const std::string& n : names) {
    const std::string sub = what + "/" + n;
    CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(dir.get(), n, sub));
    if (!st) continue;
    if (S_ISDIR(st->st_mode)) {
      CAIRN_RETURN_IF_ERROR(RemoveTree(dir.get(), n, sub));
    } else if (::unlinkat(dir.get(), n.c_str(), 0) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "removing " + sub);
    }
  }
  if (::unlinkat(parent, leaf.c_str(), AT_REMOVEDIR) != 0)
    return Status::FromErrno(errno, "removing " + what);
  return Status::Ok();
}

// The owner recorded in a lock file, for the Busy message: its first line, printable
// characters only; a bare number (a pid written by an older cairn) reads "pid N".
std::string ReadLockOwner(int fd) {
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  if (text.empty()) return "an unknown process (the lock file names no owner)";
  if (text.find_first_not_of("0123456789") == std::string::npos) return "pid " + text;
  return text;
}

class LocalLock : public StorageLock {
 public:
  explicit LocalLock(Fd fd) : fd_(std::move(fd)) {}
  // flock locks have no lease: the kernel holds them until the descriptor closes (or the
  // process dies), so there is nothing to renew.
  Status Renew() override { return Status::Ok(); }

 private:
  Fd fd_;
};

// ---- segments

class LocalBackend : public Backend {
 public:
  LocalBackend(Fd dir, std::string where, bool writable)
      : dir_(std::move(dir)), where_(std::move(where)), writable_(writable) {}
  ~LocalBackend() override = default;

  std::string Describe(SegmentId s) const override { return where_ + "/" + FileName(s); }

  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable(s));
    CAIRN_ASSIGN_OR_RETURN(SharedFd held, FdOf(s, true));
    const int fd = held->get();
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "writing " + Describe(s));
      }
      done += n;
    }
    StartWriteback(fd, data.size());
    return Status::Ok();
  }

  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override {
    CAIRN_ASSIGN_OR_RETURN(SharedFd held, FdOf(s, false));
    size_t done = 0;
    bool reopened = false;
    while (done < out.size()) {
      ssize_t n = ::pread(held->get(), out.data() + done, out.size() - done, off + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EBADF && !reopened) {
          // Not ours to close (descriptors are shared until their last user is done), but a
          // descriptor the process lost is opened again, once.
          DropCachedFd(s, held);
          CAIRN_ASSIGN_OR_RETURN(held, FdOf(s, false));
          reopened = true;
          continue;
        }
        return Status::FromErrno(errno, "reading " + Describe(s));
      }
      if (n == 0)
        return Status::Corruption(Describe(s) + " is truncated: wanted " +
                                  std::to_string(out.size()) + " bytes at offset " +
                                  std::to_string(off) + ", file ends at " +
                                  std::to_string(off + done));
      done += n;
    }
    return Status::Ok();
  }

  void WillNeed(SegmentId s, uint64_t off, uint64_t len) override {
    auto fd = FdOf(s, false);
    if (fd.ok())
      (void)::posix_fadvise((*fd)->get(), static_cast<off_t>(off), static_cast<off_t>(len),
                            POSIX_FADV_WILLNEED);
  }

  // Every kWritebackBytes written, starts the kernel writing the file's dirty pages to the
  // device (sync_file_range(2) SYNC_FILE_RANGE_WRITE: it does not wait for them). Without it
  // nothing reached the disk until the commit's fdatasync, which then wrote the whole put at
  // disk speed while the CPUs sat idle: 0.56 s of a 1.6 s put of 1 GiB. RocksDB's
  // `bytes_per_sync` does the same for its files. Only a hint: errors are left to Sync.
  static constexpr uint64_t kWritebackBytes = 8 << 20;
  void StartWriteback(int fd, uint64_t written) {
    if (unwritten_.fetch_add(written) + written < kWritebackBytes) return;
    unwritten_ = 0;
    (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }

  // Also makes a new segment's directory entry durable when that failed at its creation.
  Status Sync(SegmentId s) override {
    CAIRN_ASSIGN_OR_RETURN(SharedFd held, FdOf(s, false));
    if (::fdatasync(held->get()) != 0) return Status::FromErrno(errno, "syncing " + Describe(s));
    if (dir_dirty_.load()) {
      CAIRN_RETURN_IF_ERROR(FsyncDir(dir_.get(), where_));
      dir_dirty_ = false;
    }
    return Status::Ok();
  }

  Result<uint64_t> Size(SegmentId s) override {
    CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(dir_.get(), FileName(s), Describe(s)));
    if (!st) return Status::NotFound(Describe(s) + ": no such segment");
    if (!S_ISREG(st->st_mode))
      return Status::Invalid(S_ISLNK(st->st_mode) ? SymlinkMessage(Describe(s))
                                                  : Describe(s) + " is " + KindOf(st->st_mode));
    return static_cast<uint64_t>(st->st_size);
  }

  Status Truncate(SegmentId s, uint64_t size) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable(s));
    CAIRN_ASSIGN_OR_RETURN(SharedFd held, FdOf(s, false));
    if (::ftruncate(held->get(), static_cast<off_t>(size)) != 0)
      return Status::FromErrno(errno, "truncating " + Describe(s));
    return Status::Ok();
  }

  Status Discard(SegmentId s, uint64_t off, uint64_t len) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable(s));
    CAIRN_ASSIGN_OR_RETURN(SharedFd held, FdOf(s, false));
    if (::fallocate(held->get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(off), static_cast<off_t>(len)) != 0 &&
        errno != EOPNOTSUPP)
      return Status::FromErrno(errno, "releasing space in " + Describe(s));
    return Status::Ok();
  }

  Status Remove(SegmentId s) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable(s));
    {
      // Closed when its last user (a read in flight on another thread) is done with it.
      std::lock_guard lk(mu_);
      fds_.erase(s);
    }
    if (::unlinkat(dir_.get(), FileName(s).c_str(), 0) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "removing " + Describe(s));
    return Status::Ok();
  }

  Result<std::vector<SegmentId>> List() override {
    CAIRN_ASSIGN_OR_RETURN(auto names, ReadDirNames(dir_.get(), where_));
    std::vector<SegmentId> out;
    for (const std::string& n : names) {
      // Exactly eight lowercase hex digits and ".seg": anything else is not ours.
      if (n.size() != 12 || n.substr(8) != ".seg") continue;
      SegmentId id = 0;
      bool hex = true;
      for (char c : n.substr(0, 8)) {
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) hex = false;
        id = (id << 4) | static_cast<SegmentId>(v < 0 ? 0 : v);
      }
      if (hex) out.push_back(id);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<uint64_t> AllocatedBytes() override {
    CAIRN_ASSIGN_OR_RETURN(auto ids, List());
    uint64_t total = 0;
    for (auto id : ids) {
      struct stat st;
      if (::fstatat(dir_.get(), FileName(id).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode))
        total += uint64_t(st.st_blocks) * 512;
    }
    return total;
  }

 private:
  static std::string FileName(SegmentId s) {
    char name[32];
    std::snprintf(name, sizeof name, "%08x.seg", s);
    return name;
  }

  Status RequireWritable(SegmentId s) const {
    if (writable_) return Status::Ok();
    return Status::Invalid(Describe(s) + ": the segments were opened read-only");
  }

  // A segment's descriptor, shared by every call using it: closed when the last holder lets go,
  // so a Remove on one thread never closes (or, reused, redirects) a read on another.
  using SharedFd = std::shared_ptr<Fd>;

  // Drops the cached descriptor `held` of `s` (when it is still the cached one).
  void DropCachedFd(SegmentId s, const SharedFd& held) {
    std::lock_guard lk(mu_);
    auto it = fds_.find(s);
    if (it != fds_.end() && it->second == held) fds_.erase(it);
  }

  // The cached descriptor of segment `s`, opened through the directory descriptor without
  // following a link (read-write when the handle is writable, else read-only). With `create`,
  // a missing segment is created and its directory entry made durable.
  Result<SharedFd> FdOf(SegmentId s, bool create) {
    std::lock_guard lk(mu_);
    auto it = fds_.find(s);
    if (it != fds_.end()) return it->second;
    const std::string name = FileName(s);
    const int mode = (writable_ ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(dir_.get(), name.c_str(), mode);
    bool created = false;
    if (fd < 0 && errno == ENOENT && create) {
      fd = ::openat(dir_.get(), name.c_str(), mode | O_CREAT | O_EXCL, 0600);
      created = fd >= 0;
    }
    if (fd < 0) {
      if (errno == ENOENT) return Status::Corruption(Describe(s) + " is missing");
      return OpenError(errno, dir_.get(), name, Describe(s));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Status::Invalid(Describe(s) + " is not a regular file");
    }
    auto held = std::make_shared<Fd>(fd);
    fds_.emplace(s, held);
    if (created) {
      // A new segment file must survive a crash along with the directory entry naming it. When
      // this fsync fails, the next Sync tries again, so no commit can rely on the file first.
      Status ds = FsyncDir(dir_.get(), where_);
      if (!ds.ok()) {
        dir_dirty_ = true;
        return ds;
      }
    }
    return held;
  }

  Fd dir_;
  std::string where_;
  bool writable_;
  std::mutex mu_;
  std::unordered_map<SegmentId, SharedFd> fds_;
  std::atomic<bool> dir_dirty_{false};
  std::atomic<uint64_t> unwritten_{0};  // bytes written since the last StartWriteback kick
};

// ---- the storage

class LocalStorage : public Storage {
 public:
  LocalStorage(std::string root, Fd root_fd)
      : root_(std::move(root)), root_fd_(std::move(root_fd)) {}

  std::string Describe(std::string_view name) const override {
    return name.empty() ? root_ : root_ + "/" + std::string(name);
  }

  Result<std::string> ReadFile(std::string_view name, size_t max_bytes) override;
  Result<bool> Exists(std::string_view name) override;
  Status WriteFile(std::string_view name, std::string_view data, bool exclusive) override;
  Status RemoveFile(std::string_view name) override;
  Result<std::vector<std::string>> List(std::string_view dir) override;
  Status CreateDir(std::string_view name, bool exist_ok) override;
  Status Rename(std::string_view from, std::string_view to) override;
  Status RemoveAll(std::string_view name) override;
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name,
                                            const LockOptions& opts) override;
  Result<std::unique_ptr<Backend>> OpenSegments(std::string_view dir, bool writable) override;

  std::optional<std::string> LocalPath(std::string_view name) const override {
    return Describe(name);
  }

 private:
  // An open directory and the last component of a name in it.
  struct Parent {
    Fd fd;
    std::string dir;   // the directory's name ("" = the root)
    std::string leaf;  // the last component
    std::string what;  // Describe(name)
  };

  // Opens directory `dir` ("" = the root) component by component, following no link.
  Result<Fd> OpenDir(std::string_view dir) const {
    Fd cur(::fcntl(root_fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (!cur.valid()) return Status::FromErrno(errno, root_);
    size_t start = 0;
    while (start < dir.size()) {
      size_t end = std::min(dir.find('/', start), dir.size());
      const std::string part(dir.substr(start, end - start));
      Fd next(::openat(cur.get(), part.c_str(), kDirFlags));
      if (!next.valid()) return OpenError(errno, cur.get(), part, Describe(dir.substr(0, end)));
      cur = std::move(next);
      start = end + 1;
    }
    return cur;
  }

  // Validates `name` and opens the directory that holds it.
  Result<Parent> OpenParent(std::string_view name) const {
    CAIRN_RETURN_IF_ERROR(ValidateStorageName(name));
    Parent p;
    size_t slash = name.rfind('/');
    p.dir = slash == std::string_view::npos ? "" : std::string(name.substr(0, slash));
    p.leaf = std::string(slash == std::string_view::npos ? name : name.substr(slash + 1));
    p.what = Describe(name);
    CAIRN_ASSIGN_OR_RETURN(p.fd, OpenDir(p.dir));
    return p;
  }

  Result<std::string> ReadOpenFile(int fd, const std::string& what, size_t max_bytes);
  Status Publish(const Parent& p, const std::string& tmp, bool exclusive);

  std::string root_;
  Fd root_fd_;
};

Result<std::string> LocalStorage::ReadFile(std::string_view name, size_t max_bytes) {
  CAIRN_ASSIGN_OR_RETURN(Parent p, OpenParent(name));
  // Checked before opening: opening a FIFO or a device can block or have side effects.
  CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(p.fd.get(), p.leaf, p.what));
  if (!st) return Status::FromErrno(ENOENT, p.what);
  if (S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(p.what));
  if (!S_ISREG(st->st_mode))
    return Status::Invalid(p.what + " is " + KindOf(st->st_mode) + ", not a regular file");
  Fd fd(::openat(p.fd.get(), p.leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return OpenError(errno, p.fd.get(), p.leaf, p.what);
  return ReadOpenFile(fd.get(), p.what, max_bytes);
}

Result<std::string> LocalStorage::ReadOpenFile(int fd, const std::string& what, size_t max_bytes) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, what);
  if (!S_ISREG(st.st_mode))
    return Status::Invalid(what + " is " + KindOf(st.st_mode) + ", not a regular file");
  auto too_large = [&](uint64_t size) {
    return Status::Corruption(what + " is too large: " + std::to_string(size) + " bytes, at most " +
                              std::to_string(max_bytes) + " expected");
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large(st.st_size);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  for (;;) {
    // One byte more than allowed is read to notice a file that grew since fstat.
    if (done == out.size()) out.resize(std::min<size_t>(out.size() + 4096, max_bytes + 1));
    if (done == out.size()) break;
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading " + what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > max_bytes) return too_large(done);
  out.resize(done);
  return out;
}

Result<bool> LocalStorage::Exists(std::string_view name) {
  auto p = OpenParent(name);
  if (!p.ok()) {
    if (p.status().code() == Code::kNotFound) return false;
    return p.status();
  }
  CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(p->fd.get(), p->leaf, p->what));
  if (st && S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(p->what));
  return st.has_value();
}

Status LocalStorage::WriteFile(std::string_view name, std::string_view data, bool exclusive) {
  CAIRN_ASSIGN_OR_RETURN(Parent p, OpenParent(name));
  CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(p.fd.get(), p.leaf, p.what));
  if (st) {
    if (S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(p.what));
    if (!S_ISREG(st->st_mode))
      return Status::Invalid(p.what + " is " + KindOf(st->st_mode) + ", not a regular file");
    if (exclusive) return Status::Invalid(p.what + " already exists");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string rnd, RandomHex(6));
  std::string tmp = ".";
  tmp.append(p.leaf).append(".tmp-").append(rnd);
  const std::string tmp_what = Describe(JoinStorageName(p.dir, tmp));
  Fd fd(::openat(p.fd.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 0600));
  if (!fd.valid()) return Status::FromErrno(errno, "creating " + tmp_what);
  Status s = WriteAll(fd.get(), data, tmp_what);
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno(errno, "syncing " + tmp_what);
  if (int err = fd.Close(); s.ok() && err != 0) s = Status::FromErrno(err, "closing " + tmp_what);
  if (s.ok()) s = Publish(p, tmp, exclusive);
  if (!s.ok()) {
    ::unlinkat(p.fd.get(), tmp.c_str(), 0);  // gone already when the rename succeeded
    return s;
  }
  return FsyncDir(p.fd.get(), Describe(p.dir));
}

// Renames the written temporary file `tmp` to the target (never over an existing one when
// `exclusive`).
Status LocalStorage::Publish(const Parent& p, const std::string& tmp, bool exclusive) {
  const int dir = p.fd.get();
  if (!exclusive) {
    if (::renameat(dir, tmp.c_str(), dir, p.leaf.c_str()) != 0)
      return Status::FromErrno(errno, "renaming into " + p.what);
    return Status::Ok();
  }
  if (::renameat2(dir, tmp.c_str(), dir, p.leaf.c_str(), RENAME_NOREPLACE) == 0)
    return Status::Ok();
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {
    // The filesystem has no RENAME_NOREPLACE: a hard link fails on an existing name too.
    if (::linkat(dir, tmp.c_str(), dir, p.leaf.c_str(), 0) == 0) {
      ::unlinkat(dir, tmp.c_str(), 0);
      return Status::Ok();
    }
    err = errno;
  }
  if (err == EEXIST) return Status::Invalid(p.what + " already exists");
  return Status::FromErrno(err, "creating " + p.what);
}

Status LocalStorage::RemoveFile(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(Parent p, OpenParent(name));
  CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(p.fd.get(), p.leaf, p.what));
  if (!st) return Status::FromErrno(ENOENT, p.what);
  if (S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(p.what));
  if (S_ISDIR(st->st_mode)) return Status::Invalid(p.what + " is a directory, not a file");
  if (::unlinkat(p.fd.get(), p.leaf.c_str(), 0) != 0)
    return Status::FromErrno(errno, "removing " + p.what);
  return FsyncDir(p.fd.get(), Describe(p.dir));
}

Result<std::vector<std::string>> LocalStorage::List(std::string_view dir) {
  if (!dir.empty()) CAIRN_RETURN_IF_ERROR(ValidateStorageName(dir));
  CAIRN_ASSIGN_OR_RETURN(Fd fd, OpenDir(dir));
  CAIRN_ASSIGN_OR_RETURN(auto names, ReadDirNames(fd.get(), Describe(dir)));
  std::erase_if(names, [](const std::string& n) { return IsStorageTempName(n); });
  std::sort(names.begin(), names.end());
  return names;
}

Status LocalStorage::CreateDir(std::string_view name, bool exist_ok) {
  CAIRN_ASSIGN_OR_RETURN(Parent p, OpenParent(name));
  if (::mkdirat(p.fd.get(), p.leaf.c_str(), 0700) != 0) {
    int err = errno;
    if (err != EEXIST) return Status::FromErrno(err, "creating " + p.what);
    CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(p.fd.get(), p.leaf, p.what));
    if (st && S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(p.what));
    if (st && !S_ISDIR(st->st_mode))
      return Status::Invalid(p.what + " exists and is not a directory");
    if (!exist_ok) return Status::Invalid(p.what + " already exists");
  }
  return FsyncDir(p.fd.get(), Describe(p.dir));
}

Status LocalStorage::Rename(std::string_view from, std::string_view to) {
  CAIRN_ASSIGN_OR_RETURN(Parent f, OpenParent(from));
  CAIRN_ASSIGN_OR_RETURN(Parent t, OpenParent(to));
  CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(f.fd.get(), f.leaf, f.what));
  if (!st) return Status::FromErrno(ENOENT, f.what);
  if (S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(f.what));
  int rc = ::renameat2(f.fd.get(), f.leaf.c_str(), t.fd.get(), t.leaf.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
    // No RENAME_NOREPLACE on this filesystem: check first (callers hold the lock that makes
    // this safe), then rename.
    CAIRN_ASSIGN_OR_RETURN(auto target, StatAt(t.fd.get(), t.leaf, t.what));
    if (target) return Status::Invalid(t.what + " already exists");
    rc = ::renameat(f.fd.get(), f.leaf.c_str(), t.fd.get(), t.leaf.c_str());
  }
  if (rc != 0) {
    if (errno == EEXIST) return Status::Invalid(t.what + " already exists");
    return Status::FromErrno(errno, "renaming " + f.what + " to " + t.what);
  }
  CAIRN_RETURN_IF_ERROR(FsyncDir(t.fd.get(), Describe(t.dir)));
  if (f.dir != t.dir) CAIRN_RETURN_IF_ERROR(FsyncDir(f.fd.get(), Describe(f.dir)));
  return Status::Ok();
}

Status LocalStorage::RemoveAll(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(Parent p, OpenParent(name));
  CAIRN_ASSIGN_OR_RETURN(auto st, StatAt(p.fd.get(), p.leaf, p.what));
  if (!st) return Status::FromErrno(ENOENT, p.what);
  if (S_ISLNK(st->st_mode)) return Status::Invalid(SymlinkMessage(p.what));
  if (S_ISDIR(st->st_mode)) {
    CAIRN_RETURN_IF_ERROR(RemoveTree(p.fd.get(), p.leaf, p.what));
  } else if (::unlinkat(p.fd.get(), p.leaf.c_str(), 0) != 0) {
    return Status::FromErrno(errno, "removing " + p.what);
  }
  return FsyncDir(p.fd.get(), Describe(p.dir));
}

Result<std::unique_ptr<StorageLock>> LocalStorage::Lock(std::string_view name,
                                                        const LockOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(Parent p, OpenParent(name));
  Fd fd(::openat(p.fd.get(), p.leaf.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                 0600));
  if (!fd.valid()) return OpenError(errno, p.fd.get(), p.leaf, p.what);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, p.what);
  if (!S_ISREG(st.st_mode))
    return Status::Invalid(p.what + " is " + KindOf(st.st_mode) + ", not a regular file");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Busy("repository " + Describe(p.dir) + " is locked by " +
                          ReadLockOwner(fd.get()));
    return Status::FromErrno(errno, "locking " + p.what);
  }
  // We hold it now; whatever owner was recorded has released it (or died). The owner text is
  // only for messages, so failing to record it does not fail the lock.
  const std::string owner = opts.owner.description + "\n";
  if (::ftruncate(fd.get(), 0) == 0) (void)!::pwrite(fd.get(), owner.data(), owner.size(), 0);
  return std::unique_ptr<StorageLock>(new LocalLock(std::move(fd)));
}

Result<std::unique_ptr<Backend>> LocalStorage::OpenSegments(std::string_view dir, bool writable) {
  CAIRN_RETURN_IF_ERROR(ValidateStorageName(dir));
  auto fd = OpenDir(dir);
  if (!fd.ok() && fd.status().code() == Code::kNotFound && writable) {
    CAIRN_RETURN_IF_ERROR(CreateDir(dir, /*exist_ok=*/true));
    fd = OpenDir(dir);
  }
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<Backend>(new LocalBackend(std::move(fd.value()), Describe(dir), writable));
}

// `root` without trailing slashes ("/" stays "/").
std::string TrimRoot(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

Status FsyncParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Fd fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, parent);
  return FsyncDir(fd.get(), parent);
}

}  // namespace

Result<std::unique_ptr<Storage>> OpenLocalStorage(const std::string& root_arg) {
  const std::string root = TrimRoot(root_arg);
  Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Status::NotFound(root + ": no such repository");
    if (errno == ENOTDIR)
      return Status::Invalid(root + " is not a cairn repository (not a directory)");
    return Status::FromErrno(errno, root);
  }
  return std::unique_ptr<Storage>(new LocalStorage(root, std::move(fd)));
}

Result<std::unique_ptr<Storage>> CreateLocalStorage(const std::string& root_arg) {
  const std::string root = TrimRoot(root_arg);
  if (::mkdir(root.c_str(), 0700) == 0) {
    CAIRN_RETURN_IF_ERROR(FsyncParentOf(root));
    return OpenLocalStorage(root);
  }
  if (errno != EEXIST) return Status::FromErrno(errno, "creating repository " + root);
  Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOTDIR) return Status::Invalid(root + " already exists and is not a directory");
    return Status::FromErrno(errno, root);
  }
  CAIRN_ASSIGN_OR_RETURN(auto names, ReadDirNames(fd.get(), root));
  if (!names.empty()) return Status::Invalid(root + " already exists and is not empty");
  if (::fchmod(fd.get(), 0700) != 0) return Status::FromErrno(errno, "setting the mode of " + root);
  return std::unique_ptr<Storage>(new LocalStorage(root, std::move(fd)));
}

Result<std::unique_ptr<Backend>> OpenLocalBackend(const std::string& dir_arg) {
  const std::string dir = TrimRoot(dir_arg);
  if (::mkdir(dir.c_str(), 0700) == 0) {
    CAIRN_RETURN_IF_ERROR(FsyncParentOf(dir));
  } else if (errno != EEXIST) {
    return Status::FromErrno(errno, "creating " + dir);
  }
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, dir);
  return std::unique_ptr<Backend>(new LocalBackend(std::move(fd), dir, true));
}

}  // namespace cairn
