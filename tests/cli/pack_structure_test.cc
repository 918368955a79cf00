// A pack's structure is checked, not only its records: fsck reports a damaged
// header, footer or trailer and a truncated pack, naming the pack and what is
// wrong, and readers refuse a pack format version they do not know. See
// store/FORMAT.md ("Pack files") and PackDirectory::CheckPack.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "store/internal/crc32c.h"
#include "tests/cli/cli_helpers.h"
#include "tests/sanitizer_scale.h"

namespace tusk::cli_test {
namespace {

constexpr uint64_t kHeaderBytes = 16;
constexpr uint64_t kFooterEntryBytes = 52;  // FORMAT.md said 56; writers always wrote 52
constexpr uint64_t kTrailerBytes = 24;

class PackStructureTest : public CliTest {
 protected:
  // One import: a pack holding three chunks, a tree, a commit and the
  // branch's ref record (beside the dataset creation's own small pack).
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("src"), {File("a.txt", "alpha\n"), File("b.bin", RandomBytes(5000, 1)),
                                                   File("c.bin", RandomBytes(70000, 2))}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "one pack"));
    std::string largest;
    for (const auto& [path, info] : Snapshot(store() + "/packs")) {
      if (!S_ISREG(info.mode) || path.size() <= 5 || path.substr(path.size() - 5) != ".pack") continue;
      packs_.push_back(path);
      std::string bytes = ReadFileOrDie(store() + "/packs/" + path);
      if (bytes.size() > original_.size()) {
        original_ = bytes;
        largest = path;
      }
    }
    ASSERT_EQ(packs_.size(), 2u) << Join(packs_);
    pack_ = store() + "/packs/" + largest;
    name_ = largest.substr(largest.rfind('/') + 1, 16);
    std::memcpy(&footer_offset_, original_.data() + original_.size() - kTrailerBytes, 8);
    std::memcpy(&count_, original_.data() + original_.size() - kTrailerBytes + 8, 4);
    ASSERT_EQ(count_, 6u);
    ASSERT_EQ(footer_offset_ + count_ * kFooterEntryBytes + kTrailerBytes, original_.size());
    ASSERT_NO_FATAL_FAILURE(ExpectFsckClean());
  }

  // Replaces the pack's bytes (packs are 0444; the tests run as root).
  void Rewrite(const std::string& bytes) {
    int fd = ::open(pack_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    ASSERT_GE(fd, 0) << pack_ << ": " << std::strerror(errno);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }

  // fsck fails and reports this pack, with `what` in the pack's line.
  void ExpectFsckReportsPack(const std::string& what, const std::string& context) {
    RunResult r = Run("fsck");
    EXPECT_EQ(r.exit_code, 1) << context << r;
    bool named = false;
    for (const auto& line : Lines(r.out))
      if (line.rfind("BAD pack " + name_ + ": ", 0) == 0 && HasSubstr(line, what)) named = true;
    EXPECT_TRUE(named) << context << ": no 'BAD pack " << name_ << ": ..." << what << "' line" << r;
  }

  // Flips every `step`th byte of [from, to), one at a time, and expects fsck
  // to report the pack each time; the pack is restored after each flip.
  void ExpectEveryFlipReported(uint64_t from, uint64_t to, const std::string& part, uint64_t step = 1) {
    for (uint64_t at = from; at < to; at += step) {
      std::string damaged = original_;
      damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
      ASSERT_NO_FATAL_FAILURE(Rewrite(damaged));
      ExpectFsckReportsPack("", part + " byte at offset " + std::to_string(at));
      if (HasFailure()) break;  // one explained failure is enough
    }
    ASSERT_NO_FATAL_FAILURE(Rewrite(original_));
  }

  // The pack with its trailer's footer CRC recomputed over `footer`.
  std::string WithFooter(const std::string& footer, uint32_t count) {
    std::string out = original_.substr(0, footer_offset_) + footer;
    std::string trailer = original_.substr(original_.size() - kTrailerBytes);
    uint32_t crc = Crc32c(footer.data(), footer.size());
    std::memcpy(trailer.data() + 8, &count, 4);
    std::memcpy(trailer.data() + 12, &crc, 4);
    return out + trailer;
  }

  std::string Footer() const { return original_.substr(footer_offset_, count_ * kFooterEntryBytes); }

  std::vector<std::string> packs_;
  std::string pack_, name_, original_;
  uint64_t footer_offset_ = 0;
  uint32_t count_ = 0;
};

TEST_F(PackStructureTest, EveryFlippedHeaderByteIsReported) {
  ExpectEveryFlipReported(0, kHeaderBytes, "header");
}

TEST_F(PackStructureTest, EveryFlippedFooterByteIsReported) {
  // Every byte in the normal build; every third in a sanitizer build
  // (tests/sanitizer_scale.h), which still reaches every field of an entry.
  ExpectEveryFlipReported(footer_offset_, footer_offset_ + count_ * kFooterEntryBytes, "footer",
                          tusk::test_scale::ForThisBuild<uint64_t>(1, 3));
}

TEST_F(PackStructureTest, EveryFlippedTrailerByteIsReported) {
  ExpectEveryFlipReported(original_.size() - kTrailerBytes, original_.size(), "trailer");
}

TEST_F(PackStructureTest, TruncatedPackIsReportedAsTruncated) {
  for (uint64_t cut : {uint64_t{5}, kTrailerBytes, kTrailerBytes + 1, uint64_t{original_.size() / 2}}) {
    ASSERT_NO_FATAL_FAILURE(Rewrite(original_.substr(0, original_.size() - cut)));
    ExpectFsckReportsPack("truncated", "cut " + std::to_string(cut) + " bytes");
  }
}

TEST_F(PackStructureTest, FooterEntryThatDisagreesWithItsRecordIsReported) {
  // A well-formed footer (its CRC holds) that gives a record the wrong
  // offset: the index rebuild would trust it, so fsck must not.
  std::string footer = Footer();
  uint64_t offset;
  std::memcpy(&offset, footer.data() + kFooterEntryBytes + 32, 8);
  offset += 8;
  std::memcpy(footer.data() + kFooterEntryBytes + 32, &offset, 8);
  ASSERT_NO_FATAL_FAILURE(Rewrite(WithFooter(footer, count_)));
  ExpectFsckReportsPack("footer entry 1 of " + std::to_string(count_) + " gives offset " + std::to_string(offset), "tampered offset");
}

TEST_F(PackStructureTest, RecordMissingFromTheFooterIsReported) {
  std::string footer = Footer();
  uint64_t last_offset;
  std::memcpy(&last_offset, footer.data() + (count_ - 1) * kFooterEntryBytes + 32, 8);
  footer.resize((count_ - 1) * kFooterEntryBytes);
  ASSERT_NO_FATAL_FAILURE(Rewrite(WithFooter(footer, count_ - 1)));
  ExpectFsckReportsPack("record at offset " + std::to_string(last_offset), "dropped footer entry");
  ExpectFsckReportsPack("is not in the footer", "dropped footer entry");
}

TEST_F(PackStructureTest, UnknownPackVersionIsRefusedByReaders) {
  std::string newer = original_;
  uint32_t version = 2;
  std::memcpy(newer.data() + 8, &version, 4);
  ASSERT_NO_FATAL_FAILURE(Rewrite(newer));

  RunResult cat = Run("cat", "d@main", "a.txt");
  EXPECT_NE(cat.exit_code, 0) << cat;
  EXPECT_EQ(cat.out, "") << cat;
  EXPECT_TRUE(HasSubstr(cat.err, "pack format version 2 is not supported")) << cat;

  ExpectFsckReportsPack("pack format version 2 is not supported", "version 2");
}

}  // namespace
}  // namespace tusk::cli_test
