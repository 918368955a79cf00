// Raw records carry a CRC per 16 KiB block so small reads verify only what
// they touch.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;

class BlockCrcTest : public ::testing::Test {
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
};

TEST_F(BlockCrcTest, OnlyRawRecordsLongerThanOneBlockHaveATable) {
  EXPECT_TRUE(HasBlockCrcs(Codec::kRaw, kCrcBlockSize + 1));
  EXPECT_FALSE(HasBlockCrcs(Codec::kRaw, kCrcBlockSize));
  EXPECT_FALSE(HasBlockCrcs(Codec::kZstd, 1 << 20));
  EXPECT_EQ(BlockCrcTableSize(Codec::kRaw, 3 * kCrcBlockSize + 1), 16u);
}

TEST_F(BlockCrcTest, RangesReadBackExactlyWhereverTheyFall) {
  ObjectLocation loc = WriteRaw(content_, id_);
  for (auto [offset, len] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 1}, {0, 4096}, {kCrcBlockSize - 10, 20}, {100000, 65536}, {content_.size() - 1, 1},
           {content_.size() - 5000, 5000}, {0, content_.size()}}) {
    std::string out;
    Status st = packs_.ReadRawRange(id_, loc, offset, len, &out);
    ASSERT_TRUE(st.ok()) << st.message() << " at " << offset;
    EXPECT_EQ(out, content_.substr(offset, len)) << "at " << offset;
  }
}

TEST_F(BlockCrcTest, RecordsWithTablesStillListAndReadWhole) {
  ObjectLocation loc = WriteRaw(content_, id_);
  auto records = packs_.ListRecords(loc.pack);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  std::string whole;
  ASSERT_TRUE(packs_.ReadRecord(id_, loc, true, &whole).ok());
  EXPECT_EQ(whole, content_);
}

TEST_F(BlockCrcTest, ADamagedBlockFailsOnlyTheReadsThatTouchIt) {
  ObjectLocation loc = WriteRaw(content_, id_);
  uint64_t payload = loc.offset + kRecordHeaderSize;
  FlipByteAt(loc, payload + 5 * kCrcBlockSize + 7);  // in block 5
  std::string out;
  EXPECT_EQ(packs_.ReadRawRange(id_, loc, 5 * kCrcBlockSize, 100, &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(packs_.ReadRawRange(id_, loc, 4 * kCrcBlockSize + 100, kCrcBlockSize, &out).code(), Status::Code::kCorruption);
  ASSERT_TRUE(packs_.ReadRawRange(id_, loc, 0, 4096, &out).ok());
  EXPECT_EQ(out, content_.substr(0, 4096));
  EXPECT_EQ(packs_.ReadRecord(id_, loc, true, &out).code(), Status::Code::kCorruption);
}

TEST_F(BlockCrcTest, ADamagedTableIsFoundByAFullyVerifiedRead) {
  ObjectLocation loc = WriteRaw(content_, id_);
  uint64_t table = loc.offset + kRecordHeaderSize + loc.stored_len;
  FlipByteAt(loc, table + 4 * 3);  // the CRC of block 3
  std::string out;
  EXPECT_EQ(packs_.ReadRawRange(id_, loc, 3 * kCrcBlockSize, 10, &out).code(), Status::Code::kCorruption);
  // The payload itself is intact, but fsck-style reads check the table too.
  EXPECT_EQ(packs_.ReadRecord(id_, loc, true, &out).code(), Status::Code::kCorruption);
}

TEST_F(BlockCrcTest, RangesOutsideTheRecordAreRefused) {
  ObjectLocation loc = WriteRaw(content_, id_);
  std::string out;
  EXPECT_EQ(packs_.ReadRawRange(id_, loc, content_.size() - 10, 11, &out).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(packs_.ReadRawRange(id_, loc, 0, 0, &out).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace tusk
