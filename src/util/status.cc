// Status helpers: errno mapping and rendering.
#include "cairn/status.h"

#include <cerrno>
#include <cstring>

namespace cairn {

Status Status::FromErrno(int err, const std::string& what) {
  std::string m = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status(Code::kNoSpace, m);
  if (err == ENOENT) return Status(Code::kNotFound, m);
  if (err == EACCES || err == EPERM) return Status(Code::kPermissionDenied, m);
  return Status(Code::kIOError, m);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace cairn
