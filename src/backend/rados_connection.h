// A connection to one pool of a Ceph cluster (librados C++), shared by the RADOS storage, its
// segment backends and the RADOS index; plus the helpers they all use: errno-to-Status mapping,
// owned aio completions, and the object naming of directories and files.
//
// Every call through a connection is bounded in time: the client is configured with
// `client_mount_timeout`, `rados_mon_op_timeout` and `rados_osd_op_timeout`
// (RadosOptions::timeout), so an unreachable cluster or a dead OSD gives an error (ETIMEDOUT) after
// that long instead of a hang. Source of the option names: Ceph's src/common/options.cc (Pacific).
//
// Object naming (one pool, many repositories side by side, each under its own PREFIX):
//   - a directory has a *key*, fixed when it is created: "PREFIX" for the root, then the path
//     ("PREFIX/stores/abc"), with "~" and 8 hex digits appended when that key is still used by a
//     renamed directory. Its *directory object* is the key plus "/" and holds the directory's
//     entries in its omap (one key per entry, see rados_storage.cc), so listing a directory is one
//     omap read, never a pool-wide listing;
//   - a file, segment, lock or index shard in that directory is the object "KEY/LEAF".
// A file object never ends in "/", and leaves contain no "/", so no two names collide.
#pragma once

#include <chrono>
#include <memory>
#include <rados/librados.hpp>
#include <string>
#include <string_view>

#include "cairn/status.h"

namespace cairn {

struct RadosOptions {
  // ceph.conf to read; empty means $CEPH_CONF, then Ceph's default search (/etc/ceph/ceph.conf).
  std::string ceph_conf;
  // The Ceph user; its keyring comes from the conf file (auth "none" test clusters need none).
  std::string client_name = "client.admin";
  // Upper bound on every mon and OSD call, and on connecting.
  std::chrono::seconds timeout{30};
};

class RadosConnection {
 public:
  // Connects to the cluster and opens `pool`. IOError naming the conf file and pool when the
  // cluster cannot be reached within `opts.timeout` or the pool does not exist (NotFound).
  static Result<std::shared_ptr<RadosConnection>> Connect(const std::string& pool,
                                                          const RadosOptions& opts);
  ~RadosConnection();
  RadosConnection(const RadosConnection&) = delete;
  RadosConnection& operator=(const RadosConnection&) = delete;

  // The pool's I/O context; librados allows concurrent use from many threads.
  librados::IoCtx& io() { return io_; }
  librados::Rados& cluster() { return cluster_; }
  const std::string& pool() const { return pool_; }
  std::chrono::seconds timeout() const { return timeout_; }
  // The cluster's largest object in bytes (`osd_max_object_size` as the client's configuration
  // sees it: ceph.conf [global] or the 128 MiB default).
  uint64_t MaxObjectSize();

 private:
  RadosConnection() = default;
  librados::Rados cluster_;
  librados::IoCtx io_;
  std::string pool_;
  std::chrono::seconds timeout_{30};
  bool connected_ = false;
};

// A librados return code (negative errno) as a Status naming `what`: ENOENT -> NotFound,
// ENOSPC/EDQUOT -> NoSpace, EBUSY -> Busy, ETIMEDOUT -> IOError saying the cluster did not answer,
// EACCES/EPERM -> PermissionDenied, anything else IOError with the errno text.
Status RadosError(int rc, const std::string& what);

// An aio completion released when destroyed.
class RadosAio {
 public:
  RadosAio() : c_(librados::Rados::aio_create_completion()) {}
  ~RadosAio() { c_->release(); }
  RadosAio(const RadosAio&) = delete;
  RadosAio& operator=(const RadosAio&) = delete;
  librados::AioCompletion* get() { return c_; }
  // Waits until the operation completed and returns its return code (negative errno).
  int Wait() {
    c_->wait_for_complete();
    return c_->get_return_value();
  }
  // Whether the operation completed (never waits).
  bool Done() const { return c_->is_complete(); }

 private:
  librados::AioCompletion* c_;
};

// Object names (see the top of this file).
inline std::string RadosDirObject(std::string_view key) { return std::string(key) + "/"; }
inline std::string RadosChildObject(std::string_view key, std::string_view leaf) {
  return std::string(key) + "/" + std::string(leaf);
}

// Copies `data` into a bufferlist.
librados::bufferlist RadosBytes(std::string_view data);

// Omap keys of a directory object that start with this byte belong to the component living in
// the directory (the index keeps its configuration and intents there); they are never entries,
// since entry names cannot start with "/".
inline constexpr char kRadosPrivateKey = '/';

}  // namespace cairn
