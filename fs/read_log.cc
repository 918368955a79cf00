#include "fs/read_log.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tusk::fs {

uint64_t MountNamespaceOf(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

bool DescendsFrom(pid_t pid, pid_t ancestor) {
  for (int depth = 0; depth < 512 && pid > 1; depth++) {
    if (pid == ancestor) return true;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) return false;
    std::istringstream rest(stat.substr(close + 1));
    char state;
    pid_t ppid;
    if (!(rest >> state >> ppid)) return false;
    pid = ppid;
  }
  return pid == ancestor;
}

bool ReadLog::Accepts(pid_t pid) const {
  if (mount_ns_ == 0) return true;
  {
    std::lock_guard lock(pids_mu_);
    auto it = pids_.find(pid);
    if (it != pids_.end()) return it->second;
  }
  bool ours = MountNamespaceOf(pid) == mount_ns_ || (ancestor_ != 0 && DescendsFrom(pid, ancestor_));
  std::lock_guard lock(pids_mu_);
  if (pids_.size() >= 4096) pids_.clear();
  pids_[pid] = ours;
  return ours;
}

void ReadLog::NoteFile(std::string path, const TreeEntry& entry) {
  std::lock_guard lock(mu_);
  reads_.files.try_emplace(std::move(path), entry);
}

void ReadLog::NoteDir(std::string path) {
  std::lock_guard lock(mu_);
  reads_.dirs.insert(std::move(path));
}

ReadSet ReadLog::Take() {
  std::lock_guard lock(mu_);
  ReadSet out = std::move(reads_);
  reads_ = ReadSet();
  return out;
}

}  // namespace tusk::fs
