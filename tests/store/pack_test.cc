// Specification of pack files (store/internal/pack.h), the record codec
// (store/internal/codec.h) and CRC-32C (store/internal/crc32c.h).

#include "store/internal/pack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/ids.h"
#include "store/internal/codec.h"
#include "store/internal/crc32c.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using ::tusk::test_util::RandomBytes;
using ::tusk::test_util::TempDir;

std::string RepetitiveText(size_t n) {
  std::string out;
  for (size_t i = 0; out.size() < n; i++) out += "line " + std::to_string(i % 50) + ": the quick brown fox\n";
  out.resize(n);
  return out;
}

void ExpectSameLocation(const ObjectLocation& a, const ObjectLocation& b) {
  EXPECT_EQ(a.pack, b.pack);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.stored_len, b.stored_len);
  EXPECT_EQ(a.raw_len, b.raw_len);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.codec, b.codec);
}

void ExpectSameRecords(const std::vector<PackRecord>& got, const std::vector<PackRecord>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) {
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_EQ(got[i].id, want[i].id);
    ExpectSameLocation(got[i].location, want[i].location);
  }
}

// Overwrites one byte of a file in place (pack files are created read-only).
void FlipByte(const std::string& path, uint64_t offset) {
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
  c = static_cast<char>(c ^ 0x40);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

// Appends a record with the CRC-32C of its stored bytes, as writers do.
Result<ObjectLocation> AppendRecord(PackWriter& writer, ObjectType type, const ObjectId& id, Codec codec,
                                    uint32_t raw_len, std::string_view stored) {
  return writer.Append(type, id, codec, raw_len, stored, Crc32c(stored.data(), stored.size()));
}

class PackTest : public ::testing::Test {
 protected:
  // Appends `plaintext` as a chunk, compressed when that pays off.
  ObjectLocation AppendChunk(PackWriter& writer, const std::string& plaintext, ObjectId* id_out = nullptr) {
    ObjectId id = Sha256::Of(plaintext.data(), plaintext.size());
    std::string stored;
    Codec codec = Compress(plaintext, 3, false, &stored);
    auto loc = AppendRecord(writer, ObjectType::kChunk, id, codec, static_cast<uint32_t>(plaintext.size()), stored);
    EXPECT_TRUE(loc.ok()) << loc.status().ToString();
    if (id_out) *id_out = id;
    return loc.ok() ? *loc : ObjectLocation{};
  }

  std::unique_ptr<PackWriter> NewWriter() {
    auto w = PackWriter::Create(&packs_);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(w).value() : nullptr;
  }

  TempDir dir_;
  PackDirectory packs_{dir_.path()};
};

TEST_F(PackTest, SealedPackReturnsRawAndCompressedRecords) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::string random = RandomBytes(100000, 1);
  std::string text = RepetitiveText(100000);
  ObjectId random_id, text_id;
  ObjectLocation random_loc = AppendChunk(*writer, random, &random_id);
  ObjectLocation text_loc = AppendChunk(*writer, text, &text_id);
  EXPECT_EQ(random_loc.codec, Codec::kRaw);
  EXPECT_EQ(text_loc.codec, Codec::kZstd);
  EXPECT_LT(text_loc.stored_len, text.size());
  TUSK_ASSERT_OK(writer->Seal());

  std::string plain;
  TUSK_ASSERT_OK(packs_.ReadRecord(random_id, random_loc, /*verify_hash=*/true, &plain));
  EXPECT_EQ(plain, random);
  TUSK_ASSERT_OK(packs_.ReadRecord(text_id, text_loc, /*verify_hash=*/true, &plain));
  EXPECT_EQ(plain, text);
}

TEST_F(PackTest, TreeAndCommitRecordsRoundTrip) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::string tree = "pretend tree encoding";
  std::string commit = "pretend commit encoding";
  ObjectId tree_id = HashObject(ObjectType::kTree, tree);
  ObjectId commit_id = HashObject(ObjectType::kCommit, commit);
  auto tree_loc = AppendRecord(*writer, ObjectType::kTree, tree_id, Codec::kRaw, tree.size(), tree);
  auto commit_loc = AppendRecord(*writer, ObjectType::kCommit, commit_id, Codec::kRaw, commit.size(), commit);
  ASSERT_TRUE(tree_loc.ok() && commit_loc.ok());
  TUSK_ASSERT_OK(writer->Seal());
  std::string plain;
  TUSK_ASSERT_OK(packs_.ReadRecord(tree_id, *tree_loc, true, &plain));
  EXPECT_EQ(plain, tree);
  TUSK_ASSERT_OK(packs_.ReadRecord(commit_id, *commit_loc, true, &plain));
  EXPECT_EQ(plain, commit);
}

TEST_F(PackTest, FooterListsExactlyWhatWasWritten) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  for (int i = 0; i < 20; i++) AppendChunk(*writer, i % 2 ? RandomBytes(1000 + i, i) : RepetitiveText(5000 + i));
  std::vector<PackRecord> written = writer->records();
  PackId id = writer->id();
  TUSK_ASSERT_OK(writer->Seal());

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> listed, packs_.ListRecords(id));
  ExpectSameRecords(listed, written);
}

TEST_F(PackTest, ListPacksFindsSealedPacks) {
  std::vector<PackId> ids;
  for (int i = 0; i < 3; i++) {
    auto writer = NewWriter();
    ASSERT_NE(writer, nullptr);
    AppendChunk(*writer, RandomBytes(100, i));
    TUSK_ASSERT_OK(writer->Seal());
    ids.push_back(writer->id());
  }
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackId> listed, packs_.ListPacks());
  std::sort(listed.begin(), listed.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(listed, ids);
  TUSK_ASSERT_OK_AND_ASSIGN(uint64_t size, packs_.SizeOf(ids[0]));
  EXPECT_GT(size, kPackHeaderSize + kRecordHeaderSize + 100);
  TUSK_ASSERT_OK(packs_.Remove(ids[0]));
  TUSK_ASSERT_OK_AND_ASSIGN(listed, packs_.ListPacks());
  EXPECT_EQ(listed.size(), 2u);
}

TEST_F(PackTest, EmptySealedPackListsNoRecords) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  TUSK_ASSERT_OK(writer->Seal());
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> listed, packs_.ListRecords(writer->id()));
  EXPECT_TRUE(listed.empty());
}

TEST_F(PackTest, UnsealedPackIsListedByScanningRecordHeaders) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  // More than the writer's 4 MiB buffer, so the first records reach the file
  // before the writer is dropped without a Seal (as a crashed writer would).
  std::vector<std::string> contents;
  for (int i = 0; i < 6; i++) contents.push_back(RandomBytes(1 << 20, 100 + i));
  for (const auto& c : contents) AppendChunk(*writer, c);
  std::vector<PackRecord> written = writer->records();
  PackId id = writer->id();
  writer.reset();

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> listed, packs_.ListRecords(id));
  ASSERT_GE(listed.size(), 4u) << "records flushed before the writer was dropped must be found";
  ASSERT_LE(listed.size(), written.size());
  written.resize(listed.size());
  ExpectSameRecords(listed, written);
  std::string plain;
  for (size_t i = 0; i < listed.size(); i++) {
    TUSK_ASSERT_OK(packs_.ReadRecord(listed[i].id, listed[i].location, true, &plain));
    EXPECT_EQ(plain, contents[i]);
  }
}

TEST_F(PackTest, ScanStopsAtATornRecord) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  for (int i = 0; i < 5; i++) AppendChunk(*writer, RandomBytes(1000, 200 + i));
  std::vector<PackRecord> written = writer->records();
  PackId id = writer->id();
  TUSK_ASSERT_OK(writer->Seal());
  // Cut the file in the middle of the fourth record's payload: the footer is
  // gone and the fourth record is incomplete.
  uint64_t cut = written[3].location.offset + kRecordHeaderSize + 500;
  ASSERT_EQ(::truncate(packs_.PathOf(id).c_str(), static_cast<off_t>(cut)), 0);

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> listed, packs_.ListRecords(id));
  written.resize(3);
  ExpectSameRecords(listed, written);
}

// The footer, not a scan, lists a sealed pack: a damaged record header in the
// middle (which stops a scan) does not hide the records after it.
TEST_F(PackTest, ASealedPackIsListedFromItsFooter) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  for (int i = 0; i < 5; i++) AppendChunk(*writer, RandomBytes(1000, 400 + i));
  std::vector<PackRecord> written = writer->records();
  PackId id = writer->id();
  TUSK_ASSERT_OK(writer->Seal());
  FlipByte(packs_.PathOf(id), written[1].location.offset + 1);  // the second record's magic

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> listed, packs_.ListRecords(id));
  ExpectSameRecords(listed, written);
}

TEST_F(PackTest, DamagedFooterFallsBackToScanningRecordHeaders) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  for (int i = 0; i < 5; i++) AppendChunk(*writer, RandomBytes(1000, 300 + i));
  std::vector<PackRecord> written = writer->records();
  PackId id = writer->id();
  TUSK_ASSERT_OK(writer->Seal());
  // The first footer entry starts right after the last record.
  const PackRecord& last = written.back();
  FlipByte(packs_.PathOf(id), last.location.offset + kRecordHeaderSize + last.location.stored_len + 3);

  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<PackRecord> listed, packs_.ListRecords(id));
  ExpectSameRecords(listed, written);
}

TEST_F(PackTest, ListRecordsOfANonPackIsCorruption) {
  std::string path = packs_.PathOf(0x1234);
  test_util::WriteFile(path, "this is not a pack file at all, just text");
  auto listed = packs_.ListRecords(0x1234);
  EXPECT_EQ(listed.status().code(), Status::Code::kCorruption);
}

TEST_F(PackTest, FlippedPayloadByteIsCorruption) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ObjectId raw_id, zstd_id;
  ObjectLocation raw_loc = AppendChunk(*writer, RandomBytes(10000, 3), &raw_id);
  ObjectLocation zstd_loc = AppendChunk(*writer, RepetitiveText(10000), &zstd_id);
  ASSERT_EQ(zstd_loc.codec, Codec::kZstd);
  TUSK_ASSERT_OK(writer->Seal());
  FlipByte(packs_.PathOf(writer->id()), raw_loc.offset + kRecordHeaderSize + raw_loc.stored_len / 2);
  FlipByte(packs_.PathOf(writer->id()), zstd_loc.offset + kRecordHeaderSize + zstd_loc.stored_len / 2);

  std::string plain;
  Status st = packs_.ReadRecord(raw_id, raw_loc, true, &plain);
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find(raw_id.Hex()), std::string::npos) << "message names the object: " << st.message();
  // Without hash verification the CRC still catches it.
  st = packs_.ReadRecord(raw_id, raw_loc, false, &plain);
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  st = packs_.ReadRecord(zstd_id, zstd_loc, true, &plain);
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  st = packs_.ReadStored(zstd_id, zstd_loc, &plain);
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
}

TEST_F(PackTest, FlippedHeaderByteIsCorruption) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ObjectId id;
  ObjectLocation loc = AppendChunk(*writer, RandomBytes(1000, 4), &id);
  TUSK_ASSERT_OK(writer->Seal());
  FlipByte(packs_.PathOf(writer->id()), loc.offset + 10);  // inside raw_len
  std::string plain;
  EXPECT_EQ(packs_.ReadRecord(id, loc, true, &plain).code(), Status::Code::kCorruption);
}

TEST_F(PackTest, ReadingWithTheWrongIdIsCorruption) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ObjectId id;
  ObjectLocation loc = AppendChunk(*writer, RandomBytes(1000, 5), &id);
  TUSK_ASSERT_OK(writer->Seal());
  ObjectId other = Sha256::Of("something else", 14);
  std::string plain;
  EXPECT_EQ(packs_.ReadRecord(other, loc, true, &plain).code(), Status::Code::kCorruption);
  EXPECT_EQ(packs_.ReadRecord(other, loc, false, &plain).code(), Status::Code::kCorruption);
}

TEST_F(PackTest, LocationThatDisagreesWithTheHeaderIsCorruption) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ObjectId id;
  ObjectLocation loc = AppendChunk(*writer, RandomBytes(1000, 6), &id);
  TUSK_ASSERT_OK(writer->Seal());
  std::string plain;
  ObjectLocation wrong_type = loc;
  wrong_type.type = ObjectType::kTree;
  EXPECT_EQ(packs_.ReadRecord(id, wrong_type, true, &plain).code(), Status::Code::kCorruption);
  ObjectLocation wrong_offset = loc;
  wrong_offset.offset += 1;
  EXPECT_EQ(packs_.ReadRecord(id, wrong_offset, true, &plain).code(), Status::Code::kCorruption);
  ObjectLocation past_end = loc;
  past_end.offset = 1 << 30;
  EXPECT_EQ(packs_.ReadRecord(id, past_end, true, &plain).code(), Status::Code::kCorruption);
}

TEST_F(PackTest, ChunkWhoseContentDoesNotHashToItsIdIsCorruptionWhenVerifying) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::string data = RandomBytes(1000, 7);
  ObjectId lie = Sha256::Of("not the data", 12);
  auto loc = AppendRecord(*writer, ObjectType::kChunk, lie, Codec::kRaw, data.size(), data);
  ASSERT_TRUE(loc.ok());
  TUSK_ASSERT_OK(writer->Seal());
  std::string plain;
  EXPECT_EQ(packs_.ReadRecord(lie, *loc, /*verify_hash=*/true, &plain).code(), Status::Code::kCorruption);
  TUSK_EXPECT_OK(packs_.ReadRecord(lie, *loc, /*verify_hash=*/false, &plain));
}

TEST_F(PackTest, RecordAppendedWithAWrongChecksumIsCorruptionOnRead) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::string data = RandomBytes(1000, 8);
  ObjectId id = Sha256::Of(data.data(), data.size());
  uint32_t wrong_crc = Crc32c(data.data(), data.size()) ^ 1;
  auto loc = writer->Append(ObjectType::kChunk, id, Codec::kRaw, data.size(), data, wrong_crc);
  ASSERT_TRUE(loc.ok());
  TUSK_ASSERT_OK(writer->Seal());
  std::string plain;
  EXPECT_EQ(packs_.ReadRecord(id, *loc, false, &plain).code(), Status::Code::kCorruption);
}

TEST_F(PackTest, MissingPackIsNotFoundSoTheCallerCanLookAgain) {
  // The repository looks the object up again (a gc may have moved it) and
  // reports Corruption only if the pack is still the one named.
  ObjectLocation loc{0xdeadbeef, kPackHeaderSize, 10, 10, ObjectType::kChunk, Codec::kRaw};
  std::string plain;
  EXPECT_EQ(packs_.ReadRecord(ObjectId(), loc, true, &plain).code(), Status::Code::kNotFound);
}

TEST_F(PackTest, SealedWriterRefusesAppends) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  TUSK_ASSERT_OK(writer->Seal());
  auto loc = AppendRecord(*writer, ObjectType::kChunk, ObjectId(), Codec::kRaw, 1, "x");
  EXPECT_FALSE(loc.ok());
}

TEST_F(PackTest, NeighbouringRecordsAreReadInOneReadAndChecked) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::vector<std::string> plains = {RandomBytes(100000, 7), RepetitiveText(300000), RandomBytes(10, 8)};
  std::vector<std::pair<ObjectId, ObjectLocation>> records;
  for (const auto& p : plains) {
    ObjectId id;
    ObjectLocation loc = AppendChunk(*writer, p, &id);
    records.emplace_back(id, loc);
  }
  TUSK_ASSERT_OK(writer->Seal());
  PackId pack = records[0].second.pack;
  // The first and the last: the middle record is read and skipped.
  std::vector<std::string> got;
  TUSK_ASSERT_OK(packs_.ReadRecords(pack, {records[0], records[2]}, /*verify_hash=*/true,
                                    [&](const PackDirectory::SpanRecord& r) {
                                      EXPECT_EQ(r.record.size(), RecordExtent(r.loc));
                                      got.push_back(std::move(r.plaintext));
                                      return Status::Ok();
                                    }));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], plains[0]);
  EXPECT_EQ(got[1], plains[2]);

  // A record of another pack is refused; a record whose payload was damaged
  // fails the read, naming it.
  auto elsewhere = records[1];
  elsewhere.second.pack = pack + 1;
  EXPECT_EQ(packs_.ReadRecords(pack, {records[0], elsewhere}, true, [](const PackDirectory::SpanRecord&) {
                  return Status::Ok();
                }).code(),
            Status::Code::kInvalidArgument);
  FlipByte(packs_.PathOf(pack), records[1].second.offset + kRecordHeaderSize + 10);
  PackDirectory reopened(dir_.path());
  Status st = reopened.ReadRecords(pack, records, true, [](const PackDirectory::SpanRecord&) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find(records[1].first.Hex()), std::string::npos) << st.message();
}

TEST(PackNameTest, IsSixteenLowercaseHexDigits) {
  EXPECT_EQ(PackName(0x0123456789abcdefull), "0123456789abcdef");
  EXPECT_EQ(PackName(1), "0000000000000001");
}

TEST(ObjectLocationTest, EncodeDecodeRoundTrip) {
  ObjectLocation loc{0xfedcba9876543210ull, 1ull << 40, 123456, 654321, ObjectType::kCommit, Codec::kZstd};
  std::string bytes = loc.Encode();
  EXPECT_EQ(bytes.size(), ObjectLocation::kEncodedSize);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectLocation back, ObjectLocation::Decode(bytes));
  ExpectSameLocation(back, loc);
}

TEST(ObjectLocationTest, DecodeOfGarbageIsCorruption) {
  EXPECT_EQ(ObjectLocation::Decode("").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ObjectLocation::Decode("short").status().code(), Status::Code::kCorruption);
  std::string good = ObjectLocation{1, 2, 3, 4, ObjectType::kTree, Codec::kRaw}.Encode();
  EXPECT_EQ(ObjectLocation::Decode(good + "x").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ObjectLocation::Decode(good.substr(0, good.size() - 1)).status().code(), Status::Code::kCorruption);
  std::string bad_type = good;
  bad_type[24] = 9;
  EXPECT_EQ(ObjectLocation::Decode(bad_type).status().code(), Status::Code::kCorruption);
  std::string bad_codec = good;
  bad_codec[25] = 7;
  EXPECT_EQ(ObjectLocation::Decode(bad_codec).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ObjectLocation::Decode(std::string(26, '\xff')).status().code(), Status::Code::kCorruption);
}

TEST(CodecTest, RandomDataIsStoredRaw) {
  std::string data = RandomBytes(256 * 1024, 8);
  std::string stored;
  EXPECT_EQ(Compress(data, 3, false, &stored), Codec::kRaw);
  EXPECT_EQ(stored, data);
}

TEST(CodecTest, RepetitiveTextIsCompressed) {
  std::string data = RepetitiveText(256 * 1024);
  std::string stored;
  EXPECT_EQ(Compress(data, 3, false, &stored), Codec::kZstd);
  EXPECT_LT(stored.size(), data.size() / 10);
}

TEST(CodecTest, LevelZeroStoresEverythingRaw) {
  std::string data = RepetitiveText(10000);
  std::string stored;
  EXPECT_EQ(Compress(data, 0, false, &stored), Codec::kRaw);
  EXPECT_EQ(stored, data);
}

TEST(CodecTest, DecompressRoundTrips) {
  for (const std::string& data : {RandomBytes(70000, 9), RepetitiveText(70000), std::string(), std::string("x")}) {
    std::string stored, back;
    Codec codec = Compress(data, 3, false, &stored);
    TUSK_ASSERT_OK(Decompress(codec, stored, data.size(), &back));
    EXPECT_EQ(back, data);
  }
}

TEST(CodecTest, DecompressWithWrongLengthIsCorruption) {
  std::string text = RepetitiveText(50000), stored, back;
  ASSERT_EQ(Compress(text, 3, false, &stored), Codec::kZstd);
  EXPECT_EQ(Decompress(Codec::kZstd, stored, text.size() - 1, &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(Decompress(Codec::kZstd, stored, text.size() + 1, &back).code(), Status::Code::kCorruption);
  std::string random = RandomBytes(5000, 10);
  EXPECT_EQ(Decompress(Codec::kRaw, random, random.size() + 1, &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(Decompress(Codec::kRaw, random, random.size() - 1, &back).code(), Status::Code::kCorruption);
}

TEST(CodecTest, DecompressOfGarbageIsCorruption) {
  std::string back;
  EXPECT_EQ(Decompress(Codec::kZstd, RandomBytes(1000, 11), 5000, &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(Decompress(static_cast<Codec>(7), "abc", 3, &back).code(), Status::Code::kCorruption);
}

TEST(Crc32cTest, TheFastPathAgreesWithTheTableAtEveryLengthAndAlignment) {
  std::string data = RandomBytes(64 * 1024 + 7, 5);
  for (size_t len : {0, 1, 7, 8, 9, 4095, 12287, 12288, 12289, 16384, 24576 + 3, 36864, 65536}) {
    for (size_t start : {0, 1, 3}) {
      EXPECT_EQ(Crc32c(data.data() + start, len), Crc32cPortable(data.data() + start, len)) << len << "@" << start;
      EXPECT_EQ(Crc32c(data.data() + start, len, 0x12345678), Crc32cPortable(data.data() + start, len, 0x12345678));
    }
  }
  // Chaining: the CRC of a whole equals the CRC continued over its parts.
  EXPECT_EQ(Crc32c(data.data(), data.size()), Crc32c(data.data() + 20000, data.size() - 20000, Crc32c(data.data(), 20000)));
}

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32cPortable("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
}

TEST(Crc32cTest, CanBeComputedIncrementally) {
  std::string data = RandomBytes(1000, 12);
  uint32_t whole = Crc32c(data.data(), data.size());
  for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    uint32_t part = Crc32c(data.data(), split);
    EXPECT_EQ(Crc32c(data.data() + split, data.size() - split, part), whole) << "split at " << split;
  }
}

TEST(Crc32cTest, DetectsASingleBitFlip) {
  std::string data = RandomBytes(4096, 13);
  uint32_t crc = Crc32c(data.data(), data.size());
  data[2000] ^= 1;
  EXPECT_NE(Crc32c(data.data(), data.size()), crc);
}

}  // namespace
}  // namespace tusk
