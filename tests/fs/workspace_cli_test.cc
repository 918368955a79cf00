// The CLI around branch workspaces (issue 9): deleting a branch or dataset
// whose workspace has staged changes or is held by a mount (defect 12),
// names with control characters in human output (defect 14), and fsck of
// workspace files (defect 14).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/workspace/workspace.h"
#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

namespace fs = std::filesystem;

class WorkspaceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    src_ = tmp_.Sub("src");
    fs::create_directories(src_);
    Write(src_ + "/a.txt", "alpha\n");
    Must(Tusk(store_, {"init"}));
    Must(Tusk(store_, {"dataset", "create", "d"}));
    Must(Tusk(store_, {"import", src_, "d@main", "-m", "first"}));
  }

  static void Write(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  static void Must(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r; }

  // Stages `path` in dataset@branch's workspace, as a mount would.
  void Stage(const std::string& dataset, const std::string& branch, const std::string& path) {
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    auto ws = Workspace::Open(repo->get(), dataset, branch);
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    auto f = (*ws)->Create(path, 0644, true, WsCaller{});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(0, "staged\n").ok());
  }

  // fsck's verdict: clean, or a problem whose text contains `part`.
  void ExpectFsck(bool clean, const std::string& part) {
    RunResult r = Tusk(store_, {"fsck"});
    if (clean) {
      EXPECT_EQ(r.exit_code, 0) << r;
      return;
    }
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.out.find(part), std::string::npos) << r;
  }

  std::string WsDir(const std::string& dataset, const std::string& branch) const {
    return store_ + "/workspaces/" + dataset + "/" + branch;
  }

  TempDir tmp_;
  std::string store_, src_;
};

TEST_F(WorkspaceCliTest, ABranchWithStagedChangesIsDeletedOnlyWhenForced) {
  Must(Tusk(store_, {"branch", "d@b"}));
  Stage("d", "b", "stale.txt");
  RunResult refused = Tusk(store_, {"branch", "-d", "d@b"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_NE(refused.err.find("cannot delete branch d@b: changes are staged in workspace d@b"), std::string::npos)
      << refused;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused;
  RunResult still = Tusk(store_, {"status", "d@b"});
  EXPECT_NE(still.out.find("A  stale.txt"), std::string::npos) << "a refusal changed something" << still;

  Must(Tusk(store_, {"branch", "-d", "--force", "d@b"}));
  EXPECT_FALSE(fs::exists(WsDir("d", "b"))) << "the workspace outlived its branch";
  // A new branch of that name starts clean, from its own commit.
  Must(Tusk(store_, {"branch", "d@b"}));
  RunResult status = Tusk(store_, {"status", "d@b"});
  EXPECT_EQ(status.exit_code, 0) << status;
  EXPECT_NE(status.out.find("nothing staged"), std::string::npos) << "the deleted branch's changes came back" << status;
}

TEST_F(WorkspaceCliTest, ABranchWithACleanWorkspaceLosesTheWorkspaceToo) {
  Must(Tusk(store_, {"branch", "d@b"}));
  Must(Tusk(store_, {"status", "d@b"}));  // a status makes no workspace ...
  EXPECT_FALSE(fs::exists(WsDir("d", "b")));
  {
    // ... a mount (or a commit) opens one, here without staging anything.
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    ASSERT_TRUE(Workspace::Open(repo->get(), "d", "b").ok());
  }
  ASSERT_TRUE(fs::exists(WsDir("d", "b")));
  Must(Tusk(store_, {"branch", "-d", "d@b"}));
  EXPECT_FALSE(fs::exists(WsDir("d", "b")));
}

TEST_F(WorkspaceCliTest, ADatasetWithStagedChangesIsDeletedOnlyWhenForced) {
  Must(Tusk(store_, {"branch", "d@b"}));
  Stage("d", "b", "stale.txt");
  RunResult refused = Tusk(store_, {"dataset", "delete", "d"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_NE(refused.err.find("changes are staged in workspace d@b"), std::string::npos) << refused;
  Must(Tusk(store_, {"ls", "d@main"}));
  Must(Tusk(store_, {"dataset", "delete", "--force", "d"}));
  EXPECT_FALSE(fs::exists(store_ + "/workspaces/d"));
  Must(Tusk(store_, {"dataset", "create", "d"}));
  Must(Tusk(store_, {"branch", "d@b"}));
  RunResult status = Tusk(store_, {"status", "d@b"});
  EXPECT_NE(status.out.find("nothing staged"), std::string::npos) << status;
}

TEST_F(WorkspaceCliTest, ABranchWithChangesStagedInAMountIsNotDeletedAndTheMountIsNamed) {
  std::string mnt = tmp_.Sub("mnt");
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  MountGuard mounts;
  ASSERT_TRUE(mounts.StartForeground(store_, {}, mnt, tmp_.Sub("mount.log")));
  Write(mnt + "/d/main/new.txt", "through the mount\n");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"branch", "-d", "--force", "d@main"}, {"dataset", "delete", "--force", "d"}}) {
    RunResult r = Tusk(store_, args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.err.find("changes are staged in workspace d@main, which is in use by the mount on " + mnt),
              std::string::npos)
        << r;
  }
  // A workspace the mount holds with nothing staged is no obstacle.
  Must(Tusk(store_, {"branch", "d@seen"}));
  struct stat st;
  for (int i = 0; i < 50 && ::stat((mnt + "/d/seen/a.txt").c_str(), &st) != 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(::stat((mnt + "/d/seen/a.txt").c_str(), &st), 0) << "the mount does not show the new branch";
  Must(Tusk(store_, {"branch", "-d", "d@seen"}));
  {
    std::ifstream in(mnt + "/d/main/new.txt");
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(content, "through the mount\n");
  }
  mounts.CleanupAll();
}

TEST_F(WorkspaceCliTest, HumanOutputEscapesControlCharactersAndJsonStaysExact) {
  Write(src_ + "/two\nlines", "x");
  Write(src_ + "/\x1b[31mred", "y");
  Write(src_ + "/back\\slash", "z");
  Write(src_ + "/caf\xc3\xa9", "w");
  Must(Tusk(store_, {"import", src_, "d@main", "-m", "subject\x1b]0;title\x07\nbody"}));
  RunResult ls = Tusk(store_, {"ls", "d@main"});
  ASSERT_EQ(ls.exit_code, 0) << ls;
  std::vector<std::string> lines;
  std::istringstream split(ls.out);
  for (std::string line; std::getline(split, line);) lines.push_back(line);
  std::set<std::string> names(lines.begin(), lines.end());
  EXPECT_EQ(names, (std::set<std::string>{"a.txt", "two\\x0alines", "\\x1b[31mred", "back\\x5cslash", "caf\xc3\xa9"}))
      << ls;
  RunResult json = Tusk(store_, {"ls", "--json", "d@main"});
  EXPECT_NE(json.out.find("\"two\\nlines\""), std::string::npos) << json;
  RunResult diff = Tusk(store_, {"diff", "d@main~1", "d@main"});
  EXPECT_EQ(diff.out.find('\x1b'), std::string::npos) << diff;
  EXPECT_NE(diff.out.find("two\\x0alines"), std::string::npos) << diff;
  RunResult log = Tusk(store_, {"log", "d", "-n", "1"});
  EXPECT_EQ(log.out.find('\x1b'), std::string::npos) << log;
  EXPECT_EQ(log.out.find('\x07'), std::string::npos) << log;
  EXPECT_NE(log.out.find("    body"), std::string::npos) << log;
  Must(Tusk(store_, {"status", "d@main"}));
  Stage("d", "main", "new\rname");
  RunResult status = Tusk(store_, {"status", "d@main"});
  EXPECT_NE(status.out.find("A  new\\x0dname"), std::string::npos) << status;
}

TEST_F(WorkspaceCliTest, FsckFindsADamagedWorkspaceBaseFile) {
  Stage("d", "main", "staged.txt");
  ExpectFsck(true, "");
  Write(WsDir("d", "main") + "/base", "not a commit id\n");
  ExpectFsck(false, "workspace d@main: base file");
  Write(WsDir("d", "main") + "/base", std::string(64, 'a') + "\n");
  ExpectFsck(false, "workspace d@main: base commit aaaa");
}

TEST_F(WorkspaceCliTest, FsckFindsADamagedSidecarAndAnUpperFileWhoseSidecarIsGone) {
  // A committed file written to in the workspace gets a sidecar.
  {
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok());
    auto ws = Workspace::Open(repo->get(), "d", "main");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    auto f = (*ws)->Open("a.txt", O_RDWR);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(0, "A").ok());
  }
  std::vector<std::string> sidecars;
  for (const auto& e : fs::directory_iterator(WsDir("d", "main") + "/meta")) sidecars.push_back(e.path());
  ASSERT_EQ(sidecars.size(), 1u);
  ExpectFsck(true, "");
  std::string good;
  {
    std::ifstream in(sidecars[0], std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Write(sidecars[0], "garbage");
  ExpectFsck(false, "not a valid sidecar");
  Write(sidecars[0], good.substr(0, good.size() - 1));
  ExpectFsck(false, "not a valid sidecar");
  fs::remove(sidecars[0]);
  ExpectFsck(false, "upper file a.txt names sidecar");
}

}  // namespace
}  // namespace tusk::fstest
