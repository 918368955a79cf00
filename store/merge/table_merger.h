// Private to table_merge*.cc: the state of one three-way table merge.
//
// Rows of the three versions are matched by key once (four row maps of
// 4 bytes per row); the output is then written in one pass over the
// primary side's rows (ours, or theirs when only theirs reordered), with
// the other side's rows that the primary lacks placed after the row that
// precedes them on their side.
#pragma once

#include <array>

#include "store/merge/table_internal.h"

namespace tusk::table {

enum Side { kBase = 0, kOurs = 1, kTheirs = 2 };

// One column of the output, and where it is in each version (-1: absent).
struct OutColumn {
  std::string name;  // as written in the header (the notation for a schema conflict)
  std::array<int, 3> idx{-1, -1, -1};
  // A side's removal of this column is overruled (schema conflict): its
  // cells read as the base's.
  std::array<bool, 3> ignore{false, false, false};
};

class Merger {
 public:
  Merger(std::array<const Table*, 3> v, std::vector<KeyIndex>* indexes, std::vector<RowMatch>* matches,
         TableMergeResult* result)
      : v_(v), idx_(*indexes), matches_(*matches), res_(result) {}
  // InvalidArgument when the merge leaves a CSV/TSV table no column.
  Status Run();
  void set_favor(TableFavor favor) { favor_ = favor; }

 private:
  static constexpr uint32_t kNone = KeyIndex::kNone;
  // table_merge.cc: matching, columns, order.
  void Match();
  bool Reordered(const RowVector<uint32_t>& to_base) const;
  void PlanColumns();
  bool SideChangedColumn(Side side, int base_col, int side_col);
  void AddSchemaConflict(const std::string& column, const std::string* ours, const std::string* theirs);
  void WriteHeader();
  void WriteRows();
  uint32_t SameRun(uint32_t o, uint32_t limit);
  void SetConflictLines();
  // table_merge_rows.cc: one row.
  void EmitRow(uint32_t b, uint32_t o, uint32_t t);
  const Cell* CellAt(Side side, const OutColumn& c) const;
  bool Modified(Side side) const;
  void Write(std::string_view text, std::string_view eol);
  std::string Encode(const std::vector<Cell>& cells, const std::vector<bool>& notation) const;
  void RecordRowConflict(TableConflict::Kind kind, uint32_t b, uint32_t o, uint32_t t);
  std::string KeyOf(uint32_t b, uint32_t o, uint32_t t) const;

  // The side a conflict resolves to (kBase: none, conflicts are written).
  Side Favoured() const {
    return favor_ == TableFavor::kOurs ? kOurs : favor_ == TableFavor::kTheirs ? kTheirs : kBase;
  }
  TableFavor favor_ = TableFavor::kNone;
  std::array<const Table*, 3> v_;
  std::vector<KeyIndex>& idx_;
  std::vector<RowMatch>& matches_;
  TableMergeResult* res_;
  RowVector<uint32_t> o_to_b_, o_to_t_, t_to_b_, t_to_o_;
  std::vector<OutColumn> cols_;
  bool same_layout_ = false;    // the three versions have the same columns in the same order
  bool ours_prefix_ = false;    // the output's columns are ours', then some appended
  bool theirs_layout_ = false;  // the output's columns are theirs'
  std::string newline_;
  bool line_open_ = false;                // the output's last line has no line ending yet
  std::vector<size_t> conflict_offsets_;  // per conflict: where its row starts in the output
  // The current row: present flags and decoded cells per version.
  std::array<bool, 3> has_{};
  std::array<std::vector<Cell>, 3> cells_;
  std::array<size_t, 3> same_hint_{};  // SameRun's walks along Table::SameAs
};

}  // namespace tusk::table
