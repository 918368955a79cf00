// Lineage from run records, on real runs (issue 10): a 3-step chain
// raw -> clean -> features -> model, traced upstream and downstream (by
// version and by file); diff --inputs of two trainings; rerun identical and
// then different; stale and update with a change to unread files (not
// stale) and to a read file (stale, updated in dependency order).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

namespace fs = std::filesystem;

class LineageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    src_ = tmp_.Sub("src");
    code_ = tmp_.Sub("code");
    fs::create_directories(src_ + "/labels");
    fs::create_directories(src_ + "/unused");
    fs::create_directories(code_);
    Write(src_ + "/labels/a.csv", "id,label\n1,cat\n");
    Write(src_ + "/labels/b.csv", "id,label\n2,dog\n");
    Write(src_ + "/unused/notes.txt", "never read\n");
    // Three steps, each a shell script: clean reads labels/*, features reads
    // clean's output, train reads features'.
    Script("clean.sh", "cat \"$TUSK_IN_raw\"/labels/a.csv \"$TUSK_IN_raw\"/labels/b.csv | tr a-z A-Z > \"$TUSK_OUT/all.csv\"\n");
    Script("features.sh", "wc -l < \"$TUSK_IN_clean/all.csv\" > \"$TUSK_OUT/count.txt\"\n");
    Script("train.sh", "cat \"$TUSK_IN_features/count.txt\" > \"$TUSK_OUT/model.txt\"; echo weights >> \"$TUSK_OUT/model.txt\"\n");
    Must(Tusk(store_, {"init"}));
    for (const char* ds : {"raw", "clean", "features", "model"}) Must(Tusk(store_, {"dataset", "create", ds}));
    Must(Tusk(store_, {"import", src_, "raw@main", "-m", "raw v1"}));
  }

  void TearDown() override { EXPECT_TRUE(MountsUnder(tmp_.path()).empty()); }

  void Script(const std::string& name, const std::string& body) {
    ASSERT_TRUE(WriteFile(code_ + "/" + name, "#!/bin/sh\nset -e\n" + body, 0755));
  }
  static void Write(const std::string& path, const std::string& content) { ASSERT_TRUE(WriteFile(path, content)); }
  static void Must(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r; }

  RunResult InCode(std::vector<std::string> args) {
    std::vector<std::string> argv = {kTusk, "--store", store_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, RunOptions{code_, 120});
  }

  void Chain() {
    Must(InCode({"run", "--in", "raw=raw@main", "--out", "clean@main", "-m", "clean", "--", "./clean.sh"}));
    Must(InCode({"run", "--in", "clean=clean@main", "--out", "features@main", "-m", "features", "--", "./features.sh"}));
    Must(InCode({"run", "--in", "features=features@main", "--out", "model@main", "-m", "train", "--", "./train.sh"}));
  }

  std::string Head(const std::string& ref) {
    RunResult r = Tusk(store_, {"show", ref, "--json"});
    size_t at = r.out.find("\"commit\":\"");
    return r.exit_code != 0 || at == std::string::npos ? "" : r.out.substr(at + 10, 64);
  }
  std::string RunOf(const std::string& ref) {
    RunResult r = Tusk(store_, {"show", ref, "--json"});
    size_t at = r.out.find("\"run\":\"");
    return at == std::string::npos ? "" : r.out.substr(at + 7, 64);
  }
  std::string Cat(const std::string& ref, const std::string& path) { return Tusk(store_, {"cat", ref, path}).out; }

  TempDir tmp_;
  std::string store_, src_, code_;
};

TEST_F(LineageTest, UpstreamTracesAVersionThroughEveryRunToItsImportedSource) {
  Chain();
  RunResult up = Tusk(store_, {"lineage", "model@main"});
  ASSERT_EQ(up.exit_code, 0) << up;
  for (const std::string& part :
       {"model@" + Head("model@main").substr(0, 12) + "  made by run:" + RunOf("model@main").substr(0, 12),
        std::string("$ ./train.sh"), std::string("input features (features@main): 1 of 1 files read"),
        std::string("$ ./features.sh"), std::string("input clean (clean@main): 1 of 1 files read"),
        std::string("$ ./clean.sh"), std::string("input raw (raw@main): 2 of 3 files read"),
        "raw@" + Head("raw@main").substr(0, 12) + "  (not made by a run"})
    EXPECT_TRUE(HasSubstr(up.out, part)) << "missing: " << part << up;
  RunResult json = Tusk(store_, {"lineage", "model@main", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json;
  EXPECT_TRUE(HasSubstr(json.out, "{\"root\":\"" + Head("model@main") + "\",\"commits\":[")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"argv\":[\"./clean.sh\"]")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "{\"commit\":\"" + Head("raw@main") + "\",\"dataset\":\"raw\",\"files\":3,\"run\":null}"))
      << json;
  RunResult dot = Tusk(store_, {"lineage", "model@main", "--dot"});
  ASSERT_EQ(dot.exit_code, 0) << dot;
  EXPECT_TRUE(HasSubstr(dot.out, "digraph lineage")) << dot;
  EXPECT_TRUE(HasSubstr(dot.out, "c" + Head("raw@main").substr(0, 12) + " -> r" + RunOf("clean@main").substr(0, 12)))
      << dot;
  // A file: the version where it last changed, and its run.
  RunResult file = Tusk(store_, {"lineage", "clean@main", "all.csv"});
  EXPECT_TRUE(HasSubstr(file.out, "all.csv in clean@")) << file;
  EXPECT_TRUE(HasSubstr(file.out, "$ ./clean.sh")) << file;
}

TEST_F(LineageTest, DownstreamFindsEveryRunAndVersionThatReadAVersionOrOneFile) {
  Chain();
  RunResult down = Tusk(store_, {"lineage", "--down", "raw@main"});
  ASSERT_EQ(down.exit_code, 0) << down;
  EXPECT_TRUE(HasSubstr(down.out, "read by run:" + RunOf("clean@main").substr(0, 12))) << down;
  EXPECT_TRUE(HasSubstr(down.out, "-> clean@" + Head("clean@main").substr(0, 12))) << down;
  EXPECT_TRUE(HasSubstr(down.out, "-> features@" + Head("features@main").substr(0, 12))) << down;
  EXPECT_TRUE(HasSubstr(down.out, "-> model@" + Head("model@main").substr(0, 12))) << down;
  // "This label file was wrong: which models saw it?" -- and one nobody read.
  RunResult bad = Tusk(store_, {"lineage", "--down", "raw@main", "labels/b.csv"});
  EXPECT_TRUE(HasSubstr(bad.out, "-> model@" + Head("model@main").substr(0, 12))) << bad;
  RunResult unread = Tusk(store_, {"lineage", "--down", "raw@main", "unused/notes.txt"});
  ASSERT_EQ(unread.exit_code, 0) << unread;
  EXPECT_FALSE(HasSubstr(unread.out, "read by")) << unread;
  // The same bytes in a later version count: the file was not changed.
  Write(src_ + "/unused/notes.txt", "still unread\n");
  Must(Tusk(store_, {"import", src_, "raw@main", "-m", "raw v2"}));
  RunResult later = Tusk(store_, {"lineage", "--down", "raw@main", "labels/b.csv"});
  EXPECT_TRUE(HasSubstr(later.out, "read by run:" + RunOf("clean@main").substr(0, 12))) << later;
  RunResult json = Tusk(store_, {"lineage", "--down", "raw@main~1", "--json"});
  EXPECT_TRUE(HasSubstr(json.out, "{\"run\":\"" + RunOf("clean@main") + "\",\"input\":\"raw\",\"read\":\"" +
                                      Head("raw@main~1") + "\",\"outputs\":[\"" + Head("clean@main") + "\"]}"))
      << json;
  EXPECT_TRUE(HasSubstr(json.out, "{\"commit\":\"" + Head("model@main") + "\",\"dataset\":\"model\"}")) << json;
  RunResult dot = Tusk(store_, {"lineage", "--down", "raw@main~1", "--dot"});
  EXPECT_TRUE(HasSubstr(dot.out, "c" + Head("raw@main~1").substr(0, 12) + " -> r" + RunOf("clean@main").substr(0, 12)))
      << dot;
  EXPECT_TRUE(HasSubstr(dot.out, "r" + RunOf("model@main").substr(0, 12) + " -> c" + Head("model@main").substr(0, 12)))
      << dot;
  RunResult both = Tusk(store_, {"lineage", "raw@main", "--json", "--dot"});
  EXPECT_EQ(both.exit_code, 1) << both;
  RunResult missing = Tusk(store_, {"lineage", "--down", "raw@main", "no/such.csv"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
}

TEST_F(LineageTest, DiffInputsShowsWhatTwoTrainingsReadDifferently) {
  Chain();
  std::string first = RunOf("clean@main");
  Write(src_ + "/labels/b.csv", "id,label\n2,wolf\n");
  Must(Tusk(store_, {"import", src_, "raw@main", "-m", "relabel b"}));
  Script("clean.sh", "cat \"$TUSK_IN_raw\"/labels/b.csv \"$TUSK_IN_raw\"/unused/notes.txt > \"$TUSK_OUT/all.csv\"\n");
  Must(InCode({"run", "--in", "raw=raw@main", "--out", "clean@main", "--", "./clean.sh"}));
  RunResult d = Tusk(store_, {"diff", "--inputs", "run:" + first.substr(0, 10), "clean@main"});
  ASSERT_EQ(d.exit_code, 0) << d;
  EXPECT_TRUE(HasSubstr(d.out, "1 read only by A, 1 only by B, 1 by both with different content")) << d;
  EXPECT_TRUE(HasSubstr(d.out, "  A labels/a.csv")) << d;
  EXPECT_TRUE(HasSubstr(d.out, "  B unused/notes.txt")) << d;
  EXPECT_TRUE(HasSubstr(d.out, "  M labels/b.csv")) << d;
  RunResult same = Tusk(store_, {"diff", "--inputs", "clean@main", "clean@main"});
  EXPECT_TRUE(HasSubstr(same.out, "the same files with the same content")) << same;
  RunResult not_a_run = Tusk(store_, {"diff", "--inputs", "raw@main", "clean@main"});
  EXPECT_EQ(not_a_run.exit_code, 1) << not_a_run;
  EXPECT_TRUE(HasSubstr(not_a_run.err, "was not made by tusk run")) << not_a_run;
}

TEST_F(LineageTest, RerunSaysIdenticalThenListsWhatDiffersAfterANondeterministicChange) {
  Chain();
  // With a relative store path, from another directory than the run's.
  RunResult same = RunProgram({kTusk, "--store", "store", "rerun", "clean@main"}, RunOptions{tmp_.path(), 120});
  ASSERT_EQ(same.exit_code, 0) << same;
  EXPECT_TRUE(HasSubstr(same.out, "identical")) << same;
  // The rerun's output commit is garbage now (its scratch branch is gone):
  // gc removes it, and what pointed at it goes with it.
  RunResult gc = Tusk(store_, {"gc"});
  ASSERT_EQ(gc.exit_code, 0) << gc;
  RunResult down = Tusk(store_, {"lineage", "--down", "raw@main"});
  EXPECT_EQ(down.exit_code, 0) << down;
  RunResult fsck = Tusk(store_, {"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  Script("clean.sh", "cat \"$TUSK_IN_raw\"/labels/a.csv > \"$TUSK_OUT/all.csv\"; date +%N > \"$TUSK_OUT/noise.txt\"\n");
  RunResult differs = InCode({"rerun", "run:" + RunOf("clean@main").substr(0, 8)});
  EXPECT_EQ(differs.exit_code, 3) << differs;
  EXPECT_TRUE(HasSubstr(differs.out, "different: 2 file(s) differ")) << differs;
  EXPECT_TRUE(HasSubstr(differs.out, "M  all.csv")) << differs;
  EXPECT_TRUE(HasSubstr(differs.out, "A  noise.txt")) << differs;
  RunResult not_a_run = Tusk(store_, {"rerun", "raw@main"});
  EXPECT_EQ(not_a_run.exit_code, 1) << not_a_run;
}

TEST_F(LineageTest, StaleIgnoresChangesToUnreadFilesAndUpdateAllRebuildsTheChainInOrder) {
  Chain();
  std::string model_before = Head("model@main");
  RunResult fresh = Tusk(store_, {"stale"});
  EXPECT_TRUE(HasSubstr(fresh.out, "nothing is stale")) << fresh;
  // A file no run read: the input moved, nothing is stale.
  Write(src_ + "/unused/notes.txt", "still never read\n");
  Must(Tusk(store_, {"import", src_, "raw@main", "-m", "unread change"}));
  RunResult unread = Tusk(store_, {"stale"});
  EXPECT_TRUE(HasSubstr(unread.out, "clean@main: not stale")) << unread;
  EXPECT_TRUE(HasSubstr(unread.out, "none of the 2 files it read changed")) << unread;
  RunResult noop = Tusk(store_, {"update", "clean@main"});
  EXPECT_EQ(noop.exit_code, 0) << noop;
  EXPECT_TRUE(HasSubstr(noop.out, "up to date")) << noop;
  // A file clean.sh reads.
  Write(src_ + "/labels/a.csv", "id,label\n1,lynx\n3,owl\n");
  Must(Tusk(store_, {"import", src_, "raw@main", "-m", "relabel a"}));
  RunResult stale = Tusk(store_, {"stale", "--json"});
  EXPECT_TRUE(HasSubstr(stale.out, "\"branch\":\"clean@main\"")) << stale;
  EXPECT_TRUE(HasSubstr(stale.out, "\"stale\":true")) << stale;
  EXPECT_TRUE(HasSubstr(stale.out, "\"changed\":[\"labels/a.csv\"]")) << stale;
  RunResult all = InCode({"update", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all;
  EXPECT_EQ(Cat("clean@main", "all.csv"), "ID,LABEL\n1,LYNX\n3,OWL\nID,LABEL\n2,DOG\n");
  EXPECT_EQ(Cat("features@main", "count.txt"), "5\n");
  EXPECT_EQ(Cat("model@main", "model.txt"), "5\nweights\n");
  EXPECT_NE(Head("model@main"), model_before);
  size_t clean_at = all.out.find("clean@main: updating"), features_at = all.out.find("features@main: updating"),
         model_at = all.out.find("model@main: updating");
  ASSERT_NE(clean_at, std::string::npos) << all;
  ASSERT_NE(features_at, std::string::npos) << all;
  ASSERT_NE(model_at, std::string::npos) << all;
  EXPECT_LT(clean_at, features_at);
  EXPECT_LT(features_at, model_at);
  RunResult after = Tusk(store_, {"stale"});
  EXPECT_TRUE(HasSubstr(after.out, "nothing is stale")) << after;
  RunResult not_made = Tusk(store_, {"update", "raw@main"});
  EXPECT_EQ(not_made.exit_code, 1) << not_made;
  EXPECT_TRUE(HasSubstr(not_made.err, "not made by tusk run")) << not_made;
}

}  // namespace
}  // namespace tusk::fstest
