// Specification of PackMirror (store/backend/pack_mirror.h): the disk cache
// of records read from remote packs, kept as sparse copies of the packs.

#include "store/backend/pack_mirror.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;

// A pack of `n` records of `size` random bytes each, as a remote holds it.
struct SourcePack {
  SourcePack(const std::string& dir, int n, size_t size, uint64_t seed) : packs(dir) {
    auto writer = PackWriter::Create(&packs);
    EXPECT_TRUE(writer.ok());
    for (int i = 0; i < n; i++) {
      std::string content = RandomBytes(size, seed + static_cast<uint64_t>(i));
      ObjectId id = Sha256::Of(content.data(), content.size());
      auto loc = (*writer)->Append(ObjectType::kChunk, id, Codec::kRaw, static_cast<uint32_t>(content.size()), content,
                                   Crc32c(content.data(), content.size()));
      EXPECT_TRUE(loc.ok());
      records.push_back({id, *loc});
      contents.push_back(content);
    }
    EXPECT_TRUE((*writer)->Seal().ok());
    id = records[0].second.pack;
    bytes = test_util::ReadFile(packs.PathOf(id));
  }
  PackMirror::Record RecordAt(int i) const {
    const ObjectLocation& loc = records[i].second;
    return {loc.offset, std::string_view(bytes).substr(loc.offset, RecordExtent(loc))};
  }
  std::string Header() const { return bytes.substr(0, kPackHeaderSize); }

  PackDirectory packs;
  PackId id = 0;
  std::string bytes;
  std::vector<std::pair<ObjectId, ObjectLocation>> records;
  std::vector<std::string> contents;
};

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

TEST(PackMirrorTest, MirroredRecordsReadAsLocalOnesAndTheRestIsAMiss) {
  TempDir tmp;
  SourcePack source(tmp.Sub("remote"), 8, 200000, 1);
  PackMirror mirror(tmp.Sub("mirror"), uint64_t{1} << 30, 0);
  TUSK_ASSERT_OK_AND_ASSIGN(bool created,
                            mirror.Write(source.id, source.bytes.size(), source.Header(), {source.RecordAt(2), source.RecordAt(5)}));
  EXPECT_TRUE(created);
  TUSK_ASSERT_OK_AND_ASSIGN(created, mirror.Write(source.id, source.bytes.size(), source.Header(), {source.RecordAt(6)}));
  EXPECT_FALSE(created);

  PackDirectory reader(NewLocalPackStore(mirror.dir(), Env::Default()));
  for (int i = 0; i < 8; i++) {
    SCOPED_TRACE("record " + std::to_string(i));
    const auto& [id, loc] = source.records[i];
    bool mirrored = i == 2 || i == 5 || i == 6;
    TUSK_ASSERT_OK_AND_ASSIGN(bool held, reader.HoldsRecord(id, loc));
    EXPECT_EQ(held, mirrored);
    std::string plain;
    Status st = reader.ReadRecord(id, loc, /*verify_hash=*/true, &plain);
    EXPECT_EQ(st.ok(), mirrored) << st.ToString();
    if (mirrored) {
      EXPECT_EQ(plain, source.contents[i]);
    }
  }
  // Parts of a mirrored record read through its range table.
  std::string part;
  TUSK_ASSERT_OK(reader.ReadRange(source.records[5].first, source.records[5].second, 70000, 100, &part));
  EXPECT_EQ(part, source.contents[5].substr(70000, 100));
  // Sparse: the file takes about the three records, not the pack.
  EXPECT_LT(AllocatedBytes(reader.PathOf(source.id)), source.bytes.size() / 2);
  EXPECT_EQ(mirror.bytes(), AllocatedBytes(reader.PathOf(source.id)));
  // A pack never mirrored is a miss, not an error.
  auto other = source.records[0].second;
  other.pack += 1;
  TUSK_ASSERT_OK_AND_ASSIGN(bool held, reader.HoldsRecord(source.records[0].first, other));
  EXPECT_FALSE(held);
}

TEST(PackMirrorTest, ARecordThatDoesNotFitThePackIsRefused) {
  TempDir tmp;
  SourcePack source(tmp.Sub("remote"), 1, 1000, 1);
  PackMirror mirror(tmp.Sub("mirror"), uint64_t{1} << 30, 0);
  PackMirror::Record past_the_end{source.bytes.size() - 10, std::string_view(source.bytes).substr(0, 100)};
  EXPECT_EQ(mirror.Write(source.id, source.bytes.size(), source.Header(), {past_the_end}).status().code(),
            Status::Code::kInvalidArgument);
  PackMirror::Record over_the_header{0, std::string_view(source.bytes).substr(0, 100)};
  EXPECT_EQ(mirror.Write(source.id, source.bytes.size(), source.Header(), {over_the_header}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(PackMirrorTest, TheLeastRecentlyUsedPacksGoWholeWhenItOutgrowsItsCapacity) {
  TempDir tmp;
  std::vector<std::unique_ptr<SourcePack>> sources;
  for (int p = 0; p < 4; p++) sources.push_back(std::make_unique<SourcePack>(tmp.Sub("remote" + std::to_string(p)), 4, 300000, 10 * p));
  // Room for about two packs' worth of records (1.2 MB each).
  PackMirror mirror(tmp.Sub("mirror"), 3'000'000, 0);
  PackDirectory reader(NewLocalPackStore(mirror.dir(), Env::Default()));
  auto write_all = [&](const SourcePack& s) {
    std::vector<PackMirror::Record> records;
    for (int i = 0; i < 4; i++) records.push_back(s.RecordAt(i));
    TUSK_ASSERT_OK(mirror.Write(s.id, s.bytes.size(), s.Header(), records).status());
  };
  write_all(*sources[0]);
  write_all(*sources[1]);
  write_all(*sources[2]);  // over: pack 0, the oldest, goes
  EXPECT_LE(mirror.bytes(), 3'000'000u);
  auto holds = [&](int p) {
    auto held = reader.HoldsRecord(sources[p]->records[0].first, sources[p]->records[0].second);
    return held.ok() && *held;
  };
  EXPECT_FALSE(holds(0));
  EXPECT_TRUE(holds(1));
  EXPECT_TRUE(holds(2));
}

TEST(PackMirrorTest, AReadMakesAPackRecentlyUsed) {
  TempDir tmp;
  std::vector<std::unique_ptr<SourcePack>> sources;
  for (int p = 0; p < 3; p++) sources.push_back(std::make_unique<SourcePack>(tmp.Sub("remote" + std::to_string(p)), 4, 300000, 10 * p));
  PackMirror mirror(tmp.Sub("mirror"), 3'000'000, 0);
  PackDirectory reader(NewLocalPackStore(mirror.dir(), Env::Default()));
  auto write_all = [&](const SourcePack& s) {
    std::vector<PackMirror::Record> records;
    for (int i = 0; i < 4; i++) records.push_back(s.RecordAt(i));
    TUSK_ASSERT_OK(mirror.Write(s.id, s.bytes.size(), s.Header(), records).status());
  };
  write_all(*sources[0]);
  write_all(*sources[1]);
  mirror.Touch(sources[0]->id);  // read since: pack 1 is now the least recently used
  write_all(*sources[2]);
  auto holds = [&](int p) {
    auto held = reader.HoldsRecord(sources[p]->records[0].first, sources[p]->records[0].second);
    return held.ok() && *held;
  };
  EXPECT_TRUE(holds(0));
  EXPECT_FALSE(holds(1));
  EXPECT_TRUE(holds(2));
}

TEST(PackMirrorTest, TheCapacityBelongsToTheDirectory) {
  TempDir tmp;
  std::string dir = tmp.Sub("mirror");
  SourcePack source(tmp.Sub("remote"), 1, 1000, 1);
  {
    PackMirror sized(dir, 50'000'000, 8'000'000'000);
    TUSK_ASSERT_OK(sized.Write(source.id, source.bytes.size(), source.Header(), {source.RecordAt(0)}).status());
    EXPECT_EQ(sized.capacity(), 50'000'000u);
  }
  PackMirror plain(dir, 0, 8'000'000'000);  // a process that gives none
  EXPECT_EQ(plain.capacity(), 50'000'000u);
  EXPECT_GT(plain.bytes(), 0u) << "what was mirrored before is accounted for";
  PackMirror fresh(tmp.Sub("other"), 0, 8'000'000'000);
  EXPECT_EQ(fresh.capacity(), 8'000'000'000u);
}

}  // namespace
}  // namespace tusk
