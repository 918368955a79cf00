// Helpers for the table tests: building small CSV files and reading a
// merge's output back as rows of decoded cells.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/merge/table.h"
#include "store/merge/table_internal.h"

namespace tusk::testing_table {

// Lines joined with "\n", each ended by one.
inline std::string Lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// A table's header and rows as decoded cells ("<absent>" for a missing
// JSONL field); fails the test if it is not a table.
inline std::vector<std::vector<std::string>> Decode(std::string_view bytes, TableFormat f = TableFormat::kCsv) {
  std::vector<std::vector<std::string>> out;
  auto t = table::Table::Parse(bytes, f, "merged");
  EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << bytes;
  if (!t.ok()) return out;
  out.push_back(t->columns());
  std::vector<table::Cell> cells;
  for (size_t r = 0; r < t->row_count(); r++) {
    t->DecodeRow(r, &cells);
    std::vector<std::string> row;
    for (const auto& c : cells) row.push_back(c.present ? c.text : "<absent>");
    out.push_back(row);
  }
  return out;
}

inline Result<TableMergeResult> Merge(std::string_view base, std::string_view ours, std::string_view theirs,
                                      TableFormat f = TableFormat::kCsv, const KeySpec& key = std::nullopt) {
  return MergeTables(base, ours, theirs, f, key);
}

}  // namespace tusk::testing_table
