// Text files line by line: the three-way line merge, unified diffs and
// line counts, on libgit2's xdiff (the algorithm `git merge-file` and
// `git diff` use), so tusk's text results are git's.
//
// A file is *text* when it is at most kMaxLineMergeBytes long and has no
// NUL byte in its first 8000 bytes (git's rule); anything else is binary
// for these functions: a merge of it is a file-level conflict and a diff
// names it as binary.
//
// Line endings are bytes like any other: a CRLF line is a line ending in
// "\r" (as git without autocrlf sees it), and the conflict markers a merge
// writes into a CRLF file end in CRLF too (git's rule). A text without a
// final newline diffs with git's "\ No newline at end of file" lines.
//
// Errors: InvalidArgument when an input is not text (the message says
// binary or too large) or libgit2 refuses one; out of memory in libgit2 is
// kIoError with ENOMEM. Messages carry libgit2's own (git_error_last).
//
// Thread-safety: reentrant (libgit2 is initialised once, on first use, and
// never shut down).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace tusk {

// Larger files are not merged or diffed by line (documented in
// tusk-merge(1) and tusk-diff(1)): libgit2 holds all three versions and
// their line tables in memory.
inline constexpr uint64_t kMaxLineMergeBytes = uint64_t{64} << 20;

// Whether a file of `bytes` bytes is small enough to be text; callers that
// read a file only to merge or diff it check this before reading it.
inline bool FitsLineMerge(uint64_t bytes) { return bytes <= kMaxLineMergeBytes; }

// FitsLineMerge(content.size()) and no NUL byte in its first
// kTextProbeBytes (git's buffer_is_binary).
inline constexpr size_t kTextProbeBytes = 8000;
bool LooksLikeText(std::string_view content);

struct LineMergeLabels {
  std::string ours = "ours";      // e.g. "data@main"
  std::string base = "base";      // e.g. "merge base 1a2b3c4d"
  std::string theirs = "theirs";  // e.g. "data@fix"
  // Resolve each conflicting hunk for one side instead of marking it
  // (tusk merge --ours / --theirs): the merge is then always clean.
  enum class Favor { kNone, kOurs, kTheirs };
  Favor favor = Favor::kNone;
};

struct LineMergeResult {
  bool clean = false;
  // Clean: the merged text. Otherwise the text with diff3-style conflict
  // markers (<<<<<<< ours / ||||||| base / ======= / >>>>>>> theirs)
  // around each conflicting hunk.
  std::string merged;
  // Conflicting hunks (opening marker lines written; at least 1 when not
  // clean, 0 when clean).
  uint64_t conflicts = 0;
};

// The three-way merge of `git merge-file --diff3 -L OURS -L BASE -L
// THEIRS`: changes on one side only, or the same change on both, merge
// cleanly. The labels follow the markers after one space, as given.
// InvalidArgument if a side is not text (above).
Result<LineMergeResult> MergeLines(std::string_view base, std::string_view ours, std::string_view theirs,
                                   const LineMergeLabels& labels);

// The 1-based lines that look like a conflict marker MergeLines writes: a
// line starting "<<<<<<< ", "||||||| " or ">>>>>>> ", or one that is
// "=======" (CR LF or LF endings). `tusk resolve` refuses while any is left.
std::vector<uint64_t> ConflictMarkerLines(std::string_view text);

struct LineCounts {
  uint64_t added = 0, removed = 0;
};
// Lines added and removed from old to new (InvalidArgument if not text).
Result<LineCounts> CountLineChanges(std::string_view old_text, std::string_view new_text);

// The hunks `git diff` prints (Myers with the indent heuristic, function
// names after `@@` by git's default rule), headed `--- a/OLD_PATH` and
// `+++ b/NEW_PATH`, or `/dev/null` for an absent side (an added or deleted
// file, whose text must then be empty). Paths are written as given:
// callers make them printable. Empty when the texts are equal (so also for
// an added empty file). InvalidArgument if a side is not text.
struct UnifiedDiffOptions {
  std::string old_path, new_path;
  bool old_absent = false, new_absent = false;
  unsigned context = 3;  // lines of context around each change
};
Result<std::string> UnifiedDiff(std::string_view old_text, std::string_view new_text,
                                const UnifiedDiffOptions& options);

// Whether the text holds a line that starts with a conflict marker the line
// merge writes: exactly seven of `<`, `|` or `>` followed by a space or the
// line's end, or a line of exactly `=======` (either may end in CR).
bool HasLineConflictMarkers(std::string_view text);

}  // namespace tusk
