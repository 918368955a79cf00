#include "store/backend/disk_chunk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "store/internal/crc32c.h"
#include "store/internal/file.h"

namespace tusk {
std::string DiskChunkCache::PathOf(const ObjectId& id) const {
  std::string hex = id.Hex();
  return dir_ + "/" + hex.substr(0, 2) + "/" + hex;
}

void DiskChunkCache::LoadLocked() {
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
  // A crash between writing a file and renaming it into place left it here.
  if (std::unique_ptr<DIR, int (*)(DIR*)> tmp(opendir((dir_ + "/tmp").c_str()), closedir); tmp) {
    time_t now = time(nullptr);
    while (dirent* e = readdir(tmp.get())) {
      std::string path = dir_ + "/tmp/" + e->d_name;
      struct stat st;
      // Not the files other processes are writing now.
      if (e->d_name[0] != '.' && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < now - 3600)
        ::unlink(path.c_str());
    }
  }
  struct Found {
    ObjectId id;
    uint64_t size;
    int64_t mtime_ns;
  };
  std::vector<Found> found;
  std::unique_ptr<DIR, int (*)(DIR*)> top(opendir(dir_.c_str()), closedir);
  if (!top) return;
  while (dirent* d = readdir(top.get())) {
    std::string sub = d->d_name;
    if (sub.size() != 2) continue;
    std::string subdir = dir_ + "/" + sub;
    std::unique_ptr<DIR, int (*)(DIR*)> inner(opendir(subdir.c_str()), closedir);
    if (!inner) continue;
    while (dirent* e = readdir(inner.get())) {
      std::string name = e->d_name;
      auto id = ObjectId::FromHex(name);
      struct stat st;
      if (!id || name.size() != 64 || name.substr(0, 2) != sub ||
          ::stat((subdir + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4)
        continue;
      found.push_back({*id, static_cast<uint64_t>(st.st_size) - 4,
                       static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
    }
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.mtime_ns < b.mtime_ns; });
  for (const Found& f : found) {
    uses_.push_back(f.id);
    entries_[f.id] = {f.size, std::prev(uses_.end())};
    bytes_ += f.size;
  }
  EvictLocked();  // the capacity may be smaller than last time
}

void DiskChunkCache::ForgetLocked(const ObjectId& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  bytes_ -= it->second.size;
  uses_.erase(it->second.use);
  entries_.erase(it);
}

void DiskChunkCache::EvictLocked() {
  while (bytes_ > capacity_ && !uses_.empty()) {
    ObjectId oldest = uses_.front();
    ::unlink(PathOf(oldest).c_str());
    ForgetLocked(oldest);
  }
}

namespace {
// A cache file read in one piece: its size first, so the buffer is
// allocated once.
Result<std::string> ReadCacheFile(const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  TUSK_ASSIGN_OR_RETURN(size_t n, ReadUpTo(fd.get(), out.data(), out.size(), path));
  if (n != out.size()) return Status::Corruption(path + ": shorter than its size");
  return out;
}
}  // namespace

std::optional<std::string> DiskChunkCache::Get(const ObjectId& id) {
  std::string path = PathOf(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    LoadLocked();
    // Another process may have put it since the scan: the file decides.
  }
  auto bytes = ReadCacheFile(path);
  if (!bytes.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ForgetLocked(id);
    return std::nullopt;
  }
  std::string& data = *bytes;
  uint32_t stored = 0;
  if (data.size() >= 4) {
    for (int i = 3; i >= 0; i--) stored = stored << 8 | static_cast<unsigned char>(data[data.size() - 4 + i]);
  }
  if (data.size() < 4 || Crc32c(data.data(), data.size() - 4) != stored) {
    ::unlink(path.c_str());
    std::lock_guard<std::mutex> lock(mu_);
    ForgetLocked(id);
    return std::nullopt;
  }
  data.resize(data.size() - 4);
  int64_t now = std::time(nullptr);
  bool touch = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      uses_.push_back(id);
      it = entries_.emplace(id, Entry{data.size(), std::prev(uses_.end())}).first;
      bytes_ += data.size();
    } else {
      uses_.splice(uses_.end(), uses_, it->second.use);
    }
    // The file's mtime orders evictions across processes; a minute's
    // precision is plenty, and saves an inode write per read.
    touch = now - it->second.touched >= 60;
    if (touch) it->second.touched = now;
  }
  if (touch) ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // a use: now
  return std::move(data);
}

void DiskChunkCache::Drop(const ObjectId& id) {
  ::unlink(PathOf(id).c_str());
  std::lock_guard<std::mutex> lock(mu_);
  ForgetLocked(id);
}

uint64_t DiskChunkCache::capacity() {
  std::lock_guard<std::mutex> lock(mu_);
  LoadLocked();
  return capacity_;
}

bool DiskChunkCache::Contains(const ObjectId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  LoadLocked();
  return entries_.count(id) > 0;
}

Status DiskChunkCache::Put(const ObjectId& id, std::string_view plaintext) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    LoadLocked();
    if (plaintext.size() > capacity_) return Status::Ok();  // would evict everything, itself included
    if (entries_.count(id)) return Status::Ok();
  }
  std::string path = PathOf(id);
  std::string tmp_dir = dir_ + "/tmp";
  TUSK_RETURN_IF_ERROR(MakeDirs(tmp_dir, 0700));
  TUSK_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/')), 0700));
  static std::atomic<uint64_t> counter{0};
  std::string tmp = tmp_dir + "/" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  uint32_t crc = Crc32c(plaintext.data(), plaintext.size());
  char trailer[4];
  for (int i = 0; i < 4; i++) trailer[i] = static_cast<char>(crc >> (8 * i));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status written = WriteAll(fd, plaintext.data(), plaintext.size(), tmp);
  if (written.ok()) written = WriteAll(fd, trailer, 4, tmp);
  ::close(fd);
  // No fsync: a file a crash tears fails its CRC and is a miss.
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) written = Status::FromErrno(errno, "cache " + path);
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!entries_.count(id)) {
    uses_.push_back(id);
    entries_[id] = {plaintext.size(), std::prev(uses_.end())};
    bytes_ += plaintext.size();
  }
  EvictLocked();
  return Status::Ok();
}

uint64_t DiskChunkCache::bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  LoadLocked();
  return bytes_;
}

size_t DiskChunkCache::count() {
  std::lock_guard<std::mutex> lock(mu_);
  LoadLocked();
  return entries_.size();
}

}  // namespace tusk
