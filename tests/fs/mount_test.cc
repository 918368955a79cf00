// Real FUSE mounts of a store through the tusk binary:
//   - every file of a generated tree byte for byte with its metadata (modes
//     incl. setuid/sticky, owners, nanosecond/negative/future mtimes, odd
//     names, symlinks incl. dangling), a 2 GiB and a 6 GiB sparse file,
//     distinct inode numbers, mmap, random small reads without readahead;
//   - a 200,000-entry directory (readdir, ls, telldir/seekdir, lookups);
//   - datasets, branches, tags and commit prefixes side by side and pinned;
//   - EROFS for every kind of write, user.tusk.commit, statfs;
//   - branches, tags and datasets changing under a live mount, open files
//     keeping their version, gc keeping what a mount serves;
//   - corrupted chunks and directories (EIO, the log names file and chunk);
//   - CLI errors, signals, tusk umount, background daemons, relative paths,
//     --allow-other and file modes for other users, -d and --cache-size.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "store/importer.h"
#include "store/objects.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"

namespace tusk {
namespace {

using namespace tusk::fstest;

std::string GetXattrString(const std::string& path, const char* name, int* err) {
  char buf[256];
  ssize_t n = ::getxattr(path.c_str(), name, buf, sizeof buf);
  if (n < 0) {
    *err = errno;
    return "";
  }
  *err = 0;
  return std::string(buf, static_cast<size_t>(n));
}

// Creates a store and imports `src` into DATASET@main (creating the dataset).
ObjectId ImportInto(const std::string& store, const std::string& src, const std::string& dataset,
                    const StoreConfig* config = nullptr) {
  if (!std::filesystem::exists(store + "/config")) {
    Status st = Repository::Create(store, config ? *config : StoreConfig{});
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  auto repo = Repository::Open(store);
  EXPECT_TRUE(repo.ok()) << repo.status().ToString();
  if (!repo.ok()) return ObjectId();
  if (!(*repo)->CheckDataset(dataset).ok()) {
    EXPECT_TRUE((*repo)->CreateDataset(dataset).ok());
  }
  ImportOptions options;
  options.message = "import " + src;
  options.author = "test";
  auto r = ImportDirectory(**repo, src, dataset, "main", options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || !r->commit) return ObjectId();
  return *r->commit;
}

// Base for tests that make their own store: temp dirs and mount cleanup.
class MountTest : public ::testing::Test {
 protected:
  void TearDown() override { mounts_.CleanupAll(); }

  std::string MakeMountpoint(const std::string& name) {
    std::string p = tmp_.Sub(name);
    EXPECT_EQ(::mkdir(p.c_str(), 0755), 0) << p << ": " << Errno();
    return p;
  }

  TempDir tmp_;
  TempDir scratch_{ScratchBase()};
  MountGuard mounts_;  // declared last: unmounts before the directories go
};

// ---------------------------------------------------------------------------
// One store shared by the read-only tests: dataset "ds" holds the rich tree
// (with a 2 GiB sparse file); dataset "hist" has two commits (A tagged v1 and
// branch dev, B on main).

struct SharedStore {
  TempDir tmp;
  TempDir scratch{ScratchBase()};
  std::string store, src, src_a, src_b;
  RichTreeInfo info;
  ObjectId ds_commit, hist_a, hist_b;
};
SharedStore* g_shared = nullptr;

class MountedStoreTest : public MountTest {
 protected:
  static void SetUpTestSuite() {
    g_shared = new SharedStore;
    SharedStore& s = *g_shared;
    s.store = s.tmp.Sub("store");
    s.src = s.scratch.Sub("src");
    BuildRichTree(s.src, uint64_t{2} << 30, &s.info);
    // Offsets past 4 GiB: a 6 GiB sparse file with data across the 4 GiB line.
    {
      ASSERT_TRUE(MkDir(s.src + "/huge"));
      std::string p = s.src + "/huge/six.bin";
      int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::ftruncate(fd, off_t{6} << 30), 0);
      std::string a = RandomBytes(4096, 31), b = RandomBytes(8192, 32);
      ASSERT_EQ(::pwrite(fd, a.data(), a.size(), (off_t{4} << 30) - 2048), 4096);
      ASSERT_EQ(::pwrite(fd, b.data(), b.size(), (off_t{5} << 30) + 3), 8192);
      ::close(fd);
      s.info.files.push_back("huge/six.bin");
    }
    s.ds_commit = ImportInto(s.store, s.src, "ds");
    s.src_a = s.scratch.Sub("a");
    s.src_b = s.scratch.Sub("b");
    for (const auto& [dir, tag] : {std::pair{s.src_a, std::string("A")}, std::pair{s.src_b, std::string("B")}}) {
      ASSERT_TRUE(MkDir(dir));
      ASSERT_TRUE(WriteFile(dir + "/a.txt", "version " + tag + "\n"));
      ASSERT_TRUE(WriteFile(dir + "/common.txt", "common\n"));
      ASSERT_TRUE(WriteFile(dir + "/only" + tag + ".txt", "only in " + tag + "\n"));
    }
    s.hist_a = ImportInto(s.store, s.src_a, "hist");
    // The second commit has the tree of b, imported into the same branch.
    {
      auto repo = Repository::Open(s.store);
      ASSERT_TRUE(repo.ok());
      ASSERT_TRUE((*repo)->CreateTag("hist", "v1", s.hist_a).ok());
      ASSERT_TRUE((*repo)->CreateBranch("hist", "dev", s.hist_a).ok());
    }
    s.hist_b = ImportInto(s.store, s.src_b, "hist");
    ASSERT_NE(s.hist_a, s.hist_b);
  }
  static void TearDownTestSuite() {
    delete g_shared;
    g_shared = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_shared, nullptr);
    ASSERT_FALSE(g_shared->store.empty());
    mnt_ = MakeMountpoint("mnt");
    // --read-only: these tests are about serving committed versions (workspaces
    // have their own tests in workspace_mount_test.cc).
    ASSERT_TRUE(mounts_.StartForeground(g_shared->store, {"--read-only"}, mnt_, tmp_.Sub("mount.log")));
  }

  const SharedStore& S() { return *g_shared; }
  std::string mnt_;
};

TEST_F(MountedStoreTest, EveryFileMatchesTheSource) {
  std::string root = mnt_ + "/ds/main";
  size_t compared = 0;
  CompareOptions opts;
  opts.entries_compared = &compared;
  auto diffs = CompareTrees(S().src, root, opts);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences:\n" << JoinFirst(diffs);
  EXPECT_GE(compared, S().info.files.size() + 15) << "files, directories and symlinks";
  // The comparison is not vacuous: another commit differs.
  EXPECT_FALSE(CompareTrees(S().src, mnt_ + "/hist/main").empty());

  // Distinct entries have distinct inode numbers (tools use them to detect
  // hard links and cycles), and the numbers survive a remount.
  std::map<ino_t, std::string> inos;
  for (auto it = std::filesystem::recursive_directory_iterator(root); it != std::filesystem::recursive_directory_iterator();
       ++it) {
    struct stat est;
    ASSERT_EQ(::lstat(it->path().c_str(), &est), 0) << it->path();
    auto [pos, fresh] = inos.emplace(est.st_ino, it->path().string());
    EXPECT_TRUE(fresh) << it->path() << " and " << pos->second << " share inode " << est.st_ino;
  }

  // mmap reads the same bytes as read (checked by read first: a failing
  // read would be a SIGBUS through the mapping).
  if (ReadOr(root + "/data/random.bin") == ReadOr(S().src + "/data/random.bin")) {
    std::string path = root + "/data/random.bin";
    int mfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(mfd, 0) << Errno();
    struct stat mst;
    ASSERT_EQ(::fstat(mfd, &mst), 0);
    void* p = ::mmap(nullptr, static_cast<size_t>(mst.st_size), PROT_READ, MAP_PRIVATE, mfd, 0);
    ASSERT_NE(p, MAP_FAILED) << Errno();
    std::string want = ReadOr(S().src + "/data/random.bin");
    EXPECT_TRUE(std::string_view(static_cast<const char*>(p), static_cast<size_t>(mst.st_size)) == want);
    ::munmap(p, static_cast<size_t>(mst.st_size));
    ::close(mfd);
  }

  // Spot checks of what CompareTrees covers, stated explicitly.
  struct stat st;
  ASSERT_EQ(::lstat((root + "/modes/setuid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, static_cast<mode_t>(S_IFREG | 04755));
  ASSERT_EQ(::lstat((root + "/modes/sticky").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, static_cast<mode_t>(S_IFDIR | 01777));
  ASSERT_EQ(::lstat((root + "/owned.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  ASSERT_EQ(::lstat((root + "/README.md").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  ASSERT_EQ(::lstat((root + "/modes/private.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, -1000) << "mtime before 1970";
  ASSERT_EQ(::lstat((root + "/empty.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
  char target[2048];
  ssize_t n = ::readlink((root + "/links/dangling").c_str(), target, sizeof target);
  ASSERT_GT(n, 0) << Errno();
  EXPECT_EQ(std::string(target, static_cast<size_t>(n)), "does/not/exist");
  n = ::readlink((root + "/links/long").c_str(), target, sizeof target);
  ASSERT_GT(n, 0) << Errno();
  EXPECT_EQ(static_cast<size_t>(n), 1007u);
  ASSERT_EQ(::lstat((root + "/links/dirlink").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // Following a symlink inside the commit works (stat, not lstat).
  ASSERT_EQ(::stat((root + "/links/dirlink/a/b/c/d/e/deep.txt").c_str(), &st), 0) << Errno();
  EXPECT_EQ(ReadOr(root + "/links/rel"), ReadOr(S().src + "/README.md"));
  int err = 0;
  EXPECT_FALSE(ReadAll(root + "/links/dangling", &err));
  EXPECT_EQ(err, ENOENT);
  ASSERT_EQ(::lstat((root + "/emptydir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(ListNames(root + "/emptydir").empty());

  // The 2 GiB sparse file: size, few blocks, data where it was written,
  // zeros in the holes and nothing past the end.
  std::string sparse = root + "/sparse.bin";
  ASSERT_EQ(::stat(sparse.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), S().info.sparse_size);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{16} << 20) << "holes must not count as used blocks";
  int fd = ::open(sparse.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  for (const auto& [off, bytes] : S().info.sparse_data) {
    auto got = PreadRange(fd, off, bytes.size());
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == bytes) << "data at " << off;
    // A range straddling data and hole.
    if (off >= 100) {
      auto around = PreadRange(fd, off - 100, 200);
      ASSERT_TRUE(around);
      EXPECT_EQ(around->substr(0, 100), std::string(100, '\0'));
      EXPECT_TRUE(around->substr(100) == bytes.substr(0, 100));
    }
  }
  for (uint64_t off : {uint64_t{1} << 20, uint64_t{500} << 20, (uint64_t{1} << 30) - (1 << 20),
                       (uint64_t{1} << 30) + (8 << 20), (uint64_t{2} << 30) - (1 << 20)}) {
    auto got = PreadRange(fd, off, 1 << 20);
    ASSERT_TRUE(got);
    size_t expect_len = static_cast<size_t>(std::min<uint64_t>(1 << 20, S().info.sparse_size - off));
    std::string expect(expect_len, '\0');
    for (const auto& [doff, bytes] : S().info.sparse_data)
      if (doff < off + expect_len && doff + bytes.size() > off) {
        uint64_t from = std::max(doff, off), to = std::min<uint64_t>(doff + bytes.size(), off + expect_len);
        expect.replace(from - off, to - from, bytes.substr(from - doff, to - from));
      }
    EXPECT_TRUE(*got == expect) << "range at " << off;
  }
  auto tail = PreadRange(fd, S().info.sparse_size, 4096);
  ASSERT_TRUE(tail);
  EXPECT_TRUE(tail->empty());
  ::close(fd);

  // Past 4 GiB.
  std::string six = root + "/huge/six.bin";
  ASSERT_EQ(::stat(six.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t{6} << 30);
  int sfd = ::open(six.c_str(), O_RDONLY | O_CLOEXEC);
  int ofd = ::open((S().src + "/huge/six.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(sfd, 0);
  ASSERT_GE(ofd, 0);
  for (uint64_t off : {(uint64_t{4} << 30) - 4096, (uint64_t{5} << 30) - 100, (uint64_t{6} << 30) - 10}) {
    auto a = PreadRange(sfd, off, 16384);
    auto b = PreadRange(ofd, off, 16384);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(*a == *b) << "range at " << off;
  }
  ::close(sfd);
  ::close(ofd);
}

// Random 4 KiB reads without readahead (as a data loader sampling records
// does): the daemon serves them from the touched 16 KiB blocks of large raw
// chunks.
TEST_F(MountedStoreTest, RandomSmallReadsMatchTheSource) {
  for (const char* rel : {"/data/random.bin", "/data/text.csv", "/sparse.bin"}) {
    SCOPED_TRACE(rel);
    int fd = ::open((mnt_ + "/ds/main" + rel).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << Errno();
    ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    int src_fd = ::open((S().src + rel).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(src_fd, 0);
    struct stat st;
    ASSERT_EQ(::fstat(src_fd, &st), 0);
    std::mt19937_64 rng(21);
    for (int i = 0; i < 1500; i++) {
      uint64_t off = rng() % static_cast<uint64_t>(st.st_size);
      if (i % 3 == 0) off &= ~uint64_t{4095};
      size_t len = std::vector<size_t>{1, 100, 4096, 4096, 16384, 20000}[rng() % 6];
      auto a = PreadRange(fd, off, len);
      auto b = PreadRange(src_fd, off, len);
      ASSERT_TRUE(a) << "pread(" << off << ", " << len << "): " << Errno();
      ASSERT_TRUE(b);
      ASSERT_TRUE(*a == *b) << "pread(" << off << ", " << len << ") differs";
    }
    ::close(fd);
    ::close(src_fd);
  }
}

TEST_F(MountedStoreTest, NamespaceOfDatasetsBranchesTagsAndCommits) {
  EXPECT_EQ(ListNames(mnt_), (std::set<std::string>{"ds", "hist"}));
  EXPECT_EQ(ListNames(mnt_ + "/hist"), (std::set<std::string>{"main", "dev", "@v1"}));
  EXPECT_EQ(ListNames(mnt_ + "/ds"), (std::set<std::string>{"main"}));
  // Commit prefixes are looked up but not listed.
  std::string prefix = "@" + S().hist_a.Hex().substr(0, 8);
  struct stat st;
  ASSERT_EQ(::stat((mnt_ + "/hist/" + prefix).c_str(), &st), 0) << Errno();
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(ReadOr(mnt_ + "/hist/" + prefix + "/a.txt"), "version A\n");
  EXPECT_EQ(ListNames(mnt_ + "/hist/" + prefix), (std::set<std::string>{"a.txt", "common.txt", "onlyA.txt"}));
  EXPECT_EQ(ListNames(mnt_ + "/hist"), (std::set<std::string>{"main", "dev", "@v1"}));
  // Unknown names.
  for (std::string p : {"/nope", "/hist/nope", "/hist/@nope", "/hist/@ffffffff", "/hist/main/nope.txt",
                               "/ds/main/data/nope", "/hist/main/a.txt/x"}) {
    errno = 0;
    EXPECT_NE(::lstat((mnt_ + p).c_str(), &st), 0) << p;
    EXPECT_EQ(errno, p == "/hist/main/a.txt/x" ? ENOTDIR : ENOENT) << p << ": " << Errno();
  }
  // Kinds at each level.
  for (const char* p : {"", "/hist", "/hist/main", "/hist/@v1"}) {
    ASSERT_EQ(::stat((mnt_ + p).c_str(), &st), 0) << p;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << p;
  }
}

TEST_F(MountedStoreTest, TwoCommitsSideBySide) {
  // In one mount: @v1, dev and an id prefix show A; main shows B.
  std::string prefix = "@" + S().hist_a.Hex().substr(0, 12);
  for (const std::string& dir : {std::string("@v1"), std::string("dev"), prefix}) {
    auto diffs = CompareTrees(S().src_a, mnt_ + "/hist/" + dir);
    EXPECT_TRUE(diffs.empty()) << dir << ":\n" << JoinFirst(diffs);
  }
  auto diffs = CompareTrees(S().src_b, mnt_ + "/hist/main");
  EXPECT_TRUE(diffs.empty()) << "main:\n" << JoinFirst(diffs);
  // And two more mounts of single versions at the same time.
  std::string m1 = MakeMountpoint("mnt_v1");
  std::string m2 = MakeMountpoint("mnt_main");
  ASSERT_TRUE(mounts_.StartForeground(S().store, {"hist@v1"}, m1, tmp_.Sub("m1.log")));
  ASSERT_TRUE(mounts_.StartForeground(S().store, {"hist@main"}, m2, tmp_.Sub("m2.log")));
  diffs = CompareTrees(S().src_a, m1);
  EXPECT_TRUE(diffs.empty()) << "hist@v1 mount:\n" << JoinFirst(diffs);
  diffs = CompareTrees(S().src_b, m2);
  EXPECT_TRUE(diffs.empty()) << "hist@main mount:\n" << JoinFirst(diffs);
  EXPECT_EQ(ReadOr(m1 + "/a.txt"), "version A\n");
  EXPECT_EQ(ReadOr(m2 + "/a.txt"), "version B\n");
  EXPECT_EQ(ReadOr(mnt_ + "/hist/@v1/a.txt"), "version A\n");
  EXPECT_EQ(ReadOr(mnt_ + "/hist/main/a.txt"), "version B\n");
  int err = 0;
  EXPECT_EQ(GetXattrString(m1, "user.tusk.commit", &err), S().hist_a.Hex());
  EXPECT_EQ(GetXattrString(m2 + "/a.txt", "user.tusk.commit", &err), S().hist_b.Hex());
  // A pinned mount of the big tree, by commit prefix.
  std::string m3 = MakeMountpoint("mnt_ds");
  ASSERT_TRUE(mounts_.StartForeground(S().store, {"ds@" + S().ds_commit.Hex().substr(0, 10)}, m3, tmp_.Sub("m3.log")));
  EXPECT_EQ(ReadOr(m3 + "/README.md"), ReadOr(S().src + "/README.md"));
  EXPECT_EQ(Sha256File(m3 + "/data/random.bin"), Sha256File(S().src + "/data/random.bin"));
}

TEST_F(MountedStoreTest, EveryKindOfWriteFailsWithEROFS) {
  std::string c = mnt_ + "/hist/main";
  std::string f = c + "/a.txt";
  std::string before = ReadOr(f);
  auto set_before = ListNames(c);
  struct Attempt {
    std::string what;
    std::function<int()> op;
  };
  auto open_rc = [](const std::string& p, int flags) {
    return [p, flags] {
      int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
      return fd;
    };
  };
  std::vector<Attempt> attempts = {
      {"open O_WRONLY", open_rc(f, O_WRONLY)},
      {"open O_RDWR", open_rc(f, O_RDWR)},
      {"open O_WRONLY|O_APPEND", open_rc(f, O_WRONLY | O_APPEND)},
      {"open O_RDONLY|O_TRUNC", open_rc(f, O_RDONLY | O_TRUNC)},
      {"open O_WRONLY|O_TRUNC", open_rc(f, O_WRONLY | O_TRUNC)},
      {"open O_CREAT new", open_rc(c + "/new.txt", O_WRONLY | O_CREAT)},
      {"open O_CREAT|O_EXCL new", open_rc(c + "/new2.txt", O_RDWR | O_CREAT | O_EXCL)},
      {"open O_CREAT at the root", open_rc(mnt_ + "/new.txt", O_WRONLY | O_CREAT)},
      {"open O_CREAT in a dataset", open_rc(mnt_ + "/hist/new.txt", O_WRONLY | O_CREAT)},
      {"mkdir", [&] { return ::mkdir((c + "/newdir").c_str(), 0755); }},
      {"mkdir dataset", [&] { return ::mkdir((mnt_ + "/newds").c_str(), 0755); }},
      {"mkdir branch", [&] { return ::mkdir((mnt_ + "/hist/newbranch").c_str(), 0755); }},
      {"rmdir empty dir", [&] { return ::rmdir((mnt_ + "/ds/main/emptydir").c_str()); }},
      {"rmdir branch", [&] { return ::rmdir((mnt_ + "/hist/dev").c_str()); }},
      {"rmdir dataset", [&] { return ::rmdir((mnt_ + "/hist").c_str()); }},
      {"unlink", [&] { return ::unlink(f.c_str()); }},
      {"unlink symlink", [&] { return ::unlink((mnt_ + "/ds/main/links/rel").c_str()); }},
      {"rename file", [&] { return ::rename(f.c_str(), (c + "/renamed.txt").c_str()); }},
      {"rename over", [&] { return ::rename(f.c_str(), (c + "/common.txt").c_str()); }},
      {"rename branch", [&] { return ::rename((mnt_ + "/hist/dev").c_str(), (mnt_ + "/hist/dev2").c_str()); }},
      {"symlink", [&] { return ::symlink("a.txt", (c + "/newlink").c_str()); }},
      {"link", [&] { return ::link(f.c_str(), (c + "/hardlink").c_str()); }},
      {"chmod", [&] { return ::chmod(f.c_str(), 0777); }},
      {"chmod dir", [&] { return ::chmod(c.c_str(), 0700); }},
      {"chown", [&] { return ::chown(f.c_str(), 1, 1); }},
      {"lchown symlink", [&] { return ::lchown((mnt_ + "/ds/main/links/rel").c_str(), 1, 1); }},
      {"truncate", [&] { return ::truncate(f.c_str(), 0); }},
      {"truncate grow", [&] { return ::truncate(f.c_str(), 1 << 20); }},
      {"utimensat",
       [&] {
         struct timespec t[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
         return ::utimensat(AT_FDCWD, f.c_str(), t, 0);
       }},
      {"utimes dir", [&] { return ::utimensat(AT_FDCWD, c.c_str(), nullptr, 0); }},
      {"setxattr", [&] { return ::setxattr(f.c_str(), "user.x", "1", 1, 0); }},
      {"setxattr tusk.commit", [&] { return ::setxattr(f.c_str(), "user.tusk.commit", "1", 1, XATTR_REPLACE); }},
      {"removexattr", [&] { return ::removexattr(f.c_str(), "user.tusk.commit"); }},
      {"mknod fifo", [&] { return ::mknod((c + "/fifo").c_str(), S_IFIFO | 0644, 0); }},
      {"mknod regular", [&] { return ::mknod((c + "/node").c_str(), S_IFREG | 0644, 0); }},
      {"mknod char device", [&] { return ::mknod((c + "/dev").c_str(), S_IFCHR | 0644, makedev(1, 3)); }},
  };
  for (const auto& a : attempts) {
    errno = 0;
    int rc = a.op();
    int e = errno;
    EXPECT_EQ(rc, -1) << a.what << " succeeded";
    EXPECT_EQ(e, EROFS) << a.what << ": errno " << e << " (" << Errno(e) << ")";
  }
  // A read-only descriptor cannot write either.
  int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::write(fd, "x", 1), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_NE(::fallocate(fd, 0, 0, 4096), 0);
  ::close(fd);
  // Nothing changed.
  EXPECT_EQ(ReadOr(f), before);
  EXPECT_EQ(ListNames(c), set_before);
  EXPECT_EQ(ListNames(mnt_), (std::set<std::string>{"ds", "hist"}));
  EXPECT_EQ(ListNames(mnt_ + "/hist"), (std::set<std::string>{"main", "dev", "@v1"}));
}

TEST_F(MountedStoreTest, CommitXattrMatchesTuskLog) {
  RunResult log = Tusk(S().store, {"log", "hist", "--json", "-n", "1"});
  ASSERT_EQ(log.exit_code, 0) << log;
  std::string head = FirstCommitFromJson(log.out);
  ASSERT_EQ(head.size(), 64u) << log;
  EXPECT_EQ(head, S().hist_b.Hex());
  RunResult log_v1 = Tusk(S().store, {"log", "hist@v1", "--json", "-n", "1"});
  ASSERT_EQ(log_v1.exit_code, 0) << log_v1;
  std::string v1 = FirstCommitFromJson(log_v1.out);
  RunResult log_ds = Tusk(S().store, {"log", "ds", "--json", "-n", "1"});
  ASSERT_EQ(log_ds.exit_code, 0) << log_ds;
  std::string ds = FirstCommitFromJson(log_ds.out);

  int err = 0;
  for (const char* p : {"/hist/main", "/hist/main/a.txt", "/hist/main/common.txt"}) {
    EXPECT_EQ(GetXattrString(mnt_ + p, "user.tusk.commit", &err), head) << p << ": " << Errno(err);
  }
  for (const char* p : {"/hist/@v1", "/hist/@v1/onlyA.txt", "/hist/dev/a.txt"}) {
    EXPECT_EQ(GetXattrString(mnt_ + p, "user.tusk.commit", &err), v1) << p << ": " << Errno(err);
  }
  for (const char* p : {"/ds/main", "/ds/main/data", "/ds/main/data/a/b/c/d/e/deep.txt", "/ds/main/emptydir",
                        "/ds/main/sparse.bin", "/ds/main/modes/nothing"}) {
    EXPECT_EQ(GetXattrString(mnt_ + p, "user.tusk.commit", &err), ds) << p << ": " << Errno(err);
  }
  // getxattr follows a symlink to its target inside the commit.
  EXPECT_EQ(GetXattrString(mnt_ + "/ds/main/links/rel", "user.tusk.commit", &err), ds) << Errno(err);
  // Outside a commit: no attribute.
  for (const char* p : {"", "/hist"}) {
    GetXattrString(mnt_ + p, "user.tusk.commit", &err);
    EXPECT_EQ(err, ENODATA) << "'" << p << "': " << Errno(err);
  }
  GetXattrString(mnt_ + "/hist/main/a.txt", "user.other", &err);
  EXPECT_EQ(err, ENODATA);
  // listxattr names it.
  char names[256];
  ssize_t n = ::listxattr((mnt_ + "/hist/main/a.txt").c_str(), names, sizeof names);
  ASSERT_GT(n, 0) << Errno();
  EXPECT_EQ(std::string(names, static_cast<size_t>(n)), std::string("user.tusk.commit") + '\0');
  // The size query protocol: size 0 asks for the length.
  EXPECT_EQ(::getxattr((mnt_ + "/hist/main/a.txt").c_str(), "user.tusk.commit", nullptr, 0), 64);
  char small[10];
  EXPECT_EQ(::getxattr((mnt_ + "/hist/main/a.txt").c_str(), "user.tusk.commit", small, sizeof small), -1);
  EXPECT_EQ(errno, ERANGE);
}

TEST_F(MountedStoreTest, StatfsWorks) {
  struct statvfs sv;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &sv), 0) << Errno();
  EXPECT_TRUE(sv.f_flag & ST_RDONLY);
  EXPECT_GT(sv.f_bsize, 0u);
  EXPECT_GE(sv.f_namemax, 255u);
  ASSERT_EQ(::statvfs((mnt_ + "/ds/main/data").c_str(), &sv), 0) << Errno();
  EXPECT_TRUE(sv.f_flag & ST_RDONLY);
  RunResult df = RunProgram({"df", "-P", mnt_});
  EXPECT_EQ(df.exit_code, 0) << df;
  // The mount is listed with its type.
  EXPECT_EQ(MountPoints()[mnt_], "fuse.tusk");
}

// ---------------------------------------------------------------------------
// A directory of 200,000 entries.

// Committed hard links: every name of a group is one inode whose link count
// is the group's size, in listings (d_ino) as in stat.
class HardLinkMountTest : public MountTest {};

TEST_F(HardLinkMountTest, TheNamesOfAHardLinkGroupAreOneInode) {
  std::string src = tmp_.Sub("src"), store = tmp_.Sub("store");
  ASSERT_TRUE(MkDir(src));
  ASSERT_TRUE(MkDir(src + "/sub"));
  ASSERT_TRUE(WriteFile(src + "/one", "shared\n"));
  ASSERT_EQ(::link((src + "/one").c_str(), (src + "/two").c_str()), 0);
  ASSERT_EQ(::link((src + "/one").c_str(), (src + "/sub/three").c_str()), 0);
  ASSERT_TRUE(WriteFile(src + "/alone", "alone\n"));
  ObjectId commit = ImportInto(store, src, "ds");
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store, {"--read-only"}, mnt, tmp_.Sub("mount.log")));
  for (const std::string& root : {mnt + "/ds/main", mnt + "/ds/@" + commit.Hex()}) {
    SCOPED_TRACE(root);
    struct stat one, two, three, alone;
    ASSERT_EQ(::stat((root + "/one").c_str(), &one), 0) << Errno();
    ASSERT_EQ(::stat((root + "/two").c_str(), &two), 0) << Errno();
    ASSERT_EQ(::stat((root + "/sub/three").c_str(), &three), 0) << Errno();
    ASSERT_EQ(::stat((root + "/alone").c_str(), &alone), 0) << Errno();
    EXPECT_EQ(one.st_ino, two.st_ino);
    EXPECT_EQ(one.st_ino, three.st_ino);
    EXPECT_EQ(one.st_nlink, 3u);
    EXPECT_EQ(alone.st_nlink, 1u);
    EXPECT_NE(alone.st_ino, one.st_ino);
    EXPECT_EQ(ReadOr(root + "/sub/three"), "shared\n");
    // readdir reports the same inode number as stat.
    DIR* d = ::opendir(root.c_str());
    ASSERT_NE(d, nullptr);
    std::map<std::string, ino_t> inos;
    while (dirent* e = ::readdir(d)) inos[e->d_name] = e->d_ino;
    ::closedir(d);
    EXPECT_EQ(inos["one"], one.st_ino);
    EXPECT_EQ(inos["two"], one.st_ino);
  }
  // Like every other file, the group is a different inode in each view.
  struct stat main_one, pinned_one;
  ASSERT_EQ(::stat((mnt + "/ds/main/one").c_str(), &main_one), 0);
  ASSERT_EQ(::stat((mnt + "/ds/@" + commit.Hex() + "/one").c_str(), &pinned_one), 0);
  EXPECT_NE(main_one.st_ino, pinned_one.st_ino);
}

class BigDirectoryTest : public MountTest {};

TEST_F(BigDirectoryTest, TwoHundredThousandEntries) {
  constexpr int kEntries = 200000;
  auto t0 = std::chrono::steady_clock::now();
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  ASSERT_TRUE(MkDir(src + "/big"));
  ASSERT_TRUE(WriteFile(src + "/top.txt", "top\n"));
  int dfd = ::open((src + "/big").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  auto name_of = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "entry-%06d", i);
    return std::string(buf);
  };
  // Sizes vary (i % 997) but files are all holes, so nothing is stored.
  for (int i = 0; i < kEntries; i++) {
    int fd = ::openat(dfd, name_of(i).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << Errno();
    if (i % 997) {
      ASSERT_EQ(::ftruncate(fd, i % 997), 0);
    }
    ::close(fd);
  }
  ::close(dfd);
  ASSERT_TRUE(WriteFile(src + "/big/entry-100000", "the middle one\n"));
  auto t1 = std::chrono::steady_clock::now();
  std::string store = tmp_.Sub("store");
  ImportInto(store, src, "wide");
  auto t2 = std::chrono::steady_clock::now();
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt, tmp_.Sub("mount.log")));
  std::string big = mnt + "/wide/main/big";

  // Readdir as ls does (getdents until the end).
  std::set<std::string> names;
  size_t count = 0;
  {
    DIR* d = ::opendir(big.c_str());
    ASSERT_NE(d, nullptr) << Errno();
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      count++;
      names.insert(n);
    }
    EXPECT_EQ(errno, 0) << Errno();
    ::closedir(d);
  }
  EXPECT_EQ(count, static_cast<size_t>(kEntries));
  EXPECT_EQ(names.size(), static_cast<size_t>(kEntries)) << "duplicates in the listing";
  if (!names.empty()) {
    EXPECT_EQ(*names.begin(), name_of(0));
    EXPECT_EQ(*names.rbegin(), name_of(kEntries - 1));
  }
  // telldir/seekdir within one stream: resuming mid-way yields the rest once.
  {
    DIR* d = ::opendir(big.c_str());
    ASSERT_NE(d, nullptr) << Errno();
    std::vector<std::string> first_pass, second_pass;
    long mark = -1;
    size_t seen = 0;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (++seen == 123457) mark = ::telldir(d);
      if (mark >= 0) first_pass.push_back(n);
    }
    ASSERT_GE(mark, 0);
    ::seekdir(d, mark);
    while (dirent* e = ::readdir(d)) second_pass.push_back(e->d_name);
    ::closedir(d);
    first_pass.erase(first_pass.begin());  // the entry read before telldir
    EXPECT_EQ(second_pass.size(), first_pass.size());
    EXPECT_TRUE(second_pass == first_pass) << "seekdir(telldir()) did not resume at the same entry";
  }
  auto t3 = std::chrono::steady_clock::now();
  // ls itself.
  RunResult ls = Sh("ls -1U '" + big + "' | wc -l");
  EXPECT_EQ(ls.exit_code, 0) << ls;
  EXPECT_EQ(std::atoi(ls.out.c_str()), kEntries) << ls;
  // Random lookups by name (in a fresh mount, so nothing is cached).
  mounts_.CleanupAll();
  ASSERT_TRUE(mounts_.StartForeground(store, {"wide@main"}, mnt, tmp_.Sub("mount2.log")));
  std::mt19937 rng(17);
  for (int k = 0; k < 2000; k++) {
    int i = static_cast<int>(rng() % kEntries);
    struct stat st;
    std::string p = mnt + "/big/" + name_of(i);
    ASSERT_EQ(::stat(p.c_str(), &st), 0) << p << ": " << Errno();
    EXPECT_TRUE(S_ISREG(st.st_mode));
    if (i != 100000) {
      EXPECT_EQ(st.st_size, i % 997) << p;
    }
  }
  EXPECT_EQ(ReadOr(mnt + "/big/entry-100000"), "the middle one\n");
  struct stat st;
  EXPECT_NE(::stat((mnt + "/big/entry-200000").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_NE(::stat((mnt + "/big/entry-0").c_str(), &st), 0);
  ASSERT_EQ(::stat((mnt + "/big").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  auto t4 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("create %.1fs, import %.1fs, mount+readdir %.1fs, ls+lookups %.1fs\n", secs(t0, t1), secs(t1, t2),
              secs(t2, t3), secs(t3, t4));
}

// ---------------------------------------------------------------------------
// A branch that moves while a file of it is open.

class BranchMoveTest : public MountTest {};

TEST_F(BranchMoveTest, DirectoryShowsTheNewHeadWhileAnOpenFileKeepsTheOld) {
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  std::string old_data = RandomBytes(3 << 20, 1);
  ASSERT_TRUE(WriteFile(src + "/f.bin", old_data));
  ASSERT_TRUE(WriteFile(src + "/keep.txt", "same\n"));
  ASSERT_TRUE(WriteFile(src + "/old.txt", "old\n"));
  std::string store = tmp_.Sub("store");
  ObjectId first = ImportInto(store, src, "live");
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt, tmp_.Sub("mount.log")));
  std::string dir = mnt + "/live/main";
  EXPECT_EQ(ListNames(dir), (std::set<std::string>{"f.bin", "keep.txt", "old.txt"}));
  int fd = ::open((dir + "/f.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  auto head = PreadRange(fd, 0, 10);
  ASSERT_TRUE(head);
  EXPECT_EQ(*head, old_data.substr(0, 10));

  // A new commit through the CLI while the mount is live.
  std::string new_data = RandomBytes(2 << 20, 2);
  ASSERT_TRUE(WriteFile(src + "/f.bin", new_data));
  ASSERT_EQ(::unlink((src + "/old.txt").c_str()), 0);
  ASSERT_TRUE(WriteFile(src + "/new.txt", "new\n"));
  RunResult imp = Tusk(store, {"import", src, "live@main", "-m", "second"});
  ASSERT_EQ(imp.exit_code, 0) << imp;
  RunResult log = Tusk(store, {"log", "live", "--json", "-n", "1"});
  std::string second = FirstCommitFromJson(log.out);
  ASSERT_EQ(second.size(), 64u) << log;
  ASSERT_NE(second, first.Hex());

  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(ListNames(dir), (std::set<std::string>{"f.bin", "keep.txt", "new.txt"}));
  EXPECT_TRUE(ReadOr(dir + "/f.bin") == new_data) << "a new open must see the new head";
  struct stat st;
  ASSERT_EQ(::stat((dir + "/f.bin").c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), new_data.size());
  int err = 0;
  EXPECT_EQ(GetXattrString(dir, "user.tusk.commit", &err), second);
  // The descriptor opened before reads the version it opened, all of it.
  auto all = PreadRange(fd, 0, 4 << 20);
  ASSERT_TRUE(all) << Errno();
  EXPECT_EQ(all->size(), old_data.size());
  EXPECT_TRUE(*all == old_data) << "the open file changed under its reader";
  struct stat fst;
  ASSERT_EQ(::fstat(fd, &fst), 0);
  EXPECT_EQ(static_cast<size_t>(fst.st_size), old_data.size());
  char buf[128];
  ssize_t n = ::fgetxattr(fd, "user.tusk.commit", buf, sizeof buf);
  ASSERT_GT(n, 0) << Errno();
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), first.Hex());
  ::close(fd);
  // The old commit is still there by prefix.
  EXPECT_TRUE(ReadOr(mnt + "/live/@" + first.Hex().substr(0, 8) + "/f.bin") == old_data);
}

TEST_F(BranchMoveTest, NamespaceChangesShowWithinASecond) {
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  ASSERT_TRUE(WriteFile(src + "/v.txt", "one\n"));
  std::string store = tmp_.Sub("store");
  ObjectId one = ImportInto(store, src, "ns");
  ASSERT_TRUE(WriteFile(src + "/v.txt", "two\n"));
  ObjectId two = ImportInto(store, src, "ns");
  {
    auto repo = Repository::Open(store);
    ASSERT_TRUE(repo.ok());
    ASSERT_TRUE((*repo)->CreateTag("ns", "rel", one).ok());
    ASSERT_TRUE((*repo)->CreateBranch("ns", "doomed", one).ok());
  }
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt, tmp_.Sub("mount.log")));
  EXPECT_EQ(ListNames(mnt), (std::set<std::string>{"ns"}));
  EXPECT_EQ(ListNames(mnt + "/ns"), (std::set<std::string>{"main", "doomed", "@rel"}));
  EXPECT_EQ(ReadOr(mnt + "/ns/@rel/v.txt"), "one\n");
  EXPECT_EQ(ReadOr(mnt + "/ns/doomed/v.txt"), "one\n");
  struct stat st;
  EXPECT_NE(::stat((mnt + "/ns/fresh").c_str(), &st), 0);
  EXPECT_NE(::stat((mnt + "/other").c_str(), &st), 0);

  ASSERT_EQ(Tusk(store, {"dataset", "create", "other"}).exit_code, 0);
  ASSERT_EQ(Tusk(store, {"branch", "ns@fresh", "ns@main"}).exit_code, 0);
  RunResult del = Tusk(store, {"branch", "-d", "ns@doomed"});
  ASSERT_EQ(del.exit_code, 0) << del;
  ASSERT_EQ(Tusk(store, {"tag", "-d", "ns@rel"}).exit_code, 0);
  RunResult retag = Tusk(store, {"tag", "ns@rel", "ns@" + two.Hex()});
  ASSERT_EQ(retag.exit_code, 0) << retag;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  EXPECT_EQ(ListNames(mnt), (std::set<std::string>{"ns", "other"}));
  EXPECT_EQ(ListNames(mnt + "/ns"), (std::set<std::string>{"main", "fresh", "@rel"}));
  EXPECT_EQ(ReadOr(mnt + "/ns/fresh/v.txt"), "two\n");
  EXPECT_EQ(ReadOr(mnt + "/ns/@rel/v.txt"), "two\n") << "a moved tag must show its new commit";
  errno = 0;
  EXPECT_NE(::stat((mnt + "/ns/doomed").c_str(), &st), 0) << "a deleted branch must disappear";
  EXPECT_EQ(errno, ENOENT);
  EXPECT_TRUE(ListNames(mnt + "/other/main").empty());
}

// ds/@main resolves through the branch (refs resolve branch, tag, prefix),
// so it must follow the branch like ds/main does, not stay cached for a day.
TEST_F(BranchMoveTest, AtBranchNameFollowsTheBranch) {
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  ASSERT_TRUE(WriteFile(src + "/v.txt", "one\n"));
  std::string store = tmp_.Sub("store");
  ImportInto(store, src, "ns");
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt, tmp_.Sub("mount.log")));
  int err = 0;
  auto before = ReadAll(mnt + "/ns/@main/v.txt", &err);
  if (!before) {
    EXPECT_EQ(err, ENOENT);
    return;  // "@<branch>" not offered: consistent too
  }
  EXPECT_EQ(*before, "one\n");
  ASSERT_TRUE(WriteFile(src + "/v.txt", "two\n"));
  ImportInto(store, src, "ns");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(ReadOr(mnt + "/ns/main/v.txt"), "two\n");
  EXPECT_EQ(ReadOr(mnt + "/ns/@main/v.txt"), "two\n")
      << "ns/@main still shows the old head: the name was cached as if it were a commit id";
}

TEST_F(BranchMoveTest, GcKeepsWhatAMountServes) {
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  std::string data = RandomBytes(2 << 20, 77);
  ASSERT_TRUE(WriteFile(src + "/payload.bin", data));
  ASSERT_TRUE(WriteFile(src + "/note.txt", "note\n"));
  std::string store = tmp_.Sub("store");
  ObjectId commit = ImportInto(store, src, "gone");
  ASSERT_TRUE(WriteFile(src + "/keep.txt", "kept\n"));
  ImportInto(store, src, "stays");
  ASSERT_EQ(Tusk(store, {"tag", "gone@v1"}).exit_code, 0);

  // A pinned mount and a whole-store mount holding the commit's directory.
  std::string pinned = MakeMountpoint("pinned");
  std::string whole = MakeMountpoint("whole");
  ASSERT_TRUE(mounts_.StartForeground(store, {"gone@v1"}, pinned, tmp_.Sub("pinned.log")));
  ASSERT_TRUE(mounts_.StartForeground(store, {}, whole, tmp_.Sub("whole.log")));
  int dirfd = ::open((whole + "/gone/@v1").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dirfd, 0) << Errno();

  // Nothing reaches the commit any more; gc runs.
  RunResult del = Tusk(store, {"dataset", "delete", "gone"});
  ASSERT_EQ(del.exit_code, 0) << del;
  RunResult gc = Tusk(store, {"gc"});
  ASSERT_EQ(gc.exit_code, 0) << gc;

  // Both mounts still read it (nothing was read before gc, so nothing is cached).
  EXPECT_TRUE(ReadOr(pinned + "/payload.bin") == data) << "the pinned mount lost its data to gc";
  EXPECT_EQ(ReadOr(pinned + "/note.txt"), "note\n");
  int fd = ::openat(dirfd, "payload.bin", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  auto got = PreadRange(fd, 0, 4 << 20);
  ASSERT_TRUE(got) << Errno();
  EXPECT_TRUE(*got == data) << "the whole-store mount lost its data to gc";
  ::close(fd);
  ::close(dirfd);
  EXPECT_EQ(ReadOr(whole + "/stays/main/keep.txt"), "kept\n");

  // Once the mounts are gone, gc reclaims the commit.
  mounts_.CleanupAll();
  RunResult gc2 = Tusk(store, {"gc"});
  ASSERT_EQ(gc2.exit_code, 0) << gc2;
  auto repo = Repository::Open(store);
  ASSERT_TRUE(repo.ok());
  auto present = (*repo)->Contains(commit);
  ASSERT_TRUE(present.ok());
  EXPECT_FALSE(*present) << "gc kept a commit no ref and no running mount needs";
}

// ---------------------------------------------------------------------------
// A corrupted byte in a pack.

class CorruptPackTest : public MountTest {};

struct PackRecordInfo {
  uint64_t offset = 0;  // of the header
  uint8_t type = 0;
  uint32_t stored_len = 0;
  ObjectId id;
};

// Walks the records of a pack file (FORMAT.md: 16-byte header, records of a
// 56-byte header and payload, plus a CRC per 16 KiB block after raw payloads
// longer than 16 KiB; then footer and trailer).
std::vector<PackRecordInfo> PackRecords(const std::string& path) {
  std::vector<PackRecordInfo> out;
  std::string bytes = ReadOr(path, "");
  if (bytes.size() < 16 + 24) return out;
  uint64_t footer = 0;
  std::memcpy(&footer, bytes.data() + bytes.size() - 24, 8);
  uint64_t pos = 16;
  while (pos + 56 <= footer) {
    uint32_t magic, stored;
    std::memcpy(&magic, bytes.data() + pos, 4);
    if (magic != 0x31435254) break;
    PackRecordInfo r;
    r.offset = pos;
    r.type = static_cast<uint8_t>(bytes[pos + 4]);
    std::memcpy(&stored, bytes.data() + pos + 12, 4);
    r.stored_len = stored;
    r.id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(bytes.data() + pos + 16));
    out.push_back(r);
    bool raw = bytes[pos + 5] == 0;
    pos += 56 + stored + (raw && stored > 16384 ? (stored + 16383) / 16384 * 4 : 0);
  }
  return out;
}

// Paths of the files in `tree` whose content uses chunk `id`.
void FilesWithChunk(Repository& repo, const ObjectId& tree, const std::string& prefix, const ObjectId& id,
                    std::vector<std::string>* out) {
  auto entries = ReadDirectory(repo, tree);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  for (const auto& e : *entries) {
    if (e.kind == EntryKind::kDirectory) FilesWithChunk(repo, e.tree, prefix + "/" + e.name, id, out);
    if (e.kind == EntryKind::kFile)
      for (const auto& c : e.chunks)
        if (c.id == id) {
          out->push_back(prefix + "/" + e.name);
          break;
        }
  }
}

TEST_F(CorruptPackTest, ReadFailsWithEIOAndTheLogNamesTheFile) {
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  ASSERT_TRUE(MkDir(src + "/sub"));
  ASSERT_TRUE(WriteFile(src + "/sub/victim.bin", RandomBytes(6 << 20, 5)));
  ASSERT_TRUE(WriteFile(src + "/other.bin", RandomBytes(1 << 20, 6)));
  ASSERT_TRUE(WriteFile(src + "/small.txt", "small and fine\n"));
  ASSERT_TRUE(WriteFile(src + "/text.csv", TextBytes(300000, 7)));
  std::string store = tmp_.Sub("store");
  ObjectId commit = ImportInto(store, src, "ds");

  // The largest pack, and the record in its middle.
  std::string largest;
  uintmax_t largest_size = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store + "/packs"))
    if (e.is_regular_file() && e.path().extension() == ".pack" && e.file_size() > largest_size) {
      largest = e.path().string();
      largest_size = e.file_size();
    }
  ASSERT_FALSE(largest.empty());
  auto records = PackRecords(largest);
  ASSERT_FALSE(records.empty()) << "could not parse " << largest;
  uint64_t mid = largest_size / 2;
  const PackRecordInfo* hit = nullptr;
  for (const auto& r : records)
    if (r.offset <= mid && mid < r.offset + 56 + r.stored_len) hit = &r;
  ASSERT_NE(hit, nullptr) << "the middle of the pack is not inside a record";
  ASSERT_EQ(hit->type, 1) << "the middle of the pack is not a chunk";
  uint64_t flip = std::max<uint64_t>(mid, hit->offset + 56);  // inside the payload
  std::vector<std::string> victims;
  {
    auto repo = Repository::Open(store);
    ASSERT_TRUE(repo.ok());
    auto c = (*repo)->ReadCommit(commit);
    ASSERT_TRUE(c.ok());
    FilesWithChunk(**repo, c->root, "", hit->id, &victims);
  }
  ASSERT_FALSE(victims.empty()) << "no file uses chunk " << hit->id.Hex();
  {
    int fd = ::open(largest.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0) << Errno();
    char b;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(flip)), 1);
    b = static_cast<char>(b ^ 0x40);
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(flip)), 1);
    ::close(fd);
  }
  std::set<std::string> bad(victims.begin(), victims.end());

  auto check_mount = [&](const std::string& root, const std::string& log_path) {
    for (const std::string& rel : {std::string("/sub/victim.bin"), std::string("/other.bin"),
                                   std::string("/small.txt"), std::string("/text.csv")}) {
      int err = 0;
      auto got = ReadAll(root + rel, &err);
      if (bad.count(rel)) {
        EXPECT_FALSE(got) << rel << " uses the corrupted chunk but read without error";
        EXPECT_EQ(err, EIO) << rel << ": " << Errno(err);
        // Errors are not cached as data: a second read fails the same way.
        int err2 = 0;
        EXPECT_FALSE(ReadAll(root + rel, &err2)) << rel << " read fine the second time";
        EXPECT_EQ(err2, EIO) << rel << ": " << Errno(err2);
      } else {
        ASSERT_TRUE(got) << rel << ": " << Errno(err);
        EXPECT_TRUE(*got == ReadOr(src + rel)) << rel;
      }
    }
    std::string log = ReadOr(log_path, "");
    for (const auto& v : victims) {
      EXPECT_TRUE(HasSubstr(log, v)) << "the log should name the file " << v << "; log:\n" << Clip(log);
    }
    EXPECT_TRUE(HasSubstr(log, hit->id.Hex().substr(0, 12)))
        << "the log should name the chunk " << hit->id.Hex() << "; log:\n"
        << Clip(log);
  };

  // A foreground mount logs to its stderr.
  std::string mnt = MakeMountpoint("mnt");
  std::string fg_log = tmp_.Sub("fg.log");
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt, fg_log));
  check_mount(mnt + "/ds/main", fg_log);
  mounts_.CleanupAll();

  // A fresh background mount logs to --log FILE.
  std::string bg_log = tmp_.Sub("bg.log");
  mounts_.Track(mnt);
  RunResult r = Tusk(store, {"mount", "ds@main", mnt, "--log", bg_log}, 30);
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_TRUE(IsMountPoint(mnt));
  check_mount(mnt, bg_log);
  RunResult um = Tusk(store, {"umount", mnt});
  EXPECT_EQ(um.exit_code, 0) << um;
  EXPECT_FALSE(IsMountPoint(mnt));
}

TEST_F(CorruptPackTest, DamagedDirectoryFailsWithEIOAndOthersStayReadable) {
  std::string src = scratch_.Sub("src");
  ASSERT_TRUE(MkDir(src));
  ASSERT_TRUE(MkDir(src + "/broken"));
  ASSERT_TRUE(MkDir(src + "/fine"));
  for (int i = 0; i < 20; i++) {
    ASSERT_TRUE(WriteFile(src + "/broken/f" + std::to_string(i) + ".txt", "broken " + std::to_string(i) + "\n"));
    ASSERT_TRUE(WriteFile(src + "/fine/f" + std::to_string(i) + ".txt", "fine " + std::to_string(i) + "\n"));
  }
  ASSERT_TRUE(WriteFile(src + "/top.txt", "top\n"));
  std::string store = tmp_.Sub("store");
  ObjectId commit = ImportInto(store, src, "ds");
  ObjectId tree;
  {
    auto repo = Repository::Open(store);
    ASSERT_TRUE(repo.ok());
    auto c = (*repo)->ReadCommit(commit);
    ASSERT_TRUE(c.ok());
    auto e = LookupPath(**repo, c->root, "broken");
    ASSERT_TRUE(e.ok());
    tree = e->tree;
  }
  bool flipped = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store + "/packs")) {
    if (!e.is_regular_file() || e.path().extension() != ".pack") continue;
    for (const auto& r : PackRecords(e.path().string())) {
      if (r.id != tree) continue;
      ASSERT_EQ(r.type, 2);
      int fd = ::open(e.path().c_str(), O_RDWR | O_CLOEXEC);
      ASSERT_GE(fd, 0);
      char b;
      off_t at = static_cast<off_t>(r.offset + 56 + r.stored_len / 2);
      ASSERT_EQ(::pread(fd, &b, 1, at), 1);
      b = static_cast<char>(b ^ 0x01);
      ASSERT_EQ(::pwrite(fd, &b, 1, at), 1);
      ::close(fd);
      flipped = true;
    }
  }
  ASSERT_TRUE(flipped) << "tree " << tree.Hex() << " not found in any pack";

  std::string mnt = MakeMountpoint("mnt");
  std::string log = tmp_.Sub("mount.log");
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt, log));
  std::string root = mnt + "/ds/main";
  EXPECT_EQ(ListNames(root), (std::set<std::string>{"broken", "fine", "top.txt"}));
  int err = 0;
  ListNames(root + "/broken", &err);
  EXPECT_EQ(err, EIO) << "listing a damaged directory: " << Errno(err);
  errno = 0;
  struct stat st;
  EXPECT_NE(::stat((root + "/broken/f1.txt").c_str(), &st), 0);
  EXPECT_EQ(errno, EIO) << "a file below a damaged directory: " << Errno();
  EXPECT_EQ(ListNames(root + "/fine").size(), 20u);
  EXPECT_EQ(ReadOr(root + "/fine/f7.txt"), "fine 7\n");
  EXPECT_EQ(ReadOr(root + "/top.txt"), "top\n");
}

// ---------------------------------------------------------------------------
// Mount errors, umount errors, signals, background mode.

class MountCliTest : public MountTest {
 protected:
  void SetUp() override {
    src_ = scratch_.Sub("src");
    ASSERT_TRUE(MkDir(src_));
    ASSERT_TRUE(WriteFile(src_ + "/hello.txt", "hello\n"));
    store_ = tmp_.Sub("store");
    commit_ = ImportInto(store_, src_, "ds");
  }
  // Runs a mount that is expected to fail; it must leave no mount behind.
  void ExpectMountFails(const std::vector<std::string>& args, const std::string& mountpoint,
                        const std::string& message_part, const std::string& store = "") {
    mounts_.Track(mountpoint);
    size_t mounts_before = CountMounts(mountpoint);
    for (bool foreground : {false, true}) {
      std::vector<std::string> a = {"mount"};
      if (foreground) a.push_back("-f");
      a.insert(a.end(), args.begin(), args.end());
      RunResult r = Tusk(store.empty() ? store_ : store, a, 20);
      SCOPED_TRACE("tusk " + std::string(foreground ? "mount -f" : "mount") + " ...");
      EXPECT_FALSE(r.timed_out) << "the failing mount hung (it probably mounted)";
      EXPECT_NE(r.exit_code, 0) << r;
      EXPECT_TRUE(HasSubstr(r.err, "tusk: error: ")) << r;
      EXPECT_TRUE(HasSubstr(r.err, message_part)) << "expected '" << message_part << "' in the message" << r;
      EXPECT_EQ(CountMounts(mountpoint), mounts_before) << "a failed mount left a mount behind";
    }
  }
  std::string src_, store_;
  ObjectId commit_;
};

TEST_F(MountCliTest, MissingMountpoint) {
  ExpectMountFails({tmp_.Sub("does-not-exist")}, tmp_.Sub("does-not-exist"), "does not exist");
}

TEST_F(MountCliTest, MountpointIsAFile) {
  ASSERT_TRUE(WriteFile(tmp_.Sub("file"), "x"));
  ExpectMountFails({tmp_.Sub("file")}, tmp_.Sub("file"), "not a directory");
}

TEST_F(MountCliTest, NonEmptyMountpoint) {
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(WriteFile(mnt + "/precious", "do not hide me"));
  ExpectMountFails({mnt}, mnt, "not empty");
  EXPECT_EQ(ReadOr(mnt + "/precious"), "do not hide me");
}

TEST_F(MountCliTest, AlreadyMountedMountpoint) {
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store_, {}, mnt, tmp_.Sub("mount.log")));
  ASSERT_EQ(CountMounts(mnt), 1u);
  ExpectMountFails({mnt}, mnt, "already");
  ExpectMountFails({"ds@main", mnt}, mnt, "already");
  EXPECT_EQ(CountMounts(mnt), 1u);
  EXPECT_EQ(ReadOr(mnt + "/ds/main/hello.txt"), "hello\n") << "the first mount must keep working";
}

TEST_F(MountCliTest, UnknownRefOrDataset) {
  std::string mnt = MakeMountpoint("mnt");
  ExpectMountFails({"ds@nope", mnt}, mnt, "nope");
  ExpectMountFails({"nods@main", mnt}, mnt, "nods");
  ExpectMountFails({"ds@main~5", mnt}, mnt, "ds@main~5");
  ExpectMountFails({"bad/ref@x", mnt}, mnt, "");
  ASSERT_EQ(Tusk(store_, {"dataset", "create", "empty"}).exit_code, 0);
  ExpectMountFails({"empty@main", mnt}, mnt, "no commits yet");
  EXPECT_TRUE(ListNames(mnt).empty());
}

TEST_F(MountCliTest, NotAStore) {
  std::string mnt = MakeMountpoint("mnt");
  std::string not_store = MakeMountpoint("not-a-store");
  ASSERT_TRUE(WriteFile(not_store + "/something", "x"));
  ExpectMountFails({mnt}, mnt, not_store, not_store);
  ExpectMountFails({mnt}, mnt, "", tmp_.Sub("no-such-store"));
  EXPECT_FALSE(std::filesystem::exists(tmp_.Sub("no-such-store"))) << "mount must not create a store";
}

TEST_F(MountCliTest, BadCacheSize) {
  std::string mnt = MakeMountpoint("mnt");
  ExpectMountFails({"--cache-size", "1K", mnt}, mnt, "cache-size");
  ExpectMountFails({"--cache-size", "lots", mnt}, mnt, "cache-size");
}

TEST_F(MountCliTest, UmountOfSomethingNotMounted) {
  std::string dir = MakeMountpoint("plain");
  RunResult r = Tusk(store_, {"umount", dir});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk: error: ")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "not mounted")) << r;
  r = Tusk(store_, {"umount", tmp_.Sub("missing")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk: error: ")) << r;
  // Another filesystem type is refused, not unmounted.
  std::string other = MakeMountpoint("tmpfs");
  mounts_.Track(other);
  RunResult m = RunProgram({"mount", "-t", "tmpfs", "-o", "size=1m", "tusk-test-tmpfs", other});
  if (m.exit_code == 0) {
    r = Tusk(store_, {"umount", other});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(HasSubstr(r.err, "not a tusk mount")) << r;
    EXPECT_TRUE(IsMountPoint(other)) << "tusk umount unmounted a tmpfs";
    RunProgram({"umount", other});
    EXPECT_FALSE(IsMountPoint(other));
  }
}

TEST_F(MountCliTest, ForegroundDaemonUnmountsCleanlyOnSignals) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    SCOPED_TRACE(strsignal(sig));
    std::string mnt = MakeMountpoint(std::string("mnt-") + std::to_string(sig));
    std::string log = tmp_.Sub("mount-" + std::to_string(sig) + ".log");
    ASSERT_TRUE(mounts_.StartForeground(store_, {}, mnt, log));
    EXPECT_EQ(ReadOr(mnt + "/ds/main/hello.txt"), "hello\n");
    auto* child = mounts_.FindChild(mnt);
    ASSERT_NE(child, nullptr);
    ASSERT_EQ(::kill(child->pid, sig), 0);
    auto status = mounts_.WaitChild(mnt, 5);
    ASSERT_TRUE(status) << "the daemon did not exit within 5 s of the signal; log:\n" << ReadOr(log);
    EXPECT_TRUE(WIFEXITED(*status)) << "killed by signal " << (WIFSIGNALED(*status) ? WTERMSIG(*status) : 0);
    if (WIFEXITED(*status)) {
      EXPECT_EQ(WEXITSTATUS(*status), 0) << ReadOr(log);
    }
    EXPECT_FALSE(IsMountPoint(mnt)) << "the daemon exited but left the mount";
    // The mount point is usable again.
    EXPECT_TRUE(ListNames(mnt).empty());
  }
}

TEST_F(MountCliTest, ForegroundDaemonExitsOnTuskUmount) {
  std::string mnt = MakeMountpoint("mnt");
  std::string log = tmp_.Sub("mount.log");
  ASSERT_TRUE(mounts_.StartForeground(store_, {"ds@main"}, mnt, log));
  EXPECT_EQ(ReadOr(mnt + "/hello.txt"), "hello\n");
  RunResult r = Tusk(store_, {"umount", mnt});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(IsMountPoint(mnt));
  auto status = mounts_.WaitChild(mnt, 5);
  ASSERT_TRUE(status) << "the daemon did not exit after its mount went away";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status << "\n" << ReadOr(log);
}

TEST_F(MountCliTest, BackgroundMountReturnsOnceMountedAndUmountStopsIt) {
  std::string mnt = MakeMountpoint("mnt");
  mounts_.Track(mnt);  // TearDown unmounts and stops the daemon whatever happens
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = Tusk(store_, {"mount", mnt}, 30);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_LT(took, 10) << "tusk mount should return as soon as the mount is ready";
  // Usable immediately after the command returns.
  EXPECT_TRUE(IsMountPoint(mnt));
  EXPECT_EQ(ReadOr(mnt + "/ds/main/hello.txt"), "hello\n");
  std::vector<pid_t> daemons = DaemonsServing(mnt);
  EXPECT_EQ(daemons.size(), 1u) << "expected one daemon serving " << mnt;
  EXPECT_TRUE(std::filesystem::exists(store_ + "/mount.log")) << "the daemon logs to STORE/mount.log by default";
  // A second background mount on the same point fails.
  RunResult again = Tusk(store_, {"mount", mnt}, 30);
  EXPECT_NE(again.exit_code, 0) << again;
  EXPECT_EQ(CountMounts(mnt), 1u);

  RunResult um = Tusk(store_, {"umount", mnt});
  EXPECT_EQ(um.exit_code, 0) << um;
  EXPECT_FALSE(IsMountPoint(mnt));
  for (pid_t pid : daemons)
    EXPECT_TRUE(WaitUntil([&] { return !ProcessAlive(pid); }, 5)) << "daemon " << pid << " still runs after umount";
  RunResult twice = Tusk(store_, {"umount", mnt});
  EXPECT_EQ(twice.exit_code, 1) << twice;
}

TEST_F(MountCliTest, RelativeMountpointWithASpace) {
  std::string mnt = MakeMountpoint("mount point");
  mounts_.Track(mnt);
  RunResult r = RunProgram({kTusk, "--store", store_, "mount", "ds@main", "./mount point/"}, RunOptions{tmp_.path(), 30});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(IsMountPoint(mnt)) << "expected a mount at " << mnt;
  EXPECT_EQ(ReadOr(mnt + "/hello.txt"), "hello\n");
  RunResult um = RunProgram({kTusk, "--store", store_, "umount", "mount point"}, RunOptions{tmp_.path(), 30});
  EXPECT_EQ(um.exit_code, 0) << um;
  EXPECT_FALSE(IsMountPoint(mnt));
}

TEST_F(MountCliTest, UmountOfABusyMountFailsClearlyAndKeepsServing) {
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store_, {"ds@main"}, mnt, tmp_.Sub("mount.log")));
  int fd = ::open((mnt + "/hello.txt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  RunResult busy = Tusk(store_, {"umount", mnt});
  EXPECT_EQ(busy.exit_code, 1) << busy;
  EXPECT_TRUE(HasSubstr(busy.err, "tusk: error: ")) << busy;
  EXPECT_TRUE(IsMountPoint(mnt));
  auto still = PreadRange(fd, 0, 100);
  ASSERT_TRUE(still) << Errno();
  EXPECT_EQ(*still, "hello\n");
  ::close(fd);
  RunResult ok = Tusk(store_, {"umount", mnt});
  EXPECT_EQ(ok.exit_code, 0) << ok;
  EXPECT_FALSE(IsMountPoint(mnt));
}

// After the daemon dies (OOM killer, kill -9) the mount point answers every
// request with ENOTCONN. `tusk umount` is how users are told to clean up, so
// it must work on such a mount, and a new mount must then succeed.
TEST_F(MountCliTest, UmountCleansUpAfterADaemonWasKilled) {
  std::string mnt = MakeMountpoint("mnt");
  std::string log = tmp_.Sub("mount.log");
  ASSERT_TRUE(mounts_.StartForeground(store_, {}, mnt, log));
  auto* child = mounts_.FindChild(mnt);
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(::kill(child->pid, SIGKILL), 0);
  ASSERT_TRUE(mounts_.WaitChild(mnt, 5));
  ASSERT_TRUE(IsMountPoint(mnt)) << "a killed daemon leaves its mount behind";
  // Let the kernel's one-second attribute cache of the root expire, as it
  // has long before anyone notices the dead mount.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  struct stat st;
  errno = 0;
  EXPECT_NE(::stat(mnt.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOTCONN) << Errno();
  // Mounting again over it fails with a message that says what to do.
  RunResult again = Tusk(store_, {"mount", mnt}, 20);
  EXPECT_NE(again.exit_code, 0) << again;
  EXPECT_EQ(CountMounts(mnt), 1u);
  RunResult um = Tusk(store_, {"umount", mnt});
  EXPECT_EQ(um.exit_code, 0) << "tusk umount cannot clean up after a dead daemon" << um;
  EXPECT_FALSE(IsMountPoint(mnt));
  if (IsMountPoint(mnt)) Unmount(mnt);
  // The mount point is usable again.
  mounts_.CleanupAll();
  ASSERT_TRUE(mounts_.StartForeground(store_, {}, mnt, log));
  EXPECT_EQ(ReadOr(mnt + "/ds/main/hello.txt"), "hello\n");
}

// `--store DIR` (and $TUSK_STORE) may be relative to the current directory.
// The daemon changes to / once mounted, so it must not keep using the
// relative path to open pack files later.
TEST_F(MountCliTest, RelativeStorePath) {
  // Foreground.
  std::string fg = MakeMountpoint("fg");
  ASSERT_TRUE(mounts_.StartForeground("store", {}, fg, tmp_.Sub("fg.log"), tmp_.path()));
  int err = 0;
  auto got = ReadAll(fg + "/ds/main/hello.txt", &err);
  EXPECT_TRUE(got) << "foreground mount with --store store (relative): " << Errno(err) << "\nlog:\n"
                   << ReadOr(tmp_.Sub("fg.log"));
  if (got) {
    EXPECT_EQ(*got, "hello\n");
  }
  // Background, with a relative --log too. (A pinned mount happens to open
  // its commit's pack before changing directory; the whole store does not.)
  std::string bg = MakeMountpoint("bg");
  mounts_.Track(bg);
  RunResult r = RunProgram({kTusk, "--store", "store", "mount", bg, "--log", "bg.log"}, RunOptions{tmp_.path(), 30});
  ASSERT_EQ(r.exit_code, 0) << r;
  got = ReadAll(bg + "/ds/main/hello.txt", &err);
  EXPECT_TRUE(got) << "background mount with --store store (relative): " << Errno(err) << "\nlog:\n"
                   << ReadOr(tmp_.Sub("bg.log"));
  if (got) {
    EXPECT_EQ(*got, "hello\n");
  }
  RunResult um = Tusk(store_, {"umount", bg});
  EXPECT_EQ(um.exit_code, 0) << um;
  // The daemon removes its lease file when it exits.
  EXPECT_TRUE(WaitUntil([&] { return DaemonsServing(bg).empty(); }, 5));
}

TEST_F(MountCliTest, OtherUsersNeedAllowOtherAndFileModesApply) {
  if (!HaveProgram("setpriv")) GTEST_SKIP() << "setpriv is not installed";
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);  // let nobody reach the mount points
  ASSERT_TRUE(WriteFile(src_ + "/secret.txt", "secret\n", 0600));
  ASSERT_TRUE(MkDir(src_ + "/closed", 0700));
  ASSERT_TRUE(WriteFile(src_ + "/closed/in.txt", "in\n", 0644));
  ImportInto(store_, src_, "ds");
  std::string own = MakeMountpoint("own");
  std::string shared = MakeMountpoint("shared");
  ASSERT_TRUE(mounts_.StartForeground(store_, {}, own, tmp_.Sub("own.log")));
  ASSERT_TRUE(mounts_.StartForeground(store_, {"--allow-other"}, shared, tmp_.Sub("shared.log")));
  auto as_nobody = [](const std::vector<std::string>& cmd) {
    std::vector<std::string> argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return RunProgram(argv, RunOptions{"/", 20});
  };
  RunResult r = as_nobody({"cat", own + "/ds/main/hello.txt"});
  EXPECT_NE(r.exit_code, 0) << "another user read a mount made without --allow-other" << r;
  r = as_nobody({"cat", shared + "/ds/main/hello.txt"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "hello\n");
  r = as_nobody({"cat", shared + "/ds/main/secret.txt"});
  EXPECT_NE(r.exit_code, 0) << "mode 0600 of another owner must not be readable" << r;
  EXPECT_TRUE(HasSubstr(r.err, "Permission denied")) << r;
  r = as_nobody({"ls", shared + "/ds/main/closed"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.err, "Permission denied")) << r;
  // Root (the owner) reads everything.
  EXPECT_EQ(ReadOr(shared + "/ds/main/secret.txt"), "secret\n");
  EXPECT_EQ(ReadOr(own + "/ds/main/closed/in.txt"), "in\n");
}

TEST_F(MountCliTest, DebugTracingAndTheSmallestCache) {
  std::string data = RandomBytes(6 << 20, 40);
  ASSERT_TRUE(WriteFile(src_ + "/big.bin", data));
  ImportInto(store_, src_, "ds");
  // -d traces requests (and implies the foreground; StartForeground adds -f too).
  std::string mnt = MakeMountpoint("mnt");
  std::string log = tmp_.Sub("debug.log");
  ASSERT_TRUE(mounts_.StartForeground(store_, {"-d", "--cache-size", "4M"}, mnt, log));
  EXPECT_TRUE(ReadOr(mnt + "/ds/main/big.bin") == data) << "reading 6 MiB through a 4 MiB chunk cache";
  EXPECT_EQ(ReadOr(mnt + "/ds/main/hello.txt"), "hello\n");
  std::string trace = ReadOr(log);
  EXPECT_TRUE(HasSubstr(trace, "LOOKUP")) << Clip(trace);
  // -d alone, without -f, stays in the foreground too.
  std::string mnt2 = MakeMountpoint("mnt2");
  mounts_.Track(mnt2);
  RunResult r = Tusk(store_, {"mount", "-d", mnt2}, 1.5);
  EXPECT_TRUE(r.timed_out) << "tusk mount -d returned instead of staying in the foreground" << r;
  mounts_.CleanupAll();
  EXPECT_FALSE(IsMountPoint(mnt2));
}

TEST_F(MountCliTest, BackgroundDaemonIsCleanedUpWithoutUmount) {
  // The fixture's cleanup alone must remove a background mount and its daemon.
  std::string mnt = MakeMountpoint("mnt");
  mounts_.Track(mnt);
  RunResult r = Tusk(store_, {"mount", "ds@main", mnt}, 30);
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<pid_t> daemons = DaemonsServing(mnt);
  ASSERT_EQ(daemons.size(), 1u);
  mounts_.CleanupAll();
  EXPECT_FALSE(IsMountPoint(mnt));
  EXPECT_TRUE(WaitUntil([&] { return !ProcessAlive(daemons[0]); }, 5));
}

}  // namespace
}  // namespace tusk
