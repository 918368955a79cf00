#include "store/objects.h"

#include <sys/stat.h>

#include <algorithm>
#include <tuple>

#include "store/internal/varint.h"
#include "store/refs.h"

namespace tusk {
namespace {

constexpr uint8_t kTreeFormat = 1;
constexpr uint8_t kCommitFormat = 1;
// Format 2 appends extension records (varint tag, string value) in
// ascending tag order; even tags may be skipped by readers that do not know
// them, odd ones may not.
constexpr uint8_t kCommitFormatExtended = 2;
constexpr uint64_t kCommitExtensionRun = 2;       // 32-byte id of a run record
constexpr uint64_t kCommitExtensionSettings = 4;  // 32-byte id of the settings checked against
constexpr uint64_t kCommitExtensionChecks = 6;    // check results (FORMAT.md, "Commits")
constexpr uint8_t kLeafPage = 0;
constexpr uint8_t kIndexPage = 1;
// The shortest encodings of a leaf entry and of an index page's child.
constexpr size_t kMinEntryBytes = 11;
constexpr size_t kMinChildBytes = 34;

// Page boundaries inside a large directory: after at least kMinPageEntries,
// cut after an entry whose name hash is 0 mod kPageCutModulus; never exceed
// kMaxPageEntries. Average page: ~320 entries.
constexpr size_t kMinPageEntries = 64;
constexpr uint64_t kPageCutModulus = 256;
constexpr size_t kMaxPageEntries = 2048;

uint64_t NameHash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a final mix
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

// One extension record: its tag and its whole encoding (tag, length, value).
struct ExtensionRecord {
  uint64_t tag;
  std::string_view value;
  std::string_view raw;
};

// Splits a TLV string into records; false if it is malformed.
bool SplitExtensions(std::string_view ext, std::vector<ExtensionRecord>* out) {
  Decoder d(ext);
  while (!d.empty()) {
    size_t start = ext.size() - d.remaining();
    ExtensionRecord r;
    if (!d.GetVarint(&r.tag) || !d.GetString(&r.value)) return false;
    r.raw = ext.substr(start, ext.size() - d.remaining() - start);
    out->push_back(r);
  }
  return true;
}

bool IsKnownTag(uint64_t tag) { return tag == kExtensionXattrs || tag == kExtensionLinkGroup; }

std::string EncodeXattrs(const std::vector<std::pair<std::string, std::string>>& xattrs) {
  Encoder e;
  e.PutVarint(xattrs.size());
  for (const auto& [name, value] : xattrs) {
    e.PutString(name);
    e.PutString(value);
  }
  return e.Take();
}

// The entry's extension field: the typed fields' records and the preserved
// unknown ones, in ascending tag order.
std::string EncodeExtensions(const TreeEntry& t) {
  std::vector<std::pair<uint64_t, std::string>> records;
  std::vector<ExtensionRecord> unknown;
  bool well_formed = SplitExtensions(t.extensions, &unknown);
  if (well_formed)
    for (const auto& r : unknown) records.emplace_back(r.tag, std::string(r.raw));
  auto add = [&](uint64_t tag, const std::string& value) {
    Encoder e;
    e.PutVarint(tag);
    e.PutString(value);
    records.emplace_back(tag, e.Take());
  };
  if (!t.xattrs.empty()) add(kExtensionXattrs, EncodeXattrs(t.xattrs));
  if (t.link_group) {
    Encoder g;
    g.PutVarint(*t.link_group);
    add(kExtensionLinkGroup, g.Take());
  }
  std::stable_sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& r : records) out += r.second;
  // Malformed preserved bytes go out as they are (CheckEntry refuses them
  // before a write; a decoder would refuse them too).
  if (!well_formed) out += t.extensions;
  return out;
}

void EncodeEntry(Encoder& e, const TreeEntry& t) {
  e.PutString(t.name);
  e.PutU8(static_cast<uint8_t>(t.kind));
  e.PutVarint(t.mode);
  e.PutVarint(t.uid);
  e.PutVarint(t.gid);
  e.PutVarint(t.size);
  e.PutSigned(t.mtime_sec);
  e.PutVarint(t.mtime_nsec);
  switch (t.kind) {
    case EntryKind::kFile:
      e.PutVarint(t.chunks.size());
      for (const auto& c : t.chunks) {
        e.PutBytes(c.id.view());
        e.PutVarint(c.length);
      }
      break;
    case EntryKind::kDirectory:
      e.PutBytes(t.tree.view());
      break;
    case EntryKind::kSymlink:
      e.PutString(t.target);
      break;
    case EntryKind::kSpecial:
      e.PutVarint(t.rdev);
      break;
  }
  e.PutString(EncodeExtensions(t));
}

bool ValidEntryName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

bool IsSpecialType(uint32_t mode) {
  uint32_t type = mode & S_IFMT;
  return type == S_IFIFO || type == S_IFCHR || type == S_IFBLK || type == S_IFSOCK;
}

bool TypeMatchesKind(EntryKind kind, uint32_t mode) {
  switch (kind) {
    case EntryKind::kFile: return (mode & S_IFMT) == S_IFREG;
    case EntryKind::kDirectory: return (mode & S_IFMT) == S_IFDIR;
    case EntryKind::kSymlink: return (mode & S_IFMT) == S_IFLNK;
    case EntryKind::kSpecial: return IsSpecialType(mode);
  }
  return false;
}

// The rules on the typed extension fields and on rdev, shared by the
// decoder (Corruption) and CheckEntry (InvalidArgument). Returns what is
// wrong, or an empty string.
std::string EntryFieldProblem(const TreeEntry& t) {
  if (!TypeMatchesKind(t.kind, t.mode)) return "the file type in its mode does not match its kind";
  if (t.kind == EntryKind::kSpecial) {
    uint32_t type = t.mode & S_IFMT;
    if (t.size != 0) return "a special file has size 0";
    if (t.rdev != 0 && type != S_IFCHR && type != S_IFBLK) return "only devices have a device number";
  } else if (t.rdev != 0) {
    return "only devices have a device number";
  }
  for (size_t i = 0; i < t.xattrs.size(); i++) {
    const auto& [name, value] = t.xattrs[i];
    if (!IsRecordableXattrName(name)) return "xattr name '" + EscapeForDisplay(name) + "' cannot be recorded";
    if (value.size() > kMaxXattrValueBytes) return "xattr " + name + " is longer than 64 KiB";
    if (i > 0 && !(t.xattrs[i - 1].first < name)) return "xattrs are not sorted by name, or repeat one";
  }
  if (t.link_group) {
    if (*t.link_group == 0) return "hard-link group 0";
    if (t.kind == EntryKind::kDirectory) return "a directory cannot be in a hard-link group";
  }
  return std::string();
}

Status DecodeXattrs(std::string_view bytes, TreeEntry* t) {
  Decoder d(bytes);
  uint64_t n;
  if (!d.GetVarint(&n) || n == 0 || n > d.remaining() / 2) return Status::Corruption("bad xattr list");
  t->xattrs.reserve(n);
  for (uint64_t i = 0; i < n; i++) {
    std::string_view name, value;
    if (!d.GetString(&name) || !d.GetString(&value)) return Status::Corruption("bad xattr list");
    t->xattrs.emplace_back(std::string(name), std::string(value));
  }
  if (!d.empty()) return Status::Corruption("trailing bytes after xattr list");
  return Status::Ok();
}

// Known tags become typed fields; unknown even ones are kept verbatim; an
// unknown odd ("critical") one means the entry cannot be read correctly.
Status DecodeExtensions(std::string_view ext, TreeEntry* t) {
  std::vector<ExtensionRecord> records;
  if (!SplitExtensions(ext, &records)) return Status::Corruption("bad tree entry extensions");
  for (size_t i = 0; i < records.size(); i++) {
    const ExtensionRecord& r = records[i];
    if (i > 0 && !(records[i - 1].tag < r.tag)) return Status::Corruption("tree entry extensions out of order");
    if (r.tag == kExtensionXattrs) {
      TUSK_RETURN_IF_ERROR(DecodeXattrs(r.value, t));
    } else if (r.tag == kExtensionLinkGroup) {
      Decoder d(r.value);
      uint64_t group;
      if (!d.GetVarint(&group) || !d.empty()) return Status::Corruption("bad hard-link group");
      t->link_group = group;
    } else if (r.tag & 1) {
      return Status::Unsupported("tree entry uses extension " + std::to_string(r.tag) + " unknown to this version");
    } else {
      t->extensions.append(r.raw);
    }
  }
  return Status::Ok();
}

Status DecodeEntry(Decoder& d, TreeEntry* t) {
  std::string_view name, target, ext;
  uint8_t kind;
  auto bad = [] { return Status::Corruption("bad tree entry"); };
  if (!d.GetString(&name) || !ValidEntryName(name) || !d.GetU8(&kind) || kind == 0) return bad();
  if (kind > 4)
    return Status::Unsupported("tree entry " + EscapeForDisplay(name) + " is of a kind (" + std::to_string(kind) +
                               ") unknown to this version");
  t->name.assign(name);
  t->kind = static_cast<EntryKind>(kind);
  if (!d.GetVarintAs(&t->mode) || !d.GetVarintAs(&t->uid) || !d.GetVarintAs(&t->gid) || !d.GetVarint(&t->size) ||
      !d.GetSigned(&t->mtime_sec) || !d.GetVarintAs(&t->mtime_nsec) || t->mtime_nsec >= 1000000000u)
    return bad();
  if (!TypeMatchesKind(t->kind, t->mode)) return bad();
  switch (t->kind) {
    case EntryKind::kFile: {
      uint64_t n, total = 0;
      if (!d.GetVarint(&n) || n > d.remaining() / 33) return bad();
      t->chunks.resize(n);
      for (auto& c : t->chunks) {
        std::string_view id;
        // The sum must not wrap: offsets into the file are computed from it.
        if (!d.GetBytes(32, &id) || !d.GetVarint(&c.length) || c.length == 0 || c.length > kMaxFileSize - total)
          return bad();
        c.id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
        total += c.length;
      }
      if (total != t->size) return Status::Corruption("tree entry " + t->name + ": chunk lengths do not add up to its size");
      break;
    }
    case EntryKind::kDirectory: {
      std::string_view id;
      if (!d.GetBytes(32, &id)) return bad();
      t->tree = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
      break;
    }
    case EntryKind::kSymlink:
      if (!d.GetString(&target)) return bad();
      t->target.assign(target);
      break;
    case EntryKind::kSpecial:
      if (!d.GetVarint(&t->rdev)) return bad();
      break;
  }
  if (!d.GetString(&ext)) return bad();
  TUSK_RETURN_IF_ERROR(DecodeExtensions(ext, t));
  std::string problem = EntryFieldProblem(*t);
  if (!problem.empty()) return Status::Corruption("tree entry " + EscapeForDisplay(t->name) + ": " + problem);
  return Status::Ok();
}

Result<TreePage> ReadPage(ObjectSource& source, const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(std::string bytes, source.ReadObject(id, ObjectType::kTree));
  auto page = DecodeTreePage(bytes);
  if (!page.ok()) return page.status().Annotate("tree " + id.ShortHex());
  return page;
}

Result<ObjectId> WritePage(ObjectSink& sink, const TreePage& page) {
  return sink.WriteObject(ObjectType::kTree, EncodeTreePage(page));
}

// Splits `items` into groups at content-defined boundaries of their names.
template <typename T, typename NameOf>
std::vector<std::vector<T>> SplitIntoPages(const std::vector<T>& items, NameOf name_of) {
  std::vector<std::vector<T>> pages(1);
  for (const auto& item : items) {
    pages.back().push_back(item);
    size_t n = pages.back().size();
    if (n >= kMaxPageEntries || (n >= kMinPageEntries && NameHash(name_of(item)) % kPageCutModulus == 0))
      pages.emplace_back();
  }
  if (pages.back().empty()) pages.pop_back();
  return pages;
}

Result<ObjectId> WriteIndexLevel(ObjectSink& sink, std::vector<TreePage::Child> children) {
  while (children.size() > kMaxLeafEntries) {
    std::vector<TreePage::Child> parents;
    for (auto& group : SplitIntoPages(children, [](const TreePage::Child& c) { return c.first_name; })) {
      TreePage page;
      page.is_index = true;
      uint64_t count = 0;
      for (const auto& c : group) count += c.entry_count;
      std::string first = group.front().first_name;
      page.children = std::move(group);
      TUSK_ASSIGN_OR_RETURN(ObjectId id, WritePage(sink, page));
      parents.push_back({first, id, count});
    }
    children = std::move(parents);
  }
  TreePage root;
  root.is_index = true;
  root.children = std::move(children);
  return WritePage(sink, root);
}

}  // namespace

namespace {
// Every field of an entry but its name. A new TreeEntry field must be
// added here (the size check below is a reminder).
auto AllButName(const TreeEntry& e) {
  return std::tie(e.kind, e.mode, e.uid, e.gid, e.size, e.mtime_sec, e.mtime_nsec, e.chunks, e.tree, e.target, e.rdev,
                  e.xattrs, e.link_group, e.extensions);
}
static_assert(sizeof(TreeEntry) == 240, "TreeEntry changed: update AllButName");
}  // namespace

bool TreeEntry::SameButName(const TreeEntry& other) const { return AllButName(*this) == AllButName(other); }

bool TreeEntry::SameContent(const TreeEntry& other) const {
  if (kind != other.kind) return false;
  switch (kind) {
    case EntryKind::kFile: return size == other.size && chunks == other.chunks;
    case EntryKind::kDirectory: return tree == other.tree;
    case EntryKind::kSymlink: return target == other.target;
    case EntryKind::kSpecial: return (mode & S_IFMT) == (other.mode & S_IFMT) && rdev == other.rdev;
  }
  return false;
}

Status CheckChunkLength(const ChunkRef& ref, uint64_t actual) {
  if (actual == ref.length) return Status::Ok();
  return Status::Corruption("chunk " + ref.id.Hex() + " holds " + std::to_string(actual) +
                            " bytes, but the file's chunk list gives it " + std::to_string(ref.length));
}

bool IsRecordableXattrName(std::string_view name) {
  constexpr std::string_view kUser = "user.", kReserved = "user.tusk.";
  return name.size() > kUser.size() && name.size() <= kMaxXattrNameBytes && name.substr(0, kUser.size()) == kUser &&
         name.substr(0, kReserved.size()) != kReserved && name.find('\0') == std::string_view::npos;
}

Status CheckEntry(const TreeEntry& t) {
  if (!ValidEntryName(t.name)) return Status::InvalidArgument("invalid entry name '" + EscapeForDisplay(t.name) + "'");
  std::string problem = EntryFieldProblem(t);
  if (!problem.empty()) return Status::InvalidArgument("entry '" + EscapeForDisplay(t.name) + "': " + problem);
  std::vector<ExtensionRecord> records;
  if (!SplitExtensions(t.extensions, &records))
    return Status::InvalidArgument("entry '" + EscapeForDisplay(t.name) + "': malformed extensions");
  for (size_t i = 0; i < records.size(); i++) {
    uint64_t tag = records[i].tag;
    if ((tag & 1) || IsKnownTag(tag) || (i > 0 && !(records[i - 1].tag < tag)))
      return Status::InvalidArgument("entry '" + EscapeForDisplay(t.name) + "': extension " + std::to_string(tag) +
                                     " cannot be kept as an unknown extension");
  }
  return Status::Ok();
}

std::string EncodeTreePage(const TreePage& page) {
  Encoder e;
  e.PutU8(kTreeFormat);
  if (!page.is_index) {
    e.PutU8(kLeafPage);
    e.PutVarint(page.entries.size());
    for (const auto& t : page.entries) EncodeEntry(e, t);
  } else {
    e.PutU8(kIndexPage);
    e.PutVarint(page.children.size());
    for (const auto& c : page.children) {
      e.PutString(c.first_name);
      e.PutBytes(c.id.view());
      e.PutVarint(c.entry_count);
    }
  }
  return e.Take();
}

Result<TreePage> DecodeTreePage(std::string_view bytes) {
  Decoder d(bytes);
  uint8_t format, kind;
  uint64_t n;
  if (!d.GetU8(&format)) return Status::Corruption("empty tree page");
  if (format != kTreeFormat) return Status::Unsupported("tree page format " + std::to_string(format) + " is not supported");
  // The count sizes a vector before the entries are decoded: it must fit the
  // bytes left (an entry takes at least 11, an index child 34).
  if (!d.GetU8(&kind) || kind > kIndexPage || !d.GetVarint(&n) ||
      n > d.remaining() / (kind == kIndexPage ? kMinChildBytes : kMinEntryBytes))
    return Status::Corruption("bad tree page header");
  TreePage page;
  page.is_index = kind == kIndexPage;
  if (!page.is_index) {
    page.entries.resize(n);
    for (auto& t : page.entries) TUSK_RETURN_IF_ERROR(DecodeEntry(d, &t));
    for (size_t i = 1; i < page.entries.size(); i++)
      if (!(page.entries[i - 1].name < page.entries[i].name)) return Status::Corruption("tree page entries out of order");
  } else {
    if (n == 0) return Status::Corruption("empty index page");
    page.children.resize(n);
    for (auto& c : page.children) {
      std::string_view name, id;
      if (!d.GetString(&name) || !d.GetBytes(32, &id) || !d.GetVarint(&c.entry_count))
        return Status::Corruption("bad index page entry");
      c.first_name.assign(name);
      c.id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
    }
    for (size_t i = 1; i < page.children.size(); i++)
      if (!(page.children[i - 1].first_name < page.children[i].first_name))
        return Status::Corruption("index page entries out of order");
  }
  if (!d.empty()) return Status::Corruption("trailing bytes after tree page");
  return page;
}

Result<ObjectId> WriteDirectory(ObjectSink& sink, const std::vector<TreeEntry>& entries) {
  return WriteDirectory(sink, std::vector<TreeEntry>(entries));
}

namespace {

// Writes encodings already checked (CheckEntry or DecodeEntry) and in order.
Result<ObjectId> WriteCheckedEncodings(ObjectSink& sink, const std::vector<EncodedEntry>& entries) {
  auto write_leaf = [&](const EncodedEntry* begin, const EncodedEntry* end) {
    size_t bytes = 16;
    for (auto* e = begin; e != end; e++) bytes += e->bytes.size();
    Encoder page;
    page.buffer().reserve(bytes);
    page.PutU8(kTreeFormat);
    page.PutU8(kLeafPage);
    page.PutVarint(static_cast<uint64_t>(end - begin));
    for (auto* e = begin; e != end; e++) page.PutBytes(e->bytes);
    return sink.WriteObject(ObjectType::kTree, page.Take());
  };
  if (entries.size() <= kMaxLeafEntries) return write_leaf(entries.data(), entries.data() + entries.size());
  std::vector<TreePage::Child> children;
  for (const auto& group : SplitIntoPages(entries, [](const EncodedEntry& e) { return e.name; })) {
    TUSK_ASSIGN_OR_RETURN(ObjectId id, write_leaf(group.data(), group.data() + group.size()));
    children.push_back({std::string(group.front().name), id, group.size()});
  }
  return WriteIndexLevel(sink, std::move(children));
}

// Clears the fields DecodeEntry fills only for some entries, keeping the
// capacity of the strings and vectors for the next entry.
void ClearForDecode(TreeEntry* t) {
  t->tree = ObjectId();
  t->target.clear();
  t->rdev = 0;
  t->xattrs.clear();
  t->link_group.reset();
  t->extensions.clear();
}

}  // namespace

Result<ObjectId> WriteDirectory(ObjectSink& sink, std::vector<TreeEntry>&& entries) {
  for (size_t i = 0; i < entries.size(); i++) {
    TUSK_RETURN_IF_ERROR(CheckEntry(entries[i]));
    if (i > 0 && !(entries[i - 1].name < entries[i].name))
      return Status::InvalidArgument("directory entries must be sorted and unique (at '" + entries[i].name + "')");
  }
  // All encodings in one buffer, then views into it: the buffer grows
  // while entries are encoded, so the views are made afterwards.
  Encoder all;
  std::vector<size_t> ends;
  ends.reserve(entries.size());
  for (const auto& t : entries) {
    EncodeEntry(all, t);
    ends.push_back(all.buffer().size());
  }
  std::vector<EncodedEntry> encoded(entries.size());
  std::string_view bytes = all.buffer();
  for (size_t i = 0, start = 0; i < entries.size(); start = ends[i++])
    encoded[i] = {entries[i].name, bytes.substr(start, ends[i] - start), entries[i].kind};
  return WriteCheckedEncodings(sink, encoded);
}

Result<EncodedDirectory> ReadEncodedDirectory(ObjectSource& source, const ObjectId& root) {
  EncodedDirectory dir;
  TreeEntry scratch;  // decoded into for the checks, its storage reused
  std::function<Status(const ObjectId&, int)> visit = [&](const ObjectId& id, int depth) -> Status {
    if (depth > 64) return Status::Corruption("tree " + root.ShortHex() + " is nested too deeply");
    TUSK_ASSIGN_OR_RETURN(std::string bytes, source.ReadObject(id, ObjectType::kTree));
    auto bad = [&](Status s) { return s.Annotate("tree " + id.ShortHex()); };
    if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == kTreeFormat &&
        static_cast<uint8_t>(bytes[1]) == kIndexPage) {
      auto page = DecodeTreePage(bytes);
      if (!page.ok()) return bad(page.status());
      for (const auto& c : page->children) TUSK_RETURN_IF_ERROR(visit(c.id, depth + 1));
      return Status::Ok();
    }
    auto& owned = dir.pages_.emplace_back(std::make_unique<std::string>(std::move(bytes)));
    std::string_view page = *owned;
    Decoder d(page);
    uint8_t format, kind;
    uint64_t n;
    if (!d.GetU8(&format)) return bad(Status::Corruption("empty tree page"));
    if (format != kTreeFormat)
      return bad(Status::Unsupported("tree page format " + std::to_string(format) + " is not supported"));
    if (!d.GetU8(&kind) || kind != kLeafPage || !d.GetVarint(&n) || n > d.remaining() / kMinEntryBytes)
      return bad(Status::Corruption("bad tree page header"));
    dir.entries_.reserve(dir.entries_.size() + n);
    for (uint64_t i = 0; i < n; i++) {
      size_t start = page.size() - d.remaining();
      ClearForDecode(&scratch);
      if (Status s = DecodeEntry(d, &scratch); !s.ok()) return bad(s);
      EncodedEntry entry = ViewOfEncoding(page.substr(start, page.size() - d.remaining() - start));
      if (!dir.entries_.empty() && !(dir.entries_.back().name < entry.name))
        return bad(Status::Corruption("tree page entries out of order"));
      dir.entries_.push_back(entry);
    }
    if (!d.empty()) return bad(Status::Corruption("trailing bytes after tree page"));
    return Status::Ok();
  };
  TUSK_RETURN_IF_ERROR(visit(root, 0));
  return dir;
}

Result<TreeEntry> DecodeEncodedEntry(std::string_view bytes) {
  Decoder d(bytes);
  TreeEntry t;
  TUSK_RETURN_IF_ERROR(DecodeEntry(d, &t));
  if (!d.empty()) return Status::Corruption("trailing bytes after tree entry " + EscapeForDisplay(t.name));
  return t;
}

Result<std::string> EncodeCheckedEntry(const TreeEntry& entry) {
  TUSK_RETURN_IF_ERROR(CheckEntry(entry));
  Encoder e;
  EncodeEntry(e, entry);
  return e.Take();
}

EncodedEntry ViewOfEncoding(std::string_view encoding) {
  // Only for encodings made or decoded here: the name comes first, the kind
  // byte right after it.
  Decoder d(encoding);
  EncodedEntry e;
  e.bytes = encoding;
  uint8_t kind = 0;
  d.GetString(&e.name);
  d.GetU8(&kind);
  e.kind = static_cast<EntryKind>(kind);
  return e;
}

Result<ObjectId> WriteEncodedDirectory(ObjectSink& sink, const std::vector<EncodedEntry>& entries) {
  for (size_t i = 1; i < entries.size(); i++)
    if (!(entries[i - 1].name < entries[i].name))
      return Status::InvalidArgument("directory entries must be sorted and unique (at '" +
                                     EscapeForDisplay(entries[i].name) + "')");
  return WriteCheckedEncodings(sink, entries);
}

Status ForEachEntry(ObjectSource& source, const ObjectId& root, const std::function<bool(const TreeEntry&)>& fn) {
  // Iterative depth-first walk over pages; returns false through `stop`.
  bool stop = false;
  std::function<Status(const ObjectId&)> visit = [&](const ObjectId& id) -> Status {
    TUSK_ASSIGN_OR_RETURN(TreePage page, ReadPage(source, id));
    if (!page.is_index) {
      for (const auto& t : page.entries)
        if (!fn(t)) {
          stop = true;
          break;
        }
      return Status::Ok();
    }
    for (const auto& c : page.children) {
      TUSK_RETURN_IF_ERROR(visit(c.id));
      if (stop) break;
    }
    return Status::Ok();
  };
  return visit(root);
}

Result<std::vector<TreeEntry>> ReadDirectory(ObjectSource& source, const ObjectId& root) {
  // Entries are moved out of each decoded page, not copied: merges and
  // diffs read thousands of directories, and a copy allocates per entry.
  std::vector<TreeEntry> out;
  std::function<Status(const ObjectId&, int)> visit = [&](const ObjectId& id, int depth) -> Status {
    if (depth > 64) return Status::Corruption("tree " + root.ShortHex() + " is nested too deeply");
    TUSK_ASSIGN_OR_RETURN(TreePage page, ReadPage(source, id));
    if (!page.is_index) {
      if (out.empty()) return (out = std::move(page.entries), Status::Ok());
      out.insert(out.end(), std::make_move_iterator(page.entries.begin()), std::make_move_iterator(page.entries.end()));
      return Status::Ok();
    }
    for (const auto& c : page.children) TUSK_RETURN_IF_ERROR(visit(c.id, depth + 1));
    return Status::Ok();
  };
  TUSK_RETURN_IF_ERROR(visit(root, 0));
  return out;
}

Result<std::optional<TreeEntry>> LookupEntry(ObjectSource& source, const ObjectId& root, std::string_view name) {
  ObjectId id = root;
  for (int depth = 0; depth < 64; depth++) {
    TUSK_ASSIGN_OR_RETURN(TreePage page, ReadPage(source, id));
    if (!page.is_index) {
      auto it = std::lower_bound(page.entries.begin(), page.entries.end(), name,
                                 [](const TreeEntry& t, std::string_view n) { return t.name < n; });
      if (it != page.entries.end() && it->name == name) return std::optional<TreeEntry>(std::move(*it));
      return std::optional<TreeEntry>();
    }
    // The last child whose first name is <= name.
    auto it = std::upper_bound(page.children.begin(), page.children.end(), name,
                               [](std::string_view n, const TreePage::Child& c) { return n < c.first_name; });
    if (it == page.children.begin()) return std::optional<TreeEntry>();
    id = std::prev(it)->id;
  }
  return Status::Corruption("tree " + root.ShortHex() + " is nested too deeply");
}

Result<TreeEntry> LookupPath(ObjectSource& source, const ObjectId& root, std::string_view path) {
  TreeEntry current;
  current.kind = EntryKind::kDirectory;
  current.mode = S_IFDIR | 0755;
  current.tree = root;
  std::string walked;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (current.kind != EntryKind::kDirectory) return Status::NotFound(walked + " is not a directory");
    TUSK_ASSIGN_OR_RETURN(std::optional<TreeEntry> next, LookupEntry(source, current.tree, part));
    walked += (walked.empty() ? "" : "/") + std::string(part);
    if (!next) return Status::NotFound("no such file or directory: " + walked);
    current = std::move(*next);
  }
  return current;
}

Status ForEachPage(ObjectSource& source, const ObjectId& root, const std::function<void(const ObjectId&)>& fn) {
  fn(root);
  TUSK_ASSIGN_OR_RETURN(TreePage page, ReadPage(source, root));
  if (page.is_index)
    for (const auto& c : page.children) TUSK_RETURN_IF_ERROR(ForEachPage(source, c.id, fn));
  return Status::Ok();
}

const char* CheckOutcomeName(CheckResult::Outcome outcome) {
  switch (outcome) {
    case CheckResult::Outcome::kPassed: return "passed";
    case CheckResult::Outcome::kFailed: return "failed";
    case CheckResult::Outcome::kSkipped: return "skipped";
  }
  return "?";
}

namespace {

Status DecodeCheckResults(std::string_view bytes, Commit* c) {
  auto bad = [] { return Status::Corruption("bad check results in a commit"); };
  Decoder d(bytes);
  uint64_t n;
  if (!d.GetVarint(&n) || n > d.remaining()) return bad();
  std::string_view s;
  for (uint64_t i = 0; i < n; i++) {
    CheckResult r;
    uint8_t outcome;
    if (!d.GetString(&s)) return bad();
    r.name.assign(s);
    if (!d.GetU8(&outcome) || outcome < 1 || outcome > 3 || !d.GetVarint(&r.duration_ms) || !d.GetString(&s))
      return bad();
    r.outcome = static_cast<CheckResult::Outcome>(outcome);
    r.output_tail.assign(s);
    c->checks.push_back(std::move(r));
  }
  if (!d.GetString(&s)) return bad();
  c->checks_skipped_by.assign(s);
  if (!d.GetString(&s)) return bad();
  c->checks_skipped_reason.assign(s);
  if (!d.empty()) return bad();
  return Status::Ok();
}

}  // namespace

std::string EncodeCommit(const Commit& c) {
  Encoder e;
  bool checked = c.settings || !c.checks.empty() || !c.checks_skipped_reason.empty();
  e.PutU8(c.run || checked ? kCommitFormatExtended : kCommitFormat);
  e.PutString(c.dataset);
  e.PutBytes(c.root.view());
  e.PutVarint(c.parents.size());
  for (const auto& p : c.parents) e.PutBytes(p.view());
  e.PutString(c.author);
  e.PutSigned(c.time_sec);
  e.PutString(c.message);
  e.PutVarint(c.metadata.size());
  for (const auto& [k, v] : c.metadata) {
    e.PutString(k);
    e.PutString(v);
  }
  e.PutVarint(c.provenance.size());
  for (const auto& p : c.provenance) {
    e.PutString(p.dataset);
    e.PutBytes(p.commit.view());
  }
  e.PutVarint(c.file_count);
  e.PutVarint(c.total_bytes);
  if (c.run || checked) {
    e.PutVarint((c.run ? 1 : 0) + (c.settings ? 1 : 0) + (checked ? 1 : 0));
    if (c.run) {
      e.PutVarint(kCommitExtensionRun);
      e.PutString(c.run->view());
    }
    if (c.settings) {
      e.PutVarint(kCommitExtensionSettings);
      e.PutString(c.settings->view());
    }
    if (checked) {
      Encoder checks;
      checks.PutVarint(c.checks.size());
      for (const auto& r : c.checks) {
        checks.PutString(r.name);
        checks.PutU8(static_cast<uint8_t>(r.outcome));
        checks.PutVarint(r.duration_ms);
        checks.PutString(r.output_tail);
      }
      checks.PutString(c.checks_skipped_by);
      checks.PutString(c.checks_skipped_reason);
      e.PutVarint(kCommitExtensionChecks);
      e.PutString(checks.Take());
    }
  }
  return e.Take();
}

Result<Commit> DecodeCommit(std::string_view bytes) {
  Decoder d(bytes);
  Commit c;
  uint8_t format;
  std::string_view s, id;
  uint64_t n;
  auto bad = [] { return Status::Corruption("bad commit encoding"); };
  auto get_id = [&](ObjectId* out) {
    if (!d.GetBytes(32, &id)) return false;
    *out = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
    return true;
  };
  if (!d.GetU8(&format)) return bad();
  if (format != kCommitFormat && format != kCommitFormatExtended)
    return Status::Unsupported("commit format " + std::to_string(format) + " is not supported");
  if (!d.GetString(&s)) return bad();
  c.dataset.assign(s);
  if (!get_id(&c.root) || !d.GetVarint(&n) || n > d.remaining() / 32) return bad();
  c.parents.resize(n);
  for (auto& p : c.parents)
    if (!get_id(&p)) return bad();
  if (!d.GetString(&s)) return bad();
  c.author.assign(s);
  if (!d.GetSigned(&c.time_sec) || !d.GetString(&s)) return bad();
  c.message.assign(s);
  if (!d.GetVarint(&n) || n > d.remaining()) return bad();
  for (uint64_t i = 0; i < n; i++) {
    std::string_view k, v;
    if (!d.GetString(&k) || !d.GetString(&v)) return bad();
    c.metadata.emplace_back(std::string(k), std::string(v));
  }
  if (!d.GetVarint(&n) || n > d.remaining()) return bad();
  for (uint64_t i = 0; i < n; i++) {
    Provenance p;
    if (!d.GetString(&s) || !get_id(&p.commit)) return bad();
    p.dataset.assign(s);
    c.provenance.push_back(std::move(p));
  }
  if (!d.GetVarint(&c.file_count) || !d.GetVarint(&c.total_bytes)) return bad();
  if (format == kCommitFormatExtended) {
    if (!d.GetVarint(&n) || n == 0 || n > d.remaining()) return bad();
    uint64_t last_tag = 0;
    for (uint64_t i = 0; i < n; i++) {
      uint64_t tag;
      if (!d.GetVarint(&tag) || (i > 0 && tag <= last_tag) || !d.GetString(&s)) return bad();
      last_tag = tag;
      if (tag == kCommitExtensionRun) {
        if (s.size() != ObjectId::kSize) return bad();
        c.run = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(s.data()));
      } else if (tag == kCommitExtensionSettings) {
        if (s.size() != ObjectId::kSize) return bad();
        c.settings = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(s.data()));
      } else if (tag == kCommitExtensionChecks) {
        TUSK_RETURN_IF_ERROR(DecodeCheckResults(s, &c));
      } else if (tag % 2 == 1) {
        return Status::Unsupported("commit extension " + std::to_string(tag) + " is not supported");
      }
    }
  }
  if (!d.empty()) return bad();
  return c;
}

}  // namespace tusk
