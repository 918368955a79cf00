// Tables: CSV, TSV and JSONL files read as rows and columns, compared and
// merged row by row and cell by cell.
//
// Terms.
// - A *table* is a file that parses completely under one format:
//   CSV/TSV per RFC 4180 (a header line of column names; quoted fields may
//   hold the separator, doubled quotes and newlines; CRLF and LF both end a
//   record, mixed in one file too; a UTF-8 BOM before the header is kept),
//   TSV with a tab separator and the same quoting; JSONL with one JSON object
//   per line, whose top-level fields are the columns (in order of first
//   appearance) and whose values are compared as JSON values (1.0 == 1,
//   key order inside nested objects ignored).
//   Not a table: a ragged row (a different field count than the header;
//   a blank line counts as one empty field), a quoted field that never
//   ends, a quote inside an unquoted field or text after a closing quote, a
//   header with an empty or duplicated column name (or no header at all),
//   an embedded NUL byte, a JSONL line that is not a JSON object (a blank
//   line, invalid JSON — which includes invalid UTF-8 — or nesting deeper
//   than 512 levels). The error (InvalidArgument) names the version
//   ("base", "ours", "theirs"; "old", "new") and the 1-based line. A
//   header with no rows is a table, so is an empty JSONL file.
//   Invalid UTF-8 inside a CSV/TSV cell is kept byte for byte, never an error.
//   Columns are matched between versions by name, never by position.
// - A *row* keeps its exact bytes (with its line ending), so rows that a
//   merge does not touch are written back unchanged.
// - A *key* is one or more columns whose values identify a row. Declared
//   keys come from the dataset's settings (`tusk table set`); without one,
//   the key is *detected*: the first column named like an identifier
//   (`id`, `key`, `uuid`, `name`, `file`, `filename`, `path`, `image`, or
//   ending in `_id`; compared case-insensitively), else the first column, in
//   either case only if its values are unique in every version involved;
//   else the table is *keyless* and a row's whole content is its identity
//   (CSV/TSV: the cells of the columns every version has, by name; JSONL:
//   every field), repeated rows counting as copies: the n-th copy in one
//   version is the n-th in another, so a keyless merge adds and removes
//   copies and never conflicts on a row.
//   A declared key must exist and be unique in every version, else the file
//   is not a table for that operation (the reason names the key and line).
//
// Performance: rows are kept as offsets into the caller's bytes and
// decoded only where the versions differ. The base is scanned whole; the
// other versions are walked along it, and every run of rows with the base's
// exact bytes is taken from the base's offsets (compared, not scanned), its
// keys known without being built. Runs the same in all three versions are
// written to a merge's output at once. Besides the inputs and the output a
// merge holds about 60 bytes per row (offsets, a hash index of the base's
// keys, row maps); arrays of a large table are mapped with huge pages
// advised. Measured: 1,000,000 CSV rows (40 MB a version, 1,000 changed
// cells a side) merge in about 0.17 s on one core, and `tusk merge` of such
// a file (reading three versions, storing the result) in about 0.6 s wall
// on two cores with a peak of about 205 MiB.
//
// Thread-safety: plain values and reentrant functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace tusk {

enum class TableFormat { kCsv, kTsv, kJsonl };

// By extension, case-insensitively: .csv, .tsv (and .tab), .jsonl (and
// .ndjson). nullopt for anything else.
std::optional<TableFormat> TableFormatForPath(std::string_view path);
const char* TableFormatName(TableFormat format);  // "CSV", "TSV", "JSONL"

// A declared key (names of columns), or none (detect).
using KeySpec = std::optional<std::vector<std::string>>;

// The key a comparison or merge used, for the output ("key id", "key
// (id, lang)", "no key: rows compared whole (column id repeats a value on
// line 12 of ours)").
struct KeyChoice {
  std::vector<std::string> columns;  // empty: keyless
  bool declared = false;
  std::string reason;  // keyless or fallback: why (human-readable)
  // "key id", "key (id, lang) (declared)", "key label (the first column;
  // no column is named like an identifier)", "no key: rows compared whole
  // (column id repeats a value on line 12 of ours (first on line 3))".
  std::string Describe() const;
};

// ---- Diff ----------------------------------------------------------------

struct CellChange {
  std::string column;
  std::string old_value, new_value;  // as text (JSONL: compact JSON)
};
struct RowChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind;
  std::string key;                      // "id=42" (or "id=42, lang=en"); keyless: the row's text, shortened
  uint64_t old_line = 0, new_line = 0;  // 1-based first line of the row; 0 where absent
  std::vector<CellChange> cells;        // kChanged: the changed cells, in column order
};
// CSV/TSV compare the cells of the columns both versions have (an added
// or removed column is listed once, not as a change of every row); JSONL
// compares every field, a missing one as absent ("" in CellChange).
struct TableDiff {
  TableFormat format;
  KeyChoice key;
  std::vector<std::string> columns_added, columns_removed;
  std::vector<RowChange> rows;  // in the new version's order, removed rows after the row that preceded them
  uint64_t rows_added = 0, rows_removed = 0, rows_changed = 0, cells_changed = 0;
  bool reordered = false;  // the rows present in both are in a different order
};

// Compares two versions of one table. InvalidArgument (naming "old" or
// "new" and the line) when one is not a table or a declared key does not
// hold.
Result<TableDiff> DiffTables(std::string_view old_bytes, std::string_view new_bytes, TableFormat format,
                             const KeySpec& key);

// ---- Merge ---------------------------------------------------------------

struct TableConflict {
  enum class Kind {
    kCell,          // one cell changed differently on the two sides
    kDeleteModify,  // a row deleted on one side, changed on the other
    kInsertInsert,  // a row inserted on both sides with one key and different content
    kSchema,        // one column's schema changed incompatibly (see MergeTables)
  };
  Kind kind;
  std::string key;     // the row ("id=42"); empty for kSchema
  std::string column;  // kCell: the column; kSchema: the column concerned (its base name); else ""
  // The three values ("" and `*_present` false where the row or cell is
  // absent): kCell the cells (JSONL: compact JSON); kDeleteModify and
  // kInsertInsert the rows' text as in each version; kSchema the column's
  // name in each version.
  std::string base, ours, theirs;
  bool base_present = false, ours_present = false, theirs_present = false;
  uint64_t line = 0;  // the row's first line in the merged output (kSchema: 1, the header)
};
const char* TableConflictKindName(TableConflict::Kind kind);  // "cell", "delete/modify", ...

struct TableMergeResult {
  bool clean = false;
  // Clean: the merged table. Otherwise the table with every conflict
  // written in the conflict notation (below), still a table of the same
  // format with the merged columns, so pandas, csvkit and spreadsheets
  // open it.
  std::string merged;
  KeyChoice key;
  std::vector<TableConflict> conflicts;  // in the output's order (schema conflicts first)
  // For the summary line: rows each side inserted that the output has
  // (a row both inserted alike counts for ours), and cells of rows both
  // sides kept whose merged value differs from the base (taken from either
  // side without conflict).
  uint64_t rows_from_ours = 0, rows_from_theirs = 0, cells_merged = 0;
};

// The conflict notation: a conflicting cell holds
//   <<<<<<< ours: OURS ||||||| base: BASE ======= theirs: THEIRS >>>>>>>
// (one line unless a value holds a newline). A value is the cell's text
// (JSONL: its compact JSON); `(deleted)` stands for the side that deleted
// the row, `(absent)` for a cell that is not there (the row is new, the
// version lacks the column, a JSONL row lacks the field). CSV/TSV quote
// the cell as needed; JSONL makes it a JSON string holding that text.
// - kCell: that cell.
// - kDeleteModify: one row, as the changing side has it, each cell that
//   side changed in the notation, the deleting side `(deleted)`:
//     42,dog,<<<<<<< ours: (deleted) ||||||| base: 0.7 ======= theirs: 0.9 >>>>>>>
// - kInsertInsert: one row, the cells both gave once, each other cell in
//   the notation with base `(absent)`.
// - kSchema: the column's header cell, the values being its names:
//     id,<<<<<<< ours: name ||||||| base: label ======= theirs: title >>>>>>>
// The output is therefore a table with the merged columns; resolving means
// editing those cells (and header cells).
inline constexpr std::string_view kCellConflictOpen = "<<<<<<< ours: ";
inline constexpr std::string_view kCellConflictClose = " >>>>>>>";
// Whether `bytes` still holds a cell notation (kCellConflictOpen anywhere)
// or a line merge's conflict marker (a line starting with "<<<<<<< " or
// ">>>>>>> ", or a line "=======", optionally followed by a space or CR):
// tusk resolve refuses then.
bool HasConflictNotation(std::string_view bytes);
// The 1-based lines that HasConflictNotation finds something on, for
// pointing at what is left to resolve (`tusk status`).
std::vector<uint64_t> ConflictNotationLines(std::string_view bytes);

// Three-way merge of one table by key and cell. Rules (man tusk-merge):
// - per row and column: changed on one side -> that side; the same on both
//   -> once; differently -> a kCell conflict;
// - deleted on one side and changed on the other -> kDeleteModify; deleted
//   on one side and unchanged on the other -> deleted;
//   a row counts as changed when a cell of a column both it and the base
//   have changed (a column a side added does not make its rows changed);
// - inserted on both with one key: the same content -> once, else
//   kInsertInsert (a column only one of them has is no difference);
// - columns (CSV/TSV; columns are matched by name):
//   - added on one side -> appended after ours' columns (ours' added ones
//     are where ours put them); every row gets a cell, empty where the side
//     that added it has no row;
//   - added on both under one name -> one column, its cells merged as
//     above with the base cell absent;
//   - removed on one side -> removed, unless the other side changed a cell
//     of it: then kSchema, the column is kept (with the changing side's
//     values) and its header cell holds the notation;
//   - removed on both -> removed;
//   - renamed: a side that removed a column and has a column the base
//     lacks in its place renamed it; a rename on one side carries the
//     other side's edits of that column; the same rename on both -> once;
//     different renames -> kSchema, one column whose header cell holds the
//     notation and whose cells are merged as usual;
//   - an output name clash (one side added what the other renamed to) ->
//     kSchema on the later column's header cell;
//   JSONL fields are per row: a field added or removed is a change of
//   those rows' cells, merged by the cell rules (absent is a value);
// - order: ours' row order when ours reordered or neither did; theirs'
//   order when only theirs reordered (reordered: the rows it shares with
//   the base are in another relative order). The other side's rows that
//   the primary side lacks (new rows, and delete/modify rows) go after the
//   row that precedes them on their side, after any of the primary side's
//   own new rows there (at the top when nothing precedes them);
// - bytes: the header and every row that neither side changed keep their
//   exact bytes from ours, a BOM and a last line without a newline
//   included (an added column appends `,cell` to ours' row bytes); a row
//   whose merged content is one side's row keeps that side's bytes; any
//   other row is encoded with minimal quoting (JSONL: compact JSON, fields
//   in column order). A row has ours' line ending; a new row the ending
//   most of ours' rows have.
// Error (InvalidArgument naming the version and line) when a version is not
// a table or the key does not hold: callers fall back to the line merge and
// print the reason.
Result<TableMergeResult> MergeTables(std::string_view base, std::string_view ours, std::string_view theirs,
                                     TableFormat format, const KeySpec& key);

// `tusk merge --ours` / `--theirs`: every cell, delete/modify and
// insert/insert conflict is resolved for that side (its value, its
// deletion, its row) instead of written in the notation. Schema conflicts
// stay conflicts (the caller then takes that side's whole file).
enum class TableFavor { kNone, kOurs, kTheirs };
Result<TableMergeResult> MergeTables(std::string_view base, std::string_view ours, std::string_view theirs,
                                     TableFormat format, const KeySpec& key, TableFavor favor);

}  // namespace tusk
