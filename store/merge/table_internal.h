// Private to the table library (table*.cc): a parsed table as compact
// offsets into the caller's bytes, the cells of one row decoded on demand,
// row keys and their index, and the encoders.
//
// Why offsets: a merge of three 1,000,000-row versions must stay well under
// a second and a few hundred MiB, so a row costs 8 bytes (its end offset)
// plus 16 for the base's key index (hash and row in a slot, at most half
// full); no string is made per row or per cell except for rows that differ
// between versions, and rows another version has with the same bytes are
// not even scanned (Table::Parse with `like`).
#pragma once

#include <sys/mman.h>

#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "store/merge/table.h"

namespace tusk::table {

// Asks for transparent huge pages for [p, p + n) where the system has them
// on request (Linux: MADV_HUGEPAGE); a hint, nothing fails without it. A
// merge of large tables first-touches some 200 MB, and at 4 KiB a page the
// page faults cost more than the work done on those pages.
inline void AdviseHugePages(void* p, size_t n) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kPage = 4096;
  if (n < (size_t{1} << 21)) return;  // not even one huge page
  uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kPage - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p, (void)n;
#endif
}

// The allocator of the per-row arrays: those of a large table (a few MB
// each) get their own mapping with huge pages advised; small ones come
// from the heap as usual.
template <typename T>
struct RowsAllocator {
  using value_type = T;
  static constexpr size_t kMapBytes = size_t{1} << 21;
  RowsAllocator() = default;
  template <typename U>
  RowsAllocator(const RowsAllocator<U>&) {}
  T* allocate(size_t n) {
    if (n * sizeof(T) < kMapBytes) return std::allocator<T>().allocate(n);
    void* p = ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    AdviseHugePages(p, n * sizeof(T));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kMapBytes) return std::allocator<T>().deallocate(p, n);
    ::munmap(p, n * sizeof(T));
  }
  template <typename U>
  bool operator==(const RowsAllocator<U>&) const {
    return true;
  }
};
template <typename T>
using RowVector = std::vector<T, RowsAllocator<T>>;

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
  static constexpr uint32_t kNoRow = UINT32_MAX;

  // `version` ("base", "ours", "old", ...) names the input in errors.
  // `bytes` must outlive the Table. `like` (optional, CSV/TSV): another
  // version of the same table, already parsed. Rows whose bytes are a row of
  // `like` (found by walking both in step, as most rows of one version are
  // the next version's too) are taken from it instead of scanned: the same
  // bytes at the start of a record make the same record, so the result is
  // the one a plain parse gives, only faster. SameAs tells which rows.
  static Result<Table> Parse(std::string_view bytes, TableFormat format, std::string_view version,
                             const Table* like = nullptr);

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
  // ("\n", "\r\n", or "" for a last line without one). Inline: a merge
  // calls them a few times for every row.
  std::string_view RowBytes(size_t row) const {
    size_t begin = RowBegin(row);
    return {bytes_.data() + begin, row_end_[row] - begin};
  }
  std::string_view RowEol(size_t row) const {
    const size_t end = row_end_[row], len = end - RowBegin(row);
    const char* p = bytes_.data();
    size_t eol = len >= 1 && p[end - 1] == '\n' ? (len >= 2 && p[end - 2] == '\r' ? 2 : 1) : 0;
    return {p + end - eol, eol};
  }
  std::string_view RowText(size_t row) const {
    std::string_view b = RowBytes(row);
    return b.substr(0, b.size() - RowEol(row).size());
  }
  // The bytes of rows [first, end), line endings included.
  std::string_view RowsBytes(size_t first, size_t end) const {
    if (first >= end) return {};
    size_t begin = RowBegin(first);
    return {bytes_.data() + begin, row_end_[end - 1] - begin};
  }
  // Parsed with `like`: the row of `like` with exactly this row's bytes, as
  // found by the walk (kNoRow: none found, or parsed without `like`).
  // `hint` (start at 0) makes a walk in increasing row order cost O(1) a
  // row; any other order costs a binary search over the runs of such rows.
  uint32_t SameAs(size_t row, size_t* hint) const;
  const Table* like() const { return like_; }  // the `like` SameAs refers to, or null
  uint64_t RowLine(size_t row) const;          // 1-based first line
  // The file's usual line ending (the one most rows use).
  std::string_view newline() const { return crlf_rows_ * 2 > row_count() ? "\r\n" : "\n"; }

  // All cells of a row, by this table's column index. Reuses `cells`.
  void DecodeRow(size_t row, std::vector<Cell>* cells) const;
  // CSV/TSV: one field's decoded text, `scratch` holding it if it had to be
  // unescaped. Cheaper than DecodeRow for key columns.
  std::string_view Field(size_t row, int column, std::string* scratch) const;

 private:
  Status ParseCsv(const Table* like);
  size_t TakeSameRows(const Table& like, size_t pos, size_t j, uint64_t* line);
  bool RowAt(const Table& like, size_t j, size_t pos) const;
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
  RowVector<uint64_t> row_end_;  // row i is [row_end_[i-1] (or data_begin_), row_end_[i])
  uint64_t first_row_line_ = 1;
  // Rows spanning several lines (quoted newlines), as (row, newlines inside
  // it); line numbers of later rows shift by the running sum.
  std::vector<std::pair<size_t, uint64_t>> multiline_;
  uint64_t ExtraLines() const { return multiline_.empty() ? 0 : multiline_.back().second; }
  size_t crlf_rows_ = 0;
  // With `like`: rows [row, row + count) are like's [like_row, ...), in row
  // order (runs: a row each would be 4 MB more for 1,000,000 rows).
  struct SameRows {
    size_t row, like_row, count;
  };
  std::vector<SameRows> same_rows_;
  const Table* like_ = nullptr;
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
    RowVector<uint64_t>().swap(slots_);
    std::vector<std::string>().swap(owned_);
    rows_ = 0;
  }
  // The key for people: "id=42", "id=42, lang=en", or the row shortened.
  std::string Display(size_t row) const;
  const Table& table() const { return *t_; }
  // Whether this index's table was parsed like `other`'s (so SameAs names
  // its rows) and a row of one and a row of the other with the same
  // bytes have the same key: CSV/TSV keys in the same columns. (Keyless
  // keys count earlier copies, and JSONL tables are parsed without `like`.)
  bool SameBytesSameKey(const KeyIndex& other) const {
    return t_->like() == other.t_ && !keyless_ && !other.keyless_ && t_->format() != TableFormat::kJsonl &&
           key_cols_ == other.key_cols_;
  }

 private:
  bool Insert(uint32_t row, std::string_view key, uint32_t h, std::string* why);
  const Table* t_ = nullptr;
  std::vector<int> key_cols_;
  std::vector<std::string> names_;
  bool keyless_ = false;
  std::vector<std::string> owned_;  // keys built per row (JSONL, composite, keyless); else empty
  size_t rows_ = 0;
  // hash << 32 | (row + 1), 0 = empty; a power of two, at most half full.
  // The hash in the slot spares a cache miss per probe.
  RowVector<uint64_t> slots_;
  mutable std::string probe_scratch_;
};

uint32_t HashKey(std::string_view key);

// Rows of one version matched to the base's by key (kNone: no match).
struct RowMatch {
  RowVector<uint32_t> to_base, from_base;
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

// DiffTables and MergeTables on versions already parsed (the tests compare
// versions parsed with and without `like`, which must not change a result).
Result<TableDiff> DiffParsed(const Table& old_version, const Table& new_version, const KeySpec& key);
Result<TableMergeResult> MergeParsed(const Table& base, const Table& ours, const Table& theirs, const KeySpec& key,
                                     TableFavor favor);

// Shortens a row's text for display (about 60 bytes, cut on a UTF-8 boundary).
std::string Shorten(std::string_view text);

}  // namespace tusk::table
