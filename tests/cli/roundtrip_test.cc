// What goes in comes out: `tusk import` then `tusk export` reproduces a tree
// exactly, and the read commands (ls, cat, log, show, diff) describe the
// versions truthfully. See tools/tusk/CLI-SPEC.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMiB = uint64_t{1} << 20;

// "n0/n1/.../n{levels-1}/"
std::string NestedDirs(int levels) {
  std::string path;
  for (int i = 0; i < levels; i++) path += "n" + std::to_string(i) + "/";
  return path;
}

class RoundTripTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
  }

  // `tusk diff` lines with runs of blanks collapsed, summary line excluded.
  std::set<std::string> DiffLines(const std::string& old_ref, const std::string& new_ref, std::string* summary) {
    RunResult r = Run("diff", old_ref, new_ref);
    EXPECT_EQ(r.exit_code, 0) << r;
    std::set<std::string> lines;
    std::vector<std::string> all = Lines(r.out);
    for (size_t i = 0; i < all.size(); i++) {
      std::string line = std::regex_replace(all[i], std::regex("\\s+"), " ");
      if (i + 1 == all.size())
        *summary = line;
      else
        lines.insert(line);
    }
    return lines;
  }
};

TEST_F(RoundTripTest, ExportReproducesModesMtimesOwnersSymlinksAndEmptyThings) {
  std::string src = Path("src");
  std::vector<FsEntry> entries = {
      File("plain.txt", "hello\n", 0644).WithMtime(1600000000, 123456789),
      File("secret", "private key material\n", 0600).WithMtime(1500000000, 1),
      File("tool.sh", "#!/bin/sh\necho hi\n", 0755).WithMtime(1234567890, 999999999),
      File("setuid-binary", "\x7f" + std::string("ELF pretend"), 04755).WithMtime(1700000000, 500),
      File("setgid-sticky", "odd bits", 03711),
      File("empty", "", 0644).WithMtime(1, 0),
      File("before-1970", "old", 0444).WithMtime(-31536000, 250000000),
      // Larger than the importer's 8 MiB read buffer, not a multiple of anything.
      File("random.bin", RandomBytes(9 * kMiB + 12345, 1), 0644).WithMtime(1650000000, 42),
      File("names/with space", "s"),
      File("names/new\nline", "n"),
      File("names/tab\there", "t"),
      File("names/-leading-dash", "-"),
      File("names/.hidden", "h"),
      File("names/\xe6\x97\xa5\xe6\x9c\xac.txt", "ja"),
      File("names/" + std::string(255, 'L'), "longest name"),
      File(NestedDirs(40) + "bottom.txt", "forty levels down"),
      Dir("private", 0700).WithMtime(1400000000, 7),
      File("private/note", "inside a 0700 dir", 0600),
      Dir("readonly", 0555).WithMtime(1410000000, 0),
      File("readonly/content", "a read-only dir must be filled before its mode is set", 0444),
      Dir("empty-dir", 0755).WithMtime(1420000000, 99),
      Dir("a/b/c/d", 0750).WithMtime(1430000000, 123),
      File("a/b/c/d/deep.txt", "deep", 0644).WithMtime(1440000000, 456),
      Dir("a/b/empty-nested", 0711).WithMtime(1450000000, 789),
      Dir("a/b", 0755).WithMtime(1460000000, 1),
      Symlink("relative-link", "plain.txt"),
      Symlink("a/up-link", "../plain.txt").WithMtime(1470000000, 333),
      Symlink("absolute-link", "/etc/hostname").WithMtime(1480000000, 444),
      Symlink("dangling-link", "does/not/exist").WithMtime(1490000000, 555),
      Symlink("dir-link", "a/b"),
  };
  if (::geteuid() == 0) {  // only root can give files away, and export restores owners only as root
    entries.push_back(File("owned-by-someone-else", "not root's", 0640).WithOwner(1234, 5678));
    entries.push_back(Symlink("owned-link", "plain.txt").WithOwner(4321, 8765).WithMtime(1510000000, 10));
    entries.push_back(Dir("owned-dir", 0750).WithOwner(2222, 3333).WithMtime(1520000000, 20));
  }
  ASSERT_NO_FATAL_FAILURE(MakeTree(src, entries));

  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "everything at once"));
  ASSERT_NO_FATAL_FAILURE(Export("d@main", Path("out")));

  std::vector<std::string> diffs = TreeDiff(src, Path("out"));
  EXPECT_TRUE(diffs.empty()) << Join(diffs);
}

// Creates a sparse file of `size` bytes holding `islands` (offset, bytes).
void MakeSparseFile(const std::string& path, uint64_t size,
                    const std::vector<std::pair<uint64_t, std::string>>& islands) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  for (const auto& [offset, bytes] : islands) {
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
  }
  ::close(fd);
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST_F(RoundTripTest, SparseMultiGibFileComesBackEqualAndStillSparse) {
  const uint64_t size = 3 * kGiB;
  const std::vector<std::pair<uint64_t, std::string>> islands = {
      {0, "start"},
      {40963, "near the front"},
      {kGiB + 7, "one gig"},
      {2 * kGiB + 12345, RandomBytes(9 * kMiB, 6)},  // a data extent longer than the importer's buffer
      {size - 5, "tail!"}};
  std::string src = Path("src");
  ASSERT_NO_FATAL_FAILURE(MakeDirs(src));
  ASSERT_NO_FATAL_FAILURE(MakeSparseFile(src + "/sparse.img", size, islands));
  ASSERT_NO_FATAL_FAILURE(MakeSparseFile(src + "/all-hole.img", 2 * kGiB, {}));
  uint64_t src_allocated = AllocatedBytes(src + "/sparse.img");
  if (src_allocated > 10 * kMiB) GTEST_SKIP() << "the file system under /tmp has no holes";

  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "sparse"));
  RunResult ls = Run("ls", "d@main", "-l");
  EXPECT_TRUE(HasSubstr(ls.out, " " + std::to_string(size) + "\t")) << ls;
  ASSERT_NO_FATAL_FAILURE(Export("d@main", Path("out")));

  std::vector<std::string> diffs;
  auto out = Snapshot(Path("out"));
  for (const auto& [path, info] : Snapshot(src)) {  // sizes, modes and mtimes; not content (5 GiB of zeros)
    if (!out.count(path) || out[path].size != info.size || out[path].mtime_ns != info.mtime_ns ||
        out[path].mode != info.mode)
      diffs.push_back(path);
  }
  EXPECT_TRUE(diffs.empty()) << "differ after export: " << Join(diffs, ", ");
  EXPECT_LE(AllocatedBytes(Path("out/sparse.img")), src_allocated + kMiB) << "the exported file is not sparse";
  EXPECT_LE(AllocatedBytes(Path("out/all-hole.img")), kMiB) << "the exported file is not sparse";

  int fd = ::open(Path("out/sparse.img").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (const auto& [offset, bytes] : islands) {
    std::string got(bytes.size(), '\0');
    ASSERT_EQ(::pread(fd, got.data(), got.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(got.size()));
    EXPECT_TRUE(got == bytes) << "wrong bytes at offset " << offset;
  }
  for (uint64_t hole : {kMiB, kGiB + kGiB / 2, size - 70000}) {
    std::string got(4096, 'x');
    ASSERT_EQ(::pread(fd, got.data(), got.size(), static_cast<off_t>(hole)), 4096);
    EXPECT_EQ(got, std::string(4096, '\0')) << "the hole at " << hole << " does not read as zeros";
  }
  ::close(fd);
}

TEST_F(RoundTripTest, DirectoryOfTwoHundredThousandEntries) {
  constexpr int kEntries = 200000;
  // Creating and deleting 400,000 files on tmpfs takes a fraction of the time
  // it takes on a journalled disk; the store stays on disk either way.
  std::string ram = Path("ram");
  if (!MountTmpfs(ram, "2g")) ram = dir();
  std::string src = ram + "/src", out = ram + "/out";
  ASSERT_NO_FATAL_FAILURE(MakeDirs(src + "/many"));
  auto name_of = [](int i) {
    char name[32];
    std::snprintf(name, sizeof name, "f%06d", i);
    return std::string(name);
  };
  auto content_of = [](int i) { return i % 10 == 0 ? std::to_string(i) : std::string(); };
  for (int i = 0; i < kEntries; i++) {
    std::string path = src + "/many/" + name_of(i);
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    std::string content = content_of(i);
    ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
  }

  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "many small files"));
  RunResult ls = Run("ls", "d@main", "many");
  ASSERT_EQ(ls.exit_code, 0) << ls;
  std::vector<std::string> listed = Lines(ls.out);
  ASSERT_EQ(listed.size(), static_cast<size_t>(kEntries));
  EXPECT_EQ(listed.front(), name_of(0));
  EXPECT_EQ(listed[123456], name_of(123456));
  EXPECT_EQ(listed.back(), name_of(kEntries - 1));

  ASSERT_NO_FATAL_FAILURE(Export("d@main", out));
  size_t exported = 0;
  for (const auto& entry : std::filesystem::directory_iterator(out + "/many")) {
    (void)entry;
    exported++;
  }
  EXPECT_EQ(exported, static_cast<size_t>(kEntries));
  for (int i = 0; i < kEntries; i += 997) {
    std::string a = src + "/many/" + name_of(i), b = out + "/many/" + name_of(i);
    EXPECT_EQ(ReadFileOrDie(b), content_of(i)) << b;
    struct stat sa, sb;
    ASSERT_EQ(::stat(a.c_str(), &sa), 0);
    ASSERT_EQ(::stat(b.c_str(), &sb), 0) << b;
    EXPECT_EQ(sa.st_mode, sb.st_mode) << b;
    EXPECT_EQ(MtimeNs(sa), MtimeNs(sb)) << b;
  }
}

TEST_F(RoundTripTest, CatPrintsExactlyTheFileContent) {
  std::string big = RandomBytes(3 * kMiB + 17, 2);
  ASSERT_NO_FATAL_FAILURE(
      MakeTree(Path("src"), {File("big.bin", big), File("sub/text.txt", "line one\nline two\n"), File("empty", "")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "for cat"));

  RunResult r = Run("cat", "d@main", "big.bin");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(r.out == big) << "cat big.bin gave " << r.out.size() << " bytes, expected " << big.size();
  r = Run("cat", "d", "sub/text.txt");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "line one\nline two\n");
  r = Run("cat", "d@main", "empty");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "");
}

TEST_F(RoundTripTest, ReimportOfUnchangedTreeSaysNoChangesAndCommitsNothing) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(
      Path("src"), {File("a", "alpha"), File("dir/b", RandomBytes(300000, 3)), Symlink("link", "a"), Dir("empty")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "first"));
  std::string head = CommitOf("d@main");
  ASSERT_EQ(LogLength("d@main"), 1u);

  RunResult again = Run("import", Path("src"), "d@main", "-m", "second");
  EXPECT_EQ(again.exit_code, 0) << again;
  EXPECT_TRUE(StartsWith(again.out, "no changes: d@main stays at " + head.substr(0, 12))) << again;
  EXPECT_EQ(LogLength("d@main"), 1u);
  EXPECT_EQ(CommitOf("d@main"), head);
}

TEST_F(RoundTripTest, ChangedTreeMakesOneCommitAndDiffNamesEachChange) {
  std::string src = Path("src");
  std::string moved_content = RandomBytes(100 * 1024, 4);
  ASSERT_NO_FATAL_FAILURE(MakeTree(src, {
                                            File("keep.txt", "unchanged"),
                                            File("old.txt", "to be deleted"),  // 13 B
                                            File("edit.txt", "v1"),            // 2 B
                                            File("move-me.bin", moved_content),
                                            File("becomes-link", "file"),
                                            File("chmod-only", "same bytes", 0644),
                                        }));
  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "v1"));

  // Change the same directory in place, as a user would.
  ASSERT_EQ(::unlink((src + "/old.txt").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(src + "/edit.txt", "version two"));  // 11 B
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(src + "/new.txt", "brand new"));     // 9 B
  ASSERT_NO_FATAL_FAILURE(MakeDirs(src + "/moved"));
  ASSERT_EQ(::rename((src + "/move-me.bin").c_str(), (src + "/moved/here.bin").c_str()), 0);
  ASSERT_EQ(::unlink((src + "/becomes-link").c_str()), 0);
  ASSERT_EQ(::symlink("keep.txt", (src + "/becomes-link").c_str()), 0);
  ASSERT_EQ(::chmod((src + "/chmod-only").c_str(), 0600), 0);
  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "v2"));
  EXPECT_EQ(LogLength("d@main"), 2u);

  std::string summary;
  std::set<std::string> lines = DiffLines("d@main~1", "d@main", &summary);
  std::set<std::string> expected = {
      "A new.txt (9 B)",
      "D old.txt (13 B)",
      "M edit.txt (2 B -> 11 B)",
      "M chmod-only (10 B -> 10 B, metadata only)",
      "R move-me.bin -> moved/here.bin (100.0 KiB)",
      "T becomes-link",
  };
  EXPECT_EQ(Join({lines.begin(), lines.end()}), Join({expected.begin(), expected.end()}));
  EXPECT_EQ(summary, "1 added, 1 deleted, 2 modified, 1 renamed, 1 type changed");

  // And backwards: what was added is deleted, the rename runs the other way.
  std::set<std::string> back = DiffLines("d@main", "d@main~1", &summary);
  EXPECT_TRUE(back.count("D new.txt (9 B)")) << Join({back.begin(), back.end()});
  EXPECT_TRUE(back.count("A old.txt (13 B)")) << Join({back.begin(), back.end()});
  EXPECT_TRUE(back.count("R moved/here.bin -> move-me.bin (100.0 KiB)")) << Join({back.begin(), back.end()});
}

// The value of user xattr `name` of `path`, or "<errno N>".
std::string XattrOf(const std::string& path, const std::string& name) {
  char buf[4096];
  ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
  if (n < 0) return "<errno " + std::to_string(errno) + ">";
  return std::string(buf, static_cast<size_t>(n));
}

TEST_F(RoundTripTest, XattrsHardLinksFifosAndDevicesComeBackFromExport) {
  const bool root = ::geteuid() == 0;  // devices need CAP_MKNOD, to make and to export
  std::string src = Path("src");
  std::string big = RandomBytes(3 * kMiB + 7, 40);
  ASSERT_NO_FATAL_FAILURE(MakeTree(src, {
                                            File("a/first", big, 0640).WithMtime(1600000000, 5),
                                            File("plain", "no links", 0644),
                                            File("tagged", "with xattrs", 0600).WithMtime(1610000000, 6),
                                            Dir("a", 0755),
                                            Dir("b", 0750),
                                        }));
  ASSERT_EQ(::link((src + "/a/first").c_str(), (src + "/b/second").c_str()), 0);
  ASSERT_EQ(::link((src + "/a/first").c_str(), (src + "/a/third").c_str()), 0);
  std::string binary("\0\x01\xff value", 9);
  ASSERT_EQ(::lsetxattr((src + "/tagged").c_str(), "user.label", "cat", 3, 0), 0) << std::strerror(errno);
  ASSERT_EQ(::lsetxattr((src + "/tagged").c_str(), "user.binary", binary.data(), binary.size(), 0), 0);
  ASSERT_EQ(::lsetxattr((src + "/a/first").c_str(), "user.shared", "by all links", 12, 0), 0);
  ASSERT_EQ(::lsetxattr((src + "/b").c_str(), "user.dir", "b", 1, 0), 0);
  ASSERT_EQ(::mkfifo((src + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mknod((src + "/socket").c_str(), S_IFSOCK | 0600, 0), 0);
  if (root) {
    ASSERT_EQ(::mknod((src + "/null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
    ASSERT_EQ(::mknod((src + "/loop").c_str(), S_IFBLK | 0600, makedev(7, 200)), 0);
    ASSERT_EQ(::chmod((src + "/null").c_str(), 0666), 0);
    ASSERT_EQ(::chown((src + "/loop").c_str(), 6, 7), 0);
  }
  // Directory times last: linking and mknod changed them.
  ASSERT_NO_FATAL_FAILURE(SetMtime(src + "/a", 1620000000, 7));
  ASSERT_NO_FATAL_FAILURE(SetMtime(src + "/b", 1630000000, 8));

  RunResult imported = Run("import", src, "d@main", "-m", "everything");
  ASSERT_EQ(imported.exit_code, 0) << imported;
  EXPECT_FALSE(HasSubstr(imported.err, "warning")) << imported;
  RunResult exported = Run("export", "d@main", Path("out"));
  ASSERT_EQ(exported.exit_code, 0) << exported;
  EXPECT_TRUE(HasSubstr(exported.out, "2 hard links")) << exported;
  EXPECT_TRUE(HasSubstr(exported.out, root ? "4 special files" : "2 special files")) << exported;
  EXPECT_FALSE(HasSubstr(exported.err, "warning")) << exported;

  std::string out = Path("out");
  std::vector<std::string> diffs = TreeDiff(src, out);
  EXPECT_TRUE(diffs.empty()) << Join(diffs);
  struct stat first, second, third, plain;
  ASSERT_EQ(::lstat((out + "/a/first").c_str(), &first), 0);
  ASSERT_EQ(::lstat((out + "/b/second").c_str(), &second), 0);
  ASSERT_EQ(::lstat((out + "/a/third").c_str(), &third), 0);
  ASSERT_EQ(::lstat((out + "/plain").c_str(), &plain), 0);
  EXPECT_EQ(first.st_ino, second.st_ino);
  EXPECT_EQ(first.st_ino, third.st_ino);
  EXPECT_EQ(first.st_nlink, 3u);
  EXPECT_EQ(plain.st_nlink, 1u);
  EXPECT_EQ(XattrOf(out + "/tagged", "user.label"), "cat");
  EXPECT_EQ(XattrOf(out + "/tagged", "user.binary"), binary);
  EXPECT_EQ(XattrOf(out + "/b/second", "user.shared"), "by all links");
  EXPECT_EQ(XattrOf(out + "/b", "user.dir"), "b");
  EXPECT_EQ(XattrOf(out + "/plain", "user.label"), "<errno " + std::to_string(ENODATA) + ">");
  struct stat st;
  ASSERT_EQ(::lstat((out + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat((out + "/socket").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  if (root) {
    ASSERT_EQ(::lstat((out + "/null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
    EXPECT_EQ(st.st_mode & 07777, 0666u);
    ASSERT_EQ(::lstat((out + "/loop").c_str(), &st), 0);
    EXPECT_TRUE(S_ISBLK(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(7, 200));
    EXPECT_EQ(st.st_uid, 6u);
    RunResult ls = Run("ls", "d@main", "-l");
    EXPECT_TRUE(HasSubstr(ls.out, "crw-rw-rw- 0 0 1, 3\t")) << ls;
    EXPECT_TRUE(HasSubstr(ls.out, "brw------- 6 7 7, 200\t")) << ls;
    RunResult json = Run("ls", "d@main", "null", "--json");
    EXPECT_TRUE(HasSubstr(json.out, "\"type\":\"char-device\"")) << json;
    EXPECT_TRUE(HasSubstr(json.out, "\"major\":1,\"minor\":3")) << json;
  }
  RunResult tagged = Run("ls", "d@main", "tagged", "--json");
  EXPECT_TRUE(HasSubstr(tagged.out, "\"xattrs\":{")) << tagged;
  EXPECT_TRUE(HasSubstr(tagged.out, "\"user.label\":\"cat\"")) << tagged;
  EXPECT_TRUE(IsValidJson(tagged.out)) << tagged;

  // The export holds everything the commit does: imported again, it is the
  // very same tree.
  RunResult again = Run("import", out, "d@main", "-m", "the export");
  EXPECT_EQ(again.exit_code, 0) << again;
  EXPECT_TRUE(StartsWith(again.out, "no changes: ")) << again;

  // An xattr change alone is a (metadata) modification.
  ASSERT_EQ(::lsetxattr((src + "/tagged").c_str(), "user.label", "dog", 3, 0), 0);
  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "relabel"));
  std::string summary;
  std::set<std::string> lines = DiffLines("d@main~1", "d@main", &summary);
  EXPECT_EQ(Join({lines.begin(), lines.end()}), "M tagged (11 B -> 11 B, metadata only)");
}

TEST_F(RoundTripTest, StatsCountLogicalBytesOverEveryCommitAndUniqueBytesOnce) {
  std::string mib = RandomBytes(kMiB, 30);
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("src"), {File("a", mib)}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "one copy"));
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(Path("src/b"), mib));
  ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "two copies"));
  ASSERT_NO_FATAL_FAILURE(CreateDataset("text"));
  std::string text;
  while (text.size() < 2 * kMiB)
    text += "the same line of text, over and over " + std::to_string(text.size() % 7) + "\n";
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("text"), {File("log.txt", text)}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("text"), "text@main", "compressible"));

  RunResult d = Run("stats", "d", "--json");
  ASSERT_EQ(d.exit_code, 0) << d;
  EXPECT_EQ(JsonNumber(d.out, "commits"), 2) << d;
  EXPECT_EQ(JsonNumber(d.out, "logical_bytes"), 3 * kMiB) << d;  // 1 MiB in the first commit, 2 in the second
  EXPECT_EQ(JsonNumber(d.out, "unique_bytes"), kMiB) << d;
  EXPECT_EQ(JsonNumber(d.out, "dedup_ratio"), 3.0) << d;

  RunResult t = Run("stats", "text", "--json");
  EXPECT_EQ(JsonNumber(t.out, "logical_bytes"), static_cast<double>(text.size())) << t;
  EXPECT_GT(JsonNumber(t.out, "compression_ratio"), 5.0) << t;
  EXPECT_LT(JsonNumber(t.out, "stored_bytes"), JsonNumber(t.out, "unique_bytes") / 5) << t;

  RunResult all = Run("stats", "--json");
  EXPECT_EQ(JsonNumber(all.out, "datasets"), 2) << all;
  EXPECT_EQ(JsonNumber(all.out, "commits"), 3) << all;
  EXPECT_EQ(JsonNumber(all.out, "logical_bytes"), 3 * kMiB + text.size()) << all;
}

TEST_F(RoundTripTest, JsonOutputsAreValidJson) {
  ASSERT_NO_FATAL_FAILURE(
      MakeTree(Path("v1"), {File("a", "1"), File("dir/b", "quote \" backslash \\ tab \t"), Symlink("l", "a")}));
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v2"), {File("a", "22"), File("c", "3"), Dir("empty")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "d@main", "first \"quoted\"\nsecond line", "--meta", "k=v"));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v2"), "d@main", "second"));
  ASSERT_EQ(Run("tag", "d@v1", "d@main~1").exit_code, 0);
  ASSERT_EQ(Run("branch", "d@dev").exit_code, 0);

  const std::vector<std::vector<std::string>> commands = {
      {"log", "d", "--json"},         {"log", "d@main", "-n", "1", "--json"},
      {"show", "d@v1", "--json"},     {"ls", "d@main", "--json"},
      {"ls", "d@v1", "-r", "--json"}, {"diff", "d@v1", "d@main", "--json"},
      {"dataset", "list", "--json"},  {"branch", "d", "--json"},
      {"tag", "d", "--json"},         {"stats", "--json"},
      {"stats", "d", "--json"},       {"fsck", "--json"},
  };
  for (const auto& args : commands) {
    RunResult r = RunArgs(args);
    EXPECT_EQ(r.exit_code, 0) << Join(args, " ") << r;
    EXPECT_TRUE(IsValidJson(r.out)) << Join(args, " ");
  }
}

// JSON text must be UTF-8 (RFC 8259 section 8.1). Symlink targets are
// arbitrary bytes, and nothing in the spec limits commit messages to UTF-8.
TEST_F(RoundTripTest, JsonStaysValidForBytesThatAreNotUtf8) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("src"), {File("f", "x"), Symlink("link", "target\xff\xfe")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "plain message"));
  RunResult ls = Run("ls", "d@main", "--json");
  EXPECT_EQ(ls.exit_code, 0) << ls;
  EXPECT_TRUE(IsValidJson(ls.out)) << "ls --json with a symlink target that is not UTF-8";

  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(Path("src/g"), "y"));
  RunResult import = Run("import", Path("src"), "d@main", "-m", "caf\xe9 in Latin-1", "--meta", "lens=50\xb5m");
  if (import.exit_code != 0) {
    EXPECT_TRUE(StartsWith(import.err, "tusk: error: ")) << import;  // refusing such a message is fine too
    return;
  }
  RunResult log = Run("log", "d@main", "--json");
  EXPECT_EQ(log.exit_code, 0) << log;
  EXPECT_TRUE(IsValidJson(log.out)) << "log --json with a commit message that is not UTF-8";
}

TEST_F(RoundTripTest, MetaAndFromAppearInLogAndShow) {
  ASSERT_NO_FATAL_FAILURE(CreateDataset("raw"));
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("raw"), {File("img.raw", RandomBytes(1000, 5))}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("raw"), "raw@main", "raw capture"));
  std::string raw_head = CommitOf("raw@main");

  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("cooked"), {File("img.png", "png")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("cooked"), "d@main", "cooked", "--meta", "camera=x100", "--meta",
                                 "pipeline=v2=beta", "--from", "raw@main"));

  for (const char* command : {"log", "show"}) {
    RunResult r = Run(command, "d@main");
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(HasSubstr(r.out, "Meta:   camera=x100")) << command;
    EXPECT_TRUE(HasSubstr(r.out, "Meta:   pipeline=v2=beta")) << command;
    EXPECT_TRUE(HasSubstr(r.out, "From:   raw@" + raw_head.substr(0, 12))) << command;
  }
  RunResult json = Run("show", "d@main", "--json");
  EXPECT_TRUE(HasSubstr(json.out, "\"metadata\":{\"camera\":\"x100\",\"pipeline\":\"v2=beta\"}")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"provenance\":[{\"dataset\":\"raw\",\"commit\":\"" + raw_head + "\"}]")) << json;
}

TEST_F(RoundTripTest, RefsByAncestryTagAndCommitPrefixWorkInExportLsAndDiff) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v1"), {File("one", "1")}));
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v2"), {File("one", "1"), File("two", "2")}));
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v3"), {File("two", "2"), File("three", "3")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "d@main", "v1"));
  std::string c1 = CommitOf("d@main");
  ASSERT_NO_FATAL_FAILURE(Import(Path("v2"), "d@main", "v2"));
  std::string c2 = CommitOf("d@main");
  ASSERT_NO_FATAL_FAILURE(Import(Path("v3"), "d@main", "v3"));
  std::string c3 = CommitOf("d@main");
  RunResult tag = Run("tag", "d@first", "d@main~2");
  ASSERT_EQ(tag.exit_code, 0) << tag;

  // Each ref form names the expected commit.
  const std::vector<std::pair<std::string, std::string>> refs = {
      {"d@main~1", c2},
      {"d@main~", c2},
      {"d@main~2", c1},
      {"d@main~1~1", c1},
      {"d@first", c1},
      {"d", c3},
      {"d@" + c1.substr(0, 4), c1},
      {"d@" + c2.substr(0, 10), c2},
      {"d@" + c3, c3},
      {"d@" + c3.substr(0, 8) + "~2", c1},
      {"d@first~0", c1},
  };
  for (const auto& [ref, want] : refs) EXPECT_EQ(CommitOf(ref), want) << ref;

  // export
  const std::vector<std::pair<std::string, std::string>> exports = {
      {"d@main~1", "v2"}, {"d@first", "v1"}, {"d@" + c1.substr(0, 6), "v1"}, {"d@" + c3.substr(0, 6) + "~1", "v2"}};
  int n = 0;
  for (const auto& [ref, tree] : exports) {
    std::string out = Path("out" + std::to_string(n++));
    ASSERT_NO_FATAL_FAILURE(Export(ref, out));
    std::vector<std::string> diffs = TreeDiff(Path(tree), out);
    EXPECT_TRUE(diffs.empty()) << ref << ":\n" << Join(diffs);
  }

  // ls
  EXPECT_EQ(Run("ls", "d@main~1").out, "one\ntwo\n");
  EXPECT_EQ(Run("ls", "d@first").out, "one\n");
  EXPECT_EQ(Run("ls", "d@" + c3.substr(0, 5)).out, "three\ntwo\n");

  // diff, by any mix of forms
  std::string summary;
  std::set<std::string> by_prefix = DiffLines("d@" + c1.substr(0, 7), "d@" + c3.substr(0, 7), &summary);
  std::set<std::string> by_name = DiffLines("d@first", "d@main", &summary);
  std::set<std::string> expected = {"A three (1 B)", "A two (1 B)", "D one (1 B)"};
  EXPECT_EQ(Join({by_prefix.begin(), by_prefix.end()}), Join({expected.begin(), expected.end()}));
  EXPECT_EQ(by_name, by_prefix);
  EXPECT_EQ(summary, "2 added, 1 deleted, 0 modified, 0 renamed, 0 type changed");

  // A branch may start at a tag named without its dataset.
  ASSERT_EQ(Run("branch", "d@from-tag", "first").exit_code, 0);
  EXPECT_EQ(CommitOf("d@from-tag"), c1);
  ASSERT_EQ(Run("branch", "d@from-prefix", "d@" + c2.substr(0, 8)).exit_code, 0);
  EXPECT_EQ(CommitOf("d@from-prefix"), c2);

  // diff compares versions of different datasets too.
  ASSERT_NO_FATAL_FAILURE(CreateDataset("e"));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v2"), "e@main", "e's copy of v2"));
  std::set<std::string> across = DiffLines("e@main", "d@main~1", &summary);  // both are v2
  EXPECT_TRUE(across.empty()) << Join({across.begin(), across.end()});
  EXPECT_EQ(summary, "0 added, 0 deleted, 0 modified, 0 renamed, 0 type changed");
  across = DiffLines("e@main", "d@first", &summary);
  EXPECT_TRUE(across.count("D two (1 B)")) << Join({across.begin(), across.end()});
}

}  // namespace
}  // namespace tusk::cli_test
