#include "store/internal/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <vector>

namespace tusk {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void Fd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<Fd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  return Fd(fd);
}

Status WriteAll(int fd, const void* data, size_t len, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + what);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const void* data, size_t len, uint64_t offset, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + what);
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status PreadAll(int fd, void* data, size_t len, uint64_t offset, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + what);
    }
    if (n == 0) return Status::Corruption("read " + what + ": unexpected end of file");
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status PreadvAll(int fd, void* a, size_t a_len, void* b, size_t b_len, uint64_t offset, const std::string& what) {
  struct iovec iov[2] = {{a, a_len}, {b, b_len}};
  ssize_t n;
  do {
    n = ::preadv(fd, iov, 2, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno(errno, "read " + what);
  size_t got = static_cast<size_t>(n);
  if (got == a_len + b_len) return Status::Ok();
  // Short read: finish the rest the slow way.
  if (got < a_len) {
    TUSK_RETURN_IF_ERROR(PreadAll(fd, static_cast<char*>(a) + got, a_len - got, offset + got, what));
    got = a_len;
  }
  return PreadAll(fd, static_cast<char*>(b) + (got - a_len), b_len - (got - a_len), offset + got, what);
}

Result<size_t> ReadUpTo(int fd, void* data, size_t len, const std::string& what) {
  char* p = static_cast<char*>(data);
  size_t total = 0;
  while (total < len) {
    ssize_t n = ::read(fd, p + total, len - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + what);
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

Status Fsync(int fd, const std::string& what) {
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "fsync " + what);
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  if (dir.size() < PATH_MAX) {
    TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
    return Fsync(fd.get(), dir);
  }
  // Too long for one call (a deep workspace directory): walk to it one
  // component at a time.
  int raw = ::open(dir[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open directory " + dir);
  Fd at(raw);
  std::vector<std::string> parts;
  for (size_t start = 0; start <= dir.size();) {
    size_t slash = dir.find('/', start);
    if (slash == std::string::npos) slash = dir.size();
    if (slash > start) parts.push_back(dir.substr(start, slash - start));
    start = slash + 1;
  }
  for (size_t i = 0; i < parts.size(); i++) {
    int flags = (i + 1 == parts.size() ? O_RDONLY : O_PATH) | O_DIRECTORY | O_CLOEXEC;
    raw = ::openat(at.get(), parts[i].c_str(), flags);
    if (raw < 0) return Status::FromErrno(errno, "open directory " + dir);
    at = Fd(raw);
  }
  return Fsync(at.get(), dir);
}

Result<std::string> ReadWholeFile(const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[65536];
  for (;;) {
    TUSK_ASSIGN_OR_RETURN(size_t n, ReadUpTo(fd.get(), buf, sizeof buf, path));
    out.append(buf, n);
    if (n < sizeof buf) break;
  }
  return out;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

Status WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    Status st = WriteAll(fd.get(), content.data(), content.size(), tmp);
    if (st.ok()) st = Fsync(fd.get(), tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "rename " + tmp);
  }
  auto slash = path.rfind('/');
  return FsyncDir(slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash)));
}

Status ForEachDirectoryEntry(int dir_fd, const std::string& what,
                             const std::function<bool(const char* name, unsigned char d_type)>& fn) {
  int raw = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open directory " + what);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(raw), ::closedir);
  if (!dir) {
    int err = errno;
    ::close(raw);
    return Status::FromErrno(err, "read directory " + what);
  }
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(dir.get());
    if (!e) break;
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (!fn(e->d_name, e->d_type)) return Status::Ok();
  }
  if (errno != 0) return Status::FromErrno(errno, "read directory " + what);
  return Status::Ok();
}

Result<std::vector<std::string>> ListDirectory(int dir_fd, const std::string& what) {
  std::vector<std::string> names;
  TUSK_RETURN_IF_ERROR(ForEachDirectoryEntry(dir_fd, what, [&](const char* name, unsigned char) {
    names.emplace_back(name);
    return true;
  }));
  return names;
}

Status RemoveDirectoryContents(int dir_fd, const std::string& what) {
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir_fd, what));
  for (const auto& n : names) {
    struct stat st;
    if (::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno(errno, "stat " + what + "/" + n);
    }
    bool is_dir = S_ISDIR(st.st_mode);
    if (is_dir) {
      int sub = ::openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) return Status::FromErrno(errno, "open " + what + "/" + n);
      Fd sub_fd(sub);
      TUSK_RETURN_IF_ERROR(RemoveDirectoryContents(sub_fd.get(), what + "/" + n));
    }
    if (::unlinkat(dir_fd, n.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "remove " + what + "/" + n);
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return Status::Ok();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return Status::AlreadyExists(path + " exists and is not a directory");
  }
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) TUSK_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), mode));
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return Status::FromErrno(errno, "mkdir " + path);
  return Status::Ok();
}

}  // namespace tusk

namespace tusk {

Result<std::vector<std::pair<std::string, std::string>>> ReadAllXattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string names;
  for (;;) {
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return out;
      return Status::FromErrno(errno, "list xattrs of " + path);
    }
    if (n == 0) return out;
    names.assign(static_cast<size_t>(n), '\0');
    ssize_t m = ::llistxattr(path.c_str(), names.data(), names.size());
    if (m < 0 && errno == ERANGE) continue;  // grew meanwhile
    if (m < 0) return Status::FromErrno(errno, "list xattrs of " + path);
    names.resize(static_cast<size_t>(m));
    break;
  }
  for (size_t pos = 0; pos < names.size();) {
    size_t end = names.find('\0', pos);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(pos, end - pos);
    pos = end + 1;
    if (name.empty()) continue;
    std::string value;
    for (;;) {
      ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (n < 0 && errno == ENODATA) break;  // removed meanwhile
      if (n < 0) return Status::FromErrno(errno, "read xattr " + name + " of " + path);
      value.assign(static_cast<size_t>(n), '\0');
      ssize_t m = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (m < 0 && errno == ERANGE) continue;
      if (m < 0 && errno == ENODATA) break;
      if (m < 0) return Status::FromErrno(errno, "read xattr " + name + " of " + path);
      value.resize(static_cast<size_t>(m));
      out.emplace_back(std::move(name), std::move(value));
      break;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tusk
