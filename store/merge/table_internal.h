// Private to the table library (table*.cc): a parsed table as compact
// offsets into the caller's bytes, the cells of one row decoded on demand,
// row keys and their index, and the encoders.
//
// Why offsets: a merge of three 1,000,000-row versions must stay well under
// a second and a few hundred MiB, so a row costs 8 bytes (its end offset)
// plus 8 for its key's hash and index slot; no string is made per row or
// per cell except for rows that differ between versions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/merge/table.h"

namespace tusk::table {

// A decoded cell: CSV/TSV the unquoted text; JSONL `text` is the value's
// canonical JSON (what equality means) and `out` its compact JSON as
// written (what an output row carries). `present` is false for a JSONL
// field a row lacks, and for a column a version does not have.
struct Cell {
  bool present = false;
  std::string text, out;
  bool operator==(const Cell& o) const { return present == o.present && text == o.text; }
};

class Table {
 public:
  // `version` ("base", "ours", "old", ...) names the input in errors.
  // `bytes` must outlive the Table.
  static Result<Table> Parse(std::string_view bytes, TableFormat format, std::string_view version);

  TableFormat format() const { return format_; }
  std::string_view version() const { return version_; }
  std::string_view bytes() const { return bytes_; }
  bool has_bom() const { return bom_; }
  const std::vector<std::string>& columns() const { return columns_; }
  int ColumnIndex(std::string_view name) const;  // -1 if absent
  // CSV/TSV: the header line's bytes (without BOM and line ending) and its ending.
  std::string_view header_text() const { return header_text_; }
  std::string_view header_eol() const { return header_eol_; }

  size_t row_count() const { return row_end_.size(); }
  // The row's bytes without / with its line ending, and the ending alone
  // ("\n", "\r\n", or "" for a last line without one).
  std::string_view RowText(size_t row) const;
  std::string_view RowBytes(size_t row) const;
  std::string_view RowEol(size_t row) const;
  uint64_t RowLine(size_t row) const;  // 1-based first line
  // The file's usual line ending (the one most rows use).
  std::string_view newline() const { return crlf_rows_ * 2 > row_count() ? "\r\n" : "\n"; }

  // All cells of a row, by this table's column index. Reuses `cells`.
  void DecodeRow(size_t row, std::vector<Cell>* cells) const;
  // CSV/TSV: one field's decoded text, `scratch` holding it if it had to be
  // unescaped. Cheaper than DecodeRow for key columns.
  std::string_view Field(size_t row, int column, std::string* scratch) const;

 private:
  Status ParseCsv();
  Status ParseJsonl();
  void DecodeJsonlRow(size_t row, std::vector<Cell>* cells) const;
  size_t RowBegin(size_t row) const { return row == 0 ? data_begin_ : row_end_[row - 1]; }
  Status Error(uint64_t line, const std::string& what) const;

  TableFormat format_ = TableFormat::kCsv;
  std::string version_;
  std::string_view bytes_;
  bool bom_ = false;
  char sep_ = ',';
  std::vector<std::string> columns_;
  std::string_view header_text_, header_eol_;
  size_t data_begin_ = 0;
  std::vector<uint64_t> row_end_;  // row i is [row_end_[i-1] (or data_begin_), row_end_[i])
  uint64_t first_row_line_ = 1;
  // Rows spanning several lines (quoted newlines), as (row, newlines inside
  // it); line numbers of later rows shift by the running sum.
  std::vector<std::pair<size_t, uint64_t>> multiline_;
  size_t crlf_rows_ = 0;
};

// Minimal CSV/TSV quoting: quoted only if the text holds the separator, a
// quote, CR or LF.
void AppendCsvField(std::string_view text, char sep, std::string* out);
char Separator(TableFormat format);
// A JSON string literal holding `text` (for the JSONL conflict notation).
std::string JsonString(std::string_view text);
// "ours: X ||||||| base: Y ======= theirs: Z" wrapped in the markers;
// `absent_word` is "(deleted)" or "(absent)" per side.
struct NotationSide {
  const Cell* cell;
  const char* absent_word;
};
std::string Notation(NotationSide ours, NotationSide base, NotationSide theirs);

// Row keys of one version: a string per row (borrowed from the input where
// the key is one plain CSV field), hashed into an open-addressing index.
struct KeyPlan {
  std::vector<std::string> columns;  // empty: keyless (the row's content)
  bool declared = false;
  std::string reason;
};

class KeyIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  // Builds the keys of every row of `t` under `plan` (columns looked up by
  // name in `t`; keyless: the cells of `identity_columns` by name, with the
  // occurrence number of repeated content), and with `lookup` the index
  // Find uses. On a missing key, or with `lookup` a repeated one, returns
  // false and says where in `*why`.
  bool Build(const Table& t, const KeyPlan& plan, const std::vector<std::string>& identity_columns, bool lookup,
             std::string* why);
  size_t rows() const { return rows_; }
  // The key of row `row`; `scratch` holds it when it is built, not borrowed.
  std::string_view Key(size_t row, std::string* scratch) const;
  // The row of `key`, kNone if none (needs `lookup`). `hint` is tried
  // first: most rows sit where the previous match suggests.
  uint32_t Find(std::string_view key, uint32_t hint = kNone) const;
  // "column id repeats a value on line 9 of ours (first on line 3)".
  std::string Repeats(size_t row, size_t first) const;
  // Frees what only Key and Find need (Display still works).
  void ReleaseLookup() {
    std::vector<uint64_t>().swap(slots_);
    std::vector<std::string>().swap(owned_);
    rows_ = 0;
  }
  // The key for people: "id=42", "id=42, lang=en", or the row shortened.
  std::string Display(size_t row) const;

 private:
  bool Insert(uint32_t row, uint32_t h, std::string* why);
  const Table* t_ = nullptr;
  std::vector<int> key_cols_;
  std::vector<std::string> names_;
  bool keyless_ = false;
  std::vector<std::string> owned_;  // keys built per row (JSONL, composite, keyless); else empty
  size_t rows_ = 0;
  // hash << 32 | (row + 1), 0 = empty; a power of two, at most half full.
  // The hash in the slot spares a cache miss per probe.
  std::vector<uint64_t> slots_;
  mutable std::string probe_scratch_;
};

uint32_t HashKey(std::string_view key);

// Rows of one version matched to the base's by key (kNone: no match).
struct RowMatch {
  std::vector<uint32_t> to_base, from_base;
};

// Chooses the key for these versions (the first is the base; declared,
// detected, or keyless with the reason), builds one key index per version
// and matches every other version's rows to the base's (`matches[i]` for
// version i; [0] empty). Only the base gets a hash index: the others are
// matched by walking their rows along the base's, looking rows up only
// where that guess fails, and a repeated key shows as two rows matching one
// base row (or one key twice among the rows the base lacks). InvalidArgument
// when a declared key is missing or repeats.
Result<KeyChoice> ChooseKey(const std::vector<const Table*>& versions, const KeySpec& spec,
                            std::vector<KeyIndex>* indexes, std::vector<RowMatch>* matches);

// Shortens a row's text for display (about 60 bytes, cut on a UTF-8 boundary).
std::string Shorten(std::string_view text);

}  // namespace tusk::table
