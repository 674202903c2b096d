// Connecting to a Ceph pool with bounded timeouts, and the librados helpers shared by the RADOS
// storage, backend and index.
#include "backend/rados_connection.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace cairn {

RadosConnection::~RadosConnection() {
  io_.close();
  if (connected_) cluster_.shutdown();
}

Result<std::shared_ptr<RadosConnection>> RadosConnection::Connect(const std::string& pool,
                                                                  const RadosOptions& opts) {
  std::shared_ptr<RadosConnection> c(new RadosConnection());
  c->pool_ = pool;
  c->timeout_ = opts.timeout;
  std::string conf = opts.ceph_conf;
  if (conf.empty()) {
    const char* env = std::getenv("CEPH_CONF");
    if (env) conf = env;
  }
  const std::string where =
      "ceph cluster of " + (conf.empty() ? std::string("the default ceph.conf") : conf);
  int rc = c->cluster_.init2(opts.client_name.c_str(), "ceph", 0);
  if (rc < 0) return RadosError(rc, "initialising the ceph client " + opts.client_name);
  rc = c->cluster_.conf_read_file(conf.empty() ? nullptr : conf.c_str());
  if (rc < 0)
    return RadosError(rc, "reading the Ceph config " +
                              (conf.empty() ? std::string("(no CEPH_CONF or --ceph-conf given; "
                                                          "the default /etc/ceph/ceph.conf)")
                                            : conf));
  const std::string secs = std::to_string(opts.timeout.count());
  for (const char* opt : {"client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout"}) {
    rc = c->cluster_.conf_set(opt, secs.c_str());
    if (rc < 0) return RadosError(rc, std::string("setting ") + opt);
  }
  // The client never logs to the terminal; the conf file decides where its log goes.
  (void)c->cluster_.conf_set("log_to_stderr", "false");
  (void)c->cluster_.conf_set("err_to_stderr", "false");
  rc = c->cluster_.connect();
  if (rc < 0) return RadosError(rc, "connecting to the " + where);
  c->connected_ = true;
  rc = c->cluster_.ioctx_create(pool.c_str(), c->io_);
  if (rc == -ENOENT) return Status::NotFound("pool '" + pool + "' does not exist in the " + where);
  if (rc < 0) return RadosError(rc, "opening pool '" + pool + "' in the " + where);
  return c;
}

uint64_t RadosConnection::MaxObjectSize() {
  std::string v;
  if (cluster_.conf_get("osd_max_object_size", v) == 0) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (end && *end == '\0' && n > 0) return n;
  }
  return 128ull << 20;
}

Status RadosError(int rc, const std::string& what) {
  int err = rc < 0 ? -rc : rc;
  std::string m = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status::NotFound(m);
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(m);
    case EBUSY:
      return Status::Busy(m);
    case EACCES:
    case EPERM:
      return Status::PermissionDenied(m);
    case ETIMEDOUT:
      return Status::IOError(what + ": the ceph cluster did not answer in time (" +
                             std::strerror(err) + "): is it running and reachable?");
    default:
      return Status::IOError(m);
  }
}

librados::bufferlist RadosBytes(std::string_view data) {
  librados::bufferlist bl;
  bl.append(data.data(), data.size());
  return bl;
}

}  // namespace cairn
