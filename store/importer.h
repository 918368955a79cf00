// Importing a directory tree as one commit of a branch.
//
// The new commit's tree is exactly the source directory: files added,
// changed and deleted since the branch head are all reflected. Files whose
// size, mtime, ctime, inode and device match what the previous import of
// the same path recorded, and whose recorded content is what the branch head
// holds, are not read again.
//
// What is stored: regular files (content, full mode, owner, mtime),
// directories, symlinks (as links, never followed) and special files (fifos,
// sockets, character and block devices: mode, owner, mtime and device
// number), each with its user xattrs (the `user.*` namespace; `user.tusk.*`
// names are tusk's own and dropped, and xattrs of other namespaces -- ACLs,
// security labels, capabilities -- are not recorded: one warning counts the
// entries that have some). Names of one inode within the import (same
// st_dev and st_ino: hard links) form a hard-link group; the inode is read
// once, and every name gets the first one's content and metadata. The root
// directory's own metadata and xattrs are not recorded. Names that are not
// valid UTF-8, unreadable files and files that change while being read are
// errors. On any error nothing is committed and the branch is unchanged.
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
  std::function<void(const std::string&)> warn;     // optional: what is not recorded
  unsigned threads = 0;                             // 0: one per core
  // When set, the branch must be at this commit (nullopt inside: have none)
  // when the import starts and when it lands (compare-and-set), else
  // Conflict and nothing is committed.
  std::optional<std::optional<ObjectId>> expected_head;
  // Commit even when the tree is the head's (a run's output records the run).
  bool commit_unchanged = false;
  std::optional<ObjectId> run;  // the run whose output this is (Commit::run)
  // Write into this session instead of a new one, so that what the caller
  // wrote there (a run's record) lands in the same pack and transaction as
  // the commit. The session is flushed (or committed) on success only.
  WriteSession* session = nullptr;
  // Runs before the commit lands (checks); an error aborts the import.
  PrepareCommit prepare_commit;
};

struct ImportResult {
  std::optional<ObjectId> commit;  // empty when nothing changed
  std::optional<ObjectId> parent;  // the branch head before the import
  uint64_t files = 0;
  uint64_t total_bytes = 0;
  uint64_t files_read = 0;
  uint64_t bytes_read = 0;
  uint64_t files_unchanged = 0;  // recognised by metadata, not read
  uint64_t specials = 0;     // fifos, sockets and devices
  uint64_t link_groups = 0;  // inodes with two or more names in the tree
  uint64_t new_objects = 0;
  uint64_t new_stored_bytes = 0;
};

Result<ImportResult> ImportDirectory(Repository& repo, const std::string& source, const std::string& dataset,
                                     const std::string& branch, const ImportOptions& options);

}  // namespace tusk
