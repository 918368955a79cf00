// Differences between two trees, as a user reads them: files added,
// deleted, modified (content or metadata: mode, owner, mtime, xattrs,
// hard-link group, a device's number), renamed (the same non-empty content
// moved to another path) and changed in type (file, directory, symlink,
// fifo, socket, character or block device).
//
// Unchanged subtrees (same tree id) are skipped without being read, so the
// cost is proportional to what changed.
//
// Thread-safety: reentrant.
#pragma once

#include <string>
#include <vector>

#include "store/objects.h"

namespace tusk {

struct Change {
  enum class Kind { kAdded, kDeleted, kModified, kRenamed, kTypeChanged };
  Kind kind;
  std::string path;      // the new path (the old one for kDeleted)
  std::string old_path;  // kRenamed only
  uint64_t old_size = 0;
  uint64_t new_size = 0;
  bool content_changed = false;  // kModified: content (else metadata only)
};

char ChangeLetter(Change::Kind kind);  // A D M R T

// Sorted by path.
Result<std::vector<Change>> DiffTrees(ObjectSource& source, const ObjectId& old_root, const ObjectId& new_root);

}  // namespace tusk
