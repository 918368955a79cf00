// SnapshotFs, workspace half: branch directories of a whole-store mount as
// writable Workspaces. Every operation maps an inode to a workspace path and
// calls the Workspace; this file keeps the inode table in step (names follow
// renames, unlinked nodes are detached, hard links share one inode).
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>

#include "fs/snapshot_fs.h"
#include "fs/snapshot_fs_internal.h"

namespace tusk::fs {
namespace {

// Workspace entries change under the kernel only through this mount (and
// commits/resets, which keep content), so a short cache is enough.
constexpr double kWorkspaceTimeout = 1.0;

Status Erofs() { return Status::FromErrno(EROFS, "committed versions are read-only; write in a branch directory"); }

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
    return Status::FromErrno(EINVAL, "invalid name");
  if (name.size() > 255) return Status::FromErrno(ENAMETOOLONG, "name too long");
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<Workspace>> SnapshotFs::WorkspaceFor(const std::string& dataset, const std::string& branch) {
  std::lock_guard lock(ws_open_mu_);
  std::string key = dataset + "\n" + branch;
  auto it = workspaces_.find(key);
  if (it != workspaces_.end()) return it->second;
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<Workspace> opened, Workspace::Open(repo_, dataset, branch));
  std::shared_ptr<Workspace> ws(std::move(opened));
  workspaces_[key] = ws;
  if (options_.on_workspace) options_.on_workspace(ws);
  return ws;
}

Result<std::shared_ptr<SnapshotFs::Node>> SnapshotFs::WsRoot(const Node& dataset, const std::string& branch) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Workspace> ws, WorkspaceFor(dataset.dataset, branch));
  // The branch name is looked up again every second: with nothing staged,
  // the workspace moves to a new head committed from outside.
  TUSK_RETURN_IF_ERROR(ws->Diverged().status());
  auto base = ws->base();
  if (base && options_.on_commit) TUSK_RETURN_IF_ERROR(options_.on_commit(*base));
  auto node = std::make_shared<Node>();
  node->kind = NodeKind::kWsRoot;
  node->dataset = dataset.dataset;
  node->volatile_name = true;
  uint64_t generation = ws->generation();
  node->key = std::to_string(dataset.ino) + "/" + branch + "#workspace#" + std::to_string(generation);
  node->ws_generation = generation;
  node->path = dataset.dataset + "@" + branch + ":";
  node->ws = ws;
  node->ws_base = base;
  node->commit = base;
  return node;
}

std::string SnapshotFs::WsPath(const Node& node) {
  std::shared_lock lock(mu_);
  std::vector<const std::string*> parts;
  for (const Node* n = &node; n && n->kind == NodeKind::kWsEntry; n = n->ws_parent.get()) parts.push_back(&n->ws_name);
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!path.empty()) path += '/';
    path += **it;
  }
  return path;
}

std::string SnapshotFs::WsChildPath(const Node& parent, std::string_view name) {
  std::string path = parent.kind == NodeKind::kWsRoot ? std::string() : WsPath(parent);
  if (!path.empty()) path += '/';
  path += name;
  return path;
}

EntryReply SnapshotFs::WsReply(const Node& node, const WsAttr& a) {
  EntryReply r;
  r.attr.ino = node.ino;
  r.attr.mode = a.mode;
  r.attr.nlink = a.nlink;
  r.attr.uid = a.uid;
  r.attr.gid = a.gid;
  r.attr.size = a.size;
  r.attr.blocks = a.blocks;
  r.attr.rdev = a.rdev;
  r.attr.mtime_sec = a.mtime.sec;
  r.attr.mtime_nsec = a.mtime.nsec;
  r.attr.atime = a.atime;
  r.attr.ctime = a.ctime;
  r.entry_timeout = kWorkspaceTimeout;
  r.attr_timeout = kWorkspaceTimeout;
  return r;
}

std::shared_ptr<SnapshotFs::Node> SnapshotFs::RegisterWs(std::shared_ptr<Node> node, uint64_t lookups) {
  std::unique_lock lock(mu_);
  auto it = ws_keys_.find(node->key);
  if (it != ws_keys_.end()) {
    auto existing = nodes_.find(it->second);
    if (existing != nodes_.end()) {
      existing->second->lookups += lookups;
      return existing->second;
    }
    ws_keys_.erase(it);
  }
  node->ino = next_ws_ino_++;
  node->lookups = lookups;
  node->ws_keys.push_back(node->key);
  ws_keys_[node->key] = node->ino;
  nodes_[node->ino] = node;
  return node;
}

Result<std::shared_ptr<SnapshotFs::Node>> SnapshotFs::WsChild(const std::shared_ptr<Node>& parent, std::string_view name) {
  auto node = std::make_shared<Node>();
  node->kind = NodeKind::kWsEntry;
  node->dataset = parent->dataset;
  node->ws = parent->ws;
  node->ws_parent = parent;
  node->ws_name = std::string(name);
  node->key = std::to_string(parent->ino) + "/" + std::string(name);
  node->path = parent->path + "/" + std::string(name);
  node->ws_base = parent->ws_base;
  node->ws_generation = parent->ws_generation;
  node->commit = parent->ws_base;
  return node;
}

Result<EntryReply> SnapshotFs::WsLookupNew(const std::shared_ptr<Node>& parent, std::string_view name) {
  if (name.size() > 255) return Status::FromErrno(ENAMETOOLONG, "name too long");
  TUSK_ASSIGN_OR_RETURN(WsAttr attr, parent->ws->Stat(WsChildPath(*parent, name)));
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> made, WsChild(parent, name));
  // Hard links: every name of one upper file, or of one committed hard-link
  // group, is one inode.
  std::string link_key = WsLinkKey(*parent, attr);
  if (!link_key.empty()) {
    std::unique_lock lock(mu_);
    auto it = ws_keys_.find(link_key);
    if (it != ws_keys_.end()) {
      auto existing = nodes_.find(it->second);
      if (existing != nodes_.end()) {
        existing->second->lookups += 1;
        if (ws_keys_.emplace(made->key, existing->second->ino).second) existing->second->ws_keys.push_back(made->key);
        return WsReply(*existing->second, attr);
      }
    }
  }
  std::shared_ptr<Node> node = RegisterWs(std::move(made), 1);
  if (!link_key.empty()) {
    std::unique_lock lock(mu_);
    if (ws_keys_.emplace(link_key, node->ino).second) node->ws_keys.push_back(link_key);
  }
  if (attr.base_link_group && attr.upper_ino == 0) node->ws_base_linked = true;
  return WsReply(*node, attr);
}

std::string SnapshotFs::WsLinkKey(const Node& parent, const WsAttr& attr) {
  if (S_ISDIR(attr.mode) || attr.nlink < 2) return std::string();
  if (attr.upper_ino != 0) return "u" + std::to_string(attr.upper_dev) + ":" + std::to_string(attr.upper_ino);
  if (attr.base_link_group)
    return "g" + std::to_string(parent.ws_generation) + ":" + std::to_string(*attr.base_link_group);
  return std::string();
}

void SnapshotFs::WsNoteCopiedUpLink(const std::shared_ptr<Node>& node) {
  if (!node || !node->ws_base_linked || node->detached) return;
  auto a = node->ws->Stat(WsPath(*node));
  if (!a.ok() || a->upper_ino == 0) return;  // not copied up (yet)
  node->ws_base_linked = false;
  std::string key = "u" + std::to_string(a->upper_dev) + ":" + std::to_string(a->upper_ino);
  std::unique_lock lock(mu_);
  if (ws_keys_.emplace(key, node->ino).second) node->ws_keys.push_back(key);
}

Result<std::shared_ptr<SnapshotFs::Node>> SnapshotFs::WsDir(uint64_t ino) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (!node->ws) return Erofs();
  if (node->detached) return Status::NotFound("directory was removed");
  return node;
}

// Detaches the node named (parent, name), if the kernel knows one: it keeps
// its inode for open handles but no longer stands for that path. `before` is
// what the path was just before it went away.
void SnapshotFs::WsDetach(uint64_t parent_ino, std::string_view name, const std::optional<WsAttr>& before) {
  std::string key = std::to_string(parent_ino) + "/" + std::string(name);
  std::unique_lock lock(mu_);
  auto it = ws_keys_.find(key);
  if (it == ws_keys_.end()) return;
  auto n = nodes_.find(it->second);
  ws_keys_.erase(it);
  if (n == nodes_.end()) return;
  Node& node = *n->second;
  if (before && !S_ISDIR(before->mode) && before->nlink > 1) {
    // Other names still refer to this inode (a file, symlink or special
    // file). If the one that went away is the name the node resolves
    // through, move it to a surviving name the kernel has looked up (git:
    // write a temp file, link it, unlink the temp); a detached node would
    // answer with its last attributes, nlink 0, until the kernel looks again.
    if (node.key != key) return;
    for (const auto& other : node.ws_keys) {
      auto o = ws_keys_.find(other);
      size_t slash = other.find('/');
      if (o == ws_keys_.end() || o->second != node.ino || slash == std::string::npos) continue;
      auto parent = nodes_.find(std::strtoull(other.substr(0, slash).c_str(), nullptr, 10));
      if (parent == nodes_.end() || !parent->second->ws) continue;
      node.ws_parent = parent->second;
      node.ws_name = other.substr(slash + 1);
      node.key = other;
      node.path = parent->second->path + "/" + node.ws_name;
      return;
    }
  }
  node.detached = true;
  node.last_attr = before;
  if (node.last_attr) node.last_attr->nlink = 0;
}

Status SnapshotFs::WsOpenDir(const std::shared_ptr<Node>& node, DirHandle* handle) {
  if (node->detached) return Status::NotFound("directory was removed");
  TUSK_ASSIGN_OR_RETURN(handle->ws_entries, node->ws->List(node->kind == NodeKind::kWsRoot ? std::string() : WsPath(*node)));
  return Status::Ok();
}

std::shared_ptr<SnapshotFs::FileHandle> SnapshotFs::GetFile(uint64_t fh) {
  std::shared_lock lock(mu_);
  auto it = files_.find(fh);
  return it == files_.end() ? nullptr : it->second;
}

Result<OpenReply> SnapshotFs::OpenFile(uint64_t ino, int flags) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (!node->ws) {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return Erofs();
    return OpenReply{0, true};  // committed: served by inode, cached by the kernel
  }
  if (node->detached) return Status::NotFound("file was removed");
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WsFile> file, node->ws->Open(WsPath(*node), flags));
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) WsNoteCopiedUpLink(node);
  auto handle = std::make_shared<FileHandle>();
  handle->node = node;
  handle->file = std::move(file);
  handle->append = (flags & O_APPEND) != 0;
  uint64_t fh = next_handle_++;
  std::unique_lock lock(mu_);
  files_[fh] = std::move(handle);
  // Every change to a workspace file passes through this kernel (writes,
  // truncates, shared mappings), except a reset or a base that moves, which
  // give the branch new inodes: so the kernel may keep what it has cached of
  // a current-generation file across opens (a second epoch reads from memory).
  bool current = node->ws_generation == node->ws->generation();
  return OpenReply{fh, current};
}

Result<std::pair<EntryReply, OpenReply>> SnapshotFs::CreateFile(uint64_t parent_ino, std::string_view name,
                                                                 uint32_t mode, int flags, const WsCaller& who) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  TUSK_RETURN_IF_ERROR(CheckName(name));
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WsFile> file,
                        parent->ws->Create(WsChildPath(*parent, name), mode, (flags & O_EXCL) != 0, who));
  if (flags & O_TRUNC) TUSK_RETURN_IF_ERROR(file->Truncate(0));
  TUSK_ASSIGN_OR_RETURN(EntryReply entry, WsLookupNew(parent, name));
  auto handle = std::make_shared<FileHandle>();
  handle->node = Get(entry.attr.ino);
  handle->file = std::move(file);
  handle->append = (flags & O_APPEND) != 0;
  uint64_t fh = next_handle_++;
  {
    std::unique_lock lock(mu_);
    files_[fh] = std::move(handle);
  }
  return std::make_pair(entry, OpenReply{fh, false});
}

Result<size_t> SnapshotFs::Write(uint64_t fh, uint64_t offset, std::string_view data, bool may_keep_set_id) {
  auto handle = GetFile(fh);
  if (!handle) return Status::FromErrno(EBADF, "bad file handle");
  if (!may_keep_set_id && !data.empty()) TUSK_RETURN_IF_ERROR(handle->file->DropSetIdForWrite());
  if (handle->append) {
    // The kernel's idea of the size may be stale; appends go to the real end.
    TUSK_ASSIGN_OR_RETURN(WsAttr a, handle->file->Stat());
    offset = a.size;
  }
  auto written = handle->file->Write(offset, data);
  if (written.ok() && handle->node->ws_base_linked) WsNoteCopiedUpLink(handle->node);
  return written;
}

Status SnapshotFs::Fsync(uint64_t fh, bool data_only) {
  auto handle = GetFile(fh);
  if (!handle) return Status::Ok();  // committed files: nothing to sync
  return handle->file->Fsync(data_only);
}

Status SnapshotFs::FsyncDir(uint64_t ino) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (!node->ws || node->detached) return Status::Ok();  // committed, or removed: nothing staged to sync
  return node->ws->SyncDir(node->kind == NodeKind::kWsRoot ? std::string() : WsPath(*node));
}

Status SnapshotFs::Allocate(uint64_t fh, int mode, uint64_t offset, uint64_t length) {
  auto handle = GetFile(fh);
  if (!handle) return Status::FromErrno(EBADF, "not a workspace file open for writing");
  TUSK_RETURN_IF_ERROR(handle->file->Allocate(mode, offset, length));
  if (handle->node->ws_base_linked) WsNoteCopiedUpLink(handle->node);
  return Status::Ok();
}

void SnapshotFs::ReleaseFile(uint64_t fh) {
  std::shared_ptr<FileHandle> handle;
  {
    std::unique_lock lock(mu_);
    auto it = files_.find(fh);
    if (it == files_.end()) return;
    handle = std::move(it->second);
    files_.erase(it);
  }
  // The WsFile closes outside the lock.
}

Result<EntryReply> SnapshotFs::Mkdir(uint64_t parent_ino, std::string_view name, uint32_t mode, const WsCaller& who) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  TUSK_RETURN_IF_ERROR(CheckName(name));
  TUSK_RETURN_IF_ERROR(parent->ws->Mkdir(WsChildPath(*parent, name), mode, who));
  return WsLookupNew(parent, name);
}

Result<EntryReply> SnapshotFs::Mknod(uint64_t parent_ino, std::string_view name, uint32_t mode, uint64_t rdev,
                                     const WsCaller& who) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  TUSK_RETURN_IF_ERROR(CheckName(name));
  if (S_ISREG(mode)) {
    TUSK_ASSIGN_OR_RETURN(auto file, parent->ws->Create(WsChildPath(*parent, name), mode, true, who));
  } else {
    TUSK_RETURN_IF_ERROR(parent->ws->Mknod(WsChildPath(*parent, name), mode, rdev, who));
  }
  return WsLookupNew(parent, name);
}

Result<EntryReply> SnapshotFs::Symlink(std::string_view target, uint64_t parent_ino, std::string_view name,
                                       const WsCaller& who) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  TUSK_RETURN_IF_ERROR(CheckName(name));
  TUSK_RETURN_IF_ERROR(parent->ws->Symlink(target, WsChildPath(*parent, name), who));
  return WsLookupNew(parent, name);
}

Result<EntryReply> SnapshotFs::Link(uint64_t ino, uint64_t new_parent_ino, std::string_view new_name) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(new_parent_ino));
  if (!node->ws) return Erofs();
  if (node->ws != parent->ws) return Status::FromErrno(EXDEV, "hard links cannot cross workspaces");
  TUSK_RETURN_IF_ERROR(CheckName(new_name));
  TUSK_RETURN_IF_ERROR(parent->ws->Link(WsPath(*node), WsChildPath(*parent, new_name)));
  TUSK_ASSIGN_OR_RETURN(WsAttr attr, parent->ws->Stat(WsChildPath(*parent, new_name)));
  // The new name is the same inode: map both names (and the upper identity)
  // to the existing node.
  std::unique_lock lock(mu_);
  std::string name_key = std::to_string(parent->ino) + "/" + std::string(new_name);
  std::string link_key = "u" + std::to_string(attr.upper_dev) + ":" + std::to_string(attr.upper_ino);
  for (const auto& k : {name_key, link_key})
    if (ws_keys_.insert_or_assign(k, node->ino).second) node->ws_keys.push_back(k);
  node->lookups += 1;
  return WsReply(*node, attr);
}

Status SnapshotFs::Unlink(uint64_t parent_ino, std::string_view name) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  std::string path = WsChildPath(*parent, name);
  TUSK_ASSIGN_OR_RETURN(WsAttr attr, parent->ws->Stat(path));
  if (S_ISDIR(attr.mode)) return Status::FromErrno(EISDIR, "is a directory");
  TUSK_RETURN_IF_ERROR(parent->ws->Unlink(path));
  WsDetach(parent_ino, name, attr);
  return Status::Ok();
}

Status SnapshotFs::Rmdir(uint64_t parent_ino, std::string_view name) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  std::string path = WsChildPath(*parent, name);
  TUSK_RETURN_IF_ERROR(parent->ws->Rmdir(path));
  WsDetach(parent_ino, name, std::nullopt);
  return Status::Ok();
}

Status SnapshotFs::Rename(uint64_t parent_ino, std::string_view name, uint64_t new_parent_ino,
                          std::string_view new_name, unsigned flags) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> parent, WsDir(parent_ino));
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<Node> new_parent, WsDir(new_parent_ino));
  if (parent->ws != new_parent->ws) return Status::FromErrno(EXDEV, "cannot rename across workspaces");
  TUSK_RETURN_IF_ERROR(CheckName(new_name));
  std::string from = WsChildPath(*parent, name), to = WsChildPath(*new_parent, new_name);
  // What the target name stood for is replaced (or, with RENAME_EXCHANGE,
  // swapped); remember its attributes for handles still open on it.
  std::shared_ptr<Node> target;
  {
    std::shared_lock lock(mu_);
    auto it = ws_keys_.find(std::to_string(new_parent_ino) + "/" + std::string(new_name));
    if (it != ws_keys_.end()) {
      auto n = nodes_.find(it->second);
      if (n != nodes_.end()) target = n->second;
    }
  }
  std::optional<WsAttr> target_attr;
  if (target) {
    auto a = parent->ws->Stat(to);
    if (a.ok()) target_attr = *a;
  }
  TUSK_RETURN_IF_ERROR(parent->ws->Rename(from, to, flags));
  std::unique_lock lock(mu_);
  std::string old_key = std::to_string(parent_ino) + "/" + std::string(name);
  std::string new_key = std::to_string(new_parent_ino) + "/" + std::string(new_name);
  std::shared_ptr<Node> moved;
  auto it = ws_keys_.find(old_key);
  if (it != ws_keys_.end()) {
    auto n = nodes_.find(it->second);
    if (n != nodes_.end()) moved = n->second;
    ws_keys_.erase(it);
  }
  if (target && target != moved) {
    ws_keys_.erase(new_key);
    if (flags & RENAME_EXCHANGE) {
      target->ws_parent = parent;
      target->ws_name = std::string(name);
      target->key = old_key;
      ws_keys_[old_key] = target->ino;
      target->ws_keys.push_back(old_key);
    } else {
      target->detached = true;
      target->last_attr = target_attr;
    }
  }
  if (moved) {
    moved->ws_parent = new_parent;
    moved->ws_name = std::string(new_name);
    moved->key = new_key;
    moved->path = new_parent->path + "/" + std::string(new_name);
    ws_keys_[new_key] = moved->ino;
    moved->ws_keys.push_back(new_key);
  }
  return Status::Ok();
}

Result<EntryReply> SnapshotFs::SetAttr(uint64_t ino, const WsSetAttr& change, uint64_t fh) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (!node->ws) return Erofs();
  auto handle = fh ? GetFile(fh) : nullptr;
  if (node->detached) {
    // Only what an open handle can still do to an unlinked file.
    if (!handle) return Status::NotFound("file was removed");
    if (change.size) TUSK_RETURN_IF_ERROR(handle->file->Truncate(*change.size));
    TUSK_ASSIGN_OR_RETURN(WsAttr a, handle->file->Stat());
    return WsReply(*node, a);
  }
  std::string path = node->kind == NodeKind::kWsRoot ? std::string() : WsPath(*node);
  if (change.size && handle) {
    TUSK_RETURN_IF_ERROR(handle->file->Truncate(*change.size));
    WsSetAttr rest = change;
    rest.size.reset();
    if (rest.mode || rest.uid || rest.gid || rest.atime || rest.mtime) TUSK_RETURN_IF_ERROR(node->ws->SetAttr(path, rest));
  } else {
    TUSK_RETURN_IF_ERROR(node->ws->SetAttr(path, change));
  }
  WsNoteCopiedUpLink(node);
  TUSK_ASSIGN_OR_RETURN(WsAttr a, node->ws->Stat(path));
  return WsReply(*node, a);
}

Status SnapshotFs::SetXattr(uint64_t ino, std::string_view name, std::string_view value, int flags) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (!node->ws) return Erofs();
  if (name.substr(0, 5) != "user." || name == kCommitXattr)
    return Status::FromErrno(ENOTSUP, "only user.* attributes can be set");
  TUSK_RETURN_IF_ERROR(
      node->ws->SetXattr(node->kind == NodeKind::kWsRoot ? std::string() : WsPath(*node), name, value, flags));
  WsNoteCopiedUpLink(node);
  return Status::Ok();
}

Status SnapshotFs::RemoveXattr(uint64_t ino, std::string_view name) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (!node->ws) return Erofs();
  if (name.substr(0, 5) != "user.") return Status::FromErrno(ENOTSUP, "only user.* attributes exist here");
  TUSK_RETURN_IF_ERROR(node->ws->RemoveXattr(node->kind == NodeKind::kWsRoot ? std::string() : WsPath(*node), name));
  WsNoteCopiedUpLink(node);
  return Status::Ok();
}

}  // namespace tusk::fs
