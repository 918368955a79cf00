// Packs on S3 through the whole pack layer (store/internal/pack.h over
// NewS3PackStore): what PackDirectory does with local packs it does with
// packs in a bucket, reading only ranges of them. This is the seam the
// remotes of issue 12 stand on. Runs against the S3 server of
// TUSK_TEST_S3_ENDPOINT (tools/test.sh starts one), skipped without it.
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "store/backend/s3/s3_pack_store.h"
#include "store/internal/codec.h"
#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "tests/store/backend/s3_test_util.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

class S3PackDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why_not;
    std::optional<test_util::S3Server> server = test_util::S3ServerFromEnvironment(&why_not);
    if (!server) GTEST_SKIP() << why_not;
    auto bucket = test_util::ScratchBucket::Create(*server);
    ASSERT_TRUE(bucket.ok()) << bucket.status().ToString();
    bucket_ = std::move(*bucket);
    client_ = bucket_->client();
    S3PackStoreOptions store_options;
    store_options.scratch_dir = scratch_.path();
    store_options.part_size = 5 << 20;
    packs_ = std::make_unique<PackDirectory>(NewS3PackStore(client_, "remote/", store_options));
  }

  ObjectLocation Append(PackWriter& writer, const std::string& plaintext, bool framed, ObjectId* id) {
    *id = Sha256::Of(plaintext.data(), plaintext.size());
    std::string stored;
    Codec codec = Compress(plaintext, 3, framed, &stored);
    auto loc = writer.Append(ObjectType::kChunk, *id, codec, static_cast<uint32_t>(plaintext.size()), stored,
                             Crc32c(stored.data(), stored.size()));
    EXPECT_TRUE(loc.ok()) << loc.status().ToString();
    return loc.ok() ? *loc : ObjectLocation{};
  }

  test_util::TempDir scratch_;
  std::unique_ptr<test_util::ScratchBucket> bucket_;
  std::shared_ptr<s3::Client> client_;
  std::unique_ptr<PackDirectory> packs_;
};

TEST_F(S3PackDirectoryTest, APackWrittenToABucketListsChecksAndReadsBackAsALocalOne) {
  auto writer = PackWriter::Create(packs_.get());
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::mt19937_64 rng(7);
  std::vector<std::pair<ObjectId, std::string>> chunks;
  std::vector<ObjectLocation> locations;
  // Text that compresses and random bytes that do not, over 12 MiB in all:
  // a multipart upload of 5 MiB parts.
  for (int i = 0; i < 24; i++) {
    std::string data(512 * 1024, '\0');
    if (i % 2) {
      for (auto& c : data) c = static_cast<char>(rng());
    } else {
      for (size_t j = 0; j < data.size(); j++) data[j] = "label,cat,dog\n"[(j + i) % 14];
    }
    ObjectId id;
    locations.push_back(Append(**writer, data, i == 0, &id));
    chunks.emplace_back(id, std::move(data));
  }
  PackId pack = (*writer)->id();
  TUSK_ASSERT_OK((*writer)->Seal());

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackId> listed, packs_->ListPacks());
  EXPECT_EQ(listed, std::vector<PackId>{pack});
  bool sealed = false;
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> records, packs_->ListRecords(pack, &sealed));
  EXPECT_TRUE(sealed) << "read from the footer, as the index rebuild does";
  ASSERT_EQ(records.size(), chunks.size());
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<std::string> problems, packs_->CheckPack(pack));
  EXPECT_TRUE(problems.empty()) << problems.front();
  for (size_t i = 0; i < chunks.size(); i++) {
    EXPECT_EQ(records[i].id, chunks[i].first);
    std::string back;
    TUSK_ASSERT_OK(packs_->ReadRecord(chunks[i].first, locations[i], true, &back));
    EXPECT_TRUE(back == chunks[i].second) << "chunk " << i;
  }
  // A few bytes of the framed record: only the frames they fall in are fetched and checked.
  std::string part;
  TUSK_ASSERT_OK(packs_->ReadRange(chunks[0].first, locations[0], 300000, 100, &part));
  EXPECT_EQ(part, chunks[0].second.substr(300000, 100));
}

TEST_F(S3PackDirectoryTest, DamageInABucketIsFoundAsOnADisk) {
  auto writer = PackWriter::Create(packs_.get());
  ASSERT_TRUE(writer.ok());
  ObjectId id;
  ObjectLocation loc = Append(**writer, std::string(100000, 'x') + "tail", false, &id);
  PackId pack = (*writer)->id();
  TUSK_ASSERT_OK((*writer)->Seal());
  // Someone rewrites the object with one byte changed inside the record.
  std::string key = "remote/packs/" + PackName(pack) + ".pack";
  TUSK_ASSERT_OK_AND_ASSIGN(std::string bytes, client_->Get(key));
  bytes[loc.offset + kRecordHeaderSize + 10] ^= 0x20;
  TUSK_ASSERT_OK(client_->Put(key, bytes).status());
  PackDirectory fresh(NewS3PackStore(client_, "remote/", {scratch_.path(), 5 << 20, 2}));
  std::string back;
  Status st = fresh.ReadRecord(id, loc, true, &back);
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
}

}  // namespace
}  // namespace tusk
