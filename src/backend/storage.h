// Storage: everything a repository keeps at rest, behind one interface, the way LevelDB's `Env`
// and restic's `internal/backend` put every OS touch behind one seam. It holds:
//   - small named files (config.json, users.json, key files, the key ring), read whole and
//     replaced atomically;
//   - directories that group a store's files ("stores/system");
//   - locks with an owner and a lease (a store's writer lock);
//   - the segment files of each store, opened as a `Backend` (backend.h).
// The local implementation keeps them in a directory tree; a RADOS one maps names onto objects.
// Wrappers (StorageWrapper, BackendWrapper) forward everything, so a decorator (fault injection,
// a crash simulator, a retry layer) overrides only what it changes.
//
// Names are relative paths with '/' separators ("keys/1a2b3c4d.json"). A name is refused with
// InvalidArgument when it is empty, absolute, or has an empty, "." or ".." component, so no
// caller can address anything outside the repository. The local implementation never follows a
// symbolic link inside the repository (O_NOFOLLOW on every component it opens).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "cairn/status.h"

namespace cairn {

// Who holds a lock, for the message a contender gets ("locked by pid 123 on host h since ...").
struct LockOwner {
  std::string description;
};

struct LockOptions {
  LockOwner owner;
  // How long the lock stays valid without Renew. A local lock (flock) is released by the kernel
  // when its holder dies and never expires; a remote lock (RADOS cls_lock) expires after this.
  std::chrono::seconds lease{60};
};

// A held lock; released when destroyed.
class StorageLock {
 public:
  virtual ~StorageLock() = default;
  // Extends the lease by LockOptions::lease from now. Fails (Busy) when the lease was lost:
  // the holder must stop writing.
  virtual Status Renew() = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Where a name lives, for messages ("/srv/repo/config.json", "rados:pool/repo/config.json").
  virtual std::string Describe(std::string_view name) const = 0;

  // --- small files
  // The whole file. NotFound when absent; Corruption naming the file when it is larger than
  // `max_bytes` (checked before reading it); InvalidArgument when it is not a regular file.
  virtual Result<std::string> ReadFile(std::string_view name, size_t max_bytes) = 0;
  // Whether a file or directory of that name exists.
  virtual Result<bool> Exists(std::string_view name) = 0;
  // Creates or replaces the file atomically: the data goes to a temporary file with a random
  // name created O_EXCL in the same directory, which is fsynced, renamed over `name`, and the
  // directory fsynced. After a crash the file holds either the old or the new contents.
  // With `exclusive`, fails with InvalidArgument ("already exists") instead of replacing.
  // Files are created mode 0600.
  virtual Status WriteFile(std::string_view name, std::string_view data,
                           bool exclusive = false) = 0;
  // Removes a file and makes the removal durable (directory fsync). NotFound when absent.
  virtual Status RemoveFile(std::string_view name) = 0;
  // The entries (files and directories) directly inside directory `dir` ("" = the root),
  // sorted, without "." and ".." and without WriteFile's temporary files (IsStorageTempName).
  // NotFound when the directory does not exist.
  virtual Result<std::vector<std::string>> List(std::string_view dir) = 0;

  // --- directories
  // Creates directory `name` (mode 0700) and makes it durable (fsync of its parent) before
  // returning. With `exist_ok`, an existing directory is not an error.
  virtual Status CreateDir(std::string_view name, bool exist_ok = false) = 0;
  // Renames a directory (durably); `to` must not exist.
  virtual Status Rename(std::string_view from, std::string_view to) = 0;
  // Removes a directory and everything in it. NotFound when absent.
  virtual Status RemoveAll(std::string_view name) = 0;

  // --- locks
  // Takes the exclusive lock `name` (a file in the local implementation) and records
  // opts.owner in it. Busy ("repository DIR is locked by OWNER", DIR the directory holding
  // `name`) when another holder has it, also another handle of this process.
  virtual Result<std::unique_ptr<StorageLock>> Lock(std::string_view name,
                                                    const LockOptions& opts) = 0;

  // --- segments
  // The segment files in directory `dir` (created when `writable` and missing). A handle that
  // is not writable opens every segment read-only, so it works on read-only media.
  virtual Result<std::unique_ptr<Backend>> OpenSegments(std::string_view dir, bool writable) = 0;

  // A local directory for `name`, for a component that manages its own files there (RocksDB);
  // nullopt when the storage has no local files.
  virtual std::optional<std::string> LocalPath(std::string_view name) const = 0;

  // The storage a wrapper forwards to (nullptr for an implementation), so that a component
  // that needs the implementation itself (the RADOS index) can find it under decorators.
  virtual Storage* Unwrapped() { return nullptr; }
};

// Local files under `root` (which must exist and be a directory; it is never created here).
// `root` itself may be a symbolic link (the user chose it); nothing below it is followed.
// NotFound ("ROOT: no such repository") when it does not exist, InvalidArgument ("ROOT is not a
// cairn repository (not a directory)") when it is something else. Implemented in
// local_storage.cc, which documents the on-disk details (temporary names, lock file contents).
Result<std::unique_ptr<Storage>> OpenLocalStorage(const std::string& root);
// Creates directory `root` (mode 0700, its parent fsynced) for a new repository, or accepts an
// existing EMPTY directory (and sets its mode to 0700), and opens it. InvalidArgument when `root`
// exists and is not an empty directory.
Result<std::unique_ptr<Storage>> CreateLocalStorage(const std::string& root);

// The storage named by a repository location: a local path (OpenLocalStorage, or
// CreateLocalStorage when `create`), or "rados:POOL/PREFIX" (RADOS, rados_storage.h; the cluster
// from $CEPH_CONF; `create` needs an empty PREFIX, an open a non-empty one). Unsupported for
// RADOS in a build without librados.
Result<std::unique_ptr<Storage>> OpenStorage(const std::string& location, bool create);

// Refuses names that could leave the repository (see the top of this file), and names holding
// a NUL byte.
Status ValidateStorageName(std::string_view name);

// `name` inside directory `dir` ("" = the root): "dir/name", or `name` when `dir` is empty.
std::string JoinStorageName(std::string_view dir, std::string_view name);

// Whether `leaf` (one name component) is a temporary file of WriteFile in the local
// implementation: ".<target>.tmp-<12 lowercase hex>". List never returns such names; one left
// by a crash is garbage that may be deleted.
bool IsStorageTempName(std::string_view leaf);

// This process as a lock owner: "pid 123 on host NAME since 2025-01-31T12:00:00Z" (UTC, now).
LockOwner ThisProcessLockOwner();

// Forwards every call to `inner`. Decorators derive from it and override what they change.
class StorageWrapper : public Storage {
 public:
  explicit StorageWrapper(std::unique_ptr<Storage> inner) : inner_(std::move(inner)) {}
  std::string Describe(std::string_view n) const override { return inner_->Describe(n); }
  Result<std::string> ReadFile(std::string_view n, size_t max) override {
    return inner_->ReadFile(n, max);
  }
  Result<bool> Exists(std::string_view n) override { return inner_->Exists(n); }
  Status WriteFile(std::string_view n, std::string_view d, bool exclusive) override {
    return inner_->WriteFile(n, d, exclusive);
  }
  Status RemoveFile(std::string_view n) override { return inner_->RemoveFile(n); }
  Result<std::vector<std::string>> List(std::string_view d) override { return inner_->List(d); }
  Status CreateDir(std::string_view n, bool exist_ok) override {
    return inner_->CreateDir(n, exist_ok);
  }
  Status Rename(std::string_view f, std::string_view t) override { return inner_->Rename(f, t); }
  Status RemoveAll(std::string_view n) override { return inner_->RemoveAll(n); }
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view n, const LockOptions& o) override {
    return inner_->Lock(n, o);
  }
  Result<std::unique_ptr<Backend>> OpenSegments(std::string_view d, bool writable) override {
    return inner_->OpenSegments(d, writable);
  }
  std::optional<std::string> LocalPath(std::string_view n) const override {
    return inner_->LocalPath(n);
  }
  Storage* Unwrapped() override { return inner_.get(); }

 protected:
  Storage& inner() { return *inner_; }

 private:
  std::unique_ptr<Storage> inner_;
};

}  // namespace cairn
