// Reader leases keep the commits a mount serves alive through gc.
#include "store/lease.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "store/importer.h"
#include "store/repository.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;
using test_util::WriteFile;

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Repository::Create(dir_.Sub("store"), StoreConfig()).ok());
    auto repo = Repository::Open(dir_.Sub("store"));
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    repo_ = std::move(repo).value();
    ASSERT_TRUE(repo_->CreateDataset("d").ok());
  }

  // Imports a one-file tree onto d@main and returns the commit.
  ObjectId Import(const std::string& content) {
    std::string src = dir_.Sub("src-" + std::to_string(++imports_));
    WriteFile(src + "/f.bin", content);
    ImportOptions options;
    options.message = "m";
    auto r = ImportDirectory(*repo_, src, "d", "main", options);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() && r->commit ? *r->commit : ObjectId();
  }

  // A commit that only branch 'side' reaches; deleting the branch orphans it.
  ObjectId OrphanableCommit() {
    Import("main content");
    EXPECT_TRUE(repo_->CreateBranch("d", "side", repo_->Resolve("d@main").value()).ok());
    std::string src = dir_.Sub("side");
    WriteFile(src + "/g.bin", test_util::RandomBytes(300000, 7));
    ImportOptions options;
    options.message = "side";
    auto r = ImportDirectory(*repo_, src, "d", "side", options);
    EXPECT_TRUE(r.ok() && r->commit);
    EXPECT_TRUE(repo_->DeleteBranch("d", "side").ok());
    return *r->commit;
  }

  TempDir dir_;
  std::unique_ptr<Repository> repo_;
  int imports_ = 0;
};

TEST_F(LeaseTest, GcKeepsACommitThatAHeldLeaseNames) {
  ObjectId orphan = OrphanableCommit();
  auto lease = ReaderLease::Acquire(dir_.Sub("store"));
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  ASSERT_TRUE((*lease)->Add(orphan).ok());

  ASSERT_TRUE(repo_->CollectGarbage(false, nullptr).ok());
  auto commit = repo_->ReadCommit(orphan);
  ASSERT_TRUE(commit.ok()) << commit.status().message();
  auto entries = ReadDirectory(*repo_, commit->root);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_TRUE(repo_->ReadObject((*entries)[0].chunks[0].id, ObjectType::kChunk).ok());
}

TEST_F(LeaseTest, GcCollectsTheCommitOnceTheLeaseIsReleased) {
  ObjectId orphan = OrphanableCommit();
  {
    auto lease = ReaderLease::Acquire(dir_.Sub("store"));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE((*lease)->Add(orphan).ok());
  }
  ASSERT_TRUE(repo_->CollectGarbage(false, nullptr).ok());
  EXPECT_FALSE(repo_->Contains(orphan).value());
}

TEST_F(LeaseTest, ALeaseFileNobodyHoldsIsStaleAndRemoved) {
  ObjectId orphan = OrphanableCommit();
  // What a crashed mount leaves behind: the file, but no lock on it.
  WriteFile(dir_.Sub("store/leases/999999.lease"), orphan.Hex() + "\n");
  auto leased = LeasedCommits(dir_.Sub("store"));
  ASSERT_TRUE(leased.ok());
  EXPECT_TRUE(leased->empty());
  EXPECT_NE(::access(dir_.Sub("store/leases/999999.lease").c_str(), F_OK), 0);
}

TEST_F(LeaseTest, AddingTheSameCommitTwiceWritesOneLine) {
  ObjectId head = Import("x");
  auto lease = ReaderLease::Acquire(dir_.Sub("store"));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE((*lease)->Add(head).ok());
  ASSERT_TRUE((*lease)->Add(head).ok());
  auto leased = LeasedCommits(dir_.Sub("store"));
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 1u);
  EXPECT_EQ((*leased)[0], head);
}

TEST_F(LeaseTest, UppercaseCommitPrefixesResolve) {
  ObjectId head = Import("y");
  std::string upper = head.Hex().substr(0, 8);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto resolved = repo_->Resolve("d@" + upper);
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_EQ(*resolved, head);
}

}  // namespace
}  // namespace tusk
