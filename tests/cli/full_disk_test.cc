// Recovering from a full disk with tusk alone (issue 9, defect 11): an
// import that ran the file system out of space leaves a sealed pack of
// garbage and a partial pack behind; `tusk gc` must still succeed and give
// the space back, because it frees space before it needs any.
#include <sys/statvfs.h>

#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

uint64_t FreeBytes(const std::string& path) {
  struct statvfs fs;
  if (::statvfs(path.c_str(), &fs) != 0) return 0;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

size_t PackFiles(const std::string& store) {
  size_t n = 0;
  for (const auto& [path, info] : Snapshot(store + "/packs"))
    if (S_ISREG(info.mode)) n++;
  return n;
}

class FullDiskTest : public CliTest {};

TEST_F(FullDiskTest, GcAfterAnImportFilledTheDiskFreesItsGarbage) {
  std::string disk = Path("disk");
  if (!MountTmpfs(disk, "48m")) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  UseStore(disk + "/store");
  ASSERT_NO_FATAL_FAILURE(InitStore());
  ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v1"), {File("a.txt", "kept\n"), File("b.bin", RandomBytes(200000, 3))}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v1"), "d@main", "small"));
  std::string head = CommitOf("d@main");
  uint64_t free_before = FreeBytes(disk);

  // 60 MiB that do not compress: one 32 MiB pack is sealed (and indexed),
  // the next one fills the disk.
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("big"), {File("1.bin", RandomBytes(20 << 20, 4)), File("2.bin", RandomBytes(20 << 20, 5)),
                                                 File("3.bin", RandomBytes(20 << 20, 6))}));
  RunResult import = Run("import", Path("big"), "d@main", "-m", "does not fit");
  ASSERT_NE(import.exit_code, 0) << import;
  EXPECT_TRUE(HasSubstr(import.err, "space")) << import;
  ASSERT_LT(FreeBytes(disk), uint64_t{1} << 20) << "the disk should be full";
  ASSERT_GE(PackFiles(store()), 2u) << "the failed import should have left packs behind";

  RunResult gc = Run("gc");
  EXPECT_FALSE(gc.signaled) << gc;
  ASSERT_EQ(gc.exit_code, 0) << gc;
  // Back to what the committed data takes, give or take the index's growth.
  EXPECT_GT(FreeBytes(disk) + (1 << 20), free_before) << gc;
  // The committed data's pack, and the dataset's creation record (its own small pack).
  EXPECT_EQ(PackFiles(store()), 2u) << gc;
  ExpectFsckClean();
  EXPECT_EQ(CommitOf("d@main"), head);
  ASSERT_NO_FATAL_FAILURE(Export("d@main", Path("out")));
  EXPECT_TRUE(TreeDiff(Path("v1"), Path("out")).empty());
  // And the store takes new data again.
  ASSERT_NO_FATAL_FAILURE(MakeTree(Path("v2"), {File("c.bin", RandomBytes(4 << 20, 7))}));
  ASSERT_NO_FATAL_FAILURE(Import(Path("v2"), "d@main", "fits again"));
  ExpectFsckClean();
}

}  // namespace
}  // namespace tusk::cli_test
