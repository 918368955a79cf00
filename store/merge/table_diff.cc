// DiffTables: the same parser, keys and cell comparison as the merge, so
// what a diff shows as changed cells is exactly what a merge combines.
#include <algorithm>

#include "store/merge/table_internal.h"

namespace tusk {

namespace {

using table::Cell;
using table::KeyIndex;
using table::Table;
constexpr uint32_t kNone = KeyIndex::kNone;

// The columns compared in a row: CSV/TSV those both versions have (an added
// or removed column is listed once, not as a change of every row); JSONL
// every field, as the merge does.
std::vector<std::pair<int, int>> ComparedColumns(const Table& a, const Table& b, std::vector<std::string>* names) {
  std::vector<std::pair<int, int>> cols;
  const bool jsonl = a.format() == TableFormat::kJsonl;
  for (size_t j = 0; j < b.columns().size(); j++) {
    int i = a.ColumnIndex(b.columns()[j]);
    if (i < 0 && !jsonl) continue;
    cols.emplace_back(i, static_cast<int>(j));
    names->push_back(b.columns()[j]);
  }
  if (jsonl) {
    for (size_t i = 0; i < a.columns().size(); i++) {
      if (b.ColumnIndex(a.columns()[i]) >= 0) continue;
      cols.emplace_back(static_cast<int>(i), -1);
      names->push_back(a.columns()[i]);
    }
  }
  return cols;
}

}  // namespace

Result<TableDiff> DiffTables(std::string_view old_bytes, std::string_view new_bytes, TableFormat format,
                             const KeySpec& key) {
  TUSK_ASSIGN_OR_RETURN(Table a, Table::Parse(old_bytes, format, "old"));
  // Most of the new version's rows are the old one's: taken from it, not scanned.
  TUSK_ASSIGN_OR_RETURN(Table b, Table::Parse(new_bytes, format, "new", &a));
  return table::DiffParsed(a, b, key);
}

Result<TableDiff> table::DiffParsed(const Table& a, const Table& b, const KeySpec& key) {
  std::vector<KeyIndex> idx;
  std::vector<table::RowMatch> matches;
  TableDiff d;
  d.format = a.format();
  TUSK_ASSIGN_OR_RETURN(d.key, table::ChooseKey({&a, &b}, key, &idx, &matches));
  for (const auto& c : b.columns()) {
    if (a.ColumnIndex(c) < 0) d.columns_added.push_back(c);
  }
  for (const auto& c : a.columns()) {
    if (b.ColumnIndex(c) < 0) d.columns_removed.push_back(c);
  }

  const table::RowVector<uint32_t> new_to_old = std::move(matches[1].to_base);
  const table::RowVector<uint32_t> old_to_new = std::move(matches[1].from_base);
  idx[0].ReleaseLookup();
  idx[1].ReleaseLookup();

  // Removed rows, each after the new place of the old row before it.
  std::vector<std::pair<uint32_t, uint32_t>> removed;  // (anchor: new row + 1, or 0; old row)
  uint32_t anchor = 0;
  for (uint32_t r = 0; r < a.row_count(); r++) {
    if (old_to_new[r] == kNone) {
      removed.emplace_back(anchor, r);
    } else {
      anchor = old_to_new[r] + 1;
    }
  }
  std::stable_sort(removed.begin(), removed.end(), [](const auto& x, const auto& y) { return x.first < y.first; });

  std::vector<std::string> names;
  const auto cols = ComparedColumns(a, b, &names);
  const bool same_columns = a.columns() == b.columns() || a.format() == TableFormat::kJsonl;
  std::vector<Cell> ca, cb;
  const Cell absent;
  uint32_t last_old = 0;
  bool any_old = false;
  auto emit_removed = [&](uint32_t r) {
    d.rows.push_back({RowChange::Kind::kRemoved, idx[0].Display(r), a.RowLine(r), 0, {}});
    d.rows_removed++;
  };
  size_t f = 0;
  for (uint32_t n = 0; n <= b.row_count(); n++) {
    if (n > 0) {
      uint32_t r = new_to_old[n - 1];
      if (r == kNone) {
        d.rows.push_back({RowChange::Kind::kAdded, idx[1].Display(n - 1), 0, b.RowLine(n - 1), {}});
        d.rows_added++;
      } else {
        if (any_old && r < last_old) d.reordered = true;
        last_old = r, any_old = true;
        if (!(same_columns && a.RowText(r) == b.RowText(n - 1))) {
          a.DecodeRow(r, &ca);
          b.DecodeRow(n - 1, &cb);
          RowChange change{RowChange::Kind::kChanged, idx[1].Display(n - 1), a.RowLine(r), b.RowLine(n - 1), {}};
          for (size_t i = 0; i < cols.size(); i++) {
            const Cell& x = cols[i].first >= 0 ? ca[cols[i].first] : absent;
            const Cell& y = cols[i].second >= 0 ? cb[cols[i].second] : absent;
            if (x == y) continue;
            change.cells.push_back({names[i], x.out, y.out});
          }
          if (!change.cells.empty()) {
            d.cells_changed += change.cells.size();
            d.rows_changed++;
            d.rows.push_back(std::move(change));
          }
        }
      }
    }
    for (; f < removed.size() && removed[f].first == n; f++) emit_removed(removed[f].second);
  }
  return d;
}

}  // namespace tusk
