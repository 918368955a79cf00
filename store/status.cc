#include "store/status.h"

#include <cstring>

namespace tusk {

Status Status::FromErrno(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status(Code::kNoSpace, err, msg);
  if (err == ENOENT) return Status(Code::kNotFound, ENOENT, msg);
  if (err == EEXIST) return Status(Code::kAlreadyExists, EEXIST, msg);
  if (err == EROFS) return Status(Code::kReadOnly, EROFS, msg);
  return Status(Code::kIoError, err, msg);
}

std::string Status::ToString() const { return ok() ? "ok" : message_; }

Status Status::Annotate(const std::string& context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = context + ": " + message_;
  return s;
}

}  // namespace tusk
