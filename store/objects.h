// Trees and commits: the immutable objects a dataset version is made of.
//
// A directory is a Merkle tree of pages. A directory with at most
// kMaxLeafEntries entries is one leaf page; a larger one is split into leaf
// pages at content-defined boundaries (a hash of the entry name), so adding
// or removing one name rewrites one leaf and the index page above it, not
// the whole directory. Index pages list their children's first names, so a
// lookup is a binary search per level, never a linear scan.
//
// A regular file's content is its list of chunks (id and length). A ChunkRef
// with the all-zero id is a hole: `length` zero bytes that are not stored.
//
// Every entry keeps full st_mode bits, owner, size and mtime. Entries are
// files, directories, symlinks or *special* files (fifos, sockets, character
// and block devices: mode and device number only). An entry's extension
// field (tag-length-value, FORMAT.md) carries its user xattrs and its
// hard-link group; TreeEntry exposes them as typed fields (`xattrs`,
// `link_group`) and keeps the records of tags this version does not know in
// `extensions`, verbatim. Decoders refuse unknown critical (odd) tags.
//
// Thread-safety: plain values; the free functions are reentrant.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/ids.h"
#include "store/status.h"

namespace tusk {

// Kind 4 is new: readers that predate it refuse a tree holding one.
enum class EntryKind : uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3, kSpecial = 4 };

// Extension tags (FORMAT.md "Tree pages"). Even tags are non-critical.
inline constexpr uint64_t kExtensionXattrs = 2;     // user xattrs
inline constexpr uint64_t kExtensionLinkGroup = 4;  // hard-link group

// Limits on recorded xattrs (Linux's own: XATTR_NAME_MAX, XATTR_SIZE_MAX).
inline constexpr size_t kMaxXattrNameBytes = 255;
inline constexpr size_t kMaxXattrValueBytes = 65536;

// Whether an xattr name is one a tree entry may record: the `user.`
// namespace with a non-empty rest and no NUL, at most kMaxXattrNameBytes,
// and not `user.tusk.*` (reserved: the mount and workspaces use those names
// for their own purposes, and they are never recorded).
bool IsRecordableXattrName(std::string_view name);

struct ChunkRef {
  ObjectId id;  // all-zero: a hole
  uint64_t length = 0;
  bool IsHole() const { return id.IsZero(); }
  bool operator==(const ChunkRef&) const = default;
};

// Corruption unless a chunk read for `ref` holds exactly ref.length bytes
// (`actual`). A tree's chunk list is trusted only as far as the chunks it
// names agree with it: every reader of file content checks this before it
// uses a byte of the chunk.
Status CheckChunkLength(const ChunkRef& ref, uint64_t actual);

// The largest file size a tree entry may give (off_t's range).
inline constexpr uint64_t kMaxFileSize = (uint64_t{1} << 63) - 1;

struct TreeEntry {
  std::string name;
  EntryKind kind = EntryKind::kFile;
  uint32_t mode = 0;  // full st_mode, including the S_IFMT type bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // file: bytes; symlink: target length; directory: entry count; special: 0
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  std::vector<ChunkRef> chunks;  // kFile
  ObjectId tree;                 // kDirectory: root page of the subdirectory
  std::string target;            // kSymlink
  uint64_t rdev = 0;             // kSpecial: device number of a character or block device, else 0
  // User xattrs, sorted by name, names unique and IsRecordableXattrName.
  std::vector<std::pair<std::string, std::string>> xattrs;
  // Hard-link group (not for directories), never 0: entries of one commit
  // with the same number are names of one file, so they have the same kind,
  // content, mode, owner, mtime and xattrs. Writers number groups within a
  // commit; a group may be left with one member (the others deleted).
  std::optional<uint64_t> link_group;
  // Extension records of tags this version does not know (even tags only),
  // as (varint tag, string value) records in ascending tag order, kept
  // verbatim. Not for the tags above: those are the typed fields.
  std::string extensions;

  // Same content (for files: same chunks; directories: same tree; symlinks:
  // same target; specials: same type and device number), ignoring name and
  // metadata.
  bool SameContent(const TreeEntry& other) const;
  // Equal in every field but the name (compared in place, no copies).
  bool SameButName(const TreeEntry& other) const;
  bool operator==(const TreeEntry&) const = default;
};

// Reads and writes encoded objects; implemented by the repository.
class ObjectSource {
 public:
  virtual ~ObjectSource() = default;
  virtual Result<std::string> ReadObject(const ObjectId& id, ObjectType type) = 0;
};
class ObjectSink {
 public:
  virtual ~ObjectSink() = default;
  // Stores an encoded tree or commit (deduplicated) and returns its id.
  virtual Result<ObjectId> WriteObject(ObjectType type, std::string encoding) = 0;
};

inline constexpr size_t kMaxLeafEntries = 1024;

// Whether an entry can be encoded and decoded back as it is: a valid name,
// S_IFMT matching the kind, the xattr and link-group rules above, rdev only
// on devices, and well-formed unknown extensions. InvalidArgument otherwise.
Status CheckEntry(const TreeEntry& entry);

// Writes a directory. `entries` must be sorted by name with no duplicates
// and each pass CheckEntry (InvalidArgument otherwise). Returns the id of its
// root page.
Result<ObjectId> WriteDirectory(ObjectSink& sink, const std::vector<TreeEntry>& entries);
// The same, taking the entries (no copy of them is made).
Result<ObjectId> WriteDirectory(ObjectSink& sink, std::vector<TreeEntry>&& entries);

// A directory as its entries' encodings, for walks that compare many
// entries and change few (the tree merge at a million files): decoding a
// TreeEntry allocates, comparing bytes does not. An entry's encoding is a
// function of the entry, so equal bytes are equal entries; unequal bytes
// may still decode to equal entries (an encoding written by an older
// version), so a byte comparison can only prove equality.
struct EncodedEntry {
  std::string_view name;
  std::string_view bytes;  // the whole encoding, name included
  EntryKind kind = EntryKind::kFile;
};
class EncodedDirectory {
 public:
  const std::vector<EncodedEntry>& entries() const { return entries_; }

 private:
  friend Result<EncodedDirectory> ReadEncodedDirectory(ObjectSource& source, const ObjectId& root);
  std::vector<std::unique_ptr<std::string>> pages_;  // the views point into these (never moved)
  std::vector<EncodedEntry> entries_;
};
// Reads a directory as encodings, each entry decoded and checked as
// ReadDirectory does (Corruption otherwise), and the names in order across
// all its pages.
Result<EncodedDirectory> ReadEncodedDirectory(ObjectSource& source, const ObjectId& root);
// One entry from its encoding (EncodedEntry::bytes).
Result<TreeEntry> DecodeEncodedEntry(std::string_view bytes);
// The encoding of an entry that passes CheckEntry (InvalidArgument otherwise).
Result<std::string> EncodeCheckedEntry(const TreeEntry& entry);
// The view of an encoding from EncodeCheckedEntry (which must outlive it).
EncodedEntry ViewOfEncoding(std::string_view encoding);
// WriteDirectory of encodings from the two functions above, sorted by name
// with no duplicates (InvalidArgument otherwise); the same pages
// WriteDirectory writes for the decoded entries.
Result<ObjectId> WriteEncodedDirectory(ObjectSink& sink, const std::vector<EncodedEntry>& entries);

// Calls fn for every entry of the directory in name order; stops early when
// fn returns false.
Status ForEachEntry(ObjectSource& source, const ObjectId& root, const std::function<bool(const TreeEntry&)>& fn);
Result<std::vector<TreeEntry>> ReadDirectory(ObjectSource& source, const ObjectId& root);
// Finds one name, reading only the pages on its path.
Result<std::optional<TreeEntry>> LookupEntry(ObjectSource& source, const ObjectId& root, std::string_view name);
// Resolves a slash-separated path ("" or "/" is the root itself, returned as
// a directory entry named "").
Result<TreeEntry> LookupPath(ObjectSource& source, const ObjectId& root, std::string_view path);
// The ids of the pages that make up a directory (the root and, for large
// directories, the pages below it), for reachability walks.
Status ForEachPage(ObjectSource& source, const ObjectId& root, const std::function<void(const ObjectId&)>& fn);

struct Provenance {
  std::string dataset;
  ObjectId commit;
  bool operator==(const Provenance&) const = default;
};

// What one check (store/settings/settings.h) said about a commit.
struct CheckResult {
  enum class Outcome : uint8_t { kPassed = 1, kFailed = 2, kSkipped = 3 };
  std::string name;
  Outcome outcome = Outcome::kPassed;
  uint64_t duration_ms = 0;
  std::string output_tail;  // the last lines of its output (at most kCheckOutputTail bytes)
  bool operator==(const CheckResult&) const = default;
};
inline constexpr size_t kCheckOutputTail = 4096;
const char* CheckOutcomeName(CheckResult::Outcome outcome);  // "passed", "failed", "skipped"

struct Commit {
  std::string dataset;
  ObjectId root;
  std::vector<ObjectId> parents;
  std::string author;
  int64_t time_sec = 0;  // Unix time of the commit
  std::string message;
  std::vector<std::pair<std::string, std::string>> metadata;  // in the order given
  std::vector<Provenance> provenance;
  uint64_t file_count = 0;   // regular files in the tree
  uint64_t total_bytes = 0;  // sum of their sizes
  // The run record (store/lineage/lineage.h) whose output this commit is.
  // A commit with a run, settings or check results is encoded in commit
  // format 2 (with extensions); without, format 1.
  std::optional<ObjectId> run;
  // The version of the dataset's settings this commit was checked against,
  // and what each of its checks said; with --skip-checks, who skipped them
  // and why (the checks are then listed as kSkipped).
  std::optional<ObjectId> settings;
  std::vector<CheckResult> checks;
  std::string checks_skipped_by, checks_skipped_reason;
  bool operator==(const Commit&) const = default;
};

std::string EncodeCommit(const Commit& commit);
Result<Commit> DecodeCommit(std::string_view bytes);

// Page codec, exposed for tests and fuzzing.
struct TreePage {
  bool is_index = false;
  std::vector<TreeEntry> entries;  // leaf
  struct Child {
    std::string first_name;
    ObjectId id;
    uint64_t entry_count = 0;
  };
  std::vector<Child> children;  // index
};
std::string EncodeTreePage(const TreePage& page);
Result<TreePage> DecodeTreePage(std::string_view bytes);

}  // namespace tusk
