// Who can use a store (issue 9, defects 6 and 14): a store is private to
// its creator whatever the umask; `tusk init --shared` lets the directory's
// group run the commands that only read, and nothing else; someone else's
// private store is refused with a message naming the owner; a store nobody
// may write still serves every command that only reads. Other users are
// played by uid 65534 through setpriv(1).
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;

// `tusk --store STORE ARGS...` as uid 65534 with primary group `gid` and no
// other groups.
RunResult TuskAs(gid_t gid, const std::string& store, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"setpriv",          "--reuid=" + std::to_string(kNobody),
                                   "--regid=" + std::to_string(gid), "--clear-groups",
                                   kTusk,              "--store",
                                   store};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv);
}

RunResult ProgramAs(gid_t gid, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"setpriv", "--reuid=" + std::to_string(kNobody), "--regid=" + std::to_string(gid),
                             "--clear-groups"});
  return RunProgram(argv);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Restores the umask the test changed.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }

 private:
  mode_t old_;
};

class StoreAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
    if (!HaveProgram("setpriv")) GTEST_SKIP() << "needs setpriv(1)";
    // Others may reach the store's parent; the store's own modes decide.
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
    store_ = tmp_.Sub("store");
    src_ = tmp_.Sub("src");
    fs::create_directories(src_ + "/dir");
    WriteFileOrDie(src_ + "/secret.txt", "the committed secret\n");
    ASSERT_EQ(::chmod((src_ + "/secret.txt").c_str(), 0600), 0);
    WriteFileOrDie(src_ + "/dir/b.txt", "bravo\n");
  }

  static void WriteFileOrDie(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  void Must(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r; }

  void InitAndImport(const std::vector<std::string>& init_flags) {
    std::vector<std::string> init = {"init"};
    init.insert(init.end(), init_flags.begin(), init_flags.end());
    Must(Tusk(store_, init));
    Must(Tusk(store_, {"dataset", "create", "d"}));
    Must(Tusk(store_, {"import", src_, "d@main", "-m", "first"}));
  }

  // The first pack file of the store.
  std::string APack() {
    for (const auto& e : fs::recursive_directory_iterator(store_ + "/packs"))
      if (e.path().extension() == ".pack") return e.path();
    return "";
  }

  TempDir tmp_;
  std::string store_, src_;
};

TEST_F(StoreAccessTest, AStoreIsPrivateToItsCreatorWhateverTheUmask) {
  UmaskGuard umask(0);
  InitAndImport({});
  EXPECT_EQ(ModeOf(store_), 0700u);
  std::string pack = APack();
  ASSERT_FALSE(pack.empty());
  // What the issue saw: another user grepping committed content.
  RunResult grep = ProgramAs(kNobody, {"grep", "-r", "the committed secret", store_});
  EXPECT_NE(grep.exit_code, 0) << grep;
  EXPECT_EQ(grep.out, "") << grep;
  RunResult cat = ProgramAs(kNobody, {"cat", pack});
  EXPECT_NE(cat.exit_code, 0) << "another user read a pack" << cat;
  // tusk itself names the owner instead of failing deep inside.
  RunResult ls = TuskAs(kNobody, store_, {"ls", "d@main"});
  EXPECT_EQ(ls.exit_code, 1) << ls;
  EXPECT_NE(ls.err.find("is private to root (uid 0)"), std::string::npos) << ls;
  RunResult import = TuskAs(kNobody, store_, {"import", src_, "d@main", "-m", "not mine"});
  EXPECT_EQ(import.exit_code, 1) << import;
  EXPECT_NE(import.err.find("root (uid 0)"), std::string::npos) << import;
}

TEST_F(StoreAccessTest, ASharedStoreServesItsGroupReadOnly) {
  UmaskGuard umask(077);  // the strictest umask must not hide the store from the group
  Must(Tusk(store_, {"init", "--shared"}));
  Must(Tusk(store_, {"dataset", "create", "d"}));
  Must(RunProgram({"chgrp", "-R", std::to_string(kNobody), store_}));
  Must(Tusk(store_, {"import", src_, "d@main", "-m", "first"}));
  Must(Tusk(store_, {"tag", "d@v1"}));
  EXPECT_EQ(ModeOf(store_), 02750u);
  EXPECT_EQ(ModeOf(store_ + "/index/lock.mdb"), 0660u);
  EXPECT_EQ(ModeOf(store_ + "/workspaces"), 0700u);
  std::string pack = APack();
  ASSERT_FALSE(pack.empty());
  EXPECT_EQ(ModeOf(fs::path(pack).parent_path()) & 0050, 0050u) << "a pack directory made by import";
  EXPECT_EQ(ModeOf(pack) & 0040, 0040u);

  // A member of the group reads...
  std::string out = tmp_.Sub("out");
  ASSERT_EQ(::mkdir(out.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(out.c_str(), 0777), 0);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"ls", "-r", "d@main"},
                                             {"cat", "d@main", "dir/b.txt"},
                                             {"log", "d"},
                                             {"diff", "d@v1", "d@main"},
                                             {"fsck"},
                                             {"stats"},
                                             {"dataset", "list"},
                                             {"branch", "d"},
                                             {"export", "d@v1", out + "/v1"}}) {
    RunResult r = TuskAs(kNobody, store_, args);
    EXPECT_EQ(r.exit_code, 0) << "tusk " << args[0] << " as a group member" << r;
  }
  RunResult cat = TuskAs(kNobody, store_, {"cat", "d@main", "secret.txt"});
  EXPECT_EQ(cat.out, "the committed secret\n") << cat;
  // ...and changes nothing.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"import", src_, "d@main", "-m", "member"}, {"branch", "d@b"}, {"dataset", "create", "e"}, {"gc"}}) {
    RunResult r = TuskAs(kNobody, store_, args);
    EXPECT_EQ(r.exit_code, 1) << "tusk " << args[0] << " as a group member" << r;
    EXPECT_NE(r.err.find("belongs to root (uid 0): only they can change it"), std::string::npos) << r;
  }
  // Someone outside the group is refused, naming the owner.
  RunResult outsider = TuskAs(12345, store_, {"ls", "d@main"});
  EXPECT_EQ(outsider.exit_code, 1) << outsider;
  EXPECT_NE(outsider.err.find("is private to root (uid 0)"), std::string::npos) << outsider;
  // The owner still writes, and the group still reads what it added.
  WriteFileOrDie(src_ + "/new.txt", "new\n");
  Must(Tusk(store_, {"import", src_, "d@main", "-m", "second"}));
  RunResult second = TuskAs(kNobody, store_, {"cat", "d@main", "new.txt"});
  EXPECT_EQ(second.exit_code, 0) << second;
  EXPECT_EQ(second.out, "new\n");
}

TEST_F(StoreAccessTest, AStoreNobodyMayWriteServesEveryReadOnlyCommand) {
  InitAndImport({});
  Must(Tusk(store_, {"tag", "d@v1"}));
  // The owner is uid 65534 here, so the permission bits apply to it (root
  // would pass them).
  Must(RunProgram({"chown", "-R", std::to_string(kNobody) + ":" + std::to_string(kNobody), store_}));
  Must(RunProgram({"chmod", "-R", "a-w", store_}));
  std::string out = tmp_.Sub("out");
  ASSERT_EQ(::mkdir(out.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(out.c_str(), 0777), 0);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"ls", "-r", "d@main"},
                                             {"cat", "d@main", "secret.txt"},
                                             {"log", "d"},
                                             {"show", "d@v1"},
                                             {"diff", "d@v1", "d@main"},
                                             {"fsck"},
                                             {"stats"},
                                             {"dataset", "list"},
                                             {"tag", "d"},
                                             {"export", "d@v1", out + "/v1"}}) {
    RunResult r = TuskAs(kNobody, store_, args);
    EXPECT_EQ(r.exit_code, 0) << "tusk " << args[0] << " on a read-only store" << r;
    EXPECT_EQ(r.err.find("Permission denied"), std::string::npos) << r;
  }
  RunResult import = TuskAs(kNobody, store_, {"import", src_, "d@main", "-m", "x"});
  EXPECT_EQ(import.exit_code, 1) << import;
  EXPECT_NE(import.err.find("is not writable"), std::string::npos) << import;
  EXPECT_NE(import.err.find("read-only commands"), std::string::npos) << import;
  Must(RunProgram({"chmod", "-R", "u+w", store_}));
}

TEST_F(StoreAccessTest, AStoreNobodyMayWriteCanBeMountedReadOnly) {
  InitAndImport({});
  Must(RunProgram({"chmod", "-R", "a-w", store_}));
  // Root passes permission bits, but not a read-only bind mount.
  std::string ro = tmp_.Sub("ro");
  ASSERT_EQ(::mkdir(ro.c_str(), 0755), 0);
  if (RunProgram({"mount", "--bind", "-o", "ro", store_, ro}).exit_code != 0 || !IsMountPoint(ro))
    GTEST_SKIP() << "read-only bind mounts are not available";
  struct Unbind {
    std::string path;
    ~Unbind() { ::umount2(path.c_str(), MNT_DETACH); }
  } unbind{ro};
  {
    MountGuard mounts;
    std::string mnt = tmp_.Sub("mnt");
    ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
    ASSERT_TRUE(mounts.StartForeground(ro, {"d@main"}, mnt, tmp_.Sub("mount.log")));
    std::ifstream in(mnt + "/dir/b.txt");
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(content, "bravo\n");
    RunResult ls = Tusk(ro, {"ls", "d@main"});
    EXPECT_EQ(ls.exit_code, 0) << ls;
  }
  Must(RunProgram({"chmod", "-R", "u+w", store_}));
}

}  // namespace
}  // namespace tusk::fstest
