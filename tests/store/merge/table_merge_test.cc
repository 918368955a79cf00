// MergeTables: rows by key, cells by column; the cases from the issue, the
// conflict notation, and which bytes survive.
#include <gtest/gtest.h>

#include <algorithm>

#include "store/merge/table.h"
#include "tests/store/merge/table_test_util.h"

namespace tusk {
namespace {

using testing_table::Decode;
using testing_table::Lines;
using testing_table::Merge;
using Rows = std::vector<std::vector<std::string>>;

// "id,label,score" and n rows: i, label<i>, 0.<i>.
std::vector<std::string> Base(int n) {
  std::vector<std::string> lines{"id,label,score"};
  for (int i = 1; i <= n; i++)
    lines.push_back(std::to_string(i) + ",label" + std::to_string(i) + ",0." + std::to_string(i));
  return lines;
}

std::string Relabel(std::vector<std::string> lines, const std::vector<int>& ids, const std::string& prefix) {
  for (int id : ids) lines[id] = std::to_string(id) + "," + prefix + std::to_string(id) + ",0." + std::to_string(id);
  return Lines(lines);
}

TEST(TableMerge, EachSideRelabelsDifferentRowsCleanly) {
  auto base = Base(50);
  auto m = Merge(Lines(base), Relabel(base, {3, 17, 41}, "ours"), Relabel(base, {8, 22, 49}, "theirs"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->clean);
  auto expect = base;
  for (int id : {3, 17, 41})
    expect[id] = std::to_string(id) + ",ours" + std::to_string(id) + ",0." + std::to_string(id);
  for (int id : {8, 22, 49})
    expect[id] = std::to_string(id) + ",theirs" + std::to_string(id) + ",0." + std::to_string(id);
  EXPECT_EQ(m->merged, Lines(expect));
  EXPECT_EQ(m->key.Describe(), "key id");
  EXPECT_EQ(m->cells_merged, 6u);
}

TEST(TableMerge, NeighbouringRowsChangedOnEachSideMergeCleanly) {
  auto base = Base(10);
  auto m = Merge(Lines(base), Relabel(base, {4}, "ours"), Relabel(base, {5}, "theirs"));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(Decode(m->merged)[4][1], "ours4");
  EXPECT_EQ(Decode(m->merged)[5][1], "theirs5");
}

TEST(TableMerge, SameRowDifferentColumnsMergeCleanly) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n";
  auto m = Merge(base, "id,label,score\n1,kitten,0.5\n2,dog,0.7\n", "id,label,score\n1,cat,0.9\n2,dog,0.7\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,label,score\n1,kitten,0.9\n2,dog,0.7\n");
}

TEST(TableMerge, BothAppendDistinctRowsOursFirst) {
  std::string base = "id,label\n1,a\n2,b\n";
  auto m = Merge(base, base + "3,c\n", base + "4,d\n5,e\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, base + "3,c\n4,d\n5,e\n");
  EXPECT_EQ(m->rows_from_ours, 1u);
  EXPECT_EQ(m->rows_from_theirs, 2u);
}

TEST(TableMerge, TheirsNewRowsGoAfterTheRowThatPrecedesThemInTheirs) {
  std::string base = "id,label\n1,a\n2,b\n3,c\n";
  auto m = Merge(base, "id,label\n1,a\n2,b\n3,c\n", "id,label\n0,top\n1,a\n2,b\n9,mid\n3,c\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->merged, "id,label\n0,top\n1,a\n2,b\n9,mid\n3,c\n");
}

TEST(TableMerge, OneSideSortsByLabelWhileTheOtherRelabelsFiveRows) {
  std::string base = Lines({"id,label", "1,delta", "2,alpha", "3,echo", "4,charlie", "5,bravo", "6,foxtrot"});
  std::string sorted = Lines({"id,label", "2,alpha", "5,bravo", "4,charlie", "1,delta", "3,echo", "6,foxtrot"});
  std::string relabelled = Lines({"id,label", "1,DELTA", "2,ALPHA", "3,echo", "4,CHARLIE", "5,BRAVO", "6,FOXTROT"});
  std::string expect = Lines({"id,label", "2,ALPHA", "5,BRAVO", "4,CHARLIE", "1,DELTA", "3,echo", "6,FOXTROT"});
  auto ours_sorted = Merge(base, sorted, relabelled);
  ASSERT_TRUE(ours_sorted.ok());
  EXPECT_TRUE(ours_sorted->clean);
  EXPECT_EQ(ours_sorted->merged, expect) << "ours reordered: ours' order";
  auto theirs_sorted = Merge(base, relabelled, sorted);
  ASSERT_TRUE(theirs_sorted.ok());
  EXPECT_TRUE(theirs_sorted->clean);
  EXPECT_EQ(theirs_sorted->merged, expect) << "only theirs reordered: theirs' order";
}

TEST(TableMerge, BothReorderedKeepsOursOrder) {
  std::string base = Lines({"id,v", "1,a", "2,b", "3,c"});
  auto m = Merge(base, Lines({"id,v", "3,c", "2,b", "1,a"}), Lines({"id,v", "2,b", "1,a", "3,c"}));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->merged, Lines({"id,v", "3,c", "2,b", "1,a"}));
}

TEST(TableMerge, OneSideDeletes20RowsWhileTheOtherRelabels20Others) {
  auto base = Base(100);
  std::vector<std::string> ours;
  for (size_t i = 0; i < base.size(); i++) {
    if (i == 0 || i % 5 != 0) ours.push_back(base[i]);  // deletes 5, 10, ..., 100
  }
  std::vector<int> relabel;
  for (int i = 1; relabel.size() < 20; i += 2) {
    if (i % 5 != 0) relabel.push_back(i);  // 20 odd ids, none of them deleted
  }
  auto m = Merge(Lines(base), Lines(ours), Relabel(base, relabel, "new"));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  auto expect = base;
  for (int id : relabel) expect[id] = std::to_string(id) + ",new" + std::to_string(id) + ",0." + std::to_string(id);
  std::vector<std::string> kept;
  for (size_t i = 0; i < expect.size(); i++) {
    if (i == 0 || i % 5 != 0) kept.push_back(expect[i]);
  }
  EXPECT_EQ(m->merged, Lines(kept));
}

TEST(TableMerge, BothSetOneCellDifferentlyIsACellConflictNamingKeyColumnAndThreeValues) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n";
  auto m = Merge(base, "id,label,score\n1,cat,0.5\n2,wolf,0.7\n", "id,label,score\n1,cat,0.5\n2,\"fox, red\",0.7\n");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->clean);
  ASSERT_EQ(m->conflicts.size(), 1u);
  const TableConflict& c = m->conflicts[0];
  EXPECT_EQ(c.kind, TableConflict::Kind::kCell);
  EXPECT_STREQ(TableConflictKindName(c.kind), "cell");
  EXPECT_EQ(c.key, "id=2");
  EXPECT_EQ(c.column, "label");
  EXPECT_EQ(c.base, "dog");
  EXPECT_EQ(c.ours, "wolf");
  EXPECT_EQ(c.theirs, "fox, red");
  EXPECT_TRUE(c.base_present && c.ours_present && c.theirs_present);
  EXPECT_EQ(c.line, 3u);
  Rows rows = Decode(m->merged);
  ASSERT_EQ(rows.size(), 3u) << "the output is still a table of the same columns";
  EXPECT_EQ(rows[0], (std::vector<std::string>{"id", "label", "score"}));
  EXPECT_EQ(rows[2][1], "<<<<<<< ours: wolf ||||||| base: dog ======= theirs: fox, red >>>>>>>");
  EXPECT_EQ(rows[2][2], "0.7");
  EXPECT_TRUE(HasConflictNotation(m->merged));
}

TEST(TableMerge, DeletedOnOneSideAndChangedOnTheOtherIsDeleteModify) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n";
  auto m = Merge(base, "id,label,score\n1,cat,0.5\n", "id,label,score\n1,cat,0.5\n2,dog,0.9\n");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->conflicts.size(), 1u);
  const TableConflict& c = m->conflicts[0];
  EXPECT_EQ(c.kind, TableConflict::Kind::kDeleteModify);
  EXPECT_EQ(c.key, "id=2");
  EXPECT_FALSE(c.ours_present);
  EXPECT_EQ(c.base, "2,dog,0.7");
  EXPECT_EQ(c.theirs, "2,dog,0.9");
  EXPECT_EQ(c.line, 3u);
  Rows rows = Decode(m->merged);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2], (std::vector<std::string>{
                         "2", "dog", "<<<<<<< ours: (deleted) ||||||| base: 0.7 ======= theirs: 0.9 >>>>>>>"}))
      << "the changing side's row, each changed cell in the notation";
}

TEST(TableMerge, DeletedOnOneSideAndUnchangedOnTheOtherIsDeleted) {
  std::string base = "id,label\n1,cat\n2,dog\n3,emu\n";
  auto m = Merge(base, base, "id,label\n1,cat\n3,emu\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,label\n1,cat\n3,emu\n");
}

TEST(TableMerge, InsertedOnBothWithOneKeyIsOnceIfEqualElseInsertInsert) {
  std::string base = "id,label\n1,cat\n";
  auto same = Merge(base, base + "2,dog\n", base + "2,dog\n");
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->clean);
  EXPECT_EQ(same->merged, base + "2,dog\n");
  auto differ = Merge(base, base + "2,dog\n", base + "2,wolf\n");
  ASSERT_TRUE(differ.ok());
  ASSERT_EQ(differ->conflicts.size(), 1u);
  EXPECT_EQ(differ->conflicts[0].kind, TableConflict::Kind::kInsertInsert);
  EXPECT_EQ(differ->conflicts[0].key, "id=2");
  EXPECT_FALSE(differ->conflicts[0].base_present);
  Rows rows = Decode(differ->merged);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2],
            (std::vector<std::string>{"2", "<<<<<<< ours: dog ||||||| base: (absent) ======= theirs: wolf >>>>>>>"}));
}

TEST(TableMerge, ColumnAddedOnOneSideAppendsACellToEveryRow) {
  std::string base = "id,label\n1,\"cat\"\n2,dog\n";
  auto m = Merge(base, "id,label\n1,\"cat\"\n2,dog\n3,emu\n", "id,label,reviewed\n1,cat,yes\n2,dog,no\n");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,label,reviewed\n1,\"cat\",yes\n2,dog,no\n3,emu,\n")
      << "ours' bytes kept, the new cell appended; empty where theirs has no row";
}

TEST(TableMerge, ColumnsAreMatchedByNameNotPosition) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n";
  auto m = Merge(base, "id,label,score\n1,kitten,0.5\n2,dog,0.7\n", "id,score,label\n1,0.5,cat\n2,0.8,dog\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,label,score\n1,kitten,0.5\n2,dog,0.8\n") << "ours' column order";
}

TEST(TableMerge, ColumnRemovedOnOneSideIsRemoved) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n";
  auto m = Merge(base, "id,label\n1,cat\n2,dog\n", "id,label,score\n1,kitten,0.5\n2,dog,0.7\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,label\n1,kitten\n2,dog\n");
}

TEST(TableMerge, ColumnRemovedOnOneSideAndChangedOnTheOtherIsASchemaConflict) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n";
  auto m = Merge(base, "id,label\n1,cat\n2,dog\n", "id,label,score\n1,cat,0.9\n2,dog,0.7\n");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->conflicts.size(), 1u);
  EXPECT_EQ(m->conflicts[0].kind, TableConflict::Kind::kSchema);
  EXPECT_EQ(m->conflicts[0].column, "score");
  EXPECT_FALSE(m->conflicts[0].ours_present);
  EXPECT_EQ(m->conflicts[0].line, 1u);
  Rows rows = Decode(m->merged);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][2], "<<<<<<< ours: (deleted) ||||||| base: score ======= theirs: score >>>>>>>");
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "cat", "0.9"})) << "the column kept with theirs' values";
  EXPECT_TRUE(HasConflictNotation(m->merged));
}

TEST(TableMerge, ColumnRenamedDifferentlyOnBothSidesIsASchemaConflict) {
  std::string base = "id,label\n1,cat\n";
  auto m = Merge(base, "id,name\n1,cat\n", "id,title\n1,kitten\n");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->conflicts.size(), 1u);
  EXPECT_EQ(m->conflicts[0].kind, TableConflict::Kind::kSchema);
  EXPECT_EQ(m->conflicts[0].ours, "name");
  EXPECT_EQ(m->conflicts[0].theirs, "title");
  Rows rows = Decode(m->merged);
  EXPECT_EQ(rows[0][1], "<<<<<<< ours: name ||||||| base: label ======= theirs: title >>>>>>>");
  EXPECT_EQ(rows[1][1], "kitten") << "one column, its cells merged as usual";
}

TEST(TableMerge, ColumnRenamedOnOneSideCarriesTheOtherSidesEdits) {
  std::string base = "id,label\n1,cat\n2,dog\n";
  auto m = Merge(base, "id,name\n1,cat\n2,dog\n", "id,label\n1,kitten\n2,dog\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,name\n1,kitten\n2,dog\n");
  auto theirs_renamed = Merge(base, "id,label\n1,kitten\n2,\"dog\"\n", "id,name\n1,cat\n2,dog\n");
  ASSERT_TRUE(theirs_renamed.ok());
  EXPECT_EQ(theirs_renamed->merged, "id,name\n1,kitten\n2,\"dog\"\n") << "ours' row bytes under theirs' name";
}

TEST(TableMerge, SameColumnAddedOnBothSidesIsOneColumnMergedByCell) {
  std::string base = "id\n1\n2\n";
  auto m = Merge(base, "id,x\n1,a\n2,b\n", "id,x\n1,a\n2,c\n");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->conflicts.size(), 1u);
  EXPECT_EQ(m->conflicts[0].kind, TableConflict::Kind::kCell);
  EXPECT_EQ(m->conflicts[0].key, "id=2");
  EXPECT_FALSE(m->conflicts[0].base_present);
  EXPECT_EQ(Decode(m->merged)[2][1], "<<<<<<< ours: b ||||||| base: (absent) ======= theirs: c >>>>>>>");
}

TEST(TableMerge, UnchangedRowsKeepTheirExactBytesFromOurs) {
  std::string base = "id,label,score\n1,\"cat\", 0.50\n2,dog,7e-1\n3,emu,1\n";
  std::string ours = "id,label,score\n1,\"cat\", 0.50\n2,dog,7e-1\n3,emu,1\n";
  std::string theirs = "id,label,score\n1,cat, 0.50\n2,dog,7e-1\n3,\"emu\",2\n";
  auto m = Merge(base, ours, theirs);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "id,label,score\n1,\"cat\", 0.50\n2,dog,7e-1\n3,\"emu\",2\n")
      << "row 1 differs in bytes but not in content: ours' bytes; row 3 theirs' bytes";
}

TEST(TableMerge, ChangedRowsAreEncodedWithMinimalQuoting) {
  std::string base = "id,a,b\n1,\"x\",\"y\"\n";
  auto m = Merge(base, "id,a,b\n1,\"x2\",\"y\"\n", "id,a,b\n1,\"x\",\"say \"\"hi\"\"\"\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->merged, "id,a,b\n1,x2,\"say \"\"hi\"\"\"\n");
}

TEST(TableMerge, BomAndCrlfAreKept) {
  std::string base = "\xEF\xBB\xBFid,v\r\n1,a\r\n2,b\r\n";
  auto m = Merge(base, "\xEF\xBB\xBFid,v\r\n1,A\r\n2,b\r\n", "\xEF\xBB\xBFid,v\r\n1,a\r\n2,b\r\n3,c\r\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->merged, "\xEF\xBB\xBFid,v\r\n1,A\r\n2,b\r\n3,c\r\n");
}

TEST(TableMerge, NewRowsTakeTheFilesUsualLineEnding) {
  std::string base = "id,v\r\n1,a\r\n2,b\r\n3,c\n";
  auto m = Merge(base, base, "id,v\n1,a\n2,b\n3,c\n4,d\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->merged, "id,v\r\n1,a\r\n2,b\r\n3,c\n4,d\r\n") << "most rows end in CRLF";
}

TEST(TableMerge, LastLineWithoutNewlineIsKeptOrEndedBeforeAnAppendedRow) {
  std::string base = "id,v\n1,a\n2,b";
  auto kept = Merge(base, "id,v\n1,A\n2,b", base);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->merged, "id,v\n1,A\n2,b");
  auto appended = Merge(base, base, "id,v\n1,a\n2,b\n3,c\n");
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(appended->merged, "id,v\n1,a\n2,b\n3,c\n");
  auto header_only = Merge("id,v", "id,v", "id,v\n1,a\n");
  ASSERT_TRUE(header_only.ok());
  EXPECT_EQ(header_only->merged, "id,v\n1,a\n");
}

TEST(TableMerge, InvalidUtf8IsKeptByteForByte) {
  std::string base = "id,v\n1,\xff\xfe\n2,b\n";
  auto m = Merge(base, base, "id,v\n1,\xff\xfe\n2,\xc3\x28\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->merged, "id,v\n1,\xff\xfe\n2,\xc3\x28\n");
}

TEST(TableMerge, KeylessTablesMergeAsMultisetsOfRows) {
  std::string base = "label,score\ncat,1\ncat,1\ndog,2\n";
  auto m = Merge(base, "label,score\ncat,1\ndog,2\n", "label,score\ncat,1\ncat,1\ndog,2\nemu,3\n");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->key.columns.empty());
  EXPECT_NE(m->key.Describe().find("no key"), std::string::npos) << m->key.Describe();
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "label,score\ncat,1\ndog,2\nemu,3\n") << "one copy removed by ours, one row added by theirs";
}

TEST(TableMerge, JsonlMergesFieldsAsJsonValues) {
  std::string base = "{\"id\":1,\"meta\":{\"a\":1,\"b\":[1,2]},\"n\":1}\n{\"id\":2,\"n\":2}\n";
  std::string ours = "{\"id\":1,\"meta\":{\"b\":[1,2],\"a\":1.0},\"n\":1}\n{\"id\":2,\"n\":20}\n";
  std::string theirs = "{\"id\":1,\"meta\":{\"a\":1,\"b\":[1,2,3]},\"n\":1}\n{\"id\":2,\"n\":2,\"tag\":\"x\"}\n";
  auto m = Merge(base, ours, theirs, TableFormat::kJsonl);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->merged, "{\"id\":1,\"meta\":{\"a\":1,\"b\":[1,2,3]},\"n\":1}\n{\"id\":2,\"n\":20,\"tag\":\"x\"}\n");
}

TEST(TableMerge, JsonlConflictIsAJsonStringHoldingTheValuesJson) {
  std::string base = "{\"id\":\"a\",\"v\":{\"x\":1}}\n";
  auto m = Merge(base, "{\"id\":\"a\",\"v\":{\"x\":2}}\n", "{\"id\":\"a\",\"v\":\"three\"}\n", TableFormat::kJsonl);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->conflicts.size(), 1u);
  EXPECT_EQ(m->conflicts[0].key, "id=a");
  EXPECT_EQ(m->conflicts[0].theirs, "\"three\"");
  EXPECT_EQ(m->merged,
            "{\"id\":\"a\",\"v\":\"<<<<<<< ours: {\\\"x\\\":2} ||||||| base: {\\\"x\\\":1} ======= theirs: "
            "\\\"three\\\" >>>>>>>\"}\n");
  EXPECT_TRUE(HasConflictNotation(m->merged));
  EXPECT_EQ(Decode(m->merged, TableFormat::kJsonl).size(), 2u);
}

TEST(TableMerge, SidesThatRemoveEveryColumnBetweenThemAreAnError) {
  auto m = Merge("a,id\n1,x\n", "a\n1\n", "id\nx\n");
  ASSERT_FALSE(m.ok()) << "a CSV table without columns cannot be written";
  EXPECT_EQ(m.status().code(), Status::Code::kInvalidArgument);
}

TEST(TableMerge, NotATableOrBrokenKeyIsAnErrorForTheLineMergeFallback) {
  auto ragged = Merge("id,v\n1,a\n", "id,v\n1,a\n", "id,v\n1\n");
  EXPECT_EQ(ragged.status().code(), Status::Code::kInvalidArgument);
  std::vector<std::string> key{"id"};
  auto repeated = Merge("id,v\n1,a\n", "id,v\n1,a\n1,b\n", "id,v\n1,a\n", TableFormat::kCsv, key);
  EXPECT_EQ(repeated.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(repeated.status().message().find("line 3 of ours"), std::string::npos) << repeated.status().message();
}

}  // namespace
}  // namespace tusk

namespace tusk {
namespace {

// tusk merge --ours / --theirs: conflicts resolve for one side, clean
// edits of the other side stay.
TEST(TableMergeFavor, ConflictingCellsTakeTheFavouredSideAndCleanEditsStay) {
  std::string base = "id,label,score\n1,cat,0.1\n2,dog,0.2\n3,owl,0.3\n";
  std::string ours = "id,label,score\n1,lynx,0.1\n2,dog,0.25\n3,owl,0.3\n";
  std::string theirs = "id,label,score\n1,puma,0.1\n2,dog,0.2\n3,emu,0.3\n";
  auto t = MergeTables(base, ours, theirs, TableFormat::kCsv, std::nullopt, TableFavor::kTheirs);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->clean);
  EXPECT_EQ(t->merged, "id,label,score\n1,puma,0.1\n2,dog,0.25\n3,emu,0.3\n");
  auto o = MergeTables(base, ours, theirs, TableFormat::kCsv, std::nullopt, TableFavor::kOurs);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->clean);
  EXPECT_EQ(o->merged, "id,label,score\n1,lynx,0.1\n2,dog,0.25\n3,emu,0.3\n");
}

TEST(TableMergeFavor, ADeleteAgainstAChangeFollowsTheFavouredSide) {
  std::string base = "id,label\n1,cat\n2,dog\n";
  std::string ours = "id,label\n1,cat\n";           // deletes 2
  std::string theirs = "id,label\n1,cat\n2,wolf\n";  // changes 2
  auto o = MergeTables(base, ours, theirs, TableFormat::kCsv, std::nullopt, TableFavor::kOurs);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->clean);
  EXPECT_EQ(o->merged, "id,label\n1,cat\n");
  auto t = MergeTables(base, ours, theirs, TableFormat::kCsv, std::nullopt, TableFavor::kTheirs);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->clean);
  EXPECT_EQ(t->merged, "id,label\n1,cat\n2,wolf\n");
}

TEST(TableMergeFavor, ARowInsertedOnBothSidesTakesTheFavouredCells) {
  std::string base = "id,label\n1,cat\n";
  auto t = MergeTables(base, "id,label\n1,cat\n7,ant\n", "id,label\n1,cat\n7,bee\n", TableFormat::kCsv, std::nullopt,
                       TableFavor::kTheirs);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->clean);
  EXPECT_EQ(t->merged, "id,label\n1,cat\n7,bee\n");
}

}  // namespace
}  // namespace tusk
