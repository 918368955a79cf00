// store/merge/text.h: line merges, line counts and unified diffs agree with
// git (`git merge-file --diff3`, `git diff --no-index`), binary and
// oversized inputs are refused, and conflict markers are recognised.
#include "store/merge/text.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <string>

namespace tusk {
namespace {

LineMergeLabels Labels() {
  LineMergeLabels labels;
  labels.ours = "data@main";
  labels.base = "merge base 1a2b3c4d";
  labels.theirs = "data@fix";
  return labels;
}

LineMergeResult Merge(std::string_view base, std::string_view ours, std::string_view theirs) {
  auto r = MergeLines(base, ours, theirs, Labels());
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : LineMergeResult{};
}

// ---- MergeLines ----

TEST(MergeLinesTest, EditsToDifferentLinesMergeClean) {
  auto r = Merge("1\n2\n3\n4\n5\n", "1\nA\n3\n4\n5\n", "1\n2\n3\n4\nB\n");
  EXPECT_TRUE(r.clean);
  EXPECT_EQ(r.conflicts, 0u);
  EXPECT_EQ(r.merged, "1\nA\n3\n4\nB\n");
}

TEST(MergeLinesTest, TheSameChangeOnBothSidesMergesClean) {
  auto r = Merge("1\n2\n3\n", "1\nA\n3\n", "1\nA\n3\n");
  EXPECT_TRUE(r.clean);
  EXPECT_EQ(r.merged, "1\nA\n3\n");
}

TEST(MergeLinesTest, AChangeOnOneSideOnlyIsTaken) {
  EXPECT_EQ(Merge("1\n2\n", "1\n2\n", "1\n2\n3\n").merged, "1\n2\n3\n");
  EXPECT_EQ(Merge("1\n2\n", "0\n1\n2\n", "1\n2\n").merged, "0\n1\n2\n");
}

TEST(MergeLinesTest, EmptyTextsMergeClean) {
  auto r = Merge("", "", "");
  EXPECT_TRUE(r.clean);
  EXPECT_EQ(r.merged, "");
}

TEST(MergeLinesTest, TheSameLineChangedDifferentlyConflictsWithDiff3MarkersAndLabels) {
  auto r = Merge("1\n2\n3\n", "1\nA\n3\n", "1\nB\n3\n");
  EXPECT_FALSE(r.clean);
  EXPECT_EQ(r.conflicts, 1u);
  EXPECT_EQ(r.merged,
            "1\n"
            "<<<<<<< data@main\n"
            "A\n"
            "||||||| merge base 1a2b3c4d\n"
            "2\n"
            "=======\n"
            "B\n"
            ">>>>>>> data@fix\n"
            "3\n");
  EXPECT_TRUE(HasLineConflictMarkers(r.merged));
}

TEST(MergeLinesTest, CountsEachConflictingHunk) {
  auto r = Merge("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\nA\n3\n4\n5\n6\n7\nC\n9\n", "1\nB\n3\n4\n5\n6\n7\nD\n9\n");
  EXPECT_FALSE(r.clean);
  EXPECT_EQ(r.conflicts, 2u);
}

TEST(MergeLinesTest, ConflictMarkersInACrlfFileEndInCrlf) {
  auto r = Merge("1\r\n2\r\n3\r\n", "1\r\nA\r\n3\r\n", "1\r\nB\r\n3\r\n");
  EXPECT_FALSE(r.clean);
  EXPECT_EQ(r.conflicts, 1u);
  EXPECT_EQ(r.merged,
            "1\r\n<<<<<<< data@main\r\nA\r\n||||||| merge base 1a2b3c4d\r\n2\r\n=======\r\nB\r\n>>>>>>> data@fix\r\n"
            "3\r\n");
}

TEST(MergeLinesTest, CrlfEditsToDifferentLinesMergeClean) {
  auto r = Merge("1\r\n2\r\n3\r\n4\r\n", "1\r\nA\r\n3\r\n4\r\n", "1\r\n2\r\n3\r\nB\r\n");
  EXPECT_TRUE(r.clean);
  EXPECT_EQ(r.merged, "1\r\nA\r\n3\r\nB\r\n");
}

TEST(MergeLinesTest, NoFinalNewlineIsKept) {
  auto r = Merge("1\n2\n3", "1\nA\n3", "1\n2\n3");
  EXPECT_TRUE(r.clean);
  EXPECT_EQ(r.merged, "1\nA\n3");
}

TEST(MergeLinesTest, AConflictOnALastLineWithoutNewlineGetsOneBeforeTheMarker) {
  // As git merge-file writes it.
  auto r = Merge("1\n2", "1\nA", "1\nB");
  EXPECT_FALSE(r.clean);
  EXPECT_EQ(r.merged, "1\n<<<<<<< data@main\nA\n||||||| merge base 1a2b3c4d\n2\n=======\nB\n>>>>>>> data@fix\n");
}

TEST(MergeLinesTest, BinarySidesAreRefused) {
  std::string binary("1\n\0002\n", 5);
  for (int side = 0; side < 3; side++) {
    std::string_view texts[3] = {"1\n", "1\n", "1\n"};
    texts[side] = binary;
    auto r = MergeLines(texts[0], texts[1], texts[2], Labels());
    ASSERT_FALSE(r.ok()) << side;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("binary"), std::string::npos) << r.status().ToString();
  }
}

// ---- what is text ----

TEST(LooksLikeTextTest, ANulInTheFirst8000BytesMakesBinary) {
  EXPECT_TRUE(LooksLikeText(""));
  EXPECT_TRUE(LooksLikeText("plain\ntext\r\n\xff\xfe odd bytes are still text"));
  EXPECT_FALSE(LooksLikeText(std::string_view("\0", 1)));
  std::string late(kTextProbeBytes, 'x');
  late[kTextProbeBytes - 1] = '\0';
  EXPECT_FALSE(LooksLikeText(late));
  late[kTextProbeBytes - 1] = 'x';
  late += std::string(1, '\0');  // byte 8001: git does not look that far
  EXPECT_TRUE(LooksLikeText(late));
}

TEST(LooksLikeTextTest, TheSizeLimitIsInclusive) {
  EXPECT_TRUE(FitsLineMerge(0));
  EXPECT_TRUE(FitsLineMerge(kMaxLineMergeBytes));
  EXPECT_FALSE(FitsLineMerge(kMaxLineMergeBytes + 1));
}

// A text one byte over the limit, without committing 64 MiB of memory: an
// anonymous mapping's untouched pages are never allocated (and read as zero
// bytes, which lie beyond the 8000 bytes the binary test looks at).
class OversizedText {
 public:
  OversizedText() {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    data_ = static_cast<char*>(p);
    std::memset(data_, 'x', kTextProbeBytes);
  }
  ~OversizedText() {
    if (data_) ::munmap(data_, size_);
  }
  bool ok() const { return data_ != nullptr; }
  std::string_view view() const { return {data_, size_}; }

 private:
  size_t size_ = kMaxLineMergeBytes + 1;
  char* data_ = nullptr;
};

TEST(LooksLikeTextTest, TooLargeTextIsRefusedByEveryOperation) {
  OversizedText big;
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE(LooksLikeText(big.view()));
  auto merge = MergeLines("x\n", big.view(), "x\n", Labels());
  ASSERT_FALSE(merge.ok());
  EXPECT_EQ(merge.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(merge.status().message().find("too large"), std::string::npos) << merge.status().ToString();
  EXPECT_FALSE(CountLineChanges("x\n", big.view()).ok());
  EXPECT_FALSE(UnifiedDiff(big.view(), "x\n", {}).ok());
}

// ---- CountLineChanges ----

TEST(CountLineChangesTest, CountsAddedAndRemovedLinesAsGitNumstatDoes) {
  // `git diff --no-index --numstat old new`: 3 2
  auto r = CountLineChanges("alpha\nbeta\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\niota\nkappa\n",
                            "alpha\nBETA\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\nkappa\nlambda\nmu");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->added, 3u);
  EXPECT_EQ(r->removed, 2u);
}

TEST(CountLineChangesTest, EqualTextsAndEmptySides) {
  auto same = CountLineChanges("a\nb\n", "a\nb\n");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->added + same->removed, 0u);
  auto added = CountLineChanges("", "a\nb\n");
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->added, 2u);
  EXPECT_EQ(added->removed, 0u);
  auto removed = CountLineChanges("a\nb\nc", "");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->added, 0u);
  EXPECT_EQ(removed->removed, 3u);
}

TEST(CountLineChangesTest, AddingTheFinalNewlineChangesTheLastLine) {
  auto r = CountLineChanges("a\nb", "a\nb\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->added, 1u);
  EXPECT_EQ(r->removed, 1u);
}

TEST(CountLineChangesTest, CrlfToLfChangesEveryLine) {
  auto r = CountLineChanges("a\r\nb\r\n", "a\nb\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->added, 2u);
  EXPECT_EQ(r->removed, 2u);
}

TEST(CountLineChangesTest, BinaryIsRefused) {
  auto r = CountLineChanges(std::string_view("a\0", 2), "a\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

// ---- UnifiedDiff ----

UnifiedDiffOptions Paths(std::string old_path, std::string new_path) {
  UnifiedDiffOptions o;
  o.old_path = std::move(old_path);
  o.new_path = std::move(new_path);
  return o;
}

TEST(UnifiedDiffTest, MatchesGitDiffNoIndexIncludingNoFinalNewline) {
  // `git diff --no-index old.txt new.txt`, less its diff --git and index lines.
  auto r = UnifiedDiff("alpha\nbeta\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\niota\nkappa\n",
                       "alpha\nBETA\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\nkappa\nlambda\nmu",
                       Paths("old.txt", "new.txt"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r,
            "--- a/old.txt\n"
            "+++ b/new.txt\n"
            "@@ -1,10 +1,11 @@\n"
            " alpha\n"
            "-beta\n"
            "+BETA\n"
            " gamma\n"
            " delta\n"
            " epsilon\n"
            " zeta\n"
            " eta\n"
            " theta\n"
            "-iota\n"
            " kappa\n"
            "+lambda\n"
            "+mu\n"
            "\\ No newline at end of file\n");
}

TEST(UnifiedDiffTest, MatchesGitWithTwoHunksAndFunctionContext) {
  std::string old_text = "header\n", new_text = "header\n";
  for (int i = 1; i <= 15; i++) {
    std::string line = "  line " + std::to_string(i) + "\n";
    old_text += line;
    if (i == 2) line = "  line two\n";
    if (i == 14) line = "  line fourteen\n  extra\n";
    new_text += line;
  }
  auto r = UnifiedDiff(old_text, new_text, Paths("o2", "n2"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r,
            "--- a/o2\n+++ b/n2\n"
            "@@ -1,6 +1,6 @@\n header\n   line 1\n-  line 2\n+  line two\n   line 3\n   line 4\n   line 5\n"
            "@@ -12,5 +12,6 @@ header\n   line 11\n   line 12\n   line 13\n-  line 14\n+  line fourteen\n"
            "+  extra\n   line 15\n");
}

TEST(UnifiedDiffTest, EqualTextsGiveNothing) {
  auto r = UnifiedDiff("a\nb\n", "a\nb\n", Paths("x", "x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "");
}

TEST(UnifiedDiffTest, AbsentSidesAreDevNull) {
  UnifiedDiffOptions added = Paths("", "new.txt");
  added.old_absent = true;
  auto a = UnifiedDiff("", "one\ntwo\n", added);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n");

  UnifiedDiffOptions deleted = Paths("gone.txt", "");
  deleted.new_absent = true;
  auto d = UnifiedDiff("last", "", deleted);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-last\n\\ No newline at end of file\n");
}

TEST(UnifiedDiffTest, AnAbsentSideHasNoText) {
  UnifiedDiffOptions o = Paths("", "f");
  o.old_absent = true;
  auto r = UnifiedDiff("text\n", "text\n", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST(UnifiedDiffTest, OnlyTheFinalNewlineChanged) {
  auto r = UnifiedDiff("a\nb", "a\nb\n", Paths("f", "f"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
}

TEST(UnifiedDiffTest, CrlfLinesKeepTheirCarriageReturns) {
  // As `git diff --no-index` prints them (no autocrlf).
  auto r = UnifiedDiff("a\r\nb\r\n", "a\r\nB\r\n", Paths("c1", "c2"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "--- a/c1\n+++ b/c2\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n");
}

TEST(UnifiedDiffTest, ContextIsAnOption) {
  UnifiedDiffOptions o = Paths("f", "f");
  o.context = 0;
  auto r = UnifiedDiff("1\n2\n3\n", "1\nX\n3\n", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "--- a/f\n+++ b/f\n@@ -2 +2 @@\n-2\n+X\n");
}

TEST(UnifiedDiffTest, PathsThatLookLikeHunkHeadersStayInTheHeader) {
  auto r = UnifiedDiff("a\n", "b\n", Paths("x\n@@ y", "x\n@@ y"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "--- a/x\n@@ y\n+++ b/x\n@@ y\n@@ -1 +1 @@\n-a\n+b\n");
}

TEST(UnifiedDiffTest, BinaryIsRefused) {
  auto r = UnifiedDiff("a\n", std::string_view("b\0", 2), Paths("f", "f"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

// ---- HasLineConflictMarkers ----

TEST(HasLineConflictMarkersTest, FindsEachKindOfMarkerLine) {
  EXPECT_TRUE(HasLineConflictMarkers("a\n<<<<<<< ours\nb\n"));
  EXPECT_TRUE(HasLineConflictMarkers("a\n||||||| base\n"));
  EXPECT_TRUE(HasLineConflictMarkers("a\n=======\nb"));
  EXPECT_TRUE(HasLineConflictMarkers(">>>>>>> theirs"));
  EXPECT_TRUE(HasLineConflictMarkers("<<<<<<<\n"));
  EXPECT_TRUE(HasLineConflictMarkers("x\r\n=======\r\ny\r\n"));
  EXPECT_TRUE(HasLineConflictMarkers("x\r\n>>>>>>> theirs\r\n"));
}

TEST(HasLineConflictMarkersTest, IgnoresLookalikes) {
  EXPECT_FALSE(HasLineConflictMarkers(""));
  EXPECT_FALSE(HasLineConflictMarkers("plain text\n"));
  EXPECT_FALSE(HasLineConflictMarkers("<<<<<<<< eight\n"));
  EXPECT_FALSE(HasLineConflictMarkers("<<<<<< six\n"));
  EXPECT_FALSE(HasLineConflictMarkers("========\n"));  // a Markdown or RST underline
  EXPECT_FALSE(HasLineConflictMarkers("======= heading\n"));
  EXPECT_FALSE(HasLineConflictMarkers("x <<<<<<< y\n"));  // not at a line's start
  EXPECT_FALSE(HasLineConflictMarkers("<<<<<<<x\n"));
}

}  // namespace
}  // namespace tusk
