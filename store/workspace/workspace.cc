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

Result<std::optional<ObjectId>> ReadIdFile(const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseIdFile(text, path);
}

Status WriteIdFile(const std::string& path, const std::optional<ObjectId>& id) {
  return WriteFileAtomically(path, (id ? id->Hex() : std::string("none")) + "\n");
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// The sidecar names upper files refer to.
Status CollectSidecarRefs(WsCore* core, const std::string& rel, std::set<std::string>* refs) {
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
  for (const auto& s : subdirs) TUSK_RETURN_IF_ERROR(CollectSidecarRefs(core, JoinRel(rel, s), refs));
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
      dataset(std::move(ds)),
      branch(std::move(br)),
      dir(std::move(d)),
      upper_path(dir + "/upper"),
      meta_path(dir + "/meta"),
      store(r),
      unprivileged(::geteuid() != 0) {}

Status WsCore::Init() {
  TUSK_RETURN_IF_ERROR(MakeDirs(upper_path, 0755));
  TUSK_RETURN_IF_ERROR(MakeDirs(meta_path, 0700));
  int raw = ::open(upper_path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open " + upper_path);
  upper_fd = Fd(raw);
  raw = ::open(meta_path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open " + meta_path);
  meta_dir_fd = Fd(raw);
  return Status::Ok();
}

Status WsCore::SetBase(const std::optional<ObjectId>& commit, bool write_file) {
  uint64_t files = 0, bytes = 0;
  std::optional<ObjectId> root;
  if (commit) {
    TUSK_ASSIGN_OR_RETURN(Commit c, repo->ReadCommit(*commit));
    root = c.root;
    files = c.file_count;
    bytes = c.total_bytes;
  }
  if (write_file) TUSK_RETURN_IF_ERROR(WriteIdFile(dir + "/base", commit));
  if (base != commit) generation++;
  base = commit;
  base_root = root;
  base_files = files;
  base_bytes = bytes;
  return Status::Ok();
}

Result<bool> WsCore::Staged() {
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
  return RemoveDirectoryContents(core->meta_dir_fd.get(), core->meta_path);
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
  TUSK_RETURN_IF_ERROR(MakeDirs(dir, 0755));
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
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> base, ws::ReadIdFile(base_path));
    TUSK_RETURN_IF_ERROR(core->SetBase(base, false));
  } else {
    TUSK_RETURN_IF_ERROR(core->SetBase(head, true));  // first use
  }
  // A commit was being made when the previous owner stopped: if it reached
  // the branch, finish its cleanup; otherwise the staged changes stand.
  if (ws::FileExists(next_path)) {
    auto next = ws::ReadIdFile(next_path);
    if (next.ok() && *next) {
      TUSK_ASSIGN_OR_RETURN(bool landed, ws::CommitLanded(repo, head, core->base, **next));
      if (landed) {
        TUSK_RETURN_IF_ERROR(core->SetBase(*next, true));
        TUSK_RETURN_IF_ERROR(ws::ClearUpperAndSidecars(core.get()));
      }
    }
    if (::unlink(next_path.c_str()) != 0 && errno != ENOENT) return Status::FromErrno(errno, "remove " + next_path);
  }
  // Sidecars no upper file names (a crash between creating one and linking
  // its file) are garbage.
  {
    std::set<std::string> refs;
    TUSK_RETURN_IF_ERROR(ws::CollectSidecarRefs(core.get(), "", &refs));
    TUSK_RETURN_IF_ERROR(core->RemoveSidecarsExcept(refs));
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
