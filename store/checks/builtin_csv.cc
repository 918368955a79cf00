// The csv built-in: tables parse, share one header, and --numeric columns
// hold numbers.
//
// A file is read in blocks of whole records (store/checks/builtin.h,
// BuiltinCheckLimits) and each block is parsed by the table library behind
// a copy of the header, so a 20 GB table costs a block of memory, not 20 GB.
// Where records end is found by quote parity: in a well-formed file a
// newline ends a record exactly when an even number of quotes precede it
// (a doubled quote inside a quoted field counts twice). In a malformed file
// parity may cut a block at the wrong place; the block holding the fault
// then fails to parse and the fault is reported at its own line.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_set>

#include "store/checks/builtin_internal.h"
#include "store/merge/table_internal.h"

namespace tusk::checks {

namespace {

using table::Table;

// The version name given to Table::Parse, found again in its errors.
constexpr std::string_view kVersion = "block";

struct ParseFault {
  uint64_t line = 0;  // in the parsed text; 0 when the message names none
  std::string what;
};

// Reads back the line and reason of a Table::Parse error, whose message is
// "not a CSV table: <version> line <N>: <what>" (store/merge/table.h).
ParseFault ReadFault(const Status& st) {
  const std::string& m = st.message();
  std::string marker = std::string(kVersion) + " line ";
  size_t at = m.find(marker);
  if (at == std::string::npos) return {0, m};
  const char* begin = m.data() + at + marker.size();
  uint64_t line = 0;
  auto [end, ec] = std::from_chars(begin, m.data() + m.size(), line);
  if (ec != std::errc() || !std::string_view(end, m.data() + m.size()).starts_with(": ")) return {0, m};
  return {line, std::string(end + 2, m.data() + m.size())};
}

// A finite decimal number, spaces or tabs around it allowed ("12", "-0.5",
// "+1e-3", ".5"); not "nan", "inf" or hex.
bool IsNumber(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.starts_with('+')) text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return false;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::general);
  if (end != text.data() + text.size()) return false;
  // Out of range (1e999, 1e-999) is still a number written in decimal.
  if (ec == std::errc::result_out_of_range) return true;
  return ec == std::errc() && std::isfinite(v);
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + Quote(n);
  return out;
}

// How header `got` differs from `want`, the header of `want_label` (a
// path); empty when they are the same.
std::string HeaderDifference(const std::vector<std::string>& got, const std::vector<std::string>& want,
                             const std::string& want_label) {
  if (got == want) return "";
  std::unordered_set<std::string> got_set(got.begin(), got.end()), want_set(want.begin(), want.end());
  std::vector<std::string> missing, extra;
  for (const auto& n : want) {
    if (!got_set.count(n)) missing.push_back(n);
  }
  for (const auto& n : got) {
    if (!want_set.count(n)) extra.push_back(n);
  }
  std::string msg = "header differs from " + want_label + "'s: ";
  if (missing.empty() && extra.empty()) {
    // Names are unique in a header, so equal sets mean equal counts.
    size_t i = 0;
    while (got[i] == want[i]) i++;
    return msg + "the same columns in another order (column " + std::to_string(i + 1) + " is " + Quote(got[i]) +
           ", not " + Quote(want[i]) + ")";
  }
  std::vector<std::string> parts;
  if (got.size() != want.size()) {
    parts.push_back(std::to_string(got.size()) + " columns, not " + std::to_string(want.size()));
  }
  if (!missing.empty()) parts.push_back("lacks " + Names(missing));
  if (!extra.empty()) parts.push_back("extra " + Names(extra));
  for (size_t i = 0; i < parts.size(); i++) msg += (i ? "; " : "") + parts[i];
  return msg;
}

uint64_t CountNewlines(std::string_view s) { return static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n')); }

// Reads one CSV/TSV file block by block. With `header_only` it stops after
// the header and only learns the columns.
class CsvFile {
 public:
  CsvFile(const CheckContext& c, const TreeFile& file, TableFormat format, bool header_only)
      : c_(c), file_(file), format_(format), header_only_(header_only) {}

  // Reads the file; problems go to `report` (nullptr: none are reported).
  // `reference`: the header it must have, of `reference_path` (nullptr:
  // none to compare with).
  Status Run(Problems* report, const std::vector<std::string>* reference, const std::string& reference_path) {
    report_ = report;
    reference_ = reference;
    reference_path_ = &reference_path;
    TUSK_RETURN_IF_ERROR(StreamFile(c_.repo, file_.entry, [this](std::string_view data) { return Take(data); }));
    if (!done_ && (!first_done_ || buffer_.size() > header_len_)) Block(buffer_.size());
    return Status::Ok();
  }

  // The header's columns, once it parsed.
  const std::optional<std::vector<std::string>>& columns() const { return columns_; }

 private:
  void Problem(uint64_t line, const std::string& what) {
    if (report_) report_->Add(file_.path, line, what);
  }

  // Appends `data`; parses a block when enough whole records are in.
  // False: stop reading.
  bool Take(std::string_view data) {
    buffer_.append(data);
    for (; scan_ < buffer_.size(); scan_++) {
      char ch = buffer_[scan_];
      if (ch == '"') in_quotes_ = !in_quotes_;
      if (ch == '\n' && !in_quotes_) boundary_ = scan_ + 1;
    }
    size_t start = first_done_ ? header_len_ : 0;
    if (boundary_ > start && (header_only_ || buffer_.size() - start >= c_.limits.table_block_bytes)) {
      Block(boundary_);
    } else if (boundary_ <= start && buffer_.size() - start > c_.limits.max_record_bytes) {
      TooLong();
    }
    return !done_;
  }

  // No record ends within max_record_bytes: either a stray quote upset the
  // parity (parsing finds it) or a record really is that long.
  void TooLong() {
    std::string_view text = buffer_;
    Result<Table> t = Table::Parse(text, format_, kVersion);
    ParseFault f = t.ok() ? ParseFault{first_done_ ? header_newlines_ + 1 : 1, ""} : ReadFault(t.status());
    if (t.ok() || f.what == "a quoted field never ends") {
      f.what =
          "a record longer than " + DescribeSize(c_.limits.max_record_bytes) + "; the rest of the file is not checked";
    }
    Fault(text, f);
  }

  // Parses and checks buffer_[0, end): the header (the file's own bytes in
  // the first block, a copy of them later) and whole records.
  void Block(size_t end) {
    std::string_view text = std::string_view(buffer_).substr(0, end);
    Result<Table> t = Table::Parse(text, format_, kVersion);
    if (!t.ok()) return Fault(text, ReadFault(t.status()));
    Judge(*t);
    if (done_) return;
    // Drop the block's records, keeping the header in front.
    size_t start = first_done_ ? header_len_ : 0;
    lines_before_ += CountNewlines(std::string_view(buffer_).substr(start, end - start));
    if (!first_done_) {
      buffer_ = header_ + buffer_.substr(end);
      header_len_ = header_.size();
      first_done_ = true;
    } else {
      buffer_.erase(header_len_, end - header_len_);
    }
    // Later blocks' line N (counted after the header copy) is the file's
    // line N - header lines + lines before the block.
    shift_ = lines_before_ - header_newlines_;
    scan_ = scan_ - end + header_len_;
    boundary_ = header_len_;
  }

  // `text` does not parse, first at f.line. The records before that line are
  // well-formed and judged as usual (so a file read whole reports what one
  // read in blocks does); then the fault, and the rest is not read.
  void Fault(std::string_view text, const ParseFault& f) {
    // A cut inside a multi-line record fails again, earlier: cut there.
    for (uint64_t line = f.line; line > 1 && !header_only_;) {
      size_t cut = 0;
      for (uint64_t l = 1; l < line; l++) {
        size_t nl = text.find('\n', cut);
        cut = nl == std::string_view::npos ? text.size() : nl + 1;
      }
      Result<Table> t = Table::Parse(text.substr(0, cut), format_, kVersion);
      if (t.ok()) {
        Judge(*t);
        break;
      }
      uint64_t earlier = ReadFault(t.status()).line;
      if (earlier == 0 || earlier >= line) break;
      line = earlier;
    }
    if (!done_) Problem(f.line ? f.line + shift_ : 0, f.what);
    done_ = true;
  }

  // A parsed block: its header (the first time), then its rows.
  void Judge(const Table& t) {
    if (!columns_) First(t);
    if (header_only_) {
      done_ = true;
      return;
    }
    CheckRows(t);
  }

  // The header: compared with the reference; --numeric columns found.
  void First(const Table& t) {
    columns_ = t.columns();
    header_ = std::string(t.header_text()) + std::string(t.header_eol());
    header_newlines_ = CountNewlines(header_);
    if (reference_) {
      std::string diff = HeaderDifference(t.columns(), *reference_, *reference_path_);
      if (!diff.empty()) Problem(1, diff);
    }
    for (const auto& name : c_.args.numeric) {
      int index = t.ColumnIndex(name);
      if (index < 0) {
        Problem(1, "no column " + Quote(name) + " (a --numeric column)");
      } else {
        numeric_.emplace_back(name, index);
      }
    }
  }

  // Record lengths (judged alike however the file came in pieces) and
  // --numeric values.
  void CheckRows(const Table& t) {
    std::string scratch;
    for (size_t row = 0; row < t.row_count(); row++) {
      uint64_t line = t.RowLine(row) + shift_;
      if (t.RowBytes(row).size() > c_.limits.max_record_bytes) {
        Problem(line, "a record longer than " + DescribeSize(c_.limits.max_record_bytes) +
                          "; the rest of the file is not checked");
        done_ = true;
        return;
      }
      for (const auto& [name, index] : numeric_) {
        std::string_view v = t.Field(row, index, &scratch);
        if (v.empty()) {
          if (!c_.args.allow_empty) Problem(line, "column " + Quote(name) + " is empty");
        } else if (!IsNumber(v)) {
          Problem(line, "column " + Quote(name) + ": " + Quote(v) + " is not a number");
        }
      }
    }
  }

  const CheckContext& c_;
  const TreeFile& file_;
  TableFormat format_;
  bool header_only_;
  Problems* report_ = nullptr;
  const std::vector<std::string>* reference_ = nullptr;
  const std::string* reference_path_ = nullptr;

  std::string buffer_;  // [header copy] + records not yet parsed
  size_t scan_ = 0;     // buffer_ is scanned for record ends up to here
  bool in_quotes_ = false;
  size_t boundary_ = 0;  // just after the last record end found
  bool first_done_ = false;
  bool done_ = false;
  std::optional<std::vector<std::string>> columns_;
  std::string header_;  // the header record's bytes (no BOM) with its line ending
  size_t header_len_ = 0;
  uint64_t header_newlines_ = 0;
  uint64_t lines_before_ = 0;  // newlines in the file before buffer_'s records
  uint64_t shift_ = 0;
  std::vector<std::pair<std::string, int>> numeric_;
};

}  // namespace

Result<std::string> CheckCsv(const CheckContext& c) {
  // The whole tree's tables, for the first one's header; the judged ones
  // are read whole, the others at most for a header.
  std::vector<TreeFile> tables, others;
  TUSK_RETURN_IF_ERROR(ForEachFile(c.repo, c.root, c.args.glob, [&](const std::string& path, const TreeEntry& e) {
    auto format = TableFormatForPath(path);
    (format && *format != TableFormat::kJsonl ? tables : others).push_back({path, e});
  }));
  auto by_path = [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; };
  std::sort(tables.begin(), tables.end(), by_path);
  std::sort(others.begin(), others.end(), by_path);
  std::unordered_set<std::string> changed(c.changed.begin(), c.changed.end());
  auto judged = [&](const TreeFile& f) { return c.all_paths || changed.count(f.path) > 0; };

  for (const auto& f : others) {
    if (judged(f)) c.problems.Add(f.path, 0, "not a CSV or TSV file (by its extension: .csv, .tsv or .tab)");
  }
  if (tables.empty()) return std::string("no CSV/TSV files match ") + c.args.glob;

  const TreeFile& reference = tables[0];
  std::optional<std::vector<std::string>> reference_columns;
  if (!judged(reference)) {
    CsvFile header(c, reference, *TableFormatForPath(reference.path), true);
    TUSK_RETURN_IF_ERROR(header.Run(nullptr, nullptr, reference.path));
    reference_columns = header.columns();
    if (!reference_columns) {
      c.problems.Add(reference.path, 0,
                     "header does not parse, and as the first file its header is the one the others must have");
    }
  }
  size_t count = 0;
  for (const auto& f : tables) {
    if (!judged(f)) continue;
    count++;
    CsvFile file(c, f, *TableFormatForPath(f.path), false);
    bool is_reference = &f == &reference;
    TUSK_RETURN_IF_ERROR(
        file.Run(&c.problems, !is_reference && reference_columns ? &*reference_columns : nullptr, reference.path));
    if (is_reference) reference_columns = file.columns();
  }

  // A changed first file sets the header for the others; the first
  // unchanged file stands for those (they agreed when they landed).
  if (!c.all_paths && judged(reference) && reference_columns) {
    auto unchanged = std::find_if(tables.begin(), tables.end(), [&](const TreeFile& f) { return !judged(f); });
    if (unchanged != tables.end()) {
      CsvFile header(c, *unchanged, *TableFormatForPath(unchanged->path), true);
      TUSK_RETURN_IF_ERROR(header.Run(nullptr, nullptr, unchanged->path));
      if (header.columns()) {
        std::string diff = HeaderDifference(*reference_columns, *header.columns(), "unchanged " + unchanged->path);
        if (!diff.empty()) c.problems.Add(reference.path, 1, diff);
      }
    }
  }
  return Count(count, c.all_paths ? "CSV/TSV file" : "changed CSV/TSV file") + " checked";
}

}  // namespace tusk::checks
