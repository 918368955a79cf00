// Thin RAII and error-as-value wrappers over POSIX file I/O.
//
// Every call retries EINTR and short reads/writes, and reports failures as a
// Status naming the path. All descriptors are opened O_CLOEXEC.
//
// Thread-safety: an Fd may be used from many threads for Pread; Write* are
// the caller's to serialize.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/status.h"

namespace tusk {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

Result<Fd> OpenFile(const std::string& path, int flags, mode_t mode = 0644);
Status WriteAll(int fd, const void* data, size_t len, const std::string& what);
Status PwriteAll(int fd, const void* data, size_t len, uint64_t offset, const std::string& what);
// Reads exactly `len` bytes at `offset`; a short file is Corruption.
Status PreadAll(int fd, void* data, size_t len, uint64_t offset, const std::string& what);
// Reads exactly a+b bytes at `offset` into two buffers (one system call
// when the file has them).
Status PreadvAll(int fd, void* a, size_t a_len, void* b, size_t b_len, uint64_t offset, const std::string& what);
// Reads up to `len` bytes (stops at EOF); returns the count.
Result<size_t> ReadUpTo(int fd, void* data, size_t len, const std::string& what);
Status Fsync(int fd, const std::string& what);
Status FsyncDir(const std::string& dir);
Result<std::string> ReadWholeFile(const std::string& path);
// Writes via a temporary file, fsync, rename and directory fsync, so readers
// see either the old or the new content, never a torn one.
Status WriteFileAtomically(const std::string& path, std::string_view content);
Status MakeDirs(const std::string& path, mode_t mode = 0755);
std::string JoinPath(const std::string& a, const std::string& b);
// Calls `fn(name, d_type)` for each entry of the directory `dir_fd` refers to
// (an O_PATH descriptor will do: it is reopened for reading), "." and ".."
// left out, until `fn` returns false. A failed read is an error, never a
// silently shorter listing. `what` names the directory in errors.
Status ForEachDirectoryEntry(int dir_fd, const std::string& what,
                             const std::function<bool(const char* name, unsigned char d_type)>& fn);
// The names in the directory `dir_fd` refers to, as ForEachDirectoryEntry.
Result<std::vector<std::string>> ListDirectory(int dir_fd, const std::string& what);
// Removes everything inside the directory `dir_fd` refers to (not the
// directory itself), never following a symlink. Entries that vanish
// meanwhile are not errors.
Status RemoveDirectoryContents(int dir_fd, const std::string& what);
// Every xattr of `path` (not following a final symlink), of all namespaces,
// as (name, value) sorted by name. A filesystem without xattrs gives none.
Result<std::vector<std::pair<std::string, std::string>>> ReadAllXattrs(const std::string& path);

}  // namespace tusk
