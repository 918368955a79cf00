// Bad input gets a clear "tusk: error: ..." (exit 1) or "tusk: usage error:
// ..." (exit 2), and leaves nothing half-done: every ref stays where it was and
// `tusk fsck` finds the store clean. See tools/tusk/CLI-SPEC.md.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <thread>

#include "store/ids.h"
#include "store/objects.h"
#include "store/refs.h"
#include "store/repository.h"
#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

class ErrorsTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v1"), {File("a.txt", "alpha"), File("sub/b.txt", "beta")}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "d@main", "v1"));
    RememberRefs();
  }

  void RememberRefs() { refs_before_ = RefState(); }

  // `r` failed with exit 1 and "tusk: error: " (mentioning `mention`), and
  // the store is as RememberRefs last saw it, and consistent.
  void ExpectCleanError(const RunResult& r, const std::string& mention = "") {
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(StartsWith(r.err, "tusk: error: ")) << r;
    if (!mention.empty()) {
      EXPECT_TRUE(HasSubstr(r.err, mention)) << r;
    }
    EXPECT_EQ(RefState(), refs_before_) << "a failed command changed refs";
    ExpectFsckClean();
  }

  void ExpectUsageError(const RunResult& r) {
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(StartsWith(r.err, "tusk: usage error: ")) << r;
  }

  std::string refs_before_;
};

std::string Lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Names the spec forbids, one reason each.
const std::vector<std::string>& BadNames() {
  static const std::vector<std::string> names = {
      "",                       // empty
      "a/b",                    // '/'
      "a@b",                    // '@'
      "a~b",                    // '~'
      "a:b",                    // ':'
      ".",                      // reserved
      "..",                     // reserved
      "-x",                     // leading '-'
      "a\x01z",                 // C0 control
      "tab\there",              // C0 control
      "new\nline",              // C0 control
      "del\x7f",                // DEL
      "\xff\xfe",               // not UTF-8
      "overlong\xc0\xaf",       // not UTF-8 (overlong '/')
      "surrogate\xed\xa0\x80",  // not UTF-8 (UTF-16 surrogate)
      std::string(256, 'n'),    // longer than 255 bytes
  };
  return names;
}

TEST_F(ErrorsTest, InvalidDatasetNamesAreRejected) {
  for (const auto& name : BadNames()) {
    SCOPED_TRACE("dataset name '" + EscapeForDisplay(name) + "'");
    ExpectCleanError(Run("dataset", "create", "--", name), "invalid dataset name");
  }
  // Names need not be ASCII.
  EXPECT_EQ(Run("dataset", "create",
                "donn\xc3\xa9"
                "es-\xe6\x97\xa5\xe6\x9c\xac")
                .exit_code,
            0);
  EXPECT_EQ(Run("dataset", "create", std::string(255, 'n')).exit_code, 0);
}

// Unicode's control characters (category Cc) are U+0000-U+001F and
// U+007F-U+009F; the spec forbids them all in names.
TEST_F(ErrorsTest, C1ControlCharactersAreRejectedInNames) {
  for (const std::string& name : {std::string("next\xc2\x85line"), std::string("csi\xc2\x9b")}) {
    RunResult r = Run("dataset", "create", name);
    EXPECT_EQ(r.exit_code, 1) << "dataset create accepted '" << EscapeForDisplay(name) << "'";
    r = Run("branch", "d@" + name);
    EXPECT_EQ(r.exit_code, 1) << "branch accepted '" << EscapeForDisplay(name) << "'";
  }
}

TEST_F(ErrorsTest, InvalidBranchAndTagNamesAreRejected) {
  for (const auto& name : BadNames()) {
    if (name.find('@') != std::string::npos) continue;  // "d@a@b" is a ref syntax error, tested below
    SCOPED_TRACE("name '" + EscapeForDisplay(name) + "'");
    ExpectCleanError(Run("branch", "d@" + name), "invalid branch name");
    ExpectCleanError(Run("tag", "d@" + name), "invalid tag name");
    ExpectCleanError(Run("import", Path("v1"), "d@" + name, "-m", "x"), "invalid branch name");
  }
  ExpectCleanError(Run("branch", "d@a@b"));
  ExpectCleanError(Run("tag", "d@a@b"));
}

TEST_F(ErrorsTest, BranchesAndTagsShareOneNamespace) {
  ExpectCleanError(Run("tag", "d@main"), "main");
  ASSERT_EQ(Run("tag", "d@v1").exit_code, 0);
  RememberRefs();
  ExpectCleanError(Run("branch", "d@v1"), "v1");
  ExpectCleanError(Run("tag", "d@v1"), "v1");
  ExpectCleanError(Run("dataset", "create", "d"), "d");
}

TEST_F(ErrorsTest, UnknownDatasetBranchTagAndCommitAreErrors) {
  ExpectCleanError(Run("ls", "nosuch"), "nosuch");
  ExpectCleanError(Run("log", "nosuch@main"), "nosuch");
  ExpectCleanError(Run("ls", "d@nosuch"), "nosuch");
  ExpectCleanError(Run("cat", "d@nosuch", "a.txt"), "nosuch");
  ExpectCleanError(Run("export", "d@nosuch", Path("out")), "nosuch");
  ExpectCleanError(Run("diff", "d@main", "d@nosuch"), "nosuch");
  ExpectCleanError(Run("show", "d@0123456789abcdef"), "0123456789abcdef");
  ExpectCleanError(Run("ls", "d@main~5"), "d@main~5");
  ExpectCleanError(Run("ls", "d@main", "no/such/path"), "no");
  ExpectCleanError(Run("branch", "-d", "d@nosuch"), "nosuch");
  ExpectCleanError(Run("tag", "-d", "d@nosuch"), "nosuch");
  ExpectCleanError(Run("branch", "d@new", "nosuch"), "nosuch");
  ExpectCleanError(Run("import", Path("v1"), "nosuch@main", "-m", "x"), "nosuch");
  ExpectCleanError(Run("import", Path("v1"), "d@nosuch", "-m", "x"), "nosuch");
  ExpectCleanError(Run("dataset", "delete", "nosuch"), "nosuch");
  ExpectCleanError(Run("stats", "nosuch"), "nosuch");
}

TEST_F(ErrorsTest, BranchOrTagCannotPointIntoAnotherDataset) {
  ASSERT_NO_FATAL_FAILURE(CreateDataset("e"));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "e@main", "e"));
  RememberRefs();
  ExpectCleanError(Run("branch", "d@borrowed", "e@main"), "e");
  ExpectCleanError(Run("tag", "d@borrowed", "e@main"), "e");
}

TEST_F(ErrorsTest, EmptyBranchHasNoCommitsToShow) {
  ASSERT_NO_FATAL_FAILURE(CreateDataset("fresh"));
  RememberRefs();
  ExpectCleanError(Run("log", "fresh"), "no commits");
  ExpectCleanError(Run("ls", "fresh@main"), "no commits");
}

// Fabricates two commits whose ids share their first four hex digits (about
// 300 tries; far too many to make with `tusk import` in a test), one on each
// of the branches `left` and `right`. Returns their ids.
std::pair<ObjectId, ObjectId> CommitTwinsWithSharedPrefix(Repository& repo, const ObjectId& head) {
  Result<Commit> parent = repo.ReadCommit(head);
  EXPECT_TRUE(parent.ok()) << parent.status().message();
  Commit base = *parent;
  base.parents = {head};
  std::map<std::string, Commit> by_prefix;
  for (int i = 0;; i++) {
    Commit c = base;
    c.message = "probe " + std::to_string(i);
    std::string prefix = HashObject(ObjectType::kCommit, EncodeCommit(c)).Hex().substr(0, 4);
    auto [it, inserted] = by_prefix.emplace(prefix, c);
    if (inserted) continue;
    std::pair<ObjectId, ObjectId> ids;
    for (auto [commit, branch, id] :
         {std::tuple{&it->second, "left", &ids.first}, std::tuple{&c, "right", &ids.second}}) {
      auto session = repo.BeginWrite();
      EXPECT_TRUE(session.ok()) << session.status().message();
      Result<ObjectId> written = (*session)->CommitToBranch(*commit, branch, head);
      EXPECT_TRUE(written.ok()) << written.status().message();
      *id = *written;
    }
    return ids;
  }
}

TEST_F(ErrorsTest, AmbiguousCommitPrefixListsTheCandidates) {
  ASSERT_EQ(Run("branch", "d@left").exit_code, 0);
  ASSERT_EQ(Run("branch", "d@right").exit_code, 0);
  std::optional<ObjectId> head = ObjectId::FromHex(CommitOf("d@main"));
  ASSERT_TRUE(head);
  std::pair<ObjectId, ObjectId> twins;
  {
    auto repo = Repository::Open(store());
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    twins = CommitTwinsWithSharedPrefix(**repo, *head);
  }
  ASSERT_EQ(twins.first.Hex().substr(0, 4), twins.second.Hex().substr(0, 4));
  RememberRefs();

  for (const char* command : {"ls", "show", "log"}) {
    RunResult r = Run(command, "d@" + twins.first.Hex().substr(0, 4));
    ExpectCleanError(r, "ambiguous");
    EXPECT_TRUE(HasSubstr(r.err, twins.first.ShortHex(16))) << r;
    EXPECT_TRUE(HasSubstr(r.err, twins.second.ShortHex(16))) << r;
  }
  EXPECT_EQ(CommitOf("d@" + twins.first.Hex()), twins.first.Hex());
  EXPECT_EQ(CommitOf("d@left"), twins.first.Hex());
}

TEST_F(ErrorsTest, FileChangingDuringImportIsAnErrorAndCommitsNothing) {
  std::string growing = Path("v1/growing.log");
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(growing, RandomBytes(32 << 20, 13)));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int fd = ::open(growing.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    while (fd >= 0 && !stop) {
      (void)!::write(fd, "+", 1);
      ::usleep(200);
    }
    if (fd >= 0) ::close(fd);
  });
  RunResult r = Run("import", Path("v1"), "d@main", "-m", "racing a writer");
  stop = true;
  writer.join();
  ExpectCleanError(r, "changed while being imported");
  EXPECT_TRUE(HasSubstr(r.err, "growing.log")) << r;
}

TEST_F(ErrorsTest, ImportOfAMissingPathOrARegularFileFails) {
  ExpectCleanError(Run("import", Path("does-not-exist"), "d@main", "-m", "x"), Path("does-not-exist"));
  ExpectCleanError(Run("import", Path("v1/a.txt"), "d@main", "-m", "x"), "not a directory");
}

TEST_F(ErrorsTest, BadMetaOrFromCommitsNothing) {
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(Path("v1/new.txt"), "would be a change"));
  ExpectCleanError(Run("import", Path("v1"), "d@main", "-m", "x", "--meta", "novalue"), "novalue");
  ExpectCleanError(Run("import", Path("v1"), "d@main", "-m", "x", "--meta", "=value"), "=value");
  ExpectCleanError(Run("import", Path("v1"), "d@main", "-m", "x", "--from", "d@nosuch"), "nosuch");
  ExpectCleanError(Run("import", Path("v1"), "d@main", "-m", "x", "--from", "nosuch@main"), "nosuch");
}

TEST_F(ErrorsTest, DirectoryThatIsNotAStoreSaysToRunInit) {
  ASSERT_NO_FATAL_FAILURE(MakeDirs(Path("plain-dir")));
  for (const std::string& dir : {Path("plain-dir"), Path("absent")}) {
    RunResult r = Run("--store", dir, "ls", "d");
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(StartsWith(r.err, "tusk: error: ")) << r;
    EXPECT_TRUE(HasSubstr(r.err, "tusk init")) << r;
    r = Run("--store", dir, "import", Path("v1"), "d@main", "-m", "x");
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(HasSubstr(r.err, "tusk init")) << r;
  }
  EXPECT_TRUE(std::filesystem::is_empty(Path("plain-dir")))
      << "a failed command wrote into a directory that is no store";
  EXPECT_FALSE(std::filesystem::exists(Path("absent")));

  UseStore(Path("plain-dir"));  // through $TUSK_STORE this time
  RunResult r = Run("dataset", "list");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk init")) << r;
}

TEST_F(ErrorsTest, StoreOfAnUnsupportedFormatIsRefused) {
  std::string config_path = store() + "/config";
  std::string config = ReadFileOrDie(config_path);
  ASSERT_TRUE(StartsWith(config, "tusk-store-format 6\n"));
  std::string future = "tusk-store-format 99\n" + config.substr(config.find('\n') + 1);
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(config_path, future));

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ls", "d"}, {"import", Path("v1"), "d@main", "-m", "x"}, {"gc"}, {"fsck"}}) {
    RunResult r = RunArgs(args);
    EXPECT_EQ(r.exit_code, 1) << Join(args, " ") << r;
    EXPECT_TRUE(StartsWith(r.err, "tusk: error: ")) << r;
    EXPECT_TRUE(HasSubstr(r.err, "not supported")) << r;
    EXPECT_TRUE(HasSubstr(r.err, "99")) << r;
  }
  EXPECT_EQ(ReadFileOrDie(config_path), future) << "tusk rewrote the config of a store it cannot read";

  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(config_path, config));
  EXPECT_EQ(RefState(), refs_before_);
  ExpectFsckClean();
}

TEST_F(ErrorsTest, InitOfAnExistingStoreFails) {
  ExpectCleanError(Run("init"), "already");
  ExpectCleanError(Run("init", "--chunk-avg", "64K"), "already");
  EXPECT_EQ(Run("cat", "d@main", "a.txt").out, "alpha");
}

TEST_F(ErrorsTest, FifosAndSocketsAreImportedAsSpecialFilesWithoutWarnings) {
  std::string src = Path("special");
  ASSERT_NO_FATAL_FAILURE(MakeTree(src, {File("regular", "data")}));
  ASSERT_EQ(::mkfifo((src + "/a-fifo").c_str(), 0644), 0);
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string sock_path = src + "/a-socket";
  ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ::close(sock);

  RunResult r = Run("import", src, "d@main", "-m", "with special files");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(HasSubstr(r.err, "warning")) << r;
  EXPECT_EQ(Run("ls", "d@main").out, "a-fifo\na-socket\nregular\n");
  RunResult long_listing = Run("ls", "d@main", "-l");
  EXPECT_TRUE(HasSubstr(long_listing.out, "prw-r--r-- ")) << long_listing;
  EXPECT_TRUE(HasSubstr(long_listing.out, "srwxr-xr-x ")) << long_listing;
  RunResult json = Run("ls", "d@main", "--json");
  EXPECT_TRUE(HasSubstr(json.out, "\"path\":\"a-fifo\",\"type\":\"fifo\"")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"path\":\"a-socket\",\"type\":\"socket\"")) << json;
  // Exported as they were: mknod(2) makes the socket inode (nothing listens on it).
  ASSERT_NO_FATAL_FAILURE(Export("d@main", Path("out")));
  struct stat st;
  ASSERT_EQ(::lstat(Path("out/a-fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat(Path("out/a-socket").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  std::vector<std::string> diffs = TreeDiff(src, Path("out"));
  EXPECT_TRUE(diffs.empty()) << Join(diffs);
  ExpectFsckClean();
}

TEST_F(ErrorsTest, HardLinksAreImportedAsOneGroupStoredOnceAndExportedAsLinks) {
  ASSERT_NO_FATAL_FAILURE(CreateDataset("links"));
  std::string content = RandomBytes(1 << 20, 7);
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("hl"), {File("first", content)}));
  ASSERT_EQ(::link(Path("hl/first").c_str(), Path("hl/second").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(Import(Path("hl"), "links@main", "hard links"));
  ASSERT_NO_FATAL_FAILURE(Export("links@main", Path("out")));

  struct stat a, b;
  ASSERT_EQ(::stat(Path("out/first").c_str(), &a), 0);
  ASSERT_EQ(::stat(Path("out/second").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(ReadFileOrDie(Path("out/first")), content);
  RunResult json = Run("ls", "links@main", "--json");
  EXPECT_TRUE(HasSubstr(json.out, "\"link_group\":1")) << json;
  // Stored once; both names count as files.
  RunResult stats = Run("stats", "links", "--json");
  EXPECT_TRUE(HasSubstr(stats.out, "\"logical_bytes\":" + std::to_string(2 << 20) + ",")) << stats;
  EXPECT_TRUE(HasSubstr(stats.out, "\"unique_bytes\":" + std::to_string(1 << 20) + ",")) << stats;
}

TEST_F(ErrorsTest, ExportOfADeviceWithoutRootFailsWithEperm) {
  if (::geteuid() != 0) GTEST_SKIP() << "making the device to import needs root";
  std::string src = Path("dev");
  ASSERT_NO_FATAL_FAILURE(MakeTree(src, {File("regular", "data")}));
  ASSERT_EQ(::mknod((src + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_NO_FATAL_FAILURE(Import(src, "d@main", "a device"));
  // setpriv drops every capability, as an ordinary user has none.
  RunResult r = RunProcess({"/usr/bin/setpriv", "--inh-caps=-all", "--bounding-set=-all", kTuskBinary, "export",
                            "d@main", Path("out")},
                           {"TUSK_STORE=" + store(), "PATH=/usr/bin:/bin"});
  if (r.exit_code == 127) GTEST_SKIP() << "no setpriv here";
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk: error: ")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "null")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "only root")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "incomplete")) << r;
}

TEST_F(ErrorsTest, NameThatIsNotUtf8IsAnErrorNamingTheFile) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v1"), {File("deeper/bad\xff.txt", "x"), File("new.txt", "change")}));
  RunResult r = Run("import", Path("v1"), "d@main", "-m", "x");
  ExpectCleanError(r, "UTF-8");
  EXPECT_TRUE(HasSubstr(r.err, "deeper/bad")) << r;
  EXPECT_TRUE(HasSubstr(r.err, ".txt")) << r;
}

TEST_F(ErrorsTest, FullDiskFailsWithoutCommittingAndGcReclaimsTheSpace) {
  std::string mount_point = Path("tiny");
  if (!MountTmpfs(mount_point, "4m")) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  UseStore(mount_point + "/store");
  ASSERT_NO_FATAL_FAILURE(InitStore());
  ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "d@main", "small"));
  RememberRefs();

  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("big"), {File("random.bin", RandomBytes(16 << 20, 8))}));
  RunResult r = Run("import", Path("big"), "d@main", "-m", "too big");
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(StartsWith(r.err, "tusk: error: ")) << r;
  EXPECT_TRUE(HasSubstr(Lowercase(r.err), "space")) << r;
  EXPECT_EQ(RefState(), refs_before_);
  ExpectFsckClean();
  ASSERT_NO_FATAL_FAILURE(Export("d@main", Path("out")));
  EXPECT_TRUE(TreeDiff(Path("v1"), Path("out")).empty());

  // What the failed import wrote is garbage; gc gives the space back.
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v2"), {File("after.bin", RandomBytes(1 << 20, 9))}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v2"), "d@main", "fits again"));
  ExpectFsckClean();
}

// The same, when the packs still fit and the disk fills up while the index
// (LMDB) grows: the user must still learn that space ran out.
TEST_F(ErrorsTest, DiskFillingUpDuringTheIndexCommitIsReportedAsNoSpace) {
  // 20,000 tiny files: about 3 MiB of packs, 2 MiB of index.
  std::string tiny = Path("tiny-files");
  ASSERT_NO_FATAL_FAILURE(MakeDirs(tiny));
  for (int i = 0; i < 20000; i++) {
    ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(tiny + "/f" + std::to_string(i), "unique content " + std::to_string(i)));
  }
  // How many pack bytes that import writes, measured in a store on disk.
  UseStore(Path("probe"));
  ASSERT_NO_FATAL_FAILURE(InitStore());
  ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
  ASSERT_NO_FATAL_FAILURE(Import(tiny, "d@main", "probe"));
  uint64_t pack_bytes = RegularFileBytes(Path("probe/packs"));

  std::string mount_point = Path("disk");
  if (!MountTmpfs(mount_point, "32m")) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  UseStore(mount_point + "/store");
  ASSERT_NO_FATAL_FAILURE(InitStore());
  ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "d@main", "small"));
  RememberRefs();
  // Leave room for the packs and 256 KiB more.
  struct statvfs fs;
  ASSERT_EQ(::statvfs(mount_point.c_str(), &fs), 0);
  uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  ASSERT_GT(available, pack_bytes + (256 << 10));
  std::string ballast = mount_point + "/ballast";
  int fd = ::open(ballast.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::posix_fallocate(fd, 0, static_cast<off_t>(available - pack_bytes - (256 << 10))), 0);
  ::close(fd);

  RunResult r = Run("import", tiny, "d@main", "-m", "the index does not fit");
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(StartsWith(r.err, "tusk: error: ")) << r;
  EXPECT_TRUE(HasSubstr(Lowercase(r.err), "space")) << r;
  EXPECT_EQ(RefState(), refs_before_);
  ExpectFsckClean();

  ASSERT_EQ(::unlink(ballast.c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(Import(tiny, "d@main", "fits now"));
  ExpectFsckClean();
}

TEST_F(ErrorsTest, ExportIntoANonEmptyDirectoryOrOntoAFileFails) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("busy"), {File("precious", "do not touch")}));
  ExpectCleanError(Run("export", "d@main", Path("busy")), "not empty");
  EXPECT_EQ(Snapshot(Path("busy")).size(), 1u);
  EXPECT_EQ(ReadFileOrDie(Path("busy/precious")), "do not touch");

  ExpectCleanError(Run("export", "d@main", Path("busy/precious")), Path("busy/precious"));
  EXPECT_EQ(ReadFileOrDie(Path("busy/precious")), "do not touch");
}

TEST_F(ErrorsTest, CatOfADirectoryASymlinkOrAMissingPathFails) {
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v2"), {File("a.txt", "alpha"), Symlink("link", "a.txt"), Dir("sub")}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v2"), "d@main", "v2"));
  RememberRefs();
  for (const auto& [path, mention] : std::vector<std::pair<std::string, std::string>>{
           {"sub", "sub"}, {"link", "link"}, {"missing", "missing"}, {"a.txt/below", "a.txt"}}) {
    SCOPED_TRACE(path);
    RunResult r = Run("cat", "d@main", path);
    ExpectCleanError(r, mention);
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(ErrorsTest, HelpImportDescribesItsFlags) {
  RunResult r = Run("help", "import");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "--message")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "--meta")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "--from")) << r;
}

TEST_F(ErrorsTest, HelpWithoutACommandListsEveryCommand) {
  RunResult r = Run("help");
  EXPECT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> missing;
  for (const char* command : {"init", "dataset", "import", "ls", "cat", "export", "log", "show", "diff", "branch",
                              "tag", "gc", "fsck", "stats", "mount", "status", "commit", "runs"}) {
    if (!HasSubstr(r.out, command)) missing.push_back(command);
  }
  EXPECT_TRUE(missing.empty()) << "'tusk help' does not list: " << Join(missing, ", ") << r;
}

TEST_F(ErrorsTest, HelpOfAnUnknownCommandIsAnError) { ExpectCleanError(Run("help", "frobnicate"), "frobnicate"); }

TEST_F(ErrorsTest, VersionPrintsTheVersion) {
  RunResult r = Run("--version");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "tusk 0.1.0\n");
}

TEST_F(ErrorsTest, FlagAndArgumentErrorsAreUsageErrors) {
  ExpectUsageError(Run("frobnicate"));
  ExpectUsageError(Run("ls", "--bogus", "d"));
  ExpectUsageError(Run("import", Path("v1"), "d@main"));  // no -m
  ExpectUsageError(Run("dataset", "create", "-x"));
  ExpectUsageError(Run("log", "d", "-n", "many"));
  ExpectUsageError(Run("cat", "d@main"));
  ExpectUsageError(Run("dataset"));
  ExpectUsageError(Run());
  EXPECT_EQ(RefState(), refs_before_);
}

}  // namespace
}  // namespace tusk::cli_test
