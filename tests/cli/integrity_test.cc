// Damage is found and named, never served as data; gc removes only what no
// ref reaches. See tools/tusk/CLI-SPEC.md (fsck, gc) and store/internal/pack.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

constexpr size_t kPackHeaderBytes = 16;    // "TUSKPACK" magic and version
constexpr size_t kRecordHeaderBytes = 56;  // magic, type, codec, lengths, id, CRCs

// The largest regular file below `dir` named *.pack.
std::string LargestPack(const std::string& dir) {
  std::string best;
  off_t best_size = -1;
  for (const auto& [path, info] : Snapshot(dir)) {
    if (S_ISREG(info.mode) && path.size() > 5 && path.substr(path.size() - 5) == ".pack" && info.size > best_size) {
      best = dir + "/" + path;
      best_size = info.size;
    }
  }
  return best;
}

enum RecordType : uint8_t { kChunkRecord = 1, kTreeRecord = 2, kCommitRecord = 3 };

struct PackRecord {
  RecordType type;
  uint64_t payload_offset = 0;
  uint32_t payload_len = 0;
  std::string id_hex;
};

// The records of `pack`, in file order, found by walking the record headers:
// [magic "TRC1"][type u8][codec u8][0][0][raw_len u32][stored_len u32]
// [id 32 bytes][payload crc u32][header crc u32], each followed by its payload
// and, for raw payloads over 16 KiB, a CRC-32C (u32) per 16 KiB block.
std::vector<PackRecord> ListRecords(const std::string& pack) {
  std::string bytes = ReadFileOrDie(pack);
  std::vector<PackRecord> records;
  for (size_t at = kPackHeaderBytes; at + kRecordHeaderBytes <= bytes.size();) {
    if (bytes.compare(at, 4, "TRC1") != 0) break;  // the footer
    PackRecord r;
    r.type = static_cast<RecordType>(bytes[at + 4]);
    std::memcpy(&r.payload_len, bytes.data() + at + 12, 4);
    r.payload_offset = at + kRecordHeaderBytes;
    for (size_t i = 0; i < 32; i++) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", static_cast<uint8_t>(bytes[at + 16 + i]));
      r.id_hex += hex;
    }
    records.push_back(r);
    bool raw = bytes[at + 5] == 0;
    at += kRecordHeaderBytes + r.payload_len + (raw && r.payload_len > 16384 ? (r.payload_len + 16383) / 16384 * 4 : 0);
  }
  return records;
}

void FlipByte(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);  // packs are 0444; we run as root
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
  c = static_cast<char>(c ^ 0x5a);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

class IntegrityTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
  }
};

class DamagedPackTest : public IntegrityTest {
 protected:
  // d@main~1 holds data/big.bin (6 MiB, random) and small.txt; d@main adds
  // data/copy.bin, a copy of big.bin. Dataset "other" lives in a pack of its
  // own. Then one byte of a big.bin chunk is flipped.
  void SetUp() override {
    IntegrityTest::SetUp();
    if (HasFatalFailure()) return;
    big_ = RandomBytes(6 << 20, 11);
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("src"), {File("data/big.bin", big_), File("small.txt", "small and fine\n")}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "with big file"));
    first_ = CommitOf("d@main");
    ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(Path("src/data/copy.bin"), big_));
    ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "with a copy"));
    second_ = CommitOf("d@main");
    ASSERT_NO_FATAL_FAILURE(CreateDataset("other"));
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("other"), {File("o.bin", RandomBytes(2 << 20, 12)), Symlink("l", "o.bin")}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("other"), "other@main", "unrelated"));

    std::string pack = LargestPack(store() + "/packs");
    ASSERT_FALSE(pack.empty());
    PackRecord chunk{};
    for (const PackRecord& r : ListRecords(pack)) {
      if (r.type == kChunkRecord && r.payload_len > chunk.payload_len) chunk = r;
    }
    ASSERT_GT(chunk.payload_len, 1000u) << "no chunk record found in " << pack;
    damaged_chunk_ = chunk.id_hex;
    ASSERT_NO_FATAL_FAILURE(FlipByte(pack, chunk.payload_offset + chunk.payload_len / 2));
  }

  std::string big_, first_, second_, damaged_chunk_;
};

// True if some line of `text` contains every one of `parts`.
::testing::AssertionResult SomeLineHasAll(const std::string& text, const std::vector<std::string>& parts) {
  for (const auto& line : Lines(text)) {
    if (std::all_of(parts.begin(), parts.end(), [&](const std::string& p) { return HasSubstr(line, p); }))
      return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no line holds all of [" << Join(parts, "], [") << "] in:\n" << text;
}

TEST_F(DamagedPackTest, FsckExitsOneAndNamesTheChunkAndEveryFileAndCommitItBreaks) {
  RunResult r = Run("fsck");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.out, damaged_chunk_)) << r;
  EXPECT_TRUE(SomeLineHasAll(r.out, {first_.substr(0, 12), "data/big.bin"}));
  EXPECT_TRUE(SomeLineHasAll(r.out, {second_.substr(0, 12), "data/big.bin"}));
  EXPECT_TRUE(SomeLineHasAll(r.out, {second_.substr(0, 12), "data/copy.bin"}));
  EXPECT_FALSE(HasSubstr(r.out, "small.txt")) << r;
  EXPECT_FALSE(HasSubstr(r.out, "o.bin")) << r;
  EXPECT_FALSE(HasSubstr(r.out, "no problems found")) << r;

  RunResult json = Run("fsck", "--json");
  EXPECT_EQ(json.exit_code, 1) << json;
  EXPECT_TRUE(IsValidJson(json.out));
  EXPECT_TRUE(HasSubstr(json.out, "data/big.bin")) << json;
}

TEST_F(DamagedPackTest, CatOfTheDamagedFileFailsRatherThanPrintWrongData) {
  RunResult r = Run("cat", "d@main", "data/big.bin");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(StartsWith(r.err, "tusk: error: ")) << r;
  // Output may stop early, but what was printed is the true beginning.
  EXPECT_LT(r.out.size(), big_.size());
  EXPECT_TRUE(big_.compare(0, r.out.size(), r.out) == 0) << "cat printed bytes that are not the file's";
}

TEST_F(DamagedPackTest, EverythingElseStillReadsAndExports) {
  RunResult cat = Run("cat", "d@main", "small.txt");
  EXPECT_EQ(cat.exit_code, 0) << cat;
  EXPECT_EQ(cat.out, "small and fine\n");
  EXPECT_EQ(Run("ls", "d@main", "-r").out, "data/\nsmall.txt\ndata/big.bin\ndata/copy.bin\n");

  ASSERT_NO_FATAL_FAILURE(Export("other@main", Path("other-out")));
  std::vector<std::string> diffs = TreeDiff(Path("other"), Path("other-out"));
  EXPECT_TRUE(diffs.empty()) << Join(diffs);

  // Exporting the damaged version fails loudly instead of writing a wrong file.
  RunResult r = Run("export", "d@main", Path("d-out"));
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "incomplete")) << r;
  if (std::filesystem::exists(Path("d-out/data/big.bin"))) {
    EXPECT_NE(ReadFileOrDie(Path("d-out/data/big.bin")), big_);
  }
}

TEST_F(IntegrityTest, DamagedTreeIsReportedWithTheDirectoryAndCommitItBreaks) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("src"), {File("top.txt", "top"), File("inner/child.txt", "child")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "nested"));
  std::string commit = CommitOf("d@main");
  // The import's only pack holds, in order: chunks, the tree of "inner",
  // the root tree, the commit.
  std::string pack = LargestPack(store() + "/packs");
  uint64_t tree_payload = 0;
  for (const PackRecord& r : ListRecords(pack)) {
    if (r.type == kTreeRecord) {
      tree_payload = r.payload_offset + r.payload_len / 2;
      break;
    }
  }
  ASSERT_NE(tree_payload, 0u) << "no tree record in " << pack;
  ASSERT_NO_FATAL_FAILURE(FlipByte(pack, tree_payload));

  RunResult r = Run("fsck");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(SomeLineHasAll(r.out, {commit.substr(0, 12), "inner"}));
  EXPECT_EQ(Run("cat", "d@main", "top.txt").out, "top");
  RunResult cat = Run("cat", "d@main", "inner/child.txt");
  EXPECT_EQ(cat.exit_code, 1) << cat;
  EXPECT_EQ(cat.out, "");
  EXPECT_EQ(Run("export", "d@main", Path("out")).exit_code, 1);
}

class GcTest : public IntegrityTest {
 protected:
  // d@main: two commits; tag d@kept names a commit only it reaches; branch
  // d@scratch holds 4 MiB no other ref reaches, written into the same pack
  // as 2 MiB that d@main reuses (so that pack must be rewritten, not
  // deleted).
  void SetUp() override {
    IntegrityTest::SetUp();
    if (HasFatalFailure()) return;
    std::string shared = RandomBytes(2 << 20, 21), garbage = RandomBytes(4 << 20, 22);
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("m1"), {File("readme", "v1"), Dir("empty")}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("m1"), "d@main", "m1"));
    ASSERT_EQ(Run("branch", "d@scratch").exit_code, 0);
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("s"), {File("shared.bin", shared), File("garbage.bin", garbage)}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("s"), "d@scratch", "scratch work"));
    scratch_commit_ = CommitOf("d@scratch");

    ASSERT_EQ(Run("branch", "d@feature").exit_code, 0);
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("f"), {File("feature.bin", RandomBytes(1 << 20, 23))}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("f"), "d@feature", "feature"));
    ASSERT_EQ(Run("tag", "d@kept", "d@feature").exit_code, 0);
    ASSERT_EQ(Run("branch", "-d", "d@feature").exit_code, 0);

    ASSERT_NO_FATAL_FAILURE(
        MakeTree(Path("m2"), {File("readme", "v2"), File("copy-of-shared.bin", shared), Symlink("link", "readme")}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("m2"), "d@main", "m2"));
    RunResult del = Run("branch", "-d", "d@scratch");
    ASSERT_EQ(del.exit_code, 0) << del;
  }

  // Exports the refs that must survive gc (d@main, d@main~1, d@kept) into
  // DIR/0, DIR/1 and DIR/2.
  void ExportLiveRefs(const std::string& dir) {
    ASSERT_NO_FATAL_FAILURE(MakeDirs(dir));
    int n = 0;
    for (const char* ref : {"d@main", "d@main~1", "d@kept"})
      ASSERT_NO_FATAL_FAILURE(Export(ref, dir + "/" + std::to_string(n++)));
  }

  std::string packs() const { return store() + "/packs"; }
  std::string scratch_commit_;
};

TEST_F(GcTest, DeletedBranchIsReclaimedAndEveryRefExportsAsBefore) {
  ASSERT_NO_FATAL_FAILURE(ExportLiveRefs(Path("before")));
  // Its commits stay until gc.
  EXPECT_EQ(Run("ls", "d@" + scratch_commit_.substr(0, 12)).exit_code, 0);
  uint64_t bytes_before = RegularFileBytes(packs());

  RunResult gc = Run("gc");
  ASSERT_EQ(gc.exit_code, 0) << gc;
  uint64_t bytes_after = RegularFileBytes(packs());
  EXPECT_LT(bytes_after + (4 << 20) - (64 << 10), bytes_before)
      << "gc freed " << bytes_before - bytes_after << " bytes of about 4 MiB unreachable\n"
      << gc;
  ExpectFsckClean();

  ASSERT_NO_FATAL_FAILURE(ExportLiveRefs(Path("after")));
  for (const char* n : {"0", "1", "2"}) {
    std::vector<std::string> diffs = TreeDiff(Path("before/") + n, Path("after/") + n);
    EXPECT_TRUE(diffs.empty()) << "export " << n << ":\n" << Join(diffs);
  }
  std::vector<std::string> vs_source = TreeDiff(Path("m2"), Path("after/0"));
  EXPECT_TRUE(vs_source.empty()) << Join(vs_source);

  RunResult gone = Run("ls", "d@" + scratch_commit_.substr(0, 12));
  EXPECT_EQ(gone.exit_code, 1) << gone;
  EXPECT_TRUE(StartsWith(gone.err, "tusk: error: ")) << gone;

  // A second gc finds nothing more to do.
  uint64_t settled = RegularFileBytes(packs());
  gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  EXPECT_TRUE(HasSubstr(gc.out, "removed 0 unreachable objects")) << gc;
  EXPECT_EQ(RegularFileBytes(packs()), settled);
}

TEST_F(GcTest, DeletedDatasetIsReclaimed) {
  ASSERT_NO_FATAL_FAILURE(CreateDataset("doomed"));
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("doomed"), {File("big.bin", RandomBytes(3 << 20, 24))}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("doomed"), "doomed@main", "soon gone"));
  ASSERT_EQ(Run("gc").exit_code, 0);  // only the deleted scratch branch goes
  uint64_t bytes_before = RegularFileBytes(packs());

  RunResult del = Run("dataset", "delete", "doomed");
  ASSERT_EQ(del.exit_code, 0) << del;
  // Data stays until gc; the deletion itself is recorded in a small pack of
  // its own (a ref record, FORMAT.md).
  EXPECT_GE(RegularFileBytes(packs()), bytes_before) << "data must stay until gc";
  EXPECT_LT(RegularFileBytes(packs()), bytes_before + 1024) << "a deletion records only a small ref record";
  RunResult gc = Run("gc");
  ASSERT_EQ(gc.exit_code, 0) << gc;
  EXPECT_LT(RegularFileBytes(packs()) + (3 << 20), bytes_before + (64 << 10)) << gc;
  ExpectFsckClean();
  EXPECT_EQ(Run("ls", "doomed").exit_code, 1);
  EXPECT_EQ(Run("cat", "d@kept", "feature.bin").out, RandomBytes(1 << 20, 23));
}

// The stat cache must not hide a change that keeps a file's size and mtime
// (ctime still moves): what is committed is what is on disk.
TEST_F(IntegrityTest, ReimportSeesAChangeThatKeepsSizeAndMtime) {
  std::string src = Path("src");
  ASSERT_NO_FATAL_FAILURE(
      MakeTree(src, {File("a", "aaaa").WithMtime(1600000000, 5), File("b", "bbbb").WithMtime(1600000000, 5),
                     File("c", "cccc").WithMtime(1600000000, 5)}));
  // Files whose ctime is within two seconds of an import are always re-read;
  // let them age so that the next imports may trust their stat.
  ::sleep(3);
  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "first"));
  RunResult same = Run("import", src, "d@main", "-m", "unchanged");
  EXPECT_TRUE(StartsWith(same.out, "no changes")) << same;

  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(src + "/b", "BBBB"));
  ASSERT_NO_FATAL_FAILURE(SetMtime(src + "/b", 1600000000, 5));
  RunResult r = Run("import", src, "d@main", "-m", "b changed in place");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "(1 read, 2 unchanged)")) << r;
  EXPECT_EQ(Run("cat", "d@main", "b").out, "BBBB");
  EXPECT_EQ(Run("cat", "d@main", "a").out, "aaaa");
}

TEST_F(GcTest, DryRunChangesNothing) {
  std::string listing = FileListing(packs());
  std::string index = ReadFileOrDie(store() + "/index/data.mdb");
  RunResult dry = Run("gc", "--dry-run");
  EXPECT_EQ(dry.exit_code, 0) << dry;
  EXPECT_TRUE(HasSubstr(dry.out, "would remove")) << dry;
  EXPECT_EQ(FileListing(packs()), listing);
  EXPECT_TRUE(ReadFileOrDie(store() + "/index/data.mdb") == index) << "gc --dry-run wrote to the index";
  EXPECT_EQ(Run("ls", "d@" + scratch_commit_.substr(0, 12)).out, "garbage.bin\nshared.bin\n");
  ExpectFsckClean();
}

}  // namespace
}  // namespace tusk::cli_test
