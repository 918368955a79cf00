// One row of a three-way table merge: the cell rules, the conflict
// notation, and writing the row (its original bytes wherever they still say
// the merged content).
#include "store/merge/table_merger.h"

namespace tusk::table {

namespace {

const Cell kAbsent;

}  // namespace

const Cell* Merger::CellAt(Side side, const OutColumn& c) const {
  if (c.ignore[side]) side = kBase;
  if (!has_[side] || c.idx[side] < 0) return &kAbsent;
  return &cells_[side][c.idx[side]];
}

// Whether `side` changed the current row from the base. CSV/TSV count only
// the columns both have: a column added or removed is a change of the
// schema, not of each row.
bool Merger::Modified(Side side) const {
  const bool jsonl = v_[kBase]->format() == TableFormat::kJsonl;
  for (const auto& c : cols_) {
    if (!jsonl && (c.idx[kBase] < 0 || c.idx[side] < 0)) continue;
    if (!(*CellAt(kBase, c) == *CellAt(side, c))) return true;
  }
  return false;
}

void Merger::Write(std::string_view text, std::string_view eol) {
  std::string& out = res_->merged;
  if (line_open_) out += newline_;
  out += text;
  out += eol;
  line_open_ = eol.empty();
}

std::string Merger::Encode(const std::vector<Cell>& cells, const std::vector<bool>& notation) const {
  std::string s;
  if (v_[kOurs]->format() == TableFormat::kJsonl) {
    s += '{';
    bool first = true;
    for (size_t i = 0; i < cells.size(); i++) {
      if (!cells[i].present) continue;
      if (!first) s += ',';
      first = false;
      s += JsonString(cols_[i].name);
      s += ':';
      s += notation[i] ? JsonString(cells[i].text) : cells[i].out;
    }
    s += '}';
    return s;
  }
  const char sep = Separator(v_[kOurs]->format());
  for (size_t i = 0; i < cells.size(); i++) {
    if (i) s += sep;
    AppendCsvField(cells[i].text, sep, &s);
  }
  return s;
}

std::string Merger::KeyOf(uint32_t b, uint32_t o, uint32_t t) const {
  if (o != kNone) return idx_[kOurs].Display(o);
  if (t != kNone) return idx_[kTheirs].Display(t);
  return idx_[kBase].Display(b);
}

void Merger::RecordRowConflict(TableConflict::Kind kind, uint32_t b, uint32_t o, uint32_t t) {
  TableConflict c;
  c.kind = kind;
  c.key = KeyOf(b, o, t);
  if (b != kNone) c.base = v_[kBase]->RowText(b), c.base_present = true;
  if (o != kNone) c.ours = v_[kOurs]->RowText(o), c.ours_present = true;
  if (t != kNone) c.theirs = v_[kTheirs]->RowText(t), c.theirs_present = true;
  res_->conflicts.push_back(std::move(c));
}

void Merger::EmitRow(uint32_t b, uint32_t o, uint32_t t) {
  const Table &B = *v_[kBase], &O = *v_[kOurs], &T = *v_[kTheirs];
  has_ = {b != kNone, o != kNone, t != kNone};
  const bool jsonl = O.format() == TableFormat::kJsonl;
  // The bulk of a large merge: a row the same in all three versions.
  if (has_[kBase] && has_[kOurs] && has_[kTheirs] && (same_layout_ || jsonl)) {
    std::string_view text = O.RowText(o);
    if (text == B.RowText(b) && text == T.RowText(t)) return Write(text, O.RowEol(o));
  }
  const uint32_t rows[3] = {b, o, t};
  for (int s = 0; s < 3; s++) {
    if (has_[s]) v_[s]->DecodeRow(rows[s], &cells_[s]);
  }
  const size_t n = cols_.size();
  std::vector<Cell> merged(n);
  std::vector<bool> notation(n, false);
  const size_t first_conflict = res_->conflicts.size();
  auto conflict = [&](size_t i, NotationSide ours, NotationSide base, NotationSide theirs) {
    merged[i].present = true;
    merged[i].text = merged[i].out = Notation(ours, base, theirs);
    notation[i] = true;
  };
  if (has_[kBase] && has_[kOurs] && has_[kTheirs]) {
    for (size_t i = 0; i < n; i++) {
      const OutColumn& c = cols_[i];
      const Cell *vb = CellAt(kBase, c), *vo = CellAt(kOurs, c), *vt = CellAt(kTheirs, c);
      if (*vo == *vt) {
        merged[i] = *vo;
      } else if (*vo == *vb) {
        merged[i] = *vt;
      } else if (*vt == *vb) {
        merged[i] = *vo;
      } else if (Favoured() != kBase) {
        merged[i] = Favoured() == kOurs ? *vo : *vt;
      } else {
        conflict(i, {vo, "(absent)"}, {vb, "(absent)"}, {vt, "(absent)"});
        TableConflict tc;
        tc.kind = TableConflict::Kind::kCell;
        tc.key = KeyOf(b, o, t);
        tc.column = c.name;
        tc.base = vb->out, tc.base_present = vb->present;
        tc.ours = vo->out, tc.ours_present = vo->present;
        tc.theirs = vt->out, tc.theirs_present = vt->present;
        res_->conflicts.push_back(std::move(tc));
        continue;
      }
      if (!(merged[i] == *vb)) res_->cells_merged++;
    }
  } else if (has_[kBase]) {
    if (!has_[kOurs] && !has_[kTheirs]) return;
    const Side kept = has_[kOurs] ? kOurs : kTheirs;
    if (!Modified(kept)) return;                            // a deletion wins over a row the other side left alone
    if (Favoured() != kBase && Favoured() != kept) return;  // the favoured side deleted it
    if (Favoured() == kept) {
      for (size_t i = 0; i < n; i++) merged[i] = *CellAt(kept, cols_[i]);
      (kept == kOurs ? res_->rows_from_ours : res_->rows_from_theirs)++;
    } else {
      // Delete/modify: the row as the modifying side has it, each cell it
      // changed in the notation with "(deleted)" for the deleting side.
      for (size_t i = 0; i < n; i++) {
        const OutColumn& c = cols_[i];
        const Cell *vb = CellAt(kBase, c), *v = CellAt(kept, c);
        merged[i] = *v;
        bool counts = jsonl || (c.idx[kBase] >= 0 && c.idx[kept] >= 0);
        if (!counts || *v == *vb) continue;
        NotationSide gone{nullptr, "(deleted)"}, changed{v, "(absent)"};
        conflict(i, kept == kOurs ? changed : gone, {vb, "(absent)"}, kept == kOurs ? gone : changed);
      }
      RecordRowConflict(TableConflict::Kind::kDeleteModify, b, o, t);
    }
  } else if (has_[kOurs] && has_[kTheirs]) {
    // Inserted on both under one key: the cells they agree on once, the
    // others in the notation with the base "(absent)".
    bool clash = false;
    for (size_t i = 0; i < n; i++) {
      const OutColumn& c = cols_[i];
      const Cell *vo = CellAt(kOurs, c), *vt = CellAt(kTheirs, c);
      // A column one side does not have at all is no disagreement.
      if (*vo == *vt || c.idx[kTheirs] < 0 || c.idx[kOurs] < 0) {
        merged[i] = c.idx[kOurs] < 0 ? *vt : *vo;
        continue;
      }
      if (Favoured() != kBase) {
        merged[i] = Favoured() == kOurs ? *vo : *vt;
        continue;
      }
      conflict(i, {vo, "(absent)"}, {nullptr, "(absent)"}, {vt, "(absent)"});
      clash = true;
    }
    if (clash) {
      RecordRowConflict(TableConflict::Kind::kInsertInsert, b, o, t);
    } else {
      res_->rows_from_ours++;
    }
  } else {
    const Side s = has_[kOurs] ? kOurs : kTheirs;
    for (size_t i = 0; i < n; i++) merged[i] = *CellAt(s, cols_[i]);
    (s == kOurs ? res_->rows_from_ours : res_->rows_from_theirs)++;
  }

  std::string_view eol = has_[kOurs] ? O.RowEol(o) : std::string_view(newline_);
  std::string text;
  bool clean = res_->conflicts.size() == first_conflict;
  auto same_as = [&](Side s, size_t upto) {
    for (size_t i = 0; i < upto; i++) {
      if (!(merged[i] == *CellAt(s, cols_[i]))) return false;
    }
    return true;
  };
  const size_t ours_cols = jsonl ? n : O.columns().size();
  if (clean && has_[kOurs] && ours_prefix_ && same_as(kOurs, ours_cols)) {
    text = O.RowText(o);  // ours' bytes, plus cells of appended columns
    const char sep = Separator(O.format());
    for (size_t i = ours_cols; i < n; i++) {
      text += sep;
      AppendCsvField(merged[i].text, sep, &text);
    }
  } else if (clean && has_[kTheirs] && theirs_layout_ && same_as(kTheirs, n)) {
    text = T.RowText(t);
  } else {
    text = Encode(merged, notation);
  }
  size_t row_start = res_->merged.size() + (line_open_ ? newline_.size() : 0);
  Write(text, eol);
  for (size_t i = first_conflict; i < res_->conflicts.size(); i++) conflict_offsets_.push_back(row_start);
}

}  // namespace tusk::table
