#include "store/backend/pack_mirror.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <memory>

#include "store/internal/file.h"

namespace tusk {
namespace {

uint64_t Allocated(const struct stat& st) { return static_cast<uint64_t>(st.st_blocks) * 512; }

// Uses are ordered in nanoseconds of the wall clock, the unit of the files'
// mtimes that order them across restarts.
int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Status PwriteAll(int fd, std::string_view bytes, uint64_t offset, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string PackMirror::PathOf(PackId pack) const {
  std::string name = PackName(pack);
  return dir_ + "/" + name.substr(0, 2) + "/" + name + ".pack";
}

void PackMirror::LoadLocked() {
  if (loaded_) return;
  loaded_ = true;
  std::string capacity_file = dir_ + "/capacity";
  if (capacity_ == 0) {
    auto text = ReadWholeFile(capacity_file);
    uint64_t recorded = 0;
    if (text.ok()) recorded = std::strtoull(text->c_str(), nullptr, 10);
    capacity_ = recorded > 0 ? recorded : fallback_;
  } else if (MakeDirs(dir_, 0700).ok()) {
    (void)WriteFileAtomically(capacity_file, std::to_string(capacity_) + "\n");
  }
  std::unique_ptr<DIR, int (*)(DIR*)> top(opendir(dir_.c_str()), closedir);
  if (!top) return;
  while (dirent* d = readdir(top.get())) {
    std::string sub = d->d_name;
    if (sub.size() != 2) continue;
    std::string subdir = dir_ + "/" + sub;
    std::unique_ptr<DIR, int (*)(DIR*)> inner(opendir(subdir.c_str()), closedir);
    if (!inner) continue;
    while (dirent* e = readdir(inner.get())) {
      PackId pack = 0;
      struct stat st;
      if (!ParsePackFileName(e->d_name, &pack) || PackName(pack).substr(0, 2) != sub ||
          ::stat((subdir + "/" + e->d_name).c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        continue;
      entries_[pack] = Entry{Allocated(st), static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, 0};
      bytes_ += Allocated(st);
    }
  }
  EvictLocked(0);  // the capacity may be smaller than last time
}

void PackMirror::EvictLocked(PackId keep) {
  while (bytes_ > capacity_) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->first != keep && (oldest == entries_.end() || it->second.used < oldest->second.used)) oldest = it;
    if (oldest == entries_.end()) return;
    // Readers holding the file open go on reading it; the next read of the
    // pack misses and fetches again.
    ::unlink(PathOf(oldest->first).c_str());
    bytes_ -= oldest->second.bytes;
    entries_.erase(oldest);
  }
}

Result<bool> PackMirror::Write(PackId pack, uint64_t pack_size, std::string_view header,
                               const std::vector<Record>& records) {
  std::string path = PathOf(pack);
  std::string subdir = path.substr(0, path.rfind('/'));
  {
    std::lock_guard lock(mu_);
    LoadLocked();
    if (pack_size > capacity_) return false;  // would evict everything, itself included
  }
  bool made_dir;
  {
    std::lock_guard lock(mu_);
    made_dir = made_dirs_.count(subdir) > 0;
  }
  if (!made_dir) {
    TUSK_RETURN_IF_ERROR(MakeDirs(subdir, 0700));
    std::lock_guard lock(mu_);
    made_dirs_.insert(subdir);
  }
  bool created = true;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  Fd file(fd);
  if (created) {
    // Sparse: only what is written takes disk.
    if (::ftruncate(fd, static_cast<off_t>(pack_size)) != 0) return Status::FromErrno(errno, "size " + path);
    TUSK_RETURN_IF_ERROR(PwriteAll(fd, header, 0, path));
  }
  for (const Record& r : records) {
    if (r.offset < header.size() || r.offset > pack_size || r.bytes.size() > pack_size - r.offset)
      return Status::InvalidArgument("a record at " + std::to_string(r.offset) + " does not fit " + path);
    TUSK_RETURN_IF_ERROR(PwriteAll(fd, r.bytes, r.offset, path));
  }
  // No fsync: a record a crash tears fails its CRC, and is a miss.
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + path);
  std::lock_guard lock(mu_);
  Entry& e = entries_[pack];
  bytes_ = bytes_ - e.bytes + Allocated(st);
  e.bytes = Allocated(st);
  e.used = NowNs();
  EvictLocked(pack);
  return created;
}

void PackMirror::Touch(PackId pack) {
  int64_t now = std::time(nullptr);
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(pack);
    if (it == entries_.end()) return;
    it->second.used = NowNs();
    // The file's mtime orders evictions across processes and restarts; a
    // minute's precision is plenty, and saves an inode write per read.
    if (now - it->second.touched < 60) return;
    it->second.touched = now;
  }
  ::utimensat(AT_FDCWD, PathOf(pack).c_str(), nullptr, 0);
}

uint64_t PackMirror::capacity() {
  std::lock_guard lock(mu_);
  LoadLocked();
  return capacity_;
}

uint64_t PackMirror::bytes() {
  std::lock_guard lock(mu_);
  LoadLocked();
  return bytes_;
}

}  // namespace tusk
