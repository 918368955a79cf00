// MergeTables: matching rows by key, planning the output's columns, and
// the output's row order. One row's merge is in table_merge_rows.cc.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "store/merge/table_merger.h"

namespace tusk {

Result<TableMergeResult> MergeTables(std::string_view base, std::string_view ours, std::string_view theirs,
                                     TableFormat format, const KeySpec& key) {
  return MergeTables(base, ours, theirs, format, key, TableFavor::kNone);
}

Result<TableMergeResult> MergeTables(std::string_view base, std::string_view ours, std::string_view theirs,
                                     TableFormat format, const KeySpec& key, TableFavor favor) {
  using table::Table;
  TUSK_ASSIGN_OR_RETURN(Table b, Table::Parse(base, format, "base"));
  // Most of ours' and theirs' rows are the base's: taken from it, not scanned.
  TUSK_ASSIGN_OR_RETURN(Table o, Table::Parse(ours, format, "ours", &b));
  TUSK_ASSIGN_OR_RETURN(Table t, Table::Parse(theirs, format, "theirs", &b));
  return table::MergeParsed(b, o, t, key, favor);
}

namespace table {

Result<TableMergeResult> MergeParsed(const Table& b, const Table& o, const Table& t, const KeySpec& key,
                                     TableFavor favor) {
  std::vector<KeyIndex> indexes;
  std::vector<RowMatch> matches;
  TableMergeResult result;
  TUSK_ASSIGN_OR_RETURN(result.key, ChooseKey({&b, &o, &t}, key, &indexes, &matches));
  Merger merger({&b, &o, &t}, &indexes, &matches, &result);
  merger.set_favor(favor);
  TUSK_RETURN_IF_ERROR(merger.Run());
  result.clean = result.conflicts.empty();
  return result;
}

Status Merger::Run() {
  newline_ = std::string(v_[kOurs]->newline());
  if (v_[kOurs]->row_count() == 0 && !v_[kOurs]->header_eol().empty()) newline_ = v_[kOurs]->header_eol();
  Match();
  PlanColumns();
  if (cols_.empty() && v_[kOurs]->format() != TableFormat::kJsonl) {
    // Both sides removed every column between them: no header to write.
    return Status::InvalidArgument("not a table after merging: the two sides removed every column");
  }
  res_->merged.reserve(v_[kOurs]->bytes().size() + v_[kOurs]->bytes().size() / 8 + 4096);
  AdviseHugePages(res_->merged.data(), res_->merged.capacity());
  WriteHeader();
  WriteRows();
  SetConflictLines();
  return Status::Ok();
}

void Merger::Match() {
  o_to_b_ = std::move(matches_[kOurs].to_base);
  t_to_b_ = std::move(matches_[kTheirs].to_base);
  const auto& b_to_o = matches_[kOurs].from_base;
  const auto& b_to_t = matches_[kTheirs].from_base;
  o_to_t_.assign(o_to_b_.size(), kNone);
  t_to_o_.assign(t_to_b_.size(), kNone);
  for (uint32_t b = 0; b < b_to_o.size(); b++) {
    uint32_t o = b_to_o[b], t = b_to_t[b];
    if (o != kNone && t != kNone) o_to_t_[o] = t, t_to_o_[t] = o;
  }
  // Rows new on both sides under one key (few: a map of ours' keys).
  std::unordered_map<std::string, uint32_t> fresh;
  std::string scratch;
  for (uint32_t o = 0; o < o_to_b_.size(); o++) {
    if (o_to_b_[o] == kNone) fresh.emplace(idx_[kOurs].Key(o, &scratch), o);
  }
  for (uint32_t t = 0; t < t_to_b_.size() && !fresh.empty(); t++) {
    if (t_to_b_[t] != kNone) continue;
    auto it = fresh.find(std::string(idx_[kTheirs].Key(t, &scratch)));
    if (it != fresh.end()) o_to_t_[it->second] = t, t_to_o_[t] = it->second;
  }
  std::vector<RowMatch>().swap(matches_);
  for (auto& index : idx_) index.ReleaseLookup();
}

bool Merger::Reordered(const RowVector<uint32_t>& to_base) const {
  uint32_t last = 0;
  bool any = false;
  for (uint32_t b : to_base) {
    if (b == kNone) continue;
    if (any && b < last) return true;
    last = b;
    any = true;
  }
  return false;
}

bool Merger::SideChangedColumn(Side side, int base_col, int side_col) {
  const Table &base = *v_[kBase], &s = *v_[side];
  const auto& to_base = side == kOurs ? o_to_b_ : t_to_b_;
  bool same_header = base.columns() == s.columns();
  std::string x, y;
  for (uint32_t r = 0; r < to_base.size(); r++) {
    uint32_t b = to_base[r];
    if (b == kNone || (same_header && base.RowText(b) == s.RowText(r))) continue;
    if (base.Field(b, base_col, &x) != s.Field(r, side_col, &y)) return true;
  }
  return false;
}

void Merger::AddSchemaConflict(const std::string& column, const std::string* ours, const std::string* theirs) {
  TableConflict c;
  c.kind = TableConflict::Kind::kSchema;
  c.column = column;
  c.base = column;
  c.base_present = v_[kBase]->ColumnIndex(column) >= 0;
  if (ours) c.ours = *ours, c.ours_present = true;
  if (theirs) c.theirs = *theirs, c.theirs_present = true;
  res_->conflicts.push_back(std::move(c));
  conflict_offsets_.push_back(0);  // the header
}

namespace {

// For each base column, the column of `side` that continues it (-1: the
// side removed it): the same name, else a rename — the base column's
// place holds a column the base does not have.
std::vector<int> LinkColumns(const Table& base, const Table& side) {
  std::vector<int> link(base.columns().size(), -1);
  for (size_t i = 0; i < link.size(); i++) {
    link[i] = side.ColumnIndex(base.columns()[i]);
    if (link[i] < 0 && i < side.columns().size() && base.ColumnIndex(side.columns()[i]) < 0) {
      link[i] = static_cast<int>(i);
    }
  }
  return link;
}

}  // namespace

void Merger::PlanColumns() {
  const Table &B = *v_[kBase], &O = *v_[kOurs], &T = *v_[kTheirs];
  same_layout_ = B.columns() == O.columns() && B.columns() == T.columns();
  if (O.format() == TableFormat::kJsonl) {
    // JSONL fields are per row: a field one side added or removed is a
    // change of those rows' cells, merged like any other.
    std::vector<std::string> names = O.columns();
    for (const Table* t : {&T, &B}) {
      for (const auto& n : t->columns()) {
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
      }
    }
    for (const auto& n : names) cols_.push_back({n, {B.ColumnIndex(n), O.ColumnIndex(n), T.ColumnIndex(n)}});
    ours_prefix_ = theirs_layout_ = true;
    return;
  }
  std::vector<int> link_o = LinkColumns(B, O), link_t = LinkColumns(B, T);
  std::vector<int> base_of_t(T.columns().size(), -1);
  for (size_t i = 0; i < link_t.size(); i++) {
    if (link_t[i] >= 0) base_of_t[link_t[i]] = static_cast<int>(i);
  }
  std::vector<bool> t_used(T.columns().size(), false);
  for (size_t j = 0; j < O.columns().size(); j++) {
    const std::string& name = O.columns()[j];
    auto bi = std::find(link_o.begin(), link_o.end(), static_cast<int>(j));
    if (bi == link_o.end()) {  // added by ours; theirs may have added it too
      int k = T.ColumnIndex(name);
      if (k >= 0 && base_of_t[k] >= 0) k = -1;
      if (k >= 0) t_used[k] = true;
      cols_.push_back({name, {-1, static_cast<int>(j), k}});
      continue;
    }
    int b = static_cast<int>(bi - link_o.begin()), k = link_t[b];
    OutColumn c{name, {b, static_cast<int>(j), k}};
    if (k < 0) {  // removed by theirs: applied unless ours changed the column
      if (!SideChangedColumn(kOurs, b, static_cast<int>(j))) continue;
      c.ignore[kTheirs] = true;
      AddSchemaConflict(B.columns()[b], &name, nullptr);
      Cell ours{true, name, name}, base{true, B.columns()[b], B.columns()[b]};
      c.name = Notation({&ours, "(deleted)"}, {&base, "(absent)"}, {nullptr, "(deleted)"});
    } else {
      t_used[k] = true;
      const std::string &bn = B.columns()[b], &tn = T.columns()[k];
      if (name == bn) {
        c.name = tn;  // a rename by theirs alone
      } else if (tn != bn && tn != name) {
        AddSchemaConflict(bn, &name, &tn);
        Cell ours{true, name, name}, base{true, bn, bn}, their{true, tn, tn};
        c.name = Notation({&ours, ""}, {&base, ""}, {&their, ""});
      }
    }
    cols_.push_back(std::move(c));
  }
  for (size_t k = 0; k < T.columns().size(); k++) {
    if (t_used[k]) continue;
    const std::string& name = T.columns()[k];
    OutColumn c{name, {base_of_t[k], -1, static_cast<int>(k)}};
    if (c.idx[kBase] >= 0) {  // removed by ours: applied unless theirs changed the column
      if (!SideChangedColumn(kTheirs, c.idx[kBase], static_cast<int>(k))) continue;
      c.ignore[kOurs] = true;
      AddSchemaConflict(B.columns()[c.idx[kBase]], nullptr, &name);
      Cell their{true, name, name}, base{true, B.columns()[c.idx[kBase]], B.columns()[c.idx[kBase]]};
      c.name = Notation({nullptr, "(deleted)"}, {&base, "(absent)"}, {&their, "(deleted)"});
    }
    cols_.push_back(std::move(c));
  }
  // Two output columns of one name (one side added what the other renamed
  // to): the later one's header shows the clash, so the output stays a table.
  std::unordered_set<std::string> seen;
  for (auto& c : cols_) {
    if (seen.insert(c.name).second) continue;
    AddSchemaConflict(c.name, c.idx[kOurs] >= 0 ? &c.name : nullptr, c.idx[kTheirs] >= 0 ? &c.name : nullptr);
    Cell n{true, c.name, c.name};
    c.name = Notation({c.idx[kOurs] >= 0 ? &n : nullptr, "(absent)"}, {nullptr, "(absent)"},
                      {c.idx[kTheirs] >= 0 ? &n : nullptr, "(absent)"});
  }
  // Where the cells are, not what the header calls them: a renamed column
  // leaves every row's bytes reusable.
  ours_prefix_ = cols_.size() >= O.columns().size();
  for (size_t j = 0; ours_prefix_ && j < O.columns().size(); j++) {
    ours_prefix_ = cols_[j].idx[kOurs] == static_cast<int>(j);
  }
  theirs_layout_ = cols_.size() == T.columns().size();
  for (size_t k = 0; theirs_layout_ && k < cols_.size(); k++) {
    theirs_layout_ = cols_[k].idx[kTheirs] == static_cast<int>(k);
  }
}

void Merger::WriteHeader() {
  const Table& O = *v_[kOurs];
  std::string& out = res_->merged;
  if (O.has_bom()) out += "\xEF\xBB\xBF";
  if (O.format() == TableFormat::kJsonl) return;
  const char sep = Separator(O.format());
  bool ours_names = ours_prefix_;
  for (size_t j = 0; ours_names && j < O.columns().size(); j++) ours_names = cols_[j].name == O.columns()[j];
  size_t from = 0;
  if (ours_names) {
    out += O.header_text();  // ours' exact bytes, then any appended names
    from = O.columns().size();
  }
  for (size_t i = from; i < cols_.size(); i++) {
    if (i) out += sep;
    AppendCsvField(cols_[i].name, sep, &out);
  }
  out += O.header_eol();
  line_open_ = O.header_eol().empty();
}

void Merger::WriteRows() {
  bool primary_theirs = Reordered(t_to_b_) && !Reordered(o_to_b_);
  const auto& q_to_p = primary_theirs ? o_to_t_ : t_to_o_;
  const uint32_t np = primary_theirs ? t_to_o_.size() : o_to_t_.size();
  // The other side's rows that the primary side lacks, each after the row
  // that precedes it on its side (anchor: that row's place + 1; 0: the top).
  std::vector<std::pair<uint32_t, uint32_t>> floating;
  uint32_t anchor = 0;
  for (uint32_t q = 0; q < q_to_p.size(); q++) {
    if (q_to_p[q] == kNone) {
      floating.emplace_back(anchor, q);
    } else {
      anchor = q_to_p[q] + 1;
    }
  }
  std::stable_sort(floating.begin(), floating.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  auto emit_p = [&](uint32_t p) {
    if (primary_theirs) return EmitRow(t_to_b_[p], t_to_o_[p], p);
    EmitRow(o_to_b_[p], p, o_to_t_[p]);
  };
  auto emit_q = [&](uint32_t q) {
    if (primary_theirs) return EmitRow(o_to_b_[q], q, kNone);
    EmitRow(t_to_b_[q], kNone, q);
  };
  const auto& p_to_q = primary_theirs ? t_to_o_ : o_to_t_;
  size_t f = 0;
  for (uint32_t p = 0; p < np;) {
    // Held back past the primary side's own new rows at the same place, so
    // where both inserted, the primary's rows come first.
    if (p_to_q[p] != kNone) {
      for (; f < floating.size() && floating[f].first <= p; f++) emit_q(floating[f].second);
    }
    if (!primary_theirs) {
      // Rows the same in all three versions, in a row in ours with nothing
      // to place between them: what EmitRow writes for each, ours' bytes,
      // written at once.
      uint32_t end = SameRun(p, f < floating.size() ? std::max(p + 1, floating[f].first) : np);
      if (end > p) {
        std::string& out = res_->merged;
        if (line_open_) out += newline_;
        out += v_[kOurs]->RowsBytes(p, end);  // only the last of them can lack a line ending
        line_open_ = v_[kOurs]->RowEol(end - 1).empty();
        p = end;
        continue;
      }
    }
    emit_p(p++);
  }
  for (; f < floating.size(); f++) emit_q(floating[f].second);
}

// The end of the run of ours' rows from `o` (before `limit`) that the base
// and theirs have with the same bytes, as parsing found them (Table::SameAs);
// `o` itself when it is not such a row.
uint32_t Merger::SameRun(uint32_t o, uint32_t limit) {
  const Table &O = *v_[kOurs], &T = *v_[kTheirs];
  if (!same_layout_ || O.like() != v_[kBase] || T.like() != v_[kBase]) return o;
  for (; o < limit; o++) {
    uint32_t b = o_to_b_[o], t = o_to_t_[o];
    if (b == kNone || t == kNone || O.SameAs(o, &same_hint_[kOurs]) != b || T.SameAs(t, &same_hint_[kTheirs]) != b) {
      break;
    }
  }
  return o;
}

void Merger::SetConflictLines() {
  const std::string& out = res_->merged;
  uint64_t line = 1;
  size_t pos = 0;
  for (size_t i = 0; i < res_->conflicts.size(); i++) {
    size_t at = conflict_offsets_[i];
    if (at >= pos) {
      line += std::count(out.begin() + pos, out.begin() + at, '\n');
      pos = at;
    }
    res_->conflicts[i].line = line;
  }
}

}  // namespace table
}  // namespace tusk
