// CheckWorkspaces: fsck of the workspace files (issue 9, defect 14), with
// the workspace module's own parsers (ParseIdFile, Sidecar::Decode).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/workspace/workspace_core.h"

namespace tusk {
namespace {

using ws::Sidecar;
using ws::ReadMergeFile;
using ws::kMergeFile;

Result<std::optional<ObjectId>> ReadIdFile(const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ws::ParseIdFile(text, path);
}

// (name, is directory) of each entry of `fd`; empty when it cannot be read.
std::vector<std::pair<std::string, bool>> Entries(int fd) {
  std::vector<std::pair<std::string, bool>> out;
  auto names = ListDirectory(fd, "a workspace directory");
  if (!names.ok()) return out;
  for (auto& n : *names) {
    struct stat st;
    if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) out.emplace_back(std::move(n), S_ISDIR(st.st_mode));
  }
  return out;
}

int OpenDir(int parent, const std::string& name) {
  return ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

class WorkspaceChecker {
 public:
  WorkspaceChecker(Repository* repo, std::string name, std::string dir, std::vector<FsckProblem>* out)
      : repo_(repo), name_(std::move(name)), dir_(std::move(dir)), out_(out) {}

  void Run() {
    for (const char* file : {"base", "next"}) CheckIdFile(file);
    CheckMergeFile();
    // Only the sidecars upper files name: the others are garbage the next
    // sweep removes (see WsCore::SyncUpperNames), and may name chunks gc
    // has since deleted.
    int upper = ::open((dir_ + "/upper").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (upper >= 0) {
      Fd upper_fd(upper);
      WalkUpper(upper, "");
    }
  }

 private:
  void Report(const std::string& error) { out_->push_back({"workspace " + name_, error, {}}); }

  void CheckIdFile(const char* file) {
    std::string path = dir_ + "/" + file;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;  // none yet (base) or no commit in progress (next)
    auto id = ReadIdFile(path);
    if (!id.ok()) return Report(std::string(file) + " file: " + id.status().message());
    if (!*id) return;
    // A commit that was being made when the process stopped may never have
    // reached the store (a crash or power loss before it landed); the next
    // open of the workspace removes the file. Only a base must exist.
    if (std::string_view(file) == "next") return;
    auto commit = repo_->ReadCommit(**id);
    if (!commit.ok()) Report(std::string(file) + " commit " + (*id)->Hex() + ": " + commit.status().message());
  }

  // A staged merge: decodes, and the commits it names exist (its tree's
  // chunks are checked through the sidecars of the files staged).
  void CheckMergeFile() {
    auto merge = ReadMergeFile(Env::Default(), dir_, kMergeFile);
    if (!merge.ok()) return Report(merge.status().message());
    if (!*merge) return;
    for (auto [what, id] : {std::pair("ours", (*merge)->ours), std::pair("theirs", (*merge)->theirs)}) {
      auto commit = repo_->ReadCommit(id);
      if (!commit.ok()) Report(std::string("merge file: the ") + what + " commit " + id.Hex() + ": " + commit.status().message());
    }
    auto tree = ReadDirectory(*repo_, (*merge)->staged);
    if (!tree.ok()) Report("merge file: the staged tree " + (*merge)->staged.Hex() + ": " + tree.status().message());
  }

  // Whether the sidecar `id` (from an upper file's xattr: untrusted) exists
  // and decodes; chunks it still reads from the store that are missing are
  // reported here.
  bool CheckSidecar(const std::string& id) {
    bool name_ok = !id.empty() && id.size() <= 64 &&
                   id.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!name_ok) return false;
    auto bytes = ReadWholeFile(dir_ + "/meta/" + id);
    if (!bytes.ok()) return false;
    auto side = Sidecar::Decode(*bytes, "sidecar meta/" + id);
    if (!side.ok()) {
      Report(side.status().message());
      return false;
    }
    for (size_t i = 0; i < side->chunks.size(); i++) {
      if (side->state[i] != 0 || side->chunks[i].IsHole()) continue;
      auto has = repo_->Contains(side->chunks[i].id);
      if (!has.ok() || !*has) {
        Report("sidecar meta/" + id + ": chunk " + side->chunks[i].id.Hex() + " is missing from the store");
        break;
      }
    }
    return true;
  }

  // Every upper file that names a sidecar must name one that exists and
  // decodes.
  void WalkUpper(int dir, const std::string& rel) {
    for (const auto& [n, is_dir] : Entries(dir)) {
      std::string path = rel.empty() ? n : rel + "/" + n;
      if (is_dir) {
        int sub = OpenDir(dir, n);
        if (sub < 0) continue;
        Fd sub_fd(sub);
        WalkUpper(sub, path);
        continue;
      }
      int f = ::openat(dir, n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (f < 0) continue;
      Fd file(f);
      char buf[128];
      ssize_t len = ::fgetxattr(f, ws::kMetaXattr, buf, sizeof buf);
      if (len < 0) continue;
      std::string id(buf, static_cast<size_t>(len));
      auto checked = sidecars_.find(id);
      if (checked == sidecars_.end()) checked = sidecars_.emplace(id, CheckSidecar(id)).first;
      if (!checked->second) Report("upper file " + EscapeForDisplay(path) + " names sidecar '" +
                                   EscapeForDisplay(id) + "', which is missing or damaged");
    }
  }

  Repository* repo_;
  std::string name_, dir_;
  std::vector<FsckProblem>* out_;
  std::map<std::string, bool> sidecars_;  // checked: whether it decodes
};

}  // namespace

Result<std::vector<FsckProblem>> CheckWorkspaces(Repository* repo) {
  std::vector<FsckProblem> out;
  std::string root = JoinPath(repo->dir(), "workspaces");
  int raw = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return out;
    return Status::FromErrno(errno, "open " + root);
  }
  Fd root_fd(raw);
  for (const auto& [dataset, is_dir] : Entries(raw)) {
    if (!is_dir) continue;
    int ds = OpenDir(raw, dataset);
    if (ds < 0) continue;
    Fd ds_fd(ds);
    for (const auto& [branch, branch_is_dir] : Entries(ds)) {
      // '@': a removal in progress (RemoveWorkspaces), not a workspace.
      if (!branch_is_dir || branch.find('@') != std::string::npos) continue;
      WorkspaceChecker(repo, dataset + "@" + branch, root + "/" + dataset + "/" + branch, &out).Run();
    }
  }
  return out;
}

}  // namespace tusk
