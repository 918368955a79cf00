// The three-way merge of trees (store/merge/merge.h): a walk of the
// directories changed on both sides, entry by entry, with file contents
// merged by store/merge/content_merge.h.
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "store/merge/content_merge.h"
#include "store/merge/merge.h"

namespace tusk {
namespace {

struct Counts {
  int64_t files = 0, bytes = 0;
};

// Whether two entries (either may be absent) are the same in every
// respect but their name. Compared in place: this runs for every entry of
// every directory both sides changed.
bool SameEntry(const TreeEntry* x, const TreeEntry* y) {
  if (!x || !y) return x == y;
  return x->SameButName(*y);
}

// Encodings of the entries a directory's merge made (the others are views
// into the pages read), alive until the directory is written.
using Arena = std::vector<std::unique_ptr<std::string>>;

std::string_view Keep(Arena& arena, std::string encoding) {
  return *arena.emplace_back(std::make_unique<std::string>(std::move(encoding)));
}

// Reads the directories a merge is about to walk, ahead of it and on a
// few threads. At a million files a merge of two branches that each
// changed a thousand files reads three thousand directories, mostly from
// a cold disk; one at a time, the walk waits on each read in turn.
// Bounded: at most kWindow directories read and not yet taken.
class DirPrefetcher {
 public:
  explicit DirPrefetcher(ObjectSource& source) : source_(source) {
    for (int i = 0; i < kThreads; i++) threads_.emplace_back([this] { Work(); });
  }
  ~DirPrefetcher() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Queues `id` to be read, in the order the walk will want it.
  void Want(const ObjectId& id) {
    {
      std::lock_guard lock(mu_);
      if (slots_.count(id)) return;
      slots_[id];
      queue_.push_back(id);
    }
    cv_.notify_one();
  }
  // The directory, read ahead if it was wanted (waiting for a read under
  // way), else read now.
  Result<EncodedDirectory> Take(const ObjectId& id) {
    std::unique_lock lock(mu_);
    auto it = slots_.find(id);
    if (it == slots_.end() || !it->second.started) {
      if (it != slots_.end()) {
        queue_.erase(std::find(queue_.begin(), queue_.end(), id));
        slots_.erase(it);
      }
      lock.unlock();
      return ReadEncodedDirectory(source_, id);
    }
    // Looked up again each time: only this thread adds slots, but a
    // lookup is cheap and leaves nothing to argue about.
    cv_.wait(lock, [&] { return slots_.at(id).result.has_value(); });
    it = slots_.find(id);
    Result<EncodedDirectory> out = std::move(*it->second.result);
    slots_.erase(it);
    ready_--;
    lock.unlock();
    cv_.notify_all();
    return out;
  }

 private:
  static constexpr int kThreads = 4;
  static constexpr size_t kWindow = 96;
  struct Slot {
    bool started = false;
    std::optional<Result<EncodedDirectory>> result;
  };
  void Work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || (!queue_.empty() && ready_ < kWindow); });
      if (stop_) return;
      ObjectId id = queue_.front();
      queue_.pop_front();
      slots_[id].started = true;
      ready_++;  // counted from the start of the read: the window bounds memory
      lock.unlock();
      auto dir = ReadEncodedDirectory(source_, id);
      lock.lock();
      slots_[id].result.emplace(std::move(dir));
      cv_.notify_all();
    }
  }

  ObjectSource& source_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ObjectId> queue_;
  std::unordered_map<ObjectId, Slot, ObjectIdHash> slots_;
  size_t ready_ = 0;  // read or being read, not yet taken
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

class TreeMerger {
 public:
  TreeMerger(Repository& repo, WriteSession& session, const TreeMergeOptions& options)
      : repo_(repo), session_(session), options_(options) {}

  // Merges directory trees; null `base` is an empty directory. Returns the
  // merged directory's id (written even when conflicts were found, with
  // ours at each conflicting path, so the walk goes on and lists them all).
  struct Dir {
    ObjectId id;
    uint64_t entries = 0;
  };
  // `ours` and `theirs` are directory entries (or an empty directory).
  Result<Dir> MergeDir(const ObjectId* base, const Dir& ours, const Dir& theirs, const std::string& prefix);

  TreeMergeResult result;
  Counts correction;  // actual counts minus (ours + theirs - base)

 private:
  // `o` and `t` may be moved from.
  Result<std::optional<TreeEntry>> MergeEntry(const TreeEntry* b, TreeEntry* o, TreeEntry* t, const std::string& path);
  Result<std::optional<TreeEntry>> MergeDeletedAgainstChanged(const TreeEntry* b, const TreeEntry* o,
                                                              const TreeEntry* t, const std::string& path);
  Result<TreeEntry> MergeSameKind(const TreeEntry& b_or_empty, bool has_base, const TreeEntry& o, const TreeEntry& t,
                                  const std::string& path);
  // Merges mode, owner, xattrs and mtime into `out` (which holds ours');
  // conflicts are recorded against `path`.
  void MergeMetadata(const TreeEntry* b, const TreeEntry& o, const TreeEntry& t, const std::string& path,
                     TreeEntry* out);
  void Conflict(MergeConflict::Kind kind, const std::string& path, std::string detail,
                std::vector<TableConflict> cells = {});
  // Staging (TreeMergeOptions::stage): theirs' entry `t` (if any) goes
  // beside the path of the conflict just recorded; MergeDir names it.
  Status PutBeside(const TreeEntry* t);
  bool staging() const { return options_.stage && options_.favor == MergeFavor::kNone; }
  // Names the entries PutBeside left for the directory being merged and
  // adds them to `merged` (kept sorted), their encodings kept in `arena`.
  Status PlaceBeside(std::vector<EncodedEntry>& merged, Arena& arena, const std::string& prefix, size_t mark);
  // The entry a conflict resolves to: the favoured side's, else ours.
  const TreeEntry* Favoured(const TreeEntry* o, const TreeEntry* t) const {
    return options_.favor == MergeFavor::kTheirs ? t : o;
  }
  Result<Counts> CountOf(const TreeEntry* e);
  Result<ObjectId> EmptyDir();
  // ReadEncodedDirectory, and the empty directory this merge wrote (not
  // yet readable from the store: the session is not flushed).
  Result<EncodedDirectory> ReadDir(const ObjectId& id);
  // Queues the subdirectories that the walk of this directory will merge
  // (changed on both sides) to be read ahead.
  void PrefetchChildren(const EncodedDirectory& b, const EncodedDirectory& o, const EncodedDirectory& t);
  Status RenumberLinkGroup(TreeEntry* e);

  Repository& repo_;
  WriteSession& session_;
  const TreeMergeOptions& options_;
  DirPrefetcher prefetcher_{repo_};
  std::optional<ObjectId> empty_dir_;
  // Hard-link groups taken from theirs, renumbered above every group of
  // ours and theirs so they cannot meet a group of ours with the same
  // number (both sides number their new groups from the base's largest).
  std::map<uint64_t, uint64_t> renumbered_;
  uint64_t next_group_ = 0;
  struct Beside {
    TreeEntry entry;  // theirs', under its own name until PlaceBeside renames it
    size_t conflict;  // index into result.conflicts
  };
  std::vector<Beside> beside_;

 public:
  ObjectId ours_root, theirs_root;
};

void TreeMerger::Conflict(MergeConflict::Kind kind, const std::string& path, std::string detail,
                          std::vector<TableConflict> cells) {
  if (options_.favor != MergeFavor::kNone) return;  // resolved for the favoured side by the caller
  result.conflicts.push_back({kind, path, std::move(detail), std::move(cells)});
}

Status TreeMerger::PutBeside(const TreeEntry* t) {
  if (!staging() || !t || result.conflicts.empty()) return Status::Ok();
  TreeEntry e = *t;
  TUSK_RETURN_IF_ERROR(RenumberLinkGroup(&e));
  beside_.push_back({std::move(e), result.conflicts.size() - 1});
  return Status::Ok();
}

Status TreeMerger::PlaceBeside(std::vector<EncodedEntry>& merged, Arena& arena, const std::string& prefix,
                               size_t mark) {
  if (beside_.size() == mark) return Status::Ok();
  auto by_name = [](const EncodedEntry& e, std::string_view n) { return e.name < n; };
  auto in = [&](const std::vector<EncodedEntry>& v, std::string_view n) {
    auto it = std::lower_bound(v.begin(), v.end(), n, by_name);
    return it != v.end() && it->name == n;
  };
  std::vector<EncodedEntry> placed;
  for (size_t x = mark; x < beside_.size(); x++) {
    Beside& b = beside_[x];
    std::string name = b.entry.name + "~theirs";
    for (int n = 2; in(merged, name) || in(placed, name); n++)
      name = b.entry.name + "~theirs." + std::to_string(n);
    if (name.size() > 255)
      return Status::InvalidArgument("cannot stage the merge: " + prefix + b.entry.name +
                                     " conflicts, and its name is too long to put theirs' version beside it");
    b.entry.name = name;
    result.conflicts[b.conflict].theirs_path = prefix + name;
    TUSK_ASSIGN_OR_RETURN(std::string encoding, EncodeCheckedEntry(b.entry));
    EncodedEntry kept = ViewOfEncoding(Keep(arena, std::move(encoding)));
    placed.insert(std::lower_bound(placed.begin(), placed.end(), kept.name, by_name), kept);
  }
  beside_.resize(mark);
  std::vector<EncodedEntry> all;
  all.reserve(merged.size() + placed.size());
  std::merge(merged.begin(), merged.end(), placed.begin(), placed.end(), std::back_inserter(all),
             [](const EncodedEntry& x, const EncodedEntry& y) { return x.name < y.name; });
  merged = std::move(all);
  return Status::Ok();
}

Result<ObjectId> TreeMerger::EmptyDir() {
  if (!empty_dir_) {
    TUSK_ASSIGN_OR_RETURN(ObjectId id, WriteDirectory(session_, std::vector<TreeEntry>()));
    empty_dir_ = id;
  }
  return *empty_dir_;
}

Result<EncodedDirectory> TreeMerger::ReadDir(const ObjectId& id) {
  if (empty_dir_ && id == *empty_dir_) return EncodedDirectory();
  return prefetcher_.Take(id);
}

void TreeMerger::PrefetchChildren(const EncodedDirectory& b, const EncodedDirectory& o, const EncodedDirectory& t) {
  auto find = [](const EncodedDirectory& dir, std::string_view name) -> const EncodedEntry* {
    const auto& v = dir.entries();
    auto it = std::lower_bound(v.begin(), v.end(), name, [](const EncodedEntry& e, std::string_view n) { return e.name < n; });
    return it != v.end() && it->name == name ? &*it : nullptr;
  };
  const auto kDir = EntryKind::kDirectory;
  for (const EncodedEntry& oe : o.entries()) {
    if (oe.kind != kDir) continue;  // most entries: files, passed over without a comparison
    const EncodedEntry* te = find(t, oe.name);
    const EncodedEntry* be = find(b, oe.name);
    if (!te || !be || te->kind != kDir || be->kind != kDir) continue;
    if (te->bytes == oe.bytes || be->bytes == oe.bytes || be->bytes == te->bytes) continue;
    auto bd = DecodeEncodedEntry(be->bytes), od = DecodeEncodedEntry(oe.bytes), td = DecodeEncodedEntry(te->bytes);
    if (!bd.ok() || !od.ok() || !td.ok()) continue;  // the walk reports it
    if (od->tree == td->tree || bd->tree == od->tree || bd->tree == td->tree) continue;
    prefetcher_.Want(bd->tree);
    prefetcher_.Want(od->tree);
    prefetcher_.Want(td->tree);
  }
}

Result<Counts> TreeMerger::CountOf(const TreeEntry* e) {
  Counts c;
  if (!e) return c;
  if (e->kind == EntryKind::kFile) return Counts{1, static_cast<int64_t>(e->size)};
  if (e->kind != EntryKind::kDirectory) return c;
  TUSK_ASSIGN_OR_RETURN(auto entries, ReadDirectory(repo_, e->tree));
  for (const auto& child : entries) {
    TUSK_ASSIGN_OR_RETURN(Counts sub, CountOf(&child));
    c.files += sub.files;
    c.bytes += sub.bytes;
  }
  return c;
}

Status MaxLinkGroup(Repository& repo, const ObjectId& dir, uint64_t* max) {
  TUSK_ASSIGN_OR_RETURN(auto entries, ReadDirectory(repo, dir));
  for (const auto& e : entries) {
    if (e.link_group) *max = std::max(*max, *e.link_group);
    if (e.kind == EntryKind::kDirectory) TUSK_RETURN_IF_ERROR(MaxLinkGroup(repo, e.tree, max));
  }
  return Status::Ok();
}

Status TreeMerger::RenumberLinkGroup(TreeEntry* e) {
  if (!e->link_group) return Status::Ok();
  if (next_group_ == 0) {
    // Walks both whole trees, once per merge, and only when theirs brings
    // hard links: datasets rarely have any.
    uint64_t max = 0;
    TUSK_RETURN_IF_ERROR(MaxLinkGroup(repo_, ours_root, &max));
    TUSK_RETURN_IF_ERROR(MaxLinkGroup(repo_, theirs_root, &max));
    next_group_ = max + 1;
  }
  auto [it, fresh] = renumbered_.try_emplace(*e->link_group, next_group_);
  if (fresh) next_group_++;
  e->link_group = it->second;
  return Status::Ok();
}

Result<TreeMerger::Dir> TreeMerger::MergeDir(const ObjectId* base, const Dir& ours, const Dir& theirs,
                                             const std::string& prefix) {
  if (ours.id == theirs.id) return ours;
  if (base && *base == ours.id) return theirs;
  if (base && *base == theirs.id) return ours;
  // Entries are compared by their encodings and decoded only where the
  // three differ: a directory both sides changed is mostly entries neither
  // touched, copied into the merged pages as they are.
  EncodedDirectory b_dir;
  if (base) {
    TUSK_ASSIGN_OR_RETURN(b_dir, ReadDir(*base));
  }
  TUSK_ASSIGN_OR_RETURN(EncodedDirectory o_dir, ReadDir(ours.id));
  TUSK_ASSIGN_OR_RETURN(EncodedDirectory t_dir, ReadDir(theirs.id));
  PrefetchChildren(b_dir, o_dir, t_dir);
  const auto &b_entries = b_dir.entries(), &o_entries = o_dir.entries(), &t_entries = t_dir.entries();
  std::vector<EncodedEntry> merged;
  merged.reserve(o_entries.size());
  Arena arena;
  const size_t beside_mark = beside_.size();
  size_t i = 0, j = 0, k = 0;
  auto bytes = [](const EncodedEntry* e) { return e ? e->bytes : std::string_view(); };
  while (i < b_entries.size() || j < o_entries.size() || k < t_entries.size()) {
    // The smallest name among the three cursors.
    std::optional<std::string_view> name;
    auto consider = [&](const std::vector<EncodedEntry>& v, size_t at) {
      if (at < v.size() && (!name || v[at].name < *name)) name = v[at].name;
    };
    consider(b_entries, i);
    consider(o_entries, j);
    consider(t_entries, k);
    auto take = [&](const std::vector<EncodedEntry>& v, size_t& at) {
      return at < v.size() && v[at].name == *name ? &v[at++] : nullptr;
    };
    const EncodedEntry* b = take(b_entries, i);
    const EncodedEntry* o = take(o_entries, j);
    const EncodedEntry* t = take(t_entries, k);
    // Theirs unchanged (the base's bytes, or absent from both): ours as it
    // is. Everything else, theirs' changes included (a hard-link group
    // taken from theirs is renumbered), goes through MergeEntry.
    if (o && bytes(b) == bytes(t) && (b != nullptr) == (t != nullptr)) {
      merged.push_back(*o);
      continue;
    }
    std::optional<TreeEntry> bt, ot, tt;
    for (auto [from, to] : {std::pair(b, &bt), std::pair(o, &ot), std::pair(t, &tt)}) {
      if (!from) continue;
      TUSK_ASSIGN_OR_RETURN(*to, DecodeEncodedEntry(from->bytes));
    }
    std::string path = prefix + std::string(*name);
    TUSK_ASSIGN_OR_RETURN(auto entry, MergeEntry(bt ? &*bt : nullptr, ot ? &*ot : nullptr, tt ? &*tt : nullptr, path));
    if (!entry) continue;
    TUSK_ASSIGN_OR_RETURN(std::string encoding, EncodeCheckedEntry(*entry));
    merged.push_back(ViewOfEncoding(Keep(arena, std::move(encoding))));
  }
  TUSK_RETURN_IF_ERROR(PlaceBeside(merged, arena, prefix, beside_mark));
  uint64_t count = merged.size();
  TUSK_ASSIGN_OR_RETURN(ObjectId id, WriteEncodedDirectory(session_, merged));
  return Dir{id, count};
}

Result<std::optional<TreeEntry>> TreeMerger::MergeEntry(const TreeEntry* b, TreeEntry* o, TreeEntry* t,
                                                        const std::string& path) {
  // The entries are the caller's copies, used once: moved, not copied.
  auto copy = [](TreeEntry* e) { return e ? std::optional<TreeEntry>(std::move(*e)) : std::nullopt; };
  if (SameEntry(o, t)) {
    if (!SameEntry(b, o)) {
      // Both sides made this change: the counts formula has it twice.
      TUSK_ASSIGN_OR_RETURN(Counts oc, CountOf(o));
      TUSK_ASSIGN_OR_RETURN(Counts bc, CountOf(b));
      correction.files -= oc.files - bc.files;
      correction.bytes -= oc.bytes - bc.bytes;
    }
    return copy(o);
  }
  if (SameEntry(b, o)) {
    result.paths_from_theirs++;
    auto out = copy(t);
    if (out) TUSK_RETURN_IF_ERROR(RenumberLinkGroup(&*out));
    return out;
  }
  if (SameEntry(b, t)) return copy(o);

  // Changed on both sides, differently.
  if (!o || !t) return MergeDeletedAgainstChanged(b, o, t, path);
  bool o_dir = o->kind == EntryKind::kDirectory, t_dir = t->kind == EntryKind::kDirectory;
  if (o_dir != t_dir) {
    Conflict(MergeConflict::Kind::kFileDirectory, path,
             std::string("a directory in ") + (o_dir ? "ours" : "theirs") + ", not in " + (o_dir ? "theirs" : "ours"));
    TUSK_RETURN_IF_ERROR(PutBeside(t));
    return copy(options_.favor == MergeFavor::kTheirs ? t : o);
  }
  if (o->kind != t->kind || (o->mode & S_IFMT) != (t->mode & S_IFMT)) {
    if (!b) {
      Conflict(MergeConflict::Kind::kAddAdd, path, "added on both sides as different kinds of entry");
    } else {
      Conflict(MergeConflict::Kind::kType, path, "changed to a different kind of entry on each side");
    }
    TUSK_RETURN_IF_ERROR(PutBeside(t));
    return copy(options_.favor == MergeFavor::kTheirs ? t : o);
  }
  TreeEntry empty;
  bool has_base = b && b->kind == o->kind && (b->mode & S_IFMT) == (o->mode & S_IFMT);
  TUSK_ASSIGN_OR_RETURN(TreeEntry merged, MergeSameKind(has_base ? *b : empty, has_base, *o, *t, path));
  if (o->kind != EntryKind::kDirectory) {
    TUSK_ASSIGN_OR_RETURN(Counts oc, CountOf(o));
    TUSK_ASSIGN_OR_RETURN(Counts tc, CountOf(t));
    TUSK_ASSIGN_OR_RETURN(Counts bc, CountOf(b));
    TUSK_ASSIGN_OR_RETURN(Counts mc, CountOf(&merged));
    correction.files += mc.files - (oc.files + tc.files - bc.files);
    correction.bytes += mc.bytes - (oc.bytes + tc.bytes - bc.bytes);
  }
  return std::optional<TreeEntry>(std::move(merged));
}

// One side deleted the entry, the other changed it. A directory deleted on
// one side and changed on the other is merged as if emptied there: what the
// other side added stays, what it left alone goes, and each file it changed
// is a modify/delete conflict of its own.
Result<std::optional<TreeEntry>> TreeMerger::MergeDeletedAgainstChanged(const TreeEntry* b, const TreeEntry* o,
                                                                        const TreeEntry* t, const std::string& path) {
  const TreeEntry* kept = o ? o : t;
  bool ours_deleted = !o;
  if (b && b->kind == EntryKind::kDirectory && kept->kind == EntryKind::kDirectory) {
    TUSK_ASSIGN_OR_RETURN(ObjectId empty, EmptyDir());
    TUSK_ASSIGN_OR_RETURN(Dir dir, MergeDir(&b->tree, o ? Dir{o->tree, o->size} : Dir{empty, 0},
                                            t ? Dir{t->tree, t->size} : Dir{empty, 0}, path + "/"));
    if (dir.entries == 0) return std::optional<TreeEntry>();
    TreeEntry out = *kept;
    out.tree = dir.id;
    out.size = dir.entries;
    return std::optional<TreeEntry>(std::move(out));
  }
  Conflict(MergeConflict::Kind::kModifyDelete, path,
           std::string("deleted in ") + (ours_deleted ? "ours" : "theirs") + ", changed in " +
               (ours_deleted ? "theirs" : "ours"));
  // Staged: ours at the path (nothing, if ours deleted it), theirs beside.
  const TreeEntry* pick = staging() ? o : options_.favor == MergeFavor::kNone ? kept : Favoured(o, t);
  TUSK_RETURN_IF_ERROR(PutBeside(t));
  // The counts formula took the change and the deletion; the result is `pick`.
  TUSK_ASSIGN_OR_RETURN(Counts kc, CountOf(kept));
  TUSK_ASSIGN_OR_RETURN(Counts pc, CountOf(pick));
  TUSK_ASSIGN_OR_RETURN(Counts bc, CountOf(b));
  correction.files += pc.files - (kc.files - bc.files);
  correction.bytes += pc.bytes - (kc.bytes - bc.bytes);
  if (!pick) return std::optional<TreeEntry>();
  TreeEntry out = *pick;
  if (pick == t) TUSK_RETURN_IF_ERROR(RenumberLinkGroup(&out));
  return std::optional<TreeEntry>(std::move(out));
}

// Three-way choice of one field: one side's change wins; both changed the
// same way: once; differently: nullopt (a conflict).
template <typename T>
std::optional<T> Pick3(const T* b, const T& o, const T& t) {
  if (o == t) return o;
  if (b && *b == o) return t;
  if (b && *b == t) return o;
  return std::nullopt;
}

void TreeMerger::MergeMetadata(const TreeEntry* b, const TreeEntry& o, const TreeEntry& t, const std::string& path,
                               TreeEntry* out) {
  const TreeEntry& fav = *Favoured(&o, &t);
  uint32_t o_perm = o.mode & 07777, t_perm = t.mode & 07777;
  uint32_t b_perm = b ? b->mode & 07777 : 0;
  auto perm = Pick3(b ? &b_perm : nullptr, o_perm, t_perm);
  if (!perm) {
    char detail[96];
    std::snprintf(detail, sizeof detail, "mode %04o in ours, %04o in theirs", o_perm, t_perm);
    Conflict(MergeConflict::Kind::kMode, path, detail);
  }
  out->mode = (o.mode & S_IFMT) | perm.value_or(fav.mode & 07777);
  std::pair<uint32_t, uint32_t> o_own{o.uid, o.gid}, t_own{t.uid, t.gid}, b_own;
  if (b) b_own = {b->uid, b->gid};
  auto owner = Pick3(b ? &b_own : nullptr, o_own, t_own);
  if (!owner)
    Conflict(MergeConflict::Kind::kOwner, path,
             "owner " + std::to_string(o.uid) + ":" + std::to_string(o.gid) + " in ours, " + std::to_string(t.uid) +
                 ":" + std::to_string(t.gid) + " in theirs");
  std::tie(out->uid, out->gid) = owner.value_or(std::pair(fav.uid, fav.gid));
  auto xattrs = Pick3(b ? &b->xattrs : nullptr, o.xattrs, t.xattrs);
  if (!xattrs) Conflict(MergeConflict::Kind::kXattrs, path, "user xattrs set differently on both sides");
  out->xattrs = xattrs.value_or(fav.xattrs);
  // The later modification time: both sides touched the entry.
  if (std::pair(t.mtime_sec, t.mtime_nsec) > std::pair(o.mtime_sec, o.mtime_nsec)) {
    out->mtime_sec = t.mtime_sec;
    out->mtime_nsec = t.mtime_nsec;
  }
  auto group = Pick3(b ? &b->link_group : nullptr, o.link_group, t.link_group);
  // A merged entry is a file of its own unless both sides agree on its
  // group (it may differ in content from the rest of either side's group).
  out->link_group = group && *group == o.link_group ? *group : std::nullopt;
  out->extensions = o.extensions;
}

Result<TreeEntry> TreeMerger::MergeSameKind(const TreeEntry& base, bool has_base, const TreeEntry& o,
                                            const TreeEntry& t, const std::string& path) {
  const TreeEntry* b = has_base ? &base : nullptr;
  TreeEntry out = o;
  MergeMetadata(b, o, t, path, &out);
  switch (o.kind) {
    case EntryKind::kDirectory: {
      TUSK_ASSIGN_OR_RETURN(Dir dir, MergeDir(b ? &b->tree : nullptr, Dir{o.tree, o.size}, Dir{t.tree, t.size}, path + "/"));
      out.tree = dir.id;
      out.size = dir.entries;
      return out;
    }
    case EntryKind::kSymlink: {
      auto target = Pick3(b ? &b->target : nullptr, o.target, t.target);
      if (!target) {
        Conflict(MergeConflict::Kind::kSymlink, path, "points to '" + o.target + "' in ours, '" + t.target + "' in theirs");
        TUSK_RETURN_IF_ERROR(PutBeside(&t));
      }
      out.target = target.value_or(Favoured(&o, &t)->target);
      out.size = out.target.size();
      return out;
    }
    case EntryKind::kSpecial: {
      auto rdev = Pick3(b ? &b->rdev : nullptr, o.rdev, t.rdev);
      if (!rdev) {
        Conflict(MergeConflict::Kind::kType, path, "device numbers differ");
        TUSK_RETURN_IF_ERROR(PutBeside(&t));
      }
      out.rdev = rdev.value_or(Favoured(&o, &t)->rdev);
      return out;
    }
    case EntryKind::kFile: break;
  }
  if (o.SameContent(t)) return out;
  if (b && b->SameContent(o)) {
    out.chunks = t.chunks;
    out.size = t.size;
    return out;
  }
  if (b && b->SameContent(t)) return out;
  ContentMergeInput in{path, b, &o, &t};
  TUSK_ASSIGN_OR_RETURN(ContentMergeOutput merged, MergeFileContent(repo_, session_, in, options_));
  if (!merged.method.empty()) result.merged_files.push_back({path, merged.method, merged.note});
  out.chunks = std::move(merged.chunks);
  out.size = merged.size;
  if (merged.conflict && options_.favor == MergeFavor::kNone) {
    MergeConflict c = std::move(*merged.conflict);
    c.path = path;
    bool has_marks = c.kind == MergeConflict::Kind::kText || c.kind == MergeConflict::Kind::kTable;
    if (staging() && has_marks) {
      // The file as a person resolves it: both sides in it, marked.
      TUSK_ASSIGN_OR_RETURN(out.chunks, StoreContent(repo_, session_, merged.marked));
      out.size = merged.marked.size();
    } else {
      c.marked = std::move(merged.marked);
    }
    result.conflicts.push_back(std::move(c));
    if (!has_marks && staging()) {
      // Ours whole at the path, its own time too (not theirs', which would
      // make the file look changed against ours).
      out.mtime_sec = o.mtime_sec;
      out.mtime_nsec = o.mtime_nsec;
      TUSK_RETURN_IF_ERROR(PutBeside(&t));
    }
  }
  return out;
}

}  // namespace

const char* MergeConflictKindName(MergeConflict::Kind kind) {
  switch (kind) {
    case MergeConflict::Kind::kText: return "text";
    case MergeConflict::Kind::kTable: return "table";
    case MergeConflict::Kind::kBinary: return "binary";
    case MergeConflict::Kind::kModifyDelete: return "modify/delete";
    case MergeConflict::Kind::kAddAdd: return "add/add";
    case MergeConflict::Kind::kFileDirectory: return "file/directory";
    case MergeConflict::Kind::kType: return "type";
    case MergeConflict::Kind::kSymlink: return "symlink";
    case MergeConflict::Kind::kMode: return "mode";
    case MergeConflict::Kind::kOwner: return "owner";
    case MergeConflict::Kind::kXattrs: return "xattrs";
  }
  return "?";
}

Result<TreeMergeResult> MergeTrees(Repository& repo, WriteSession& session, const std::optional<ObjectId>& base,
                                   const ObjectId& ours, const ObjectId& theirs, const TreeMergeOptions& options) {
  TUSK_ASSIGN_OR_RETURN(Commit o, repo.ReadCommit(ours));
  TUSK_ASSIGN_OR_RETURN(Commit t, repo.ReadCommit(theirs));
  std::optional<Commit> b;
  if (base) {
    TUSK_ASSIGN_OR_RETURN(b, repo.ReadCommit(*base));
  }
  TreeMerger merger(repo, session, options);
  merger.ours_root = o.root;
  merger.theirs_root = t.root;
  TUSK_ASSIGN_OR_RETURN(auto root, merger.MergeDir(b ? &b->root : nullptr, {o.root, 0}, {t.root, 0}, ""));
  TreeMergeResult& r = merger.result;
  auto by_path = [](const auto& x, const auto& y) { return x.path < y.path; };
  std::stable_sort(r.conflicts.begin(), r.conflicts.end(), by_path);
  std::stable_sort(r.merged_files.begin(), r.merged_files.end(), by_path);
  if (options.stage) r.root = root.id;
  if (r.conflicts.empty()) {
    r.root = root.id;
    int64_t files = static_cast<int64_t>(o.file_count) + static_cast<int64_t>(t.file_count) -
                    static_cast<int64_t>(b ? b->file_count : 0) + merger.correction.files;
    int64_t bytes = static_cast<int64_t>(o.total_bytes) + static_cast<int64_t>(t.total_bytes) -
                    static_cast<int64_t>(b ? b->total_bytes : 0) + merger.correction.bytes;
    if (files < 0 || bytes < 0) return Status::Corruption("the merged tree's file counts came out negative");
    r.file_count = static_cast<uint64_t>(files);
    r.total_bytes = static_cast<uint64_t>(bytes);
  }
  return std::move(r);
}

}  // namespace tusk
