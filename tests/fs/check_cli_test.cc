// Data checks from the command line (fs/check_runner.h, tusk-check(1)):
// they run before import, commit, merge and a run's output land; a failure
// changes nothing; --skip-checks is recorded; trust, timeouts, huge output
// and missing commands; `tusk check run` on past versions.
#include <filesystem>
#include <string>
#include <vector>

#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

namespace fs = std::filesystem;

class CheckCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    src_ = tmp_.Sub("src");
    Must(Tusk(store_, {"init"}));
    Must(Tusk(store_, {"dataset", "create", "labels"}));
    fs::create_directories(src_ + "/labels");
    ASSERT_TRUE(WriteFile(src_ + "/labels/a.csv", "id,label,score\n1,cat,0.5\n2,dog,0.7\n"));
  }
  static void Must(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r; }
  RunResult T(std::vector<std::string> args) { return Tusk(store_, std::move(args)); }
  std::string Head(const std::string& ref = "labels@main") {
    RunResult r = T({"log", ref, "-n", "1", "--json"});
    return r.out;
  }

  TempDir tmp_;
  std::string store_, src_;
};

TEST_F(CheckCliTest, ABuiltinCheckKeepsARaggedCsvOutAndSkipChecksLandsItOnTheRecord) {
  Must(T({"check", "add", "labels", "schema", "--builtin", "--", "csv", "labels/*.csv", "--numeric", "score"}));
  Must(T({"import", src_, "labels@main", "-m", "good"}));
  std::string before = Head();
  ASSERT_TRUE(WriteFile(src_ + "/labels/a.csv", "id,label,score\n1,cat,0.5\n2,dog\n"));
  RunResult bad = T({"import", src_, "labels@main", "-m", "ragged"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_TRUE(HasSubstr(bad.err, "check 'schema' failed")) << bad;
  EXPECT_TRUE(HasSubstr(bad.err, "labels/a.csv:3:")) << bad;
  EXPECT_TRUE(HasSubstr(bad.err, "nothing was committed")) << bad;
  EXPECT_EQ(Head(), before);
  RunResult skipped = T({"import", src_, "labels@main", "-m", "ragged anyway", "--skip-checks", "vendor file, fixed next"});
  ASSERT_EQ(skipped.exit_code, 0) << skipped;
  RunResult log = T({"log", "labels", "-n", "1"});
  EXPECT_TRUE(HasSubstr(log.out, ": vendor file, fixed next")) << log;
  RunResult show = T({"show", "labels@main~1"});
  EXPECT_TRUE(HasSubstr(show.out, "passed  schema")) << show;
  RunResult full_log = T({"log", "labels"});
  EXPECT_TRUE(HasSubstr(full_log.out, "check add schema --builtin csv 'labels/*.csv' --numeric score")) << full_log;
  // The current checks on the whole history, changing nothing.
  RunResult all = T({"check", "run", "labels", "--all"});
  EXPECT_EQ(all.exit_code, 1) << all;
  EXPECT_TRUE(HasSubstr(all.out, "failed  schema")) << all;
  EXPECT_TRUE(HasSubstr(all.out, "passed  schema")) << all;
  EXPECT_TRUE(HasSubstr(all.out, "1 of 2 commit(s) failed a check")) << all;
}

TEST_F(CheckCliTest, ACommandCheckSeesTheCandidateTreeAndTheChangedPaths) {
  std::string seen = tmp_.Sub("seen");
  Must(T({"import", src_, "labels@main", "-m", "first"}));
  Must(T({"check", "add", "labels", "look", "--", "sh", "-c",
          "pwd > " + seen + ".pwd; cat \"$TUSK_CHECK_CHANGED\" > " + seen + ".changed; cat \"$TUSK_CHECK_DELETED\" > " +
              seen + ".deleted; cat labels/b.csv > " + seen + ".content"}));
  ASSERT_TRUE(WriteFile(src_ + "/labels/b.csv", "id,label\n9,owl\n"));
  fs::remove(src_ + "/labels/a.csv");
  Must(T({"import", src_, "labels@main", "-m", "second"}));
  EXPECT_EQ(ReadOr(seen + ".changed"), "labels/b.csv\n");
  EXPECT_EQ(ReadOr(seen + ".deleted"), "labels/a.csv\n");
  EXPECT_EQ(ReadOr(seen + ".content"), "id,label\n9,owl\n");
  EXPECT_TRUE(HasSubstr(ReadOr(seen + ".pwd"), "/tmp/tusk-check-")) << ReadOr(seen + ".pwd");
  RunResult show = T({"show", "labels@main"});
  EXPECT_TRUE(HasSubstr(show.out, "passed  look")) << show;
}

TEST_F(CheckCliTest, AHangingCheckIsKilledAtItsTimeoutAndAFloodKeepsOnlyTheTail) {
  Must(T({"check", "add", "labels", "hang", "--timeout", "1", "--", "sleep", "30"}));
  auto start = std::chrono::steady_clock::now();
  RunResult hung = T({"import", src_, "labels@main", "-m", "x"});
  EXPECT_EQ(hung.exit_code, 1) << hung;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_TRUE(HasSubstr(hung.err, "killed after the timeout of 1 s")) << hung;
  Must(T({"check", "remove", "labels", "hang"}));
  Must(T({"check", "add", "labels", "flood", "--", "sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo LAST; exit 3"}));
  RunResult flood = T({"import", src_, "labels@main", "-m", "x"});
  EXPECT_EQ(flood.exit_code, 1) << flood;
  EXPECT_TRUE(HasSubstr(flood.err, "LAST")) << Clip(flood.err);
  EXPECT_TRUE(HasSubstr(flood.err, "bytes of output before this were cut")) << Clip(flood.err);
  EXPECT_LT(flood.err.size(), 20000u);
  Must(T({"check", "remove", "labels", "flood"}));
  Must(T({"check", "add", "labels", "missing", "--", "no-such-command-anywhere"}));
  RunResult missing = T({"import", src_, "labels@main", "-m", "x"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_TRUE(HasSubstr(missing.err, "no-such-command-anywhere: command not found")) << missing;
}

TEST_F(CheckCliTest, AnUntrustedCheckRefusesCommitsUntilTrusted) {
  Must(T({"check", "add", "labels", "ok", "--", "true"}));
  // As if the definition had arrived from another machine.
  fs::remove(store_ + "/trusted-checks");
  RunResult list = T({"check", "list", "labels"});
  EXPECT_TRUE(HasSubstr(list.out, "NOT TRUSTED")) << list;
  RunResult refused = T({"import", src_, "labels@main", "-m", "x"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_TRUE(HasSubstr(refused.err, "does not trust yet: 'ok'")) << refused;
  Must(T({"check", "trust", "labels"}));
  Must(T({"import", src_, "labels@main", "-m", "x"}));
}

TEST_F(CheckCliTest, BadDefinitionsAreRefusedBeforeTheyAreSaved) {
  RunResult unknown = T({"check", "add", "labels", "x", "--builtin", "--", "no-such-builtin"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  RunResult bad_name = T({"check", "add", "labels", "-x", "--", "true"});
  EXPECT_NE(bad_name.exit_code, 0) << bad_name;
  RunResult no_cmd = T({"check", "add", "labels", "x"});
  EXPECT_EQ(no_cmd.exit_code, 1) << no_cmd;
  RunResult no_dataset = T({"check", "add", "nope", "x", "--", "true"});
  EXPECT_EQ(no_dataset.exit_code, 1) << no_dataset;
  RunResult remove_missing = T({"check", "remove", "labels", "x"});
  EXPECT_EQ(remove_missing.exit_code, 1) << remove_missing;
  RunResult list = T({"check", "list", "labels"});
  EXPECT_TRUE(HasSubstr(list.out, "has no checks")) << list;
}

TEST_F(CheckCliTest, ChecksRunBeforeAWorkspaceCommitAndAFailureKeepsTheStagedChanges) {
  Must(T({"import", src_, "labels@main", "-m", "first"}));
  Must(T({"check", "add", "labels", "schema", "--builtin", "--", "csv", "*.csv"}));
  std::string mnt = tmp_.Sub("mnt");
  fs::create_directories(mnt);
  MountGuard mounts;
  ASSERT_TRUE(mounts.StartForeground(store_, {}, mnt, tmp_.Sub("mount.log")));
  ASSERT_TRUE(WriteFile(mnt + "/labels/main/labels/a.csv", "id,label,score\n1,cat\n"));
  RunResult refused = T({"commit", "labels@main", "-m", "ragged"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_TRUE(HasSubstr(refused.err, "check 'schema' failed")) << refused;
  RunResult status = T({"status", "labels@main"});
  EXPECT_TRUE(HasSubstr(status.out, "M  labels/a.csv")) << status;
  ASSERT_TRUE(WriteFile(mnt + "/labels/main/labels/a.csv", "id,label,score\n1,cat,0.1\n"));
  Must(T({"commit", "labels@main", "-m", "fixed"}));
  RunResult show = T({"show", "labels@main"});
  EXPECT_TRUE(HasSubstr(show.out, "passed  schema")) << show;
  mounts.CleanupAll();
}

TEST_F(CheckCliTest, ChecksRunOnTheMergedTreeBeforeAMergeLands) {
  Must(T({"import", src_, "labels@main", "-m", "first"}));
  Must(T({"branch", "labels@side", "main"}));
  ASSERT_TRUE(WriteFile(src_ + "/labels/b.csv", "id,label,score\n1,cat,zero\n"));
  Must(T({"import", src_, "labels@side", "-m", "side adds b"}));
  fs::remove(src_ + "/labels/b.csv");
  ASSERT_TRUE(WriteFile(src_ + "/labels/c.csv", "id,label,score\n1,cat,1\n"));
  Must(T({"import", src_, "labels@main", "-m", "main adds c"}));
  Must(T({"check", "add", "labels", "schema", "--builtin", "--", "csv", "*.csv", "--numeric", "score"}));
  std::string before = Head();
  RunResult refused = T({"merge", "labels@side", "labels@main"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_TRUE(HasSubstr(refused.err, "labels/b.csv:2:")) << refused;
  EXPECT_EQ(Head(), before);
  Must(T({"merge", "labels@side", "labels@main", "--skip-checks", "known bad score"}));
  RunResult show = T({"show", "labels@main"});
  EXPECT_TRUE(HasSubstr(show.out, ": known bad score")) << show;
}

TEST_F(CheckCliTest, TableRulesAreSettingsToo) {
  Must(T({"table", "set", "labels", "labels/*.csv", "--key", "id"}));
  Must(T({"table", "set", "labels", "*.jsonl", "--keyless"}));
  RunResult list = T({"table", "list", "labels"});
  EXPECT_TRUE(HasSubstr(list.out, "labels/*.csv  key id")) << list;
  EXPECT_TRUE(HasSubstr(list.out, "*.jsonl  keyless")) << list;
  Must(T({"table", "remove", "labels", "*.jsonl"}));
  RunResult gone = T({"table", "remove", "labels", "*.jsonl"});
  EXPECT_EQ(gone.exit_code, 1) << gone;
  RunResult both = T({"table", "set", "labels", "x", "--key", "id", "--keyless"});
  EXPECT_EQ(both.exit_code, 1) << both;
  Must(T({"import", src_, "labels@main", "-m", "first"}));
  RunResult log = T({"log", "labels"});
  EXPECT_TRUE(HasSubstr(log.out, "table set labels/*.csv key id")) << log;
}

}  // namespace
}  // namespace tusk::fstest
