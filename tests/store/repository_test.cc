// Specification of the repository facade (store/repository.h) on a real store
// in a temporary directory: opening, datasets, refs, resolving, writing with
// compare-and-set, integrity checks, index growth, gc and fsck, and the
// importer's use of the stat cache.

#include "store/repository.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/exporter.h"
#include "store/importer.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

namespace fs = std::filesystem;
using ::tusk::test_util::RandomBytes;
using ::tusk::test_util::ReadFile;
using ::tusk::test_util::TempDir;
using ::tusk::test_util::WriteFile;
using Code = Status::Code;

using FileMap = std::map<std::string, std::string>;  // relative path -> content

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_dir_ = tmp_.Sub("store");
    TUSK_ASSERT_OK(Repository::Create(store_dir_, StoreConfig{}));
    OpenStore();
  }

  void TearDown() override {
    repo_.reset();
    ::unsetenv("TUSK_LMDB_MAP_SIZE");
  }

  void OpenStore() {
    repo_.reset();
    auto repo = Repository::Open(store_dir_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
  }

  // Writes `files` into a new source directory and returns its path.
  std::string MakeTree(const FileMap& files) {
    std::string dir = tmp_.Sub("src" + std::to_string(next_src_++));
    fs::create_directories(dir);
    for (const auto& [rel, content] : files) WriteFile(dir + "/" + rel, content);
    return dir;
  }

  Result<ImportResult> Import(const std::string& src, const std::string& branch = "main",
                              const std::string& dataset = "d") {
    ImportOptions options;
    options.message = "import " + src;
    options.author = "test";
    return ImportDirectory(*repo_, src, dataset, branch, options);
  }

  // Imports `files` and returns the new commit id.
  ObjectId Commit(const FileMap& files, const std::string& branch = "main", const std::string& dataset = "d") {
    auto result = Import(MakeTree(files), branch, dataset);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok() || !result->commit) {
      ADD_FAILURE() << "import made no commit";
      return ObjectId();
    }
    return *result->commit;
  }

  ObjectId RootOf(const ObjectId& commit) {
    auto c = repo_->ReadCommit(commit);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->root : ObjectId();
  }

  // Reads one file of a commit through the repository.
  Result<std::string> ReadPath(const ObjectId& commit, const std::string& path) {
    TUSK_ASSIGN_OR_RETURN(tusk::Commit c, repo_->ReadCommit(commit));
    TUSK_ASSIGN_OR_RETURN(TreeEntry e, LookupPath(*repo_, c.root, path));
    std::string out;
    TUSK_RETURN_IF_ERROR(ReadFileContent(*repo_, e, [&](std::string_view part) {
      out.append(part);
      return Status::Ok();
    }));
    return out;
  }

  void ExpectCommitHolds(const ObjectId& commit, const FileMap& files) {
    for (const auto& [rel, content] : files) {
      auto got = ReadPath(commit, rel);
      ASSERT_TRUE(got.ok()) << rel << ": " << got.status().ToString();
      EXPECT_TRUE(*got == content) << rel << " differs";
    }
  }

  std::vector<std::string> PackFiles() {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(store_dir_ + "/packs"))
      if (e.is_regular_file() && e.path().extension() == ".pack") out.push_back(e.path());
    return out;
  }

  static std::vector<std::string> Names(const std::vector<RefInfo>& refs) {
    std::vector<std::string> out;
    for (const auto& r : refs) out.push_back(r.name);
    return out;
  }

  TempDir tmp_;
  std::string store_dir_;
  std::unique_ptr<Repository> repo_;
  int next_src_ = 0;
};

// ---- creating and opening ----

TEST_F(RepositoryTest, OpenOfADirectoryThatIsNotAStoreIsNotFoundAndSuggestsInit) {
  std::string plain = tmp_.Sub("plain");
  fs::create_directories(plain);
  for (const std::string& dir : {plain, tmp_.Sub("does-not-exist")}) {
    auto repo = Repository::Open(dir);
    ASSERT_FALSE(repo.ok());
    EXPECT_EQ(repo.status().code(), Code::kNotFound);
    EXPECT_NE(repo.status().message().find("tusk init"), std::string::npos) << repo.status().message();
  }
}

TEST_F(RepositoryTest, OpenOfANewerStoreFormatIsUnsupported) {
  repo_.reset();
  WriteFile(store_dir_ + "/config", "tusk-store-format 99\n");
  auto repo = Repository::Open(store_dir_);
  EXPECT_EQ(repo.status().code(), Code::kUnsupported) << repo.status().ToString();
  EXPECT_NE(repo.status().message().find("99"), std::string::npos) << repo.status().message();
}

TEST_F(RepositoryTest, OpenOfAConfigWithAnUnknownSettingIsUnsupported) {
  repo_.reset();
  WriteFile(store_dir_ + "/config", StoreConfig{}.Encode() + "encryption 1\n");
  EXPECT_EQ(Repository::Open(store_dir_).status().code(), Code::kUnsupported);
}

TEST_F(RepositoryTest, OpenOfAConfigWithoutFormatVersionIsCorruption) {
  repo_.reset();
  WriteFile(store_dir_ + "/config", "chunk-min 65536\n");
  EXPECT_EQ(Repository::Open(store_dir_).status().code(), Code::kCorruption);
}

TEST_F(RepositoryTest, TheChunkFileCacheOfAnEarlierBuildIsRemovedWhenTheStoreIsOpenedForWriting) {
  // Remote data was cached as chunk files in cache/chunks before the cache
  // mirrored packs (cache/packs); nothing reads them any more.
  std::string old_cache = store_dir_ + "/cache/chunks/ab";
  std::filesystem::create_directories(old_cache);
  test_util::WriteFile(old_cache + "/" + std::string(64, 'a'), "chunk and crc");
  repo_.reset();
  ASSERT_TRUE(Repository::Open(store_dir_, StoreAccess::kReadOnly).ok());
  EXPECT_TRUE(std::filesystem::exists(old_cache)) << "a read-only open writes nothing";
  OpenStore();
  EXPECT_FALSE(std::filesystem::exists(store_dir_ + "/cache/chunks"));
}

TEST_F(RepositoryTest, CreateOnAnExistingStoreIsAlreadyExists) {
  EXPECT_EQ(Repository::Create(store_dir_, StoreConfig{}).code(), Code::kAlreadyExists);
}

TEST_F(RepositoryTest, CreateInANonEmptyDirectoryIsAlreadyExists) {
  std::string dir = tmp_.Sub("busy");
  WriteFile(dir + "/somefile", "x");
  EXPECT_EQ(Repository::Create(dir, StoreConfig{}).code(), Code::kAlreadyExists);
  EXPECT_FALSE(fs::exists(dir + "/config"));
}

TEST_F(RepositoryTest, CreateInAnEmptyDirectoryWorks) {
  std::string dir = tmp_.Sub("empty");
  fs::create_directories(dir);
  TUSK_EXPECT_OK(Repository::Create(dir, StoreConfig{}));
}

TEST_F(RepositoryTest, CreateRejectsAnInvalidConfig) {
  StoreConfig bad;
  bad.chunker.avg_size = 300000;
  EXPECT_EQ(Repository::Create(tmp_.Sub("bad1"), bad).code(), Code::kInvalidArgument);
  StoreConfig bad_level;
  bad_level.compression_level = 20;
  EXPECT_EQ(Repository::Create(tmp_.Sub("bad2"), bad_level).code(), Code::kInvalidArgument);
}

TEST_F(RepositoryTest, ConfigIsKeptAcrossOpen) {
  StoreConfig config;
  config.chunker = {1024, 4096, 16384};
  config.compression_level = 7;
  std::string dir = tmp_.Sub("custom");
  TUSK_ASSERT_OK(Repository::Create(dir, config));
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Repository> repo, Repository::Open(dir));
  EXPECT_EQ(repo->config().chunker.min_size, 1024u);
  EXPECT_EQ(repo->config().chunker.avg_size, 4096u);
  EXPECT_EQ(repo->config().chunker.max_size, 16384u);
  EXPECT_EQ(repo->config().compression_level, 7);
}

// ---- datasets ----

TEST_F(RepositoryTest, DatasetsCanBeCreatedListedAndDeleted) {
  TUSK_ASSERT_OK(repo_->CreateDataset("images"));
  TUSK_ASSERT_OK(repo_->CreateDataset("labels"));
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<DatasetInfo> list, repo_->ListDatasets());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "images");
  EXPECT_EQ(list[1].name, "labels");
  EXPECT_EQ(list[0].branch_count, 1u) << "a new dataset has its default branch";
  EXPECT_EQ(list[0].tag_count, 0u);
  EXPECT_GT(list[0].created_sec, 0);

  TUSK_ASSERT_OK(repo_->DeleteDataset("images"));
  TUSK_ASSERT_OK_AND_ASSIGN(list, repo_->ListDatasets());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "labels");
  EXPECT_EQ(repo_->CheckDataset("images").code(), Code::kNotFound);
}

TEST_F(RepositoryTest, NewDatasetHasAnEmptyMainBranch) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<ObjectId> head, repo_->GetBranch("d", "main"));
  EXPECT_FALSE(head.has_value());
  EXPECT_EQ(repo_->Resolve("d@main").status().code(), Code::kNotFound);
}

TEST_F(RepositoryTest, DuplicateDatasetIsAlreadyExists) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  EXPECT_EQ(repo_->CreateDataset("d").code(), Code::kAlreadyExists);
}

TEST_F(RepositoryTest, InvalidDatasetNameIsInvalidArgument) {
  EXPECT_EQ(repo_->CreateDataset("a/b").code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->CreateDataset("").code(), Code::kInvalidArgument);
}

TEST_F(RepositoryTest, DeletingAnUnknownDatasetIsNotFound) {
  EXPECT_EQ(repo_->DeleteDataset("nope").code(), Code::kNotFound);
}

TEST_F(RepositoryTest, DeletingADatasetLeavesOthersWithSimilarNamesAlone) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  TUSK_ASSERT_OK(repo_->CreateDataset("d2"));
  ObjectId c = Commit({{"f", "content"}}, "main", "d2");
  TUSK_ASSERT_OK(repo_->DeleteDataset("d"));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId resolved, repo_->Resolve("d2@main"));
  EXPECT_EQ(resolved, c);
}

TEST_F(RepositoryTest, DatasetCanBeRecreatedEmptyAfterDeletion) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  Commit({{"f", "content"}});
  TUSK_ASSERT_OK(repo_->DeleteDataset("d"));
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<ObjectId> head, repo_->GetBranch("d", "main"));
  EXPECT_FALSE(head.has_value()) << "the old branch head must not come back";
}

// ---- branches and tags ----

TEST_F(RepositoryTest, BranchesAndTagsCanBeCreatedListedAndDeleted) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId c = Commit({{"f", "one"}});
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "dev", c));
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "empty", std::nullopt));
  TUSK_ASSERT_OK(repo_->CreateTag("d", "v1", c));

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<RefInfo> branches, repo_->ListBranches("d"));
  EXPECT_EQ(Names(branches), (std::vector<std::string>{"dev", "empty", "main"}));
  EXPECT_EQ(branches[0].commit, c);
  EXPECT_FALSE(branches[1].commit.has_value());
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<RefInfo> tags, repo_->ListTags("d"));
  EXPECT_EQ(Names(tags), (std::vector<std::string>{"v1"}));
  EXPECT_EQ(tags[0].commit, c);
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<DatasetInfo> datasets, repo_->ListDatasets());
  EXPECT_EQ(datasets[0].branch_count, 3u);
  EXPECT_EQ(datasets[0].tag_count, 1u);

  TUSK_ASSERT_OK(repo_->DeleteBranch("d", "dev"));
  TUSK_ASSERT_OK(repo_->DeleteTag("d", "v1"));
  TUSK_ASSERT_OK_AND_ASSIGN(branches, repo_->ListBranches("d"));
  EXPECT_EQ(Names(branches), (std::vector<std::string>{"empty", "main"}));
  TUSK_ASSERT_OK_AND_ASSIGN(tags, repo_->ListTags("d"));
  EXPECT_TRUE(tags.empty());
}

TEST_F(RepositoryTest, BranchAndTagNamesShareOneNamespace) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId c = Commit({{"f", "one"}});
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "dev", c));
  TUSK_ASSERT_OK(repo_->CreateTag("d", "v1", c));
  EXPECT_EQ(repo_->CreateTag("d", "dev", c).code(), Code::kAlreadyExists);
  EXPECT_EQ(repo_->CreateBranch("d", "v1", c).code(), Code::kAlreadyExists);
  EXPECT_EQ(repo_->CreateBranch("d", "dev", c).code(), Code::kAlreadyExists);
  EXPECT_EQ(repo_->CreateTag("d", "v1", c).code(), Code::kAlreadyExists);
  EXPECT_EQ(repo_->CreateTag("d", "main", c).code(), Code::kAlreadyExists);
}

TEST_F(RepositoryTest, DeletingAnUnknownRefIsNotFound) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  EXPECT_EQ(repo_->DeleteBranch("d", "nope").code(), Code::kNotFound);
  EXPECT_EQ(repo_->DeleteTag("d", "nope").code(), Code::kNotFound);
  EXPECT_EQ(repo_->DeleteTag("d", "main").code(), Code::kNotFound) << "main is a branch, not a tag";
}

TEST_F(RepositoryTest, RefsOfAnUnknownDatasetAreNotFound) {
  EXPECT_EQ(repo_->ListBranches("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->CreateBranch("nope", "b", std::nullopt).code(), Code::kNotFound);
  EXPECT_EQ(repo_->GetBranch("nope", "main").status().code(), Code::kNotFound);
}

TEST_F(RepositoryTest, RefCannotPointAtACommitOfAnotherDataset) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  TUSK_ASSERT_OK(repo_->CreateDataset("other"));
  ObjectId c = Commit({{"f", "one"}}, "main", "other");
  EXPECT_EQ(repo_->CreateTag("d", "v1", c).code(), Code::kNotFound);
  EXPECT_EQ(repo_->CreateBranch("d", "b", c).code(), Code::kNotFound);
}

TEST_F(RepositoryTest, InvalidRefNamesAreRejected) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  EXPECT_EQ(repo_->CreateBranch("d", "a~b", std::nullopt).code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->CreateBranch("d", "-x", std::nullopt).code(), Code::kInvalidArgument);
}

// ---- resolving ----

class ResolveTest : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
    TUSK_ASSERT_OK(repo_->CreateDataset("d"));
    c1_ = Commit({{"f", "one"}});
    c2_ = Commit({{"f", "two"}});
    c3_ = Commit({{"f", "three"}});
    TUSK_ASSERT_OK(repo_->CreateTag("d", "v1", c1_));
  }
  ObjectId c1_, c2_, c3_;
};

TEST_F(ResolveTest, BranchNamesItsHead) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId id, repo_->Resolve("d@main"));
  EXPECT_EQ(id, c3_);
}

TEST_F(ResolveTest, BareDatasetNamesTheDefaultBranch) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId id, repo_->Resolve("d"));
  EXPECT_EQ(id, c3_);
  EXPECT_EQ(repo_->Resolve("d", /*allow_bare_dataset=*/false).status().code(), Code::kInvalidArgument);
}

TEST_F(ResolveTest, TagNamesItsCommit) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId id, repo_->Resolve("d@v1"));
  EXPECT_EQ(id, c1_);
}

TEST_F(ResolveTest, UniqueCommitPrefixNamesTheCommit) {
  for (size_t len : {4, 7, 8, 12, 64}) {
    auto id = repo_->Resolve("d@" + c2_.Hex().substr(0, len));
    // Very short prefixes may legitimately be ambiguous among three commits.
    if (len < 8 && !id.ok() && id.status().code() == Code::kInvalidArgument) continue;
    ASSERT_TRUE(id.ok()) << "prefix length " << len << ": " << id.status().ToString();
    EXPECT_EQ(*id, c2_) << "prefix length " << len;
  }
}

TEST_F(ResolveTest, PrefixOfNoCommitIsNotFound) {
  std::string prefix = c1_.Hex().substr(0, 8);
  prefix[7] = prefix[7] == '0' ? '1' : '0';
  if (c2_.Hex().starts_with(prefix) || c3_.Hex().starts_with(prefix)) GTEST_SKIP() << "improbable id collision";
  EXPECT_EQ(repo_->Resolve("d@" + prefix).status().code(), Code::kNotFound);
}

TEST_F(ResolveTest, CommitPrefixOfAnotherDatasetIsNotFound) {
  TUSK_ASSERT_OK(repo_->CreateDataset("other"));
  ObjectId foreign = Commit({{"g", "x"}}, "main", "other");
  EXPECT_EQ(repo_->Resolve("d@" + foreign.Hex().substr(0, 12)).status().code(), Code::kNotFound);
}

TEST_F(ResolveTest, TildeWalksFirstParents) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId one_back, repo_->Resolve("d@main~1"));
  EXPECT_EQ(one_back, c2_);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId bare_tilde, repo_->Resolve("d@main~"));
  EXPECT_EQ(bare_tilde, c2_);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId two_back, repo_->Resolve("d@main~2"));
  EXPECT_EQ(two_back, c1_);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId added_up, repo_->Resolve("d@main~1~1"));
  EXPECT_EQ(added_up, c1_);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId from_prefix, repo_->Resolve("d@" + c2_.Hex().substr(0, 12) + "~1"));
  EXPECT_EQ(from_prefix, c1_);
}

TEST_F(ResolveTest, TooManyTildesIsNotFound) {
  EXPECT_EQ(repo_->Resolve("d@main~3").status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->Resolve("d@v1~1").status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->Resolve("d@main~1000").status().code(), Code::kNotFound);
}

TEST_F(ResolveTest, UnknownRefIsNotFound) {
  auto id = repo_->Resolve("d@nosuchbranch");
  EXPECT_EQ(id.status().code(), Code::kNotFound);
  EXPECT_NE(id.status().message().find("nosuchbranch"), std::string::npos) << id.status().message();
  EXPECT_EQ(repo_->Resolve("nosuchdataset@main").status().code(), Code::kNotFound);
}

TEST_F(ResolveTest, BadRefSyntaxIsInvalidArgument) {
  EXPECT_EQ(repo_->Resolve("d@main~x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->Resolve("d@").status().code(), Code::kInvalidArgument);
}

TEST_F(ResolveTest, CommitsRecordTheirParentsAndDataset) {
  TUSK_ASSERT_OK_AND_ASSIGN(tusk::Commit c, repo_->ReadCommit(c2_));
  EXPECT_EQ(c.dataset, "d");
  EXPECT_EQ(c.parents, std::vector<ObjectId>{c1_});
  EXPECT_EQ(c.file_count, 1u);
  EXPECT_EQ(c.total_bytes, 3u);
  EXPECT_EQ(c.author, "test");
  ExpectCommitHolds(c1_, {{"f", "one"}});
  ExpectCommitHolds(c3_, {{"f", "three"}});
}

// ---- writing ----

tusk::Commit MakeCommit(const ObjectId& root, const ObjectId& parent, const std::string& message) {
  tusk::Commit c;
  c.dataset = "d";
  c.root = root;
  c.parents = {parent};
  c.author = "test";
  c.time_sec = 1700000000;
  c.message = message;
  return c;
}

TEST_F(RepositoryTest, CompareAndSetLetsOnlyTheFirstOfTwoRacingCommitsIn) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId base = Commit({{"f", "base"}});
  ObjectId root = RootOf(base);
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> first, repo_->BeginWrite());
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> second, repo_->BeginWrite());

  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId winner, first->CommitToBranch(MakeCommit(root, base, "first"), "main", base));
  auto loser = second->CommitToBranch(MakeCommit(root, base, "second"), "main", base);
  EXPECT_EQ(loser.status().code(), Code::kConflict) << loser.status().ToString();

  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<ObjectId> head, repo_->GetBranch("d", "main"));
  EXPECT_EQ(head, winner);
  TUSK_ASSERT_OK_AND_ASSIGN(tusk::Commit c, repo_->ReadCommit(winner));
  EXPECT_EQ(c.message, "first");
}

TEST_F(RepositoryTest, CompareAndSetOnAnEmptyBranchExpectsNoHead) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId base = Commit({{"f", "base"}});
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "fresh", std::nullopt));
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> session, repo_->BeginWrite());
  auto wrong = session->CommitToBranch(MakeCommit(RootOf(base), base, "x"), "fresh", base);
  EXPECT_EQ(wrong.status().code(), Code::kConflict);
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> again, repo_->BeginWrite());
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId id, again->CommitToBranch(MakeCommit(RootOf(base), base, "x"), "fresh",
                                                               std::nullopt));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId resolved, repo_->Resolve("d@fresh"));
  EXPECT_EQ(resolved, id);
}

TEST_F(RepositoryTest, CommitToADeletedBranchIsNotFound) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId base = Commit({{"f", "base"}});
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "gone", base));
  TUSK_ASSERT_OK(repo_->DeleteBranch("d", "gone"));
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> session, repo_->BeginWrite());
  auto result = session->CommitToBranch(MakeCommit(RootOf(base), base, "x"), "gone", base);
  EXPECT_EQ(result.status().code(), Code::kNotFound);
}

TEST_F(RepositoryTest, PutChunkOfTheSameIdTwiceStoresItOnce) {
  std::string data = RandomBytes(5000, 1);
  ObjectId id = Sha256::Of(data.data(), data.size());
  {
    TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> session, repo_->BeginWrite());
    TUSK_ASSERT_OK_AND_ASSIGN(bool stored, session->PutChunk(id, data));
    EXPECT_TRUE(stored);
    TUSK_ASSERT_OK_AND_ASSIGN(stored, session->PutChunk(id, data));
    EXPECT_FALSE(stored);
    EXPECT_EQ(session->new_objects(), 1u);
    TUSK_ASSERT_OK(session->Flush());
  }
  TUSK_ASSERT_OK_AND_ASSIGN(bool present, repo_->Contains(id));
  EXPECT_TRUE(present);
  TUSK_ASSERT_OK_AND_ASSIGN(std::string back, repo_->ReadObject(id, ObjectType::kChunk));
  EXPECT_TRUE(back == data);

  // A later session finds it in the index.
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> later, repo_->BeginWrite());
  TUSK_ASSERT_OK_AND_ASSIGN(bool stored_again, later->PutChunk(id, data));
  EXPECT_FALSE(stored_again);
  EXPECT_EQ(later->new_objects(), 0u);
}

TEST_F(RepositoryTest, WriteObjectDeduplicatesTrees) {
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> session, repo_->BeginWrite());
  std::string page = EncodeTreePage(TreePage{});
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId a, session->WriteObject(ObjectType::kTree, page));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId b, session->WriteObject(ObjectType::kTree, page));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, HashObject(ObjectType::kTree, page));
  EXPECT_EQ(session->new_objects(), 1u);
  TUSK_ASSERT_OK(session->Flush());
  TUSK_ASSERT_OK_AND_ASSIGN(std::string back, repo_->ReadObject(a, ObjectType::kTree));
  EXPECT_EQ(back, page);
}

TEST_F(RepositoryTest, UnflushedObjectsAreNotVisible) {
  std::string data = RandomBytes(100, 2);
  ObjectId id = Sha256::Of(data.data(), data.size());
  {
    TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> session, repo_->BeginWrite());
    TUSK_ASSERT_OK_AND_ASSIGN(bool stored, session->PutChunk(id, data));
    EXPECT_TRUE(stored);
  }  // dropped without Flush or commit
  TUSK_ASSERT_OK_AND_ASSIGN(bool present, repo_->Contains(id));
  EXPECT_FALSE(present);
}

// ---- reading and integrity ----

TEST_F(RepositoryTest, ReadObjectOfAnUnknownIdIsAnError) {
  auto got = repo_->ReadObject(Sha256::Of("nothing", 7), ObjectType::kChunk);
  EXPECT_FALSE(got.ok());
}

TEST_F(RepositoryTest, ReadObjectWithTheWrongTypeIsCorruption) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId c = Commit({{"f", "x"}});
  EXPECT_EQ(repo_->ReadObject(c, ObjectType::kTree).status().code(), Code::kCorruption);
}

TEST_F(RepositoryTest, ReadObjectDetectsAFlippedByteInAPack) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string blob = RandomBytes(200000, 3);  // incompressible: stored raw
  ObjectId commit = Commit({{"blob", blob}, {"other", "intact"}});
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry entry, LookupPath(*repo_, RootOf(commit), "blob"));
  ASSERT_FALSE(entry.chunks.empty());
  ObjectId chunk = entry.chunks[0].id;
  TUSK_ASSERT_OK(repo_->ReadObject(chunk, ObjectType::kChunk).status());

  // Find the chunk's payload in the pack files by its bytes and damage it.
  std::string needle = blob.substr(1000, 64);
  bool flipped = false;
  for (const auto& path : PackFiles()) {
    std::string content = ReadFile(path);
    size_t at = content.find(needle);
    if (at == std::string::npos) continue;
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c = static_cast<char>(content[at + 10] ^ 0x01);
    ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(at + 10)), 1);
    ::close(fd);
    flipped = true;
  }
  ASSERT_TRUE(flipped) << "chunk payload not found in any pack";

  auto got = repo_->ReadObject(chunk, ObjectType::kChunk);
  EXPECT_EQ(got.status().code(), Code::kCorruption) << got.status().ToString();
  EXPECT_EQ(ReadPath(commit, "blob").status().code(), Code::kCorruption);
  auto other = ReadPath(commit, "other");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(*other, "intact");

  // fsck names the damaged chunk and the file it breaks.
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport report, repo_->Check(nullptr));
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].object.find(chunk.Hex()), std::string::npos) << report.problems[0].object;
  bool names_file = false;
  for (const auto& a : report.problems[0].affected) names_file |= a.find("blob") != std::string::npos;
  EXPECT_TRUE(names_file);

  // gc never drops reachable data, damaged or not.
  auto gc = repo_->CollectGarbage(false, nullptr);
  TUSK_ASSERT_OK_AND_ASSIGN(bool still_indexed, repo_->Contains(chunk));
  EXPECT_TRUE(still_indexed) << (gc.ok() ? "gc ran" : gc.status().ToString());
}

TEST_F(RepositoryTest, IndexGrowsPastATinyInitialMap) {
  ASSERT_EQ(::setenv("TUSK_LMDB_MAP_SIZE", "65536", 1), 0);
  repo_.reset();
  store_dir_ = tmp_.Sub("tiny-map-store");
  TUSK_ASSERT_OK(Repository::Create(store_dir_, StoreConfig{}));
  OpenStore();
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));

  FileMap files;
  for (int dir = 0; dir < 30; dir++)
    for (int f = 0; f < 100; f++)
      files["dir" + std::to_string(dir) + "/file" + std::to_string(f)] =
          "content of " + std::to_string(dir) + "/" + std::to_string(f) + "\n";
  auto result = Import(MakeTree(files));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->commit.has_value());
  EXPECT_EQ(result->files, files.size());

  struct stat st;
  ASSERT_EQ(::stat((store_dir_ + "/index/data.mdb").c_str(), &st), 0);
  EXPECT_GT(st.st_size, 65536) << "the index should have outgrown its initial map";

  ExpectCommitHolds(*result->commit, files);
  // And after reopening, with the same tiny initial map size.
  OpenStore();
  ExpectCommitHolds(*result->commit, files);
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport report, repo_->Check(nullptr));
  EXPECT_TRUE(report.problems.empty());
}

// ---- import, export and the stat cache ----

TEST_F(RepositoryTest, ImportedTreeExportsIdentically) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  FileMap files = {{"a.txt", "alpha"},
                   {"empty", ""},
                   {"nested/deeper/b.bin", RandomBytes(3 << 20, 4)},
                   {"nested/c.txt", std::string(100000, 'c')}};
  std::string src = MakeTree(files);
  ASSERT_EQ(::symlink("nested/c.txt", (src + "/link").c_str()), 0);
  fs::create_directories(src + "/empty-dir");
  auto result = Import(src);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->files, 4u);
  EXPECT_EQ(result->files_read, 4u);

  std::string dest = tmp_.Sub("export");
  TUSK_ASSERT_OK_AND_ASSIGN(ExportStats stats, ExportTree(*repo_, RootOf(*result->commit), dest, nullptr));
  EXPECT_EQ(stats.files, 4u);
  EXPECT_EQ(stats.symlinks, 1u);
  for (const auto& [rel, content] : files) EXPECT_TRUE(ReadFile(dest + "/" + rel) == content) << rel;
  EXPECT_EQ(fs::read_symlink(dest + "/link"), "nested/c.txt");
  EXPECT_TRUE(fs::is_directory(dest + "/empty-dir"));
}

TEST_F(RepositoryTest, SparseFileKeepsItsHolesAsHoles) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string src = MakeTree({});
  std::string path = src + "/sparse";
  std::string data = RandomBytes(64 * 1024, 12);
  {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 8 << 20), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::ftruncate(fd, 16 << 20), 0);
    ::close(fd);
  }
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  if (static_cast<uint64_t>(st.st_blocks) * 512 >= static_cast<uint64_t>(st.st_size))
    GTEST_SKIP() << "this filesystem does not keep files sparse";
  auto result = Import(src);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry e, LookupPath(*repo_, RootOf(*result->commit), "sparse"));
  EXPECT_EQ(e.size, 16u << 20);
  uint64_t hole_bytes = 0;
  for (const auto& c : e.chunks) hole_bytes += c.IsHole() ? c.length : 0;
  EXPECT_GE(hole_bytes, (16u << 20) - data.size() - (1 << 20)) << "holes are not stored as data";

  std::string expected(16 << 20, '\0');
  expected.replace(8 << 20, data.size(), data);
  TUSK_ASSERT_OK_AND_ASSIGN(std::string content, ReadPath(*result->commit, "sparse"));
  EXPECT_TRUE(content == expected);
  std::string dest = tmp_.Sub("export");
  TUSK_ASSERT_OK(ExportTree(*repo_, RootOf(*result->commit), dest, nullptr).status());
  EXPECT_TRUE(ReadFile(dest + "/sparse") == expected);
  ASSERT_EQ(::stat((dest + "/sparse").c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{4} << 20) << "the export is sparse too";
}

TEST_F(RepositoryTest, ImportRecordsFifosSocketsAndDevicesAsSpecialEntries) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string src = MakeTree({{"regular", "x"}});
  ASSERT_EQ(::mkfifo((src + "/fifo").c_str(), 0640), 0);
  ASSERT_EQ(::mknod((src + "/socket").c_str(), S_IFSOCK | 0600, 0), 0);
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::mknod((src + "/null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
    ASSERT_EQ(::mknod((src + "/disk").c_str(), S_IFBLK | 0600, makedev(259, 70000)), 0);
    ASSERT_EQ(::chmod((src + "/null").c_str(), 0666), 0);  // past the umask
    ASSERT_EQ(::chmod((src + "/disk").c_str(), 0660), 0);
  }
  std::vector<std::string> warnings;
  ImportOptions options;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  auto result = ImportDirectory(*repo_, src, "d", "main", options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->specials, root ? 4u : 2u);
  EXPECT_EQ(result->files, 1u);
  EXPECT_TRUE(warnings.empty()) << warnings[0];
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry fifo, LookupPath(*repo_, RootOf(*result->commit), "fifo"));
  EXPECT_EQ(fifo.kind, EntryKind::kSpecial);
  EXPECT_EQ(fifo.mode, S_IFIFO | 0640u);
  EXPECT_EQ(fifo.rdev, 0u);
  EXPECT_EQ(fifo.size, 0u);
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry socket, LookupPath(*repo_, RootOf(*result->commit), "socket"));
  EXPECT_EQ(socket.mode, S_IFSOCK | 0600u);
  if (root) {
    TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry null, LookupPath(*repo_, RootOf(*result->commit), "null"));
    EXPECT_EQ(null.mode, S_IFCHR | 0666u);
    EXPECT_EQ(null.rdev, makedev(1, 3));
    TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry disk, LookupPath(*repo_, RootOf(*result->commit), "disk"));
    EXPECT_EQ(disk.mode, S_IFBLK | 0660u);
    EXPECT_EQ(disk.rdev, makedev(259, 70000));
  }
  // Unchanged, a second import commits nothing.
  auto again = ImportDirectory(*repo_, src, "d", "main", options);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->commit.has_value());
}

TEST_F(RepositoryTest, ImportRecordsUserXattrsAndWarnsOnceAboutOtherNamespaces) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string src = MakeTree({{"a", "x"}, {"dir/b", "y"}});
  ASSERT_EQ(::setxattr((src + "/a").c_str(), "user.z", "last", 4, 0), 0) << std::strerror(errno);
  ASSERT_EQ(::setxattr((src + "/a").c_str(), "user.a", "", 0, 0), 0);
  ASSERT_EQ(::setxattr((src + "/a").c_str(), "user.tusk.commit", "copied out of a mount", 21, 0), 0);
  ASSERT_EQ(::setxattr((src + "/dir").c_str(), "user.dir", "d", 1, 0), 0);
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::setxattr((src + "/dir/b").c_str(), "trusted.x", "t", 1, 0), 0) << std::strerror(errno);
    ASSERT_EQ(::setxattr((src + "/a").c_str(), "trusted.y", "t", 1, 0), 0) << std::strerror(errno);
  }
  std::vector<std::string> warnings;
  ImportOptions options;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  auto result = ImportDirectory(*repo_, src, "d", "main", options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry a, LookupPath(*repo_, RootOf(*result->commit), "a"));
  EXPECT_EQ(a.xattrs, (std::vector<std::pair<std::string, std::string>>{{"user.a", ""}, {"user.z", "last"}}))
      << "sorted; user.tusk.* is tusk's own and dropped";
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry dir, LookupPath(*repo_, RootOf(*result->commit), "dir"));
  EXPECT_EQ(dir.xattrs, (std::vector<std::pair<std::string, std::string>>{{"user.dir", "d"}}));
  if (root) {
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("2 entries"), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[0].find("user.*"), std::string::npos) << warnings[0];
  } else {
    EXPECT_TRUE(warnings.empty());
  }
  // An xattr change alone is a change.
  ASSERT_EQ(::setxattr((src + "/dir/b").c_str(), "user.new", "n", 1, 0), 0);
  auto second = ImportDirectory(*repo_, src, "d", "main", options);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(second->commit.has_value());
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry b, LookupPath(*repo_, RootOf(*second->commit), "dir/b"));
  EXPECT_EQ(b.xattrs, (std::vector<std::pair<std::string, std::string>>{{"user.new", "n"}}));
}

TEST_F(RepositoryTest, HardLinksFormOneGroupAndAreReadOnce) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string content = RandomBytes(2 << 20, 21);
  std::string src = MakeTree({{"a/first", content}, {"lonely", "one name here"}, {"other", "two"}});
  ASSERT_EQ(::link((src + "/a/first").c_str(), (src + "/second").c_str()), 0);
  ASSERT_EQ(::link((src + "/a/first").c_str(), (src + "/a/third").c_str()), 0);
  ASSERT_EQ(::link((src + "/other").c_str(), (src + "/other2").c_str()), 0);
  // A link outside the imported tree makes no group.
  std::string outside = tmp_.Sub("outside-link");
  ASSERT_EQ(::link((src + "/lonely").c_str(), outside.c_str()), 0);
  ASSERT_EQ(::symlink("x", (src + "/sym").c_str()), 0);
  ASSERT_EQ(::link((src + "/sym").c_str(), (src + "/sym2").c_str()), 0);  // links the symlink itself
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));  // so the stat cache trusts the files

  auto first = Import(src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->files, 6u);
  EXPECT_EQ(first->files_read, 3u) << "each inode once";
  EXPECT_EQ(first->bytes_read, content.size() + 13 + 3);
  EXPECT_EQ(first->link_groups, 3u);
  ObjectId root = RootOf(*first->commit);
  std::map<std::string, TreeEntry> e;
  for (std::string p : {"a/first", "a/third", "second", "lonely", "other", "other2", "sym", "sym2"}) {
    TUSK_ASSERT_OK_AND_ASSIGN(e[p], LookupPath(*repo_, root, p));
  }
  ASSERT_TRUE(e["a/first"].link_group.has_value());
  EXPECT_EQ(e["a/first"].link_group, e["a/third"].link_group);
  EXPECT_EQ(e["a/first"].link_group, e["second"].link_group);
  EXPECT_EQ(e["a/first"].chunks, e["second"].chunks);
  EXPECT_EQ(e["other"].link_group, e["other2"].link_group);
  EXPECT_NE(e["other"].link_group, e["a/first"].link_group);
  EXPECT_EQ(e["sym"].link_group, e["sym2"].link_group);
  EXPECT_EQ(e["sym2"].kind, EntryKind::kSymlink);
  EXPECT_FALSE(e["lonely"].link_group.has_value());
  // Numbered in tree order from 1: deterministic, so an unchanged tree is no change.
  EXPECT_EQ(e["a/first"].link_group, std::optional<uint64_t>(1));

  auto second = Import(src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->commit.has_value());
  EXPECT_EQ(second->files_read, 0u) << "the stat cache knows every name";

  // The group broken up: the former link is its own file now.
  ASSERT_EQ(::unlink((src + "/second").c_str()), 0);
  WriteFile(src + "/second", "replaced");
  auto third = Import(src);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  ASSERT_TRUE(third->commit.has_value());
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry replaced, LookupPath(*repo_, RootOf(*third->commit), "second"));
  EXPECT_FALSE(replaced.link_group.has_value());
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry still, LookupPath(*repo_, RootOf(*third->commit), "a/third"));
  EXPECT_TRUE(still.link_group.has_value());
}

TEST_F(RepositoryTest, ImportOfANameThatIsNotUtf8FailsAndCommitsNothing) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string src = MakeTree({{"good", "x"}});
  WriteFile(src + "/bad\xff", "y");
  auto result = Import(src);
  EXPECT_EQ(result.status().code(), Code::kInvalidArgument) << result.status().ToString();
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<ObjectId> head, repo_->GetBranch("d", "main"));
  EXPECT_FALSE(head.has_value());
}

TEST_F(RepositoryTest, ImportOfAMissingSourceFails) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  EXPECT_FALSE(Import(tmp_.Sub("no-such-source")).ok());
}

TEST_F(RepositoryTest, ReimportingAnIdenticalTreeMakesNoCommit) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string src = MakeTree({{"a", "1"}, {"b/c", "2"}});
  auto first = Import(src);
  ASSERT_TRUE(first.ok() && first->commit);
  auto second = Import(src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->commit.has_value());
  EXPECT_EQ(second->parent, first->commit);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId head, repo_->Resolve("d@main"));
  EXPECT_EQ(head, *first->commit);
}

TEST_F(RepositoryTest, ImportIntoAnUnknownDatasetIsNotFound) {
  EXPECT_EQ(Import(MakeTree({{"a", "1"}}), "main", "nope").status().code(), Code::kNotFound);
}

TEST_F(RepositoryTest, SecondImportOfOldUnchangedFilesReadsNothing) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  FileMap files;
  for (int i = 0; i < 20; i++) files["dir" + std::to_string(i % 3) + "/f" + std::to_string(i)] = "v1 " + std::to_string(i);
  std::string src = MakeTree(files);
  // The importer trusts a file's stat only when its ctime is more than two
  // seconds older than the import; ctime cannot be set back, so wait once.
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));

  auto first = Import(src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->files_read, files.size());
  EXPECT_EQ(first->files_unchanged, 0u);

  auto second = Import(src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->files, files.size());
  EXPECT_EQ(second->files_unchanged, files.size());
  EXPECT_EQ(second->files_read, 0u);
  EXPECT_EQ(second->bytes_read, 0u);
  EXPECT_FALSE(second->commit.has_value());

  // A file rewritten with the same size and its old mtime restored still has
  // a new ctime: it is read again and its new content is committed.
  std::string victim = src + "/dir0/f0";
  struct stat before;
  ASSERT_EQ(::stat(victim.c_str(), &before), 0);
  WriteFile(victim, "V1 0");
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, victim.c_str(), times, 0), 0);
  auto third = Import(src);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->files_read, 1u);
  EXPECT_EQ(third->files_unchanged, files.size() - 1);
  ASSERT_TRUE(third->commit.has_value());
  TUSK_ASSERT_OK_AND_ASSIGN(std::string content, ReadPath(*third->commit, "dir0/f0"));
  EXPECT_EQ(content, "V1 0");
}

TEST_F(RepositoryTest, FileStatsLearnedByAnImportThatChangesNothingAreKept) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  FileMap files;
  for (int i = 0; i < 10; i++) files["f" + std::to_string(i)] = "content " + std::to_string(i);
  std::string src = MakeTree(files);
  // Imported at once, as users do: the ctimes are too recent to be trusted,
  // so no stats are remembered yet.
  auto first = Import(src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->commit.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));

  // Now the stats are trustworthy; this import must read every file once
  // (it has no stats yet) and finds the tree unchanged, so it makes no commit...
  auto second = Import(src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->files_read, files.size());
  EXPECT_FALSE(second->commit.has_value());

  // ...but what it learned must not be thrown away with the commit it did
  // not need to make: the next import reads nothing.
  auto third = Import(src);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->files_unchanged, files.size());
  EXPECT_EQ(third->files_read, 0u);
}

// ---- gc and fsck ----

TEST_F(RepositoryTest, GcRemovesADeletedBranchAndKeepsEverythingReachable) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  FileMap kept = {{"shared.bin", RandomBytes(300000, 5)}, {"main-only.txt", "main"}};
  ObjectId main_head = Commit(kept);
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "tmp", main_head));
  std::string doomed_content = RandomBytes(400000, 6);
  ObjectId tmp_head =
      Commit({{"shared.bin", kept["shared.bin"]}, {"main-only.txt", "main"}, {"doomed.bin", doomed_content}}, "tmp");
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry doomed, LookupPath(*repo_, RootOf(tmp_head), "doomed.bin"));
  ASSERT_FALSE(doomed.chunks.empty());
  TUSK_ASSERT_OK(repo_->DeleteBranch("d", "tmp"));

  TUSK_ASSERT_OK_AND_ASSIGN(GcReport dry, repo_->CollectGarbage(/*dry_run=*/true, nullptr));
  EXPECT_GT(dry.objects_removed, 0u);
  TUSK_ASSERT_OK_AND_ASSIGN(bool still_there, repo_->Contains(tmp_head));
  EXPECT_TRUE(still_there) << "a dry run removes nothing";

  TUSK_ASSERT_OK_AND_ASSIGN(GcReport report, repo_->CollectGarbage(/*dry_run=*/false, nullptr));
  EXPECT_EQ(report.objects_removed, dry.objects_removed);
  // The commit, its root page and the doomed chunks are gone.
  EXPECT_GE(report.objects_removed, 2u + doomed.chunks.size());
  for (const auto& c : doomed.chunks) {
    TUSK_ASSERT_OK_AND_ASSIGN(bool present, repo_->Contains(c.id));
    EXPECT_FALSE(present);
  }
  TUSK_ASSERT_OK_AND_ASSIGN(bool commit_present, repo_->Contains(tmp_head));
  EXPECT_FALSE(commit_present);
  EXPECT_EQ(repo_->Resolve("d@" + tmp_head.Hex().substr(0, 12)).status().code(), Code::kNotFound);

  // What main reaches is intact, read through the index and by export.
  ExpectCommitHolds(main_head, kept);
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<TreeEntry> entries, ReadDirectory(*repo_, RootOf(main_head)));
  EXPECT_EQ(entries.size(), 2u);
  std::string dest = tmp_.Sub("after-gc");
  TUSK_ASSERT_OK_AND_ASSIGN(ExportStats stats, ExportTree(*repo_, RootOf(main_head), dest, nullptr));
  EXPECT_EQ(stats.files, 2u);
  EXPECT_TRUE(ReadFile(dest + "/shared.bin") == kept["shared.bin"]);

  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport fsck, repo_->Check(nullptr));
  EXPECT_TRUE(fsck.problems.empty()) << fsck.problems[0].object << ": " << fsck.problems[0].error;
  EXPECT_GT(fsck.objects_checked, 0u);
  EXPECT_EQ(fsck.commits_checked, 1u);

  // A second gc finds nothing more to do.
  TUSK_ASSERT_OK_AND_ASSIGN(GcReport again, repo_->CollectGarbage(false, nullptr));
  EXPECT_EQ(again.objects_removed, 0u);
  EXPECT_EQ(again.objects_kept, report.objects_kept);
}

TEST_F(RepositoryTest, GcKeepsHistoryReachableThroughParentsAndTags) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId c1 = Commit({{"f", "one"}, {"g", RandomBytes(100000, 7)}});
  ObjectId c2 = Commit({{"f", "two"}});
  TUSK_ASSERT_OK(repo_->CreateDataset("e"));
  ObjectId e1 = Commit({{"x", "other dataset"}}, "main", "e");
  TUSK_ASSERT_OK(repo_->CreateTag("e", "keep", e1));
  TUSK_ASSERT_OK(repo_->CreateBranch("e", "dev", e1));
  TUSK_ASSERT_OK(repo_->DeleteBranch("e", "main"));

  TUSK_ASSERT_OK_AND_ASSIGN(GcReport report, repo_->CollectGarbage(false, nullptr));
  // Only two superseded ref records go: d@main's move to c1 (then c2) and
  // e@main's move to e1 (then its deletion). No commit, tree or chunk.
  EXPECT_EQ(report.objects_removed, 2u);
  ExpectCommitHolds(c1, {{"f", "one"}});
  ExpectCommitHolds(c2, {{"f", "two"}});
  ExpectCommitHolds(e1, {{"x", "other dataset"}});
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport fsck, repo_->Check(nullptr));
  EXPECT_TRUE(fsck.problems.empty());
  EXPECT_EQ(fsck.commits_checked, 3u);
}

TEST_F(RepositoryTest, GcAfterDeletingADatasetRemovesItsObjects) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  TUSK_ASSERT_OK(repo_->CreateDataset("e"));
  ObjectId d1 = Commit({{"f", "kept"}});
  ObjectId e1 = Commit({{"g", RandomBytes(50000, 8)}}, "main", "e");
  TUSK_ASSERT_OK(repo_->DeleteDataset("e"));
  TUSK_ASSERT_OK_AND_ASSIGN(GcReport report, repo_->CollectGarbage(false, nullptr));
  EXPECT_GE(report.objects_removed, 3u);  // commit, tree, chunk
  TUSK_ASSERT_OK_AND_ASSIGN(bool present, repo_->Contains(e1));
  EXPECT_FALSE(present);
  ExpectCommitHolds(d1, {{"f", "kept"}});
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport fsck, repo_->Check(nullptr));
  EXPECT_TRUE(fsck.problems.empty());
}

TEST_F(RepositoryTest, GcRemovesPacksLeftByALosingWriter) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  ObjectId base = Commit({{"f", "base"}});
  size_t packs_before = PackFiles().size();
  {
    TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> first, repo_->BeginWrite());
    TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<WriteSession> second, repo_->BeginWrite());
    std::string data = RandomBytes(10000, 9);
    TUSK_ASSERT_OK(second->PutChunk(Sha256::Of(data.data(), data.size()), data).status());
    TUSK_ASSERT_OK(first->CommitToBranch(MakeCommit(RootOf(base), base, "first"), "main", base).status());
    EXPECT_EQ(second->CommitToBranch(MakeCommit(RootOf(base), base, "second"), "main", base).status().code(),
              Code::kConflict);
  }
  EXPECT_GE(PackFiles().size(), packs_before + 2) << "both writers wrote a pack";
  TUSK_ASSERT_OK_AND_ASSIGN(GcReport report, repo_->CollectGarbage(false, nullptr));
  EXPECT_GE(report.packs_deleted, 1u);
  EXPECT_EQ(PackFiles().size(), packs_before + 1) << "the losing writer's pack is removed";
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport fsck, repo_->Check(nullptr));
  EXPECT_TRUE(fsck.problems.empty());
}

TEST_F(RepositoryTest, FsckOfAHealthyStoreFindsNoProblems) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  Commit({{"a", "1"}, {"b/c", RandomBytes(70000, 10)}});
  Commit({{"a", "2"}});
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport report, repo_->Check(nullptr));
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.commits_checked, 2u);
  EXPECT_GT(report.bytes_checked, 70000u);
}

TEST_F(RepositoryTest, FsckReportsAMissingPack) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  Commit({{"a", "1"}});
  for (const auto& p : PackFiles()) fs::remove(p);
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport report, repo_->Check(nullptr));
  EXPECT_FALSE(report.problems.empty());
}

TEST_F(RepositoryTest, StatsCountWhatRefsReach) {
  TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  std::string big = RandomBytes(100000, 11);
  Commit({{"a", big}});
  Commit({{"a", big}, {"b", big}});  // same content twice: stored once
  TUSK_ASSERT_OK_AND_ASSIGN(StoreStats stats, repo_->Stats(std::nullopt));
  EXPECT_EQ(stats.datasets, 1u);
  EXPECT_EQ(stats.commits, 2u);
  EXPECT_EQ(stats.logical_bytes, 3 * big.size());
  EXPECT_EQ(stats.unique_bytes, big.size());
  EXPECT_GE(stats.packs, 1u);
  EXPECT_EQ(repo_->Stats(std::string("nope")).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace tusk
