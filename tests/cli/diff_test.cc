// tusk diff with path filters, --stat, -p and --json: git's line counts and
// unified diffs for text, binary and oversized files named as such, and the
// default listing unchanged. See man/tusk-diff.1.
#include <sys/stat.h>
#include <unistd.h>

#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

// d@main~1 is `tree()` as SetUp made it; each test edits the tree in place
// (so untouched files keep their mtimes) and commits d@main with Commit().
class DiffTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
    ASSERT_NO_FATAL_FAILURE(
        MakeTree(tree(), {File("a.txt", "one\ntwo\nthree\n"), File("bin.dat", std::string(100, '\0')),
                          File("docs/readme.md", "# Title\n\nText.\n"), File("docs/old.txt", "old\n"),
                          File("crlf.txt", "a\r\nb\r\nc\r\n"), File("keep.txt", "unchanged\n")}));
    ASSERT_NO_FATAL_FAILURE(Import(tree(), "d@main", "v1"));
  }

  std::string tree() const { return Path("tree"); }
  void Write(const std::string& rel, const std::string& content) { WriteFileOrDie(tree() + "/" + rel, content); }
  void Remove(const std::string& rel) { ASSERT_EQ(::unlink((tree() + "/" + rel).c_str()), 0) << rel; }
  void Commit() { ASSERT_NO_FATAL_FAILURE(Import(tree(), "d@main", "v2")); }

  template <typename... Args>
  RunResult Diff(const Args&... args) {
    return Run("diff", "d@main~1", "d@main", args...);
  }
};

TEST_F(DiffTest, StatCountsLinesAddedAndRemovedPerTextFile) {
  Write("a.txt", "one\nTWO\nthree\nfour\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("--stat");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            " a.txt | 3 ++-\n"
            " 1 file changed, 2 insertions(+), 1 deletion(-)\n");
}

TEST_F(DiffTest, StatAlignsNamesAndCountsAndShowsBinarySizesAsGitDoes) {
  Write("a.txt", "one\nTWO\nthree\nfour\n");
  Write("bin.dat", std::string(200, '\0'));
  Remove("docs/old.txt");
  std::string many;
  for (int i = 1; i <= 120; i++) many += std::to_string(i) + "\n";
  Write("docs/long-name-of-a-new-file.txt", many);
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("--stat");
  ASSERT_EQ(r.exit_code, 0) << r;
  // Byte for byte what `git diff --stat` prints for the same change (80
  // columns: the graph is scaled down, 120 lines take 39 columns).
  EXPECT_EQ(r.out,
            " a.txt                            |   3 +-\n"
            " bin.dat                          | Bin 100 -> 200 bytes\n"
            " docs/long-name-of-a-new-file.txt | 120 +++++++++++++++++++++++++++++++++++++++\n"
            " docs/old.txt                     |   1 -\n"
            " 4 files changed, 122 insertions(+), 2 deletions(-)\n");
}

TEST_F(DiffTest, StatOfNothingChanged) {
  RunResult r = Run("diff", "d@main", "d@main", "--stat");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, " 0 files changed\n");
}

TEST_F(DiffTest, PatchIsGitsUnifiedDiff) {
  Write("a.txt", "one\nTWO\nthree\nfour\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("-p");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "diff --git a/a.txt b/a.txt\n"
            "--- a/a.txt\n"
            "+++ b/a.txt\n"
            "@@ -1,3 +1,4 @@\n"
            " one\n"
            "-two\n"
            "+TWO\n"
            " three\n"
            "+four\n");
  EXPECT_EQ(Diff("--patch").out, r.out);
}

TEST_F(DiffTest, PatchOfAddedAndDeletedFilesIsAgainstDevNull) {
  Remove("docs/old.txt");
  Write("new.txt", "fresh\nlines\n");
  Write("empty.txt", "");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("-p");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "diff --git a/docs/old.txt b/docs/old.txt\n"
            "deleted file mode 100644\n"
            "--- a/docs/old.txt\n"
            "+++ /dev/null\n"
            "@@ -1 +0,0 @@\n"
            "-old\n"
            "diff --git a/empty.txt b/empty.txt\n"
            "new file mode 100644\n"
            "diff --git a/new.txt b/new.txt\n"
            "new file mode 100644\n"
            "--- /dev/null\n"
            "+++ b/new.txt\n"
            "@@ -0,0 +1,2 @@\n"
            "+fresh\n"
            "+lines\n");
}

TEST_F(DiffTest, NoFinalNewlineIsMarkedAsGitMarksIt) {
  Write("a.txt", "one\ntwo\nthree");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("-p");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n two\n-three\n+three\n"
            "\\ No newline at end of file\n");
  EXPECT_EQ(Diff("--stat").out, " a.txt | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n");
}

TEST_F(DiffTest, BinaryFilesAreNamedInPatchAndSizedInStat) {
  Write("bin.dat", std::string(200, '\0'));
  Write("new.bin", std::string("\x01\x00\x02", 3));
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult p = Diff("-p");
  ASSERT_EQ(p.exit_code, 0) << p;
  EXPECT_EQ(p.out,
            "diff --git a/bin.dat b/bin.dat\n"
            "Binary files a/bin.dat and b/bin.dat differ\n"
            "diff --git a/new.bin b/new.bin\n"
            "new file mode 100644\n"
            "Binary files /dev/null and b/new.bin differ\n");
  RunResult s = Diff("--stat");
  ASSERT_EQ(s.exit_code, 0) << s;
  EXPECT_EQ(s.out,
            " bin.dat | Bin 100 -> 200 bytes\n"
            " new.bin | Bin 0 -> 3 bytes\n"
            " 2 files changed, 0 insertions(+), 0 deletions(-)\n");
}

TEST_F(DiffTest, CrlfLinesKeepTheirCarriageReturns) {
  Write("crlf.txt", "a\r\nB\r\nc\r\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult p = Diff("-p");
  ASSERT_EQ(p.exit_code, 0) << p;
  EXPECT_EQ(
      p.out,
      "diff --git a/crlf.txt b/crlf.txt\n--- a/crlf.txt\n+++ b/crlf.txt\n@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\r\n");
  EXPECT_EQ(Diff("--stat").out, " crlf.txt | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n");
}

TEST_F(DiffTest, CrlfToLfChangesEveryLine) {
  Write("crlf.txt", "a\nb\nc\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  EXPECT_EQ(Diff("--stat").out, " crlf.txt | 6 +++---\n 1 file changed, 3 insertions(+), 3 deletions(-)\n");
}

TEST_F(DiffTest, RenamesAndMetadataChangesPrintTheirHeaderOnly) {
  ASSERT_EQ(::rename((tree() + "/docs/old.txt").c_str(), (tree() + "/docs/moved.txt").c_str()), 0);
  ASSERT_EQ(::chmod((tree() + "/keep.txt").c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult p = Diff("-p");
  ASSERT_EQ(p.exit_code, 0) << p;
  EXPECT_EQ(p.out,
            "diff --git a/docs/old.txt b/docs/moved.txt\n"
            "rename from docs/old.txt\n"
            "rename to docs/moved.txt\n"
            "diff --git a/keep.txt b/keep.txt\n"
            "mode 100644 -> 100755\n");
  RunResult s = Diff("--stat");
  ASSERT_EQ(s.exit_code, 0) << s;
  EXPECT_EQ(s.out,
            " docs/old.txt => docs/moved.txt | 0\n"
            " keep.txt                       | 0\n"
            " 2 files changed, 0 insertions(+), 0 deletions(-)\n");
}

TEST_F(DiffTest, StatThenPatchWhenBothAreAsked) {
  Write("a.txt", "one\ntwo\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("--stat", "-p");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            " a.txt | 1 -\n 1 file changed, 1 deletion(-)\n\n"
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,2 @@\n one\n two\n-three\n");
}

TEST_F(DiffTest, FilesAboveTheLineLimitAreNamedWithoutBeingDiffed) {
  // 64 MiB + 1, sparse: the import stores it as a hole, so this stays cheap.
  std::string big = tree() + "/big.txt";
  ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(big, "x\n"));
  ASSERT_NO_FATAL_FAILURE(Commit());
  ASSERT_EQ(::truncate(big.c_str(), (64 << 20) + 1), 0);
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult p = Diff("-p");
  ASSERT_EQ(p.exit_code, 0) << p;
  EXPECT_EQ(p.out,
            "diff --git a/big.txt b/big.txt\n"
            "Files a/big.txt and b/big.txt differ (too large to diff by line: over 64 MiB)\n");
  RunResult s = Diff("--stat");
  EXPECT_EQ(s.out, " big.txt | Bin 2 -> 67108865 bytes\n 1 file changed, 0 insertions(+), 0 deletions(-)\n");
  RunResult j = Diff("-p", "--json");
  EXPECT_TRUE(HasSubstr(j.out, "\"binary\":true,\"too_large\":true")) << j;
}

// ---- path filters ----

TEST_F(DiffTest, PathsKeepChangesAtOrBelowThem) {
  Write("a.txt", "one\n");
  Write("docs/readme.md", "# Title\n");
  Remove("docs/old.txt");
  Write("docsx.txt", "not under docs\n");
  ASSERT_NO_FATAL_FAILURE(Commit());

  RunResult dir = Diff("docs");
  ASSERT_EQ(dir.exit_code, 0) << dir;
  EXPECT_EQ(dir.out,
            "D  docs/old.txt (4 B)\n"
            "M  docs/readme.md (15 B -> 8 B)\n"
            "0 added, 1 deleted, 1 modified, 0 renamed, 0 type changed\n");

  RunResult exact = Diff("--stat", "a.txt", "./docs/old.txt/");
  ASSERT_EQ(exact.exit_code, 0) << exact;
  EXPECT_EQ(exact.out,
            " a.txt        | 2 --\n"
            " docs/old.txt | 1 -\n"
            " 2 files changed, 3 deletions(-)\n");  // git names only the non-zero one

  // A path that only one version has, and a path without changes.
  EXPECT_EQ(Diff("docsx.txt").out, "A  docsx.txt (15 B)\n1 added, 0 deleted, 0 modified, 0 renamed, 0 type changed\n");
  EXPECT_EQ(Diff("-p", "keep.txt").out, "");
}

TEST_F(DiffTest, APathInNeitherVersionIsAnError) {
  Write("a.txt", "one\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("--stat", "a.txt", "no/such/file");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "tusk: error: path 'no/such/file' is in neither d@main~1 nor d@main\n");
}

TEST_F(DiffTest, InputsTakesNoPathsStatOrPatch) {
  for (const char* extra : {"a.txt", "--stat", "-p"}) {
    RunResult r = Run("diff", "--inputs", "d@main", "d@main", extra);
    EXPECT_EQ(r.exit_code, 2) << extra << r;
    EXPECT_TRUE(StartsWith(r.err, "tusk: usage error: ")) << r;
  }
}

// ---- --json ----

TEST_F(DiffTest, JsonWithStatAddsLineCountsOrBinary) {
  Write("a.txt", "one\nTWO\nthree\nfour\n");
  Write("bin.dat", std::string(200, '\0'));
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("--stat", "--json");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(IsValidJson(r.out));
  EXPECT_EQ(r.out,
            "[{\"status\":\"M\",\"path\":\"a.txt\",\"old_size\":14,\"new_size\":19,\"lines_added\":2,"
            "\"lines_removed\":1},"
            "{\"status\":\"M\",\"path\":\"bin.dat\",\"old_size\":100,\"new_size\":200,\"binary\":true}]\n");
}

TEST_F(DiffTest, JsonWithPatchAddsThePatchText) {
  Write("crlf.txt", "a\r\nB\r\nc\r\n");
  Write("bin.dat", std::string(200, '\0'));
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("-p", "--json");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(IsValidJson(r.out));
  EXPECT_EQ(r.out,
            "[{\"status\":\"M\",\"path\":\"bin.dat\",\"old_size\":100,\"new_size\":200,\"binary\":true},"
            "{\"status\":\"M\",\"path\":\"crlf.txt\",\"old_size\":9,\"new_size\":9,\"patch\":"
            "\"--- a/crlf.txt\\n+++ b/crlf.txt\\n@@ -1,3 +1,3 @@\\n a\\r\\n-b\\r\\n+B\\r\\n c\\r\\n\"}]\n");
}

TEST_F(DiffTest, JsonWithoutStatOrPatchIsUnchanged) {
  Write("a.txt", "one\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  EXPECT_EQ(Diff("--json").out, "[{\"status\":\"M\",\"path\":\"a.txt\",\"old_size\":14,\"new_size\":4}]\n");
}

}  // namespace
}  // namespace tusk::cli_test

namespace tusk::cli_test {
namespace {

// --rows: tables compared by key and cell, with the rules merge uses.
class DiffRowsTest : public DiffTest {
 protected:
  // Commits `before` as labels.csv, then `after`: d@main~1 and d@main.
  void Versions(const std::string& name, const std::string& before, const std::string& after) {
    Write(name, before);
    ASSERT_NO_FATAL_FAILURE(Commit());
    Write(name, after);
    ASSERT_NO_FATAL_FAILURE(Commit());
  }
};

TEST_F(DiffRowsTest, RowsShowAddedRemovedAndChangedCellsByKey) {
  ASSERT_NO_FATAL_FAILURE(Versions("labels.csv", "id,label,score\n1,cat,0.5\n2,dog,0.7\n42,cat,0.1\n",
                                   "id,label,score\n1,cat,0.5\n42,dog,0.1\n7,owl,0.9\n"));
  RunResult r = Diff("--rows");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "M  labels.csv (CSV, key id): 1 row added, 1 removed, 1 changed (1 cell)\n"
            "   - id=2\n"
            "   ~ id=42: label cat -> dog\n"
            "   + id=7\n");
  RunResult json = Diff("--rows", "--json");
  ASSERT_EQ(json.exit_code, 0) << json;
  EXPECT_TRUE(HasSubstr(json.out, "{\"column\":\"label\",\"old\":\"cat\",\"new\":\"dog\"}")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"key\":[\"id\"]")) << json;
}

TEST_F(DiffRowsTest, AKeyCanBeGivenAndMustHold) {
  ASSERT_NO_FATAL_FAILURE(Versions("labels.csv", "file,label\na.png,cat\nb.png,dog\n", "file,label\na.png,owl\nb.png,dog\n"));
  RunResult by_label = Diff("--rows", "--key", "label");
  ASSERT_EQ(by_label.exit_code, 0) << by_label;
  EXPECT_TRUE(HasSubstr(by_label.out, "key label (declared)")) << by_label;
  EXPECT_TRUE(HasSubstr(by_label.out, "+ label=owl")) << by_label;
  RunResult missing = Diff("--rows", "--key", "nope");
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_TRUE(HasSubstr(missing.err, "nope")) << missing;
  RunResult usage = Run("diff", "d@main~1", "d@main", "--key", "id");
  EXPECT_EQ(usage.exit_code, 2) << "--key needs --rows" << usage;
}

TEST_F(DiffRowsTest, AFileThatIsNotATableIsNamedWithItsLineAndFails) {
  ASSERT_NO_FATAL_FAILURE(Versions("t.csv", "id,a\n1,x\n", "id,a\n1,x\n2\n"));
  RunResult r = Diff("--rows");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "t.csv: not a CSV table: new line 3")) << r;
}

TEST_F(DiffRowsTest, OtherFilesAreListedAsWithoutRows) {
  Write("a.txt", "changed\n");
  ASSERT_NO_FATAL_FAILURE(Commit());
  RunResult r = Diff("--rows");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "M  a.txt")) << r;
}

}  // namespace
}  // namespace tusk::cli_test
