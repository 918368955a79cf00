#include "store/lease.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/internal/file.h"

namespace tusk {

Result<std::unique_ptr<ReaderLease>> ReaderLease::Acquire(const std::string& store_dir) {
  std::string dir = JoinPath(store_dir, "leases");
  TUSK_RETURN_IF_ERROR(MakeDirs(dir));
  std::string path = JoinPath(dir, std::to_string(::getpid()) + ".lease");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "create lease " + path);
  if (::flock(fd, LOCK_SH) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "lock lease " + path);
  }
  return std::unique_ptr<ReaderLease>(new ReaderLease(path, fd));
}

ReaderLease::~ReaderLease() {
  ::unlink(path_.c_str());
  ::close(fd_);
}

Status ReaderLease::Add(const ObjectId& commit) {
  std::lock_guard lock(mu_);
  if (!added_.insert(commit).second) return Status::Ok();
  std::string line = commit.Hex() + "\n";
  return WriteAll(fd_, line.data(), line.size(), path_);
}

Result<std::vector<ObjectId>> LeasedCommits(const std::string& store_dir) {
  std::vector<ObjectId> out;
  std::string dir = JoinPath(store_dir, "leases");
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if (errno == ENOENT) return out;
    return Status::FromErrno(errno, "open " + dir);
  }
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name.size() < 7 || name.substr(name.size() - 6) != ".lease") continue;
    std::string path = JoinPath(dir, name);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;
    // If we can lock it exclusively, its reader is gone.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      ::unlink(path.c_str());
      continue;
    }
    auto text = ReadWholeFile(path);
    if (!text.ok()) continue;
    size_t start = 0;
    while (start < text->size()) {
      size_t nl = text->find('\n', start);
      if (nl == std::string::npos) break;  // a line still being written
      if (auto id = ObjectId::FromHex(std::string_view(*text).substr(start, nl - start))) out.push_back(*id);
      start = nl + 1;
    }
  }
  return out;
}

}  // namespace tusk
