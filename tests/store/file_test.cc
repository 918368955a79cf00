// Directory listings through descriptors (store/internal/file.h), which every
// walk of a workspace's upper and meta directories goes through.
#include "store/internal/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;

class DirectoryListingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b", "c"}) TUSK_ASSERT_OK(WriteFileAtomically(JoinPath(dir_.path(), name), name));
    ASSERT_EQ(::mkdir(JoinPath(dir_.path(), "sub").c_str(), 0755), 0);
  }

  TempDir dir_;
};

TEST_F(DirectoryListingTest, ListsEveryNameButDotAndDotDot) {
  TUSK_ASSERT_OK_AND_ASSIGN(Fd fd, OpenFile(dir_.path(), O_RDONLY | O_DIRECTORY));
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, ListDirectory(fd.get(), dir_.path()));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "sub"}));
}

TEST_F(DirectoryListingTest, AnOPathDescriptorIsReopenedForReading) {
  TUSK_ASSERT_OK_AND_ASSIGN(Fd fd, OpenFile(dir_.path(), O_PATH | O_DIRECTORY));
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, ListDirectory(fd.get(), dir_.path()));
  EXPECT_EQ(names.size(), 4u);
}

TEST_F(DirectoryListingTest, TheVisitorStopsWhenItReturnsFalse) {
  TUSK_ASSERT_OK_AND_ASSIGN(Fd fd, OpenFile(dir_.path(), O_RDONLY | O_DIRECTORY));
  int seen = 0;
  TUSK_ASSERT_OK(ForEachDirectoryEntry(fd.get(), dir_.path(), [&](const char*, unsigned char) {
    seen++;
    return false;
  }));
  EXPECT_EQ(seen, 1);
}

TEST_F(DirectoryListingTest, ANonDirectoryIsAnErrorThatKeepsItsErrno) {
  TUSK_ASSERT_OK_AND_ASSIGN(Fd fd, OpenFile(JoinPath(dir_.path(), "a"), O_RDONLY));
  auto names = ListDirectory(fd.get(), "the file a");
  ASSERT_FALSE(names.ok());
  EXPECT_EQ(names.status().sys_errno(), ENOTDIR);
  EXPECT_NE(names.status().message().find("the file a"), std::string::npos) << names.status().ToString();
}

TEST_F(DirectoryListingTest, AClosedDescriptorIsAnErrorNotAnEmptyListing) {
  auto names = ListDirectory(-1, "nothing");
  ASSERT_FALSE(names.ok());
  EXPECT_EQ(names.status().sys_errno(), EBADF);
}

}  // namespace
}  // namespace tusk
