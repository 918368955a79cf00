// Specification of the checks that keep a damaged index from crashing tusk
// (store/internal/lmdb_verify.h, LmdbEnv::Open): a truncated or bit-flipped
// data.mdb is refused with a message naming the rebuild command, or, where
// the flip touches nothing LMDB relies on, reads without a crash. A crash
// here kills the test binary, which fails the test.

#include "store/internal/lmdb_verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fs/fuse_ops.h"
#include "store/internal/lmdb.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using ::tusk::test_util::TempDir;

const std::vector<std::string> kTables = {"objects", "refs", "big"};
constexpr int kKeys = 750;

std::string Key(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-key-of-thirty-two-bytes-", i * 2654435761u);
  return buf;
}

std::string ReadAll(const std::string& path) {
  std::string out;
  EXPECT_TRUE(std::filesystem::exists(path)) << path;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

void WriteAll(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

bool NamesRebuild(const Status& st) { return st.message().find("tusk fsck --rebuild-index") != std::string::npos; }

// What a page of the healthy file is, as the walk of a copy tells.
enum class PageKind { kMeta, kBranch, kLeaf, kOverflow, kOther };

class LmdbVerifyTest : public ::testing::Test {
 protected:
  // An index shaped like tusk's: a table deep enough for branch pages, values
  // big enough for overflow pages, and deletions that leave free lists.
  void SetUp() override {
    dir_ = tmp_.Sub("index");
    std::filesystem::create_directories(dir_);
    data_ = dir_ + "/data.mdb";
    auto env = LmdbEnv::Open(dir_, kTables);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    for (int round = 0; round < 3; round++) {
      TUSK_ASSERT_OK((*env)->Update([&](LmdbTxn& txn) -> Status {
        for (int i = round * 250; i < (round + 1) * 250; i++)
          TUSK_RETURN_IF_ERROR(txn.Put((*env)->db(0), Key(i), std::string(26, static_cast<char>('a' + i % 26))));
        TUSK_RETURN_IF_ERROR(txn.Put((*env)->db(1), "ref" + std::to_string(round), std::string(32, 'r')));
        return txn.Put((*env)->db(2), "big" + std::to_string(round), std::string(9000 + round, 'B'));
      }));
    }
    TUSK_ASSERT_OK((*env)->Update([&](LmdbTxn& txn) -> Status {
      for (int i = 0; i < kKeys; i += 3) TUSK_RETURN_IF_ERROR(txn.Delete((*env)->db(0), Key(i)));
      return txn.Delete((*env)->db(2), "big1");
    }));
    env->reset();
    pristine_ = ReadAll(data_);
    ASSERT_GT(pristine_.size(), 20u * 4096);
  }

  // Every key and value of every table, or the first error.
  Result<std::map<std::string, std::string>> ReadEverything(LmdbEnv& env) {
    std::map<std::string, std::string> all;
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
    for (size_t t = 0; t < kTables.size(); t++) {
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(t), "", [&](std::string_view k, std::string_view v) {
        all[kTables[t] + "/" + std::string(k)] = std::string(v);
        return true;
      }));
    }
    for (int i = 0; i < kKeys; i++) {
      auto v = txn.Get(env.db(0), Key(i));
      if (!v.ok() && v.status().code() != Status::Code::kNotFound) return v.status();
    }
    return all;
  }

  // Kinds of the healthy file's pages: in use (by their headers) as the
  // walk of the healthy file finds them, everything else kOther.
  std::vector<PageKind> PageKinds() {
    auto env = LmdbEnv::Open(dir_, kTables);
    EXPECT_TRUE(env.ok()) << env.status().ToString();
    if (!env.ok()) return {};
    auto stats = (*env)->Verify();
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    if (!stats.ok()) return {};
    std::vector<PageKind> kinds(pristine_.size() / 4096, PageKind::kOther);
    kinds[0] = kinds[1] = PageKind::kMeta;
    for (size_t p = 2; p < kinds.size() && p < stats->page_state.size(); p++) {
      if (stats->page_state[p] != lmdb_verify::kPageInUse) continue;
      uint16_t flags;
      std::memcpy(&flags, pristine_.data() + p * 4096 + 10, 2);
      if (flags == 1) kinds[p] = PageKind::kBranch;
      if (flags == 2) kinds[p] = PageKind::kLeaf;
      if (flags == 4) kinds[p] = PageKind::kOverflow;
    }
    return kinds;
  }

  // Flips the byte at `at` of the data file (with `mask`), or back.
  void Flip(size_t at, uint8_t mask) {
    int fd = ::open(data_.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    char c = static_cast<char>(pristine_[at] ^ mask);
    ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(at)), 1);
    ::close(fd);
  }

  TempDir tmp_;
  std::string dir_, data_, pristine_;
};

TEST_F(LmdbVerifyTest, AHealthyIndexPassesAndEveryPageKindIsPresent) {
  auto env = LmdbEnv::Open(dir_, kTables);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  TUSK_ASSERT_OK_AND_ASSIGN(lmdb_verify::VerifyStats stats, (*env)->Verify());
  EXPECT_EQ(stats.tables, kTables.size());
  EXPECT_GT(stats.free_pages, 0u);
  std::map<PageKind, int> count;
  for (PageKind k : PageKinds()) count[k]++;
  EXPECT_GT(count[PageKind::kBranch], 0);
  EXPECT_GT(count[PageKind::kLeaf], 10);
  EXPECT_GT(count[PageKind::kOverflow], 0);
}

TEST_F(LmdbVerifyTest, ATruncatedIndexIsRefusedBeforeItIsMapped) {
  // Without the check, LmdbEnv::Open or the first read dies with SIGBUS.
  for (size_t len : {size_t{100}, size_t{4096}, size_t{8192}, size_t{3 * 4096}, pristine_.size() / 2,
                     pristine_.size() - 4096, pristine_.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(len));
    ASSERT_NO_FATAL_FAILURE(WriteAll(data_, pristine_.substr(0, len)));
    auto env = LmdbEnv::Open(dir_, kTables);
    ASSERT_FALSE(env.ok());
    EXPECT_EQ(env.status().code(), Status::Code::kCorruption) << env.status().ToString();
    EXPECT_TRUE(NamesRebuild(env.status())) << env.status().ToString();
  }
}

TEST_F(LmdbVerifyTest, FlippedBytesOfEveryPageKindAreRefusedOrHarmless) {
  std::vector<PageKind> kinds = PageKinds();
  std::map<PageKind, int> refused, read_back;
  const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
  int trial = 0;
  for (size_t page = 0; page < kinds.size(); page++) {
    // Every header byte, the first node pointers, and a spread over the rest.
    std::vector<size_t> offsets;
    for (size_t b = 0; b < 20; b++) offsets.push_back(b);
    for (size_t b = 20 + page % 7; b < 4096; b += 397) offsets.push_back(b);
    offsets.push_back(4095);
    for (size_t b : offsets) {
      size_t at = page * 4096 + b;
      ASSERT_NO_FATAL_FAILURE(Flip(at, masks[trial++ % 4]));
      SCOPED_TRACE("page " + std::to_string(page) + " byte " + std::to_string(b));
      auto env = LmdbEnv::Open(dir_, kTables);
      if (!env.ok()) {
        EXPECT_EQ(env.status().code(), Status::Code::kCorruption) << env.status().ToString();
        EXPECT_TRUE(NamesRebuild(env.status())) << env.status().ToString();
        refused[kinds[page]]++;
      } else {
        auto all = ReadEverything(**env);
        if (all.ok()) {
          read_back[kinds[page]]++;
        } else {
          EXPECT_EQ(all.status().code(), Status::Code::kCorruption) << all.status().ToString();
          EXPECT_TRUE(NamesRebuild(all.status())) << all.status().ToString();
        }
      }
      ASSERT_NO_FATAL_FAILURE(Flip(at, 0));
    }
    // The header of a page in use says what the page is and where its
    // nodes are: damage there is always found.
    if (kinds[page] == PageKind::kBranch || kinds[page] == PageKind::kLeaf) {
      for (size_t b : {size_t{0}, size_t{1}, size_t{10}, size_t{12}, size_t{13}, size_t{14}, size_t{15}}) {
        ASSERT_NO_FATAL_FAILURE(Flip(page * 4096 + b, 0x01));
        auto env = LmdbEnv::Open(dir_, kTables);
        EXPECT_FALSE(env.ok()) << "page " << page << " header byte " << b << " flipped went unnoticed";
        ASSERT_NO_FATAL_FAILURE(Flip(page * 4096 + b, 0));
      }
    }
  }
  // Each kind of page was hit, and damage to pages in use was found.
  for (PageKind k : {PageKind::kMeta, PageKind::kBranch, PageKind::kLeaf, PageKind::kOverflow})
    EXPECT_GT(refused[k], 0) << "page kind " << static_cast<int>(k);
  EXPECT_GT(read_back[PageKind::kOther], 0) << "flips in free pages change nothing";
}

TEST_F(LmdbVerifyTest, TheMetaPagesMustHoldConsecutiveTransactions) {
  // An older snapshot made to look newest would silently undo the last
  // commit; the pair of transaction ids gives it away.
  for (int slot : {0, 1}) {
    std::string bytes = pristine_;
    size_t txnid_at = slot * 4096 + 16 + 128;
    uint64_t txnid;
    std::memcpy(&txnid, bytes.data() + txnid_at, 8);
    txnid += 2;  // keeps the parity of the slot
    std::memcpy(bytes.data() + txnid_at, &txnid, 8);
    ASSERT_NO_FATAL_FAILURE(WriteAll(data_, bytes));
    auto env = LmdbEnv::Open(dir_, kTables);
    ASSERT_FALSE(env.ok()) << "slot " << slot;
    EXPECT_TRUE(NamesRebuild(env.status())) << env.status().ToString();
  }
}

// The verified stamp (lmdb.h): a walk that passed is not repeated while
// only LMDB writes the file, and any other write brings it back.
class VerifiedStampTest : public LmdbVerifyTest {
 protected:
  void SetUp() override {
    LmdbVerifyTest::SetUp();
    if (HasFatalFailure()) return;
    // The fixture's open walked and stamped, and its commits kept the stamp.
    if (!std::filesystem::exists(dir_ + "/verified"))
      GTEST_SKIP() << "no multigrain timestamps here (Linux 6.13+ on ext4, xfs, btrfs or tmpfs): every open walks";
  }
  bool OpenWalks() {
    auto env = LmdbEnv::Open(dir_, kTables);
    EXPECT_TRUE(env.ok()) << env.status().ToString();
    return env.ok() && (*env)->walked_at_open();
  }
  // A leaf page in use, and the offset of its flags (always checked).
  size_t LeafFlagsOffset() {
    std::vector<PageKind> kinds = PageKinds();
    for (size_t p = 0; p < kinds.size(); p++)
      if (kinds[p] == PageKind::kLeaf) return p * 4096 + 10;
    ADD_FAILURE() << "no leaf page";
    return 0;
  }
};

TEST_F(VerifiedStampTest, AWalkedIndexIsNotWalkedAgainWhileOnlyLmdbWritesIt) {
  EXPECT_FALSE(OpenWalks());
  {
    auto env = LmdbEnv::Open(dir_, kTables);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    TUSK_ASSERT_OK((*env)->Update([&](LmdbTxn& txn) { return txn.Put((*env)->db(0), "new key", "new value"); }));
    TUSK_ASSERT_OK((*env)->Update([&](LmdbTxn& txn) { return txn.Delete((*env)->db(0), Key(1)); }));
  }
  EXPECT_FALSE(OpenWalks()) << "commits through LmdbEnv keep the stamp true";
  auto env = LmdbEnv::Open(dir_, kTables);
  ASSERT_TRUE(env.ok());
  TUSK_ASSERT_OK_AND_ASSIGN(auto all, ReadEverything(**env));
  EXPECT_EQ(all.at("objects/new key"), "new value");
}

TEST_F(VerifiedStampTest, DamageAfterTheStampIsStillFound) {
  size_t at = LeafFlagsOffset();
  ASSERT_FALSE(OpenWalks());
  ASSERT_NO_FATAL_FAILURE(Flip(at, 0x01));
  auto env = LmdbEnv::Open(dir_, kTables);
  ASSERT_FALSE(env.ok()) << "the flip changed the file's ctime, so the open walked and found it";
  EXPECT_TRUE(NamesRebuild(env.status())) << env.status().ToString();
  ASSERT_NO_FATAL_FAILURE(Flip(at, 0));
  EXPECT_TRUE(OpenWalks()) << "a failed walk leaves no stamp";
  EXPECT_FALSE(OpenWalks());
}

TEST_F(VerifiedStampTest, AReplacedFileOrABadStampMeansAWalk) {
  ASSERT_NO_FATAL_FAILURE(WriteAll(data_ + ".copy", ReadAll(data_)));
  std::filesystem::rename(data_ + ".copy", data_);
  EXPECT_TRUE(OpenWalks()) << "another file (inode) in its place";
  EXPECT_FALSE(OpenWalks());
  for (std::string bad : {std::string(), std::string("tusk index verified 1 1 2 3\n"),
                          std::string("garbage\n"), std::string(300, '9')}) {
    ASSERT_NO_FATAL_FAILURE(WriteAll(dir_ + "/verified", bad));
    EXPECT_TRUE(OpenWalks()) << "stamp '" << bad << "'";
  }
  std::filesystem::remove(dir_ + "/verified");
  EXPECT_TRUE(OpenWalks());
  ::setenv("TUSK_INDEX_ALWAYS_WALK", "1", 1);
  EXPECT_TRUE(OpenWalks());
  EXPECT_TRUE(OpenWalks());
  ::unsetenv("TUSK_INDEX_ALWAYS_WALK");
}

TEST_F(VerifiedStampTest, AReadOnlyOpenReadsTheStampButWritesNone) {
  std::filesystem::remove(dir_ + "/verified");
  auto env = LmdbEnv::Open(dir_, kTables, LmdbAccess::kReadOnly);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_TRUE((*env)->walked_at_open());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/verified"));
  env->reset();
  ASSERT_TRUE(OpenWalks());  // read-write: stamps
  auto again = LmdbEnv::Open(dir_, kTables, LmdbAccess::kReadOnly);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE((*again)->walked_at_open()) << "a read-only open trusts a true stamp";
}

TEST(LmdbErrorTest, ResourceErrorsKeepAnErrnoAndDamageIsCorruption) {
  struct Case {
    int rc;
    Status::Code code;
    int err;
  };
  for (Case c : {Case{MDB_READERS_FULL, Status::Code::kBusy, EAGAIN}, Case{MDB_TXN_FULL, Status::Code::kIoError, ENOMEM},
                 Case{MDB_DBS_FULL, Status::Code::kIoError, ENOMEM}, Case{MDB_MAP_FULL, Status::Code::kNoSpace, ENOSPC},
                 Case{MDB_MAP_RESIZED, Status::Code::kBusy, EAGAIN}, Case{MDB_PANIC, Status::Code::kIoError, EIO},
                 Case{MDB_BAD_VALSIZE, Status::Code::kInvalidArgument, EINVAL},
                 Case{MDB_NOTFOUND, Status::Code::kNotFound, ENOENT}, Case{ENOMEM, Status::Code::kIoError, ENOMEM},
                 Case{EACCES, Status::Code::kIoError, EACCES}, Case{ENOSPC, Status::Code::kNoSpace, ENOSPC}}) {
    Status st = LmdbError(c.rc, "what");
    EXPECT_EQ(st.code(), c.code) << c.rc << ": " << st.ToString();
    EXPECT_EQ(st.sys_errno(), c.err) << c.rc << ": " << st.ToString();
    EXPECT_FALSE(NamesRebuild(st)) << "a resource error is not damage: " << st.ToString();
    // The errno reaches the FUSE reply; only damage answers EIO.
    if (c.code != Status::Code::kNotFound && c.code != Status::Code::kNoSpace) {
      EXPECT_EQ(fs::ErrnoOf(st), c.err) << c.rc;
    }
  }
  for (int rc : {MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_CURSOR_FULL}) {
    Status st = LmdbError(rc, "what");
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << rc;
    EXPECT_TRUE(NamesRebuild(st)) << st.ToString();
    EXPECT_EQ(fs::ErrnoOf(st), EIO);
  }
}

}  // namespace
}  // namespace tusk
