// Workspace: a writable, copy-on-write view of one branch of a dataset.
//
// A workspace is the branch's head commit (its *base*) plus an *upper*
// directory of staged changes, kept in the store so they survive a crash or
// restart of whatever wrote them (the mount):
//
//   STORE/workspaces/<dataset>/<branch>/
//     base        hex id of the base commit ("none" for a branch with no
//                 commits), replaced atomically (write + rename)
//     next        present only while a commit is being made: the id of the
//                 commit about to become the branch head (crash recovery)
//     upper/      the staged tree, as real files, directories, symlinks,
//                 special files and hard links, with their user xattrs
//     meta/<id>   one sidecar per partially copied-up file (below)
//     lock        flock(2): exclusive while one process owns the workspace
//
// The merged view (what programs see) is, per directory, the base tree's
// entries overlaid with the upper directory's, like overlayfs:
// - a name in upper replaces the same name in base;
// - a character device 0:0 in upper is a *whiteout*: the name is deleted;
// - an upper directory with xattr `user.tusk.opaque` = "1" hides every base
//   entry below it (a base directory removed and made again);
// - a directory that exists only in base is read from the store.
//
// Copy-on-write at chunk granularity: writing to a committed file does not
// copy it. The upper file is created sparse with the file's size and
// metadata, and xattr `user.tusk.meta` names a sidecar `meta/<id>` holding
// the file's base chunk list and one byte per base chunk: 0 = still in the
// store, 1 = copied into the upper file (or overwritten, or cut off by a
// truncate). Before bytes of a chunk are changed, that chunk's plaintext is
// written into the upper file and its byte set; reads take each chunk from
// wherever its byte says. A commit reuses the ids of chunks still in the
// store and chunks only the copied-up spans, so changing 1 MiB of a 4 GiB
// file stores about 1 MiB (plus the chunks it touches).
//
// Writes reach the kernel (pwrite) before a call returns, so a killed
// process loses nothing it was told succeeded; WsFile::Fsync and SyncDir
// make them, and the names, durable against a power loss, as fsync(2) does
// on a local file system (FORMAT.md, "Workspace durability").
//
// Ownership, permissions and times are the upper files' own: callers pass
// the uid/gid of the process on whose behalf they act, and the workspace
// applies POSIX rules (setgid directories pass on their group). Permission
// *checks* are the caller's job (the mount uses the kernel's
// default_permissions). A process that is not root cannot give files other
// owners: its upper files and directories stay its own and xattr
// `user.tusk.owner` ("UID:GID") records the owner the workspace shows and
// commits; symlinks and special files cannot carry it, so one made for
// another user is refused (EPERM) and a committed one that is copied up
// (say, to rename its directory) becomes the process's own.
//
// Commit turns the merged view into a commit of the branch: compare-and-set
// against the base, so a commit made to the branch from outside (tusk
// import) since the base is refused, never mixed in. After it the base is
// the new commit and the upper directory is emptied, except files open
// through a WsFile at that moment: they stay in upper with all their names
// (their content equals the committed one), so open handles keep working.
//
// What a commit records (FORMAT.md, "Tree pages"): besides content, full
// mode, owner and mtime, the `user.*` xattrs of every entry (not the
// workspace's own `user.tusk.*` marks), fifos, sockets and character and
// block devices (special entries, with their device number), and hard links:
// the names of one upper inode become one hard-link group. A group keeps its
// number while its names are those of one group of the base; new groups get
// numbers above the base's largest (finding it walks the whole base tree,
// done only when a commit or copy-up involves hard links). Base-only entries
// show their committed xattrs, type and device number; a base-only name of a
// hard-link group reports the group (WsAttr::base_link_group) and, as nlink,
// how many of the group's names still show the base entry (finding them walks
// the base tree once per base, only when it has hard links). Copying up a
// committed name of a hard-link group copies up every name of the group the
// merged view still shows from the base, as hard links of one upper file, so
// a write through one name is seen through all; files open by the other
// names then keep reading the committed content. Not representable: a
// character device 0:0 (in upper it is a whiteout): Mknod refuses to make
// one (EPERM), and one in the base (imported) shows and can be deleted but
// not copied up (EPERM). xattrs of the workspace root are not committed.
//
// Thread-safety: all methods are thread-safe. Metadata operations and
// Commit/Reset are serialized by one mutex; reads and writes of open files
// run in parallel and are excluded only while a commit takes its snapshot.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/importer.h"
#include "store/repository.h"

namespace tusk {

struct WsTime {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const WsTime&) const = default;
};

struct WsAttr {
  uint32_t mode = 0;  // full st_mode
  uint32_t nlink = 1;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint64_t rdev = 0;
  WsTime atime, mtime, ctime;
  // Identity for hard links: (upper st_dev, st_ino) of an upper entry, 0 for
  // an entry that exists only in base.
  uint64_t upper_dev = 0;
  uint64_t upper_ino = 0;
  // Identity for committed hard links: the group number of a name that shows
  // a base entry of a hard-link group (its nlink counts the group's names
  // that still show it).
  std::optional<uint64_t> base_link_group;
};

struct WsDirEntry {
  std::string name;
  uint32_t mode = 0;  // S_IFMT bits matter
};

// What SetAttr changes; unset fields stay as they are.
struct WsSetAttr {
  std::optional<uint32_t> mode;  // permission bits (and setuid/setgid/sticky)
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<WsTime> atime;  // a time of {-1, 0} means "now"
  std::optional<WsTime> mtime;
};

// Who an operation acts for.
struct WsCaller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t umask = 022;
};

enum class WsChangeKind : char { kAdded = 'A', kModified = 'M', kDeleted = 'D' };
struct WsChange {
  WsChangeKind kind;
  std::string path;  // relative to the workspace root, '/'-separated
};

// An open regular file. Holds what it needs to keep working after its name
// is unlinked or renamed, and across a commit.
class WsFile {
 public:
  virtual ~WsFile() = default;
  // Reads up to `len` bytes at `offset`; fewer at end of file.
  virtual Result<std::string> Read(uint64_t offset, size_t len) = 0;
  // Writes at `offset` (the caller resolves O_APPEND to the current size).
  // Copies up first when the file is still the committed one. As on a local
  // file system, a write the disk could take only part of returns the count
  // written (the size grows by no more than that); one that wrote nothing
  // fails (ENOSPC) and leaves the file as it was.
  virtual Result<size_t> Write(uint64_t offset, std::string_view data) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // fallocate(2) of [offset, offset + length): mode 0 or FALLOC_FL_KEEP_SIZE
  // reserve the space; FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE and
  // FALLOC_FL_ZERO_RANGE (with or without KEEP_SIZE) make the range read as
  // zeros. Without KEEP_SIZE the size grows to offset + length if smaller.
  // Copies up as a write of the range would (the chunks the range cuts are
  // copied, those it covers marked). EOPNOTSUPP for other modes and for a
  // mode the store's file system lacks; ENOSPC; EINVAL for length 0.
  virtual Status Allocate(int mode, uint64_t offset, uint64_t length) = 0;
  virtual Status Fsync(bool data_only) = 0;
  virtual Result<WsAttr> Stat() = 0;
  // What a write by a caller without CAP_FSETID does on a local file system:
  // clears setuid, and setgid if the group may execute (copying the file up
  // when it has either). Costs one fstat when it has neither.
  virtual Status DropSetIdForWrite() = 0;
};

// A merge staged into the workspace (`tusk merge --stage`, store/merge/merge.h):
// the workspace shows the merged tree, conflicts written as a person
// resolves them, and its next commit is the merge commit, with `theirs` as
// second parent. Kept in STORE/workspaces/D/B/merge (FORMAT.md).
struct WsMergeConflict {
  std::string kind;         // "text", "table", "binary", "modify/delete", ... (tusk-merge(1))
  std::string path;
  std::string theirs_path;  // where theirs' entry was staged beside it; empty: nowhere
  std::string detail;
  std::vector<std::string> cells;  // tables: one line per conflicting cell, as the merge reported it
  bool resolved = false;
  // Status replies only (not kept): lines of the file that still hold
  // conflict markers or notation.
  std::vector<uint64_t> marked_lines;
};
struct WsMerge {
  ObjectId ours;        // the workspace's base when the merge was staged
  ObjectId theirs;      // the commit merged in: the merge commit's second parent
  ObjectId staged;      // the root of the staged tree (BranchMergeResult::staged)
  std::string source;   // as the user named it: "labels@fix"
  std::string message;  // the merge commit's message unless `tusk commit -m` gives one
  std::vector<WsMergeConflict> conflicts;  // sorted by path
  size_t Unresolved() const;
};
std::string EncodeWsMerge(const WsMerge& merge);
// Untrusted bytes: every length is checked; Corruption naming `what`.
Result<WsMerge> DecodeWsMerge(std::string_view bytes, const std::string& what);

struct WsCommitOptions {
  std::string message;
  std::string author;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<Provenance> provenance;
  // --skip-checks REASON: land without running the dataset's checks; the
  // commit records who skipped them and why.
  std::string skip_checks_reason;
  // Runs before the commit lands (checks), while the workspace is frozen:
  // an error aborts the commit and the staged changes stay. Not sent over
  // the control socket: the process that commits sets it.
  PrepareCommit prepare_commit;
};

struct WsCommitResult {
  std::optional<ObjectId> commit;  // empty: nothing staged, nothing created
  std::optional<ObjectId> parent;
  uint64_t files_changed = 0;
  uint64_t new_objects = 0;
  uint64_t new_stored_bytes = 0;
};

class Workspace {
 public:
  // Opens (creating on first use) the workspace of an existing branch and
  // takes its lock; AlreadyExists if another process holds it. Finishes a
  // commit a crash interrupted. If the branch moved since the base and
  // nothing is staged, the base silently follows the branch.
  static Result<std::unique_ptr<Workspace>> Open(Repository* repo, const std::string& dataset,
                                                 const std::string& branch);
  // Whether a process holds the workspace (a mount serving it).
  static Result<bool> IsHeld(Repository* repo, const std::string& dataset, const std::string& branch);
  ~Workspace();

  const std::string& dataset() const;
  const std::string& branch() const;
  std::optional<ObjectId> base() const;
  // Changes whenever the merged view changes other than through this
  // object's own operations (a new base: commit or following the branch;
  // Reset), so a cache of it (the kernel's, via the mount) knows to start over.
  uint64_t generation() const;
  // Whether the branch has moved away from the base (a commit from outside)
  // while changes are staged; Commit refuses then.
  Result<bool> Diverged();

  // The merged view. Paths are relative to the workspace root, without a
  // leading '/'; "" is the root. Errors carry errno values (ENOENT, ENOTDIR,
  // EISDIR, EEXIST, ENOTEMPTY, EINVAL, ENOSPC, ...) via Status::FromErrno.
  Result<WsAttr> Stat(std::string_view path);
  Result<std::vector<WsDirEntry>> List(std::string_view path);
  Result<std::string> ReadLink(std::string_view path);
  // `flags` are open(2) flags: O_ACCMODE, O_TRUNC; O_CREAT/O_EXCL go to
  // Create. Opening for writing copies nothing yet.
  Result<std::unique_ptr<WsFile>> Open(std::string_view path, int flags);
  Result<std::unique_ptr<WsFile>> Create(std::string_view path, uint32_t mode, bool exclusive, const WsCaller& who);
  Status Mkdir(std::string_view path, uint32_t mode, const WsCaller& who);
  Status Mknod(std::string_view path, uint32_t mode, uint64_t rdev, const WsCaller& who);
  Status Symlink(std::string_view target, std::string_view path, const WsCaller& who);
  Status Link(std::string_view existing, std::string_view new_path);
  Status Unlink(std::string_view path);
  Status Rmdir(std::string_view path);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (EINVAL if unsupported).
  Status Rename(std::string_view from, std::string_view to, unsigned flags);
  Status SetAttr(std::string_view path, const WsSetAttr& change);
  Result<std::string> GetXattr(std::string_view path, std::string_view name);
  Status SetXattr(std::string_view path, std::string_view name, std::string_view value, int flags);
  Result<std::vector<std::string>> ListXattr(std::string_view path);
  Status RemoveXattr(std::string_view path, std::string_view name);
  // fsync(2) of a directory, as a local file system does it: the entries
  // staged in it (created, renamed, removed) and the names of the
  // directories above it survive a power loss. A directory nothing is
  // staged in has nothing to sync. WsFile::Fsync makes the file's own name
  // durable the same way.
  Status SyncDir(std::string_view path);

  // Staged changes against the base, sorted by path. A file is Modified
  // when its content or metadata differ (copied-up chunks are compared by
  // id, so writing the same bytes back is not a change).
  Result<std::vector<WsChange>> Changes();
  Result<WsCommitResult> Commit(const WsCommitOptions& options);
  // Drops every staged change (and a staged merge); open files keep their
  // data but are detached.
  Status Reset();

  // Stages a merge: the merged view becomes the tree `merge.staged`
  // (files as metacopies of its chunks: nothing is copied), and the next
  // Commit makes the merge commit. Refused (InvalidArgument) while changes
  // or another merge are staged or when the base is not `merge.ours`; on
  // failure nothing stays staged. A crash while staging leaves nothing
  // staged either (the next Open clears it).
  Status StageMerge(const WsMerge& merge);
  // The merge staged, if any.
  std::optional<WsMerge> StagedMerge() const;
  // Marks conflicting paths of the staged merge resolved, all or none
  // (NotFound: a path is not one of its conflicts). Whether the content is
  // resolved is the caller's to judge (ResolveStagedConflicts,
  // store/merge/merge.h). Commit refuses while any conflict is unresolved.
  Status MarkResolved(const std::vector<std::string>& paths);

 private:
  struct Impl;
  explicit Workspace(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The commits every workspace of the store is based on (and any commit one
// was in the middle of making): gc keeps them, so staged changes never lose
// the committed data they build on, even if their branch is deleted.
Result<std::vector<ObjectId>> WorkspaceBases(const std::string& store_dir);
// The trees of merges staged in workspaces (WsMerge::staged): gc keeps
// them, with every chunk the staged files read. (The merges' `theirs`
// commits are among WorkspaceBases.)
Result<std::vector<ObjectId>> WorkspaceStagedTrees(const std::string& store_dir);

// fsck of every workspace's files: the base file (a commit id the store can
// read), the next file (a commit id; the commit may be missing, as a crash
// before it landed leaves it), each sidecar (decodes; its chunks still read from the
// store exist), and each upper file's sidecar name (refers to one that
// decodes). Problems are reported as "workspace DATASET@BRANCH"; staged file
// contents have no checksum and are not judged.
Result<std::vector<FsckProblem>> CheckWorkspaces(Repository* repo);

// Removes the workspace of dataset@branch, or (no branch) every workspace of
// the dataset, before the branch or dataset is deleted, so a branch made
// later under the same name starts clean. A workspace another process holds
// (a mount serving it) is left to it when `on_held(branch)` returns Ok (its
// holder says nothing is staged: a clean workspace of a deleted branch is
// harmless, it follows a new branch of that name); any other answer (without
// on_held: Busy) stops everything. Nothing is removed when one has staged
// changes, unless `force` (Conflict, naming the workspaces). A missing
// workspace is not an error.
Status RemoveWorkspaces(Repository* repo, const std::string& dataset, const std::optional<std::string>& branch,
                        bool force, const std::function<Status(const std::string& branch)>& on_held = nullptr);

}  // namespace tusk
