#include "fs/snapshot_fs.h"
#include "fs/snapshot_fs_internal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <mutex>

namespace tusk::fs {
namespace {

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

// Deterministic inode number for a node identity; 0 and 1 are reserved.
uint64_t InoOf(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then one strong mix
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  h = Mix(h) & 0x7fffffffffffffffull;
  return h < 2 ? h + 2 : h;
}

const char kZeros[1 << 16] = {};
// Reads up to this size that do not continue the previous one are served
// from the touched blocks of a chunk instead of loading the whole chunk.
constexpr uint64_t kSmallRead = 64 * 1024;

}  // namespace

SnapshotFs::SnapshotFs(Repository* repo, FsOptions options)
    : repo_(repo),
      options_(std::move(options)),
      chunks_(repo, options_.chunk_cache_bytes, options_.prefetch_threads),
      trees_(repo, options_.tree_cache_bytes),
      mount_time_(static_cast<int64_t>(::time(nullptr))) {
  auto root = std::make_shared<Node>();
  root->ino = kRootIno;
  root->key = "/";
  root->lookups = 1;
  if (options_.pinned_tree) {
    root->kind = NodeKind::kCommitRoot;
    root->dataset = *options_.pinned_dataset;
    root->candidate = true;
    root->entry.tree = *options_.pinned_tree;
    root->commit_time = mount_time_;
    root->path = root->dataset + "@candidate:";
  } else if (options_.pinned_commit) {
    root->kind = NodeKind::kCommitRoot;
    root->dataset = *options_.pinned_dataset;
    root->commit = *options_.pinned_commit;
    if (options_.on_commit) (void)options_.on_commit(*root->commit);  // the mount also adds it before serving
    auto c = repo_->ReadCommit(*root->commit);
    if (c.ok()) {
      root->entry.tree = c->root;
      root->commit_time = c->time_sec;
    }
    root->path = root->dataset + "@" + root->commit->ShortHex() + ":";
  } else {
    root->kind = NodeKind::kStoreRoot;
    root->volatile_name = true;
    root->path = "";
  }
  nodes_[kRootIno] = root;
}

SnapshotFs::~SnapshotFs() = default;

void SnapshotFs::Log(const std::string& msg) {
  if (options_.log) options_.log(msg);
}

std::shared_ptr<SnapshotFs::Node> SnapshotFs::Get(uint64_t ino) {
  std::shared_lock lock(mu_);
  auto it = nodes_.find(ino);
  return it == nodes_.end() ? nullptr : it->second;
}

size_t SnapshotFs::node_count() {
  std::shared_lock lock(mu_);
  return nodes_.size();
}

std::shared_ptr<SnapshotFs::Node> SnapshotFs::Register(std::shared_ptr<Node> node, uint64_t lookups) {
  std::unique_lock lock(mu_);
  uint64_t ino = InoOf(node->key);
  for (;;) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) break;
    if (it->second->key == node->key) {
      it->second->lookups += lookups;
      return it->second;
    }
    ino = ino + 1 < 2 ? 2 : ino + 1;  // a hash collision: probe on
  }
  node->ino = ino;
  node->lookups = lookups;
  nodes_[ino] = node;
  return node;
}

void SnapshotFs::Forget(uint64_t ino, uint64_t count) {
  if (ino == kRootIno) return;
  std::unique_lock lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  uint64_t now = it->second->lookups.load();
  if (count >= now) {
    for (const auto& key : it->second->ws_keys) {
      auto k = ws_keys_.find(key);
      if (k != ws_keys_.end() && k->second == ino) ws_keys_.erase(k);
    }
    nodes_.erase(it);
  } else {
    it->second->lookups -= count;
  }
}

Attr SnapshotFs::AttrOf(const Node& n) {
  Attr a;
  a.ino = n.ino;
  a.uid = ::getuid();
  a.gid = ::getgid();
  switch (n.kind) {
    case NodeKind::kStoreRoot:
    case NodeKind::kDataset:
      a.mode = S_IFDIR | 0555;
      a.nlink = 2;
      a.mtime_sec = mount_time_;
      a.size = 4096;
      a.blocks = 8;
      break;
    case NodeKind::kCommitRoot: {
      a.mode = S_IFDIR | 0755;
      uint32_t subdirs = 0;
      if (n.commit) {
        auto count = trees_.SubdirCount(n.entry.tree);
        if (count.ok()) subdirs = *count;
      }
      a.nlink = 2 + subdirs;
      a.mtime_sec = n.commit_time ? n.commit_time : mount_time_;
      a.size = 4096;
      a.blocks = 8;
      break;
    }
    case NodeKind::kDir: {
      a.mode = n.entry.mode;
      a.uid = n.entry.uid;
      a.gid = n.entry.gid;
      auto count = trees_.SubdirCount(n.entry.tree);
      a.nlink = 2 + (count.ok() ? *count : 0);
      a.mtime_sec = n.entry.mtime_sec;
      a.mtime_nsec = n.entry.mtime_nsec;
      a.size = 4096;
      a.blocks = 8;
      break;
    }
    case NodeKind::kWsRoot:
    case NodeKind::kWsEntry:
      a.mode = S_IFDIR | 0755;  // only when its workspace cannot say (see Reply)
      a.nlink = 2;
      a.mtime_sec = mount_time_;
      break;
    case NodeKind::kFile:
    case NodeKind::kSymlink:
      a.mode = n.entry.mode;
      a.uid = n.entry.uid;
      a.gid = n.entry.gid;
      a.nlink = n.nlink;
      a.size = n.entry.size;
      a.rdev = n.entry.rdev;
      a.blocks = (n.stored_bytes + 511) / 512;
      a.mtime_sec = n.entry.mtime_sec;
      a.mtime_nsec = n.entry.mtime_nsec;
      break;
  }
  return a;
}

EntryReply SnapshotFs::Reply(const Node& n) {
  if (n.ws) {
    auto a = n.ws->Stat(n.kind == NodeKind::kWsRoot ? std::string() : WsPath(n));
    if (a.ok()) return WsReply(n, *a);
  }
  EntryReply r;
  r.attr = AttrOf(n);
  bool virtual_dir = n.kind == NodeKind::kStoreRoot || n.kind == NodeKind::kDataset;
  r.entry_timeout = n.volatile_name ? kVolatileTimeout : kImmutableTimeout;
  r.attr_timeout = virtual_dir ? kVolatileTimeout : kImmutableTimeout;
  return r;
}

std::shared_ptr<SnapshotFs::Node> SnapshotFs::ChildFromEntry(const Node& parent, const TreeEntry& e) {
  auto node = std::make_shared<Node>();
  // A special entry (fifo, socket, device) is a kFile node of size 0: the
  // kernel serves opens of such inodes itself and never reads them here.
  node->kind = e.kind == EntryKind::kDirectory ? NodeKind::kDir
               : e.kind == EntryKind::kSymlink ? NodeKind::kSymlink
                                               : NodeKind::kFile;
  node->key = std::to_string(parent.ino) + "/" + e.name;
  node->view_ino = parent.kind == NodeKind::kCommitRoot ? parent.ino : parent.view_ino;
  if (e.link_group && e.kind != EntryKind::kDirectory && parent.commit) {
    // Every name of a hard-link group is one inode (of this view).
    auto count = LinkCount(*parent.commit, *e.link_group);
    if (count.ok()) {
      node->nlink = *count;
      node->key = "G" + std::to_string(node->view_ino) + ":" + std::to_string(*e.link_group);
    } else {
      Log("counting the hard links of " + parent.path + "/" + e.name + ": " + count.status().message());
    }
  }
  node->path = parent.path + "/" + e.name;
  node->dataset = parent.dataset;
  node->commit = parent.commit;
  node->commit_time = parent.commit_time;
  node->entry = e;
  node->parent_tree = parent.entry.tree;
  node->parent_entries = parent.entry.size;
  if (e.kind == EntryKind::kFile) {
    node->chunk_ends.reserve(e.chunks.size());
    uint64_t end = 0;
    for (const auto& c : e.chunks) {
      end += c.length;
      node->chunk_ends.push_back(end);
      if (!c.IsHole()) node->stored_bytes += c.length;
    }
  }
  return node;
}

Result<uint32_t> SnapshotFs::LinkCount(const ObjectId& commit, uint64_t group) {
  std::shared_ptr<const std::unordered_map<uint64_t, uint32_t>> counts;
  {
    std::lock_guard lock(links_mu_);
    auto it = link_counts_.find(commit);
    if (it != link_counts_.end()) counts = it->second;
  }
  if (!counts) {
    TUSK_ASSIGN_OR_RETURN(Commit c, repo_->ReadCommit(commit));
    auto made = std::make_shared<std::unordered_map<uint64_t, uint32_t>>();
    std::vector<ObjectId> dirs{c.root};
    while (!dirs.empty()) {
      ObjectId dir = dirs.back();
      dirs.pop_back();
      TUSK_RETURN_IF_ERROR(ForEachEntry(*repo_, dir, [&](const TreeEntry& e) {
        if (e.kind == EntryKind::kDirectory)
          dirs.push_back(e.tree);
        else if (e.link_group)
          (*made)[*e.link_group] += 1;
        return true;
      }));
    }
    std::lock_guard lock(links_mu_);
    if (link_counts_.size() >= 64) link_counts_.clear();  // a few commits with hard links are mounted at once
    link_counts_[commit] = made;
    counts = made;
  }
  auto it = counts->find(group);
  return it == counts->end() ? 1u : it->second;
}

Result<std::shared_ptr<SnapshotFs::Node>> SnapshotFs::CommitRoot(const Node& dataset, std::string_view name,
                                                                 const std::optional<ObjectId>& commit,
                                                                 bool volatile_name) {
  auto node = std::make_shared<Node>();
  node->kind = NodeKind::kCommitRoot;
  node->dataset = dataset.dataset;
  node->commit = commit;
  node->volatile_name = volatile_name;
  node->key = std::to_string(dataset.ino) + "/" + std::string(name) + "#" + (commit ? commit->Hex() : "none");
  node->path = dataset.dataset + "@" + (commit ? commit->ShortHex() : std::string(name)) + ":";
  if (commit && options_.on_commit) TUSK_RETURN_IF_ERROR(options_.on_commit(*commit));
  if (commit) {
    TUSK_ASSIGN_OR_RETURN(Commit c, repo_->ReadCommit(*commit));
    node->entry.tree = c.root;
    node->commit_time = c.time_sec;
  }
  return node;
}

Result<std::shared_ptr<SnapshotFs::Node>> SnapshotFs::MakeChild(const Node& parent, std::string_view name) {
  switch (parent.kind) {
    case NodeKind::kStoreRoot: {
      std::string ds(name);
      if (!ValidateName("dataset", ds).ok()) return Status::NotFound("no such dataset");
      TUSK_RETURN_IF_ERROR(repo_->CheckDataset(ds));
      auto node = std::make_shared<Node>();
      node->kind = NodeKind::kDataset;
      node->dataset = ds;
      node->volatile_name = true;
      node->key = "1/" + ds;
      node->path = ds;
      return node;
    }
    case NodeKind::kDataset: {
      if (!name.empty() && name[0] == '@') {
        RefSpec spec;
        spec.dataset = parent.dataset;
        spec.rev = std::string(name.substr(1));
        spec.text = parent.dataset + std::string(name);
        if (!ValidateName("ref", spec.rev).ok()) return Status::NotFound("no such ref");
        TUSK_ASSIGN_OR_RETURN(ObjectId id, repo_->Resolve(spec));
        // Only a commit named by its id never changes; a name that is (also)
        // a branch or tag may move, so it is re-resolved like a branch.
        TUSK_ASSIGN_OR_RETURN(auto tags, repo_->ListTags(parent.dataset));
        TUSK_ASSIGN_OR_RETURN(auto branches, repo_->ListBranches(parent.dataset));
        auto named = [&](const RefInfo& r) { return r.name == spec.rev; };
        bool movable = std::any_of(tags.begin(), tags.end(), named) || std::any_of(branches.begin(), branches.end(), named);
        return CommitRoot(parent, name, id, movable);
      }
      std::string branch(name);
      if (!ValidateName("branch", branch).ok()) return Status::NotFound("no such branch");
      TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> head, repo_->GetBranch(parent.dataset, branch));
      if (options_.workspaces) {
        auto ws = WsRoot(parent, branch);
        if (ws.ok() || ws.status().code() != Status::Code::kAlreadyExists) return ws;
        // Another process holds this workspace: serve the branch read-only.
      }
      return CommitRoot(parent, name, head, true);
    }
    case NodeKind::kCommitRoot:
    case NodeKind::kDir: {
      if (parent.kind == NodeKind::kCommitRoot && !parent.commit && !parent.candidate)
        return Status::NotFound("empty branch");
      TUSK_ASSIGN_OR_RETURN(std::optional<TreeEntry> e, trees_.Lookup(parent.entry.tree, parent.entry.size, name));
      if (!e) return Status::NotFound("no such file");
      return ChildFromEntry(parent, *e);
    }
    case NodeKind::kFile:
    case NodeKind::kSymlink:
      return Status::FromErrno(ENOTDIR, "not a directory");
    case NodeKind::kWsRoot:
    case NodeKind::kWsEntry:
      break;  // Lookup handles workspaces
  }
  return Status::NotFound("no such entry");
}

Result<EntryReply> SnapshotFs::Lookup(uint64_t parent_ino, std::string_view name) {
  auto parent = Get(parent_ino);
  if (!parent) return Status::NotFound("stale inode");
  if (parent->ws) return WsLookupNew(parent, name);
  auto made = MakeChild(*parent, name);
  if (!made.ok()) {
    if (made.status().code() == Status::Code::kCorruption)
      Log("lookup of " + parent->path + "/" + std::string(name) + " failed: " + made.status().message());
    return made.status();
  }
  std::shared_ptr<Node> child = Register(std::move(made).value(), 1);
  return Reply(*child);
}

Result<EntryReply> SnapshotFs::GetAttr(uint64_t ino, uint64_t fh) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (node->ws) {
    // A descriptor's view of its file (it may be unlinked, or from a base the
    // workspace has since moved away from, which the path no longer shows):
    // the kernel names the handle for fstat only sometimes, so for a node of
    // an older base any open handle of it speaks for it.
    std::shared_ptr<FileHandle> handle = fh ? GetFile(fh) : nullptr;
    if (!handle && node->ws_generation != node->ws->generation()) {
      std::shared_lock lock(mu_);
      for (const auto& [id, h] : files_)
        if (h->node == node) handle = h;
    }
    if (handle) {
      TUSK_ASSIGN_OR_RETURN(WsAttr a, handle->file->Stat());
      return WsReply(*node, a);
    }
  }
  if (node->ws) {
    if (node->detached && node->last_attr) return WsReply(*node, *node->last_attr);
    TUSK_ASSIGN_OR_RETURN(WsAttr a, node->ws->Stat(WsPath(*node)));
    if (node->ws_base_linked && a.upper_ino != 0) WsNoteCopiedUpLink(node);
    return WsReply(*node, a);
  }
  return Reply(*node);
}

bool SnapshotFs::IsImmutableDir(uint64_t parent) {
  auto node = Get(parent);
  return node && (node->kind == NodeKind::kDir || node->kind == NodeKind::kCommitRoot);
}

void SnapshotFs::NoteOpen(uint64_t ino, ReadLog& log) {
  auto node = Get(ino);
  if (!node || node->ws) return;
  if (node->kind != NodeKind::kFile && node->kind != NodeKind::kSymlink && node->kind != NodeKind::kDir &&
      node->kind != NodeKind::kCommitRoot)
    return;
  // node->path is "dataset@commit:/a/b" (dataset names have no ':').
  size_t colon = node->path.find(':');
  if (colon == std::string::npos) return;
  std::string rel = node->path.substr(colon + 1);
  if (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  // A symlink followed counts as read: a new target is a new input.
  if (node->kind == NodeKind::kFile || node->kind == NodeKind::kSymlink) log.NoteFile(std::move(rel), node->entry);
  else log.NoteDir(std::move(rel));
}

bool SnapshotFs::ClaimPush(uint64_t ino, uint64_t max_size) {
  auto node = Get(ino);
  if (!node || node->ws || node->kind != NodeKind::kFile) return false;
  if (node->entry.size == 0 || node->entry.size > max_size) return false;
  return !node->pushed.exchange(true);
}

Result<uint64_t> SnapshotFs::OpenDir(uint64_t ino, bool* immutable) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  auto handle = std::make_shared<DirHandle>();
  handle->dir = node;
  *immutable = false;
  switch (node->kind) {
    case NodeKind::kStoreRoot: {
      TUSK_ASSIGN_OR_RETURN(auto datasets, repo_->ListDatasets());
      for (const auto& d : datasets) handle->names.push_back(d.name);
      break;
    }
    case NodeKind::kDataset: {
      TUSK_ASSIGN_OR_RETURN(auto branches, repo_->ListBranches(node->dataset));
      for (const auto& b : branches) {
        handle->names.push_back(b.name);
        handle->commits.push_back(b.commit);
      }
      TUSK_ASSIGN_OR_RETURN(auto tags, repo_->ListTags(node->dataset));
      for (const auto& t : tags) {
        handle->names.push_back("@" + t.name);
        handle->commits.push_back(t.commit);
      }
      break;
    }
    case NodeKind::kWsRoot:
    case NodeKind::kWsEntry:
      TUSK_RETURN_IF_ERROR(WsOpenDir(node, handle.get()));
      break;
    case NodeKind::kCommitRoot:
    case NodeKind::kDir:
      *immutable = true;
      if (node->kind == NodeKind::kCommitRoot && !node->commit && !node->candidate) {
        handle->listing = std::make_shared<const std::vector<TreeEntry>>();
      } else {
        auto listing = trees_.List(node->entry.tree);
        if (!listing.ok()) {
          if (listing.status().code() == Status::Code::kCorruption)
            Log("listing of " + node->path + "/ failed: " + listing.status().message());
          return listing.status();
        }
        handle->listing = std::move(listing).value();
      }
      break;
    default:
      return Status::FromErrno(ENOTDIR, "not a directory");
  }
  uint64_t id = next_handle_++;
  std::unique_lock lock(mu_);
  handles_[id] = std::move(handle);
  return id;
}

void SnapshotFs::ReleaseDir(uint64_t handle) {
  std::unique_lock lock(mu_);
  handles_.erase(handle);
}

Status SnapshotFs::ReadDir(uint64_t handle_id, uint64_t offset, bool plus,
                           const std::function<bool(const DirItem&, const EntryReply*)>& emit) {
  std::shared_ptr<DirHandle> h;
  {
    std::shared_lock lock(mu_);
    auto it = handles_.find(handle_id);
    if (it == handles_.end()) return Status::FromErrno(EBADF, "bad directory handle");
    h = it->second;
  }
  const Node& dir = *h->dir;
  // Offsets: 0 start, 1 after ".", 2 after "..", 2+i+1 after entry i.
  if (offset == 0) {
    if (!emit({".", S_IFDIR, dir.ino, 1}, nullptr)) return Status::Ok();
    offset = 1;
  }
  if (offset == 1) {
    if (!emit({"..", S_IFDIR, kRootIno, 2}, nullptr)) return Status::Ok();
    offset = 2;
  }
  if (dir.ws) {
    // Workspace listings are not answered "plus": their entries change, and
    // the lookups that follow are cheap.
    for (size_t i = offset - 2; i < h->ws_entries.size(); i++) {
      const WsDirEntry& e = h->ws_entries[i];
      uint64_t ino = 0;
      {
        std::shared_lock lock(mu_);
        auto k = ws_keys_.find(std::to_string(dir.ino) + "/" + e.name);
        ino = k != ws_keys_.end() ? k->second : InoOf(std::to_string(dir.ino) + "/" + e.name);
      }
      if (!emit({e.name, e.mode, ino, i + 3}, nullptr)) return Status::Ok();
    }
    return Status::Ok();
  }
  size_t count = h->listing ? h->listing->size() : h->names.size();
  for (size_t i = offset - 2; i < count; i++) {
    std::shared_ptr<Node> child;
    if (h->listing) {
      child = ChildFromEntry(dir, (*h->listing)[i]);
    } else if (dir.kind == NodeKind::kStoreRoot) {
      auto made = MakeChild(dir, h->names[i]);
      if (!made.ok()) continue;  // deleted meanwhile
      child = *made;
    } else {
      const std::string& name = h->names[i];
      auto made = options_.workspaces && name[0] != '@' ? MakeChild(dir, name) : CommitRoot(dir, name, h->commits[i], true);
      if (!made.ok()) {
        if (made.status().code() == Status::Code::kNotFound) continue;  // deleted meanwhile
        return made.status();
      }
      child = *made;
    }
    DirItem item{h->listing ? (*h->listing)[i].name : h->names[i], 0, 0, i + 3};
    if (!plus) {
      child->ino = InoOf(child->key);
      item.mode = AttrOf(*child).mode;
      item.ino = child->ino;
      if (!emit(item, nullptr)) return Status::Ok();
      continue;
    }
    auto registered = Register(child, 1);
    EntryReply reply = Reply(*registered);
    item.mode = reply.attr.mode;
    item.ino = registered->ino;
    if (!emit(item, &reply)) {
      Forget(registered->ino, 1);  // the kernel never saw it
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Result<std::vector<Slice>> SnapshotFs::Read(uint64_t ino, uint64_t offset, size_t size, uint64_t fh) {
  if (fh != 0) {
    auto handle = GetFile(fh);
    if (!handle) return Status::FromErrno(EBADF, "bad file handle");
    auto read = handle->file->Read(offset, size);
    if (!read.ok()) {
      if (read.status().code() == Status::Code::kCorruption) {
        Log("read of " + handle->node->path + " failed: " + read.status().message());
        return Status::Corruption(read.status().message());
      }
      return read.status();
    }
    std::string data = std::move(read).value();
    auto hold = std::make_shared<const std::string>(std::move(data));
    std::vector<Slice> out;
    if (!hold->empty()) out.push_back({hold->data(), hold->size(), hold});
    return out;
  }
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (node->ws) return Status::FromErrno(EBADF, "workspace files are read through an open handle");
  if (node->kind != NodeKind::kFile) return Status::FromErrno(EISDIR, "not a regular file");
  std::vector<Slice> out;
  const auto& chunks = node->entry.chunks;
  uint64_t end = std::min<uint64_t>(node->entry.size, offset + size);
  if (offset >= end) return out;
  size_t i = static_cast<size_t>(std::upper_bound(node->chunk_ends.begin(), node->chunk_ends.end(), offset) -
                                 node->chunk_ends.begin());
  // A failure keeps its errno to the reply (EMFILE, ENOMEM, ...); only
  // damaged data is logged, as the operator must act on it.
  auto failed = [&](const Status& st) {
    if (st.code() == Status::Code::kCorruption) Log("read of " + node->path + " failed: " + st.message());
    // The store cannot reach the data (a remote without credentials, or no
    // longer configured): not the reader's mistake, so EIO rather than
    // EINVAL, and the operator reads why in the log.
    if (st.code() == Status::Code::kInvalidArgument || st.code() == Status::Code::kUnsupported) {
      Log("read of " + node->path + " failed: " + st.message());
      return Status::FromErrno(EIO, st.message());
    }
    return st;
  };
  // Sequential readers get the next chunks loaded in the background.
  bool sequential = node->next_sequential.exchange(end) == offset;
  if (repo_->has_remote_packs() && (sequential || offset == 0)) {
    // Data on a remote: a whole window in a few large requests, before this
    // read waits for its chunk (which the window includes).
    RemoteReadAhead(*node, i);
    if (offset == 0) RemoteReadAheadFiles(*node);
  }
  for (uint64_t pos = offset; pos < end && i < chunks.size(); i++) {
    uint64_t chunk_start = node->chunk_ends[i] - chunks[i].length;
    uint64_t from = pos - chunk_start;
    uint64_t len = std::min<uint64_t>(chunks[i].length - from, end - pos);
    if (chunks[i].IsHole()) {
      for (uint64_t left = len; left > 0;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, sizeof kZeros));
        out.push_back({kZeros, n, nullptr});
        left -= n;
      }
      pos += len;
      continue;
    }
    ChunkCache::Data data = chunks_.Peek(chunks[i].id);
    if (!data && !sequential && len <= kSmallRead && len * 4 <= chunks[i].length &&
        node->entry.size > chunks_.capacity() / 2) {
      // A random small read, in a file too large for the chunk cache to hold,
      // of a chunk not in memory: read, verify (and decompress) only the raw
      // blocks or zstd frames it touches; the kernel's page cache keeps what
      // was read. Files that fit are better served by caching whole chunks;
      // chunks without a range table (one zstd frame) are loaded whole.
      auto part = repo_->ReadChunkRange(chunks[i], from, static_cast<size_t>(len));
      if (part.ok()) {
        auto hold = std::make_shared<const std::string>(std::move(part).value());
        out.push_back({hold->data(), hold->size(), hold});
        pos += len;
        continue;
      }
      if (part.status().code() != Status::Code::kUnsupported) return failed(part.status());
    }
    if (!data) {
      auto loaded = chunks_.Get(chunks[i].id);
      if (!loaded.ok()) return failed(loaded.status());
      data = std::move(loaded).value();
    }
    // However the chunk was found (cached for another file, or loaded), the
    // tree's length for it is checked before it bounds what is sent.
    if (Status length = CheckChunkLength(chunks[i], data->size()); !length.ok()) return failed(length);
    out.push_back({data->data() + from, static_cast<size_t>(len), data});
    pos += len;
  }
  if (sequential) {
    size_t last = std::min(chunks.size(), i + options_.readahead_chunks);
    for (size_t k = i; k < last; k++)
      if (!chunks[k].IsHole()) chunks_.Prefetch(chunks[k].id);
  }
  if (offset == 0) PrefetchNextFiles(*node);
  return out;
}

void SnapshotFs::PrefetchNextFiles(const Node& file) {
  // Programs that read a directory's files in order (data loaders, tar,
  // cp -r) get the next files' first chunks loaded while they process this
  // one: readahead across files, which the kernel cannot do for us.
  if (options_.readahead_files == 0 || file.parent_entries > 65536) return;
  auto listing = trees_.List(file.parent_tree);
  if (!listing.ok()) return;
  const auto& entries = **listing;
  auto it = std::lower_bound(entries.begin(), entries.end(), file.entry.name,
                             [](const TreeEntry& e, const std::string& n) { return e.name < n; });
  if (it == entries.end()) return;
  unsigned queued = 0;
  for (++it; it != entries.end() && queued < options_.readahead_files; ++it) {
    if (it->kind != EntryKind::kFile || it->chunks.empty() || it->chunks[0].IsHole()) continue;
    chunks_.Prefetch(it->chunks[0].id);
    queued++;
  }
}

void SnapshotFs::RemoteReadAhead(Node& file, size_t i) {
  const auto& chunks = file.entry.chunks;
  if (i >= chunks.size()) return;
  const uint64_t window = options_.remote_readahead_bytes;
  uint64_t here = file.chunk_ends[i] - chunks[i].length;
  size_t ahead = file.remote_ahead.load();
  // Asked far enough ahead already: ask again only past half the window, so
  // each request is half a window, not a chunk.
  if (ahead > i && (ahead >= chunks.size() || file.chunk_ends[ahead - 1] - here >= window / 2)) return;
  size_t from = std::max(ahead, i), to = from;
  while (to < chunks.size() && (to == from || file.chunk_ends[to - 1] - here < window)) to++;
  if (!file.remote_ahead.compare_exchange_strong(ahead, to)) return;  // another read asked
  std::vector<ObjectId> ids;
  for (size_t k = from; k < to; k++)
    if (!chunks[k].IsHole()) ids.push_back(chunks[k].id);
  // Read-ahead only: a failure shows when the reader needs the chunk.
  (void)repo_->FetchRemoteChunks(ids, /*wait=*/false);
}

void SnapshotFs::RemoteReadAheadFiles(const Node& file) {
  if (options_.remote_readahead_files == 0 || file.parent_entries > 65536) return;
  auto listing = trees_.List(file.parent_tree);
  if (!listing.ok()) return;
  const auto& entries = **listing;
  size_t k = static_cast<size_t>(std::lower_bound(entries.begin(), entries.end(), file.entry.name,
                                                  [](const TreeEntry& e, const std::string& n) { return e.name < n; }) -
                                 entries.begin());
  if (k >= entries.size()) return;
  size_t from, to;
  {
    std::lock_guard lock(remote_dirs_mu_);
    size_t& ahead = remote_dirs_ahead_[file.parent_tree];
    if (ahead > k + 1 && ahead - (k + 1) >= options_.remote_readahead_files / 2) return;
    from = to = std::max(ahead, k + 1);
    uint64_t bytes = 0;
    while (to < entries.size() && to - from < options_.remote_readahead_files &&
           bytes < options_.remote_readahead_files_bytes)
      bytes += entries[to++].size;
    ahead = to;
    if (remote_dirs_ahead_.size() > 4096) {  // a bound, not a cache: forget and start again
      size_t keep = ahead;
      remote_dirs_ahead_.clear();
      remote_dirs_ahead_[file.parent_tree] = keep;
    }
  }
  std::vector<ObjectId> ids;
  for (size_t e = from; e < to; e++) {
    const TreeEntry& entry = entries[e];
    if (entry.kind != EntryKind::kFile) continue;
    for (const ChunkRef& c : entry.chunks)
      if (!c.IsHole()) ids.push_back(c.id);
  }
  (void)repo_->FetchRemoteChunks(ids, /*wait=*/false);
}

Result<std::string> SnapshotFs::ReadLink(uint64_t ino) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (node->ws) return node->ws->ReadLink(WsPath(*node));
  if (node->kind != NodeKind::kSymlink) return Status::InvalidArgument("not a symlink");
  return node->entry.target;
}

Result<std::string> SnapshotFs::GetXattr(uint64_t ino, std::string_view name) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (node->ws) {
    if (name == kCommitXattr) {
      if (node->ws_base) return node->ws_base->Hex();  // the commit the workspace was at
      return Status::FromErrno(ENODATA, "no commit yet");
    }
    if (name.substr(0, 5) != "user.") return Status::FromErrno(ENOTSUP, "attribute namespace not supported");
    return node->ws->GetXattr(WsPath(*node), name);
  }
  if (name == kCommitXattr && node->commit) return node->commit->Hex();
  // Only user.* attributes exist here. Saying "unsupported" (rather than "no
  // such attribute") for the other namespaces lets tools like ls stop asking
  // for SELinux labels and ACLs on this filesystem after the first file.
  if (name.substr(0, 5) != "user.") return Status::FromErrno(ENOTSUP, "attribute namespace not supported");
  // The entry's recorded xattrs (sorted by name); virtual nodes have none.
  const auto& xattrs = node->entry.xattrs;
  auto it = std::lower_bound(xattrs.begin(), xattrs.end(), name,
                             [](const auto& x, std::string_view n) { return x.first < n; });
  if (it != xattrs.end() && it->first == name) return it->second;
  return Status::FromErrno(ENODATA, "no such attribute");
}

Result<std::vector<std::string>> SnapshotFs::ListXattr(uint64_t ino) {
  auto node = Get(ino);
  if (!node) return Status::NotFound("stale inode");
  if (node->ws) {
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, node->ws->ListXattr(WsPath(*node)));
    if (node->ws_base) names.push_back(kCommitXattr);
    return names;
  }
  std::vector<std::string> names;
  for (const auto& x : node->entry.xattrs) names.push_back(x.first);
  if (node->commit) names.push_back(kCommitXattr);
  return names;
}

}  // namespace tusk::fs
