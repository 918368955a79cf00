// Internals of Workspace (store/workspace/workspace.h), shared by the store/workspace/*.cc
// files:
//
//   workspace.cc  the public methods, opening, locking, the base file and
//                 crash recovery
//   upper.cc      the upper directory: resolving merged paths, merged
//                 listings, whiteouts, opaque directories, copy-up
//   ops.cc        namespace operations (create, mkdir, rename, ...)
//   file.cc       open files (FileNode, WsFile) and sidecars
//   commit.cc     building trees from the merged view: Changes, Commit,
//                 Reset and the cleanup after a commit
//   roots.cc      the gc roots that workspaces add
//
// Terms: the *base* is the commit the workspace started from; *upper* holds
// the staged entries as real files; an entry is *base-only* when the merged
// view shows it from the base tree; a *metacopy* is an upper regular file
// whose unchanged chunks are still read from the store, as its *sidecar*
// meta/<id> says.
//
// Sidecar encoding (meta/<id>, little-endian):
//   "TUSKWSM1" | u64 n | n x (32-byte chunk id, u64 length) | n x u8 state
// The state bytes sit at a fixed offset so one pwrite updates one chunk:
// 0 = read it from the store, 1 = the upper file holds it (copied up,
// overwritten, or cut off by a truncate). A state-0 chunk always lies within
// the file's size (a chunk beyond it is treated as 1).
//
// Lock order: WsCore::mu (metadata, Commit, Reset) -> WsCore::freeze (shared
// by WsFile I/O, exclusive while Commit/Changes/Reset read or change upper
// file content) -> FileNode::mu -> WsCore::nodes_mu and the caches (the
// directory descriptors' dirs_mu_ last).
#pragma once

#include <sys/stat.h>

#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/backend/env.h"
#include "store/internal/file.h"
#include "store/workspace/workspace.h"

namespace tusk {
namespace ws {

inline constexpr char kOpaqueXattr[] = "user.tusk.opaque";
inline constexpr char kMetaXattr[] = "user.tusk.meta";
// "UID:GID" of an upper file or directory whose owner an unprivileged daemon
// could not set (see WsCore::SetOwner).
inline constexpr char kOwnerXattr[] = "user.tusk.owner";
inline constexpr std::string_view kReservedXattrPrefix = "user.tusk.";

// A failed operation with an errno, e.g. Err(ENOENT, "no such file", path).
Status Err(int err, const std::string& what, std::string_view path);
// A workspace path as errors show it: quoted, control bytes escaped.
std::string QuotedRel(std::string_view rel);

// An upper entry as *at() calls name it: a descriptor of its parent
// directory and its own name ("." for upper/ itself). No call takes a path
// of more than one component, so neither the store's path nor the depth in
// the workspace runs into PATH_MAX, and no symlink in upper is followed.
struct UpperAt {
  std::shared_ptr<const Fd> dir;  // O_PATH
  std::string name;
  int fd() const { return dir->get(); }
  const char* c_name() const { return name.c_str(); }
  // For the l*xattr calls, which have no *at() form: the entry through its
  // parent's /proc/self/fd link (short, whatever the depth).
  std::string proc() const { return "/proc/self/fd/" + std::to_string(dir->get()) + "/" + name; }
};
std::string JoinRel(const std::string& dir, std::string_view name);
std::string ParentOf(const std::string& rel);
std::string NameOf(const std::string& rel);
// Validates a workspace path: components not empty, not "." or "..", no NUL,
// at most 255 bytes; no leading or trailing '/'.
Result<std::vector<std::string>> SplitPath(std::string_view path);
bool IsWhiteout(const struct stat& st);
WsTime TimeOf(const struct timespec& ts);
// The attributes of an upper entry as its stat gives them (blocks count only
// what the upper file holds; a metacopy's store chunks are added by callers).
WsAttr UpperAttr(const struct stat& st);
std::string RandomHex(size_t bytes);

// Parses the text of a `base` or `next` file (`path` names it in errors): a
// hex commit id or "none", then optional trailing blanks and newlines.
Result<std::optional<ObjectId>> ParseIdFile(std::string_view text, const std::string& path);

// The chunk list of a metacopy and which chunks the upper file holds.
struct Sidecar {
  std::vector<ChunkRef> chunks;
  std::vector<uint64_t> offsets;  // where each chunk starts in the file
  std::vector<uint8_t> state;     // 1: in the upper file

  static Sidecar Fresh(const std::vector<ChunkRef>& chunks);  // every state 0
  std::string Encode() const;
  static Result<Sidecar> Decode(std::string_view bytes, const std::string& what);
  uint64_t StateOffset(size_t i) const { return 16 + 40 * chunks.size() + i; }
  uint64_t End(size_t i) const { return offsets[i] + chunks[i].length; }
  // Index of the first chunk whose end is past `offset`.
  size_t FirstEndingAfter(uint64_t offset) const;
  // Marks every state-0 chunk that does not lie within `size`.
  void CutAt(uint64_t size);
  // Bytes of stored (non-hole) chunks still read from the store.
  uint64_t StoreBytes() const;
};

// The hard-link groups of a base tree.
struct BaseLinks {
  uint64_t max_group = 0;                               // 0: no groups
  std::map<uint64_t, std::vector<std::string>> paths;  // group -> its base paths, in tree order
};

class WsCore;

// One open regular file, shared by every WsFile of it. Until the file is
// copied up it reads from its base entry; after that from its upper file
// (linked at `path`, or anonymous once detached).
struct FileNode {
  // A metacopy whose last name is gone leaves its sidecar to the next sweep
  // (see WsCore::SyncUpperNames).
  explicit FileNode(WsCore* c) : core(c) {}

  WsCore* core;
  std::string label;  // the path it was first opened by, for messages; never changes
  std::mutex mu;
  // Guarded by core->mu (changed by namespace operations).
  std::string path;       // the merged path while linked
  bool detached = false;  // unlinked, replaced or reset: no path any more
  // Guarded by mu.
  TreeEntry base;  // until copied up: the committed file
  std::vector<uint64_t> base_offsets;
  Fd fd;  // the upper file, once there is one
  uint64_t dev = 0, ino = 0;
  bool has_meta = false;
  Fd meta_fd;  // invalid for an anonymous metacopy (state kept in memory only)
  std::string meta_id;
  Sidecar side;
  // Guarded by core->mu: the path whose name (and the upper directories
  // above it) an Fsync last made durable, so that the next Fsync at the
  // same path syncs no directory again (each costs a device flush).
  std::string durable_path;

  // Need mu held.
  Status CopyChunk(size_t i);
  Status SetState(size_t i);
  Result<uint64_t> Size();
  Result<WsAttr> StatLocked();
};

// A merged path, as Resolve finds it.
struct Lookup {
  std::string rel;                 // the validated path
  std::vector<std::string> parts;  // its components
  bool parent_in_upper = false;    // the parent directory exists in upper
  bool in_upper = false;           // a real (non-whiteout) upper entry is at rel
  bool whiteout = false;           // a whiteout is at rel
  bool opaque = false;             // in_upper directory marked opaque (read only over a base directory)
  struct stat st {};               // the upper entry
  std::optional<TreeEntry> base;   // the base entry at rel if the parents let it show

  bool exists() const { return in_upper || (!whiteout && base.has_value()); }
  bool base_only() const { return !in_upper && !whiteout && base.has_value(); }
  uint32_t mode() const { return in_upper ? st.st_mode : (base ? base->mode : 0); }
  bool is_dir() const { return exists() && S_ISDIR(mode()); }
  // The base tree merged below this directory, if any.
  std::optional<ObjectId> base_below() const;
};

struct MergedEntry {
  std::string name;
  bool in_upper = false;
  struct stat st {};
  std::optional<TreeEntry> base;  // the base entry of the same name, if visible
  uint32_t mode() const { return in_upper ? st.st_mode : base->mode; }
};

// Tree pages (decoded) and chunk plaintext read through small caches.
class StoreReader : public ObjectSource {
 public:
  explicit StoreReader(Repository* repo) : repo_(repo) {}
  Result<std::string> ReadObject(const ObjectId& id, ObjectType type) override;
  // LookupEntry and ForEachEntry (store/objects.h) over cached pages.
  Result<std::optional<TreeEntry>> Lookup(const ObjectId& root, std::string_view name);
  Status ForEach(const ObjectId& root, const std::function<bool(const TreeEntry&)>& fn);
  // Bytes [offset, offset + len) of a stored chunk.
  Status ReadChunkPart(const ChunkRef& chunk, uint64_t offset, size_t len, char* out);
  Result<std::shared_ptr<const std::string>> ReadChunk(const ObjectId& id);
  // Bytes of a chunk list (holes read as zeros).
  Status ReadChunks(const std::vector<ChunkRef>& chunks, const std::vector<uint64_t>& offsets, uint64_t offset,
                    size_t len, char* out);

 private:
  Result<std::shared_ptr<const TreePage>> Page(const ObjectId& id);

  Repository* repo_;
  std::mutex mu_;
  // LRU lists, newest first, with an index for the pages.
  std::list<std::pair<ObjectId, std::shared_ptr<const TreePage>>> pages_;
  std::unordered_map<ObjectId, decltype(pages_)::iterator, ObjectIdHash> page_index_;
  std::list<std::pair<ObjectId, std::shared_ptr<const std::string>>> chunks_;
};

std::vector<uint64_t> OffsetsOf(const std::vector<ChunkRef>& chunks);

class WsCore {
 public:
  WsCore(Repository* repo, std::string dataset, std::string branch, std::string dir);
  Status Init();  // opens upper/ and meta/

  Repository* repo;
  // The store's file seam: the workspace's own files (base, next) are
  // written through it, and it makes names durable (SyncDir).
  Env* const files;
  const std::string dataset, branch, dir, upper_path, meta_path;
  Fd lock_fd;
  Fd upper_fd;  // O_PATH directory
  Fd meta_dir_fd;
  StoreReader store;
  // The process runs as an ordinary user: it cannot give upper entries other
  // owners, so it records the owner it could not set (SetOwner/ShowOwner).
  const bool unprivileged;

  std::mutex mu;
  std::shared_mutex freeze;

  // Guarded by mu.
  std::optional<ObjectId> base;
  std::optional<ObjectId> base_root;
  uint64_t generation = 0;  // bumped whenever the merged view changes wholesale
  uint64_t base_files = 0, base_bytes = 0;
  std::optional<WsMerge> merge;  // the merge staged (its file is `dir`/merge)
  std::optional<std::pair<std::optional<ObjectId>, BaseLinks>> base_links;  // for base_root, see LinksOfBase

  // ---- base (workspace.cc) ----
  Status SetBase(const std::optional<ObjectId>& commit, bool write_file);
  Result<bool> Staged();
  Status FollowBranchIfClean(bool* diverged);

  // ---- staged merge (merge_state.cc) ----
  // Loads the merge file at Open; rolls back a StageMerge a crash cut short.
  Status LoadMerge();
  // Writes `merge` to its file (durably), or removes the file when unset.
  Status SaveMerge();

  // ---- durability (workspace.cc) ----
  // What a local file system gives fsync(2) of a file in `dir_rel` (an
  // upper directory, "" for upper/): its name, and the names of the upper
  // directories above it, survive a power loss. ENOENT on the way (the
  // directory was renamed or removed meanwhile) is not an error.
  //
  // The one rule that keeps metacopies whole through a power loss: no name
  // in upper is ever durable while its sidecar is not, so
  // - SyncUpperNames first syncs the sidecars made since its last call,
  //   content and names, then the upper directories;
  // - a sidecar is removed only by a sweep (commit cleanup, reset, Open),
  //   after the upper directories it ran over are synced, so the removal of
  //   a name that referred to it is durable first. An unlink or rename that
  //   drops a metacopy's last name leaves its sidecar as garbage until then
  //   (fsck ignores sidecars no upper file names).
  Status SyncUpperNames(const std::string& dir_rel);
  // Makes the removals in meta/ durable (after a sweep of sidecars).
  Status SyncSidecarNames();
  // A sidecar that SyncUpperNames must sync before any upper name.
  void NoteNewSidecar(const std::string& id);
  // The first half of SyncUpperNames: the sidecars noted since, content and
  // names (no system call when there are none).
  Status SyncNewSidecars();
  // Removes the `next` file and makes that durable.
  Status RemoveNextFile();

  // ---- upper descriptors (upper.cc) ----
  // The upper directory `rel` ("" is upper/ itself), opened O_PATH by a walk
  // from upper/ one component at a time, each O_NOFOLLOW|O_DIRECTORY (a
  // symlink on the way gives ENOTDIR). Recently used directories are cached,
  // so a lookup usually costs no system call; ForgetDirs keeps the cache
  // true. Errors as openat(2) gives them.
  Result<std::shared_ptr<const Fd>> UpperDir(const std::string& rel);
  // Where the upper entry `rel` is (its parent need only exist in upper).
  Result<UpperAt> At(const std::string& rel);
  // Drops the cached descriptors of the directory `rel` and all below it
  // ("": every one). Whatever renames or removes an upper directory calls it.
  void ForgetDirs(const std::string& rel);

  // ---- upper directory (upper.cc) ----
  Result<Lookup> Resolve(std::string_view path);
  Result<Lookup> ResolveParts(const std::vector<std::string>& parts);
  // The parent of `l` as a merged directory (ENOENT, ENOTDIR otherwise).
  Result<Lookup> ResolveParentDir(const Lookup& l);
  Result<bool> IsOpaque(const std::string& rel);
  // Gives the upper entry `rel` (through `fd` when it is >= 0, for a file
  // not linked yet) the owner uid:gid; (uint32_t)-1 keeps that part. Where
  // the process may not chown (unprivileged), a regular file or directory
  // keeps the process as its real owner and records uid:gid in kOwnerXattr;
  // a symlink or special file cannot carry it (EPERM).
  Status SetOwner(const std::string& rel, int fd, uint32_t uid, uint32_t gid);
  // Puts the owner the workspace shows for an upper entry into *st (the
  // recorded one, if any; only unprivileged processes record owners).
  Status ShowOwner(const std::string& rel, int fd, struct stat* st);
  Result<std::vector<MergedEntry>> ListMerged(const Lookup& dir);
  // Makes the merged directory `parts` (all of it) exist in upper, copying
  // base-only directories up with their metadata; the parents' times are
  // kept.
  Status EnsureUpperDir(const std::vector<std::string>& parts);
  // Copies a base-only entry up: directory (not opaque), metacopy file,
  // symlink, special file (with its xattrs). Open nodes of a file get its
  // upper file. An entry of a hard-link group is copied up with every other
  // name of the group the merged view still shows from the base, as hard
  // links of one upper inode (open nodes at those other names are detached:
  // one node per upper inode). A character device 0:0 cannot be copied up
  // (EPERM: in upper it would be a whiteout).
  Status CopyUp(const Lookup& l);
  Status CopyUpAlone(const Lookup& l);
  Status CopyUpGroup(const Lookup& l);
  // The other names of l's hard-link group (l shows a base entry of one)
  // that still show that base entry.
  Result<std::vector<Lookup>> BaseNamesOfGroup(const Lookup& l);
  // The base tree's hard-link groups; the first call for a base walks the
  // whole base tree (done only when hard links are involved).
  Result<const BaseLinks*> LinksOfBase();
  // Makes `rel` independent of its base path: a directory becomes an opaque
  // upper tree of metacopies, symlinks and directories; a file a metacopy.
  Status MakeSelfContained(const std::string& rel);
  Status MakeWhiteout(const std::string& rel);
  // Removes an upper entry (recursively for directories), releasing the
  // sidecars of files that are gone.
  Status RemoveUpper(const std::string& rel);
  // The names in the upper directory `rel` ("" is upper/ itself).
  Result<std::vector<std::string>> UpperNames(const std::string& rel);
  Status RestoreTimes(const std::string& rel, const struct stat& st);
  Result<WsAttr> AttrOf(const Lookup& l);

  // ---- open files (file.cc) ----
  std::shared_ptr<FileNode> FindNodeByPath(const std::string& rel);
  std::shared_ptr<FileNode> FindNodeByInode(uint64_t dev, uint64_t ino);
  std::vector<std::shared_ptr<FileNode>> LiveNodes();
  void RegisterNode(const std::shared_ptr<FileNode>& node);
  // The node of an existing merged regular file (shared with open WsFiles).
  Result<std::shared_ptr<FileNode>> NodeFor(const Lookup& l);
  // Gives every open node of the base-only file at `rel` its new upper file.
  Status AttachNodes(const std::string& rel, int fd);
  // Loads an upper file into a node (fd, sidecar). Needs node->mu.
  Status LoadUpper(FileNode* node, Fd fd);
  // Copies the node's file up if it is still the committed one. Takes mu.
  Status CopyUpNode(const std::shared_ptr<FileNode>& node);
  Status CopyUpNodeLocked(const std::shared_ptr<FileNode>& node);  // needs mu
  Status TruncateNode(FileNode* node, uint64_t size);              // needs freeze shared
  Result<std::unique_ptr<WsFile>> MakeFile(std::shared_ptr<FileNode> node, bool writable);
  // Paths of open nodes follow a rename; nodes at a replaced path detach.
  void RenameNodes(const std::string& from, const std::string& to, bool exchange);
  void DetachNodesAt(const std::string& rel);
  void DetachAllNodes();
  Result<std::string> ReadSidecarFile(const std::string& id);
  Result<std::string> MetaIdOf(const std::string& rel);
  Result<std::string> CreateSidecar(const Sidecar& side, Fd* out);
  // Deletes every sidecar in meta/ whose name is not in `keep` (best effort:
  // one that cannot be removed is garbage the next sweep takes).
  Status RemoveSidecarsExcept(const std::set<std::string>& keep);

  std::weak_ptr<WsCore> self;

 private:
  std::mutex nodes_mu_;
  std::vector<std::weak_ptr<FileNode>> nodes_;
  // Sidecars created since the last SyncUpperNames; taken last, briefly.
  std::mutex unsynced_mu_;
  std::vector<std::string> unsynced_sidecars_;
  // Upper directory descriptors by path (UpperDir); guarded by dirs_mu_,
  // which is taken last (after every other lock) and held only briefly.
  std::mutex dirs_mu_;
  std::unordered_map<std::string, std::shared_ptr<const Fd>> dirs_;
};

// Empties upper/ and meta/ (no open file may need them).
Status ClearUpperAndSidecars(WsCore* core);

// ---- making upper entries from tree entries (upper.cc) ----
// Each needs the parent of `rel` in upper and nothing at `rel` itself.
Status StatAt(WsCore* core, const std::string& rel, struct stat* st);
// Xattrs (added, not replaced), owner, mode and mtime of `e` onto the upper
// entry at `rel`.
Status ApplyBaseMeta(WsCore* core, const std::string& rel, const TreeEntry& e);
Status MakeUpperDir(WsCore* core, const std::string& rel, const TreeEntry& e);
Status MakeUpperSymlink(WsCore* core, const std::string& rel, const TreeEntry& e);
Status MakeUpperSpecial(WsCore* core, const std::string& rel, const TreeEntry& e);
// A metacopy of the file `e`: every chunk still read from the store.
Result<Fd> MakeMetacopy(WsCore* core, const std::string& rel, const TreeEntry& e, std::string* meta_id);

// ---- a staged merge (merge_state.cc) ----
// STORE/workspaces/D/B/merge, and merge.staging while StageMerge applies it.
inline constexpr char kMergeFile[] = "merge";
inline constexpr char kMergeStagingFile[] = "merge.staging";
// Reads the merge file of the workspace directory `dir`, if any.
Result<std::optional<WsMerge>> ReadMergeFile(Env* files, const std::string& dir, const char* name);

}  // namespace ws

struct Workspace::Impl {
  std::shared_ptr<ws::WsCore> core;
};

}  // namespace tusk
