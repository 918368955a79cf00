// Three-way merge of dataset versions: the merge base of two commits, the
// merge of their trees path by path, and landing the result on a branch.
//
// Terms.
// - *ours* is the target branch's head, *theirs* the commit merged into it,
//   *base* their merge base: the newest common ancestor (of several, as
//   after criss-cross merges, the one with the latest commit time).
// - Per path (tusk-merge(1) lists the rules for users):
//   changed on one side only -> that side; changed identically on both ->
//   taken once; a directory changed on both -> merged entry by entry; a
//   regular file whose content changed differently on both -> merged by
//   content: a table (CSV, TSV, JSONL: store/merge/table.h) by key and cell,
//   else text by line (store/merge/text.h), else a conflict. Also
//   conflicts: modify/delete, a file on one side and a directory on the
//   other, a change of type, and mode, owner or xattrs set differently on
//   both sides. Modification times never conflict: the later one is kept.
// - Unchanged subtrees (the same tree id on the sides compared) are never
//   read, so the cost follows what changed, not the dataset's size.
//
// Thread-safety: reentrant; one merge per WriteSession.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "store/merge/table.h"
#include "store/merge/text.h"
#include "store/repository.h"
#include "store/settings/settings.h"
#include "store/workspace/workspace.h"

namespace tusk {

// ---- Merge base ------------------------------------------------------------

// The merge base of commits `a` and `b` (of one dataset); nullopt when their
// histories share no commit.
Result<std::optional<ObjectId>> FindMergeBase(Repository& repo, const ObjectId& a, const ObjectId& b);
// Whether `ancestor` is `descendant` or reachable from it through parents.
Result<bool> IsAncestor(Repository& repo, const ObjectId& ancestor, const ObjectId& descendant);

// ---- How a file is read (the dataset's table rules) ------------------------

// The table format of `path` under the format its rule declares: kCsv,
// kTsv, kJsonl that one (whatever the name); kDetect by name
// (TableFormatForPath); kText and kBinary none.
std::optional<TableFormat> TableFormatFor(FileFormat declared, std::string_view path);

// ---- Tree merge ------------------------------------------------------------

struct MergeConflict {
  enum class Kind {
    kText,           // a text file with conflicting hunks
    kTable,          // a table with conflicting rows or cells (`cells`)
    kBinary,         // content changed on both sides, and not text (or too large for a line merge)
    kModifyDelete,   // deleted on one side, changed on the other
    kAddAdd,         // added on both sides with different content that cannot be merged (kept for non-files)
    kFileDirectory,  // a directory on one side, something else on the other
    kType,           // a different kind of entry on each side (file, symlink, fifo, device)
    kSymlink,        // a symlink retargeted differently on both sides
    kMode,           // permission bits set differently on both sides
    kOwner,          // owner or group set differently on both sides
    kXattrs,         // user xattrs set differently on both sides
  };
  Kind kind;
  std::string path;
  std::string detail;               // one line for people: "deleted in theirs, modified in ours"
  std::vector<TableConflict> cells;  // kTable
  // kText and kTable: the merged content with conflict markers (text) or
  // the in-cell notation (tables), as `tusk merge --stage` writes it.
  std::string marked;
  // With TreeMergeOptions::stage: where theirs' entry was placed beside
  // ours' ("labels.bin~theirs"); empty when it was not (text and table
  // conflicts hold both sides in the file; mode, owner and xattrs
  // conflicts keep ours'; theirs deleted the path).
  std::string theirs_path;
};
const char* MergeConflictKindName(MergeConflict::Kind kind);  // "text", "table", "modify/delete", ...

// How a file changed on both sides was combined (the output names it).
struct ContentMerge {
  std::string path;
  std::string method;  // "table, key id", "table, no key (...)", "lines"
  std::string note;    // why a table fell back to the line merge; empty otherwise
};

enum class MergeFavor { kNone, kOurs, kTheirs };

struct TreeMergeOptions {
  // --ours / --theirs: every conflict is resolved for that side (conflicting
  // hunks and cells take its value; other conflicts take its entry), so the
  // merge is always clean.
  MergeFavor favor = MergeFavor::kNone;
  // The declared table key for a path (dataset settings); nullopt: detect.
  std::function<KeySpec(const std::string& path)> table_key;
  // The declared format of a path (dataset settings); unset: kDetect.
  std::function<FileFormat(const std::string& path)> file_format;
  LineMergeLabels labels;
  // `tusk merge --stage`: the merged tree is made even with conflicts, as a
  // person resolves them: a conflicting text or table file holds its
  // markers or in-cell notation; any other conflict keeps ours' entry at
  // the path (none, if ours deleted it) and puts theirs' beside it as
  // NAME~theirs (NAME~theirs.2, ... when that name is taken).
  bool stage = false;
};

struct TreeMergeResult {
  // The merged root tree, written to the session; set when `conflicts` is
  // empty, and always with TreeMergeOptions::stage.
  std::optional<ObjectId> root;
  std::vector<MergeConflict> conflicts;  // sorted by path
  std::vector<ContentMerge> merged_files;  // sorted by path
  uint64_t paths_from_theirs = 0;  // entries (files or whole subtrees) taken from theirs
  // Regular files and their bytes in the merged tree (Commit::file_count,
  // total_bytes), when `root` is set and there are no conflicts.
  uint64_t file_count = 0, total_bytes = 0;
};

// Merges the trees of `ours` and `theirs` (commits) against `base` (a
// commit; nullopt: an empty tree, for unrelated histories). New objects go
// to `session`; nothing else changes.
Result<TreeMergeResult> MergeTrees(Repository& repo, WriteSession& session, const std::optional<ObjectId>& base,
                                   const ObjectId& ours, const ObjectId& theirs, const TreeMergeOptions& options);

// ---- Merging into a branch -------------------------------------------------

struct BranchMergeRequest {
  std::string dataset, branch;  // the target: dataset@branch
  ObjectId source;              // the commit merged into it
  std::string source_name;      // for the message and markers: "labels@fix"
  std::string message;          // empty: "merge SOURCE into DATASET@BRANCH"
  std::string author;
  bool no_ff = false;            // a merge commit even when a fast-forward would do
  bool allow_unrelated = false;  // merge histories with no common commit (against an empty base)
  // --stage: nothing lands. The merged tree, conflicts and all (`tree.stage`
  // is set), is written and made durable (BranchMergeResult::staged), for
  // the workspace to show (Workspace::StageMerge), which commits it later.
  // No commit object is written: one that never landed would show up in
  // the index after a rebuild. A fast-forward is staged as a merge.
  bool stage = false;
  TreeMergeOptions tree;
  // Called with the merge commit about to land (checks); an error aborts
  // the merge with that error. For a fast-forward it gets a copy of the
  // source commit, and what it records there is dropped: the branch moves
  // to the source commit as it is.
  PrepareCommit prepare_commit;
};

struct BranchMergeResult {
  enum class Outcome {
    kUpToDate,     // the source is already in the branch: nothing changed
    kFastForward,  // the branch moved to the source
    kMerged,       // a merge commit with two parents
    kConflicts,    // nothing changed; `tree.conflicts` lists why
    kStaged,       // request.stage: `staged` holds the merge (`tree.conflicts` what is left to resolve)
  };
  Outcome outcome = Outcome::kUpToDate;
  std::optional<ObjectId> ours;  // the branch head before (nullopt: no commits)
  std::optional<ObjectId> base;
  std::optional<ObjectId> commit;  // the branch head after a fast-forward or merge
  std::optional<ObjectId> staged;  // kStaged: the root of the staged tree (durable in the store)
  TreeMergeResult tree;
};

// Merges `source` into dataset@branch. InvalidArgument for a source of
// another dataset, or unrelated histories without allow_unrelated;
// Conflict when the branch moved during the merge (nothing lands). The
// caller refuses a target whose workspace has staged changes.
Result<BranchMergeResult> MergeIntoBranch(Repository& repo, const BranchMergeRequest& request);

// ---- A merge staged in a workspace (tusk merge --stage) -------------------

// What the workspace keeps of a staged merge (Workspace::StageMerge):
// `result` is kStaged.
WsMerge StagedMergeOf(const BranchMergeRequest& request, const BranchMergeResult& result);
// One line for a conflicting cell: "cell id=42 column label: base 'cat',
// ours 'dog', theirs 'bird'".
std::string DescribeTableConflict(const TableConflict& cell);
// Marks `paths` of the merge staged in `ws` resolved, all or none. Refused
// (InvalidArgument, naming the path and lines) while a text file still
// holds conflict markers, a table the in-cell notation, or theirs' version
// still sits beside the path (NAME~theirs: move it over the path or remove
// it first). A path now deleted is resolved as deleted.
Status ResolveStagedConflicts(Workspace& ws, const std::vector<std::string>& paths);
// Sets `marked_lines` of each unresolved text or table conflict of `merge`
// (staged in `ws`) from its file as it is now, for `tusk status`.
Status FindMarkedLines(Workspace& ws, WsMerge* merge);

}  // namespace tusk
