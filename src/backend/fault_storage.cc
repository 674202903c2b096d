// Fault injection for the small files and directories of a repository (tests only).
#include "backend/fault_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <random>

namespace cairn {

const StorageFault* FaultStorage::Match(StorageFault::Op op, std::string_view name) {
  std::lock_guard lk(mu_);
  for (Planned& p : faults_) {
    if (p.fault.op != op || p.left == 0) continue;
    std::string_view pattern = p.fault.name;
    bool hit = pattern.ends_with('*') ? name.starts_with(pattern.substr(0, pattern.size() - 1))
                                      : name == pattern;
    if (hit) {
      if (p.left > 0) p.left--;
      hits_++;
      return &p.fault;
    }
  }
  return nullptr;
}

void FaultStorage::TearWrite(std::string_view name, std::string_view data) {
  size_t slash = name.rfind('/');
  std::string_view dir = slash == std::string_view::npos ? "" : name.substr(0, slash);
  std::string_view leaf = slash == std::string_view::npos ? name : name.substr(slash + 1);
  auto dir_path = inner().LocalPath(dir);
  if (!dir_path) return;
  static const char kHex[] = "0123456789abcdef";
  std::mt19937_64 rng(std::random_device{}());
  std::string tmp = *dir_path + "/.";
  tmp.append(leaf).append(".tmp-");
  for (int i = 0; i < 12; i++) tmp.push_back(kHex[rng() % 16]);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  (void)!::write(fd, data.data(), data.size() / 2);
  ::close(fd);
}

namespace {

Status Fail(const StorageFault& f, const std::string& what) {
  return Status::FromErrno(f.kind == StorageFault::Kind::kNoSpace ? ENOSPC : EIO,
                           what + " (injected fault)");
}

}  // namespace

Status FaultStorage::WriteFile(std::string_view name, std::string_view data, bool exclusive) {
  if (const StorageFault* f = Match(StorageFault::Op::kWriteFile, name)) {
    if (f->kind == StorageFault::Kind::kTorn) TearWrite(name, data);
    return Fail(*f, "writing " + Describe(name));
  }
  return inner().WriteFile(name, data, exclusive);
}

Status FaultStorage::RemoveFile(std::string_view name) {
  if (const StorageFault* f = Match(StorageFault::Op::kRemoveFile, name))
    return Fail(*f, "removing " + Describe(name));
  return inner().RemoveFile(name);
}

Status FaultStorage::Rename(std::string_view from, std::string_view to) {
  const StorageFault* f = Match(StorageFault::Op::kRename, from);
  if (f == nullptr) f = Match(StorageFault::Op::kRename, to);
  if (f != nullptr) return Fail(*f, "renaming " + Describe(from) + " to " + Describe(to));
  return inner().Rename(from, to);
}

Status FaultStorage::CreateDir(std::string_view name, bool exist_ok) {
  if (const StorageFault* f = Match(StorageFault::Op::kCreateDir, name))
    return Fail(*f, "creating " + Describe(name));
  return inner().CreateDir(name, exist_ok);
}

}  // namespace cairn
