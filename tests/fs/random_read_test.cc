// Random small reads through SnapshotFs return exactly the file's bytes,
// whether served from whole cached chunks, from verified 16 KiB blocks of raw
// chunks, or from single zstd frames of compressed chunks.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <random>

#include "fs/snapshot_fs.h"
#include "store/importer.h"
#include "tests/store/test_util.h"

namespace tusk::fs {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;
using test_util::WriteFile;

// A compressible file (CSV-like digits) or an incompressible one.
enum class Content { kRandom, kCompressible };

std::string MakeContent(Content kind) {
  if (kind == Content::kRandom) return RandomBytes(3 << 20, 9);
  std::string s;
  for (uint64_t x = 7; s.size() < (3u << 20); x = x * 6364136223846793005ull + 1442695040888963407ull)
    s += std::to_string(x >> 35) + ((x >> 20) % 10 == 0 ? "\n" : ",");
  s.resize(3 << 20);
  return s;
}

class RandomReadTest : public ::testing::TestWithParam<Content> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Repository::Create(dir_.Sub("store"), StoreConfig()).ok());
    auto repo = Repository::Open(dir_.Sub("store"));
    ASSERT_TRUE(repo.ok());
    repo_ = std::move(repo).value();
    ASSERT_TRUE(repo_->CreateDataset("d").ok());
    WriteFile(dir_.Sub("src/r.bin"), content_);
    ImportOptions options;
    options.message = "m";
    auto r = ImportDirectory(*repo_, dir_.Sub("src"), "d", "main", options);
    ASSERT_TRUE(r.ok() && r->commit);
    FsOptions fs_options;
    fs_options.pinned_dataset = "d";
    fs_options.pinned_commit = *r->commit;
    fs_options.chunk_cache_bytes = 4 << 20;
    fs_options.prefetch_threads = 0;  // only what reads load
    fs_ = std::make_unique<SnapshotFs>(repo_.get(), fs_options);
    auto commit = repo_->ReadCommit(*r->commit);
    ASSERT_TRUE(commit.ok());
    auto entry = LookupPath(*repo_, commit->root, "r.bin");
    ASSERT_TRUE(entry.ok());
    entry_ = *entry;
    auto e = fs_->Lookup(kRootIno, "r.bin");
    ASSERT_TRUE(e.ok());
    ino_ = e->attr.ino;
  }

  std::string ReadAt(uint64_t offset, size_t size) {
    auto slices = fs_->Read(ino_, offset, size);
    EXPECT_TRUE(slices.ok()) << slices.status().message();
    std::string out;
    if (slices.ok())
      for (const auto& s : *slices) out.append(s.data, s.len);
    return out;
  }

  TempDir dir_;
  const std::string content_ = MakeContent(GetParam());
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<SnapshotFs> fs_;
  uint64_t ino_ = 0;
  TreeEntry entry_;
};

TEST_P(RandomReadTest, EveryChunkCanBeReadInPieces) {
  // The premise of the tests below: the store gave every chunk of this file a
  // range table (16 KiB block CRCs when raw, 32 KiB frames when compressed).
  ASSERT_GT(entry_.chunks.size(), 3u);
  for (const auto& c : entry_.chunks) {
    auto part = repo_->ReadChunkRange(c, c.length / 2, 100);
    ASSERT_TRUE(part.ok()) << part.status().message();
  }
}

TEST_P(RandomReadTest, RandomSmallReadsReturnTheFilesBytes) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 500; i++) {
    uint64_t offset = rng() % content_.size();
    size_t size = 1 + rng() % 8192;
    std::string got = ReadAt(offset, size);
    ASSERT_EQ(got, content_.substr(offset, size)) << "read " << size << " at " << offset;
  }
}

TEST_P(RandomReadTest, ADamagedBlockFailsRandomReadsOfItButNotOfOtherBlocks) {
  // Corrupt one byte in the middle of the data pack's payload area (the
  // largest pack: the dataset's creation record has a small one of its own).
  std::string pack;
  uintmax_t largest = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.Sub("store/packs")))
    if (e.path().extension() == ".pack" && e.file_size() > largest) {
      largest = e.file_size();
      pack = e.path().string();
    }
  ASSERT_FALSE(pack.empty());
  uint64_t size = std::filesystem::file_size(pack);
  int fd = ::open(pack.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c;
  uint64_t at = size / 2;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(at)), 1);
  c ^= 0x40;
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(at)), 1);
  ::close(fd);
  // Random small reads over the whole file: some fail (never wrong bytes),
  // most succeed. 2,000 of them: a 4 KiB read lands on a given 16 KiB block
  // of 3 MiB with p ~ 0.007, and where the damaged block is depends on the
  // order the import's threads appended records in (with 400, about one
  // run in 15 read no damaged block at all).
  std::mt19937_64 rng(2);
  int failed = 0, ok = 0;
  for (int i = 0; i < 2000; i++) {
    uint64_t offset = rng() % content_.size();
    auto slices = fs_->Read(ino_, offset, 4096);
    if (!slices.ok()) {
      EXPECT_EQ(slices.status().code(), Status::Code::kCorruption);
      failed++;
      continue;
    }
    std::string got;
    for (const auto& s : *slices) got.append(s.data, s.len);
    ASSERT_EQ(got, content_.substr(offset, got.size())) << "wrong bytes returned at " << offset;
    ok++;
  }
  EXPECT_GT(ok, 1500);
  EXPECT_GT(failed, 0);
}

INSTANTIATE_TEST_SUITE_P(RawAndCompressed, RandomReadTest,
                         ::testing::Values(Content::kRandom, Content::kCompressible),
                         [](const auto& info) { return info.param == Content::kRandom ? "Raw" : "Compressed"; });

}  // namespace
}  // namespace tusk::fs
