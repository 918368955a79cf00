// MergeIntoBranch: up to date, fast-forward, or a merge commit with two
// parents, landed by compare-and-set against the head the merge started
// from.
#include <ctime>

#include "store/merge/merge.h"

namespace tusk {

Result<BranchMergeResult> MergeIntoBranch(Repository& repo, const BranchMergeRequest& request) {
  BranchMergeResult r;
  const std::string target = request.dataset + "@" + request.branch;
  TUSK_ASSIGN_OR_RETURN(Commit source, repo.ReadCommit(request.source));
  if (source.dataset != request.dataset)
    return Status::InvalidArgument(request.source_name + " is a version of dataset '" + source.dataset +
                                   "', not of '" + request.dataset + "': merges happen within one dataset");
  TUSK_ASSIGN_OR_RETURN(r.ours, repo.GetBranch(request.dataset, request.branch));
  TUSK_ASSIGN_OR_RETURN(auto session, repo.BeginWrite());

  auto land = [&](Commit commit, bool fast_forward) -> Result<ObjectId> {
    if (request.prepare_commit) {
      Commit checked = commit;
      TUSK_RETURN_IF_ERROR(request.prepare_commit(&checked, *session));
      if (!fast_forward) commit = std::move(checked);
    }
    return session->CommitToBranch(commit, request.branch, r.ours);
  };

  if (!r.ours && request.stage)
    return Status::InvalidArgument(target + " has no commits: there is nothing to merge into; "
                                   "without --stage the merge makes it " + request.source_name);
  if (!r.ours) {
    // A branch with no commits takes the source as it is.
    r.outcome = BranchMergeResult::Outcome::kFastForward;
    TUSK_ASSIGN_OR_RETURN(r.commit, land(source, true));
    return r;
  }
  TUSK_ASSIGN_OR_RETURN(r.base, FindMergeBase(repo, *r.ours, request.source));
  if (r.base && *r.base == request.source) {
    r.outcome = BranchMergeResult::Outcome::kUpToDate;
    r.commit = r.ours;
    return r;
  }
  if (!r.base && !request.allow_unrelated)
    return Status::InvalidArgument(request.source_name + " and " + target +
                                   " share no history (no common commit); nothing was merged. "
                                   "--allow-unrelated merges them against an empty tree");
  if (r.base && *r.base == *r.ours && !request.no_ff && !request.stage) {
    r.outcome = BranchMergeResult::Outcome::kFastForward;
    // Re-encoding a decoded commit gives its bytes back, so this writes no
    // new commit: only the branch moves.
    TUSK_ASSIGN_OR_RETURN(r.commit, land(source, true));
    if (*r.commit != request.source)
      return Status::Corruption("commit " + request.source.ShortHex() + " did not encode back to itself");
    return r;
  }

  TreeMergeOptions tree_options = request.tree;
  tree_options.stage = request.stage;
  TUSK_ASSIGN_OR_RETURN(r.tree, MergeTrees(repo, *session, r.base, *r.ours, request.source, tree_options));
  if (!r.tree.root) {
    r.outcome = BranchMergeResult::Outcome::kConflicts;
    return r;  // the session is dropped: nothing it wrote is registered
  }
  if (request.stage) {
    // Durable, so the workspace process can read it; the workspace's merge
    // state names it, which keeps it from gc.
    TUSK_RETURN_IF_ERROR(session->Flush());
    r.staged = *r.tree.root;
    r.outcome = BranchMergeResult::Outcome::kStaged;
    return r;
  }
  Commit merge;
  merge.dataset = request.dataset;
  merge.root = *r.tree.root;
  merge.parents = {*r.ours, request.source};
  merge.author = request.author;
  merge.time_sec = std::time(nullptr);
  merge.message = request.message.empty() ? "merge " + request.source_name + " into " + target : request.message;
  merge.file_count = r.tree.file_count;
  merge.total_bytes = r.tree.total_bytes;
  r.outcome = BranchMergeResult::Outcome::kMerged;
  TUSK_ASSIGN_OR_RETURN(r.commit, land(merge, false));
  return r;
}

}  // namespace tusk
