// SnapshotFs: the read-only filesystem view of a store, in plain C++.
//
// Layout (whole store):   /<dataset>/<branch>/...   the branch head
//                         /<dataset>/@<tag>/...     a tag
//                         /<dataset>/@<hex>/...     any commit by unique prefix
//                                                   (looked up, not listed)
// A pinned mount shows one commit at the root.
//
// Inode numbers are a hash of (parent inode, name), and a commit root's also
// of its commit id, so they are stable within a mount and a branch directory
// that moves to a new head is a new inode: files opened before keep reading
// the version they opened, new lookups see the new head. Nodes live while
// the kernel holds a lookup reference (forget() drops them), so memory is
// bounded by what the kernel caches, not by what was ever read.
//
// Everything below a commit is immutable, which the FUSE layer turns into
// long cache timeouts; branch and tag names (and the dataset and root
// directories) are re-resolved after one second.
//
// With FsOptions::workspaces (a whole-store mount), a branch directory is
// that branch's Workspace (store/workspace/workspace.h): writable, copy-on-write, and
// committed with `tusk commit`. Workspace nodes are named by (parent, name)
// and follow renames; their attributes are cached for a second only. The
// workspace methods below fail with EROFS on every other node.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/chunk_cache.h"
#include "fs/read_log.h"
#include "fs/tree_cache.h"
#include "store/repository.h"
#include "store/workspace/workspace.h"

namespace tusk::fs {

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 1;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint64_t rdev = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  // Workspace entries have their own; committed entries use mtime for both.
  std::optional<WsTime> atime, ctime;
};

struct EntryReply {
  Attr attr;
  double entry_timeout = 1.0;  // how long the name -> inode mapping may be cached
  double attr_timeout = 1.0;
};

struct DirItem {
  std::string name;
  uint32_t mode = 0;  // type bits matter
  uint64_t ino = 0;
  uint64_t next_offset = 0;
};

// A piece of a read reply: `data` stays valid while `hold` is alive.
struct Slice {
  const char* data = nullptr;
  size_t len = 0;
  ChunkCache::Data hold;
};

struct FsOptions {
  size_t chunk_cache_bytes = size_t{128} << 20;
  size_t tree_cache_bytes = size_t{32} << 20;
  unsigned prefetch_threads = 2;
  unsigned readahead_chunks = 8;  // chunks loaded ahead of a sequential reader
  unsigned readahead_files = 4;   // next files of a directory whose first chunk is loaded ahead
  // Data on a remote (issue 12): bytes of a file fetched ahead of a
  // sequential reader, and files of a directory (up to so many bytes)
  // fetched ahead of a reader going through them; in ranged requests of
  // several chunks (Repository::FetchRemoteChunks).
  uint64_t remote_readahead_bytes = uint64_t{32} << 20;
  unsigned remote_readahead_files = 64;
  uint64_t remote_readahead_files_bytes = uint64_t{16} << 20;
  // Mount one commit at the root instead of the whole store.
  std::optional<std::string> pinned_dataset;
  std::optional<ObjectId> pinned_commit;
  // Or serve this tree at the root: a version about to be committed (the
  // tree a check runs on), which no commit names yet. Hard links show as
  // separate files (their link counts come from commits).
  std::optional<ObjectId> pinned_tree;
  std::function<void(const std::string&)> log;  // errors worth an operator's attention
  // Called with every commit before its objects are first read (the mount
  // records them in its reader lease so gc keeps them).
  std::function<Status(const ObjectId&)> on_commit;
  // Branch directories are writable workspaces (whole-store mounts only).
  bool workspaces = false;
  // Called with every workspace the mount opens (the daemon serves commit
  // requests for it).
  std::function<void(const std::shared_ptr<Workspace>&)> on_workspace;
};

// An open file of a workspace, as the FUSE layer sees it.
struct OpenReply {
  uint64_t fh = 0;
  bool keep_cache = false;
};

inline constexpr uint64_t kRootIno = 1;
inline constexpr double kImmutableTimeout = 86400.0;
inline constexpr double kVolatileTimeout = 1.0;
inline constexpr char kCommitXattr[] = "user.tusk.commit";

class SnapshotFs {
 public:
  SnapshotFs(Repository* repo, FsOptions options);
  ~SnapshotFs();

  // Each successful Lookup counts one kernel reference to the inode.
  Result<EntryReply> Lookup(uint64_t parent, std::string_view name);
  void Forget(uint64_t ino, uint64_t count);
  // `fh`: an OpenFile handle the kernel asks through (fstat), or 0.
  Result<EntryReply> GetAttr(uint64_t ino, uint64_t fh = 0);

  // Directory handles hold a snapshot of the listing, so offsets stay valid
  // however the directory is used meanwhile.
  Result<uint64_t> OpenDir(uint64_t ino, bool* immutable);
  void ReleaseDir(uint64_t handle);
  // Calls emit for each entry from `offset` on until it returns false. With
  // `plus`, each entry comes with its EntryReply and counts a lookup if (and
  // only if) emit accepts it.
  Status ReadDir(uint64_t handle, uint64_t offset, bool plus,
                 const std::function<bool(const DirItem&, const EntryReply*)>& emit);

  // True once per committed file of at most `max_size` bytes: the caller
  // may then store its whole content in the kernel's page cache (a run's
  // view does at open, so that the open's round trip replaces the read's).
  bool ClaimPush(uint64_t ino, uint64_t max_size);
  // `fh` is 0 for committed files (no open state) or an OpenFile handle.
  Result<std::vector<Slice>> Read(uint64_t ino, uint64_t offset, size_t size, uint64_t fh = 0);
  Result<std::string> ReadLink(uint64_t ino);
  Result<std::string> GetXattr(uint64_t ino, std::string_view name);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);

  // Writing (workspace nodes only; EROFS elsewhere).
  Result<OpenReply> OpenFile(uint64_t ino, int flags);
  Result<std::pair<EntryReply, OpenReply>> CreateFile(uint64_t parent, std::string_view name, uint32_t mode, int flags,
                                                      const WsCaller& who);
  // `may_keep_set_id`: the caller may write without clearing setuid/setgid
  // (CAP_FSETID; the FUSE layer takes uid 0 to hold it). The kernel leaves
  // that clearing to the filesystem for direct-I/O writes.
  Result<size_t> Write(uint64_t fh, uint64_t offset, std::string_view data, bool may_keep_set_id);
  Status Fsync(uint64_t fh, bool data_only);
  // fsync(2) of a directory: in a workspace, makes what is staged in it
  // durable (Workspace::SyncDir); elsewhere nothing to do.
  Status FsyncDir(uint64_t ino);
  // fallocate(2) through an open handle (WsFile::Allocate).
  Status Allocate(uint64_t fh, int mode, uint64_t offset, uint64_t length);
  void ReleaseFile(uint64_t fh);
  Result<EntryReply> Mkdir(uint64_t parent, std::string_view name, uint32_t mode, const WsCaller& who);
  Result<EntryReply> Mknod(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev, const WsCaller& who);
  Result<EntryReply> Symlink(std::string_view target, uint64_t parent, std::string_view name, const WsCaller& who);
  Result<EntryReply> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status Unlink(uint64_t parent, std::string_view name);
  Status Rmdir(uint64_t parent, std::string_view name);
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent, std::string_view new_name,
                unsigned flags);
  Result<EntryReply> SetAttr(uint64_t ino, const WsSetAttr& change, uint64_t fh);
  Status SetXattr(uint64_t ino, std::string_view name, std::string_view value, int flags);
  Status RemoveXattr(uint64_t ino, std::string_view name);

  // Records an open of `ino` (a committed file or directory, or a symlink
  // followed) in `log`: the file or symlink with its tree entry, or the
  // directory as listed. Paths are those
  // below the commit root (a pinned mount's root is "").
  void NoteOpen(uint64_t ino, ReadLog& log);

  // Whether the name -> inode mappings under `parent` never change (negative
  // lookups may then be cached).
  bool IsImmutableDir(uint64_t parent);
  size_t node_count();
  ChunkCache& chunk_cache() { return chunks_; }

 private:
  struct Node;
  struct DirHandle;
  struct FileHandle;
  std::shared_ptr<Node> Get(uint64_t ino);
  // Inserts (or finds) the node with this identity and counts a lookup.
  std::shared_ptr<Node> Register(std::shared_ptr<Node> node, uint64_t lookups);
  EntryReply Reply(const Node& node);
  Attr AttrOf(const Node& node);
  Result<std::shared_ptr<Node>> MakeChild(const Node& parent, std::string_view name);
  std::shared_ptr<Node> ChildFromEntry(const Node& parent, const TreeEntry& entry);
  Result<std::shared_ptr<Node>> CommitRoot(const Node& dataset, std::string_view name, const std::optional<ObjectId>& commit,
                                           bool volatile_name);
  void Log(const std::string& msg);
  void PrefetchNextFiles(const Node& file);
  // Read-ahead from remotes: the next window of `file` from chunk `i`, and
  // the next files of its directory.
  void RemoteReadAhead(Node& file, size_t i);
  void RemoteReadAheadFiles(const Node& file);

  // Workspaces (snapshot_fs_ws.cc).
  Result<std::shared_ptr<Workspace>> WorkspaceFor(const std::string& dataset, const std::string& branch);
  Result<std::shared_ptr<Node>> WsRoot(const Node& dataset, const std::string& branch);
  Result<std::shared_ptr<Node>> WsChild(const std::shared_ptr<Node>& parent, std::string_view name);
  std::shared_ptr<Node> RegisterWs(std::shared_ptr<Node> node, uint64_t lookups);
  std::string WsPath(const Node& node);
  std::string WsChildPath(const Node& parent, std::string_view name);
  Result<std::shared_ptr<Node>> WsDir(uint64_t ino);  // a workspace directory node, else EROFS/ENOTDIR
  Result<EntryReply> WsLookupNew(const std::shared_ptr<Node>& parent, std::string_view name);
  EntryReply WsReply(const Node& node, const WsAttr& attr);
  // The key that makes every name of one hard-linked inode one node: the
  // upper inode, or the base hard-link group; empty for other entries.
  static std::string WsLinkKey(const Node& parent, const WsAttr& attr);
  // After an operation that may have copied up a base hard-link group: maps
  // the upper inode it became to `node`, so names looked up later join it.
  void WsNoteCopiedUpLink(const std::shared_ptr<Node>& node);
  void WsDetach(uint64_t parent_ino, std::string_view name, const std::optional<WsAttr>& before);
  Status WsOpenDir(const std::shared_ptr<Node>& node, DirHandle* handle);
  std::shared_ptr<FileHandle> GetFile(uint64_t fh);
  // How many names the hard-link group `group` has in commit `commit` (the
  // first call for a commit walks its whole tree; only trees with hard links
  // get here).
  Result<uint32_t> LinkCount(const ObjectId& commit, uint64_t group);

  Repository* repo_;
  FsOptions options_;
  ChunkCache chunks_;
  TreeCache trees_;
  int64_t mount_time_;
  std::shared_mutex mu_;  // guards nodes_ and handles_
  std::unordered_map<uint64_t, std::shared_ptr<Node>> nodes_;
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> handles_;
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files_;     // guarded by mu_
  std::unordered_map<std::string, uint64_t> ws_keys_;                    // guarded by mu_: workspace node keys
  std::map<std::string, std::shared_ptr<Workspace>> workspaces_;         // guarded by ws_open_mu_
  std::mutex ws_open_mu_;
  std::mutex links_mu_;  // guards link_counts_: per commit, names per hard-link group
  std::map<ObjectId, std::shared_ptr<const std::unordered_map<uint64_t, uint32_t>>> link_counts_;
  std::atomic<uint64_t> next_handle_{1};
  std::mutex remote_dirs_mu_;  // guards remote_dirs_ahead_
  // Per directory tree: entries [0, n) were asked of the remote ahead.
  std::unordered_map<ObjectId, size_t, ObjectIdHash> remote_dirs_ahead_;
  std::atomic<uint64_t> next_ws_ino_{uint64_t{1} << 63};  // above every hashed inode number
};

}  // namespace tusk::fs
