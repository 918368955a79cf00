// Records a small read can fetch part of: raw records carry a CRC per 16 KiB
// block, kZstdFrames records a table of independent 32 KiB frames, so small
// reads fetch, verify and decompress only what they touch.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "store/internal/codec.h"
#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;

class RangeReadTest : public ::testing::Test {
 protected:
  // Writes one raw record of `content` to a sealed pack.
  ObjectLocation WriteRaw(const std::string& content, const ObjectId& id) {
    auto w = PackWriter::Create(&packs_);
    EXPECT_TRUE(w.ok());
    auto loc = (*w)->Append(ObjectType::kChunk, id, Codec::kRaw, static_cast<uint32_t>(content.size()), content,
                            Crc32c(content.data(), content.size()));
    EXPECT_TRUE(loc.ok());
    EXPECT_TRUE((*w)->Seal().ok());
    return *loc;
  }
  // Writes `content` compressed as it would be for a chunk (framed).
  ObjectLocation WriteFramed(const std::string& content, const ObjectId& id) {
    std::string stored;
    EXPECT_EQ(Compress(content, 1, true, &stored), Codec::kZstdFrames);
    auto w = PackWriter::Create(&packs_);
    EXPECT_TRUE(w.ok());
    auto loc = (*w)->Append(ObjectType::kChunk, id, Codec::kZstdFrames, static_cast<uint32_t>(content.size()), stored,
                            Crc32c(stored.data(), stored.size()));
    EXPECT_TRUE(loc.ok()) << loc.status().message();
    EXPECT_TRUE((*w)->Seal().ok());
    return *loc;
  }
  void FlipByteAt(const ObjectLocation& loc, uint64_t pos) {
    int fd = ::open(packs_.PathOf(loc.pack).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(pos)), 1);
    c ^= 0x01;
    ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(pos)), 1);
    ::close(fd);
  }

  TempDir dir_;
  PackDirectory packs_{dir_.path()};
  const std::string content_ = RandomBytes(256 * 1024 + 1000, 42);
  const ObjectId id_ = Sha256::Of(content_.data(), content_.size());
  const std::string text_ = CsvLike(300 * 1024 + 77);
  const ObjectId text_id_ = Sha256::Of(text_.data(), text_.size());

  static std::string CsvLike(size_t n) {
    std::string s;
    for (uint64_t x = 12345; s.size() < n; x = x * 6364136223846793005ull + 1442695040888963407ull)
      s += std::to_string(x >> 33) + ((x >> 20) % 8 == 0 ? "\n" : ",");
    s.resize(n);
    return s;
  }
};

TEST_F(RangeReadTest, RawRecordsLongerThanOneBlockAndFramedRecordsHaveATable) {
  EXPECT_TRUE(HasRangeTable(Codec::kRaw, kCrcBlockSize + 1));
  EXPECT_FALSE(HasRangeTable(Codec::kRaw, kCrcBlockSize));
  EXPECT_FALSE(HasRangeTable(Codec::kZstd, 1 << 20));
  EXPECT_TRUE(HasRangeTable(Codec::kZstdFrames, 100));
  EXPECT_EQ(RangeTableSize(Codec::kZstdFrames, 100, 2 * kFrameSize + 1), 24u);
  EXPECT_EQ(RangeTableSize(Codec::kRaw, 3 * kCrcBlockSize + 1, 3 * kCrcBlockSize + 1), 16u);
}

TEST_F(RangeReadTest, RangesReadBackExactlyWhereverTheyFall) {
  ObjectLocation loc = WriteRaw(content_, id_);
  for (auto [offset, len] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 1}, {0, 4096}, {kCrcBlockSize - 10, 20}, {100000, 65536}, {content_.size() - 1, 1},
           {content_.size() - 5000, 5000}, {0, content_.size()}}) {
    std::string out;
    Status st = packs_.ReadRange(id_, loc, offset, len, &out);
    ASSERT_TRUE(st.ok()) << st.message() << " at " << offset;
    EXPECT_EQ(out, content_.substr(offset, len)) << "at " << offset;
  }
}

TEST_F(RangeReadTest, RecordsWithTablesStillListAndReadWhole) {
  ObjectLocation loc = WriteRaw(content_, id_);
  auto records = packs_.ListRecords(loc.pack);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  std::string whole;
  ASSERT_TRUE(packs_.ReadRecord(id_, loc, true, &whole).ok());
  EXPECT_EQ(whole, content_);
}

TEST_F(RangeReadTest, ADamagedBlockFailsOnlyTheReadsThatTouchIt) {
  ObjectLocation loc = WriteRaw(content_, id_);
  uint64_t payload = loc.offset + kRecordHeaderSize;
  FlipByteAt(loc, payload + 5 * kCrcBlockSize + 7);  // in block 5
  std::string out;
  EXPECT_EQ(packs_.ReadRange(id_, loc, 5 * kCrcBlockSize, 100, &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(packs_.ReadRange(id_, loc, 4 * kCrcBlockSize + 100, kCrcBlockSize, &out).code(), Status::Code::kCorruption);
  ASSERT_TRUE(packs_.ReadRange(id_, loc, 0, 4096, &out).ok());
  EXPECT_EQ(out, content_.substr(0, 4096));
  EXPECT_EQ(packs_.ReadRecord(id_, loc, true, &out).code(), Status::Code::kCorruption);
}

TEST_F(RangeReadTest, ADamagedTableIsFoundByAFullyVerifiedRead) {
  ObjectLocation loc = WriteRaw(content_, id_);
  uint64_t table = loc.offset + kRecordHeaderSize + loc.stored_len;
  FlipByteAt(loc, table + 4 * 3);  // the CRC of block 3
  std::string out;
  EXPECT_EQ(packs_.ReadRange(id_, loc, 3 * kCrcBlockSize, 10, &out).code(), Status::Code::kCorruption);
  // The payload itself is intact, but fsck-style reads check the table too.
  EXPECT_EQ(packs_.ReadRecord(id_, loc, true, &out).code(), Status::Code::kCorruption);
}

TEST_F(RangeReadTest, RangesOutsideTheRecordAreRefused) {
  ObjectLocation loc = WriteRaw(content_, id_);
  std::string out;
  EXPECT_EQ(packs_.ReadRange(id_, loc, content_.size() - 10, 11, &out).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(packs_.ReadRange(id_, loc, 0, 0, &out).code(), Status::Code::kInvalidArgument);
}

TEST_F(RangeReadTest, OnlyChunksLongerThanOneFrameAreCompressedAsFrames) {
  std::string stored;
  EXPECT_EQ(Compress(text_, 1, true, &stored), Codec::kZstdFrames);
  EXPECT_EQ(Compress(text_, 1, false, &stored), Codec::kZstd);
  EXPECT_EQ(Compress(text_.substr(0, kFrameSize), 1, true, &stored), Codec::kZstd);
  EXPECT_EQ(Compress(content_, 1, true, &stored), Codec::kRaw);
  // Whole-record decompression reads every frame.
  ASSERT_EQ(Compress(text_, 1, true, &stored), Codec::kZstdFrames);
  std::string back;
  ASSERT_TRUE(Decompress(Codec::kZstdFrames, stored, text_.size(), &back).ok());
  EXPECT_EQ(back, text_);
}

TEST_F(RangeReadTest, FramedRangesReadBackExactlyWhereverTheyFall) {
  ObjectLocation loc = WriteFramed(text_, text_id_);
  for (auto [offset, len] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 1}, {0, 4096}, {kFrameSize - 10, 20}, {100000, 65536}, {text_.size() - 1, 1},
           {text_.size() - 5000, 5000}, {9 * kFrameSize, text_.size() - 9 * kFrameSize}, {0, text_.size()}}) {
    std::string out;
    Status st = packs_.ReadRange(text_id_, loc, offset, len, &out);
    ASSERT_TRUE(st.ok()) << st.message() << " at " << offset;
    EXPECT_EQ(out, text_.substr(offset, len)) << "at " << offset;
  }
  std::string whole;
  ASSERT_TRUE(packs_.ReadRecord(text_id_, loc, true, &whole).ok());
  EXPECT_EQ(whole, text_);
  auto records = packs_.ListRecords(loc.pack);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].location.codec, Codec::kZstdFrames);
}

TEST_F(RangeReadTest, ADamagedFrameFailsOnlyTheReadsThatTouchIt) {
  ObjectLocation loc = WriteFramed(text_, text_id_);
  std::string stored;
  ASSERT_TRUE(packs_.ReadStored(text_id_, loc, &stored).ok());
  std::vector<uint32_t> ends;
  ASSERT_TRUE(FrameEnds(stored, text_.size(), &ends).ok());
  ASSERT_EQ(ends.size(), FrameCount(text_.size()));
  FlipByteAt(loc, loc.offset + kRecordHeaderSize + ends[3] + 20);  // inside frame 4
  std::string out;
  EXPECT_EQ(packs_.ReadRange(text_id_, loc, 4 * kFrameSize + 5, 10, &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(packs_.ReadRange(text_id_, loc, 3 * kFrameSize, kFrameSize + 1, &out).code(), Status::Code::kCorruption);
  ASSERT_TRUE(packs_.ReadRange(text_id_, loc, 3 * kFrameSize, kFrameSize, &out).ok());
  EXPECT_EQ(out, text_.substr(3 * kFrameSize, kFrameSize));
  EXPECT_EQ(packs_.ReadRecord(text_id_, loc, true, &out).code(), Status::Code::kCorruption);
}

TEST_F(RangeReadTest, ADamagedFrameTableIsCaughtByRangeAndFullReads) {
  ObjectLocation loc = WriteFramed(text_, text_id_);
  uint64_t table = loc.offset + kRecordHeaderSize + loc.stored_len;
  FlipByteAt(loc, table + 8 * 2);  // the end offset of frame 2
  std::string out;
  EXPECT_EQ(packs_.ReadRange(text_id_, loc, 2 * kFrameSize, 10, &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(packs_.ReadRange(text_id_, loc, 3 * kFrameSize, 10, &out).code(), Status::Code::kCorruption);
  ASSERT_TRUE(packs_.ReadRange(text_id_, loc, 0, 10, &out).ok());
  EXPECT_EQ(packs_.ReadRecord(text_id_, loc, true, &out).code(), Status::Code::kCorruption);
}

TEST_F(RangeReadTest, AFramedPayloadThatIsNotWholeFramesIsRefused) {
  std::string stored;
  ASSERT_EQ(Compress(text_, 1, true, &stored), Codec::kZstdFrames);
  EXPECT_EQ(RangeTable(Codec::kZstdFrames, stored, text_.size() + kFrameSize).status().code(),
            Status::Code::kCorruption);
  EXPECT_EQ(RangeTable(Codec::kZstdFrames, stored.substr(0, stored.size() - 1), text_.size()).status().code(),
            Status::Code::kCorruption);
  auto w = PackWriter::Create(&packs_);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)->Append(ObjectType::kChunk, text_id_, Codec::kZstdFrames, static_cast<uint32_t>(text_.size()),
                            stored + "junk", 0).ok());
}

}  // namespace
}  // namespace tusk
