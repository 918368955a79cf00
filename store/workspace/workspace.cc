// Workspace: opening and locking, the base file, crash recovery of an
// interrupted commit, and the small public accessors. The namespace
// operations are in ops.cc, open files in file.cc,
// Changes/Commit/Reset in commit.cc.
#include "store/workspace/workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "store/workspace/workspace_core.h"
#include "store/refs.h"

namespace tusk {

using ws::WsCore;

namespace ws {

Result<std::optional<ObjectId>> ParseIdFile(std::string_view text, const std::string& path) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  if (text == "none") return std::optional<ObjectId>();
  auto id = ObjectId::FromHex(text);
  if (!id) return Status::Corruption(path + ": not a commit id");
  return std::optional<ObjectId>(*id);
}

namespace {

std::string WorkspaceDir(const Repository* repo, const std::string& dataset, const std::string& branch) {
  return JoinPath(repo->dir(), "workspaces/" + dataset + "/" + branch);
}

Result<std::optional<ObjectId>> ReadIdFile(Env* files, const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(files, path));
  return ParseIdFile(text, path);
}

Status WriteIdFile(Env* files, const std::string& path, const std::optional<ObjectId>& id) {
  return WriteFileAtomically(files, path, (id ? id->Hex() : std::string("none")) + "\n");
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// The sidecar names upper files refer to, and the upper directories walked
// ("" is upper/ itself).
Status CollectSidecarRefs(WsCore* core, const std::string& rel, std::set<std::string>* refs,
                          std::vector<std::string>* dirs) {
  dirs->push_back(rel);
  TUSK_ASSIGN_OR_RETURN(auto dir, core->UpperDir(rel));
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir->get(), QuotedRel(rel)));
  std::vector<std::string> subdirs;
  for (const auto& n : names) {
    struct stat st;
    if (::fstatat(dir->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) subdirs.push_back(n);
    if (!S_ISREG(st.st_mode)) continue;
    TUSK_ASSIGN_OR_RETURN(std::string id, core->MetaIdOf(JoinRel(rel, n)));
    if (!id.empty()) refs->insert(id);
  }
  for (const auto& s : subdirs) TUSK_RETURN_IF_ERROR(CollectSidecarRefs(core, JoinRel(rel, s), refs, dirs));
  return Status::Ok();
}

// Whether `next` became part of the branch: it is the head or a
// first-parent ancestor of it newer than `base`.
Result<bool> CommitLanded(Repository* repo, const std::optional<ObjectId>& head, const std::optional<ObjectId>& base,
                          const ObjectId& next) {
  std::optional<ObjectId> at = head;
  for (int steps = 0; at && steps < 10000; steps++) {
    if (*at == next) return true;
    if (base && *at == *base) return false;
    auto commit = repo->ReadCommit(*at);
    if (!commit.ok()) return false;
    if (commit->parents.empty()) return false;
    at = commit->parents.front();
  }
  return false;
}

}  // namespace

WsCore::WsCore(Repository* r, std::string ds, std::string br, std::string d)
    : repo(r),
      files(r->files()),
      dataset(std::move(ds)),
      branch(std::move(br)),
      dir(std::move(d)),
      upper_path(dir + "/upper"),
      meta_path(dir + "/meta"),
      store(r),
      unprivileged(::geteuid() != 0) {}

Status WsCore::Init() {
  TUSK_RETURN_IF_ERROR(files->MakeDirs(upper_path, 0755));
  TUSK_RETURN_IF_ERROR(files->MakeDirs(meta_path, 0700));
  // The workspace's own names, down from workspaces/, durable before
  // anything is staged in it.
  for (std::string d = dir;; d = d.substr(0, d.rfind('/'))) {
    TUSK_RETURN_IF_ERROR(files->SyncDir(d));
    if (d.size() <= repo->dir().size()) break;
  }
  int raw = ::open(upper_path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open " + upper_path);
  upper_fd = Fd(raw);
  raw = ::open(meta_path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open " + meta_path);
  meta_dir_fd = Fd(raw);
  return Status::Ok();
}

Status WsCore::SetBase(const std::optional<ObjectId>& commit, bool write_file) {
  uint64_t file_count = 0, bytes = 0;
  std::optional<ObjectId> root;
  if (commit) {
    TUSK_ASSIGN_OR_RETURN(Commit c, repo->ReadCommit(*commit));
    root = c.root;
    file_count = c.file_count;
    bytes = c.total_bytes;
  }
  if (write_file) TUSK_RETURN_IF_ERROR(WriteIdFile(files, dir + "/base", commit));
  if (base != commit) generation++;
  base = commit;
  base_root = root;
  base_files = file_count;
  base_bytes = bytes;
  return Status::Ok();
}

Result<bool> WsCore::Staged() {
  if (merge) return true;  // even a merge that changed nothing makes a merge commit
  bool any = false;
  TUSK_RETURN_IF_ERROR(ForEachDirectoryEntry(upper_fd.get(), upper_path, [&](const char*, unsigned char) {
    any = true;
    return false;
  }));
  return any;
}

Status WsCore::FollowBranchIfClean(bool* diverged) {
  TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> head, repo->GetBranch(dataset, branch));
  *diverged = false;
  if (head == base) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(bool staged, Staged());
  if (staged) {
    *diverged = true;
    return Status::Ok();
  }
  // Files open now keep reading the version they opened; new opens see the
  // new head.
  DetachAllNodes();
  return SetBase(head, true);
}

Status ClearUpperAndSidecars(WsCore* core) {
  core->ForgetDirs("");
  TUSK_RETURN_IF_ERROR(RemoveDirectoryContents(core->upper_fd.get(), core->upper_path));
  // Durable before the base may move (staged entries that came back after a
  // power loss would read as changes against the new base), and before the
  // sidecars go (see SyncUpperNames).
  TUSK_RETURN_IF_ERROR(core->SyncUpperNames(""));
  TUSK_RETURN_IF_ERROR(RemoveDirectoryContents(core->meta_dir_fd.get(), core->meta_path));
  return core->SyncSidecarNames();
}

void WsCore::NoteNewSidecar(const std::string& id) {
  std::lock_guard lock(unsynced_mu_);
  unsynced_sidecars_.push_back(id);
}

Status WsCore::SyncSidecarNames() { return files->SyncDir(meta_path); }

Status WsCore::SyncNewSidecars() {
  std::vector<std::string> sidecars;
  {
    std::lock_guard lock(unsynced_mu_);
    sidecars.swap(unsynced_sidecars_);
  }
  Status st = Status::Ok();
  for (const auto& id : sidecars) {
    int raw = ::openat(meta_dir_fd.get(), id.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (raw < 0) {
      if (errno == ENOENT) continue;  // swept meanwhile
      st = Status::FromErrno(errno, "open sidecar " + id);
      break;
    }
    Fd fd(raw);
    if (::fdatasync(fd.get()) != 0) {
      st = Status::FromErrno(errno, "fsync sidecar " + id);
      break;
    }
  }
  if (st.ok() && !sidecars.empty()) st = SyncSidecarNames();
  if (!st.ok()) {
    // Left for the next call to try again.
    std::lock_guard lock(unsynced_mu_);
    unsynced_sidecars_.insert(unsynced_sidecars_.end(), sidecars.begin(), sidecars.end());
  }
  return st;
}

Status WsCore::SyncUpperNames(const std::string& dir_rel) {
  TUSK_RETURN_IF_ERROR(SyncNewSidecars());
  for (std::string rel = dir_rel;; rel = ParentOf(rel)) {
    Status synced = files->SyncDir(rel.empty() ? upper_path : upper_path + "/" + rel);
    if (!synced.ok() && synced.sys_errno() != ENOENT && synced.sys_errno() != ENOTDIR) return synced;
    if (rel.empty()) break;
  }
  return Status::Ok();
}

Status WsCore::RemoveNextFile() {
  Status st = files->Remove(dir + "/next");
  if (!st.ok() && st.code() != Status::Code::kNotFound) return st;
  return files->SyncDir(dir);
}

}  // namespace ws

Workspace::Workspace(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Workspace::~Workspace() = default;

Result<std::unique_ptr<Workspace>> Workspace::Open(Repository* repo, const std::string& dataset,
                                                   const std::string& branch) {
  TUSK_RETURN_IF_ERROR(repo->CheckDataset(dataset));
  TUSK_RETURN_IF_ERROR(ValidateName("branch", branch));
  TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> head, repo->GetBranch(dataset, branch));
  std::string dir = ws::WorkspaceDir(repo, dataset, branch);
  TUSK_RETURN_IF_ERROR(repo->files()->MakeDirs(dir, 0755));
  auto core = std::make_shared<WsCore>(repo, dataset, branch, dir);
  core->self = core;

  std::string lock_path = dir + "/lock";
  int raw = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (raw < 0) return Status::FromErrno(errno, "open " + lock_path);
  core->lock_fd = Fd(raw);
  if (::flock(core->lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::AlreadyExists("workspace " + dataset + "@" + branch +
                                   " is held by another process (a mount serving it?)");
    return Status::FromErrno(errno, "lock " + lock_path);
  }
  TUSK_RETURN_IF_ERROR(core->Init());

  std::string base_path = dir + "/base", next_path = dir + "/next";
  if (ws::FileExists(base_path)) {
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> base, ws::ReadIdFile(core->files, base_path));
    TUSK_RETURN_IF_ERROR(core->SetBase(base, false));
  } else {
    TUSK_RETURN_IF_ERROR(core->SetBase(head, true));  // first use
  }
  // A commit was being made when the previous owner stopped: if it reached
  // the branch, finish its cleanup; otherwise the staged changes stand.
  if (ws::FileExists(next_path)) {
    auto next = ws::ReadIdFile(core->files, next_path);
    if (next.ok() && *next) {
      TUSK_ASSIGN_OR_RETURN(bool landed, ws::CommitLanded(repo, head, core->base, **next));
      if (landed) {
        TUSK_RETURN_IF_ERROR(core->SetBase(*next, true));
        TUSK_RETURN_IF_ERROR(ws::ClearUpperAndSidecars(core.get()));
        TUSK_RETURN_IF_ERROR(core->SaveMerge());  // the merge it made, if any, is done
      }
    }
    TUSK_RETURN_IF_ERROR(core->RemoveNextFile());
  }
  TUSK_RETURN_IF_ERROR(core->LoadMerge());
  // Sidecars no upper file names (left by an unlink, or by a crash between
  // creating one and linking its file) are garbage. When there is some, the
  // upper directories are synced first, so that only sidecars no durable
  // name refers to go (see WsCore::SyncUpperNames); usually there is none,
  // and opening syncs nothing there.
  {
    std::set<std::string> refs;
    std::vector<std::string> dirs;
    TUSK_RETURN_IF_ERROR(ws::CollectSidecarRefs(core.get(), "", &refs, &dirs));
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> sidecars, ListDirectory(core->meta_dir_fd.get(), core->meta_path));
    if (std::any_of(sidecars.begin(), sidecars.end(), [&](const std::string& n) { return !refs.count(n); })) {
      for (const auto& d : dirs)
        TUSK_RETURN_IF_ERROR(core->files->SyncDir(d.empty() ? core->upper_path : core->upper_path + "/" + d));
      TUSK_RETURN_IF_ERROR(core->RemoveSidecarsExcept(refs));
    }
  }
  bool diverged;
  TUSK_RETURN_IF_ERROR(core->FollowBranchIfClean(&diverged));
  auto impl = std::make_unique<Impl>();
  impl->core = std::move(core);
  return std::unique_ptr<Workspace>(new Workspace(std::move(impl)));
}

Result<bool> Workspace::IsHeld(Repository* repo, const std::string& dataset, const std::string& branch) {
  std::string lock_path = ws::WorkspaceDir(repo, dataset, branch) + "/lock";
  int raw = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return false;
    return Status::FromErrno(errno, "open " + lock_path);
  }
  Fd fd(raw);
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;  // released when fd closes
  if (errno == EWOULDBLOCK) return true;
  return Status::FromErrno(errno, "lock " + lock_path);
}

const std::string& Workspace::dataset() const { return impl_->core->dataset; }
const std::string& Workspace::branch() const { return impl_->core->branch; }

std::optional<ObjectId> Workspace::base() const {
  std::lock_guard lock(impl_->core->mu);
  return impl_->core->base;
}

uint64_t Workspace::generation() const {
  std::lock_guard lock(impl_->core->mu);
  return impl_->core->generation;
}

Result<bool> Workspace::Diverged() {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  bool diverged;
  TUSK_RETURN_IF_ERROR(c.FollowBranchIfClean(&diverged));
  return diverged;
}

}  // namespace tusk
