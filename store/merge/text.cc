#include "store/merge/text.h"

#include <git2.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace tusk {
namespace {

// libgit2 keeps global state (allocators, thread-local errors) that
// git_libgit2_init sets up. It is never shut down: a static destructor could
// run while another thread is still merging at exit.
int InitLibgit2() {
  static const int count = git_libgit2_init();
  return count;
}

// The error libgit2 recorded for the failed call `what`.
Status GitError(const char* what) {
  const git_error* e = git_error_last();
  std::string message = std::string("libgit2 ") + what + ": " + (e && e->message ? e->message : "unknown error");
  if (e && e->klass == GIT_ERROR_NOMEMORY) return Status::FromErrno(ENOMEM, message);
  return Status::InvalidArgument(message);
}

Status CheckLibgit2() {
  if (InitLibgit2() < 0) return GitError("init");
  return Status::Ok();
}

Status CheckText(std::string_view content, const char* which) {
  if (!FitsLineMerge(content.size()))
    return Status::InvalidArgument(std::string(which) + " is too large for a line merge or diff (" +
                                   std::to_string(content.size()) + " bytes; the limit is " +
                                   std::to_string(kMaxLineMergeBytes) + ")");
  if (!LooksLikeText(content))
    return Status::InvalidArgument(std::string(which) + " is binary (a NUL byte in its first " +
                                   std::to_string(kTextProbeBytes) + " bytes)");
  return Status::Ok();
}

struct PatchFree {
  void operator()(git_patch* p) const { git_patch_free(p); }
};
using PatchPtr = std::unique_ptr<git_patch, PatchFree>;

class GitBuf {
 public:
  GitBuf() = default;
  GitBuf(const GitBuf&) = delete;
  GitBuf& operator=(const GitBuf&) = delete;
  ~GitBuf() { git_buf_dispose(&buf_); }
  git_buf* get() { return &buf_; }
  std::string_view view() const { return buf_.ptr ? std::string_view(buf_.ptr, buf_.size) : std::string_view(); }

 private:
  git_buf buf_ = GIT_BUF_INIT;
};

class MergeFileResult {
 public:
  MergeFileResult() { std::memset(&result_, 0, sizeof result_); }
  MergeFileResult(const MergeFileResult&) = delete;
  MergeFileResult& operator=(const MergeFileResult&) = delete;
  ~MergeFileResult() { git_merge_file_result_free(&result_); }
  git_merge_file_result* get() { return &result_; }

 private:
  git_merge_file_result result_;
};

// A patch of two texts, both already checked. An absent side is a null
// buffer, which makes libgit2 treat the file as added or deleted.
Result<PatchPtr> MakePatch(std::string_view old_text, bool old_absent, std::string_view new_text, bool new_absent,
                           unsigned context) {
  TUSK_RETURN_IF_ERROR(CheckLibgit2());
  git_diff_options options;
  if (git_diff_options_init(&options, GIT_DIFF_OPTIONS_VERSION) != 0) return GitError("diff options");
  // FORCE_TEXT: the texts passed CheckText, which is git's own binary test,
  // so libgit2 must not second-guess it. The indent heuristic is git's
  // default since 2.14; without it hunks may differ from `git diff`'s.
  options.flags = GIT_DIFF_FORCE_TEXT | GIT_DIFF_INDENT_HEURISTIC;
  options.context_lines = context;
  // Fixed names: UnifiedDiff replaces libgit2's header with its own, so a
  // path can never be mistaken for part of it.
  git_patch* patch = nullptr;
  if (git_patch_from_buffers(&patch, old_absent ? nullptr : old_text.data(), old_absent ? 0 : old_text.size(), "x",
                             new_absent ? nullptr : new_text.data(), new_absent ? 0 : new_text.size(), "x",
                             &options) != 0)
    return GitError("patch from buffers");
  return PatchPtr(patch);
}

// The count of conflicting hunks: opening marker lines that the merge wrote,
// that is, "<<<<<<< " plus our label (with a CR before the newline in a CRLF
// file). A line of the same bytes already in an input would count too.
uint64_t CountConflicts(std::string_view merged, const std::string& ours_label) {
  const std::string opening = "<<<<<<< " + ours_label;
  uint64_t count = 0;
  size_t at = 0;
  while (at < merged.size()) {
    size_t end = merged.find('\n', at);
    if (end == std::string_view::npos) end = merged.size();
    std::string_view line = merged.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == opening) count++;
    at = end + 1;
  }
  return count;
}

bool IsMarkerLine(std::string_view line) {
  static constexpr char kMarkers[] = {'<', '|', '=', '>'};
  static constexpr size_t kSize = GIT_MERGE_CONFLICT_MARKER_SIZE;
  if (line.size() < kSize) return false;
  for (char c : kMarkers) {
    if (line.find_first_not_of(c) < kSize) continue;
    // Exactly seven: "<<<<<<<<" is text. "=======" has no label after it.
    if (line.size() == kSize || line[kSize] == '\r') return true;
    if (c != '=' && line[kSize] == ' ') return true;
  }
  return false;
}

}  // namespace

std::vector<uint64_t> ConflictMarkerLines(std::string_view text) {
  std::vector<uint64_t> out;
  uint64_t line = 1;
  for (size_t at = 0; at < text.size(); line++) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(at, end - at);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    bool marker = l == "=======";
    for (std::string_view m : {"<<<<<<< ", "||||||| ", ">>>>>>> "})
      if (l.substr(0, m.size()) == m || l == m.substr(0, 7)) marker = true;
    if (marker) out.push_back(line);
    at = end + 1;
  }
  return out;
}

bool LooksLikeText(std::string_view content) {
  if (!FitsLineMerge(content.size())) return false;
  if (content.empty()) return true;  // an empty view may have no data pointer, which memchr must not get
  return std::memchr(content.data(), '\0', std::min(content.size(), kTextProbeBytes)) == nullptr;
}

Result<LineMergeResult> MergeLines(std::string_view base, std::string_view ours, std::string_view theirs,
                                   const LineMergeLabels& labels) {
  TUSK_RETURN_IF_ERROR(CheckText(base, "the base"));
  TUSK_RETURN_IF_ERROR(CheckText(ours, "ours"));
  TUSK_RETURN_IF_ERROR(CheckText(theirs, "theirs"));
  TUSK_RETURN_IF_ERROR(CheckLibgit2());
  git_merge_file_input inputs[3];
  for (auto* input : {&inputs[0], &inputs[1], &inputs[2]})
    if (git_merge_file_input_init(input, GIT_MERGE_FILE_INPUT_VERSION) != 0) return GitError("merge input");
  const std::string_view texts[3] = {base, ours, theirs};
  for (int i = 0; i < 3; i++) {
    inputs[i].ptr = texts[i].data();
    inputs[i].size = texts[i].size();
  }
  git_merge_file_options options;
  if (git_merge_file_options_init(&options, GIT_MERGE_FILE_OPTIONS_VERSION) != 0) return GitError("merge options");
  options.flags = GIT_MERGE_FILE_STYLE_DIFF3;
  options.favor = labels.favor == LineMergeLabels::Favor::kOurs     ? GIT_MERGE_FILE_FAVOR_OURS
                  : labels.favor == LineMergeLabels::Favor::kTheirs ? GIT_MERGE_FILE_FAVOR_THEIRS
                                                                    : GIT_MERGE_FILE_FAVOR_NORMAL;
  options.ancestor_label = labels.base.c_str();
  options.our_label = labels.ours.c_str();
  options.their_label = labels.theirs.c_str();
  MergeFileResult result;
  if (git_merge_file(result.get(), &inputs[0], &inputs[1], &inputs[2], &options) != 0) return GitError("merge file");
  LineMergeResult out;
  out.clean = result.get()->automergeable != 0;
  if (result.get()->ptr) out.merged.assign(result.get()->ptr, result.get()->len);
  if (!out.clean) out.conflicts = std::max<uint64_t>(1, CountConflicts(out.merged, labels.ours));
  return out;
}

Result<LineCounts> CountLineChanges(std::string_view old_text, std::string_view new_text) {
  TUSK_RETURN_IF_ERROR(CheckText(old_text, "the old text"));
  TUSK_RETURN_IF_ERROR(CheckText(new_text, "the new text"));
  // No context: the counts do not depend on it.
  TUSK_ASSIGN_OR_RETURN(PatchPtr patch, MakePatch(old_text, false, new_text, false, 0));
  size_t context = 0, additions = 0, deletions = 0;
  if (git_patch_line_stats(&context, &additions, &deletions, patch.get()) != 0) return GitError("patch line stats");
  return LineCounts{additions, deletions};
}

Result<std::string> UnifiedDiff(std::string_view old_text, std::string_view new_text,
                                const UnifiedDiffOptions& options) {
  TUSK_RETURN_IF_ERROR(CheckText(old_text, "the old text"));
  TUSK_RETURN_IF_ERROR(CheckText(new_text, "the new text"));
  if ((options.old_absent && !old_text.empty()) || (options.new_absent && !new_text.empty()))
    return Status::InvalidArgument("unified diff: an absent side has text");
  TUSK_ASSIGN_OR_RETURN(PatchPtr patch,
                        MakePatch(old_text, options.old_absent, new_text, options.new_absent, options.context));
  if (git_patch_num_hunks(patch.get()) == 0) return std::string();
  GitBuf buf;
  if (git_patch_to_buf(buf.get(), patch.get()) != 0) return GitError("patch to text");
  // libgit2's header (diff --git, index, mode lines, ---, +++) ends where
  // the first hunk starts; its paths are "x", so "\n@@ " is the first hunk.
  std::string_view text = buf.view();
  size_t hunks = text.find("\n@@ ");
  if (hunks == std::string_view::npos) return Status::InvalidArgument("libgit2 patch to text: no hunk header");
  std::string out = "--- " + (options.old_absent ? std::string("/dev/null") : "a/" + options.old_path) + "\n";
  out += "+++ " + (options.new_absent ? std::string("/dev/null") : "b/" + options.new_path) + "\n";
  out.append(text.substr(hunks + 1));
  return out;
}

bool HasLineConflictMarkers(std::string_view text) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    if (IsMarkerLine(text.substr(at, end - at))) return true;
    at = end + 1;
  }
  return false;
}

}  // namespace tusk
