// RADOS storage: small files as objects, directories as omap entry lists, locks with cls_lock,
// segments through the RADOS backend (layout and crash behaviour in rados_storage.h).
#include "backend/rados_storage.h"

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <vector>

namespace cairn {
namespace {

constexpr char kFileEntry = 'f';
constexpr char kDirEntry = 'd';
constexpr const char* kLockName = "cairn";
constexpr const char* kOwnerXattr = "cairn.owner";
// The cookie of the lock whose owner kOwnerXattr names: the owner is named only while that lock
// is held (a lock taken by another client, rados lock get say, left a stale name).
constexpr const char* kOwnerCookieXattr = "cairn.owner_cookie";
constexpr size_t kPage = 1024;

// The same rule as ValidateStorageName (storage.h), kept here so the RADOS storage builds on
// its own: no empty, absolute, "." or ".." component names, and no NUL byte.
Status ValidName(std::string_view name) {
  if (name.empty()) return Status::Invalid("empty storage name");
  if (name.front() == '/')
    return Status::Invalid("storage name '" + std::string(name) + "' is absolute");
  if (name.find('\0') != std::string_view::npos)
    return Status::Invalid("storage name contains a NUL byte");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return Status::Invalid("storage name '" + std::string(name) +
                             "' has an empty, '.' or '..' component");
    start = end + 1;
  }
  return Status::Ok();
}

std::pair<std::string, std::string> SplitName(std::string_view name) {
  size_t slash = name.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(name)};
  return {std::string(name.substr(0, slash)), std::string(name.substr(slash + 1))};
}

std::string RandomHexDigits(size_t digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  uint64_t x = 0;
  for (size_t i = 0; i < digits; i++) {
    if (i % 16 == 0) x = rng();
    s.push_back(hex[x & 15]);
    x >>= 4;
  }
  return s;
}

class RadosStorageLock : public StorageLock {
 public:
  RadosStorageLock(std::shared_ptr<RadosConnection> conn, std::string obj, std::string where,
                   std::string cookie, std::string desc, std::chrono::seconds lease)
      : conn_(std::move(conn)),
        obj_(std::move(obj)),
        where_(std::move(where)),
        cookie_(std::move(cookie)),
        desc_(std::move(desc)),
        lease_(lease) {}
  ~RadosStorageLock() override { (void)conn_->io().unlock(obj_, kLockName, cookie_); }

  Status Renew() override {
    timeval tv{static_cast<time_t>(lease_.count()), 0};
    int rc = conn_->io().lock_exclusive(obj_, kLockName, cookie_, desc_,
                                        lease_.count() > 0 ? &tv : nullptr,
                                        LIBRADOS_LOCK_FLAG_MUST_RENEW);
    if (rc == -ENOENT) return Status::Busy("the lease of " + where_ + " expired: stop writing");
    if (rc == -EBUSY)
      return Status::Busy(where_ + " was taken over by another client: stop writing");
    if (rc < 0) return RadosError(rc, "renewing the lock " + where_);
    return Status::Ok();
  }

 private:
  std::shared_ptr<RadosConnection> conn_;
  std::string obj_, where_, cookie_, desc_;
  std::chrono::seconds lease_;
};

class RadosStorageImpl : public RadosStorage {
 public:
  RadosStorageImpl(std::shared_ptr<RadosConnection> conn, std::string prefix,
                   RadosStorageOptions opts)
      : conn_(std::move(conn)), prefix_(std::move(prefix)), opts_(std::move(opts)) {}

  std::string Describe(std::string_view name) const override {
    return "rados:" + conn_->pool() + "/" + prefix_ + (name.empty() ? "" : "/") + std::string(name);
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
  std::optional<std::string> LocalPath(std::string_view) const override { return std::nullopt; }
  Result<Dir> ResolveDir(std::string_view dir, bool create) override;

 private:
  // The key of directory `path`; NotFound naming it when it (or a parent) does not exist.
  Result<std::string> Resolve(const std::string& path);
  // The entry `leaf` of the directory with key `dir_key`: nullopt when absent.
  Result<std::optional<std::string>> Entry(const std::string& dir_key, const std::string& leaf);
  // Every entry (name, value) of a directory; a missing directory object has none.
  Result<std::vector<std::pair<std::string, std::string>>> Entries(const std::string& dir_key);
  Status SetFileEntry(const std::string& dir_key, const std::string& leaf);
  Result<std::string> NewDirObject(const std::string& parent_key, const std::string& leaf);
  Status RemoveTree(const std::string& key);
  Status RenameFile(std::string_view from, std::string_view to);
  void Forget(const std::string& path);
  // Makes `op` on a directory object fail with ENOENT when the directory is gone; the root's
  // object is created instead, by the first write that needs it.
  void Guard(librados::ObjectWriteOperation& op, const std::string& dir_key) const {
    if (dir_key == prefix_)
      op.create(false);
    else
      op.assert_exists();
  }
  std::string Where(const std::string& obj) const { return "rados:" + conn_->pool() + "/" + obj; }

  std::shared_ptr<RadosConnection> conn_;
  std::string prefix_;
  RadosStorageOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::string> keys_;  // resolved directory path -> key
};

Result<std::string> RadosStorageImpl::Resolve(const std::string& path) {
  if (path.empty()) return prefix_;
  {
    std::lock_guard lk(mu_);
    auto it = keys_.find(path);
    if (it != keys_.end()) return it->second;
  }
  auto [parent, leaf] = SplitName(path);
  CAIRN_ASSIGN_OR_RETURN(std::string parent_key, Resolve(parent));
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(parent_key, leaf));
  if (!e) return Status::NotFound(Describe(path) + ": no such directory");
  if (e->empty() || (*e)[0] != kDirEntry)
    return Status::Invalid(Describe(path) + " is not a directory");
  std::string key = e->substr(1);
  std::lock_guard lk(mu_);
  keys_[path] = key;
  return key;
}

void RadosStorageImpl::Forget(const std::string& path) {
  std::lock_guard lk(mu_);
  for (auto it = keys_.begin(); it != keys_.end();) {
    bool under = it->first == path || it->first.starts_with(path + "/");
    it = under ? keys_.erase(it) : std::next(it);
  }
}

Result<std::optional<std::string>> RadosStorageImpl::Entry(const std::string& dir_key,
                                                           const std::string& leaf) {
  std::map<std::string, librados::bufferlist> vals;
  int prval = 0;
  librados::ObjectReadOperation op;
  op.omap_get_vals_by_keys({leaf}, &vals, &prval);
  int rc = conn_->io().operate(RadosDirObject(dir_key), &op, nullptr);
  if (rc == -ENOENT) return std::optional<std::string>();
  if (rc < 0) return RadosError(rc, "reading directory " + Where(RadosDirObject(dir_key)));
  auto it = vals.find(leaf);
  if (it == vals.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second.to_str());
}

Result<std::vector<std::pair<std::string, std::string>>> RadosStorageImpl::Entries(
    const std::string& dir_key) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string after;
  for (bool more = true; more;) {
    std::map<std::string, librados::bufferlist> vals;
    int prval = 0;
    librados::ObjectReadOperation op;
    op.omap_get_vals2(after, kPage, &vals, &more, &prval);
    int rc = conn_->io().operate(RadosDirObject(dir_key), &op, nullptr);
    if (rc == -ENOENT) break;
    if (rc < 0) return RadosError(rc, "listing directory " + Where(RadosDirObject(dir_key)));
    for (auto& [k, v] : vals)
      if (!k.empty() && k[0] != kRadosPrivateKey) out.emplace_back(k, v.to_str());
    if (vals.empty()) break;
    after = vals.rbegin()->first;
  }
  return out;
}

Status RadosStorageImpl::SetFileEntry(const std::string& dir_key, const std::string& leaf) {
  librados::ObjectWriteOperation op;
  Guard(op, dir_key);
  op.omap_set({{leaf, RadosBytes(std::string(1, kFileEntry))}});
  int rc = conn_->io().operate(RadosDirObject(dir_key), &op);
  if (rc == -ENOENT)
    return Status::NotFound(Where(RadosDirObject(dir_key)) + ": no such directory");
  if (rc < 0) return RadosError(rc, "adding '" + leaf + "' to " + Where(RadosDirObject(dir_key)));
  return Status::Ok();
}

Result<std::string> RadosStorageImpl::ReadFile(std::string_view name, size_t max_bytes) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  auto parent_key = Resolve(parent);
  if (!parent_key.ok()) return parent_key.status();
  const std::string obj = RadosChildObject(*parent_key, leaf);
  const size_t want = max_bytes < (size_t{1} << 30) ? max_bytes + 1 : size_t{1} << 30;
  uint64_t size = 0;
  time_t mtime = 0;
  int stat_rc = 0, read_rc = 0;
  librados::bufferlist data;
  librados::ObjectReadOperation op;
  op.stat(&size, &mtime, &stat_rc);
  op.read(0, want, &data, &read_rc);
  int rc = conn_->io().operate(obj, &op, nullptr);
  if (rc == -ENOENT) {
    CAIRN_ASSIGN_OR_RETURN(auto e, Entry(*parent_key, leaf));
    if (e && !e->empty() && (*e)[0] == kDirEntry)
      return Status::Invalid(Describe(name) + " is not a regular file");
    return Status::NotFound(Describe(name) + ": no such file");
  }
  if (rc < 0) return RadosError(rc, "reading " + Describe(name));
  if (size > max_bytes || data.length() > max_bytes)
    return Status::Corruption(Describe(name) + " is " + std::to_string(size) +
                              " bytes, more than the " + std::to_string(max_bytes) + " expected");
  return data.to_str();
}

Result<bool> RadosStorageImpl::Exists(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  auto parent_key = Resolve(parent);
  if (!parent_key.ok()) {
    if (parent_key.status().code() == Code::kNotFound) return false;
    return parent_key.status();
  }
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(*parent_key, leaf));
  if (!e) return false;
  if (!e->empty() && (*e)[0] == kDirEntry) return true;
  // A file entry whose object is missing was cut short by a crash: the file does not exist.
  uint64_t size = 0;
  time_t mtime = 0;
  int rc = conn_->io().stat(RadosChildObject(*parent_key, leaf), &size, &mtime);
  if (rc == -ENOENT) return false;
  if (rc < 0) return RadosError(rc, Describe(name));
  return true;
}

Status RadosStorageImpl::WriteFile(std::string_view name, std::string_view data, bool exclusive) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  CAIRN_ASSIGN_OR_RETURN(std::string parent_key, Resolve(parent));
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(parent_key, leaf));
  if (e && !e->empty() && (*e)[0] == kDirEntry)
    return Status::Invalid(Describe(name) + " is a directory");
  // Entry first, object second (rados_storage.h): no object is ever left unlisted.
  if (!e) CAIRN_RETURN_IF_ERROR(SetFileEntry(parent_key, leaf));
  librados::ObjectWriteOperation op;
  if (exclusive) op.create(true);
  op.write_full(RadosBytes(data));
  int rc = conn_->io().operate(RadosChildObject(parent_key, leaf), &op);
  if (rc == -EEXIST) return Status::Invalid(Describe(name) + " already exists");
  if (rc < 0) return RadosError(rc, "writing " + Describe(name));
  return Status::Ok();
}

Status RadosStorageImpl::RemoveFile(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  CAIRN_ASSIGN_OR_RETURN(std::string parent_key, Resolve(parent));
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(parent_key, leaf));
  if (!e) {
    // An object without its entry: a Lock whose lock_exclusive (which makes the object) landed
    // between another process's removal of that object and of its entry. Nothing lists it, so
    // it goes now, or never.
    int rc = conn_->io().remove(RadosChildObject(parent_key, leaf));
    if (rc == 0) return Status::Ok();
    if (rc != -ENOENT) return RadosError(rc, "removing " + Describe(name));
    return Status::NotFound(Describe(name) + ": no such file");
  }
  if (!e->empty() && (*e)[0] == kDirEntry)
    return Status::Invalid(Describe(name) + " is a directory");
  int rc = conn_->io().remove(RadosChildObject(parent_key, leaf));
  if (rc < 0 && rc != -ENOENT) return RadosError(rc, "removing " + Describe(name));
  librados::ObjectWriteOperation op;
  op.omap_rm_keys({leaf});
  int rc2 = conn_->io().operate(RadosDirObject(parent_key), &op);
  if (rc2 < 0 && rc2 != -ENOENT) return RadosError(rc2, "removing the entry of " + Describe(name));
  if (rc == -ENOENT) return Status::NotFound(Describe(name) + ": no such file");
  return Status::Ok();
}

Result<std::vector<std::string>> RadosStorageImpl::List(std::string_view dir) {
  if (!dir.empty()) CAIRN_RETURN_IF_ERROR(ValidName(dir));
  CAIRN_ASSIGN_OR_RETURN(std::string key, Resolve(std::string(dir)));
  CAIRN_ASSIGN_OR_RETURN(auto entries, Entries(key));
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (auto& [k, v] : entries) out.push_back(std::move(k));
  return out;  // omap keys come sorted
}

// Creates a fresh directory object for `leaf` in `parent_key` and returns its key: the path-like
// key when free, else that key with "~" and 8 random hex digits (it is still used by a renamed
// directory, or left by a crash).
Result<std::string> RadosStorageImpl::NewDirObject(const std::string& parent_key,
                                                   const std::string& leaf) {
  const std::string base = parent_key + "/" + leaf;
  for (int attempt = 0; attempt < 16; attempt++) {
    std::string key = attempt == 0 ? base : base + "~" + RandomHexDigits(8);
    librados::ObjectWriteOperation op;
    op.create(true);
    int rc = conn_->io().operate(RadosDirObject(key), &op);
    if (rc == 0) return key;
    if (rc != -EEXIST)
      return RadosError(rc, "creating directory object " + Where(RadosDirObject(key)));
  }
  return Status::IOError("no free key for a directory under " + Where(RadosDirObject(parent_key)));
}

Status RadosStorageImpl::CreateDir(std::string_view name, bool exist_ok) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  CAIRN_ASSIGN_OR_RETURN(std::string parent_key, Resolve(parent));
  for (int attempt = 0; attempt < 2; attempt++) {
    CAIRN_ASSIGN_OR_RETURN(auto e, Entry(parent_key, leaf));
    if (e) {
      if (e->empty() || (*e)[0] != kDirEntry)
        return Status::Invalid(Describe(name) + " exists and is not a directory");
      if (exist_ok) return Status::Ok();
      return Status::Invalid(Describe(name) + " already exists");
    }
    CAIRN_ASSIGN_OR_RETURN(std::string key, NewDirObject(parent_key, leaf));
    // Enter it only if nobody entered that name meanwhile (an absent key compares equal to "").
    librados::ObjectWriteOperation op;
    Guard(op, parent_key);
    int cmp = 0;
    op.omap_cmp({{leaf, {librados::bufferlist(), LIBRADOS_CMPXATTR_OP_EQ}}}, &cmp);
    op.omap_set({{leaf, RadosBytes(std::string(1, kDirEntry) + key)}});
    int rc = conn_->io().operate(RadosDirObject(parent_key), &op);
    if (rc == 0) return Status::Ok();
    (void)conn_->io().remove(RadosDirObject(key));
    if (rc != -ECANCELED) return RadosError(rc, "creating directory " + Describe(name));
  }
  return Status::Busy(Describe(name) + " is being created and removed by someone else");
}

Result<RadosStorage::Dir> RadosStorageImpl::ResolveDir(std::string_view dir, bool create) {
  if (!dir.empty()) CAIRN_RETURN_IF_ERROR(ValidName(dir));
  auto key = Resolve(std::string(dir));
  if (!key.ok() && key.status().code() == Code::kNotFound && create) {
    CAIRN_RETURN_IF_ERROR(CreateDir(dir, true));
    key = Resolve(std::string(dir));
  }
  if (!key.ok()) return key.status();
  if (dir.empty()) {
    // The root's object may not exist yet in a new repository.
    librados::ObjectWriteOperation op;
    op.create(false);
    int rc = conn_->io().operate(RadosDirObject(*key), &op);
    if (rc < 0) return RadosError(rc, "creating " + Describe(""));
  }
  return Dir{conn_, *key};
}

Status RadosStorageImpl::RenameFile(std::string_view from, std::string_view to) {
  CAIRN_ASSIGN_OR_RETURN(std::string data, ReadFile(from, 64u << 20));
  CAIRN_RETURN_IF_ERROR(WriteFile(to, data, true));
  return RemoveFile(from);
}

Status RadosStorageImpl::Rename(std::string_view from, std::string_view to) {
  CAIRN_RETURN_IF_ERROR(ValidName(from));
  CAIRN_RETURN_IF_ERROR(ValidName(to));
  const std::string f(from), t(to);
  if (f == t || t.starts_with(f + "/"))
    return Status::Invalid("cannot rename " + Describe(from) + " to " + Describe(to));
  auto [fparent, fleaf] = SplitName(from);
  auto [tparent, tleaf] = SplitName(to);
  CAIRN_ASSIGN_OR_RETURN(std::string fkey, Resolve(fparent));
  CAIRN_ASSIGN_OR_RETURN(std::string tkey, Resolve(tparent));
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(fkey, fleaf));
  if (!e) return Status::NotFound(Describe(from) + ": no such file or directory");
  if (e->empty() || (*e)[0] != kDirEntry) return RenameFile(from, to);
  const librados::bufferlist none, value = RadosBytes(*e);
  int c1 = 0, c2 = 0;
  librados::ObjectWriteOperation add;
  Guard(add, tkey);
  add.omap_cmp({{tleaf, {none, LIBRADOS_CMPXATTR_OP_EQ}}}, &c1);
  add.omap_set({{tleaf, value}});
  if (tkey == fkey) {  // one atomic op: both entries live in the same directory object
    add.omap_cmp({{fleaf, {value, LIBRADOS_CMPXATTR_OP_EQ}}}, &c2);
    add.omap_rm_keys({fleaf});
  }
  int rc = conn_->io().operate(RadosDirObject(tkey), &add);
  if (rc == -ECANCELED)
    return Status::Invalid(Describe(to) + " already exists (or " + Describe(from) +
                           " changed meanwhile)");
  if (rc < 0) return RadosError(rc, "renaming " + Describe(from) + " to " + Describe(to));
  Forget(f);
  if (tkey == fkey) return Status::Ok();
  librados::ObjectWriteOperation del;
  del.omap_rm_keys({fleaf});
  rc = conn_->io().operate(RadosDirObject(fkey), &del);
  if (rc < 0) return RadosError(rc, "removing the old name " + Describe(from));
  return Status::Ok();
}

Status RadosStorageImpl::RemoveTree(const std::string& key) {
  CAIRN_ASSIGN_OR_RETURN(auto entries, Entries(key));
  std::vector<std::pair<std::string, std::unique_ptr<RadosAio>>> removing;
  auto drain = [&]() -> Status {
    for (auto& [obj, aio] : removing) {
      int rc = aio->Wait();
      if (rc < 0 && rc != -ENOENT) return RadosError(rc, "removing " + Where(obj));
    }
    removing.clear();
    return Status::Ok();
  };
  for (const auto& [leaf, value] : entries) {
    if (!value.empty() && value[0] == kDirEntry) {
      CAIRN_RETURN_IF_ERROR(RemoveTree(value.substr(1)));
      continue;
    }
    std::string obj = RadosChildObject(key, leaf);
    auto aio = std::make_unique<RadosAio>();
    int rc = conn_->io().aio_remove(obj, aio->get());
    if (rc < 0) return RadosError(rc, "removing " + Where(obj));
    removing.emplace_back(std::move(obj), std::move(aio));
    if (removing.size() >= 32) CAIRN_RETURN_IF_ERROR(drain());
  }
  CAIRN_RETURN_IF_ERROR(drain());
  int rc = conn_->io().remove(RadosDirObject(key));
  if (rc < 0 && rc != -ENOENT) return RadosError(rc, "removing " + Where(RadosDirObject(key)));
  return Status::Ok();
}

Status RadosStorageImpl::RemoveAll(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  CAIRN_ASSIGN_OR_RETURN(std::string parent_key, Resolve(parent));
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(parent_key, leaf));
  if (!e) return Status::NotFound(Describe(name) + ": no such file or directory");
  if (e->empty() || (*e)[0] != kDirEntry) return RemoveFile(name);
  Forget(std::string(name));
  CAIRN_RETURN_IF_ERROR(RemoveTree(e->substr(1)));
  librados::ObjectWriteOperation op;
  op.omap_rm_keys({leaf});
  int rc = conn_->io().operate(RadosDirObject(parent_key), &op);
  if (rc < 0 && rc != -ENOENT) return RadosError(rc, "removing the entry of " + Describe(name));
  return Status::Ok();
}

Result<std::unique_ptr<StorageLock>> RadosStorageImpl::Lock(std::string_view name,
                                                            const LockOptions& opts) {
  CAIRN_RETURN_IF_ERROR(ValidName(name));
  auto [parent, leaf] = SplitName(name);
  CAIRN_ASSIGN_OR_RETURN(std::string parent_key, Resolve(parent));
  CAIRN_ASSIGN_OR_RETURN(auto e, Entry(parent_key, leaf));
  if (e && !e->empty() && (*e)[0] == kDirEntry)
    return Status::Invalid(Describe(name) + " is a directory");
  if (!e) CAIRN_RETURN_IF_ERROR(SetFileEntry(parent_key, leaf));
  const std::string obj = RadosChildObject(parent_key, leaf);
  const std::string cookie = RandomHexDigits(16);
  const std::string desc = opts.owner.description;
  timeval tv{static_cast<time_t>(opts.lease.count()), 0};
  int rc = conn_->io().lock_exclusive(obj, kLockName, cookie, desc,
                                      opts.lease.count() > 0 ? &tv : nullptr, 0);
  if (rc == -EBUSY || rc == -EEXIST) {
    librados::bufferlist owner, owner_cookie;
    (void)conn_->io().getxattr(obj, kOwnerXattr, owner);
    (void)conn_->io().getxattr(obj, kOwnerCookieXattr, owner_cookie);
    int exclusive = 0;
    std::string tag;
    std::list<librados::locker_t> lockers;
    (void)conn_->io().list_lockers(obj, kLockName, &exclusive, &tag, &lockers);
    bool named = owner.length() > 0;
    if (named && owner_cookie.length() > 0)
      named = std::any_of(lockers.begin(), lockers.end(), [&](const librados::locker_t& l) {
        return l.cookie == owner_cookie.to_str();
      });
    std::string who = named ? owner.to_str() : std::string("another client");
    for (const auto& l : lockers) who += " (" + l.client + " at " + l.address + ")";
    return Status::Busy(Describe(name) + " is locked by " + who);
  }
  if (rc < 0) return RadosError(rc, "locking " + Describe(name));
  librados::bufferlist owner = RadosBytes(desc);  // "pid N on host H since T" (storage.h)
  librados::ObjectWriteOperation named;
  named.setxattr(kOwnerXattr, owner);
  named.setxattr(kOwnerCookieXattr, RadosBytes(cookie));
  rc = conn_->io().operate(obj, &named);
  if (rc < 0) {
    (void)conn_->io().unlock(obj, kLockName, cookie);
    return RadosError(rc, "recording the owner of " + Describe(name));
  }
  return std::unique_ptr<StorageLock>(
      new RadosStorageLock(conn_, obj, Describe(name), cookie, desc, opts.lease));
}

Result<std::unique_ptr<Backend>> RadosStorageImpl::OpenSegments(std::string_view dir,
                                                                bool writable) {
  CAIRN_ASSIGN_OR_RETURN(Dir d, ResolveDir(dir, writable));
  return OpenRadosBackend(conn_, d.key, writable, opts_.segments);
}

}  // namespace

Result<std::unique_ptr<RadosStorage>> OpenRadosStorage(const std::string& pool,
                                                       const std::string& prefix,
                                                       const RadosStorageOptions& opts) {
  CAIRN_RETURN_IF_ERROR(ValidName(prefix).WithContext("repository prefix"));
  CAIRN_ASSIGN_OR_RETURN(auto conn, RadosConnection::Connect(pool, opts.rados));
  return std::unique_ptr<RadosStorage>(new RadosStorageImpl(std::move(conn), prefix, opts));
}

Result<std::unique_ptr<RadosStorage>> OpenRadosStorage(const std::string& pool,
                                                       const std::string& prefix,
                                                       const std::string& ceph_conf) {
  RadosStorageOptions opts;
  opts.rados.ceph_conf = ceph_conf;
  return OpenRadosStorage(pool, prefix, opts);
}

}  // namespace cairn
