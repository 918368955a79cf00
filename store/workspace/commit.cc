// Turning the merged view into trees: Changes (a dry run compared with the
// base by DiffTrees), Commit (compare-and-set on the branch, with the `next`
// file for crash recovery, then the cleanup of upper) and Reset.
//
// Building works in two passes, like the importer: a scan walks the upper
// directories merged with their base trees, reuses every subtree upper does
// not touch (by id, unread) and submits the content that changed to a
// ChunkPipeline; once the pipeline is done, the trees are written bottom-up.
// A file keeps the ChunkRefs of its base chunks still in the store, and of
// copied-up chunks whose bytes hash to the same id; maximal runs of the rest
// are chunked anew, cut at the runs' ends.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

#include "store/diff.h"
#include "store/internal/chunk_pipeline.h"
#include "store/internal/file.h"
#include "store/internal/stat_entry.h"
#include "store/workspace/workspace_core.h"

namespace tusk {
namespace ws {
namespace {

// Tree pages written by a build, readable before they are indexed (a
// WriteSession's objects become readable only when it commits).
class RecordingStore : public ObjectSink, public ObjectSource {
 public:
  RecordingStore(WriteSession* session, ObjectSource* fallback) : session_(session), fallback_(fallback) {}
  Result<ObjectId> WriteObject(ObjectType type, std::string encoding) override {
    ObjectId id;
    if (session_) {
      TUSK_ASSIGN_OR_RETURN(id, session_->WriteObject(type, encoding));
    } else {
      id = HashObject(type, encoding);
    }
    written_.emplace(id, std::move(encoding));
    return id;
  }
  Result<std::string> ReadObject(const ObjectId& id, ObjectType type) override {
    auto it = written_.find(id);
    if (it != written_.end()) return it->second;
    return fallback_->ReadObject(id, type);
  }

 private:
  WriteSession* session_;
  ObjectSource* fallback_;
  std::unordered_map<ObjectId, std::string, ObjectIdHash> written_;
};

struct Segment {
  bool reused = false;
  ChunkRef ref;              // reused
  uint8_t in_upper = 0;      // reused: whether the upper file holds it too
  std::deque<ChunkRef> run;  // chunked anew (ids filled by the pipeline)
};

struct FilePlan {
  TreeEntry* entry;
  std::deque<Segment> segments;
  uint64_t dev = 0, ino = 0;
  std::vector<uint8_t> in_upper;  // per final chunk, after Assemble
  void Assemble() {
    entry->chunks.clear();
    for (auto& s : segments) {
      if (s.reused) {
        entry->chunks.push_back(s.ref);
        in_upper.push_back(s.in_upper);
      } else {
        for (auto& c : s.run) {
          entry->chunks.push_back(c);
          in_upper.push_back(1);
        }
      }
    }
  }
};

struct DirPlan {
  std::deque<TreeEntry> entries;                  // deque: FilePlans point into it
  std::vector<std::unique_ptr<DirPlan>> subdirs;  // aligned; null: not rebuilt
};

// The names of one upper inode with more than one link, in scan order.
struct LinkSet {
  std::vector<TreeEntry*> entries;
  std::vector<std::string> paths;
  std::vector<std::optional<uint64_t>> base_groups;  // the group of the base entry each name replaces
  FilePlan* plan = nullptr;                          // regular files: the plan of the first name
};

class TreeBuilder {
 public:
  TreeBuilder(WsCore* core, RecordingStore* sink, ChunkPipeline* pipeline)
      : core_(core),
        sink_(sink),
        pipeline_(pipeline),
        chunker_(core->repo->config().chunker),
        buf_(std::max<size_t>(8 << 20, 2 * chunker_.params().max_size)) {}

  // Plans the merged directory `rel` (an upper directory).
  Status Scan(const std::string& rel, bool opaque, const std::optional<ObjectId>& base_tree, DirPlan* out);
  // After the pipeline finished: chunk lists, then trees bottom-up.
  Result<ObjectId> Write(DirPlan* plan);
  void Assemble() {
    for (auto& f : files_) f.Assemble();
    for (auto& [key, set] : links_)
      if (set.plan)
        for (size_t i = 1; i < set.entries.size(); i++) set.entries[i]->chunks = set.plan->entry->chunks;
  }
  // Numbers the hard-link groups (inodes with two or more names). A group
  // whose names all replace names of one base group, while no other name
  // of that base group remains, keeps its number (so an unchanged group is
  // no change); others get numbers above every number of the base.
  Status NumberLinkGroups();

  int64_t files_delta = 0, bytes_delta = 0;
  // The plan of each upper inode (hard links: the first name).
  std::map<std::pair<uint64_t, uint64_t>, FilePlan*> by_inode;
  // Every name of each upper inode with more than one.
  std::map<std::pair<uint64_t, uint64_t>, std::vector<std::string>> names_of_inode() const;

 private:
  Status PlanFile(const std::string& rel, const struct stat& st, const std::optional<TreeEntry>& base,
                  TreeEntry* entry);
  Status AddRun(int fd, const std::string& rel, uint64_t begin, uint64_t end, FilePlan* plan);
  Result<bool> SameContent(int fd, const std::string& rel, uint64_t offset, const ChunkRef& chunk);
  Status Subtract(const TreeEntry& e);
  // Plans the upper non-directory `u` at `child` (whose base entry, if any,
  // is `b`) as the last entry of `out`.
  Status PlanNonDirectory(const std::string& child, const std::string& name, const struct stat& u,
                          const std::optional<TreeEntry>& b, DirPlan* out);

  WsCore* core_;
  RecordingStore* sink_;
  ChunkPipeline* pipeline_;
  Chunker chunker_;
  std::vector<char> buf_;
  std::deque<FilePlan> files_;
  std::map<std::pair<uint64_t, uint64_t>, LinkSet> links_;
  std::vector<LinkSet*> link_order_;
};

// The user xattrs an upper entry records: the `user.*` namespace without
// the workspace's own `user.tusk.*` marks.
Status ReadRecordedXattrs(WsCore* core, const std::string& rel, TreeEntry* e) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  auto all = ReadAllXattrs(at.proc());
  if (!all.ok()) return Err(all.status().sys_errno() > 0 ? all.status().sys_errno() : EIO, "read xattrs of", rel);
  for (auto& [name, value] : *all)
    if (IsRecordableXattrName(name)) e->xattrs.emplace_back(std::move(name), std::move(value));
  return Status::Ok();
}

std::map<std::pair<uint64_t, uint64_t>, std::vector<std::string>> TreeBuilder::names_of_inode() const {
  std::map<std::pair<uint64_t, uint64_t>, std::vector<std::string>> out;
  for (const auto& [key, set] : links_)
    if (set.entries.size() > 1) out[key] = set.paths;
  return out;
}

Status TreeBuilder::NumberLinkGroups() {
  bool any =
      std::any_of(link_order_.begin(), link_order_.end(), [](const LinkSet* s) { return s->entries.size() > 1; });
  if (!any) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(const BaseLinks* base, core_->LinksOfBase());
  std::set<uint64_t> used;
  uint64_t next = base->max_group + 1;
  for (LinkSet* set : link_order_) {
    if (set->entries.size() < 2) continue;
    // The base group every name replaces, if it is one and the same.
    uint64_t old_group = set->base_groups[0].value_or(0);
    for (const auto& g : set->base_groups)
      if (g.value_or(0) != old_group) old_group = 0;
    bool keep = old_group != 0 && !used.count(old_group);
    auto members = keep ? base->paths.find(old_group) : base->paths.end();
    if (members != base->paths.end()) {
      // Another name of the base group still showing from the base would
      // carry the same number into the commit.
      for (const auto& path : members->second) {
        if (std::find(set->paths.begin(), set->paths.end(), path) != set->paths.end()) continue;
        auto l = core_->Resolve(path);
        if (!l.ok()) {
          int err = l.status().sys_errno();
          if (err == ENOENT || err == ENOTDIR) continue;
          return l.status();
        }
        if (l->base_only() && l->base->link_group == old_group) {
          keep = false;
          break;
        }
      }
    }
    uint64_t group = keep ? old_group : next++;
    used.insert(group);
    for (TreeEntry* e : set->entries) e->link_group = group;
  }
  return Status::Ok();
}

Status TreeBuilder::Subtract(const TreeEntry& e) {
  if (e.kind == EntryKind::kFile) {
    files_delta--;
    bytes_delta -= static_cast<int64_t>(e.size);
  } else if (e.kind == EntryKind::kDirectory) {
    std::vector<TreeEntry> dirs;
    TUSK_RETURN_IF_ERROR(core_->store.ForEach(e.tree, [&](const TreeEntry& c) {
      if (c.kind == EntryKind::kDirectory)
        dirs.push_back(c);
      else if (c.kind == EntryKind::kFile) {
        files_delta--;
        bytes_delta -= static_cast<int64_t>(c.size);
      }
      return true;
    }));
    for (const auto& d : dirs) TUSK_RETURN_IF_ERROR(Subtract(d));
  }
  return Status::Ok();
}

Status TreeBuilder::Scan(const std::string& rel, bool opaque, const std::optional<ObjectId>& base_tree, DirPlan* out) {
  std::map<std::string, struct stat> upper;
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, core_->UpperNames(rel));
  TUSK_ASSIGN_OR_RETURN(auto dir, core_->UpperDir(rel));
  for (const auto& n : names) {
    struct stat st;
    std::string path = JoinRel(rel, n);
    if (::fstatat(dir->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Err(errno, "stat", path);
    upper.emplace(n, st);
  }
  std::vector<TreeEntry> base;
  if (base_tree && !opaque) {
    TUSK_RETURN_IF_ERROR(core_->store.ForEach(*base_tree, [&](const TreeEntry& e) {
      base.push_back(e);
      return true;
    }));
  }
  size_t bi = 0;
  auto ui = upper.begin();
  while (bi < base.size() || ui != upper.end()) {
    std::optional<TreeEntry> b;
    const std::string* name;
    const struct stat* u = nullptr;
    if (ui == upper.end() || (bi < base.size() && base[bi].name < ui->first)) {
      out->entries.push_back(base[bi++]);  // untouched: reused as it is
      out->subdirs.emplace_back();
      continue;
    }
    name = &ui->first;
    u = &ui->second;
    if (bi < base.size() && base[bi].name == *name) b = base[bi++];
    ++ui;
    std::string child = JoinRel(rel, *name);
    if (IsWhiteout(*u)) {
      if (b) TUSK_RETURN_IF_ERROR(Subtract(*b));
      continue;
    }
    if (S_ISDIR(u->st_mode)) {
      bool child_opaque = false;  // the mark only matters over a base directory
      if (b && b->kind == EntryKind::kDirectory) {
        TUSK_ASSIGN_OR_RETURN(child_opaque, core_->IsOpaque(child));
      }
      std::optional<ObjectId> child_base;
      if (b && b->kind == EntryKind::kDirectory && !child_opaque)
        child_base = b->tree;
      else if (b)
        TUSK_RETURN_IF_ERROR(Subtract(*b));
      struct stat shown = *u;
      TUSK_RETURN_IF_ERROR(core_->ShowOwner(child, -1, &shown));
      out->entries.push_back(EntryFromStat(*name, EntryKind::kDirectory, shown));
      TUSK_RETURN_IF_ERROR(ReadRecordedXattrs(core_, child, &out->entries.back()));
      out->subdirs.push_back(std::make_unique<DirPlan>());
      TUSK_RETURN_IF_ERROR(Scan(child, child_opaque, child_base, out->subdirs.back().get()));
      continue;
    }
    if (b) TUSK_RETURN_IF_ERROR(Subtract(*b));
    TUSK_RETURN_IF_ERROR(PlanNonDirectory(child, *name, *u, b, out));
  }
  return Status::Ok();
}

Status TreeBuilder::PlanNonDirectory(const std::string& child, const std::string& name, const struct stat& u,
                                     const std::optional<TreeEntry>& b, DirPlan* out) {
  const EntryKind kind = S_ISREG(u.st_mode)   ? EntryKind::kFile
                         : S_ISLNK(u.st_mode) ? EntryKind::kSymlink
                                              : EntryKind::kSpecial;
  struct stat shown = u;
  TUSK_RETURN_IF_ERROR(core_->ShowOwner(child, -1, &shown));
  out->entries.push_back(EntryFromStat(name, kind, shown));
  out->subdirs.emplace_back();
  TreeEntry* e = &out->entries.back();
  if (kind == EntryKind::kFile) {
    files_delta++;
    bytes_delta += u.st_size;
  }
  // A further name of an inode already planned: Assemble copies the chunks
  // (the rest is the inode's own, read again).
  LinkSet* set = nullptr;
  bool later_name = false;
  if (u.st_nlink > 1) {
    auto [it, inserted] = links_.try_emplace({static_cast<uint64_t>(u.st_dev), static_cast<uint64_t>(u.st_ino)});
    set = &it->second;
    if (inserted) link_order_.push_back(set);
    later_name = !inserted;
    set->entries.push_back(e);
    set->paths.push_back(child);
    set->base_groups.push_back(b ? b->link_group : std::nullopt);
  }
  TUSK_RETURN_IF_ERROR(ReadRecordedXattrs(core_, child, e));
  if (kind == EntryKind::kFile) {
    if (later_name) return Status::Ok();
    std::optional<TreeEntry> base_file;
    if (b && b->kind == EntryKind::kFile) base_file = b;
    TUSK_RETURN_IF_ERROR(PlanFile(child, u, base_file, e));
    if (set) set->plan = &files_.back();
  } else if (kind == EntryKind::kSymlink) {
    std::string target(static_cast<size_t>(u.st_size) + 1, '\0');
    TUSK_ASSIGN_OR_RETURN(UpperAt at, core_->At(child));
    ssize_t n = ::readlinkat(at.fd(), at.c_name(), target.data(), target.size());
    if (n < 0) return Err(errno, "readlink", child);
    target.resize(std::min(static_cast<size_t>(n), target.size()));
    e->target = target;
    e->size = target.size();
  }
  return Status::Ok();
}

Result<bool> TreeBuilder::SameContent(int fd, const std::string& rel, uint64_t offset, const ChunkRef& chunk) {
  const uint64_t end = offset + chunk.length;
  if (chunk.IsHole()) {
    // Zeros: no data at all there, or data that is all zero.
    off_t d = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO) return true;
      return Err(errno, "seek", rel);
    }
    for (uint64_t pos = static_cast<uint64_t>(d); pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf_.size(), end - pos));
      TUSK_RETURN_IF_ERROR(PreadAll(fd, buf_.data(), n, pos, rel));
      if (std::any_of(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(n), [](char c) { return c != 0; }))
        return false;
      pos += n;
    }
    return true;
  }
  Sha256 h;
  for (uint64_t pos = offset; pos < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf_.size(), end - pos));
    TUSK_RETURN_IF_ERROR(PreadAll(fd, buf_.data(), n, pos, rel));
    h.Update(buf_.data(), n);
    pos += n;
  }
  return h.Finish() == chunk.id;
}

Status TreeBuilder::AddRun(int fd, const std::string& rel, uint64_t begin, uint64_t end, FilePlan* plan) {
  plan->segments.emplace_back();
  ChunkSourceFile file;
  file.fd = fd;
  file.path = rel;
  file.on_short = [rel] { return Status::Conflict("file " + rel + " shrank while being committed"); };
  return ChunkFileRange(chunker_, file, begin, end, /*sparse=*/true, pipeline_, &plan->segments.back().run, &buf_);
}

Status TreeBuilder::PlanFile(const std::string& rel, const struct stat& st, const std::optional<TreeEntry>& base,
                             TreeEntry* entry) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core_->At(rel));
  int raw = ::openat(at.fd(), at.c_name(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Err(errno, "open", rel);
  Fd fd(raw);
  FilePlan& plan = files_.emplace_back();
  plan.entry = entry;
  plan.dev = st.st_dev;
  plan.ino = st.st_ino;
  by_inode.emplace(std::make_pair(plan.dev, plan.ino), &plan);
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  // The chunks the content may still share: a metacopy's own list, or the
  // base file's at this path when the size matches (a file rewritten whole).
  Sidecar side;
  TUSK_ASSIGN_OR_RETURN(std::string meta, core_->MetaIdOf(rel));
  if (!meta.empty()) {
    TUSK_ASSIGN_OR_RETURN(std::string bytes, core_->ReadSidecarFile(meta));
    TUSK_ASSIGN_OR_RETURN(side, Sidecar::Decode(bytes, "sidecar " + meta + " of " + rel));
  } else if (base && base->size == size) {
    side = Sidecar::Fresh(base->chunks);
    std::fill(side.state.begin(), side.state.end(), 1);
  }
  uint64_t pos = 0;
  std::optional<uint64_t> dirty_from;
  for (size_t i = 0; i < side.chunks.size() && side.End(i) <= size; i++) {
    const ChunkRef& c = side.chunks[i];
    bool keep = side.state[i] == 0;
    if (!keep) {
      TUSK_ASSIGN_OR_RETURN(keep, SameContent(fd.get(), rel, side.offsets[i], c));
    }
    if (keep) {
      if (dirty_from) TUSK_RETURN_IF_ERROR(AddRun(fd.get(), rel, *dirty_from, side.offsets[i], &plan));
      dirty_from.reset();
      Segment s;
      s.reused = true;
      s.ref = c;
      s.in_upper = side.state[i];
      plan.segments.push_back(std::move(s));
    } else if (!dirty_from) {
      dirty_from = side.offsets[i];
    }
    pos = side.End(i);
  }
  uint64_t from = dirty_from ? *dirty_from : pos;
  if (from < size) TUSK_RETURN_IF_ERROR(AddRun(fd.get(), rel, from, size, &plan));
  return Status::Ok();
}

Result<ObjectId> TreeBuilder::Write(DirPlan* plan) {
  for (size_t i = 0; i < plan->entries.size(); i++) {
    if (!plan->subdirs[i]) continue;
    TUSK_ASSIGN_OR_RETURN(plan->entries[i].tree, Write(plan->subdirs[i].get()));
    plan->entries[i].size = plan->subdirs[i]->entries.size();
  }
  return WriteDirectory(*sink_, std::vector<TreeEntry>(plan->entries.begin(), plan->entries.end()));
}

struct Build {
  ObjectId root;
  ObjectId old_root;  // the base's root, or the empty tree
  int64_t files_delta = 0, bytes_delta = 0;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::vector<ChunkRef>, std::vector<uint8_t>>> files;
  std::map<std::pair<uint64_t, uint64_t>, std::vector<std::string>> links;  // every name of linked upper inodes
};

// The merged view as trees; chunks and pages go to `session` (null: a dry
// run that only hashes).
Result<Build> BuildTree(WsCore& c, WriteSession* session, RecordingStore* sink) {
  Build build;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  ChunkPipeline pipeline(session, threads);
  TreeBuilder builder(&c, sink, &pipeline);
  DirPlan root;
  Status scanned = builder.Scan("", false, c.base_root, &root);
  Status finished = pipeline.Finish();
  TUSK_RETURN_IF_ERROR(scanned);
  TUSK_RETURN_IF_ERROR(finished);
  builder.Assemble();
  TUSK_RETURN_IF_ERROR(builder.NumberLinkGroups());
  build.links = builder.names_of_inode();
  TUSK_ASSIGN_OR_RETURN(build.root, builder.Write(&root));
  if (c.base_root) {
    build.old_root = *c.base_root;
  } else {
    TUSK_ASSIGN_OR_RETURN(build.old_root, WriteDirectory(*sink, std::vector<TreeEntry>()));
  }
  build.files_delta = builder.files_delta;
  build.bytes_delta = builder.bytes_delta;
  for (const auto& [key, plan] : builder.by_inode) build.files[key] = {plan->entry->chunks, plan->in_upper};
  return build;
}

// DiffTrees' view, in the workspace's terms: a rename is a deletion and an
// addition, a type change a modification.
Result<std::vector<WsChange>> ChangesBetween(ObjectSource& source, const ObjectId& old_root, const ObjectId& new_root) {
  TUSK_ASSIGN_OR_RETURN(std::vector<Change> diff, DiffTrees(source, old_root, new_root));
  std::vector<WsChange> out;
  auto add = [&](WsChangeKind kind, std::string path) {
    if (!path.empty() && path.back() == '/') path.pop_back();  // an empty directory
    out.push_back(WsChange{kind, std::move(path)});
  };
  for (const auto& d : diff) {
    switch (d.kind) {
      case Change::Kind::kAdded:
        add(WsChangeKind::kAdded, d.path);
        break;
      case Change::Kind::kDeleted:
        add(WsChangeKind::kDeleted, d.path);
        break;
      case Change::Kind::kModified:
      case Change::Kind::kTypeChanged:
        add(WsChangeKind::kModified, d.path);
        break;
      case Change::Kind::kRenamed:
        add(WsChangeKind::kDeleted, d.old_path);
        add(WsChangeKind::kAdded, d.path);
        break;
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const WsChange& a, const WsChange& b) { return a.path < b.path; });
  return out;
}

// After a commit: upper keeps only the files open through a WsFile (with
// their parent directories, no longer opaque, times unchanged), so the
// merged view is exactly the new base; kept metacopies get sidecars listing
// the committed chunks.
Status CleanupAfterCommit(WsCore& c, const Build& build) {
  std::set<std::string> keep, keep_dirs, sidecars;
  for (auto& n : c.LiveNodes()) {
    std::lock_guard lock(n->mu);
    if (!n->detached && n->fd.valid()) {
      // Every name of the file stays: they are one inode.
      std::vector<std::string> names = {n->path};
      auto linked = build.links.find({n->dev, n->ino});
      if (linked != build.links.end()) names = linked->second;
      for (const auto& name : names) {
        keep.insert(name);
        for (std::string p = ParentOf(name); !p.empty(); p = ParentOf(p)) keep_dirs.insert(p);
      }
      auto it = build.files.find({n->dev, n->ino});
      if (n->has_meta && it != build.files.end()) {
        Sidecar side = Sidecar::Fresh(it->second.first);
        side.state = it->second.second;
        Fd meta;
        TUSK_ASSIGN_OR_RETURN(std::string id, c.CreateSidecar(side, &meta));
        if (::fsetxattr(n->fd.get(), kMetaXattr, id.data(), id.size(), 0) != 0)
          return Err(errno, "set xattr of", n->path);
        n->side = std::move(side);
        n->meta_fd = std::move(meta);
        n->meta_id = id;
      }
    }
    if (n->has_meta && n->meta_fd.valid()) sidecars.insert(n->meta_id);
  }
  std::vector<std::string> cleaned;  // deepest last
  std::function<Status(const std::string&)> clean = [&](const std::string& rel) -> Status {
    cleaned.push_back(rel);
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, c.UpperNames(rel));
    struct stat self;
    TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(rel));
    if (::fstatat(at.fd(), at.c_name(), &self, AT_SYMLINK_NOFOLLOW) != 0) return Err(errno, "stat", rel);
    for (const auto& n : names) {
      std::string child = JoinRel(rel, n);
      if (keep.count(child)) continue;
      if (keep_dirs.count(child)) {
        TUSK_RETURN_IF_ERROR(clean(child));
        TUSK_ASSIGN_OR_RETURN(UpperAt child_at, c.At(child));
        if (::lremovexattr(child_at.proc().c_str(), kOpaqueXattr) != 0 && errno != ENODATA)
          return Err(errno, "unmark opaque", child);
        continue;
      }
      TUSK_RETURN_IF_ERROR(c.RemoveUpper(child));
    }
    return c.RestoreTimes(rel, self);
  };
  TUSK_RETURN_IF_ERROR(clean(""));
  // The removals durable before `next` goes (entries that came back after a
  // power loss would read as changes against the new base), and before the
  // sidecars go (see WsCore::SyncUpperNames).
  for (auto it = cleaned.rbegin(); it != cleaned.rend(); ++it) TUSK_RETURN_IF_ERROR(c.SyncUpperNames(*it));
  // Sidecars of removed files, and the kept files' previous ones.
  TUSK_RETURN_IF_ERROR(c.RemoveSidecarsExcept(sidecars));
  return c.SyncSidecarNames();
}

}  // namespace
}  // namespace ws

using ws::WsCore;

Result<std::vector<WsChange>> Workspace::Changes() {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(bool staged, c.Staged());
  if (!staged) return std::vector<WsChange>();
  std::unique_lock freeze(c.freeze);
  ws::RecordingStore sink(nullptr, &c.store);
  TUSK_ASSIGN_OR_RETURN(ws::Build build, ws::BuildTree(c, nullptr, &sink));
  return ws::ChangesBetween(sink, build.old_root, build.root);
}

Result<WsCommitResult> Workspace::Commit(const WsCommitOptions& options) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  WsCommitResult result;
  bool diverged;
  TUSK_RETURN_IF_ERROR(c.FollowBranchIfClean(&diverged));
  const std::string name = c.dataset + "@" + c.branch;
  if (c.merge) {
    if (size_t left = c.merge->Unresolved()) {
      std::string paths;
      size_t shown = 0;
      for (const auto& x : c.merge->conflicts) {
        if (x.resolved) continue;
        if (shown++ == 5) {
          paths += ", ...";
          break;
        }
        paths += (paths.empty() ? "" : ", ") + ws::QuotedRel(x.path);
      }
      return Status::InvalidArgument("cannot commit the merge of " + c.merge->source + " into " + name + ": " +
                                     std::to_string(left) + " conflicting path" + (left == 1 ? " is" : "s are") +
                                     " unresolved (" + paths + "); fix " + (left == 1 ? "it" : "them") +
                                     ", then 'tusk resolve " + name +
                                     " PATH' (or 'tusk reset " + name + "' to drop the merge)");
    }
  }
  result.parent = c.base;
  TUSK_ASSIGN_OR_RETURN(bool staged, c.Staged());
  // Nothing staged, but perhaps only since an unlink whose removal is not
  // durable yet (a new file made, synced, then deleted): made durable now,
  // or a power loss would bring the staged file back after this returned.
  if (!staged) {
    TUSK_RETURN_IF_ERROR(c.SyncUpperNames(""));
    return result;
  }
  if (!c.merge && options.message.empty()) return Status::InvalidArgument("a commit needs a message (-m)");
  if (diverged) {
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> head, c.repo->GetBranch(c.dataset, c.branch));
    return Status::Conflict("cannot commit the workspace of " + name + ": the branch moved to " +
                            (head ? head->ShortHex() : std::string("(none)")) + " since its base " +
                            (c.base ? c.base->ShortHex() : std::string("(none)")) +
                            " (a commit from outside the workspace); nothing was committed and the staged changes "
                            "are kept: copy them elsewhere, reset the workspace and apply them again");
  }
  std::unique_lock freeze(c.freeze);
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WriteSession> session, c.repo->BeginWrite());
  ws::RecordingStore sink(session.get(), &c.store);
  TUSK_ASSIGN_OR_RETURN(ws::Build build, ws::BuildTree(c, session.get(), &sink));
  result.new_objects = session->new_objects();
  result.new_stored_bytes = session->new_stored_bytes();
  if (c.base_root && build.root == *c.base_root && !c.merge) {
    TUSK_RETURN_IF_ERROR(session->Flush());
    return result;  // staged, but the same tree: nothing to commit
  }
  TUSK_ASSIGN_OR_RETURN(std::vector<WsChange> changes, ws::ChangesBetween(sink, build.old_root, build.root));
  tusk::Commit commit;
  commit.dataset = c.dataset;
  commit.root = build.root;
  if (c.base) commit.parents.push_back(*c.base);
  if (c.merge) commit.parents.push_back(c.merge->theirs);
  commit.author = options.author;
  commit.time_sec = static_cast<int64_t>(::time(nullptr));
  commit.message = options.message.empty() && c.merge ? c.merge->message : options.message;
  commit.metadata = options.metadata;
  commit.provenance = options.provenance;
  commit.file_count = static_cast<uint64_t>(static_cast<int64_t>(c.base_files) + build.files_delta);
  commit.total_bytes = static_cast<uint64_t>(static_cast<int64_t>(c.base_bytes) + build.bytes_delta);
  if (options.prepare_commit) TUSK_RETURN_IF_ERROR(options.prepare_commit(&commit, *session));

  // `next` names the commit before the branch can move to it: a crash after
  // the move is finished by the next Open.
  ObjectId id = HashObject(ObjectType::kCommit, EncodeCommit(commit));
  std::string next_path = c.dir + "/next";
  TUSK_RETURN_IF_ERROR(WriteFileAtomically(c.files, next_path, id.Hex() + "\n"));
  auto landed = session->CommitToBranch(commit, c.branch, c.base);
  if (!landed.ok()) {
    // Best effort: a `next` left behind names a commit that did not land,
    // and the next Open removes it.
    (void)c.files->Remove(next_path);
    if (landed.status().code() == Status::Code::kConflict)
      return Status::Conflict("cannot commit the workspace of " + name +
                              ": the branch moved while the commit was prepared (a commit from outside the "
                              "workspace); nothing was committed and the staged changes are kept");
    return landed.status();
  }
  result.commit = *landed;
  result.files_changed = changes.size();
  result.new_objects = session->new_objects();
  result.new_stored_bytes = session->new_stored_bytes();
  TUSK_RETURN_IF_ERROR(c.SetBase(*landed, true));
  TUSK_RETURN_IF_ERROR(ws::CleanupAfterCommit(c, build));
  if (c.merge) {
    c.merge.reset();
    TUSK_RETURN_IF_ERROR(c.SaveMerge());
  }
  // Durably gone before anything new is staged: a `next` that came back
  // would make the next Open clear those new changes too.
  TUSK_RETURN_IF_ERROR(c.RemoveNextFile());
  return result;
}

Status Workspace::Reset() {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  std::unique_lock freeze(c.freeze);
  c.DetachAllNodes();
  c.generation++;
  TUSK_RETURN_IF_ERROR(ws::ClearUpperAndSidecars(&c));
  if (c.merge) {
    c.merge.reset();
    TUSK_RETURN_IF_ERROR(c.SaveMerge());
  }
  bool diverged;
  return c.FollowBranchIfClean(&diverged);
}

}  // namespace tusk
