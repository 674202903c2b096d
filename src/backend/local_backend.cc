// Local backend: one file per segment, positional reads and writes (pread/pwrite are safe from
// many threads at once), fdatasync for durability.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "backend/backend.h"

namespace cairn {
namespace {

class LocalBackend : public Backend {
 public:
  explicit LocalBackend(std::string dir) : dir_(std::move(dir)) {}
  ~LocalBackend() override {
    for (auto& [id, fd] : fds_) ::close(fd);
  }

  std::string Describe(SegmentId s) const override {
    char name[32];
    std::snprintf(name, sizeof name, "/%08x.seg", s);
    return dir_ + name;
  }

  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override {
    CAIRN_ASSIGN_OR_RETURN(int fd, Fd(s, true));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "writing " + Describe(s));
      }
      done += n;
    }
    return Status::Ok();
  }

  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override {
    auto fd = Fd(s, false);
    if (!fd.ok()) return fd.status();
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(*fd, out.data() + done, out.size() - done, off + done);
      if (n < 0) {
        if (errno == EINTR) continue;
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

  Status Sync(SegmentId s) override {
    CAIRN_ASSIGN_OR_RETURN(int fd, Fd(s, false));
    if (::fdatasync(fd) != 0) return Status::FromErrno(errno, "syncing " + Describe(s));
    return Status::Ok();
  }

  Result<uint64_t> Size(SegmentId s) override {
    struct stat st;
    if (::stat(Describe(s).c_str(), &st) != 0) return Status::FromErrno(errno, Describe(s));
    return static_cast<uint64_t>(st.st_size);
  }

  Status Truncate(SegmentId s, uint64_t size) override {
    if (::truncate(Describe(s).c_str(), size) != 0)
      return Status::FromErrno(errno, "truncating " + Describe(s));
    return Status::Ok();
  }

  Status Discard(SegmentId s, uint64_t off, uint64_t len) override {
    CAIRN_ASSIGN_OR_RETURN(int fd, Fd(s, false));
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                    static_cast<off_t>(len)) != 0 &&
        errno != EOPNOTSUPP)
      return Status::FromErrno(errno, "releasing space in " + Describe(s));
    return Status::Ok();
  }

  Status Remove(SegmentId s) override {
    {
      std::lock_guard lk(mu_);
      auto it = fds_.find(s);
      if (it != fds_.end()) {
        ::close(it->second);
        fds_.erase(it);
      }
    }
    if (::unlink(Describe(s).c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "removing " + Describe(s));
    return Status::Ok();
  }

  Result<std::vector<SegmentId>> List() override {
    std::vector<SegmentId> out;
    DIR* d = ::opendir(dir_.c_str());
    if (!d) return Status::FromErrno(errno, dir_);
    while (auto* e = ::readdir(d)) {
      // Exactly eight lowercase hex digits and ".seg": anything else is not ours.
      std::string_view n(e->d_name);
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
    ::closedir(d);
    return out;
  }

  Result<uint64_t> AllocatedBytes() override {
    CAIRN_ASSIGN_OR_RETURN(auto ids, List());
    uint64_t total = 0;
    for (auto id : ids) {
      struct stat st;
      if (::stat(Describe(id).c_str(), &st) == 0) total += uint64_t(st.st_blocks) * 512;
    }
    return total;
  }

 private:
  Result<int> Fd(SegmentId s, bool create) {
    std::lock_guard lk(mu_);
    auto it = fds_.find(s);
    if (it != fds_.end()) return it->second;
    int fd = ::open(Describe(s).c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0 && !create && errno == EACCES)
      fd = ::open(Describe(s).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::Corruption(Describe(s) + " is missing");
      return Status::FromErrno(errno, "opening " + Describe(s));
    }
    if (create) {
      // A new segment file must survive a crash along with the directory entry naming it.
      int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
    fds_.emplace(s, fd);
    return fd;
  }

  std::string dir_;
  std::mutex mu_;
  std::unordered_map<SegmentId, int> fds_;
};

}  // namespace

Result<std::unique_ptr<Backend>> OpenLocalBackend(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::FromErrno(errno, "creating " + dir);
  return std::unique_ptr<Backend>(new LocalBackend(dir));
}

}  // namespace cairn
