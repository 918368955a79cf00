// Specification of push and fetch (store/remote/remote.h) below the CLI,
// against the real S3 server that tools/test.sh starts (skipped without
// one): what a bucket may not do to a store (serve changed bytes), how an
// interrupted push resumes, and an index rebuilt from local and remote packs.
#include <gtest/gtest.h>

#include <filesystem>

#include "store/backend/pack_mirror.h"
#include "store/importer.h"
#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "store/remote/remote.h"
#include "tests/store/backend/s3_test_util.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;

class TransferTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InstallRemotePackSources(); }

  void SetUp() override {
    std::string why_not;
    server_ = test_util::S3ServerFromEnvironment(&why_not);
    if (!server_) GTEST_SKIP() << why_not;
    remote_.name = "origin";
    remote_.url = "s3://" + test_util::RandomBucketName() + "/team";
    remote_.endpoint = server_->options.endpoint;
    a_ = MakeStore("a", true);
    b_ = MakeStore("b", false);
    TUSK_ASSERT_OK_AND_ASSIGN(connection_, Connect(remote_));
  }
  void TearDown() override {
    if (!connection_.client) return;
    auto left = connection_.client->List("");
    if (left.ok())
      for (const auto& o : *left) (void)connection_.client->Delete(o.key);
    (void)connection_.client->DeleteBucket();
  }

  std::unique_ptr<Repository> MakeStore(const std::string& name, bool create_bucket) {
    std::string dir = tmp_.Sub(name);
    EXPECT_TRUE(Repository::Create(dir, StoreConfig{}).ok());
    Status added = AddRemote(Env::Default(), dir, remote_, create_bucket);
    EXPECT_TRUE(added.ok()) << added.ToString();
    auto repo = Repository::Open(dir);
    EXPECT_TRUE(repo.ok()) << repo.status().ToString();
    return repo.ok() ? std::move(repo).value() : nullptr;
  }

  ObjectId Import(Repository& repo, const std::map<std::string, std::string>& files) {
    std::string src = tmp_.Sub("src" + std::to_string(next_++));
    std::filesystem::create_directories(src);
    for (const auto& [rel, content] : files) test_util::WriteFile(src + "/" + rel, content);
    if (!repo.CheckDataset("d").ok()) {
      EXPECT_TRUE(repo.CreateDataset("d").ok());
    }
    ImportOptions options;
    options.message = "import";
    options.author = "test";
    auto result = ImportDirectory(repo, src, "d", "main", options);
    EXPECT_TRUE(result.ok() && result->commit) << result.status().ToString();
    return result.ok() && result->commit ? *result->commit : ObjectId();
  }

  // Writes a pack of one raw chunk record to the remote, claiming `id` for
  // `content` (with a valid CRC, whatever the content).
  void WriteRemotePack(const ObjectId& id, const std::string& content) {
    PackDirectory remote_packs(RemotePackStore(connection_));
    TUSK_ASSERT_OK_AND_ASSIGN(auto writer, PackWriter::Create(&remote_packs));
    TUSK_ASSERT_OK(writer->Append(ObjectType::kChunk, id, Codec::kRaw, static_cast<uint32_t>(content.size()), content,
                                  Crc32c(content.data(), content.size())).status());
    TUSK_ASSERT_OK(writer->Seal());
  }

  // The content of `path` in `commit`, every chunk read through the index
  // (from the remote where it is there); "<error>" when a read fails.
  static std::string FileOf(Repository& repo, const ObjectId& commit, const std::string& path) {
    auto c = repo.ReadCommit(commit);
    auto entry = c.ok() ? LookupPath(repo, c->root, path) : Result<TreeEntry>(c.status());
    if (!entry.ok()) return "<error> " + entry.status().ToString();
    std::string content;
    for (const auto& chunk : entry->chunks) {
      auto bytes = repo.ReadObject(chunk.id, ObjectType::kChunk);
      if (!bytes.ok()) return "<error> " + bytes.status().ToString();
      content += *bytes;
    }
    return content;
  }

  std::optional<test_util::S3Server> server_;
  TempDir tmp_;
  Remote remote_;
  RemoteConnection connection_;
  std::unique_ptr<Repository> a_, b_;
  int next_ = 0;
};

TEST_F(TransferTest, AChunkFromARemoteIsCheckedAgainstItsIdWhateverTheReaderAsked) {
  // A pack on the remote whose record claims the id of "good" but holds
  // other bytes with a valid CRC: only the SHA-256 can tell.
  std::string good = RandomBytes(40000, 1), evil = RandomBytes(40000, 2);
  ObjectId id = Sha256::Of(good.data(), good.size());
  ASSERT_NO_FATAL_FAILURE(WriteRemotePack(id, evil));
  TUSK_ASSERT_OK_AND_ASSIGN(FetchReport fetched, Fetch(*b_, connection_, std::nullopt));
  EXPECT_EQ(fetched.packs_registered, 1u);
  b_->set_verify_chunk_hashes(false);  // as the mount reads
  auto read = b_->ReadObject(id, ObjectType::kChunk);
  EXPECT_EQ(read.status().code(), Status::Code::kCorruption) << read.status().ToString();
  auto part = b_->ReadChunkRange(ChunkRef{id, good.size()}, 0, 100);
  EXPECT_EQ(part.status().code(), Status::Code::kUnsupported) << "a part of a remote chunk cannot be checked";
}

TEST_F(TransferTest, APackListingARecordLargerThanAnyTuskWritesIsSkippedNotRead) {
  // 65 MiB in one record: over the bound on what a bucket may claim (no
  // chunk is larger than 64 MiB), so a hostile footer cannot make readers
  // allocate what it likes.
  std::string big = RandomBytes((64 << 20) + (1 << 20), 9);
  ObjectId id = Sha256::Of(big.data(), big.size());
  ASSERT_NO_FATAL_FAILURE(WriteRemotePack(id, big));
  TUSK_ASSERT_OK_AND_ASSIGN(FetchReport fetched, Fetch(*b_, connection_, std::nullopt));
  EXPECT_EQ(fetched.packs_registered, 0u);
  ASSERT_EQ(fetched.warnings.size(), 1u);
  EXPECT_NE(fetched.warnings[0].find("lengths no tusk record has"), std::string::npos) << fetched.warnings[0];
  TUSK_ASSERT_OK_AND_ASSIGN(bool known, b_->Contains(id));
  EXPECT_FALSE(known);
}

TEST_F(TransferTest, RemoteRefsMoveOnlyFromWhereTheWriterSawThem) {
  ObjectId one = Sha256::Of("1", 1), two = Sha256::Of("2", 1), three = Sha256::Of("3", 1);
  auto& client = *connection_.client;
  const auto& at = connection_.location;
  TUSK_ASSERT_OK_AND_ASSIGN(auto absent, ReadRemoteRef(client, at, "d", 'b', "main"));
  EXPECT_FALSE(absent.has_value());
  TUSK_ASSERT_OK(WriteRemoteRef(client, at, "d", 'b', "main", one, std::nullopt).status());
  // A second creator lost the race: refused, not overwritten.
  EXPECT_EQ(WriteRemoteRef(client, at, "d", 'b', "main", two, std::nullopt).status().code(), Status::Code::kConflict);
  TUSK_ASSERT_OK_AND_ASSIGN(auto seen, ReadRemoteRef(client, at, "d", 'b', "main"));
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->commit, one);
  TUSK_ASSERT_OK(WriteRemoteRef(client, at, "d", 'b', "main", two, seen).status());
  // Another writer that saw `one` too is refused now.
  auto stale = WriteRemoteRef(client, at, "d", 'b', "main", three, seen);
  EXPECT_EQ(stale.status().code(), Status::Code::kConflict) << stale.status().ToString();
  TUSK_ASSERT_OK_AND_ASSIGN(auto now, ReadRemoteRef(client, at, "d", 'b', "main"));
  EXPECT_EQ(now->commit, two);
  // Tags and settings heads live beside branches, and a listing finds all.
  TUSK_ASSERT_OK(WriteRemoteRef(client, at, "d", 't', "v1", one, std::nullopt).status());
  TUSK_ASSERT_OK(WriteRemoteRef(client, at, "d", 's', "settings", three, std::nullopt).status());
  TUSK_ASSERT_OK(client.Put(at.Key("refs/d/unrelated"), "x").status());
  TUSK_ASSERT_OK_AND_ASSIGN(auto all, ListRemoteRefValues(client, at));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].kind, 'b');
  EXPECT_EQ(all[1].kind, 's');
  EXPECT_EQ(all[2].kind, 't');
  // A damaged ref is named, never read as some commit.
  TUSK_ASSERT_OK(client.Put(RemoteRefKey(at, "d", 'b', "main"), "tusk ref 1\nnot hex\n").status());
  auto damaged = ReadRemoteRef(client, at, "d", 'b', "main");
  EXPECT_EQ(damaged.status().code(), Status::Code::kCorruption);
  EXPECT_NE(damaged.status().message().find("refs/d/branches/main"), std::string::npos) << damaged.status().message();
  TUSK_ASSERT_OK(client.Put(RemoteRefKey(at, "d", 'b', "main"), "tusk ref 2\n").status());
  EXPECT_EQ(ReadRemoteRef(client, at, "d", 'b', "main").status().code(), Status::Code::kUnsupported);
}

TEST_F(TransferTest, ARefOnTheRemoteThatIsNotOneIsSkippedAndTheOthersAreFetched) {
  ObjectId head = Import(*a_, {{"x.txt", "x\n"}});
  TUSK_ASSERT_OK(Push(*a_, connection_, "d", "main", {}).status());
  TUSK_ASSERT_OK(connection_.client->Put(RemoteRefKey(connection_.location, "d", 'b', "broken"), "garbage\n").status());
  TUSK_ASSERT_OK(connection_.client->Put(RemoteRefKey(connection_.location, "d", 'b', "huge"),
                                         std::string(4096, 'x')).status());
  TUSK_ASSERT_OK_AND_ASSIGN(FetchReport fetched, Fetch(*b_, connection_, std::nullopt));
  ASSERT_EQ(fetched.refs.size(), 1u);
  EXPECT_EQ(fetched.refs[0].name, "main");
  EXPECT_EQ(fetched.refs[0].commit, head);
  ASSERT_EQ(fetched.warnings.size(), 2u);
  EXPECT_NE(fetched.warnings[0].find("refs/d/branches/broken"), std::string::npos) << fetched.warnings[0];
  EXPECT_NE(fetched.warnings[1].find("too large"), std::string::npos) << fetched.warnings[1];
}

TEST_F(TransferTest, ACachedChunkIsHashedWhenTheReaderAsksForHashes) {
  std::string content = RandomBytes(100000, 6);
  ObjectId head = Import(*a_, {{"x.bin", content}});
  TUSK_ASSERT_OK(Push(*a_, connection_, "d", "main", {}).status());
  TUSK_ASSERT_OK(Fetch(*b_, connection_, std::nullopt).status());
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, b_->ReadCommit(head));
  TUSK_ASSERT_OK_AND_ASSIGN(TreeEntry x, LookupPath(*b_, c.root, "x.bin"));
  ASSERT_EQ(x.chunks.size(), 1u);
  const ObjectId& id = x.chunks[0].id;
  TUSK_ASSERT_OK_AND_ASSIGN(bool cached, b_->RemoteChunkCached(id));
  EXPECT_FALSE(cached);
  ChunkRef ref{id, content.size()};
  EXPECT_EQ(b_->ReadChunkRange(ref, 50000, 100).status().code(), Status::Code::kUnsupported)
      << "a part of a remote chunk not in the mirror cannot be checked: read it whole";
  EXPECT_EQ(FileOf(*b_, head, "x.bin"), content);
  TUSK_ASSERT_OK_AND_ASSIGN(cached, b_->RemoteChunkCached(id));
  EXPECT_TRUE(cached) << "a read from the remote fills the mirror";
  TUSK_ASSERT_OK_AND_ASSIGN(std::string part, b_->ReadChunkRange(ref, 50000, 100));
  EXPECT_EQ(part, content.substr(50000, 100)) << "and parts of a mirrored chunk are read as a local chunk's";

  // Wrong bytes in the mirror under the chunk's id, with a valid header and
  // CRC (as another process's bug or a hand edit could leave them): a record
  // of the same length made by a pack writer, written over the good one.
  TUSK_ASSERT_OK_AND_ASSIGN(std::optional<ObjectLocation> loc, b_->FindObject(id));
  ASSERT_TRUE(loc.has_value());
  std::string evil = RandomBytes(content.size(), 7);
  PackDirectory scratch(tmp_.Sub("scratch"));
  TUSK_ASSERT_OK_AND_ASSIGN(auto writer, PackWriter::Create(&scratch));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectLocation forged, writer->Append(ObjectType::kChunk, id, loc->codec,
                                                                  static_cast<uint32_t>(evil.size()), evil,
                                                                  Crc32c(evil.data(), evil.size())));
  TUSK_ASSERT_OK(writer->Seal());
  ASSERT_EQ(RecordExtent(forged), RecordExtent(*loc));
  std::string record = test_util::ReadFile(scratch.PathOf(forged.pack)).substr(forged.offset, RecordExtent(forged));
  PackDirectory remote_packs(RemotePackStore(connection_));
  TUSK_ASSERT_OK_AND_ASSIGN(std::string header, remote_packs.PackHeader(loc->pack));
  TUSK_ASSERT_OK_AND_ASSIGN(uint64_t pack_size, remote_packs.OpenedSize(loc->pack));
  TUSK_ASSERT_OK(b_->remote_cache().Write(loc->pack, pack_size, header, {{loc->offset, record}}).status());
  auto reopened = Repository::Open(tmp_.Sub("b"));  // no open file of the mirror from before
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Repository& b = **reopened;

  // A reader that asks for hashes gets the remote's bytes, and the mirror
  // is mended.
  EXPECT_EQ(FileOf(b, head, "x.bin"), content) << "read again from the remote";
  b.set_verify_chunk_hashes(false);
  EXPECT_EQ(FileOf(b, head, "x.bin"), content) << "and mirrored right";
}

TEST_F(TransferTest, AnInterruptedPushResumesWithoutSendingWhatItFinished) {
  Import(*a_, {{"one.bin", RandomBytes(300000, 3)}});
  ObjectId head = Import(*a_, {{"one.bin", RandomBytes(300000, 3)}, {"two.bin", RandomBytes(300000, 4)}});
  PushOptions small_packs;
  small_packs.repack_size = 200000;  // several packs from little data
  TUSK_ASSERT_OK_AND_ASSIGN(PushReport first, Push(*a_, connection_, "d", "main", small_packs));
  EXPECT_EQ(first.outcome, PushReport::Outcome::kCreated);
  uint64_t sent = first.packs_uploaded + first.packs_repacked;
  ASSERT_GE(sent, 2u);
  // As if it had stopped before its last pack and the ref: one pack and the
  // ref are gone from the remote, and this store never saw its push land.
  auto packs = connection_.client->List(connection_.location.Key("packs/"));
  ASSERT_TRUE(packs.ok());
  ASSERT_EQ(packs->size(), sent);
  TUSK_ASSERT_OK(connection_.client->Delete(packs->front().key));
  TUSK_ASSERT_OK(connection_.client->Delete(RemoteRefKey(connection_.location, "d", 'b', "main")));
  TUSK_ASSERT_OK(a_->DropRemoteRefs("origin"));
  TUSK_ASSERT_OK_AND_ASSIGN(PushReport again, Push(*a_, connection_, "d", "main", small_packs));
  EXPECT_EQ(again.packs_skipped, sent - 1);
  EXPECT_EQ(again.packs_uploaded + again.packs_repacked, 1u);
  EXPECT_EQ(again.new_commit, head);
  // And what arrived is whole: another store reads every file.
  TUSK_ASSERT_OK(Fetch(*b_, connection_, std::nullopt).status());
  EXPECT_EQ(FileOf(*b_, head, "two.bin"), RandomBytes(300000, 4));
}

TEST_F(TransferTest, AFetchedStoreRebuildsItsIndexFromLocalAndRemotePacks) {
  ObjectId head = Import(*a_, {{"x.bin", RandomBytes(500000, 5)}, {"y.txt", "why\n"}});
  TUSK_ASSERT_OK(Push(*a_, connection_, "d", "main", {}).status());
  TUSK_ASSERT_OK(Fetch(*b_, connection_, std::nullopt).status());
  TUSK_ASSERT_OK(b_->CheckDataset("d"));  // a fetch makes the datasets it finds
  {
    TUSK_ASSERT_OK_AND_ASSIGN(Commit c, b_->ReadCommit(head));
    TUSK_ASSERT_OK_AND_ASSIGN(auto session, b_->BeginWrite());
    TUSK_ASSERT_OK(session->CommitToBranch(c, "main", std::nullopt).status());
  }
  std::string dir = b_->dir();
  b_.reset();
  TUSK_ASSERT_OK_AND_ASSIGN(RebuildReport report, Repository::RebuildIndex(dir, nullptr));
  EXPECT_TRUE(report.warnings.empty()) << report.warnings.front();
  TUSK_ASSERT_OK_AND_ASSIGN(b_, Repository::Open(dir));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId back, b_->Resolve("d@main"));
  EXPECT_EQ(back, head);
  EXPECT_EQ(FileOf(*b_, head, "x.bin"), RandomBytes(500000, 5));
  // gc keeps what is read from the remote, and removes nothing there.
  TUSK_ASSERT_OK(b_->CollectGarbage(false, nullptr).status());
  EXPECT_EQ(FileOf(*b_, head, "x.bin"), RandomBytes(500000, 5));
}

}  // namespace
}  // namespace tusk
