// tusk merge from the command line and through the mount: two labellers on
// two branches, clean merges by row and by line, conflicts that change
// nothing, the refusals, and a mounted branch that shows the merged version.
#include <filesystem>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/workspace/workspace.h"
#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

namespace fs = std::filesystem;

const char kLabels[] =
    "id,label,annotator,score\n"
    "1,cat,ann,0.5\n"
    "2,dog,bob,0.7\n"
    "3,cat,ann,0.9\n"
    "4,bird,bob,0.1\n";

class MergeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    Must(Tusk(store_, {"init"}));
    Must(Tusk(store_, {"dataset", "create", "labels"}));
    Version("base", {{"labels.csv", kLabels}, {"notes.txt", "a\nb\nc\nd\ne\nf\ng\n"}});
    Must(Tusk(store_, {"import", tmp_.Sub("base"), "labels@main", "-m", "base"}));
    Must(Tusk(store_, {"branch", "labels@fix", "main"}));
  }

  static void Must(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r; }

  // Writes a directory `name` holding `files`, for an import.
  void Version(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::remove_all(tmp_.Sub(name));
    for (const auto& [path, content] : files) {
      fs::create_directories(fs::path(tmp_.Sub(name + "/" + path)).parent_path());
      ASSERT_TRUE(WriteFile(tmp_.Sub(name + "/" + path), content));
    }
  }
  // Commits `labels` (and the base notes) to labels@BRANCH.
  void Labels(const std::string& branch, const std::string& labels) {
    Version(branch, {{"labels.csv", labels}, {"notes.txt", "a\nb\nc\nd\ne\nf\ng\n"}});
    Must(Tusk(store_, {"import", tmp_.Sub(branch), "labels@" + branch, "-m", "edit on " + branch}));
  }
  std::string Cat(const std::string& ref, const std::string& path) {
    RunResult r = Tusk(store_, {"cat", ref, path});
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.out;
  }
  std::string Head(const std::string& ref) {
    RunResult r = Tusk(store_, {"log", ref, "-n", "1", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.out;
  }

  TempDir tmp_;
  std::string store_;
};

TEST_F(MergeCliTest, TwoLabellersEditingNeighbouringRowsCellsAndAppendingMergeCleanlyByKey) {
  Labels("main",
         "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n5,fish,cy,0.3\n");
  Labels("fix",
         "id,label,annotator,score\n1,cat,ann,0.5\n2,dog,bob,0.75\n3,lynx,ann,0.9\n4,bird,bob,0.1\n6,ant,dee,0.2\n");
  RunResult r = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "merged labels.csv by table, key id")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "merged labels@fix into labels@main: commit ")) << r;
  EXPECT_EQ(Cat("labels@main", "labels.csv"),
            "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.75\n3,lynx,ann,0.9\n4,bird,bob,0.1\n"
            "5,fish,cy,0.3\n6,ant,dee,0.2\n");
  RunResult show = Tusk(store_, {"show", "labels@main"});
  EXPECT_TRUE(HasSubstr(show.out, "Parents: ")) << show;
  RunResult graph = Tusk(store_, {"log", "--graph", "labels"});
  EXPECT_TRUE(HasSubstr(graph.out, "(main) merge labels@fix into labels@main")) << graph;
  EXPECT_TRUE(HasSubstr(graph.out, "|\\")) << graph;
  EXPECT_TRUE(HasSubstr(graph.out, "(fix) edit on fix")) << graph;
  // Merging again changes nothing.
  RunResult again = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  EXPECT_EQ(again.exit_code, 0) << again;
  EXPECT_TRUE(HasSubstr(again.out, "already up to date")) << again;
}

TEST_F(MergeCliTest, AConflictNamesEveryCellAndChangesNothing) {
  Labels("main", "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.5\n2,fox,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  std::string before = Head("labels@main");
  RunResult r = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.out, "CONFLICT (table) labels.csv")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "id=2 column label: base 'dog', ours 'wolf', theirs 'fox'")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "nothing was merged: 1 conflict")) << r;
  EXPECT_EQ(Head("labels@main"), before);
  RunResult json = Tusk(store_, {"merge", "labels@fix", "labels@main", "--json"});
  EXPECT_EQ(json.exit_code, 1) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"outcome\":\"conflicts\"")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"theirs\":\"fox\"")) << json;
}

TEST_F(MergeCliTest, TheirsResolvesEveryConflictForTheMergedSide) {
  Labels("main", "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.6\n2,fox,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  RunResult r = Tusk(store_, {"merge", "labels@fix", "labels@main", "--theirs"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(Cat("labels@main", "labels.csv"),
            "id,label,annotator,score\n1,cat,ann,0.6\n2,fox,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
}

TEST_F(MergeCliTest, ABranchThatHasNotMovedFastForwards) {
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.5\n");
  RunResult r = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "fast-forward labels@main: ")) << r;
  EXPECT_EQ(Head("labels@main"), Head("labels@fix"));
}

TEST_F(MergeCliTest, BadRequestsAreRefusedWithAMessageAndChangeNothing) {
  std::string before = Head("labels@main");
  RunResult self = Tusk(store_, {"merge", "labels@main", "labels@main"});
  EXPECT_EQ(self.exit_code, 1) << self;
  EXPECT_TRUE(HasSubstr(self.err, "cannot merge labels@main into itself")) << self;
  RunResult missing = Tusk(store_, {"merge", "labels@nope", "labels@main"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  RunResult no_branch = Tusk(store_, {"merge", "labels@fix", "labels@nope"});
  EXPECT_EQ(no_branch.exit_code, 1) << no_branch;
  EXPECT_TRUE(HasSubstr(no_branch.err, "no branch 'nope'")) << no_branch;
  RunResult both = Tusk(store_, {"merge", "labels@fix", "labels@main", "--ours", "--theirs"});
  EXPECT_EQ(both.exit_code, 1) << both;
  // Another dataset.
  Version("other", {{"other.txt", "x\n"}});
  Must(Tusk(store_, {"dataset", "create", "other"}));
  Must(Tusk(store_, {"import", tmp_.Sub("other"), "other@main", "-m", "x"}));
  RunResult cross = Tusk(store_, {"merge", "other@main", "labels@main"});
  EXPECT_EQ(cross.exit_code, 1) << cross;
  EXPECT_TRUE(HasSubstr(cross.err, "merges happen within one dataset")) << cross;
  EXPECT_EQ(Head("labels@main"), before);
}

TEST_F(MergeCliTest, UnrelatedHistoriesMergeOnlyWhenAllowed) {
  // Two branches made before the dataset had a commit share no history.
  Must(Tusk(store_, {"dataset", "create", "u"}));
  Must(Tusk(store_, {"branch", "u@side"}));
  Version("one", {{"one.txt", "1\n"}});
  Version("two", {{"two.txt", "2\n"}});
  Must(Tusk(store_, {"import", tmp_.Sub("one"), "u@main", "-m", "one"}));
  Must(Tusk(store_, {"import", tmp_.Sub("two"), "u@side", "-m", "two"}));
  std::string before = Head("u@main");
  RunResult unrelated = Tusk(store_, {"merge", "u@side", "u@main"});
  EXPECT_EQ(unrelated.exit_code, 1) << unrelated;
  EXPECT_TRUE(HasSubstr(unrelated.err, "share no history")) << unrelated;
  EXPECT_TRUE(HasSubstr(unrelated.err, "--allow-unrelated")) << unrelated;
  EXPECT_EQ(Head("u@main"), before);
  RunResult allowed = Tusk(store_, {"merge", "u@side", "u@main", "--allow-unrelated"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed;
  EXPECT_EQ(Cat("u@main", "one.txt"), "1\n");
  EXPECT_EQ(Cat("u@main", "two.txt"), "2\n");
}

TEST_F(MergeCliTest, ATargetWithStagedChangesIsRefused) {
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.5\n");
  {
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    auto ws = Workspace::Open(repo->get(), "labels", "main");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    auto f = (*ws)->Create("staged.txt", 0644, true, WsCaller{});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(0, "staged\n").ok());
  }
  RunResult r = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "labels@main has 1 staged change(s) in its workspace")) << r;
  RunResult status = Tusk(store_, {"status", "labels@main"});
  EXPECT_TRUE(HasSubstr(status.out, "A  staged.txt")) << status;
}

TEST_F(MergeCliTest, AMountedBranchShowsTheMergedVersion) {
  std::string mnt = tmp_.Sub("mnt");
  fs::create_directories(mnt);
  MountGuard mounts;
  ASSERT_TRUE(mounts.StartForeground(store_, {}, mnt, tmp_.Sub("mount.log")));
  Labels("main", "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.5\n2,dog,bob,0.7\n3,cat,ann,0.9\n4,heron,bob,0.1\n");
  // Reading the branch directory before the merge makes the mount hold its
  // workspace: the merge must still land, and the mount follow it.
  EXPECT_TRUE(HasSubstr(ReadOr(mnt + "/labels/main/labels.csv"), "2,wolf"));
  RunResult r = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string want = "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,heron,bob,0.1\n";
  EXPECT_TRUE(WaitUntil([&] { return ReadOr(mnt + "/labels/main/labels.csv") == want; }, 10))
      << ReadOr(mnt + "/labels/main/labels.csv");
  mounts.CleanupAll();
}

// ---- file formats declared per glob (tusk table set --format) --------------

TEST_F(MergeCliTest, ADeclaredFormatDecidesHowAFileIsMergedAndDiffed) {
  const std::string base = "id\tlabel\n1\tcat\n2\tdog\n3\tcow\n";
  auto write = [&](const std::string& branch, const std::string& export_txt, const std::string& labels) {
    Version(branch, {{"export.txt", export_txt}, {"labels.csv", labels}, {"notes.txt", "a\nb\nc\nd\ne\nf\ng\n"}});
    Must(Tusk(store_, {"import", tmp_.Sub(branch), "labels@" + branch, "-m", "edit on " + branch}));
  };
  write("main", base, kLabels);
  Must(Tusk(store_, {"branch", "labels@a", "main"}));
  Must(Tusk(store_, {"branch", "labels@b", "main"}));
  // Neighbouring rows: a conflict by line, clean by row.
  write("a", "id\tlabel\n1\tcat\n2\twolf\n3\tcow\n", kLabels);
  write("b", "id\tlabel\n1\tcat\n2\tdog\n3\tbull\n", kLabels);
  Must(Tusk(store_, {"branch", "labels@m1", "a"}));
  RunResult by_line = Tusk(store_, {"merge", "labels@b", "labels@m1"});
  EXPECT_EQ(by_line.exit_code, 1) << by_line;
  EXPECT_TRUE(HasSubstr(by_line.out, "CONFLICT (text) export.txt")) << by_line;

  Must(Tusk(store_, {"table", "set", "labels", "*.txt", "--format", "tsv", "--key", "id"}));
  RunResult list = Tusk(store_, {"table", "list", "labels"});
  EXPECT_TRUE(HasSubstr(list.out, "*.txt  format tsv, key id")) << list;
  RunResult rows = Tusk(store_, {"diff", "labels@main", "labels@a", "--rows"});
  EXPECT_EQ(rows.exit_code, 0) << rows;
  EXPECT_TRUE(HasSubstr(rows.out, "id=2: label dog -> wolf")) << rows;
  RunResult by_row = Tusk(store_, {"merge", "labels@b", "labels@m1"});
  ASSERT_EQ(by_row.exit_code, 0) << by_row;
  EXPECT_TRUE(HasSubstr(by_row.out, "merged export.txt by table, key id")) << by_row;
  EXPECT_EQ(Cat("labels@m1", "export.txt"), "id\tlabel\n1\tcat\n2\twolf\n3\tbull\n");

  // Declared binary: no line merge, and --stat shows sizes.
  Must(Tusk(store_, {"table", "set", "labels", "*.txt", "--format", "binary"}));
  Must(Tusk(store_, {"branch", "labels@m2", "a"}));
  RunResult binary = Tusk(store_, {"merge", "labels@b", "labels@m2"});
  EXPECT_EQ(binary.exit_code, 1) << binary;
  EXPECT_TRUE(HasSubstr(binary.out, "CONFLICT (binary) export.txt: changed on both sides; declared binary")) << binary;
  RunResult stat = Tusk(store_, {"diff", "labels@main", "labels@a", "--stat"});
  EXPECT_TRUE(HasSubstr(stat.out, "export.txt")) << stat;
  EXPECT_TRUE(HasSubstr(stat.out, "Bin")) << stat;

  // Declared text: a CSV merged by line, not by key.
  Must(Tusk(store_, {"table", "set", "labels", "*.csv", "--format", "text"}));
  write("a", base, "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  write("b", base, "id,label,annotator,score\n1,cat,ann,0.5\n2,dog,bob,0.7\n3,lynx,ann,0.9\n4,bird,bob,0.1\n");
  Must(Tusk(store_, {"branch", "labels@m3", "a"}));
  RunResult text = Tusk(store_, {"merge", "labels@b", "labels@m3"});
  EXPECT_EQ(text.exit_code, 1) << text;
  EXPECT_TRUE(HasSubstr(text.out, "CONFLICT (text) labels.csv")) << text;

  // Bad declarations are refused with the reason.
  RunResult unknown = Tusk(store_, {"table", "set", "labels", "*.xml", "--format", "xml"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_TRUE(HasSubstr(unknown.err, "unknown --format 'xml'")) << unknown;
  RunResult keyed_text = Tusk(store_, {"table", "set", "labels", "*.md", "--format", "text", "--key", "id"});
  EXPECT_EQ(keyed_text.exit_code, 1) << keyed_text;
  EXPECT_TRUE(HasSubstr(keyed_text.err, "are not tables")) << keyed_text;
  RunResult nothing = Tusk(store_, {"table", "set", "labels", "*.md"});
  EXPECT_EQ(nothing.exit_code, 1) << nothing;
}

// ---- tusk merge --stage, tusk resolve, and the merge commit ----------------

TEST_F(MergeCliTest, AStagedMergeIsResolvedInTheMountedWorkspaceThenCommittedWithTwoParents) {
  std::string mnt = tmp_.Sub("mnt");
  fs::create_directories(mnt);
  MountGuard mounts;
  ASSERT_TRUE(mounts.StartForeground(store_, {}, mnt, tmp_.Sub("mount.log")));
  std::string ws = mnt + "/labels/main";
  // Two labellers change one cell differently, and one line of the notes,
  // and both replace a binary file; theirs also adds a file.
  Version("main", {{"labels.csv", "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n"},
                   {"notes.txt", "a\nb\nOURS\nd\ne\nf\ng\n"},
                   {"img.bin", std::string("\0ours", 5)}});
  Must(Tusk(store_, {"import", tmp_.Sub("main"), "labels@main", "-m", "ours"}));
  Version("fix", {{"labels.csv", "id,label,annotator,score\n1,cat,ann,0.5\n2,fox,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.2\n"},
                  {"notes.txt", "a\nb\nTHEIRS\nd\ne\nf\ng\n"},
                  {"img.bin", std::string("\0theirs", 7)},
                  {"extra.txt", "from fix\n"}});
  Must(Tusk(store_, {"import", tmp_.Sub("fix"), "labels@fix", "-m", "theirs"}));
  std::string ours = Head("labels@main");
  EXPECT_TRUE(HasSubstr(ReadOr(ws + "/labels.csv"), "2,wolf"));  // the mount holds the workspace

  RunResult staged = Tusk(store_, {"merge", "labels@fix", "labels@main", "--stage"});
  ASSERT_EQ(staged.exit_code, 0) << staged;
  EXPECT_TRUE(HasSubstr(staged.out, "staged the merge of labels@fix into labels@main's workspace")) << staged;
  EXPECT_TRUE(HasSubstr(staged.out, "3 conflicts to resolve")) << staged;
  EXPECT_EQ(Head("labels@main"), ours);  // nothing landed
  // The workspace shows the merge, conflicts written for a person (the
  // mount looks the branch directory up again within a second).
  std::string table;
  const std::string want_table =
      "id,label,annotator,score\n1,cat,ann,0.5\n"
      "2,<<<<<<< ours: wolf ||||||| base: dog ======= theirs: fox >>>>>>>,bob,0.7\n"
      "3,cat,ann,0.9\n4,bird,bob,0.2\n";
  EXPECT_TRUE(WaitUntil([&] { return (table = ReadOr(ws + "/labels.csv")) == want_table; }, 10)) << table;
  EXPECT_TRUE(HasSubstr(ReadOr(ws + "/notes.txt"), "<<<<<<< labels@main\nOURS\n"));
  EXPECT_EQ(ReadOr(ws + "/img.bin"), std::string("\0ours", 5));
  EXPECT_EQ(ReadOr(ws + "/img.bin~theirs"), std::string("\0theirs", 7));
  EXPECT_EQ(ReadOr(ws + "/extra.txt"), "from fix\n");

  RunResult status = Tusk(store_, {"status", "labels@main"});
  ASSERT_EQ(status.exit_code, 0) << status;
  EXPECT_TRUE(HasSubstr(status.out, "merging labels@fix")) << status;
  EXPECT_TRUE(HasSubstr(status.out, "3 unresolved conflicts")) << status;
  EXPECT_TRUE(HasSubstr(status.out, "UNRESOLVED (table) labels.csv")) << status;
  EXPECT_TRUE(HasSubstr(status.out, "cell id=2 column label: base 'dog', ours 'wolf', theirs 'fox'")) << status;
  EXPECT_TRUE(HasSubstr(status.out, "notation left on line 3")) << status;
  EXPECT_TRUE(HasSubstr(status.out, "theirs' version: img.bin~theirs")) << status;
  RunResult json = Tusk(store_, {"status", "labels@main", "--json"});
  EXPECT_TRUE(HasSubstr(json.out, "\"unresolved\":3")) << json;

  // Refused while markers, notation or theirs' copy remain; and commit too.
  RunResult early = Tusk(store_, {"resolve", "labels@main", "labels.csv"});
  EXPECT_EQ(early.exit_code, 1) << early;
  EXPECT_TRUE(HasSubstr(early.err, "conflict notation remains on line 3")) << early;
  RunResult text_early = Tusk(store_, {"resolve", "labels@main", "notes.txt"});
  EXPECT_TRUE(HasSubstr(text_early.err, "conflict markers remain on lines")) << text_early;
  RunResult bin_early = Tusk(store_, {"resolve", "labels@main", "img.bin"});
  EXPECT_TRUE(HasSubstr(bin_early.err, "theirs' version is still at 'img.bin~theirs'")) << bin_early;
  RunResult not_one = Tusk(store_, {"resolve", "labels@main", "extra.txt"});
  EXPECT_EQ(not_one.exit_code, 1) << not_one;
  EXPECT_TRUE(HasSubstr(not_one.err, "is not a conflict of the merge")) << not_one;
  RunResult commit_early = Tusk(store_, {"commit", "labels@main"});
  EXPECT_EQ(commit_early.exit_code, 1) << commit_early;
  EXPECT_TRUE(HasSubstr(commit_early.err, "3 conflicting paths are unresolved")) << commit_early;
  RunResult merge_again = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  EXPECT_TRUE(HasSubstr(merge_again.err, "is staged in labels@main's workspace")) << merge_again;

  // Resolved with ordinary tools through the mount.
  ASSERT_TRUE(WriteFile(ws + "/labels.csv",
                        "id,label,annotator,score\n1,cat,ann,0.5\n2,fox,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.2\n"));
  ASSERT_TRUE(WriteFile(ws + "/notes.txt", "a\nb\nBOTH\nd\ne\nf\ng\n"));
  fs::rename(ws + "/img.bin~theirs", ws + "/img.bin");
  RunResult resolved = Tusk(store_, {"resolve", "labels@main", "labels.csv", "notes.txt", "img.bin"});
  ASSERT_EQ(resolved.exit_code, 0) << resolved;
  EXPECT_TRUE(HasSubstr(resolved.out, "every conflict resolved")) << resolved;
  RunResult commit = Tusk(store_, {"commit", "labels@main"});
  ASSERT_EQ(commit.exit_code, 0) << commit;
  EXPECT_EQ(Cat("labels@main", "notes.txt"), "a\nb\nBOTH\nd\ne\nf\ng\n");
  EXPECT_EQ(Cat("labels@main", "img.bin"), std::string("\0theirs", 7));
  EXPECT_EQ(Cat("labels@main", "extra.txt"), "from fix\n");
  RunResult show = Tusk(store_, {"show", "labels@main"});
  EXPECT_TRUE(HasSubstr(show.out, "merge labels@fix into labels@main")) << show;
  RunResult graph = Tusk(store_, {"log", "--graph", "labels"});
  EXPECT_TRUE(HasSubstr(graph.out, "|\\")) << graph;
  // The merge is in the history: merging again changes nothing.
  RunResult again = Tusk(store_, {"merge", "labels@fix", "labels@main"});
  EXPECT_TRUE(HasSubstr(again.out, "already up to date")) << again;
  RunResult after = Tusk(store_, {"status", "labels@main"});
  EXPECT_TRUE(HasSubstr(after.out, "nothing staged")) << after;
  mounts.CleanupAll();
}

TEST_F(MergeCliTest, WithoutAMountAStagedMergeCanBeInspectedAndDroppedByReset) {
  Labels("main", "id,label,annotator,score\n1,cat,ann,0.5\n2,wolf,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.5\n2,fox,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n");
  std::string ours = Head("labels@main");
  RunResult staged = Tusk(store_, {"merge", "labels@fix", "labels@main", "--stage", "--json"});
  ASSERT_EQ(staged.exit_code, 0) << staged;
  EXPECT_TRUE(HasSubstr(staged.out, "\"outcome\":\"staged\"")) << staged;
  RunResult status = Tusk(store_, {"status", "labels@main"});
  EXPECT_TRUE(HasSubstr(status.out, "UNRESOLVED (table) labels.csv")) << status;
  EXPECT_TRUE(HasSubstr(status.out, "M  labels.csv")) << status;
  // A second merge is refused while one is staged.
  RunResult run = Tusk(store_, {"merge", "labels@fix", "labels@main", "--stage"});
  EXPECT_EQ(run.exit_code, 1) << run;
  Must(Tusk(store_, {"reset", "labels@main"}));
  RunResult clean = Tusk(store_, {"status", "labels@main"});
  EXPECT_TRUE(HasSubstr(clean.out, "nothing staged")) << clean;
  EXPECT_FALSE(HasSubstr(clean.out, "merging")) << clean;
  EXPECT_EQ(Head("labels@main"), ours);
  RunResult none = Tusk(store_, {"resolve", "labels@main", "labels.csv"});
  EXPECT_EQ(none.exit_code, 1) << none;
  EXPECT_TRUE(HasSubstr(none.err, "no merge is staged")) << none;
  // With the merge dropped there is nothing to commit (with or without -m).
  RunResult no_message = Tusk(store_, {"commit", "labels@main"});
  EXPECT_EQ(no_message.exit_code, 0) << no_message;
  EXPECT_TRUE(HasSubstr(no_message.out, "nothing to commit")) << no_message;
}

TEST_F(MergeCliTest, ChecksRunWhenTheStagedMergeIsCommitted) {
  Labels("fix", "id,label,annotator,score\n1,cat,ann,0.5\n2,dog,bob,0.7\n3,cat,ann,0.9\n4,bird,bob,0.1\n5,x\n");
  Must(Tusk(store_, {"check", "add", "labels", "schema", "--builtin", "--", "csv", "*.csv"}));
  RunResult staged = Tusk(store_, {"merge", "labels@fix", "labels@main", "--stage"});
  ASSERT_EQ(staged.exit_code, 0) << staged;  // a fast-forward, staged as a merge: no conflicts
  EXPECT_TRUE(HasSubstr(staged.out, "0 conflicts to resolve")) << staged;
  std::string before = Head("labels@main");
  RunResult refused = Tusk(store_, {"commit", "labels@main"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_TRUE(HasSubstr(refused.err + refused.out, "schema")) << refused;
  EXPECT_EQ(Head("labels@main"), before);
  RunResult status = Tusk(store_, {"status", "labels@main"});
  EXPECT_TRUE(HasSubstr(status.out, "every conflict resolved")) << status;  // the merge stays staged
  RunResult skipped = Tusk(store_, {"commit", "labels@main", "--skip-checks", "known ragged row"});
  ASSERT_EQ(skipped.exit_code, 0) << skipped;
  RunResult show = Tusk(store_, {"show", "labels@main"});
  EXPECT_TRUE(HasSubstr(show.out, "known ragged row")) << show;
  EXPECT_TRUE(HasSubstr(show.out, "Parents: ")) << show;
}

}  // namespace
}  // namespace tusk::fstest
