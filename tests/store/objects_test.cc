// Specification of trees and commits (store/objects.h): the page and commit
// codecs, and directories written to and read from an object store.

#include "store/objects.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/internal/varint.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

// An object store in memory; counts the objects that were new to it.
class MemoryStore : public ObjectSource, public ObjectSink {
 public:
  Result<std::string> ReadObject(const ObjectId& id, ObjectType type) override {
    reads_++;
    auto it = objects_.find(id);
    if (it == objects_.end()) return Status::NotFound("no object " + id.Hex());
    if (it->second.first != type) return Status::Corruption("wrong type for " + id.Hex());
    return it->second.second;
  }
  Result<ObjectId> WriteObject(ObjectType type, std::string encoding) override {
    ObjectId id = HashObject(type, encoding);
    if (objects_.emplace(id, std::make_pair(type, std::move(encoding))).second) new_objects_++;
    return id;
  }

  size_t size() const { return objects_.size(); }
  size_t new_objects() const { return new_objects_; }
  void reset_counters() {
    new_objects_ = 0;
    reads_ = 0;
  }
  size_t reads() const { return reads_; }

 private:
  std::map<ObjectId, std::pair<ObjectType, std::string>> objects_;
  size_t new_objects_ = 0;
  size_t reads_ = 0;
};

ObjectId IdOf(const std::string& s) { return Sha256::Of(s.data(), s.size()); }

TreeEntry File(std::string name, std::vector<ChunkRef> chunks) {
  TreeEntry e;
  e.name = std::move(name);
  e.kind = EntryKind::kFile;
  e.mode = S_IFREG | 0644;
  e.uid = 1000;
  e.gid = 100;
  for (const auto& c : chunks) e.size += c.length;
  e.chunks = std::move(chunks);
  e.mtime_sec = 1700000000;
  e.mtime_nsec = 123456789;
  return e;
}

TreeEntry Dir(std::string name, const ObjectId& tree, uint64_t count) {
  TreeEntry e;
  e.name = std::move(name);
  e.kind = EntryKind::kDirectory;
  e.mode = S_IFDIR | 0755;
  e.tree = tree;
  e.size = count;
  e.mtime_sec = -5;  // before the epoch
  return e;
}

TreeEntry Symlink(std::string name, std::string target) {
  TreeEntry e;
  e.name = std::move(name);
  e.kind = EntryKind::kSymlink;
  e.mode = S_IFLNK | 0777;
  e.target = std::move(target);
  e.size = e.target.size();
  return e;
}

// A fifo, socket or device (`type` is S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK).
TreeEntry Special(std::string name, uint32_t type, uint64_t rdev = 0) {
  TreeEntry e;
  e.name = std::move(name);
  e.kind = EntryKind::kSpecial;
  e.mode = type | 0640;
  e.uid = 7;
  e.gid = 8;
  e.rdev = rdev;
  e.mtime_sec = 1600000000;
  e.mtime_nsec = 1;
  return e;
}

std::string Extension(uint64_t tag, std::string_view value) {
  Encoder e;
  e.PutVarint(tag);
  e.PutString(value);
  return e.Take();
}

// The value of extension tag 2 (xattrs), encoded by hand.
std::string XattrList(const std::vector<std::pair<std::string, std::string>>& xattrs) {
  Encoder e;
  e.PutVarint(xattrs.size());
  for (const auto& [name, value] : xattrs) {
    e.PutString(name);
    e.PutString(value);
  }
  return e.Take();
}

std::string Varint(uint64_t v) {
  Encoder e;
  e.PutVarint(v);
  return e.Take();
}

TreePage SampleLeaf() {
  TreePage page;
  TreeEntry big = File("big.bin", {{IdOf("a"), 1000}, {ObjectId(), 1 << 20}, {IdOf("b"), 7}});
  big.xattrs = {{"user.comment", "hello"}, {"user.empty", ""}, {"user.z", std::string("\0\xff", 2)}};
  big.link_group = 7;
  big.extensions = Extension(100, "from the future") + Extension(102, "");  // unknown even tags
  page.entries.push_back(big);
  TreeEntry other_name = big;
  other_name.name = "big-link.bin";
  page.entries.push_back(other_name);
  page.entries.push_back(File("empty", {}));
  TreeEntry sub = Dir("sub", IdOf("subtree"), 3);
  sub.xattrs = {{"user.dir", "yes"}};
  page.entries.push_back(sub);
  page.entries.push_back(Symlink("link", "../somewhere/else"));
  page.entries.push_back(File("\xc3\xa9t\xc3\xa9.txt", {{IdOf("c"), 12}}));  // "été.txt"
  page.entries.push_back(Special("fifo", S_IFIFO));
  page.entries.push_back(Special("socket", S_IFSOCK));
  page.entries.push_back(Special("null", S_IFCHR, makedev(1, 3)));
  page.entries.push_back(Special("sda", S_IFBLK, makedev(259, 1048575)));
  TreeEntry linked_fifo = Special("fifo-link", S_IFIFO);
  linked_fifo.link_group = 1ull << 40;
  page.entries.push_back(linked_fifo);
  std::sort(page.entries.begin(), page.entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.name < b.name; });
  return page;
}

TreePage SampleIndex() {
  TreePage page;
  page.is_index = true;
  page.children.push_back({"aaa", IdOf("p1"), 300});
  page.children.push_back({"mmm", IdOf("p2"), 250});
  page.children.push_back({"zzz", IdOf("p3"), 1});
  return page;
}

Commit SampleCommit() {
  Commit c;
  c.dataset = "images";
  c.root = IdOf("root");
  c.parents = {IdOf("parent1"), IdOf("parent2")};
  c.author = "Ada <ada@example.com>";
  c.time_sec = 1700000001;
  c.message = "import\nwith a second line";
  c.metadata = {{"source", "s3://bucket"}, {"a", "1"}, {"source", "dup keys keep order"}};
  c.provenance = {{"raw", IdOf("raw-commit")}};
  c.file_count = 12345;
  c.total_bytes = 1ull << 40;
  return c;
}

std::string Name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "file-%07zu", i);
  return buf;
}

std::vector<TreeEntry> ManyFiles(size_t n) {
  std::vector<TreeEntry> out;
  out.reserve(n);
  for (size_t i = 0; i < n; i++) out.push_back(File(Name(i), {{IdOf(Name(i)), 10 + i % 7}}));
  return out;
}

// ---- page codec ----

TEST(TreePageCodecTest, LeafRoundTripsFilesDirsSymlinksHolesAndExtensions) {
  TreePage page = SampleLeaf();
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage back, DecodeTreePage(EncodeTreePage(page)));
  EXPECT_FALSE(back.is_index);
  EXPECT_EQ(back.entries, page.entries);
  EXPECT_TRUE(back.entries[0].chunks[1].IsHole());
}

TEST(TreePageCodecTest, EmptyLeafRoundTrips) {
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage back, DecodeTreePage(EncodeTreePage(TreePage{})));
  EXPECT_FALSE(back.is_index);
  EXPECT_TRUE(back.entries.empty());
}

TEST(TreePageCodecTest, IndexRoundTrips) {
  TreePage page = SampleIndex();
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage back, DecodeTreePage(EncodeTreePage(page)));
  ASSERT_TRUE(back.is_index);
  ASSERT_EQ(back.children.size(), page.children.size());
  for (size_t i = 0; i < page.children.size(); i++) {
    EXPECT_EQ(back.children[i].first_name, page.children[i].first_name);
    EXPECT_EQ(back.children[i].id, page.children[i].id);
    EXPECT_EQ(back.children[i].entry_count, page.children[i].entry_count);
  }
}

TEST(TreePageCodecTest, EncodingIsDeterministic) {
  EXPECT_EQ(EncodeTreePage(SampleLeaf()), EncodeTreePage(SampleLeaf()));
}

TEST(TreePageCodecTest, EveryTruncationOfALeafIsRejected) {
  std::string bytes = EncodeTreePage(SampleLeaf());
  for (size_t n = 0; n < bytes.size(); n++) {
    auto page = DecodeTreePage(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(page.ok()) << "prefix of " << n << " of " << bytes.size() << " bytes decoded";
  }
}

TEST(TreePageCodecTest, EveryTruncationOfAnIndexIsRejected) {
  std::string bytes = EncodeTreePage(SampleIndex());
  for (size_t n = 0; n < bytes.size(); n++) {
    auto page = DecodeTreePage(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(page.ok()) << "prefix of " << n << " of " << bytes.size() << " bytes decoded";
  }
}

TEST(TreePageCodecTest, TrailingBytesAreRejected) {
  auto page = DecodeTreePage(EncodeTreePage(SampleLeaf()) + "x");
  EXPECT_EQ(page.status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, ChunkLengthsThatWrapAroundToTheSizeAreRejected) {
  // 2^64 - 8 + 38 wraps to 30: offsets computed from such a list would point
  // anywhere, so the decoder refuses it rather than trusting the sum.
  TreePage page;
  page.entries = {File("a", {{IdOf("x"), ~uint64_t{0} - 7}, {IdOf("y"), 38}})};
  ASSERT_EQ(page.entries[0].size, 30u);
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, EntryCountBeyondTheBytesLeftIsRejected) {
  std::string bytes = EncodeTreePage(SampleLeaf());
  // A leaf claiming 2^40 entries in a few hundred bytes.
  std::string forged = bytes.substr(0, 2) + std::string("\x80\x80\x80\x80\x80\x20", 6) + bytes.substr(3);
  EXPECT_EQ(DecodeTreePage(forged).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, UnsortedLeafEntriesAreRejected) {
  TreePage page;
  page.entries = {File("b", {}), File("a", {})};
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, DuplicateLeafEntriesAreRejected) {
  TreePage page;
  page.entries = {File("a", {}), Symlink("a", "x")};
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, UnsortedIndexChildrenAreRejected) {
  TreePage page = SampleIndex();
  std::swap(page.children[0], page.children[1]);
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, EmptyIndexIsRejected) {
  TreePage page;
  page.is_index = true;
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, BadEntryNamesAreRejected) {
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
                          std::string("/"), std::string("a\0b", 3)}) {
    TreePage page;
    page.entries = {File(bad, {})};
    EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption)
        << "name '" << bad << "'";
  }
}

TEST(TreePageCodecTest, ModeThatContradictsTheKindIsRejected) {
  TreePage page;
  page.entries = {File("f", {})};
  page.entries[0].mode = S_IFDIR | 0755;
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, ChunkLengthsThatDoNotAddUpToTheSizeAreRejected) {
  TreePage page;
  page.entries = {File("f", {{IdOf("x"), 10}})};
  page.entries[0].size = 11;
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, ZeroLengthChunkIsRejected) {
  TreePage page;
  page.entries = {File("f", {{IdOf("x"), 0}})};
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, UnknownFormatVersionIsUnsupported) {
  std::string bytes = EncodeTreePage(SampleLeaf());
  bytes[0] = 2;
  EXPECT_EQ(DecodeTreePage(bytes).status().code(), Status::Code::kUnsupported);
}

TEST(TreePageCodecTest, UnknownOddExtensionTagIsUnsupported) {
  TreePage page;
  page.entries = {File("f", {})};
  page.entries[0].extensions = Extension(100, "fine") + Extension(101, "critical");
  auto back = DecodeTreePage(EncodeTreePage(page));
  EXPECT_EQ(back.status().code(), Status::Code::kUnsupported) << back.status().ToString();
}

TEST(TreePageCodecTest, UnknownEvenExtensionTagIsPreservedVerbatim) {
  TreePage page;
  page.entries = {Symlink("l", "t")};
  page.entries[0].extensions = Extension(100, std::string("\0\1\2", 3));
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage back, DecodeTreePage(EncodeTreePage(page)));
  EXPECT_EQ(back.entries[0].extensions, page.entries[0].extensions);
}

TEST(TreePageCodecTest, KnownTagsBecomeTypedFieldsAndUnknownOnesKeepTheirPlaceInTagOrder) {
  // Tags 2 (xattrs) and 4 (link group) between unknown even tags 0 and 6.
  TreePage page;
  page.entries = {File("f", {{IdOf("x"), 3}})};
  std::string ext = Extension(0, "zero") + Extension(2, XattrList({{"user.a", "1"}, {"user.b", "2"}})) +
                    Extension(4, Varint(300)) + Extension(6, "six");
  page.entries[0].extensions = ext;  // encoded as given: known tags in `extensions` pass through
  std::string bytes = EncodeTreePage(page);
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage back, DecodeTreePage(bytes));
  const TreeEntry& e = back.entries[0];
  EXPECT_EQ(e.xattrs, (std::vector<std::pair<std::string, std::string>>{{"user.a", "1"}, {"user.b", "2"}}));
  EXPECT_EQ(e.link_group, std::optional<uint64_t>(300));
  EXPECT_EQ(e.extensions, Extension(0, "zero") + Extension(6, "six"));
  EXPECT_EQ(EncodeTreePage(back), bytes) << "re-encoding merges typed and unknown records back in tag order";
}

TEST(TreePageCodecTest, ExtensionTagsOutOfOrderOrRepeatedAreRejected) {
  for (const std::string& ext : {Extension(6, "a") + Extension(2, XattrList({{"user.a", "1"}})),
                                 Extension(100, "a") + Extension(100, "b"),
                                 Extension(4, Varint(1)) + Extension(4, Varint(2))}) {
    // By hand: the encoder itself writes records in tag order.
    TreePage page;
    page.entries = {File("f", {})};
    std::string bytes = EncodeTreePage(page);
    ASSERT_EQ(bytes.back(), '\0') << "the page ends with the entry's empty extension field";
    bytes.pop_back();
    bytes += Varint(ext.size()) + ext;
    EXPECT_EQ(DecodeTreePage(bytes).status().code(), Status::Code::kCorruption);
  }
}

TEST(TreePageCodecTest, BadXattrListsAreRejected) {
  std::vector<std::string> bad_values = {
      XattrList({}),                                          // empty: the tag is left out instead
      XattrList({{"user.b", "1"}, {"user.a", "2"}}),          // not sorted
      XattrList({{"user.a", "1"}, {"user.a", "2"}}),          // repeated
      XattrList({{"security.selinux", "x"}}),                 // not the user namespace
      XattrList({{"trusted.x", "x"}}),                        //
      XattrList({{"user.", "x"}}),                            // nothing after the namespace
      XattrList({{"user.tusk.commit", "x"}}),                 // reserved
      XattrList({{std::string("user.a\0b", 8), "x"}}),        // NUL
      XattrList({{"user." + std::string(251, 'n'), "x"}}),    // 256 bytes
      XattrList({{"user.big", std::string(65537, 'v')}}),     // over 64 KiB
      XattrList({{"user.a", "1"}}) + "trailing",
      std::string("\x05"),                                    // claims 5 pairs, has none
  };
  for (size_t i = 0; i < bad_values.size(); i++) {
    TreePage page;
    page.entries = {File("f", {})};
    page.entries[0].extensions = Extension(2, bad_values[i]);
    EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption) << "case " << i;
  }
  // The longest name and value Linux allows are fine.
  TreePage page;
  page.entries = {File("f", {})};
  page.entries[0].xattrs = {{"user." + std::string(250, 'n'), std::string(65536, 'v')}};
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage back, DecodeTreePage(EncodeTreePage(page)));
  EXPECT_EQ(back.entries[0].xattrs, page.entries[0].xattrs);
}

TEST(TreePageCodecTest, BadLinkGroupsAreRejected) {
  for (const std::string& value : {Varint(0), Varint(1) + "x", std::string(), std::string("\x80")}) {
    TreePage page;
    page.entries = {File("f", {})};
    page.entries[0].extensions = Extension(4, value);
    EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
  }
  TreePage page;
  page.entries = {Dir("d", IdOf("t"), 0)};
  page.entries[0].link_group = 1;
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption)
      << "directories are never hard links";
}

TEST(TreePageCodecTest, BadSpecialEntriesAreRejected) {
  std::vector<TreeEntry> bad = {Special("fifo-with-rdev", S_IFIFO, 5), Special("sock-with-rdev", S_IFSOCK, 5),
                                Special("regular", S_IFREG), Special("dir", S_IFDIR), Special("link", S_IFLNK)};
  TreeEntry sized = Special("sized", S_IFCHR, makedev(1, 3));
  sized.size = 1;
  bad.push_back(sized);
  for (const auto& e : bad) {
    TreePage page;
    page.entries = {e};
    EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption) << e.name;
  }
}

TEST(TreePageCodecTest, UnknownEntryKindIsUnsupportedAndKindZeroIsCorruption) {
  TreePage page;
  page.entries = {Special("f", S_IFIFO)};
  std::string bytes = EncodeTreePage(page);
  const size_t kind_at = 1 + 1 + 1 + 1 + 1;  // format, page kind, count, name length, "f"
  ASSERT_EQ(bytes[kind_at], 4);
  bytes[kind_at] = 5;
  EXPECT_EQ(DecodeTreePage(bytes).status().code(), Status::Code::kUnsupported);
  bytes[kind_at] = 0;
  EXPECT_EQ(DecodeTreePage(bytes).status().code(), Status::Code::kCorruption);
}

TEST(DirectoryTest, WriteRefusesEntriesItCouldNotReadBack) {
  MemoryStore store;
  std::vector<TreeEntry> bad;
  TreeEntry e = File("f", {});
  e.xattrs = {{"user.b", "1"}, {"user.a", "2"}};
  bad.push_back(e);
  e = File("f", {});
  e.xattrs = {{"user.tusk.meta", "1"}};
  bad.push_back(e);
  e = File("f", {});
  e.link_group = 0;
  bad.push_back(e);
  e = File("f", {});
  e.rdev = 5;  // only devices have one
  bad.push_back(e);
  e = Special("f", S_IFIFO, 1);
  bad.push_back(e);
  e = File("f", {});
  e.extensions = Extension(2, XattrList({{"user.a", "1"}}));  // a known tag belongs in its field
  bad.push_back(e);
  e = File("f", {});
  e.extensions = Extension(101, "");  // odd: critical, and unknown
  bad.push_back(e);
  e = File("f", {});
  e.extensions = Extension(102, "") + Extension(100, "");
  bad.push_back(e);
  e = File("f", {});
  e.extensions = "\x02\x05" "ab";
  bad.push_back(e);
  for (size_t i = 0; i < bad.size(); i++) {
    EXPECT_EQ(WriteDirectory(store, {bad[i]}).status().code(), Status::Code::kInvalidArgument) << "case " << i;
    EXPECT_EQ(CheckEntry(bad[i]).code(), Status::Code::kInvalidArgument) << "case " << i;
  }
  EXPECT_EQ(store.size(), 0u);
}

TEST(DirectoryTest, EveryNewFieldSurvivesAWriteAndARead) {
  MemoryStore store;
  TreePage sample = SampleLeaf();
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, sample.entries));
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<TreeEntry> back, ReadDirectory(store, root));
  EXPECT_EQ(back, sample.entries);
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry null, LookupPath(store, root, "null"));
  EXPECT_EQ(null.kind, EntryKind::kSpecial);
  EXPECT_EQ(null.mode, S_IFCHR | 0640u);
  EXPECT_EQ(null.rdev, makedev(1, 3));
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry big, LookupPath(store, root, "big-link.bin"));
  EXPECT_EQ(big.link_group, std::optional<uint64_t>(7));
  EXPECT_EQ(big.xattrs.size(), 3u);
}

TEST(TreeEntryTest, IsRecordableXattrNameTakesUserNamesOnly) {
  EXPECT_TRUE(IsRecordableXattrName("user.x"));
  EXPECT_TRUE(IsRecordableXattrName("user.tusk"));  // only "user.tusk." itself is reserved
  EXPECT_FALSE(IsRecordableXattrName("user.tusk.opaque"));
  EXPECT_FALSE(IsRecordableXattrName("user."));
  EXPECT_FALSE(IsRecordableXattrName("system.posix_acl_access"));
  EXPECT_FALSE(IsRecordableXattrName("security.capability"));
  EXPECT_FALSE(IsRecordableXattrName("trusted.overlay.opaque"));
}

TEST(TreeEntryTest, SpecialEntriesHaveTheSameContentWhenTypeAndDeviceMatch) {
  TreeEntry a = Special("a", S_IFCHR, makedev(1, 3));
  TreeEntry b = Special("b", S_IFCHR, makedev(1, 3));
  b.mode = S_IFCHR | 0600;
  EXPECT_TRUE(a.SameContent(b));
  b.rdev = makedev(1, 5);
  EXPECT_FALSE(a.SameContent(b));
  EXPECT_FALSE(Special("p", S_IFIFO).SameContent(Special("s", S_IFSOCK)));
  EXPECT_FALSE(Special("p", S_IFIFO).SameContent(File("f", {})));
}

TEST(TreePageCodecTest, MalformedExtensionsAreRejected) {
  TreePage page;
  page.entries = {File("f", {})};
  page.entries[0].extensions = "\x02\x05" "ab";  // tag 2, claims 5 bytes, has 2
  EXPECT_EQ(DecodeTreePage(EncodeTreePage(page)).status().code(), Status::Code::kCorruption);
}

TEST(TreePageCodecTest, EmptyInputIsCorruption) {
  EXPECT_EQ(DecodeTreePage("").status().code(), Status::Code::kCorruption);
}

// ---- commit codec ----

TEST(CommitCodecTest, RoundTrips) {
  Commit c = SampleCommit();
  TUSK_ASSERT_OK_AND_ASSIGN(Commit back, DecodeCommit(EncodeCommit(c)));
  EXPECT_EQ(back, c);
}

TEST(CommitCodecTest, MinimalCommitRoundTrips) {
  Commit c;
  c.dataset = "d";
  c.time_sec = -1;
  TUSK_ASSERT_OK_AND_ASSIGN(Commit back, DecodeCommit(EncodeCommit(c)));
  EXPECT_EQ(back, c);
}

TEST(CommitCodecTest, EveryTruncationIsRejected) {
  std::string bytes = EncodeCommit(SampleCommit());
  for (size_t n = 0; n < bytes.size(); n++) {
    auto c = DecodeCommit(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(c.ok()) << "prefix of " << n << " of " << bytes.size() << " bytes decoded";
  }
}

TEST(CommitCodecTest, TrailingBytesAreRejected) {
  EXPECT_EQ(DecodeCommit(EncodeCommit(SampleCommit()) + std::string(1, '\0')).status().code(), Status::Code::kCorruption);
}

TEST(CommitCodecTest, UnknownFormatVersionIsUnsupported) {
  std::string bytes = EncodeCommit(SampleCommit());
  bytes[0] = 9;
  EXPECT_EQ(DecodeCommit(bytes).status().code(), Status::Code::kUnsupported);
}

TEST(CommitCodecTest, TreesAndCommitsHashInSeparateDomains) {
  std::string bytes = "same bytes";
  EXPECT_NE(HashObject(ObjectType::kTree, bytes), HashObject(ObjectType::kCommit, bytes));
  EXPECT_NE(HashObject(ObjectType::kTree, bytes), Sha256::Of(bytes.data(), bytes.size()));
}

// ---- directories in a store ----

TEST(DirectoryTest, EmptyDirectoryHasNoEntries) {
  MemoryStore store;
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, {}));
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<TreeEntry> entries, ReadDirectory(store, root));
  EXPECT_TRUE(entries.empty());
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(store, root, "anything"));
  EXPECT_FALSE(found.has_value());
}

TEST(DirectoryTest, SmallDirectoryIsOnePage) {
  MemoryStore store;
  std::vector<TreeEntry> entries = ManyFiles(10);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, entries));
  EXPECT_EQ(store.size(), 1u);
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<TreeEntry> back, ReadDirectory(store, root));
  EXPECT_EQ(back, entries);
  for (const auto& e : entries) {
    TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(store, root, e.name));
    ASSERT_TRUE(found.has_value()) << e.name;
    EXPECT_EQ(*found, e);
  }
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> absent, LookupEntry(store, root, "file-0000005x"));
  EXPECT_FALSE(absent.has_value());
}

TEST(DirectoryTest, SameEntriesGiveTheSameRootId) {
  MemoryStore a, b;
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root_a, WriteDirectory(a, ManyFiles(3000)));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root_b, WriteDirectory(b, ManyFiles(3000)));
  EXPECT_EQ(root_a, root_b);
}

TEST(DirectoryTest, ForEachEntryStopsWhenAsked) {
  MemoryStore store;
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, ManyFiles(5000)));
  size_t seen = 0;
  TUSK_ASSERT_OK(ForEachEntry(store, root, [&](const TreeEntry&) { return ++seen < 10; }));
  EXPECT_EQ(seen, 10u);
}

TEST(DirectoryTest, WriteRejectsUnsortedOrDuplicateNames) {
  MemoryStore store;
  EXPECT_EQ(WriteDirectory(store, {File("b", {}), File("a", {})}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(WriteDirectory(store, {File("a", {}), Symlink("a", "t")}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(WriteDirectory(store, {File("a/b", {})}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(WriteDirectory(store, {File("", {})}).status().code(), Status::Code::kInvalidArgument);
  std::vector<TreeEntry> big = ManyFiles(3000);
  std::swap(big[1500], big[1501]);
  EXPECT_EQ(WriteDirectory(store, big).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store.size(), 0u) << "nothing is written for a rejected directory";
}

class LargeDirectoryTest : public ::testing::Test {
 protected:
  static constexpr size_t kCount = 200000;
  static void SetUpTestSuite() {
    store_ = new MemoryStore();
    entries_ = new std::vector<TreeEntry>(ManyFiles(kCount));
    auto root = WriteDirectory(*store_, *entries_);
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    root_ = *root;
  }
  static void TearDownTestSuite() {
    delete store_;
    delete entries_;
    store_ = nullptr;
    entries_ = nullptr;
  }
  static MemoryStore* store_;
  static std::vector<TreeEntry>* entries_;
  static ObjectId root_;
};
MemoryStore* LargeDirectoryTest::store_ = nullptr;
std::vector<TreeEntry>* LargeDirectoryTest::entries_ = nullptr;
ObjectId LargeDirectoryTest::root_;

TEST_F(LargeDirectoryTest, IsSplitIntoPagesUnderAnIndex) {
  EXPECT_GT(store_->size(), 100u);
  TUSK_ASSERT_OK_AND_ASSIGN(std::string bytes, store_->ReadObject(root_, ObjectType::kTree));
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage root, DecodeTreePage(bytes));
  ASSERT_TRUE(root.is_index);
  uint64_t total = 0;
  for (const auto& c : root.children) total += c.entry_count;
  EXPECT_EQ(total, kCount);
  size_t pages = 0;
  TUSK_ASSERT_OK(ForEachPage(*store_, root_, [&](const ObjectId&) { pages++; }));
  EXPECT_EQ(pages, store_->size());
}

TEST_F(LargeDirectoryTest, LookupFindsFirstMiddleAndLastNames) {
  for (size_t i : {size_t{0}, size_t{1}, kCount / 2, kCount / 3 + 7, kCount - 1}) {
    store_->reset_counters();
    TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(*store_, root_, Name(i)));
    ASSERT_TRUE(found.has_value()) << Name(i);
    EXPECT_EQ(*found, (*entries_)[i]);
    EXPECT_LE(store_->reads(), 3u) << "a lookup reads only the pages on its path";
  }
}

TEST_F(LargeDirectoryTest, LookupOfAbsentNamesFindsNothing) {
  for (std::string name : {"a", "file-", "file-0100000x", "file-9999999", "zzz"}) {
    TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(*store_, root_, name));
    EXPECT_FALSE(found.has_value()) << name;
  }
}

TEST_F(LargeDirectoryTest, ReadDirectoryReturnsEveryEntryInOrder) {
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<TreeEntry> back, ReadDirectory(*store_, root_));
  ASSERT_EQ(back.size(), kCount);
  EXPECT_TRUE(back == *entries_);
}

TEST_F(LargeDirectoryTest, AddingOneEntryRewritesOnlyAFewPages) {
  std::vector<TreeEntry> more = *entries_;
  TreeEntry added = File(Name(kCount / 2) + "-new", {{IdOf("new"), 3}});
  more.insert(more.begin() + kCount / 2 + 1, added);
  MemoryStore copy = *store_;
  copy.reset_counters();
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root2, WriteDirectory(copy, more));
  EXPECT_NE(root2, root_);
  EXPECT_LE(copy.new_objects(), 3u) << "pages rewritten for one added name";
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(copy, root2, added.name));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, added);
}

TEST_F(LargeDirectoryTest, RemovingOneEntryRewritesOnlyAFewPages) {
  std::vector<TreeEntry> fewer = *entries_;
  fewer.erase(fewer.begin() + 12345);
  MemoryStore copy = *store_;
  copy.reset_counters();
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root2, WriteDirectory(copy, fewer));
  EXPECT_LE(copy.new_objects(), 3u) << "pages rewritten for one removed name";
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(copy, root2, Name(12345)));
  EXPECT_FALSE(found.has_value());
}

TEST_F(LargeDirectoryTest, EncodedReadGivesEveryEntryAndWritesBackTheSameRoot) {
  TUSK_ASSERT_OK_AND_ASSIGN(EncodedDirectory dir, ReadEncodedDirectory(*store_, root_));
  ASSERT_EQ(dir.entries().size(), kCount);
  for (size_t i = 0; i < kCount; i += 997) {
    EXPECT_EQ(dir.entries()[i].name, (*entries_)[i].name);
    TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry back, DecodeEncodedEntry(dir.entries()[i].bytes));
    EXPECT_EQ(back, (*entries_)[i]);
  }
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId again, WriteEncodedDirectory(*store_, dir.entries()));
  EXPECT_EQ(again, root_) << "the same pages as WriteDirectory's";
}

// The tree merge compares entries by their encodings: equal entries must
// encode the same wherever they are read from.
TEST(EncodedDirectoryTest, EveryKindOfEntryRoundTripsAndEncodesAsWhenWritten) {
  MemoryStore store;
  TreePage sample = SampleLeaf();
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, sample.entries));
  TUSK_ASSERT_OK_AND_ASSIGN(EncodedDirectory dir, ReadEncodedDirectory(store, root));
  ASSERT_EQ(dir.entries().size(), sample.entries.size());
  for (size_t i = 0; i < sample.entries.size(); i++) {
    const EncodedEntry& e = dir.entries()[i];
    EXPECT_EQ(e.name, sample.entries[i].name);
    TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry back, DecodeEncodedEntry(e.bytes));
    EXPECT_EQ(back, sample.entries[i]);
    EXPECT_EQ(e.kind, sample.entries[i].kind) << e.name;
    TUSK_ASSERT_OK_AND_ASSIGN(std::string encoding, EncodeCheckedEntry(sample.entries[i]));
    EXPECT_EQ(encoding, e.bytes) << e.name;
    EncodedEntry view = ViewOfEncoding(encoding);
    EXPECT_EQ(view.name, sample.entries[i].name);
    EXPECT_EQ(view.kind, sample.entries[i].kind);
  }
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId again, WriteEncodedDirectory(store, dir.entries()));
  EXPECT_EQ(again, root);
}

TEST(EncodedDirectoryTest, AnEmptyDirectoryHasNoEntries) {
  MemoryStore store;
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, {}));
  TUSK_ASSERT_OK_AND_ASSIGN(EncodedDirectory dir, ReadEncodedDirectory(store, root));
  EXPECT_TRUE(dir.entries().empty());
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId again, WriteEncodedDirectory(store, {}));
  EXPECT_EQ(again, root);
}

TEST(EncodedDirectoryTest, ABadEntryInAPageIsCorruption) {
  MemoryStore store;
  TreePage page;
  page.entries = {File("a", {{IdOf("a"), 3}})};
  std::string bytes = EncodeTreePage(page);
  bytes[bytes.size() - 2] ^= 0x7f;  // the chunk length no longer adds up to the size
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, store.WriteObject(ObjectType::kTree, bytes));
  EXPECT_EQ(ReadEncodedDirectory(store, root).status().code(), Status::Code::kCorruption);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId trailing, store.WriteObject(ObjectType::kTree, EncodeTreePage(page) + "x"));
  EXPECT_EQ(ReadEncodedDirectory(store, trailing).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeEncodedEntry("").status().code(), Status::Code::kCorruption);
}

TEST(EncodedDirectoryTest, NamesOutOfOrderAcrossPagesAreCorruption) {
  // Each page is in order, the directory is not: a merge walking names in
  // step through three directories must not be given such a one.
  MemoryStore store;
  TreePage first, second;
  first.entries = {File("m", {})};
  second.entries = {File("c", {})};
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId first_id, store.WriteObject(ObjectType::kTree, EncodeTreePage(first)));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId second_id, store.WriteObject(ObjectType::kTree, EncodeTreePage(second)));
  TreePage index;
  index.is_index = true;
  index.children = {{"a", first_id, 1}, {"b", second_id, 1}};
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, store.WriteObject(ObjectType::kTree, EncodeTreePage(index)));
  EXPECT_EQ(ReadEncodedDirectory(store, root).status().code(), Status::Code::kCorruption);
}

TEST(EncodedDirectoryTest, WritingRefusesUnsortedEntriesAndEncodingRefusesBadOnes) {
  MemoryStore store;
  TUSK_ASSERT_OK_AND_ASSIGN(std::string a, EncodeCheckedEntry(File("a", {})));
  TUSK_ASSERT_OK_AND_ASSIGN(std::string b, EncodeCheckedEntry(File("b", {})));
  EXPECT_EQ(WriteEncodedDirectory(store, {{"b", b}, {"a", a}}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(WriteEncodedDirectory(store, {{"a", a}, {"a", a}}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(EncodeCheckedEntry(File("a/b", {})).status().code(), Status::Code::kInvalidArgument);
  TreeEntry bad_mode = File("x", {});
  bad_mode.mode = S_IFDIR | 0755;
  EXPECT_EQ(EncodeCheckedEntry(bad_mode).status().code(), Status::Code::kInvalidArgument);
}

TEST(DirectoryTest, DirectoryWithMoreChildPagesThanAnIndexPageHoldsStillWorks) {
  // Enough entries that the leaf pages (about 320 entries each) outnumber
  // kMaxLeafEntries, forcing a second index level.
  MemoryStore store;
  const size_t n = 400000;
  std::vector<TreeEntry> entries;
  entries.reserve(n);
  for (size_t i = 0; i < n; i++) {
    TreeEntry e;
    e.name = Name(i);
    e.mode = S_IFREG | 0644;
    entries.push_back(std::move(e));
  }
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId root, WriteDirectory(store, entries));
  TUSK_ASSERT_OK_AND_ASSIGN(std::string root_bytes, store.ReadObject(root, ObjectType::kTree));
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage root_page, DecodeTreePage(root_bytes));
  ASSERT_TRUE(root_page.is_index);
  TUSK_ASSERT_OK_AND_ASSIGN(std::string child_bytes, store.ReadObject(root_page.children[0].id, ObjectType::kTree));
  TUSK_ASSERT_OK_AND_ASSIGN(TreePage child_page, DecodeTreePage(child_bytes));
  EXPECT_TRUE(child_page.is_index) << "expected two index levels";
  for (size_t i : {size_t{0}, n / 2, n - 1}) {
    TUSK_ASSERT_OK_AND_ASSIGN(std::optional<TreeEntry> found, LookupEntry(store, root, Name(i)));
    ASSERT_TRUE(found.has_value()) << Name(i);
  }
  size_t count = 0;
  std::string last;
  TUSK_ASSERT_OK(ForEachEntry(store, root, [&](const TreeEntry& e) {
    EXPECT_LT(last, e.name);
    last = e.name;
    count++;
    return true;
  }));
  EXPECT_EQ(count, n);
}

TEST(DirectoryTest, ReadingAMissingPageFails) {
  MemoryStore store;
  auto entries = ReadDirectory(store, IdOf("nothing here"));
  EXPECT_FALSE(entries.ok());
}

// ---- paths ----

class LookupPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = WriteDirectory(store_, {File("c.txt", {{IdOf("c"), 5}})});
    ASSERT_TRUE(c.ok());
    auto b = WriteDirectory(store_, {Dir("b", *c, 1), Symlink("link", "b/c.txt")});
    ASSERT_TRUE(b.ok());
    auto root = WriteDirectory(store_, {Dir("a", *b, 2), File("f.txt", {{IdOf("f"), 3}})});
    ASSERT_TRUE(root.ok());
    root_ = *root;
    b_ = *b;
  }
  MemoryStore store_;
  ObjectId root_, b_;
};

TEST_F(LookupPathTest, FindsNestedFiles) {
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry e, LookupPath(store_, root_, "a/b/c.txt"));
  EXPECT_EQ(e.name, "c.txt");
  EXPECT_EQ(e.kind, EntryKind::kFile);
  EXPECT_EQ(e.size, 5u);
}

TEST_F(LookupPathTest, FindsDirectoriesAndSymlinks) {
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry a, LookupPath(store_, root_, "a"));
  EXPECT_EQ(a.kind, EntryKind::kDirectory);
  EXPECT_EQ(a.tree, b_);
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry link, LookupPath(store_, root_, "a/link"));
  EXPECT_EQ(link.kind, EntryKind::kSymlink);
  EXPECT_EQ(link.target, "b/c.txt");
}

TEST_F(LookupPathTest, EmptyPathAndSlashAreTheRoot) {
  for (std::string p : {"", "/"}) {
    TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry e, LookupPath(store_, root_, p));
    EXPECT_EQ(e.kind, EntryKind::kDirectory);
    EXPECT_EQ(e.tree, root_);
    EXPECT_EQ(e.name, "");
  }
}

TEST_F(LookupPathTest, ToleratesLeadingAndDoubledSlashes) {
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry e, LookupPath(store_, root_, "/a//b/./c.txt"));
  EXPECT_EQ(e.name, "c.txt");
}

TEST_F(LookupPathTest, MissingNameIsNotFound) {
  EXPECT_EQ(LookupPath(store_, root_, "a/missing").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(LookupPath(store_, root_, "nope/c.txt").status().code(), Status::Code::kNotFound);
}

TEST_F(LookupPathTest, PathThroughAFileIsNotFound) {
  EXPECT_EQ(LookupPath(store_, root_, "f.txt/x").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(LookupPath(store_, root_, "a/b/c.txt/d").status().code(), Status::Code::kNotFound);
}

TEST_F(LookupPathTest, PathThroughASymlinkIsNotFollowed) {
  EXPECT_EQ(LookupPath(store_, root_, "a/link/x").status().code(), Status::Code::kNotFound);
}

// ---- entries ----

TEST(TreeEntryTest, SameContentIgnoresNameAndMetadata) {
  TreeEntry a = File("a", {{IdOf("x"), 4}});
  TreeEntry b = File("b", {{IdOf("x"), 4}});
  b.mtime_sec = 1;
  b.mode = S_IFREG | 0600;
  EXPECT_TRUE(a.SameContent(b));
  EXPECT_FALSE(a.SameContent(File("a", {{IdOf("y"), 4}})));
  EXPECT_FALSE(a.SameContent(Symlink("a", "x")));
  EXPECT_TRUE(Symlink("a", "t").SameContent(Symlink("b", "t")));
  EXPECT_TRUE(Dir("a", IdOf("t"), 1).SameContent(Dir("b", IdOf("t"), 2)));
}

}  // namespace
}  // namespace tusk
