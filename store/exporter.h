// Reading file content out of a commit: whole-tree export and single files.
//
// Export restores regular files (content, sparse holes as holes), directories,
// symlinks, permission bits and mtimes, and ownership when running as root.
// The destination must be absent or an empty directory.
//
// Thread-safety: reentrant; one call per destination.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "store/objects.h"
#include "store/repository.h"

namespace tusk {

// Streams a file's content in order; holes are passed as runs of zeros.
Status ReadFileContent(ObjectSource& source, const TreeEntry& file, const std::function<Status(std::string_view)>& sink);

struct ExportStats {
  uint64_t files = 0, dirs = 0, symlinks = 0, bytes = 0;
};

Result<ExportStats> ExportTree(Repository& repo, const ObjectId& root_tree, const std::string& dest, Progress* progress);

}  // namespace tusk
