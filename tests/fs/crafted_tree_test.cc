// A tree whose chunk list lies about its chunks' lengths is refused by every
// reader: the mount answers EIO (never bytes past the chunk, which would be
// the daemon's memory), `tusk cat` and `tusk export` fail naming the file,
// and `tusk fsck` reports the tree and the files it breaks. The store is
// built with the store's own encoders, so every id and checksum is right:
// only the claim "this chunk holds N bytes" is false. See store/FORMAT.md
// ("Tree pages": chunk lengths sum to size, and are the chunks' lengths).
#include <sys/stat.h>

#include "store/objects.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

constexpr uint64_t kHuge = uint64_t{1} << 62;

class CraftedTreeTest : public ::testing::Test {
 protected:
  // d@main: good.txt (a 22-byte chunk, listed as 22 bytes), bad.txt (the
  // same chunk listed as 30 bytes), huge.bin (listed as 2^62 bytes) and
  // range.bin (a 100000-byte chunk with a range table, listed as 2^62).
  void SetUp() override {
    store_ = tmp_.Sub("store");
    ASSERT_TRUE(Repository::Create(store_, StoreConfig{}).ok());
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    ASSERT_TRUE((*repo)->CreateDataset("d").ok());
    auto ws = (*repo)->BeginWrite();
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ObjectId small = Sha256::Of(kSmall.data(), kSmall.size());
    ASSERT_TRUE((*ws)->PutChunk(small, kSmall).ok());
    big_ = RandomBytes(100000, 7);
    ObjectId big = Sha256::Of(big_.data(), big_.size());
    ASSERT_TRUE((*ws)->PutChunk(big, big_).ok());
    auto file = [](const std::string& name, const ObjectId& chunk, uint64_t listed) {
      TreeEntry e;
      e.name = name;
      e.kind = EntryKind::kFile;
      e.mode = S_IFREG | 0644;
      e.size = listed;
      e.mtime_sec = 1700000000;
      e.chunks = {{chunk, listed}};
      return e;
    };
    auto root = WriteDirectory(**ws, {file("bad.txt", small, 30), file("good.txt", small, kSmall.size()),
                                      file("huge.bin", small, kHuge), file("range.bin", big, kHuge)});
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    Commit c;
    c.dataset = "d";
    c.root = *root;
    c.author = "crafter";
    c.time_sec = 1700000000;
    c.message = "lying chunk lists";
    c.file_count = 4;
    auto commit = (*ws)->CommitToBranch(c, "main", std::nullopt);
    ASSERT_TRUE(commit.ok()) << commit.status().ToString();
    root_ = *root;
    commit_ = *commit;
  }

  void TearDown() override { mounts_.CleanupAll(); }

  std::string MakeMountpoint(const std::string& name) {
    std::string p = tmp_.Sub(name);
    EXPECT_EQ(::mkdir(p.c_str(), 0755), 0) << p << ": " << Errno();
    return p;
  }

  // Reads [offset, offset+len) of `path`: the bytes, or nullopt with *err.
  static std::optional<std::string> ReadAt(const std::string& path, uint64_t offset, size_t len, int* err) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *err = errno;
      return std::nullopt;
    }
    auto got = PreadRange(fd, offset, len, err);
    ::close(fd);
    return got;
  }

  // Every lying file of the mounted tree at `dir` fails with EIO; good.txt
  // reads back whole, before and after.
  void ExpectLiesRefused(const std::string& dir) {
    EXPECT_EQ(ReadOr(dir + "/good.txt"), kSmall);  // the chunk is now cached
    struct stat st;
    ASSERT_EQ(::stat((dir + "/bad.txt").c_str(), &st), 0) << Errno();
    EXPECT_EQ(st.st_size, 30);
    struct Case {
      const char* name;
      uint64_t offset;
    };
    for (const Case& c : {Case{"bad.txt", 0}, Case{"huge.bin", 0}, Case{"huge.bin", uint64_t{1} << 40},
                          Case{"range.bin", 50000}, Case{"range.bin", 0}}) {
      SCOPED_TRACE(std::string(c.name) + " at " + std::to_string(c.offset));
      int err = 0;
      auto got = ReadAt(dir + "/" + c.name, c.offset, 4096, &err);
      EXPECT_FALSE(got.has_value()) << "read returned " << (got ? got->size() : 0) << " bytes";
      EXPECT_EQ(err, EIO) << Errno(err);
    }
    EXPECT_EQ(ReadOr(dir + "/good.txt"), kSmall);
  }

  static inline const std::string kSmall = "twenty-two bytes here\n";
  TempDir tmp_;
  std::string store_, big_;
  ObjectId root_, commit_;
  MountGuard mounts_;  // declared last: unmounts before the directories go
};

TEST_F(CraftedTreeTest, MountAnswersEioAndNeverBytesPastTheChunk) {
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store_, {"--read-only", "d@main"}, mnt, tmp_.Sub("mount.log")));
  ExpectLiesRefused(mnt);
}

TEST_F(CraftedTreeTest, WorkspaceMountAnswersEioToo) {
  std::string mnt = MakeMountpoint("mnt");
  ASSERT_TRUE(mounts_.StartForeground(store_, {"d@main"}, mnt, tmp_.Sub("mount.log")));
  ExpectLiesRefused(mnt);
}

TEST_F(CraftedTreeTest, CatRefusesNamingTheFile) {
  for (const char* name : {"bad.txt", "huge.bin", "range.bin"}) {
    RunResult r = Tusk(store_, {"cat", "d@main", name});
    EXPECT_NE(r.exit_code, 0) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_TRUE(HasSubstr(r.err, name)) << r;
    EXPECT_TRUE(HasSubstr(r.err, "but the file's chunk list gives it")) << r;
  }
  RunResult good = Tusk(store_, {"cat", "d@main", "good.txt"});
  EXPECT_EQ(good.exit_code, 0) << good;
  EXPECT_EQ(good.out, kSmall);
}

TEST_F(CraftedTreeTest, ExportRefusesNamingTheFile) {
  std::string dest = tmp_.Sub("out");
  RunResult r = Tusk(store_, {"export", "d@main", dest});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.err, dest + "/bad.txt")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "holds 22 bytes, but the file's chunk list gives it 30")) << r;
  // Nothing of the lie was written: no zero padding up to the listed size.
  struct stat st;
  if (::stat((dest + "/bad.txt").c_str(), &st) == 0) {
    EXPECT_EQ(st.st_size, 0);
  }
}

TEST_F(CraftedTreeTest, FsckReportsTheTreeAndEveryFileItBreaks) {
  RunResult r = Tusk(store_, {"fsck"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.out, "BAD tree " + root_.Hex() + ": file ")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "but the file's chunk list gives it")) << r;
  std::string label = "d@" + commit_.ShortHex() + ":";
  for (const char* name : {"bad.txt", "huge.bin", "range.bin"}) {
    EXPECT_TRUE(HasSubstr(r.out, "breaks " + label + "/" + name + "\n")) << name << r;
  }
  EXPECT_FALSE(HasSubstr(r.out, "good.txt")) << r;
}

}  // namespace
}  // namespace tusk::fstest
