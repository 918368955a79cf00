// Reading file content out of a commit: whole-tree export and single files.
//
// Export restores regular files (content, sparse holes as holes),
// directories, symlinks, special files (fifos and sockets with mknod(2);
// character and block devices too, which needs root: otherwise the export
// stops with EPERM naming the device), hard-link groups (every further name
// of a group is link(2)ed to the first one exported), user xattrs, permission
// bits and mtimes, and ownership when running as root. Xattrs are best
// effort: when the destination refuses one (a filesystem without user
// xattrs, a symlink or device, which Linux gives no user xattrs), the export
// goes on and `warn` says which. A group member whose link(2) fails (or that
// differs from its group's first name, which a valid tree never has) is
// written as a copy, with a warning. The destination must be absent or an
// empty directory.
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
  uint64_t files = 0, dirs = 0, symlinks = 0, specials = 0, bytes = 0;
  uint64_t hard_links = 0;              // names made with link(2) (counted in files/symlinks/specials too)
  uint64_t xattrs_not_restored = 0;     // entries with at least one xattr the destination refused
};

// `warn` (optional) receives one line per problem that does not stop the
// export (xattrs refused, hard links written as copies).
Result<ExportStats> ExportTree(Repository& repo, const ObjectId& root_tree, const std::string& dest, Progress* progress,
                               const std::function<void(const std::string&)>& warn = nullptr);

}  // namespace tusk
