// Storage helpers shared by every implementation: name validation, location dispatch, temporary
// file names and the lock owner of this process.
#include "backend/storage.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "cairn/repository.h"

#ifdef CAIRN_HAVE_RADOS
#include "backend/rados_storage.h"
#endif

namespace cairn {

Result<std::chrono::seconds> ParseCephTimeout(std::string_view text) {
  int64_t secs = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || secs < 1 ||
      secs > 86400)
    return Status::Invalid("'" + std::string(text) +
                           "' is not a whole number of seconds from 1 to 86400");
  return std::chrono::seconds(secs);
}

Status ValidateStorageName(std::string_view name) {
  auto bad = [&](const char* why) {
    std::string shown(name);
    for (char& c : shown)
      if (c == '\0') c = '?';
    return Status::Invalid("bad storage name '" + shown + "': " + why);
  };
  if (name.empty()) return bad("it is empty");
  if (name.find('\0') != std::string_view::npos) return bad("it holds a NUL byte");
  if (name.front() == '/') return bad("it is absolute");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty()) return bad("it has an empty component");
    if (part == "." || part == "..") return bad("it has a '.' or '..' component");
    start = end + 1;
  }
  return Status::Ok();
}

std::string JoinStorageName(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out.push_back('/');
  out.append(name);
  return out;
}

bool IsStorageTempName(std::string_view leaf) {
  constexpr std::string_view kMark = ".tmp-";
  constexpr size_t kHex = 12;
  if (leaf.size() < 1 + 1 + kMark.size() + kHex || leaf.front() != '.') return false;
  if (leaf.substr(leaf.size() - kHex - kMark.size(), kMark.size()) != kMark) return false;
  for (char c : leaf.substr(leaf.size() - kHex))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

LockOwner ThisProcessLockOwner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  char when[32] = "unknown time";
  if (::gmtime_r(&now, &tm) != nullptr) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return LockOwner{"pid " + std::to_string(::getpid()) + " on host " +
                   (host[0] ? std::string(host) : std::string("unknown")) + " since " + when};
}

namespace {

constexpr size_t kMaxRadosPrefix = 256;  // bytes

// "rados:POOL/PREFIX": a repository of the pool's objects under PREFIX, in the cluster that
// $CEPH_CONF (else /etc/ceph/ceph.conf) describes. `create` needs an empty prefix.
Result<std::unique_ptr<Storage>> OpenRados(const std::string& location, bool create) {
#ifdef CAIRN_HAVE_RADOS
  std::string_view rest = std::string_view(location).substr(6);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size())
    return Status::Invalid("bad RADOS location '" + location + "' (use rados:POOL/PREFIX)");
  std::string pool(rest.substr(0, slash)), prefix(rest.substr(slash + 1));
  CAIRN_RETURN_IF_ERROR(ValidateStorageName(prefix).WithContext(location));
  // Every object of the repository is named PREFIX/...: with a prefix near the OSDs' limit on
  // object names (osd_max_object_name_len, 2048) init made some objects and then failed.
  if (prefix.size() > kMaxRadosPrefix)
    return Status::Invalid("bad RADOS location: the prefix is " + std::to_string(prefix.size()) +
                           " bytes; at most " + std::to_string(kMaxRadosPrefix) +
                           " (RADOS limits the length of object names)");
  RadosStorageOptions opts;
  // $CAIRN_CEPH_TIMEOUT (whole seconds, `cairn --ceph-timeout`) bounds every cluster call.
  if (const char* t = std::getenv("CAIRN_CEPH_TIMEOUT"); t && *t) {
    auto secs = ParseCephTimeout(t);
    if (!secs.ok()) return secs.status().WithContext("CAIRN_CEPH_TIMEOUT");
    opts.rados.timeout = *secs;
  }
  CAIRN_ASSIGN_OR_RETURN(auto storage, OpenRadosStorage(pool, prefix, opts));
  CAIRN_ASSIGN_OR_RETURN(auto entries, storage->List(""));
  if (create && !entries.empty())
    return Status::Invalid(location + " already exists and is not empty");
  if (!create && entries.empty()) return Status::NotFound(location + ": no such repository");
  return std::unique_ptr<Storage>(std::move(storage));
#else
  (void)create;
  return Status::Unsupported(location + ": RADOS storage is not built into this cairn");
#endif
}

}  // namespace

Result<std::unique_ptr<Storage>> OpenStorage(const std::string& location, bool create) {
  if (location.starts_with("rados:")) return OpenRados(location, create);
  if (location.empty()) return Status::Invalid("no repository location given");
  return create ? CreateLocalStorage(location) : OpenLocalStorage(location);
}

}  // namespace cairn
