// Branch workspaces through real mounts: a whole-store mount makes every
// branch directory writable, copy-on-write, and `tusk status/commit/reset`
// act on it while it is mounted and in use:
//   - POSIX as programs use it (create/O_EXCL/O_TRUNC/O_APPEND, pwrite,
//     truncate, sparse files over 4 GiB, rename incl. RENAME_NOREPLACE,
//     unlink of open files, mkdir/rmdir, symlinks, chmod/utimens, fsync,
//     mmap, statfs, hard links, user xattrs, fifos — all committed);
//   - commits: what is committed is exactly the workspace, nothing staged
//     creates nothing, open files survive a commit, reset, a commit from
//     outside is refused, two workspaces at once;
//   - a killed daemon loses nothing that was closed;
//   - committed versions (@tag, @commit) stay read-only.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "store/importer.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"

namespace tusk {
namespace {

using namespace tusk::fstest;

class WorkspaceMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    src_ = tmp_.Sub("src");
    ASSERT_TRUE(MkDir(src_));
    ASSERT_TRUE(MkDir(src_ + "/dir"));
    ASSERT_TRUE(MkDir(src_ + "/dir/sub"));
    ASSERT_TRUE(WriteFile(src_ + "/a.txt", "alpha\n"));
    ASSERT_TRUE(WriteFile(src_ + "/dir/b.txt", "bravo\n"));
    ASSERT_TRUE(WriteFile(src_ + "/dir/sub/c.txt", "charlie\n"));
    big_ = RandomBytes(3 << 20, 7);
    ASSERT_TRUE(WriteFile(src_ + "/big.bin", big_));
    ASSERT_TRUE(Repository::Create(store_, StoreConfig{}).ok());
    {
      auto repo = Repository::Open(store_);
      ASSERT_TRUE(repo.ok());
      ASSERT_TRUE((*repo)->CreateDataset("ds").ok());
      ImportOptions options;
      options.message = "first";
      auto r = ImportDirectory(**repo, src_, "ds", "main", options);
      ASSERT_TRUE(r.ok() && r->commit) << r.status().ToString();
      first_ = *r->commit;
      ASSERT_TRUE((*repo)->CreateTag("ds", "v1", first_).ok());
    }
    mnt_ = tmp_.Sub("mnt");
    ASSERT_TRUE(MkDir(mnt_));
    ASSERT_TRUE(mounts_.StartForeground(store_, {}, mnt_, tmp_.Sub("mount.log")));
    ws_ = mnt_ + "/ds/main";
  }
  void TearDown() override { mounts_.CleanupAll(); }

  RunResult T(std::vector<std::string> args) { return Tusk(store_, std::move(args)); }

  // The committed tree of ds@main, exported to a fresh directory.
  std::string ExportMain(const std::string& name) {
    std::string out = tmp_.Sub(name);
    RunResult r = T({"export", "ds@main", out});
    EXPECT_EQ(r.exit_code, 0) << r;
    return out;
  }

  void Remount() {
    mounts_.CleanupAll();
    ASSERT_TRUE(mounts_.StartForeground(store_, {}, mnt_, tmp_.Sub("mount2.log")));
  }

  TempDir tmp_;
  std::string store_, src_, mnt_, ws_, big_;
  ObjectId first_;
  MountGuard mounts_;  // declared last: unmounts before the directories go
};

TEST_F(WorkspaceMountTest, ABranchDirectoryIsWritableAndReadsBackWhatWasWritten) {
  ASSERT_TRUE(WriteFile(ws_ + "/new.txt", "new file\n"));
  EXPECT_EQ(ReadOr(ws_ + "/new.txt"), "new file\n");
  ASSERT_TRUE(WriteFile(ws_ + "/a.txt", "changed\n"));
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "changed\n");
  EXPECT_EQ(::mkdir((ws_ + "/made").c_str(), 0750), 0) << Errno();
  ASSERT_TRUE(WriteFile(ws_ + "/made/x", "x"));
  EXPECT_EQ(::unlink((ws_ + "/dir/b.txt").c_str()), 0) << Errno();
  EXPECT_EQ(ListNames(ws_ + "/dir"), (std::set<std::string>{"sub"}));
  // Committed versions are untouched.
  EXPECT_EQ(ReadOr(mnt_ + "/ds/@v1/a.txt"), "alpha\n");
  EXPECT_EQ(ReadOr(mnt_ + "/ds/@v1/dir/b.txt"), "bravo\n");
  struct statvfs sv, store_sv;
  ASSERT_EQ(::statvfs(ws_.c_str(), &sv), 0);
  EXPECT_EQ(sv.f_flag & ST_RDONLY, 0u);
  // The free space is the store's (where staged data goes).
  ASSERT_EQ(::statvfs(store_.c_str(), &store_sv), 0);
  EXPECT_EQ(sv.f_blocks, store_sv.f_blocks);
  EXPECT_GT(sv.f_bavail, 0u);
}

TEST_F(WorkspaceMountTest, StatusListsStagedChangesAndCommitMakesExactlyTheWorkspace) {
  RunResult clean = T({"status", "ds@main"});
  EXPECT_EQ(clean.exit_code, 0) << clean;
  EXPECT_TRUE(HasSubstr(clean.out, "nothing staged")) << clean;

  ASSERT_TRUE(WriteFile(ws_ + "/new.txt", "new\n"));
  ASSERT_TRUE(WriteFile(ws_ + "/a.txt", "changed\n"));
  ASSERT_EQ(::unlink((ws_ + "/dir/b.txt").c_str()), 0);
  RunResult st = T({"status", "ds@main"});
  EXPECT_EQ(st.exit_code, 0) << st;
  EXPECT_TRUE(HasSubstr(st.out, "A  new.txt")) << st;
  EXPECT_TRUE(HasSubstr(st.out, "M  a.txt")) << st;
  EXPECT_TRUE(HasSubstr(st.out, "D  dir/b.txt")) << st;
  RunResult js = T({"status", "ds@main", "--json"});
  EXPECT_TRUE(HasSubstr(js.out, "\"path\":\"new.txt\"")) << js;

  RunResult c = T({"commit", "ds@main", "-m", "edit", "--meta", "by=test"});
  ASSERT_EQ(c.exit_code, 0) << c;
  EXPECT_TRUE(HasSubstr(c.out, "committed")) << c;
  std::string out = ExportMain("exported");
  auto diffs = CompareTrees(ws_, out, CompareOptions{});
  EXPECT_TRUE(diffs.empty()) << JoinFirst(diffs);
  EXPECT_EQ(ReadOr(out + "/a.txt"), "changed\n");
  EXPECT_FALSE(std::filesystem::exists(out + "/dir/b.txt"));
  RunResult log = T({"log", "ds@main"});
  EXPECT_TRUE(HasSubstr(log.out, "edit")) << log;
  RunResult after = T({"status", "ds@main"});
  EXPECT_TRUE(HasSubstr(after.out, "nothing staged")) << after;
  // The workspace now shows the new commit; the old one is still reachable.
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "changed\n");
  EXPECT_EQ(ReadOr(mnt_ + "/ds/@v1/a.txt"), "alpha\n");
}

TEST_F(WorkspaceMountTest, CommittingWithNothingStagedSaysSoAndCreatesNothing) {
  RunResult c = T({"commit", "ds@main", "-m", "nothing"});
  EXPECT_EQ(c.exit_code, 0) << c;
  EXPECT_TRUE(HasSubstr(c.out, "nothing to commit")) << c;
  RunResult log = T({"log", "ds@main", "--json"});
  EXPECT_FALSE(HasSubstr(log.out, "nothing")) << log;
}

TEST_F(WorkspaceMountTest, ResetDropsStagedChanges) {
  ASSERT_TRUE(WriteFile(ws_ + "/a.txt", "changed\n"));
  ASSERT_TRUE(WriteFile(ws_ + "/new.txt", "new\n"));
  RunResult r = T({"reset", "ds@main"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(WaitUntil([&] { return ReadOr(ws_ + "/a.txt") == "alpha\n"; }, 3)) << ReadOr(ws_ + "/a.txt");
  EXPECT_TRUE(WaitUntil([&] { return !std::filesystem::exists(ws_ + "/new.txt"); }, 3));
  RunResult st = T({"status", "ds@main"});
  EXPECT_TRUE(HasSubstr(st.out, "nothing staged")) << st;
}

TEST_F(WorkspaceMountTest, ACommitFromOutsideWhileChangesAreStagedIsRefused) {
  ASSERT_TRUE(WriteFile(ws_ + "/a.txt", "mine\n"));
  std::string other = tmp_.Sub("other");
  ASSERT_TRUE(MkDir(other));
  ASSERT_TRUE(WriteFile(other + "/z.txt", "theirs\n"));
  RunResult imp = T({"import", other, "ds@main", "-m", "outside"});
  ASSERT_EQ(imp.exit_code, 0) << imp;
  RunResult st = T({"status", "ds@main"});
  EXPECT_TRUE(HasSubstr(st.out, "warning")) << st;
  RunResult c = T({"commit", "ds@main", "-m", "mine"});
  EXPECT_EQ(c.exit_code, 1) << c;
  EXPECT_TRUE(HasSubstr(c.err, "nothing was committed")) << c;
  // Nothing was lost: the staged change is still there, the outside commit is the head.
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "mine\n");
  RunResult cat = T({"cat", "ds@main", "z.txt"});
  EXPECT_EQ(cat.out, "theirs\n") << cat;
}

TEST_F(WorkspaceMountTest, CommittedVersionsAndVirtualDirectoriesStayReadOnly) {
  std::string tag = mnt_ + "/ds/@v1";
  std::string hex = mnt_ + "/ds/@" + first_.Hex().substr(0, 12);
  for (const std::string& dir : {tag, hex}) {
    errno = 0;
    int fd = ::open((dir + "/a.txt").c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_EQ(fd, -1);
    EXPECT_EQ(errno, EROFS) << dir;
    if (fd >= 0) ::close(fd);
    EXPECT_EQ(::mkdir((dir + "/d").c_str(), 0755), -1);
    EXPECT_EQ(errno, EROFS);
    EXPECT_EQ(::unlink((dir + "/a.txt").c_str()), -1);
    EXPECT_EQ(errno, EROFS);
    EXPECT_EQ(::chmod((dir + "/a.txt").c_str(), 0600), -1);
    EXPECT_EQ(errno, EROFS);
  }
  EXPECT_EQ(::mkdir((mnt_ + "/newds").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((mnt_ + "/ds/newbranch").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::rename(ws_.c_str(), (mnt_ + "/ds/renamed").c_str()), -1);
}

TEST_F(WorkspaceMountTest, OpenFlagsBehaveAsOnALocalFilesystem) {
  std::string p = ws_ + "/f";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  ::close(fd);
  EXPECT_EQ(::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640), -1);
  EXPECT_EQ(errno, EEXIST);
  fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, " world", 6), 6);
  ::close(fd);
  EXPECT_EQ(ReadOr(p), "hello world");
  fd = ::open(p.c_str(), O_RDWR | O_TRUNC | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "xy", 2, 10), 2);  // a hole before it
  ::close(fd);
  EXPECT_EQ(ReadOr(p), std::string(10, '\0') + "xy");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, ::getuid());
  // Truncating a committed file down and up again reads zeros, not old bytes.
  ASSERT_EQ(::truncate((ws_ + "/big.bin").c_str(), 1000), 0);
  ASSERT_EQ(::truncate((ws_ + "/big.bin").c_str(), 5000), 0);
  EXPECT_EQ(ReadOr(ws_ + "/big.bin"), big_.substr(0, 1000) + std::string(4000, '\0'));
}

TEST_F(WorkspaceMountTest, ChangingTheMiddleOfACommittedFileCommitsAboutThatMuch) {
  std::string p = ws_ + "/big.bin";
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  std::string patch = RandomBytes(64 << 10, 99);
  ASSERT_EQ(::pwrite(fd, patch.data(), patch.size(), 1 << 20), static_cast<ssize_t>(patch.size()));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
  std::string want = big_;
  want.replace(1 << 20, patch.size(), patch);
  EXPECT_EQ(ReadOr(p), want);
  RunResult c = T({"commit", "ds@main", "-m", "patch"});
  ASSERT_EQ(c.exit_code, 0) << c;
  // "new data stored: N" — far less than the 3 MiB file (a few chunks).
  EXPECT_FALSE(HasSubstr(c.out, "3.0 MiB")) << c;
  RunResult cat = T({"cat", "ds@main", "big.bin"});
  EXPECT_TRUE(cat.out == want) << "committed content differs";
}

TEST_F(WorkspaceMountTest, FilesOver4GiBAndSparseWrites) {
  std::string p = ws_ + "/huge";
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "end", 3, (off_t{5} << 30)), 3);
  char buf[3];
  ASSERT_EQ(::pread(fd, buf, 3, (off_t{5} << 30)), 3);
  EXPECT_EQ(std::string(buf, 3), "end");
  ASSERT_EQ(::pread(fd, buf, 3, off_t{1} << 30), 3);
  EXPECT_EQ(std::string(buf, 3), std::string(3, '\0'));
  ::close(fd);
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (off_t{5} << 30) + 3);
  EXPECT_LT(st.st_blocks, 1024) << "sparse: nothing but the written block is allocated";
  RunResult c = T({"commit", "ds@main", "-m", "huge"});
  ASSERT_EQ(c.exit_code, 0) << c;
  RunResult ls = T({"ls", "-l", "ds@main"});
  EXPECT_TRUE(HasSubstr(ls.out, std::to_string((uint64_t{5} << 30) + 3))) << ls;
}

TEST_F(WorkspaceMountTest, RenamesOfFilesAndDirectories) {
  // A committed directory with files, renamed, reads through its new name.
  ASSERT_EQ(::rename((ws_ + "/dir").c_str(), (ws_ + "/moved").c_str()), 0) << Errno();
  EXPECT_EQ(ReadOr(ws_ + "/moved/b.txt"), "bravo\n");
  EXPECT_EQ(ReadOr(ws_ + "/moved/sub/c.txt"), "charlie\n");
  EXPECT_FALSE(std::filesystem::exists(ws_ + "/dir"));
  // Over an existing file.
  ASSERT_TRUE(WriteFile(ws_ + "/n1", "one"));
  ASSERT_EQ(::rename((ws_ + "/n1").c_str(), (ws_ + "/a.txt").c_str()), 0);
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "one");
  // RENAME_NOREPLACE refuses an existing target.
  ASSERT_TRUE(WriteFile(ws_ + "/n2", "two"));
  EXPECT_EQ(::renameat2(AT_FDCWD, (ws_ + "/n2").c_str(), AT_FDCWD, (ws_ + "/a.txt").c_str(), RENAME_NOREPLACE), -1);
  EXPECT_EQ(errno, EEXIST);
  // Across directories.
  ASSERT_EQ(::rename((ws_ + "/n2").c_str(), (ws_ + "/moved/sub/n2").c_str()), 0);
  EXPECT_EQ(ReadOr(ws_ + "/moved/sub/n2"), "two");
  RunResult c = T({"commit", "ds@main", "-m", "renames"});
  ASSERT_EQ(c.exit_code, 0) << c;
  std::string out = ExportMain("exp");
  EXPECT_EQ(ReadOr(out + "/moved/sub/c.txt"), "charlie\n");
  EXPECT_EQ(ReadOr(out + "/moved/sub/n2"), "two");
  EXPECT_FALSE(std::filesystem::exists(out + "/dir"));
}

TEST_F(WorkspaceMountTest, DirectoriesSymlinksModesAndTimes) {
  EXPECT_EQ(::rmdir((ws_ + "/dir").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  ASSERT_EQ(::mkdir((ws_ + "/e").c_str(), 0700), 0);
  EXPECT_EQ(::rmdir((ws_ + "/e").c_str()), 0);
  ASSERT_EQ(::symlink("a.txt", (ws_ + "/link").c_str()), 0);
  char target[64] = {};
  ASSERT_EQ(::readlink((ws_ + "/link").c_str(), target, sizeof target), 5);
  EXPECT_STREQ(target, "a.txt");
  EXPECT_EQ(ReadOr(ws_ + "/link"), "alpha\n");
  ASSERT_EQ(::chmod((ws_ + "/a.txt").c_str(), 0600), 0);
  struct timespec times[2] = {{1000000000, 5}, {1500000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ws_ + "/a.txt").c_str(), times, 0), 0);
  struct stat st;
  ASSERT_EQ(::stat((ws_ + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  RunResult c = T({"commit", "ds@main", "-m", "meta"});
  ASSERT_EQ(c.exit_code, 0) << c;
  std::string out = ExportMain("exp");
  ASSERT_EQ(::lstat((out + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  ASSERT_EQ(::lstat((out + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(WorkspaceMountTest, AnUnlinkedOpenFileStaysReadableAndWritable) {
  ASSERT_TRUE(WriteFile(ws_ + "/tmp", "temporary"));
  int fd = ::open((ws_ + "/tmp").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::unlink((ws_ + "/tmp").c_str()), 0);
  EXPECT_FALSE(std::filesystem::exists(ws_ + "/tmp"));
  char buf[16] = {};
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 0), 9);
  EXPECT_STREQ(buf, "temporary");
  ASSERT_EQ(::pwrite(fd, "T", 1, 0), 1);
  ASSERT_EQ(::pread(fd, buf, 1, 0), 1);
  EXPECT_EQ(buf[0], 'T');
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  ::close(fd);
}

TEST_F(WorkspaceMountTest, OpenFilesStayValidAcrossACommit) {
  int fd = ::open((ws_ + "/log.txt").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "one\n", 4), 4);
  RunResult c1 = T({"commit", "ds@main", "-m", "first line"});
  ASSERT_EQ(c1.exit_code, 0) << c1;
  ASSERT_EQ(::write(fd, "two\n", 4), 4);
  ::close(fd);
  EXPECT_EQ(ReadOr(ws_ + "/log.txt"), "one\ntwo\n");
  RunResult c2 = T({"commit", "ds@main", "-m", "second line"});
  ASSERT_EQ(c2.exit_code, 0) << c2;
  EXPECT_EQ(T({"cat", "ds@main", "log.txt"}).out, "one\ntwo\n");
  EXPECT_EQ(T({"cat", "ds@main~1", "log.txt"}).out, "one\n");
}

// The atomic save of editors and databases: write a temporary file, fsync
// it, rename it over the original, fsync the directory. Each step succeeds
// in a branch directory and below it (the daemon makes the names durable:
// Workspace::SyncDir), and on committed versions the directory fsync is a
// no-op, as on any read-only file system.
TEST_F(WorkspaceMountTest, AnAtomicSaveWithFsyncOfTheFileAndTheDirectoryWorks) {
  for (const std::string& dir : {ws_, ws_ + "/dir/sub"}) {
    std::string tmp = dir + "/.c.txt.tmp", target = dir + "/c.txt";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << Errno();
    ASSERT_EQ(::write(fd, "saved\n", 6), 6);
    EXPECT_EQ(::fsync(fd), 0) << Errno();
    ::close(fd);
    ASSERT_EQ(::rename(tmp.c_str(), target.c_str()), 0) << Errno();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dfd, 0) << Errno();
    EXPECT_EQ(::fsync(dfd), 0) << dir << ": " << Errno();
    EXPECT_EQ(::fdatasync(dfd), 0) << dir << ": " << Errno();
    ::close(dfd);
    EXPECT_EQ(ReadOr(target), "saved\n");
  }
  for (const std::string& dir : {mnt_ + "/ds/@v1", mnt_ + "/ds/@v1/dir", mnt_ + "/ds"}) {
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dfd, 0) << dir << ": " << Errno();
    EXPECT_EQ(::fsync(dfd), 0) << dir << ": " << Errno();
    ::close(dfd);
  }
  RunResult r = T({"commit", "ds@main", "-m", "atomic saves"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string out = ExportMain("saved");
  EXPECT_EQ(ReadOr(out + "/c.txt"), "saved\n");
  EXPECT_EQ(ReadOr(out + "/dir/sub/c.txt"), "saved\n");
}

TEST_F(WorkspaceMountTest, MmapReadsAndSharedWritesFsyncAndXattrs) {
  ASSERT_TRUE(WriteFile(ws_ + "/m", std::string(8192, 'a')));
  int fd = ::open((ws_ + "/m").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* p = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << Errno();
  EXPECT_EQ(static_cast<char*>(p)[100], 'a');
  std::memcpy(static_cast<char*>(p) + 4096, "mapped", 6);
  ASSERT_EQ(::msync(p, 8192, MS_SYNC), 0) << Errno();
  ::munmap(p, 8192);
  EXPECT_EQ(::fsync(fd), 0);
  ::close(fd);
  EXPECT_EQ(ReadOr(ws_ + "/m").substr(4096, 6), "mapped");
  ASSERT_EQ(::setxattr((ws_ + "/m").c_str(), "user.label", "cat", 3, 0), 0) << Errno();
  char v[8] = {};
  EXPECT_EQ(::getxattr((ws_ + "/m").c_str(), "user.label", v, sizeof v), 3);
  EXPECT_STREQ(v, "cat");
  EXPECT_EQ(::removexattr((ws_ + "/m").c_str(), "user.label"), 0);
}

// Write-only handles skip the kernel's page cache (one copy fewer per
// write); a handle that has the file cached or mapped still sees every write.
// How much of `path` the kernel holds in its page cache, in pages
// (mincore on a mapping, which faults nothing in).
size_t CachedPages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SIZE_MAX;
  struct stat st;
  size_t pages = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    size_t len = static_cast<size_t>(st.st_size);
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      std::vector<unsigned char> vec((len + 4095) / 4096);
      if (::mincore(p, len, vec.data()) == 0)
        for (unsigned char v : vec) pages += v & 1;
      ::munmap(p, len);
    }
  }
  ::close(fd);
  return pages;
}

// The page cache of a workspace file, as tusk-mount(1) describes it: writes
// through a write-only handle do not fill it, reads do, and it is kept across
// opens until a reset gives the branch new inodes.
TEST_F(WorkspaceMountTest, WorkspaceFilesKeepTheirPageCacheAcrossOpens) {
  std::string f = ws_ + "/cached.bin", data = RandomBytes(256 << 10, 11);
  int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
  EXPECT_EQ(CachedPages(f), 0u) << "written with direct I/O";
  ASSERT_EQ(ReadOr(f), data);
  EXPECT_EQ(CachedPages(f), 64u) << "read, then opened again";
  // A reset changes files behind the kernel's back: an open right after it,
  // through the names the kernel still has, drops what was cached.
  int rw = ::open((ws_ + "/a.txt").c_str(), O_RDWR | O_TRUNC | O_CLOEXEC);
  ASSERT_GE(rw, 0) << Errno();
  ASSERT_EQ(::write(rw, "changed\n", 8), 8);
  ::close(rw);
  ASSERT_EQ(ReadOr(ws_ + "/a.txt"), "changed\n");
  ASSERT_EQ(T({"reset", "ds@main"}).exit_code, 0);
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "alpha\n");
}

TEST_F(WorkspaceMountTest, WritesThroughAWriteOnlyHandleReachCachedAndMappedReaders) {
  ASSERT_TRUE(WriteFile(ws_ + "/w", std::string(16384, 'a')));
  int reader = ::open((ws_ + "/w").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  void* p = ::mmap(nullptr, 16384, PROT_READ, MAP_SHARED, reader, 0);
  ASSERT_NE(p, MAP_FAILED) << Errno();
  char buf[16384];
  ASSERT_EQ(::pread(reader, buf, sizeof buf, 0), 16384);  // now cached and mapped
  EXPECT_EQ(static_cast<const char*>(p)[5000], 'a');
  int writer = ::open((ws_ + "/w").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(::pwrite(writer, "written", 7, 5000), 7) << Errno();
  ASSERT_EQ(::pwrite(writer, "tail", 4, 16384), 4) << Errno();  // grows the file
  ASSERT_EQ(::pread(reader, buf, 7, 5000), 7);
  EXPECT_EQ(std::string(buf, 7), "written");
  EXPECT_EQ(std::string(static_cast<const char*>(p) + 5000, 7), "written");
  struct stat st;
  ASSERT_EQ(::fstat(reader, &st), 0);
  EXPECT_EQ(st.st_size, 16388);
  ASSERT_EQ(::pread(reader, buf, 8, 16380), 8);
  EXPECT_EQ(std::string(buf, 8), "aaaatail");
  ::munmap(p, 16384);
  ::close(writer);
  ::close(reader);
  EXPECT_EQ(ReadOr(ws_ + "/w").substr(4998, 11), "aawrittenaa");
}

TEST_F(WorkspaceMountTest, HardLinksShareOneInode) {
  ASSERT_TRUE(WriteFile(ws_ + "/h1", "linked"));
  ASSERT_EQ(::link((ws_ + "/h1").c_str(), (ws_ + "/h2").c_str()), 0) << Errno();
  struct stat a, b;
  ASSERT_EQ(::stat((ws_ + "/h1").c_str(), &a), 0);
  ASSERT_EQ(::stat((ws_ + "/h2").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  ASSERT_TRUE(WriteFile(ws_ + "/h2", "through h2"));
  EXPECT_EQ(ReadOr(ws_ + "/h1"), "through h2");
}

TEST_F(WorkspaceMountTest, FifosXattrsAndHardLinksAreCommitted) {
  ASSERT_EQ(::mkfifo((ws_ + "/pipe").c_str(), 0644), 0) << Errno();
  struct stat st;
  ASSERT_EQ(::lstat((ws_ + "/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_TRUE(WriteFile(ws_ + "/tagged", "t"));
  ASSERT_EQ(::setxattr((ws_ + "/tagged").c_str(), "user.label", "cat", 3, 0), 0) << Errno();
  ASSERT_TRUE(WriteFile(ws_ + "/l1", "linked"));
  ASSERT_EQ(::link((ws_ + "/l1").c_str(), (ws_ + "/l2").c_str()), 0) << Errno();
  RunResult c = T({"commit", "ds@main", "-m", "specials"});
  ASSERT_EQ(c.exit_code, 0) << c;
  RunResult ls = T({"ls", "-l", "ds@main", "pipe"});
  EXPECT_TRUE(HasSubstr(ls.out, "prw-r--r--")) << ls;
  std::string out = ExportMain("exp");
  ASSERT_EQ(::lstat((out + "/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  char v[8] = {};
  EXPECT_EQ(::getxattr((out + "/tagged").c_str(), "user.label", v, sizeof v), 3) << Errno();
  EXPECT_STREQ(v, "cat");
  struct stat a, b;
  ASSERT_EQ(::stat((out + "/l1").c_str(), &a), 0);
  ASSERT_EQ(::stat((out + "/l2").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "a hard-link group is exported as links";
  // The committed xattr shows in the workspace after the commit too.
  std::memset(v, 0, sizeof v);
  EXPECT_EQ(::getxattr((ws_ + "/tagged").c_str(), "user.label", v, sizeof v), 3) << Errno();
}

// A special file keeps its inode's link count when one of two names goes,
// as a regular file does (the surviving name is read at once, from the
// kernel's cached attributes: no waiting for them to expire).
TEST_F(WorkspaceMountTest, UnlinkingOneNameOfALinkedSpecialFileLeavesTheOtherWithOneLink) {
  struct Kind {
    const char* name;
    mode_t mode;
    dev_t rdev;
  };
  for (const Kind& k : {Kind{"fifo", S_IFIFO | 0644, 0}, Kind{"sock", S_IFSOCK | 0644, 0},
                        Kind{"chr", S_IFCHR | 0644, makedev(1, 3)}, Kind{"blk", S_IFBLK | 0644, makedev(7, 0)},
                        Kind{"reg", S_IFREG | 0644, 0}}) {
    std::string a = ws_ + "/" + k.name + ".a", b = ws_ + "/" + k.name + ".b";
    ASSERT_EQ(::mknod(a.c_str(), k.mode, k.rdev), 0) << k.name << ": " << Errno();
    ASSERT_EQ(::link(a.c_str(), b.c_str()), 0) << k.name << ": " << Errno();
    struct stat st;
    ASSERT_EQ(::lstat(b.c_str(), &st), 0) << k.name;
    EXPECT_EQ(st.st_nlink, 2u) << k.name;
    ASSERT_EQ(::unlink(a.c_str()), 0) << k.name << ": " << Errno();
    ASSERT_EQ(::lstat(b.c_str(), &st), 0) << k.name << ": " << Errno();
    EXPECT_EQ(st.st_nlink, 1u) << k.name;
    EXPECT_EQ(st.st_mode & S_IFMT, k.mode & S_IFMT) << k.name;
    EXPECT_EQ(st.st_rdev, k.rdev) << k.name;
  }
  // And so it is committed: one name each, no hard-link group left over.
  RunResult c = T({"commit", "ds@main", "-m", "specials"});
  ASSERT_EQ(c.exit_code, 0) << c;
  RunResult ls = T({"ls", "-l", "ds@main"});
  EXPECT_TRUE(HasSubstr(ls.out, "fifo.b")) << ls;
  EXPECT_FALSE(HasSubstr(ls.out, "fifo.a")) << ls;
}

// After a commit the names of a hard-link group come from the base: they
// are still one inode with the group's link count, also once copied up.
TEST_F(WorkspaceMountTest, CommittedHardLinksStayOneInodeInTheWorkspace) {
  ASSERT_TRUE(WriteFile(ws_ + "/l1", "linked"));
  ASSERT_EQ(::link((ws_ + "/l1").c_str(), (ws_ + "/l2").c_str()), 0) << Errno();
  ASSERT_EQ(::link((ws_ + "/l1").c_str(), (ws_ + "/dir/l3").c_str()), 0) << Errno();
  RunResult c = T({"commit", "ds@main", "-m", "links"});
  ASSERT_EQ(c.exit_code, 0) << c;
  Remount();  // nothing cached by the kernel: every name is looked up afresh
  auto stat_of = [&](const std::string& name) {
    struct stat st {};
    EXPECT_EQ(::stat((ws_ + "/" + name).c_str(), &st), 0) << name << ": " << Errno();
    return st;
  };
  struct stat s1 = stat_of("l1"), s2 = stat_of("l2"), s3 = stat_of("dir/l3");
  EXPECT_EQ(s1.st_ino, s2.st_ino);
  EXPECT_EQ(s1.st_ino, s3.st_ino);
  EXPECT_EQ(s1.st_nlink, 3u);
  EXPECT_EQ(stat_of("a.txt").st_nlink, 1u);
  EXPECT_NE(stat_of("a.txt").st_ino, s1.st_ino);
  // Deleting one name lowers the count of the others.
  ASSERT_EQ(::unlink((ws_ + "/dir/l3").c_str()), 0) << Errno();
  Remount();
  EXPECT_EQ(stat_of("l1").st_nlink, 2u);
  // A write through one name copies the group up as one upper inode; a name
  // looked up only afterwards is still that inode.
  Remount();
  s1 = stat_of("l1");
  ASSERT_TRUE(WriteFile(ws_ + "/l1", "changed"));
  s2 = stat_of("l2");
  EXPECT_EQ(s2.st_ino, s1.st_ino);
  EXPECT_EQ(s2.st_nlink, 2u);
  EXPECT_EQ(ReadOr(ws_ + "/l2"), "changed");
  // And so is the committed result.
  c = T({"commit", "ds@main", "-m", "changed"});
  ASSERT_EQ(c.exit_code, 0) << c;
  std::string out = ExportMain("exp");
  struct stat e1, e2;
  ASSERT_EQ(::stat((out + "/l1").c_str(), &e1), 0);
  ASSERT_EQ(::stat((out + "/l2").c_str(), &e2), 0);
  EXPECT_EQ(e1.st_ino, e2.st_ino);
  EXPECT_EQ(::access((out + "/dir/l3").c_str(), F_OK), -1);
}

TEST_F(WorkspaceMountTest, TwoBranchesAreWrittenAndCommittedAtOnce) {
  ASSERT_EQ(T({"branch", "ds@dev", "ds@main"}).exit_code, 0);
  std::string dev = mnt_ + "/ds/dev";
  ASSERT_TRUE(WriteFile(ws_ + "/m.txt", "on main"));
  ASSERT_TRUE(WriteFile(dev + "/d.txt", "on dev"));
  EXPECT_FALSE(std::filesystem::exists(dev + "/m.txt"));
  ASSERT_EQ(T({"commit", "ds@main", "-m", "main"}).exit_code, 0);
  ASSERT_EQ(T({"commit", "ds@dev", "-m", "dev"}).exit_code, 0);
  EXPECT_EQ(T({"cat", "ds@dev", "d.txt"}).out, "on dev");
  EXPECT_NE(T({"cat", "ds@dev", "m.txt"}).exit_code, 0);
  EXPECT_EQ(T({"cat", "ds@main", "m.txt"}).out, "on main");
}

TEST_F(WorkspaceMountTest, StagedChangesSurviveAKilledDaemon) {
  ASSERT_TRUE(WriteFile(ws_ + "/kept.txt", "closed before the crash"));
  ASSERT_TRUE(WriteFile(ws_ + "/a.txt", "modified before the crash"));
  std::vector<pid_t> daemons = DaemonsServing(mnt_);
  ASSERT_EQ(daemons.size(), 1u);
  ASSERT_EQ(::kill(daemons[0], SIGKILL), 0);
  mounts_.WaitChild(mnt_, 10);
  Remount();
  EXPECT_EQ(ReadOr(ws_ + "/kept.txt"), "closed before the crash");
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "modified before the crash");
  ASSERT_EQ(T({"commit", "ds@main", "-m", "after crash"}).exit_code, 0);
  RunResult fsck = T({"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  EXPECT_EQ(T({"cat", "ds@main", "kept.txt"}).out, "closed before the crash");
}

TEST_F(WorkspaceMountTest, ADaemonKilledInTheMiddleOfWritesKeepsEveryClosedFile) {
  // A writer creates numbered files (write, close, next) and keeps one more
  // open and growing, while the daemon is killed under it.
  std::string script =
      "import os, sys\n"
      "d = sys.argv[1]\n"
      "big = open(os.path.join(d, 'growing.bin'), 'wb', buffering=0)\n"
      "i = 0\n"
      "try:\n"
      "    while True:\n"
      "        with open(os.path.join(d, 'f%05d' % i), 'wb') as f:\n"
      "            f.write(bytes([i % 251]) * (4096 + i))\n"
      "        print(i, flush=True)\n"
      "        big.write(os.urandom(65536))\n"
      "        i += 1\n"
      "except OSError:\n"
      "    pass\n";
  std::string py = tmp_.Sub("writer.py");
  ASSERT_TRUE(WriteFile(py, script));
  std::string out = tmp_.Sub("writer.out");
  pid_t writer = ::fork();
  if (writer == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::execlp("python3", "python3", py.c_str(), ws_.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ASSERT_TRUE(WaitUntil([&] { return ReadOr(out, "").size() > 200; }, 20)) << "the writer made no progress";
  std::vector<pid_t> daemons = DaemonsServing(mnt_);
  ASSERT_EQ(daemons.size(), 1u);
  ASSERT_EQ(::kill(daemons[0], SIGKILL), 0);
  int status = 0;
  ::waitpid(writer, &status, 0);
  mounts_.WaitChild(mnt_, 10);
  Remount();
  // Every file the writer closed (it printed its number after closing) is intact.
  std::istringstream done(ReadOr(out, ""));
  int last = -1, n;
  while (done >> n) last = n;
  ASSERT_GT(last, 10);
  for (int i = 0; i <= last; i++) {
    char name[16];
    std::snprintf(name, sizeof name, "/f%05d", i);
    EXPECT_EQ(ReadOr(ws_ + name), std::string(4096 + i, static_cast<char>(i % 251))) << name;
  }
  RunResult c = T({"commit", "ds@main", "-m", "after the crash"});
  ASSERT_EQ(c.exit_code, 0) << c;
  RunResult fsck = T({"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  char name[16];
  std::snprintf(name, sizeof name, "f%05d", last);
  EXPECT_EQ(T({"cat", "ds@main", name}).out, std::string(4096 + last, static_cast<char>(last % 251)));
}

TEST_F(WorkspaceMountTest, ADaemonKilledDuringACommitLeavesTheOldOrTheNewCommit) {
  // Enough new data that the commit takes a while (chunking, compression).
  std::string data = RandomBytes(96 << 20, 5);
  ASSERT_TRUE(WriteFile(ws_ + "/large.bin", data));
  ASSERT_TRUE(WriteFile(ws_ + "/small.txt", "small"));
  for (int delay_ms : {50, 300}) {
    std::vector<pid_t> daemons = DaemonsServing(mnt_);
    ASSERT_EQ(daemons.size(), 1u);
    std::string out = tmp_.Sub("commit.out");
    pid_t committer = ::fork();
    if (committer == 0) {
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(kTusk, kTusk, "--store", store_.c_str(), "commit", "ds@main", "-m", "killed?", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(daemons[0], SIGKILL);
    int status = 0;
    ::waitpid(committer, &status, 0);
    mounts_.WaitChild(mnt_, 10);
    Remount();
    RunResult fsck = T({"fsck"});
    EXPECT_EQ(fsck.exit_code, 0) << fsck;
    RunResult log = T({"log", "ds@main"});
    bool committed = HasSubstr(log.out, "killed?");
    // Either way the data is there: in the new commit, or still staged.
    EXPECT_EQ(Sha256File(ws_ + "/large.bin"), Sha256Hex(data)) << "delay " << delay_ms;
    EXPECT_EQ(ReadOr(ws_ + "/small.txt"), "small");
    RunResult st = T({"status", "ds@main"});
    EXPECT_EQ(st.exit_code, 0) << st;
    if (committed) {
      EXPECT_TRUE(HasSubstr(st.out, "nothing staged")) << st;
      EXPECT_EQ(T({"cat", "ds@main", "small.txt"}).out, "small");
      break;
    }
    EXPECT_TRUE(HasSubstr(st.out, "A  large.bin")) << st;
  }
  // Whatever happened, a commit now succeeds and holds the data.
  RunResult c = T({"commit", "ds@main", "-m", "after"});
  ASSERT_EQ(c.exit_code, 0) << c;
  EXPECT_EQ(Sha256Hex(T({"cat", "ds@main", "large.bin"}).out), Sha256Hex(data));
}

TEST_F(WorkspaceMountTest, RealProgramsWorkInAWorkspace) {
  // tar -x, cp -a, sed -i, rsync, sqlite3 and git, each checked by its result.
  std::string tarball = tmp_.Sub("t.tar");
  ASSERT_EQ(Sh("tar -cf " + tarball + " -C " + src_ + " .").exit_code, 0);
  ASSERT_EQ(::mkdir((ws_ + "/untar").c_str(), 0755), 0);
  RunResult tar = Sh("tar -xf " + tarball + " -C " + ws_ + "/untar");
  EXPECT_EQ(tar.exit_code, 0) << tar;
  EXPECT_EQ(ReadOr(ws_ + "/untar/dir/sub/c.txt"), "charlie\n");
  RunResult cp = Sh("cp -a " + src_ + " " + ws_ + "/copy");
  EXPECT_EQ(cp.exit_code, 0) << cp;
  EXPECT_TRUE(CompareTrees(src_, ws_ + "/copy", CompareOptions{}).empty());
  RunResult sed = Sh("sed -i 's/alpha/ALPHA/' " + ws_ + "/a.txt");
  EXPECT_EQ(sed.exit_code, 0) << sed;
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "ALPHA\n");
  RunResult rsync = Sh("rsync -a " + src_ + "/ " + ws_ + "/rsynced/");
  EXPECT_EQ(rsync.exit_code, 0) << rsync;
  EXPECT_EQ(ReadOr(ws_ + "/rsynced/dir/b.txt"), "bravo\n");
  if (HaveProgram("sqlite3")) {
    RunResult db = Sh("sqlite3 " + ws_ + "/t.db 'create table t(x); insert into t values(1),(2);' && "
                      "sqlite3 " + ws_ + "/t.db 'update t set x = x * 10;' && sqlite3 " + ws_ + "/t.db 'select sum(x) from t;'");
    EXPECT_EQ(db.exit_code, 0) << db;
    EXPECT_EQ(db.out, "30\n") << db;
  }
  if (HaveProgram("git")) {
    RunResult git = Sh("cd " + ws_ + " && git init -q repo && cd repo && echo hi > f && git add f && "
                       "git -c user.email=t@t -c user.name=t commit -qm init && git log --oneline | wc -l");
    EXPECT_EQ(git.exit_code, 0) << git;
    EXPECT_EQ(git.out, "1\n") << git;
    RunResult clone = Sh("cd " + ws_ + " && git clone -q repo clone && cat clone/f");
    EXPECT_EQ(clone.exit_code, 0) << clone;
    EXPECT_EQ(clone.out, "hi\n");
  }
  RunResult c = T({"commit", "ds@main", "-m", "programs"});
  ASSERT_EQ(c.exit_code, 0) << c;
  std::string out = ExportMain("exp");
  auto diffs = CompareTrees(ws_, out, CompareOptions{});
  EXPECT_TRUE(diffs.empty()) << JoinFirst(diffs);
}

TEST_F(WorkspaceMountTest, OwnershipAndPermissionsFollowTheCallingUser) {
  if (!HaveProgram("setpriv")) GTEST_SKIP() << "setpriv is not installed";
  mounts_.CleanupAll();
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);  // let nobody reach the mount point
  ASSERT_TRUE(mounts_.StartForeground(store_, {"--allow-other"}, mnt_, tmp_.Sub("shared.log")));
  ASSERT_EQ(::mkdir((ws_ + "/open").c_str(), 0777), 0);
  ASSERT_EQ(::chmod((ws_ + "/open").c_str(), 0777), 0);
  ASSERT_EQ(::mkdir((ws_ + "/closed").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((ws_ + "/group").c_str(), 0777), 0);
  ASSERT_EQ(::chown((ws_ + "/group").c_str(), 0, 4242), 0);
  ASSERT_EQ(::chmod((ws_ + "/group").c_str(), 02777), 0);
  auto as_nobody = [](const std::string& script) {
    return RunProgram({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", script},
                      RunOptions{"/", 20});
  };
  RunResult r = as_nobody("echo mine > " + ws_ + "/open/n.txt");
  ASSERT_EQ(r.exit_code, 0) << r;
  struct stat st;
  ASSERT_EQ(::stat((ws_ + "/open/n.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  r = as_nobody("echo no > " + ws_ + "/closed/n.txt");
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.err, "Permission denied")) << r;
  r = as_nobody("echo no > " + ws_ + "/a.txt");  // 0644, owned by root
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_EQ(ReadOr(ws_ + "/a.txt"), "alpha\n");
  // A setgid directory passes its group (and, to directories, the bit).
  r = as_nobody("echo g > " + ws_ + "/group/f && mkdir " + ws_ + "/group/d");
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(::stat((ws_ + "/group/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4242u);
  ASSERT_EQ(::stat((ws_ + "/group/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4242u);
  EXPECT_TRUE(st.st_mode & S_ISGID);
  // A write by another user clears setuid, and setgid where the group may
  // execute (as on a local file system); root's writes keep them.
  for (const auto& [name, mode, after] : {std::tuple{"suid", 06777, 0777}, std::tuple{"sgid-noexec", 02766, 02766}}) {
    std::string f = ws_ + "/open/" + name;
    ASSERT_TRUE(WriteFile(f, "x"));
    ASSERT_EQ(::chmod(f.c_str(), mode), 0);
    int fd = ::open(f.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0) << Errno();
    ASSERT_EQ(::write(fd, "by root", 7), 7);
    ::close(fd);
    ASSERT_EQ(::stat(f.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, static_cast<unsigned>(mode)) << name;
    r = as_nobody("echo more >> " + f);  // O_WRONLY|O_APPEND: a direct write
    ASSERT_EQ(r.exit_code, 0) << r;
    ASSERT_EQ(::stat(f.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, static_cast<unsigned>(after)) << name;
  }
  // chown by the owner of nothing is refused; root's chown persists into the commit.
  r = as_nobody("chown 0 " + ws_ + "/open/n.txt");
  EXPECT_NE(r.exit_code, 0) << r;
  ASSERT_EQ(::chown((ws_ + "/open/n.txt").c_str(), 1234, 5678), 0);
  ASSERT_EQ(T({"commit", "ds@main", "-m", "owners"}).exit_code, 0);
  RunResult ls = T({"ls", "-l", "ds@main", "open"});
  EXPECT_TRUE(HasSubstr(ls.out, "1234")) << ls;
  EXPECT_TRUE(HasSubstr(ls.out, "5678")) << ls;
}

// fallocate(2) in every mode FUSE passes on, next to the same calls on a
// local file: the same sizes and bytes after each, through fresh opens too,
// and the commit records them. fallocate(1) works as it does locally.
TEST_F(WorkspaceMountTest, FallocateWorksAsOnALocalDisk) {
  std::string ref = tmp_.Sub("ref");
  ASSERT_TRUE(MkDir(ref));
  ASSERT_TRUE(WriteFile(ref + "/big.bin", big_));
  int wfd = ::open((ws_ + "/big.bin").c_str(), O_RDWR | O_CLOEXEC);
  int lfd = ::open((ref + "/big.bin").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(wfd, 0) << Errno();
  ASSERT_GE(lfd, 0) << Errno();
  struct Call {
    int mode;
    off_t offset, length;
  };
  const int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  for (const Call& c : {Call{kPunch, 300000, 700000}, Call{FALLOC_FL_ZERO_RANGE, 1500000, 600000},
                        Call{FALLOC_FL_KEEP_SIZE, 3000000, 1 << 20}, Call{0, 3100000, 500000},
                        Call{FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 3500000, 1 << 20},
                        Call{FALLOC_FL_ZERO_RANGE, 3550000, 100000}, Call{kPunch, 0, 5000}}) {
    SCOPED_TRACE("mode " + std::to_string(c.mode) + " at " + std::to_string(c.offset));
    ASSERT_EQ(::fallocate(lfd, c.mode, c.offset, c.length), 0) << Errno();
    ASSERT_EQ(::fallocate(wfd, c.mode, c.offset, c.length), 0) << Errno();
    struct stat ws, ls;
    ASSERT_EQ(::fstat(wfd, &ws), 0);
    ASSERT_EQ(::fstat(lfd, &ls), 0);
    EXPECT_EQ(ws.st_size, ls.st_size);
    auto got = PreadRange(wfd, 0, static_cast<size_t>(ls.st_size) + 10);
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == ReadOr(ref + "/big.bin")) << "bytes differ from the local file's";
    EXPECT_TRUE(ReadOr(ws_ + "/big.bin") == ReadOr(ref + "/big.bin")) << "a fresh open reads other bytes";
  }
  ::close(wfd);
  ::close(lfd);
  // fallocate(1): reserve a new file, punch and zero with its options.
  if (HaveProgram("fallocate")) {
    for (const std::string& dir : {ws_, ref}) {
      RunResult r = Sh("fallocate -l 5MiB " + dir + "/pre.bin && fallocate -n -o 5MiB -l 1MiB " + dir +
                       "/pre.bin && printf abcdefgh > " + dir + "/t.bin && fallocate -p -o 2 -l 3 " + dir +
                       "/t.bin && fallocate -z -o 6 -l 10 " + dir + "/t.bin");
      ASSERT_EQ(r.exit_code, 0) << dir << ": " << r;
    }
    for (const char* name : {"pre.bin", "t.bin"}) {
      struct stat ws, ls;
      ASSERT_EQ(::stat((ws_ + "/" + name).c_str(), &ws), 0) << name;
      ASSERT_EQ(::stat((ref + "/" + name).c_str(), &ls), 0) << name;
      EXPECT_EQ(ws.st_size, ls.st_size) << name;
      EXPECT_TRUE(ReadOr(ws_ + "/" + name) == ReadOr(ref + "/" + name)) << name;
    }
    EXPECT_EQ(ReadOr(ws_ + "/t.bin"), std::string("ab\0\0\0f\0\0\0\0\0\0\0\0\0\0", 16));
  }
  RunResult c = T({"commit", "ds@main", "-m", "fallocate"});
  ASSERT_EQ(c.exit_code, 0) << c;
  std::string out = ExportMain("exp");
  EXPECT_TRUE(ReadOr(out + "/big.bin") == ReadOr(ref + "/big.bin"));
  if (HaveProgram("fallocate")) {
    EXPECT_TRUE(ReadOr(out + "/pre.bin") == ReadOr(ref + "/pre.bin"));
  }
}

TEST_F(WorkspaceMountTest, AFullDiskGivesENOSPCAndKeepsEarlierData) {
  // A store on a small tmpfs: staged data lives in the store directory.
  mounts_.CleanupAll();
  std::string small = tmp_.Sub("small");
  ASSERT_TRUE(MkDir(small));
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=24m") != 0) GTEST_SKIP() << "cannot mount a tmpfs: " << Errno();
  struct Unmounter {
    std::string path;
    ~Unmounter() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount_small{small};
  std::string store = small + "/store";
  ASSERT_TRUE(Repository::Create(store, StoreConfig{}).ok());
  {
    auto repo = Repository::Open(store);
    ASSERT_TRUE(repo.ok());
    ASSERT_TRUE((*repo)->CreateDataset("ds").ok());
    ImportOptions options;
    options.message = "first";
    ASSERT_TRUE(ImportDirectory(**repo, src_, "ds", "main", options).ok());
  }
  // Space the user frees before remounting: a new daemon writes its lease
  // file, which a disk that is still full refuses (and the old daemon's may
  // not be gone yet).
  std::string ballast = small + "/ballast";
  ASSERT_TRUE(WriteFile(ballast, std::string(256 << 10, 'b')));
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt_, tmp_.Sub("small.log")));
  ASSERT_TRUE(WriteFile(ws_ + "/kept.txt", "written before the disk filled"));
  int fd = ::open((ws_ + "/fill.bin").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << Errno();
  // 1000 KiB does not divide the space left: the last write that gets any
  // room gets only part of it, and says so (a short count, as on a local
  // file system); the size is what the writes acknowledged.
  std::string block = RandomBytes(1000 << 10, 3);
  int err = 0;
  uint64_t acked = 0;
  for (int i = 0; i < 64; i++) {
    ssize_t n = ::write(fd, block.data(), block.size());
    if (n < 0) {
      err = errno;
      break;
    }
    acked += static_cast<uint64_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), acked);
  ::close(fd);
  EXPECT_EQ(err, ENOSPC) << Errno(err);
  EXPECT_EQ(ReadOr(ws_ + "/kept.txt"), "written before the disk filled");
  // Not just the kernel's idea of it: the workspace's too.
  mounts_.CleanupAll();
  ASSERT_EQ(::unlink(ballast.c_str()), 0) << Errno();
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt_, tmp_.Sub("small2.log")));
  ASSERT_EQ(::stat((ws_ + "/fill.bin").c_str(), &st), 0) << Errno();
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), acked);
  std::string expected;
  while (expected.size() < acked) expected += block;
  expected.resize(acked);
  EXPECT_TRUE(ReadOr(ws_ + "/fill.bin") == expected) << "the acknowledged bytes read back";
  ASSERT_EQ(::unlink((ws_ + "/fill.bin").c_str()), 0);
  RunResult c = Tusk(store, {"commit", "ds@main", "-m", "after full"});
  EXPECT_EQ(c.exit_code, 0) << c;
  EXPECT_EQ(Tusk(store, {"cat", "ds@main", "kept.txt"}).out, "written before the disk filled");
  RunResult fsck = Tusk(store, {"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  mounts_.CleanupAll();
}

// A store whose own path is about 3000 bytes, and a path of 4000 bytes in
// its workspace (what the kernel accepts below the mount point): every
// operation works through the mount, and a name created there can be
// stat-ed and removed (it used to be created and then trapped).
TEST_F(WorkspaceMountTest, PathsNearPathMaxWorkWhateverTheStoresPath) {
  mounts_.CleanupAll();
  std::string deep = tmp_.path();
  for (int i = 0; deep.size() < tmp_.path().size() + 3000; i++) {
    deep += "/" + std::string(240, static_cast<char>('a' + i));
    ASSERT_EQ(::mkdir(deep.c_str(), 0755), 0) << Errno();
  }
  std::string store = deep + "/store";
  ASSERT_TRUE(Repository::Create(store, StoreConfig{}).ok());
  {
    auto repo = Repository::Open(store);
    ASSERT_TRUE(repo.ok());
    ASSERT_TRUE((*repo)->CreateDataset("ds").ok());
    ImportOptions options;
    options.message = "first";
    ASSERT_TRUE(ImportDirectory(**repo, src_, "ds", "main", options).ok());
  }
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt_, tmp_.Sub("deep.log")));
  // All calls below are relative to the workspace root: "ds/main/" plus
  // the path is at most 4095 bytes, as the kernel requires.
  int root = ::open(ws_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0) << Errno();
  std::string dir;
  for (int i = 0; dir.size() + 251 + 40 < 4095 - 8; i++) {
    dir += (dir.empty() ? "" : "/") + std::string(250, static_cast<char>('A' + i));
    ASSERT_EQ(::mkdirat(root, dir.c_str(), 0755), 0) << dir.size() << ": " << Errno();
  }
  std::string name(4095 - 8 - dir.size() - 1, 'f');
  ASSERT_LE(name.size(), 255u);
  std::string file = dir + "/" + name;
  ASSERT_EQ(file.size(), 4095u - 8);
  // The reproduction: touch, then stat and rm.
  int fd = ::openat(root, file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << Errno();
  ::close(fd);
  struct stat st;
  ASSERT_EQ(::fstatat(root, file.c_str(), &st, AT_SYMLINK_NOFOLLOW), 0) << Errno();
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(::unlinkat(root, file.c_str(), 0), 0) << Errno();
  EXPECT_EQ(::fstatat(root, file.c_str(), &st, AT_SYMLINK_NOFOLLOW), -1);
  // Write, read, truncate, chmod, times, xattrs.
  fd = ::openat(root, file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(::write(fd, "deep data\n", 10), 10);
  ASSERT_EQ(::ftruncate(fd, 9), 0) << Errno();
  ASSERT_EQ(::fsetxattr(fd, "user.deep", "yes", 3, 0), 0) << Errno();
  char buf[16] = {};
  EXPECT_EQ(::fgetxattr(fd, "user.deep", buf, sizeof buf), 3) << Errno();
  char names[256] = {};
  EXPECT_GT(::flistxattr(fd, names, sizeof names), 0) << Errno();
  ::close(fd);
  ASSERT_EQ(::fchmodat(root, file.c_str(), 0600, 0), 0) << Errno();
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(root, file.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << Errno();
  ASSERT_EQ(::fstatat(root, file.c_str(), &st, AT_SYMLINK_NOFOLLOW), 0) << Errno();
  EXPECT_EQ(st.st_size, 9);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);
  fd = ::openat(root, file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  EXPECT_EQ(::read(fd, buf, sizeof buf), 9);
  ::close(fd);
  // Special files, symlinks, hard links, renames, readdir, rmdir.
  ASSERT_EQ(::mknodat(root, (dir + "/p").c_str(), S_IFIFO | 0644, 0), 0) << Errno();
  ASSERT_EQ(::symlinkat("target", root, (dir + "/s").c_str()), 0) << Errno();
  char target[16] = {};
  EXPECT_EQ(::readlinkat(root, (dir + "/s").c_str(), target, sizeof target), 6) << Errno();
  ASSERT_EQ(::linkat(root, file.c_str(), root, (dir + "/h").c_str(), 0), 0) << Errno();
  ASSERT_EQ(::renameat(root, (dir + "/h").c_str(), root, (dir + "/h2").c_str()), 0) << Errno();
  ASSERT_EQ(::unlinkat(root, (dir + "/h2").c_str(), 0), 0) << Errno();
  ASSERT_EQ(::mkdirat(root, (dir + "/d").c_str(), 0755), 0) << Errno();
  ASSERT_EQ(::unlinkat(root, (dir + "/d").c_str(), AT_REMOVEDIR), 0) << Errno();
  {
    int dfd = ::openat(root, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dfd, 0) << Errno();
    DIR* d = ::fdopendir(dfd);
    ASSERT_NE(d, nullptr);
    std::set<std::string> names;
    while (dirent* e = ::readdir(d)) names.insert(e->d_name);
    ::closedir(d);
    EXPECT_EQ(names, (std::set<std::string>{".", "..", name, "p", "s"}));
  }
  // status, commit, and what the commit holds.
  std::string rel = dir + "/" + name;
  RunResult status = Tusk(store, {"status", "ds@main"});
  EXPECT_EQ(status.exit_code, 0) << status;
  EXPECT_TRUE(HasSubstr(status.out, name)) << Clip(status.out);
  RunResult c = Tusk(store, {"commit", "ds@main", "-m", "deep"});
  ASSERT_EQ(c.exit_code, 0) << c;
  EXPECT_EQ(Tusk(store, {"cat", "ds@main", rel}).out, "deep data");
  // Copy-up of the committed deep file; then reset drops it again.
  fd = ::openat(root, file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(::write(fd, "+", 1), 1) << Errno();
  ::close(fd);
  ASSERT_EQ(::fstatat(root, file.c_str(), &st, AT_SYMLINK_NOFOLLOW), 0) << Errno();
  EXPECT_EQ(st.st_size, 10);
  RunResult reset = Tusk(store, {"reset", "ds@main"});
  EXPECT_EQ(reset.exit_code, 0) << reset;
  ::close(root);
  mounts_.CleanupAll();
  ASSERT_TRUE(mounts_.StartForeground(store, {}, mnt_, tmp_.Sub("deep2.log")));
  root = ::open(ws_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0) << Errno();
  ASSERT_EQ(::fstatat(root, file.c_str(), &st, AT_SYMLINK_NOFOLLOW), 0) << Errno();
  EXPECT_EQ(st.st_size, 9) << "reset dropped the append";
  ::close(root);
  mounts_.CleanupAll();
}

TEST_F(WorkspaceMountTest, CommandErrorsAreClear) {
  RunResult bad = T({"commit", "nosuch@main", "-m", "x"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_TRUE(HasSubstr(bad.err, "nosuch")) << bad;
  RunResult nobranch = T({"status", "ds@nosuch"});
  EXPECT_EQ(nobranch.exit_code, 1) << nobranch;
  RunResult noref = T({"reset", "ds"});
  EXPECT_NE(noref.exit_code, 0) << noref;
  // -m may be left out when there is nothing to commit (or a staged merge,
  // merge_cli_test); with changes staged it is required (workspace_test).
  RunResult nomsg = T({"commit", "ds@main"});
  EXPECT_EQ(nomsg.exit_code, 0) << nomsg;
  EXPECT_TRUE(HasSubstr(nomsg.out, "nothing to commit")) << nomsg;
}

}  // namespace
}  // namespace tusk
