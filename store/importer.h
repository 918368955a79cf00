// Importing a directory tree as one commit of a branch.
//
// The new commit's tree is exactly the source directory: files added,
// changed and deleted since the branch head are all reflected. Files whose
// size, mtime, ctime, inode and device match what the previous import of
// the same path recorded, and whose recorded content is what the branch head
// holds, are not read again.
//
// What is stored: regular files (content, full mode, owner, mtime), directories
// and symlinks (as links, never followed). Sockets, devices and fifos are
// skipped with a warning. Hard links are stored as separate files whose
// content is deduplicated. Names that are not valid UTF-8, unreadable files
// and files that change while being read are errors. On any error nothing is
// committed and the branch is unchanged.
//
// Thread-safety: one import per call; it runs its own worker threads.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/repository.h"

namespace tusk {

struct ImportOptions {
  std::string message;
  std::string author;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<Provenance> provenance;
  Progress* progress = nullptr;                     // optional
  std::function<void(const std::string&)> warn;     // optional: skipped files
  unsigned threads = 0;                             // 0: one per core
};

struct ImportResult {
  std::optional<ObjectId> commit;  // empty when nothing changed
  std::optional<ObjectId> parent;  // the branch head before the import
  uint64_t files = 0;
  uint64_t total_bytes = 0;
  uint64_t files_read = 0;
  uint64_t bytes_read = 0;
  uint64_t files_unchanged = 0;  // recognised by metadata, not read
  uint64_t skipped_special = 0;
  uint64_t new_objects = 0;
  uint64_t new_stored_bytes = 0;
};

Result<ImportResult> ImportDirectory(Repository& repo, const std::string& source, const std::string& dataset,
                                     const std::string& branch, const ImportOptions& options);

}  // namespace tusk
