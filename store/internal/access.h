// Who may open a store, and how (issue 9, defects 6 and 14).
//
// A store is private to the user who created it: its directory is 0700
// whatever the umask, so nothing inside is reachable by anyone else (root
// aside). A *shared* store (`tusk init --shared`, config "shared 1") is
// shared with the group of its directory, read-only:
//   STORE, packs/ (and pack subdirectories), index/   2750 (setgid: new
//                                                        files take the group)
//   config, index/data.mdb                            0640
//   index/lock.mdb                                    0660 (group members
//                                                        register as LMDB readers)
//   packs/*                                           0444
//   leases/                                           2770 (a member's
//                                                        read-only mount keeps
//                                                        what it serves from gc)
//   workspaces/, run/                                 0700 (staged changes and
//                                                        control sockets stay
//                                                        the owner's)
// Only the owner (and root) write: group members run read-only commands.
// A process that opens a shared store for writing clears the group read and
// search bits from its umask, so what it creates stays readable by the group.
//
// Thread-safety: the functions are reentrant (SetUpSharedWriter changes the
// process umask).
#pragma once

#include <string>

#include "store/internal/lmdb.h"
#include "store/repository.h"

namespace tusk {

// Checks that this process may open the store in `dir` as `access` wants,
// and chooses how to open its index. Errors name the owner: a private store
// of someone else ("... is private to alice (uid 1000) ..."), or writing to
// a store of someone else or one that is not writable.
Status CheckStoreAccess(const std::string& dir, StoreAccess access, LmdbAccess* lmdb);

// Applies the modes above to a store just created (before its config).
Status SetUpStoreModes(const std::string& dir, bool shared);

// For a writer of a shared store: the umask rule above, and lock.mdb
// group-writable again if something made it otherwise.
void SetUpSharedWriter(const std::string& dir);

// "alice (uid 1000)", or "uid 1000" for a uid without a name.
std::string DescribeUser(uid_t uid);

}  // namespace tusk
