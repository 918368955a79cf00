// Drift of a run's inputs against their branches (store/lineage/lineage.h).
#include <algorithm>
#include <set>

#include "store/diff.h"
#include "store/lineage/lineage.h"
#include "store/refs.h"
#include "store/repository.h"

namespace tusk {
namespace {

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

Result<std::vector<InputDrift>> DriftOf(Repository& repo, const RunRecord& run) {
  std::vector<InputDrift> out;
  for (size_t i = 0; i < run.inputs.size(); i++) {
    const RunInput& in = run.inputs[i];
    InputDrift d;
    d.input = i;
    auto ref = ParseRef(in.ref, true);
    if (!ref.ok() || ref->ancestors != 0) {
      out.push_back(std::move(d));  // DATASET@REV~N names no branch
      continue;
    }
    std::string rev = ref->rev.empty() ? std::string(kDefaultBranch) : ref->rev;
    auto head = repo.GetBranch(in.dataset, rev);
    if (!head.ok()) {
      if (head.status().code() != Status::Code::kNotFound) return head.status();
      // A tag or commit prefix: fixed. A branch that was deleted since:
      // the run's own record says it named one only if no tag has the name.
      auto tags = repo.ListTags(in.dataset);
      bool is_tag = false;
      if (tags.ok())
        for (const auto& t : *tags) is_tag = is_tag || t.name == rev;
      bool looks_like_commit = in.commit.Hex().rfind(rev, 0) == 0;
      if (!is_tag && !looks_like_commit) {
        d.branch = rev;
        d.problem = "branch " + in.dataset + "@" + rev + " no longer exists";
      }
      out.push_back(std::move(d));
      continue;
    }
    d.branch = rev;
    d.head = *head;
    d.moved = *head != in.commit;
    if (!d.moved || !*head) {
      if (!*head) d.problem = "branch " + in.dataset + "@" + rev + " has no commits";
      out.push_back(std::move(d));
      continue;
    }
    TUSK_ASSIGN_OR_RETURN(Commit then, repo.ReadCommit(in.commit));
    TUSK_ASSIGN_OR_RETURN(Commit now, repo.ReadCommit(**head));
    TUSK_ASSIGN_OR_RETURN(std::vector<Change> changes, DiffTrees(repo, then.root, now.root));
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> listed_list, ReadListedDirs(repo, in));
    std::set<std::string> listed(listed_list.begin(), listed_list.end());
    std::set<std::string> changed;
    // `path` changed or is gone: it matters if the run read it, or read
    // files below it (a directory that became a file: DiffTrees reports
    // the directory alone), or listed it.
    auto read_file_changed = [&](const std::string& path) -> Status {
      std::string p = path;
      if (!p.empty() && p.back() == '/') p.pop_back();  // an empty directory
      if (listed.count(p)) changed.insert(p + "/");
      auto entry = LookupPath(repo, in.read_tree, p);
      if (entry.ok()) changed.insert(entry->kind == EntryKind::kDirectory ? p + "/" : p);
      else if (entry.status().code() != Status::Code::kNotFound) return entry.status();
      return Status::Ok();
    };
    // `path` was added (it is missing from `other_root`, the old tree) or
    // deleted (missing from the new tree): a listed directory sees a name
    // come or go where `path` or one of its ancestors is missing on the
    // other side.
    auto listing_changed = [&](const std::string& path, const ObjectId& other_root) -> Status {
      std::string p = path;
      if (!p.empty() && p.back() == '/') p.pop_back();  // an empty directory
      for (;;) {
        std::string dir = ParentDir(p);
        if (listed.count(dir)) {
          auto e = LookupPath(repo, other_root, p);
          if (!e.ok() && e.status().code() != Status::Code::kNotFound) return e.status();
          if (!e.ok()) changed.insert(dir.empty() ? "/" : dir + "/");
        }
        if (dir.empty()) return Status::Ok();
        p = dir;
      }
    };
    for (const auto& c : changes) {
      switch (c.kind) {
        case Change::Kind::kModified:
          if (c.content_changed) TUSK_RETURN_IF_ERROR(read_file_changed(c.path));
          break;
        case Change::Kind::kTypeChanged:
          TUSK_RETURN_IF_ERROR(read_file_changed(c.path));
          break;
        case Change::Kind::kDeleted:
          TUSK_RETURN_IF_ERROR(read_file_changed(c.path));
          TUSK_RETURN_IF_ERROR(listing_changed(c.path, now.root));
          break;
        case Change::Kind::kAdded:
          TUSK_RETURN_IF_ERROR(listing_changed(c.path, then.root));
          break;
        case Change::Kind::kRenamed:
          TUSK_RETURN_IF_ERROR(read_file_changed(c.old_path));
          TUSK_RETURN_IF_ERROR(listing_changed(c.old_path, now.root));
          TUSK_RETURN_IF_ERROR(listing_changed(c.path, then.root));
          break;
      }
    }
    d.changed.assign(changed.begin(), changed.end());
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace tusk
