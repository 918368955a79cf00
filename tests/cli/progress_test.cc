// Long commands show progress on a terminal and stay quiet when piped.
#include <fstream>

#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

class ProgressTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
    std::filesystem::create_directories(Path("src"));
    std::ofstream(Path("src/a.bin")) << std::string(3 << 20, 'x');
  }
};

TEST_F(ProgressTest, ImportOnATerminalShowsBytesFilesRate) {
  // script(1) gives the command a pseudo-terminal; its transcript is stdout.
  RunResult r = RunProcess({"/usr/bin/script", "-qec",
                            "TUSK_STORE=" + store() + " " + kTuskBinary + " import " + Path("src") + " d@main -m m",
                            "/dev/null"},
                           {"PATH=/usr/bin:/bin", "TERM=dumb"});
  if (r.exit_code == 127) GTEST_SKIP() << "script(1) is not available";
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("importing: "), std::string::npos) << r;
  EXPECT_NE(r.out.find("/s"), std::string::npos) << r;
  EXPECT_NE(r.out.find("committed "), std::string::npos) << r;
}

TEST_F(ProgressTest, ImportThroughAPipeIsQuiet) {
  RunResult r = Run("import", Path("src"), "d@main", "-m", "m");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.err.find("importing: "), std::string::npos) << r;
  EXPECT_EQ(r.out.find("importing: "), std::string::npos) << r;
}

}  // namespace
}  // namespace tusk::cli_test
