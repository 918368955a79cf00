// DiffTables: changed cells by key, added and removed rows where they were,
// columns added and removed, reordering.
#include <gtest/gtest.h>

#include "store/merge/table.h"
#include "tests/store/merge/table_test_util.h"

namespace tusk {
namespace {

TableDiff Diff(std::string_view a, std::string_view b, TableFormat f = TableFormat::kCsv) {
  auto d = DiffTables(a, b, f, std::nullopt);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : TableDiff{};
}

TEST(TableDiff, ChangedCellsAreListedByKeyAndColumnWithLines) {
  TableDiff d = Diff("id,label,score\n1,cat,0.5\n2,dog,0.7\n", "id,label,score\n1,cat,0.5\n2,wolf,0.9\n");
  ASSERT_EQ(d.rows.size(), 1u);
  const RowChange& r = d.rows[0];
  EXPECT_EQ(r.kind, RowChange::Kind::kChanged);
  EXPECT_EQ(r.key, "id=2");
  EXPECT_EQ(r.old_line, 3u);
  EXPECT_EQ(r.new_line, 3u);
  ASSERT_EQ(r.cells.size(), 2u);
  EXPECT_EQ(r.cells[0].column, "label");
  EXPECT_EQ(r.cells[0].old_value, "dog");
  EXPECT_EQ(r.cells[0].new_value, "wolf");
  EXPECT_EQ(r.cells[1].column, "score");
  EXPECT_EQ(d.rows_changed, 1u);
  EXPECT_EQ(d.cells_changed, 2u);
  EXPECT_FALSE(d.reordered);
}

TEST(TableDiff, RequotingIsNoChange) {
  TableDiff d = Diff("id,v\n1,\"a\"\n2,\"x\"\"y\"\n", "id,v\n\"1\",a\n2,\"x\"\"y\"\n");
  EXPECT_TRUE(d.rows.empty());
}

TEST(TableDiff, AddedRowsInNewOrderAndRemovedRowsAfterTheRowBeforeThem) {
  TableDiff d = Diff("id,v\n1,a\n2,b\n3,c\n", "id,v\n0,z\n1,a\n3,c\n4,d\n");
  ASSERT_EQ(d.rows.size(), 3u);
  EXPECT_EQ(d.rows[0].kind, RowChange::Kind::kAdded);
  EXPECT_EQ(d.rows[0].key, "id=0");
  EXPECT_EQ(d.rows[0].new_line, 2u);
  EXPECT_EQ(d.rows[1].kind, RowChange::Kind::kRemoved);
  EXPECT_EQ(d.rows[1].key, "id=2");
  EXPECT_EQ(d.rows[1].old_line, 3u);
  EXPECT_EQ(d.rows[2].key, "id=4");
  EXPECT_EQ(d.rows_added, 2u);
  EXPECT_EQ(d.rows_removed, 1u);
}

TEST(TableDiff, ColumnsAddedAndRemovedAreListedOnceNotAsCellChanges) {
  TableDiff d = Diff("id,a,b\n1,x,y\n", "id,b,c\n1,y,z\n");
  EXPECT_EQ(d.columns_added, (std::vector<std::string>{"c"}));
  EXPECT_EQ(d.columns_removed, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(d.rows.empty());
}

TEST(TableDiff, ReorderingIsReported) {
  TableDiff d = Diff("id,v\n1,a\n2,b\n", "id,v\n2,b\n1,a\n");
  EXPECT_TRUE(d.reordered);
  EXPECT_TRUE(d.rows.empty());
}

TEST(TableDiff, KeylessRowsAreAddedOrRemovedAndShownShortened) {
  std::string long_text(100, 'x');
  TableDiff d = Diff("v,w\na,1\na,1\n", "v,w\na,1\n" + long_text + ",2\n");
  EXPECT_TRUE(d.key.columns.empty()) << d.key.Describe();
  ASSERT_EQ(d.rows.size(), 2u);
  EXPECT_EQ(d.rows[0].kind, RowChange::Kind::kRemoved);
  EXPECT_EQ(d.rows[0].key, "a,1") << "the second copy, after the first";
  EXPECT_EQ(d.rows[1].kind, RowChange::Kind::kAdded);
  EXPECT_EQ(d.rows[1].key, std::string(60, 'x') + "...");
}

TEST(TableDiff, JsonlComparesValuesNotText) {
  TableDiff d =
      Diff("{\"id\":1,\"o\":{\"a\":1,\"b\":2},\"n\":1}\n{\"id\":2,\"n\":5}\n",
           "{\"n\":1.0,\"id\":1,\"o\":{\"b\":2,\"a\":1}}\n{\"id\":2,\"n\":6,\"t\":[1]}\n", TableFormat::kJsonl);
  ASSERT_EQ(d.rows.size(), 1u);
  EXPECT_EQ(d.rows[0].key, "id=2");
  ASSERT_EQ(d.rows[0].cells.size(), 2u);
  EXPECT_EQ(d.rows[0].cells[0].column, "n");
  EXPECT_EQ(d.rows[0].cells[0].old_value, "5");
  EXPECT_EQ(d.rows[0].cells[0].new_value, "6");
  EXPECT_EQ(d.rows[0].cells[1].column, "t");
  EXPECT_EQ(d.rows[0].cells[1].old_value, "") << "absent";
  EXPECT_EQ(d.rows[0].cells[1].new_value, "[1]");
  EXPECT_FALSE(d.reordered);
}

TEST(TableDiff, WhatDiffShowsIsWhatMergeCombines) {
  std::string base = "id,label,score\n1,cat,0.5\n2,dog,0.7\n3,emu,0.1\n";
  std::string ours = "id,label,score\n1,kitten,0.5\n2,dog,0.7\n3,emu,0.1\n";
  std::string theirs = "id,label,score\n1,cat,0.5\n2,dog,0.8\n3,\"emu\",0.1\n";
  auto m = MergeTables(base, ours, theirs, TableFormat::kCsv, std::nullopt);
  ASSERT_TRUE(m.ok());
  TableDiff from_base = Diff(base, m->merged);
  EXPECT_EQ(from_base.cells_changed, Diff(base, ours).cells_changed + Diff(base, theirs).cells_changed);
  EXPECT_EQ(from_base.cells_changed, m->cells_merged);
}

}  // namespace
}  // namespace tusk
