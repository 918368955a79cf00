// Merging the content of one regular file changed differently on both
// sides: as a table by key and cell when its name says CSV, TSV or JSONL
// and every version parses as one, else as text by line, else a conflict.
// Private to store/merge.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/merge/merge.h"

namespace tusk {

struct ContentMergeInput {
  std::string path;
  const TreeEntry* base = nullptr;  // null: added on both sides (an empty base)
  const TreeEntry* ours = nullptr;
  const TreeEntry* theirs = nullptr;
};

struct ContentMergeOutput {
  // The merged content, stored in the session (with a conflict and no
  // favoured side: ours' content).
  std::vector<ChunkRef> chunks;
  uint64_t size = 0;
  std::string method;  // how it was merged ("lines", "table, key id"); empty: not merged
  std::string note;    // why a table was merged by line instead
  std::optional<MergeConflict> conflict;  // path left empty for the caller
  // With a text or table conflict: the content with conflict markers or
  // notation (what `tusk merge --stage` writes into the workspace).
  std::string marked;
};

Result<ContentMergeOutput> MergeFileContent(Repository& repo, WriteSession& session, const ContentMergeInput& in,
                                            const TreeMergeOptions& options);

// Stores `content` as chunks cut by the store's chunker.
Result<std::vector<ChunkRef>> StoreContent(Repository& repo, WriteSession& session, std::string_view content);

}  // namespace tusk
