// Status and Result<T>: errors as values.
//
// Every fallible operation in tusk returns a Status (or a Result<T>, which is a
// Status or a value). A Status carries a coarse Code that callers branch on, the
// system errno when one caused it (so the FUSE layer can answer with the right
// errno), and a human-readable message that names the object involved.
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tusk {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // ENOENT: a ref, dataset, object or path does not exist
    kAlreadyExists,    // EEXIST
    kInvalidArgument,  // EINVAL: bad name, bad ref syntax, bad flag value
    kCorruption,       // EIO: data on disk fails its checksum or does not decode
    kIoError,          // errno-carrying failure of a system call
    kNoSpace,          // ENOSPC or EDQUOT: disk, quota or LMDB map full and could not grow
    kConflict,         // EAGAIN: a compare-and-set on a ref lost a race
    kReadOnly,         // EROFS
    kUnsupported,      // ENOTSUP: a store format or object version we do not know
    kBusy,             // EBUSY: another process holds a lock we need
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, ENOENT, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, EEXIST, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, EINVAL, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, EIO, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(Code::kConflict, EAGAIN, std::move(msg)); }
  static Status ReadOnly(std::string msg) { return Status(Code::kReadOnly, EROFS, std::move(msg)); }
  static Status Unsupported(std::string msg) { return Status(Code::kUnsupported, ENOTSUP, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::kBusy, EBUSY, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(Code::kNoSpace, ENOSPC, std::move(msg)); }
  // A failed system call: `what` names the call and its object, e.g. "open /x/y".
  // ENOSPC and EDQUOT become kNoSpace (keeping which one it was), ENOENT
  // becomes kNotFound.
  static Status FromErrno(int err, const std::string& what);
  // Rebuilds a Status sent between processes (code(), sys_errno(), message()).
  static Status Rebuild(Code code, int err, std::string msg) { return Status(code, err, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status Annotate(const std::string& context) const;

 private:
  Status(Code code, int err, std::string msg) : code_(code), errno_(err), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

// A value of type T, or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tusk

// Propagation helpers; they keep call sites short without hiding control flow.
#define TUSK_CONCAT_INNER(a, b) a##b
#define TUSK_CONCAT(a, b) TUSK_CONCAT_INNER(a, b)

#define TUSK_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::tusk::Status _st = (expr);            \
    if (!_st.ok()) return _st;              \
  } while (0)

#define TUSK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#define TUSK_ASSIGN_OR_RETURN(lhs, expr) \
  TUSK_ASSIGN_OR_RETURN_IMPL(TUSK_CONCAT(_res_, __LINE__), lhs, expr)
