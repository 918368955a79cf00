// Removing workspaces with their branch or dataset (issue 9, defect 12).
// Works on the directory layout described in workspace.h, through
// descriptors, so deep upper trees are removed whatever the store's path.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "store/internal/file.h"
#include "store/workspace/workspace.h"

namespace tusk {
namespace {

std::string DatasetDir(const Repository* repo, const std::string& dataset) {
  return JoinPath(repo->dir(), "workspaces/" + dataset);
}

// The names in directory `fd` (other than . and ..), with whether each is a
// directory.
Result<std::vector<std::pair<std::string, bool>>> Entries(int fd, const std::string& what) {
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(fd, what));
  std::vector<std::pair<std::string, bool>> out;
  for (auto& n : names) {
    struct stat st;
    if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::FromErrno(errno, "stat " + what + "/" + n);
    out.emplace_back(std::move(n), S_ISDIR(st.st_mode));
  }
  return out;
}

Status RemoveTree(int parent_fd, const std::string& name, const std::string& what) {
  int raw = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, "open " + what);
  {
    Fd fd(raw);
    TUSK_RETURN_IF_ERROR(RemoveDirectoryContents(fd.get(), what));
  }
  if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, "remove " + what);
  return Status::Ok();
}

// One branch's workspace directory, locked while this lives.
struct HeldWorkspace {
  std::string branch;
  Fd lock;
  bool staged = false;
};

// Takes the workspace's lock and looks at what it holds. Busy when another
// process (a mount) holds it.
Result<HeldWorkspace> Take(int dataset_fd, const std::string& dataset, const std::string& branch) {
  HeldWorkspace w;
  w.branch = branch;
  std::string name = dataset + "@" + branch;
  int dir = ::openat(dataset_fd, branch.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return Status::FromErrno(errno, "open the workspace of " + name);
  Fd dir_fd(dir);
  int lock = ::openat(dir, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return Status::FromErrno(errno, "open the lock of workspace " + name);
  w.lock = Fd(lock);
  if (::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Busy("workspace " + name + " is held by another process (a mount serving it)");
    return Status::FromErrno(errno, "lock workspace " + name);
  }
  // Staged: anything in upper/, a commit in progress (next), or a merge.
  struct stat st;
  for (const char* file : {"next", "merge", "merge.staging"})
    if (::fstatat(dir, file, &st, AT_SYMLINK_NOFOLLOW) == 0) w.staged = true;
  int upper = ::openat(dir, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (upper >= 0) {
    Fd upper_fd(upper);
    TUSK_ASSIGN_OR_RETURN(auto entries, Entries(upper, "upper of workspace " + name));
    if (!entries.empty()) w.staged = true;
  } else if (errno != ENOENT) {
    return Status::FromErrno(errno, "open the upper directory of workspace " + name);
  }
  return w;
}

// Moves the workspace out of the way in one rename (a name with '@', which
// no branch can have), then removes it.
Status Discard(int dataset_fd, const std::string& dataset, const std::string& branch) {
  static std::atomic<uint64_t> counter{0};
  std::string trash = "@deleted-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  if (::renameat(dataset_fd, branch.c_str(), dataset_fd, trash.c_str()) != 0)
    return Status::FromErrno(errno, "remove the workspace of " + dataset + "@" + branch);
  return RemoveTree(dataset_fd, trash, "workspaces/" + dataset + "/" + trash);
}

}  // namespace

Status RemoveWorkspaces(Repository* repo, const std::string& dataset, const std::optional<std::string>& branch,
                        bool force, const std::function<Status(const std::string& branch)>& on_held) {
  std::string dir = DatasetDir(repo, dataset);
  int raw = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, "open " + dir);
  Fd dataset_fd(raw);
  std::vector<std::string> names;
  if (branch) {
    struct stat st;
    if (::fstatat(dataset_fd.get(), branch->c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::FromErrno(errno, "stat the workspace of " + dataset + "@" + *branch);
    }
    names.push_back(*branch);
  } else {
    TUSK_ASSIGN_OR_RETURN(auto entries, Entries(dataset_fd.get(), dir));
    for (const auto& [n, is_dir] : entries) {
      if (!is_dir) continue;
      // Left by a removal that was interrupted.
      if (n.find('@') != std::string::npos) TUSK_RETURN_IF_ERROR(RemoveTree(dataset_fd.get(), n, dir + "/" + n));
      else names.push_back(n);
    }
  }
  // Every workspace is locked and looked at before any is removed, so a
  // refusal changes nothing.
  std::vector<HeldWorkspace> held;
  std::vector<std::string> staged;
  for (const auto& n : names) {
    auto w = Take(dataset_fd.get(), dataset, n);
    if (!w.ok() && w.status().code() == Status::Code::kBusy && on_held) {
      TUSK_RETURN_IF_ERROR(on_held(n));
      continue;  // left to its holder
    }
    if (!w.ok()) return w.status();
    if (w->staged) staged.push_back(dataset + "@" + n);
    held.push_back(std::move(w).value());
  }
  if (!staged.empty() && !force) {
    std::string list;
    for (const auto& s : staged) list += (list.empty() ? "" : ", ") + s;
    return Status::Rebuild(Status::Code::kConflict, ENOTEMPTY, "changes are staged in workspace " + list);
  }
  for (const auto& w : held) TUSK_RETURN_IF_ERROR(Discard(dataset_fd.get(), dataset, w.branch));
  // Durable before the caller deletes the branch: a workspace that came
  // back after a power loss would bring its stale changes to a new branch of
  // the same name.
  if (!held.empty()) TUSK_RETURN_IF_ERROR(repo->files()->SyncDir(dir));
  if (!branch && ::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY)
    return Status::FromErrno(errno, "remove " + dir);
  return Status::Ok();
}

}  // namespace tusk
