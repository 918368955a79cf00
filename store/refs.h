// Names and ref syntax.
//
// A ref names a commit of a dataset: "DATASET@REV[~N]" where REV is a branch,
// a tag or a hex commit-id prefix (at least 4 digits), and ~N walks N
// first-parent steps back ("~" alone means ~1; "~2~1" adds up). REV may
// also be REMOTE/BRANCH, a remote-tracking ref (see RefSpec::remote).
//
// Dataset, branch and tag names are 1-255 bytes of valid UTF-8 with no '/',
// '@', '~', ':', no control characters, no leading '-', and are not "." or
// "..". These rules keep every name usable as a directory name in the mount
// and unambiguous in ref syntax.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "store/status.h"

namespace tusk {

inline constexpr char kDefaultBranch[] = "main";

bool IsValidUtf8(std::string_view s);
// `what` is "dataset", "branch" or "tag", used in the message.
Status ValidateName(std::string_view what, std::string_view name);
// Renders arbitrary bytes for a message: invalid UTF-8 and control bytes as \xNN.
std::string EscapeForDisplay(std::string_view bytes);

struct RefSpec {
  std::string dataset;
  std::string rev;      // empty: the default branch
  // "DATASET@REMOTE/BRANCH": a remote-tracking ref, where BRANCH of the
  // remote REMOTE was when this store last fetched from or pushed to it.
  // `remote` is then REMOTE and `rev` BRANCH.
  std::string remote;
  unsigned ancestors = 0;
  std::string text;     // as the user wrote it, for messages
};

// Parses "DATASET@REV~N". With allow_bare_dataset, "DATASET" alone means the
// default branch.
Result<RefSpec> ParseRef(std::string_view text, bool allow_bare_dataset);

// Parses "DATASET@NAME" where NAME is a new branch or tag name (no ~).
Result<RefSpec> ParseNewRefName(std::string_view text, std::string_view what);

}  // namespace tusk
