// A merge staged into a workspace (`tusk merge --stage`): its file, and
// making the merged view show the staged tree.
//
// Merge file encoding (STORE/workspaces/D/B/merge, FORMAT.md):
//   "TUSKWSG1" | 32-byte ours | 32-byte theirs | 32-byte staged
//   | string source | string message | varint n
//   | n x (string kind | string path | string theirs_path | string detail
//          | varint cells | cells x string | u8 resolved
//          | varint lines | lines x varint (marked lines: only in status replies))
//   | fixed32 CRC32C of everything before it
// (strings are a varint length and the bytes). `merge.staging` has the
// same encoding and exists only while StageMerge applies the tree.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "store/internal/crc32c.h"
#include "store/internal/varint.h"
#include "store/workspace/workspace_core.h"

namespace tusk {

namespace {
constexpr std::string_view kMergeMagic = "TUSKWSG1";
// Far above any real merge, low enough that a damaged count cannot make
// the decoder reserve gigabytes.
constexpr uint64_t kMaxMergeConflicts = 10'000'000;
}  // namespace

size_t WsMerge::Unresolved() const {
  return static_cast<size_t>(std::count_if(conflicts.begin(), conflicts.end(), [](const auto& c) { return !c.resolved; }));
}

std::string EncodeWsMerge(const WsMerge& m) {
  Encoder e;
  e.PutBytes(kMergeMagic);
  for (const ObjectId* id : {&m.ours, &m.theirs, &m.staged}) e.PutBytes(id->view());
  e.PutString(m.source);
  e.PutString(m.message);
  e.PutVarint(m.conflicts.size());
  for (const auto& c : m.conflicts) {
    e.PutString(c.kind);
    e.PutString(c.path);
    e.PutString(c.theirs_path);
    e.PutString(c.detail);
    e.PutVarint(c.cells.size());
    for (const auto& cell : c.cells) e.PutString(cell);
    e.PutU8(c.resolved ? 1 : 0);
    e.PutVarint(c.marked_lines.size());
    for (uint64_t line : c.marked_lines) e.PutVarint(line);
  }
  std::string out = e.Take();
  uint32_t crc = Crc32c(out.data(), out.size());
  out.append(reinterpret_cast<const char*>(&crc), 4);
  return out;
}

Result<WsMerge> DecodeWsMerge(std::string_view bytes, const std::string& what) {
  auto bad = [&](const std::string& why) { return Status::Corruption(what + ": " + why); };
  if (bytes.size() < kMergeMagic.size() + 4 || bytes.substr(0, kMergeMagic.size()) != kMergeMagic)
    return bad("not a staged merge (bad magic)");
  uint32_t crc;
  std::memcpy(&crc, bytes.data() + bytes.size() - 4, 4);
  bytes.remove_suffix(4);
  if (Crc32c(bytes.data(), bytes.size()) != crc) return bad("checksum mismatch");
  Decoder d(bytes.substr(kMergeMagic.size()));
  WsMerge m;
  auto get = [&](std::string* out) {
    std::string_view v;
    if (!d.GetString(&v)) return false;
    out->assign(v);
    return true;
  };
  for (ObjectId* id : {&m.ours, &m.theirs, &m.staged}) {
    std::string_view raw;
    if (!d.GetBytes(32, &raw)) return bad("truncated");
    *id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(raw.data()));
  }
  uint64_t n = 0;
  if (!get(&m.source) || !get(&m.message) || !d.GetVarint(&n)) return bad("truncated");
  if (n > kMaxMergeConflicts || n > d.remaining()) return bad("conflict count out of range");
  m.conflicts.resize(n);
  for (auto& c : m.conflicts) {
    uint64_t cells = 0;
    if (!get(&c.kind) || !get(&c.path) || !get(&c.theirs_path) || !get(&c.detail) ||
        !d.GetVarint(&cells))
      return bad("truncated");
    if (cells > d.remaining()) return bad("cell count out of range");
    c.cells.resize(cells);
    for (auto& cell : c.cells)
      if (!get(&cell)) return bad("truncated");
    uint8_t resolved = 0;
    if (!d.GetU8(&resolved) || resolved > 1) return bad("bad resolved flag");
    c.resolved = resolved == 1;
    uint64_t lines = 0;
    if (!d.GetVarint(&lines) || lines > d.remaining()) return bad("marked line count out of range");
    c.marked_lines.resize(lines);
    for (auto& line : c.marked_lines)
      if (!d.GetVarint(&line)) return bad("truncated");
  }
  if (d.remaining() != 0) return bad("trailing bytes");
  return m;
}

namespace ws {

Result<std::optional<WsMerge>> ReadMergeFile(Env* files, const std::string& dir, const char* name) {
  std::string path = dir + "/" + name;
  auto bytes = ReadWholeFile(files, path);
  if (!bytes.ok()) {
    if (bytes.status().code() == Status::Code::kNotFound || bytes.status().sys_errno() == ENOENT)
      return std::optional<WsMerge>();
    return bytes.status();
  }
  TUSK_ASSIGN_OR_RETURN(WsMerge m, DecodeWsMerge(*bytes, path));
  return std::optional<WsMerge>(std::move(m));
}

Status WsCore::LoadMerge() {
  TUSK_ASSIGN_OR_RETURN(auto staging, ReadMergeFile(files, dir, kMergeStagingFile));
  std::string staging_path = dir + "/" + kMergeStagingFile;
  struct stat st;
  if (staging || ::lstat(staging_path.c_str(), &st) == 0) {
    // StageMerge was cut short: the workspace was clean before it began,
    // so clearing upper/ rolls it back.
    TUSK_RETURN_IF_ERROR(ClearUpperAndSidecars(this));
    TUSK_RETURN_IF_ERROR(files->Remove(staging_path));
    TUSK_RETURN_IF_ERROR(files->SyncDir(dir));
  }
  TUSK_ASSIGN_OR_RETURN(merge, ReadMergeFile(files, dir, kMergeFile));
  return Status::Ok();
}

Status WsCore::SaveMerge() {
  std::string path = dir + "/" + kMergeFile;
  if (merge) return WriteFileAtomically(files, path, EncodeWsMerge(*merge));
  Status st = files->Remove(path);
  if (!st.ok() && st.code() != Status::Code::kNotFound && st.sys_errno() != ENOENT) return st;
  return files->SyncDir(dir);
}

namespace {

// Makes the merged view show the tree `to` where it shows the base tree
// `from` (nullopt: nothing) at the directory `parts`. The workspace holds
// nothing staged below it. Upper directories made are added to `synced`
// (to be made durable), hard-link groups to `groups` (group -> its first
// name, so later names become hard links of it).
class Stager {
 public:
  explicit Stager(WsCore* core) : core_(core) {}

  Status Dir(const std::optional<ObjectId>& from, const ObjectId& to, const std::vector<std::string>& parts) {
    std::vector<TreeEntry> b, t;
    if (from) TUSK_RETURN_IF_ERROR(Entries(*from, &b));
    TUSK_RETURN_IF_ERROR(Entries(to, &t));
    size_t i = 0, j = 0;
    while (i < b.size() || j < t.size()) {
      const TreeEntry* be = nullptr;
      const TreeEntry* te = nullptr;
      if (j == t.size() || (i < b.size() && b[i].name < t[j].name)) {
        be = &b[i++];
      } else if (i == b.size() || t[j].name < b[i].name) {
        te = &t[j++];
      } else {
        be = &b[i++];
        te = &t[j++];
      }
      std::vector<std::string> child = parts;
      child.push_back(te ? te->name : be->name);
      if (be && te && be->SameButName(*te)) continue;
      TUSK_RETURN_IF_ERROR(core_->EnsureUpperDir(parts));
      if (!te) {
        TUSK_RETURN_IF_ERROR(core_->MakeWhiteout(Rel(child)));
        continue;
      }
      TUSK_RETURN_IF_ERROR(Place(be, *te, child));
    }
    if (!parts.empty()) {
      // What the walk did inside changed the directory's times.
      TUSK_ASSIGN_OR_RETURN(Lookup self, core_->ResolveParts(parts));
      if (self.in_upper) dirs_.push_back(Rel(parts));
    }
    return Status::Ok();
  }

  // The directories staged with their tree entries, each after every
  // directory below it (their metadata goes on last: making entries inside
  // changes a directory's times).
  std::vector<std::pair<std::string, TreeEntry>> dir_meta;
  std::vector<std::string> dirs_;  // upper directories changed, to make durable

 private:
  static std::string Rel(const std::vector<std::string>& parts) {
    std::string rel;
    for (const auto& p : parts) rel = JoinRel(rel, p);
    return rel;
  }

  Status Entries(const ObjectId& tree, std::vector<TreeEntry>* out) {
    return core_->store.ForEach(tree, [&](const TreeEntry& e) {
      out->push_back(e);
      return true;
    });
  }

  Status Place(const TreeEntry* be, const TreeEntry& te, const std::vector<std::string>& parts) {
    std::string rel = Rel(parts);
    if (te.kind == EntryKind::kDirectory) {
      bool over_base_dir = be && be->kind == EntryKind::kDirectory;
      if (!over_base_dir) TUSK_RETURN_IF_ERROR(MakeUpperDir(core_, rel, te));
      TUSK_RETURN_IF_ERROR(Dir(over_base_dir ? std::optional<ObjectId>(be->tree) : std::nullopt, te.tree, parts));
      // A base directory whose content was the same but whose metadata
      // differs still needs an upper copy to carry it.
      TUSK_RETURN_IF_ERROR(core_->EnsureUpperDir(parts));
      dir_meta.emplace_back(rel, te);
      return Status::Ok();
    }
    if (te.link_group) {
      auto first = groups_.find(*te.link_group);
      if (first != groups_.end()) {
        TUSK_ASSIGN_OR_RETURN(UpperAt src, core_->At(first->second));
        TUSK_ASSIGN_OR_RETURN(UpperAt dst, core_->At(rel));
        if (::linkat(src.fd(), src.c_name(), dst.fd(), dst.c_name(), 0) != 0) return Err(errno, "link", rel);
        return Status::Ok();
      }
      groups_.emplace(*te.link_group, rel);
    }
    switch (te.kind) {
      case EntryKind::kFile: {
        std::string id;
        return MakeMetacopy(core_, rel, te, &id).status();
      }
      case EntryKind::kSymlink: return MakeUpperSymlink(core_, rel, te);
      case EntryKind::kSpecial: return MakeUpperSpecial(core_, rel, te);
      case EntryKind::kDirectory: break;
    }
    return Status::Ok();
  }

  WsCore* core_;
  std::map<uint64_t, std::string> groups_;
};

// The user xattrs of the upper entry at `rel` become exactly `e`'s; then
// owner, mode and mtime.
Status ApplyEntryMeta(WsCore* core, const std::string& rel, const TreeEntry& e) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  std::string proc = at.proc();
  ssize_t n = ::llistxattr(proc.c_str(), nullptr, 0);
  if (n < 0) return Err(errno, "list xattrs of", rel);
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(proc.c_str(), names.data(), names.size());
  if (n < 0) return Err(errno, "list xattrs of", rel);
  names.resize(static_cast<size_t>(n));
  for (size_t at_name = 0; at_name < names.size();) {
    std::string name(names.c_str() + at_name);
    at_name += name.size() + 1;
    if (name.rfind("user.", 0) != 0 || name.rfind(kReservedXattrPrefix, 0) == 0) continue;
    bool keep = std::any_of(e.xattrs.begin(), e.xattrs.end(), [&](const auto& x) { return x.first == name; });
    if (!keep && ::lremovexattr(proc.c_str(), name.c_str()) != 0) return Err(errno, "remove xattr " + name + " of", rel);
  }
  return ApplyBaseMeta(core, rel, e);
}

}  // namespace
}  // namespace ws

using ws::WsCore;

Status Workspace::StageMerge(const WsMerge& merge) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  const std::string name = c.dataset + "@" + c.branch;
  bool diverged;
  TUSK_RETURN_IF_ERROR(c.FollowBranchIfClean(&diverged));
  if (c.merge)
    return Status::InvalidArgument("a merge of " + c.merge->source + " is already staged in " + name +
                                   ": commit it or reset the workspace first");
  TUSK_ASSIGN_OR_RETURN(bool staged, c.Staged());
  if (staged)
    return Status::InvalidArgument(name + " has staged changes in its workspace; commit or reset them first");
  if (!c.base || *c.base != merge.ours)
    return Status::InvalidArgument("cannot stage the merge: " + name + " moved to " +
                                   (c.base ? c.base->ShortHex() : std::string("(none)")) +
                                   " since the merge was made from " + merge.ours.ShortHex() + "; merge again");

  std::unique_lock freeze(c.freeze);
  // Files open now keep reading the version they opened.
  c.DetachAllNodes();
  c.generation++;
  // While `merge.staging` exists a crash rolls the staging back (LoadMerge).
  std::string staging_path = c.dir + "/" + ws::kMergeStagingFile;
  TUSK_RETURN_IF_ERROR(WriteFileAtomically(c.files, staging_path, EncodeWsMerge(merge)));
  auto roll_back = [&](Status failed) {
    (void)ws::ClearUpperAndSidecars(&c);
    (void)c.files->Remove(staging_path);
    (void)c.files->SyncDir(c.dir);
    return failed;
  };
  ws::Stager stager(&c);
  Status st = stager.Dir(c.base_root, merge.staged, {});
  // Directories' metadata last, deepest first: making entries inside
  // changed their times.
  for (size_t i = 0; st.ok() && i < stager.dir_meta.size(); i++)
    st = ws::ApplyEntryMeta(&c, stager.dir_meta[i].first, stager.dir_meta[i].second);
  // Everything staged durable before the merge file says it is staged.
  for (size_t i = 0; st.ok() && i < stager.dirs_.size(); i++) st = c.SyncUpperNames(stager.dirs_[i]);
  if (st.ok()) st = c.SyncUpperNames("");
  if (!st.ok()) return roll_back(st.Annotate("staging the merge into " + name + " failed; nothing is staged"));
  c.merge = merge;
  st = c.SaveMerge();
  if (!st.ok()) {
    c.merge.reset();
    return roll_back(st);
  }
  TUSK_RETURN_IF_ERROR(c.files->Remove(staging_path));
  return c.files->SyncDir(c.dir);
}

std::optional<WsMerge> Workspace::StagedMerge() const {
  std::lock_guard lock(impl_->core->mu);
  return impl_->core->merge;
}

Status Workspace::MarkResolved(const std::vector<std::string>& paths) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  if (!c.merge) return Status::NotFound("no merge is staged in " + c.dataset + "@" + c.branch);
  WsMerge merge = *c.merge;
  for (const auto& p : paths) {
    auto it = std::find_if(merge.conflicts.begin(), merge.conflicts.end(), [&](const auto& x) { return x.path == p; });
    if (it == merge.conflicts.end())
      return Status::NotFound(ws::QuotedRel(p) + " is not a conflict of the staged merge of " + merge.source);
    it->resolved = true;
  }
  std::swap(*c.merge, merge);
  Status st = c.SaveMerge();
  if (!st.ok()) std::swap(*c.merge, merge);
  return st;
}

}  // namespace tusk
