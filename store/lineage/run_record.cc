// Run records and read sets (store/lineage/lineage.h; encodings in
// store/FORMAT.md, "Run records").
#include <algorithm>
#include <functional>
#include <map>

#include "store/internal/varint.h"
#include "store/lineage/lineage.h"
#include "store/repository.h"

namespace tusk {
namespace {

constexpr uint8_t kRunFormat = 1;

void PutId(Encoder& e, const ObjectId& id) { e.PutBytes(id.view()); }
bool GetId(Decoder& d, ObjectId* out) {
  std::string_view v;
  if (!d.GetBytes(ObjectId::kSize, &v)) return false;
  *out = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(v.data()));
  return true;
}
void PutPairs(Encoder& e, const std::vector<std::pair<std::string, std::string>>& pairs) {
  e.PutVarint(pairs.size());
  for (const auto& [k, v] : pairs) {
    e.PutString(k);
    e.PutString(v);
  }
}
bool GetPairs(Decoder& d, std::vector<std::pair<std::string, std::string>>* out) {
  uint64_t n;
  if (!d.GetVarint(&n) || n > d.remaining()) return false;
  for (uint64_t i = 0; i < n; i++) {
    std::string_view k, v;
    if (!d.GetString(&k) || !d.GetString(&v)) return false;
    out->emplace_back(std::string(k), std::string(v));
  }
  return true;
}
bool GetStr(Decoder& d, std::string* out) {
  std::string_view s;
  if (!d.GetString(&s)) return false;
  out->assign(s);
  return true;
}

// One directory of a read set while it is being built: views into the
// ReadSet, copied only when the directory must be encoded.
struct DirBuild {
  std::map<std::string, DirBuild, std::less<>> subdirs;
  std::vector<std::pair<std::string_view, const TreeEntry*>> files;  // name, entry
};

// The read tree of `dir`, a directory of the input whose tree is
// `input_dir` and entry count `input_entries` (0 when unknown). A directory
// whose every entry was read is the input's own tree: no page is encoded
// (a run that reads a whole dataset stores nothing but its root).
Result<ObjectId> WriteDir(Repository& repo, WriteSession& session, const ObjectId& input_dir, uint64_t input_entries,
                          DirBuild& dir) {
  // The input's entries of the subdirectories read: looked up one by one
  // when they are few, else in one pass over the input directory (a lookup
  // decodes a whole page: a thousand of them in one directory cost seconds).
  std::map<std::string, TreeEntry, std::less<>> input_entries_by_name;
  constexpr size_t kLookupsBeforeScan = 8;
  if (dir.subdirs.size() > kLookupsBeforeScan) {
    TUSK_RETURN_IF_ERROR(ForEachEntry(repo, input_dir, [&](const TreeEntry& t) {
      if (dir.subdirs.count(t.name)) input_entries_by_name.emplace(t.name, t);
      return input_entries_by_name.size() < dir.subdirs.size();
    }));
  }
  std::vector<TreeEntry> subdir_entries;
  bool all_subdirs_whole = true;
  for (auto& [name, sub] : dir.subdirs) {
    // The directory's own entry as the input has it, so that a directory
    // read whole encodes exactly as the input's (and is stored once).
    std::optional<TreeEntry> in;
    if (dir.subdirs.size() > kLookupsBeforeScan) {
      auto it = input_entries_by_name.find(name);
      if (it != input_entries_by_name.end()) in = std::move(it->second);
    } else {
      TUSK_ASSIGN_OR_RETURN(in, LookupEntry(repo, input_dir, name));
    }
    if (!in || in->kind != EntryKind::kDirectory)
      return Status::InvalidArgument("read set names '" + name + "', which is not a directory of the input");
    TreeEntry e = std::move(*in);
    uint64_t sub_entries = e.size;  // a directory's size is its entry count
    TUSK_ASSIGN_OR_RETURN(ObjectId sub_tree, WriteDir(repo, session, e.tree, sub_entries, sub));
    if (sub_tree != e.tree) {
      all_subdirs_whole = false;
      e.tree = sub_tree;
      e.size = sub.files.size() + sub.subdirs.size();
    }
    subdir_entries.push_back(std::move(e));
  }
  // The names read are a subset of the input's names, files and
  // directories apart: as many as the input has means all of them.
  if (all_subdirs_whole && input_entries != 0 && dir.files.size() + dir.subdirs.size() == input_entries)
    return input_dir;
  std::vector<TreeEntry> entries;
  entries.reserve(dir.files.size() + subdir_entries.size());
  for (const auto& [name, entry] : dir.files) {
    entries.push_back(*entry);
    entries.back().name.assign(name);
  }
  for (auto& e : subdir_entries) entries.push_back(std::move(e));
  std::sort(entries.begin(), entries.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.name < b.name; });
  for (size_t i = 1; i < entries.size(); i++)
    if (entries[i].name == entries[i - 1].name)
      return Status::InvalidArgument("read set names '" + entries[i].name + "' as a file and as a directory");
  return WriteDirectory(session, entries);
}

}  // namespace

std::string EncodeRun(const RunRecord& r) {
  Encoder e;
  e.PutU8(kRunFormat);
  e.PutVarint(r.argv.size());
  for (const auto& a : r.argv) e.PutString(a);
  e.PutString(r.cwd);
  e.PutSigned(r.start_ns);
  e.PutSigned(r.end_ns);
  e.PutSigned(r.exit_status);
  e.PutString(r.user);
  e.PutString(r.host);
  e.PutString(r.tusk_version);
  e.PutString(r.message);
  e.PutVarint(r.inputs.size());
  for (const auto& in : r.inputs) {
    e.PutString(in.name);
    e.PutString(in.dataset);
    e.PutString(in.ref);
    PutId(e, in.commit);
    PutId(e, in.read_tree);
    PutId(e, in.listed);
    e.PutVarint(in.files_read);
    e.PutVarint(in.dirs_listed);
  }
  PutPairs(e, r.env);
  PutPairs(e, r.meta);
  e.PutU8(r.code ? 1 : 0);
  if (r.code) {
    e.PutString(r.code->repository);
    e.PutString(r.code->commit);
    e.PutString(r.code->branch);
    e.PutU8(r.code->dirty ? 1 : 0);
    e.PutString(r.code->diff_digest);
  }
  e.PutString(r.out_dataset);
  e.PutString(r.out_branch);
  e.PutU8(r.out_parent ? 1 : 0);
  if (r.out_parent) PutId(e, *r.out_parent);
  return e.Take();
}

Result<RunRecord> DecodeRun(std::string_view bytes) {
  Decoder d(bytes);
  RunRecord r;
  auto bad = [] { return Status::Corruption("bad run record encoding"); };
  uint8_t format, flag;
  uint64_t n;
  if (!d.GetU8(&format)) return bad();
  if (format != kRunFormat) return Status::Unsupported("run record format " + std::to_string(format) + " is not supported");
  if (!d.GetVarint(&n) || n > d.remaining()) return bad();
  for (uint64_t i = 0; i < n; i++) {
    std::string a;
    if (!GetStr(d, &a)) return bad();
    r.argv.push_back(std::move(a));
  }
  int64_t status;
  if (!GetStr(d, &r.cwd) || !d.GetSigned(&r.start_ns) || !d.GetSigned(&r.end_ns) || !d.GetSigned(&status) ||
      status < -1 || status > kRunMaxStatus)
    return bad();
  r.exit_status = static_cast<int>(status);
  if (!GetStr(d, &r.user) || !GetStr(d, &r.host) || !GetStr(d, &r.tusk_version) || !GetStr(d, &r.message)) return bad();
  if (!d.GetVarint(&n) || n > d.remaining()) return bad();
  for (uint64_t i = 0; i < n; i++) {
    RunInput in;
    if (!GetStr(d, &in.name) || !GetStr(d, &in.dataset) || !GetStr(d, &in.ref) || !GetId(d, &in.commit) ||
        !GetId(d, &in.read_tree) || !GetId(d, &in.listed) || !d.GetVarint(&in.files_read) ||
        !d.GetVarint(&in.dirs_listed))
      return bad();
    r.inputs.push_back(std::move(in));
  }
  if (!GetPairs(d, &r.env) || !GetPairs(d, &r.meta) || !d.GetU8(&flag) || flag > 1) return bad();
  if (flag) {
    CodeVersion c;
    uint8_t dirty;
    if (!GetStr(d, &c.repository) || !GetStr(d, &c.commit) || !GetStr(d, &c.branch) || !d.GetU8(&dirty) || dirty > 1 ||
        !GetStr(d, &c.diff_digest))
      return bad();
    c.dirty = dirty == 1;
    r.code = std::move(c);
  }
  if (!GetStr(d, &r.out_dataset) || !GetStr(d, &r.out_branch) || !d.GetU8(&flag) || flag > 1) return bad();
  if (flag) {
    ObjectId p;
    if (!GetId(d, &p)) return bad();
    r.out_parent = p;
  }
  if (!d.empty()) return bad();
  return r;
}

Status WriteReadSet(Repository& repo, WriteSession& session, const ObjectId& input_root, const ReadSet& reads,
                    RunInput* input) {
  DirBuild root;
  // Paths come sorted, so a file's directory is usually the previous one's.
  DirBuild* last_dir = &root;
  std::string_view last_prefix;
  for (const auto& [path, entry] : reads.files) {
    std::string_view p(path);
    size_t last_slash = p.rfind('/');
    std::string_view prefix = last_slash == std::string_view::npos ? std::string_view() : p.substr(0, last_slash);
    if (prefix != last_prefix) {
      DirBuild* dir = &root;
      size_t start = 0;
      for (size_t slash; start < prefix.size(); start = slash + 1) {
        slash = prefix.find('/', start);
        if (slash == std::string_view::npos) slash = prefix.size();
        std::string_view part = prefix.substr(start, slash - start);
        auto it = dir->subdirs.find(part);
        if (it == dir->subdirs.end()) it = dir->subdirs.emplace(std::string(part), DirBuild()).first;
        dir = &it->second;
      }
      last_dir = dir;
      last_prefix = prefix;
    }
    last_dir->files.emplace_back(last_slash == std::string_view::npos ? p : p.substr(last_slash + 1), &entry);
  }
  TUSK_ASSIGN_OR_RETURN(input->read_tree, WriteDir(repo, session, input_root, 0, root));
  input->files_read = reads.files.size();
  input->dirs_listed = reads.dirs.size();
  input->listed = ObjectId();
  if (!reads.dirs.empty()) {
    std::string listed;
    for (const auto& d : reads.dirs) {
      listed += d;
      listed += '\0';
    }
    input->listed = Sha256::Of(listed.data(), listed.size());
    TUSK_RETURN_IF_ERROR(session.PutChunk(input->listed, listed).status());
  }
  return Status::Ok();
}

Status ForEachReadFile(Repository& repo, const ObjectId& read_tree,
                       const std::function<Status(const std::string& path, const TreeEntry&)>& fn) {
  std::function<Status(const ObjectId&, const std::string&)> walk = [&](const ObjectId& dir,
                                                                          const std::string& prefix) -> Status {
    TUSK_ASSIGN_OR_RETURN(std::vector<TreeEntry> entries, ReadDirectory(repo, dir));
    for (const auto& e : entries) {
      std::string path = prefix.empty() ? e.name : prefix + "/" + e.name;
      if (e.kind == EntryKind::kDirectory) TUSK_RETURN_IF_ERROR(walk(e.tree, path));
      else TUSK_RETURN_IF_ERROR(fn(path, e));
    }
    return Status::Ok();
  };
  return walk(read_tree, "");
}

Result<std::vector<std::string>> ReadListedDirs(Repository& repo, const RunInput& input) {
  std::vector<std::string> out;
  if (input.listed.IsZero()) return out;
  TUSK_ASSIGN_OR_RETURN(std::string bytes, repo.ReadObject(input.listed, ObjectType::kChunk));
  if (!bytes.empty() && bytes.back() != '\0') return Status::Corruption("listed directories of a run: not NUL-terminated");
  size_t start = 0;
  for (size_t nul; (nul = bytes.find('\0', start)) != std::string::npos; start = nul + 1)
    out.push_back(bytes.substr(start, nul - start));
  return out;
}

}  // namespace tusk
