// Node and handle types shared by snapshot_fs.cc (committed trees) and
// snapshot_fs_ws.cc (workspaces). Not part of the public interface.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fs/snapshot_fs.h"
#include "fs/tree_cache.h"

namespace tusk::fs {

enum class NodeKind { kStoreRoot, kDataset, kCommitRoot, kDir, kFile, kSymlink, kWsRoot, kWsEntry };

struct SnapshotFs::Node {
  NodeKind kind = NodeKind::kDir;
  uint64_t ino = 0;
  std::string key;   // identity: "<parent ino>/<name>[#commit]"
  std::string path;  // for messages: dataset@commit:/a/b
  std::string dataset;
  std::optional<ObjectId> commit;  // empty: a branch with no commits yet (unless `candidate`)
  // The root of a view of a tree that is not a commit yet (FsOptions::
  // pinned_tree): `entry.tree` is served though `commit` is empty.
  bool candidate = false;
  int64_t commit_time = 0;
  bool volatile_name = false;  // branch, tag, dataset, root: re-resolve after 1 s
  TreeEntry entry;             // kDir/kFile/kSymlink; kCommitRoot: entry.tree is the root tree
  ObjectId parent_tree;        // kFile: the directory it is in, for look-ahead
  uint64_t parent_entries = 0;
  std::vector<uint64_t> chunk_ends;  // kFile: end offset of each chunk
  uint64_t stored_bytes = 0;         // kFile: bytes not in holes
  uint32_t nlink = 1;                // kFile/kSymlink: names of its hard-link group
  uint64_t view_ino = 0;             // kDir/kFile/kSymlink: the commit root it is under
  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> next_sequential{0};
  // kFile on a remote: chunks [0, remote_ahead) were asked of the remote
  // ahead of the reader.
  std::atomic<size_t> remote_ahead{0};
  std::atomic<bool> pushed{false};  // kFile: content already stored in the kernel's cache (ClaimPush)
  // kWsRoot / kWsEntry. ws_parent and ws_name change on rename (under mu_);
  // a detached node (unlinked, or replaced by a rename) keeps only what open
  // handles need.
  std::shared_ptr<Workspace> ws;
  std::shared_ptr<Node> ws_parent;
  std::string ws_name;
  std::vector<std::string> ws_keys;  // entries of ws_keys_ naming this node
  // Looked up as a base-only name of a committed hard-link group: once the
  // group is copied up (one upper inode), that identity is mapped here too.
  std::atomic<bool> ws_base_linked{false};
  bool detached = false;
  std::optional<WsAttr> last_attr;  // for detached nodes
  // The workspace's base when this node's root was looked up. A base that
  // moves (a commit) gives the branch directory a new root inode, so the
  // kernel sees new inodes below it, while descriptors opened before keep
  // their old inodes (and answer from their open handle).
  std::optional<ObjectId> ws_base;
  uint64_t ws_generation = 0;
};

struct SnapshotFs::DirHandle {
  std::shared_ptr<Node> dir;
  TreeCache::Listing listing;       // tree directories
  std::vector<std::string> names;   // virtual directories (root, dataset)
  std::vector<std::optional<ObjectId>> commits;  // dataset directories: per name
  std::vector<WsDirEntry> ws_entries;            // workspace directories
};

struct SnapshotFs::FileHandle {
  std::shared_ptr<Node> node;
  std::unique_ptr<WsFile> file;
  bool append = false;
};

}  // namespace tusk::fs
