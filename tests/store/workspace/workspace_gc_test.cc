// gc keeps what workspaces build on: the base commits of staged changes stay
// even when no branch or tag reaches them any more.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "store/importer.h"
#include "store/workspace/workspace.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;
using test_util::WriteFile;

TEST(WorkspaceGcTest, StagedChangesKeepTheirBaseThroughBranchDeletionAndGc) {
  TempDir tmp;
  std::string store = tmp.Sub("store");
  ASSERT_TRUE(Repository::Create(store, StoreConfig{}).ok());
  auto repo = Repository::Open(store);
  ASSERT_TRUE(repo.ok());
  ASSERT_TRUE((*repo)->CreateDataset("d").ok());
  std::string data = RandomBytes(3 << 20, 11);
  WriteFile(tmp.Sub("src/big.bin"), data);
  ImportOptions options;
  options.message = "first";
  ASSERT_TRUE((*repo)->CreateBranch("d", "exp", std::nullopt).ok());
  auto first = ImportDirectory(**repo, tmp.Sub("src"), "d", "exp", options);
  ASSERT_TRUE(first.ok() && first->commit);
  {
    auto ws = Workspace::Open(repo->get(), "d", "exp");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    auto f = (*ws)->Open("big.bin", O_RDWR);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(1 << 20, "patched").ok());  // copies up one chunk; the rest stays in the store
  }
  // Nothing but the workspace refers to the first commit any more.
  ASSERT_TRUE((*repo)->DeleteBranch("d", "exp").ok());
  auto bases = WorkspaceBases(store);
  ASSERT_TRUE(bases.ok());
  ASSERT_EQ(bases->size(), 1u);
  EXPECT_EQ((*bases)[0], *first->commit);
  auto gc = (*repo)->CollectGarbage(false, nullptr);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  // The staged file still reads whole: its untouched chunks were kept.
  ASSERT_TRUE((*repo)->CreateBranch("d", "exp", *first->commit).ok());
  auto ws = Workspace::Open(repo->get(), "d", "exp");
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  auto f = (*ws)->Open("big.bin", O_RDONLY);
  ASSERT_TRUE(f.ok());
  auto all = (*f)->Read(0, data.size());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::string want = data;
  want.replace(1 << 20, 7, "patched");
  EXPECT_TRUE(*all == want);
}

}  // namespace
}  // namespace tusk
