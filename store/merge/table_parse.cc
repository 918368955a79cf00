// Parsing CSV/TSV (RFC 4180) into row offsets, and decoding a row's cells
// on demand. JSONL lives in table_jsonl.cc.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <unordered_set>

#include "store/merge/table_internal.h"

namespace tusk::table {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

struct FieldSpan {
  size_t begin, end;  // the raw field, quotes included
  bool quoted;
};

// Splits a validated record's text into its raw fields.
void SplitFields(std::string_view text, char sep, std::vector<FieldSpan>* out) {
  out->clear();
  size_t i = 0, n = text.size();
  for (;;) {
    size_t begin = i;
    bool quoted = i < n && text[i] == '"';
    if (quoted) {
      for (i++; i < n; i++) {
        if (text[i] != '"') continue;
        if (i + 1 < n && text[i + 1] == '"') {
          i++;
          continue;
        }
        i++;
        break;
      }
    }
    while (i < n && text[i] != sep) i++;
    out->push_back({begin, i, quoted});
    if (i >= n) return;
    i++;  // the separator; a record ending in one has an empty last field
  }
}

// The decoded text of a raw field: unquoted as is, quoted without its
// quotes and with doubled quotes made single (into `scratch` only then).
std::string_view DecodeField(std::string_view raw, bool quoted, std::string* scratch) {
  if (!quoted) return raw;
  std::string_view inner = raw.substr(1, raw.size() >= 2 ? raw.size() - 2 : 0);
  if (inner.find('"') == std::string_view::npos) return inner;
  scratch->clear();
  for (size_t i = 0; i < inner.size(); i++) {
    scratch->push_back(inner[i]);
    if (inner[i] == '"') i++;  // the second of a doubled quote
  }
  return *scratch;
}

// High bit set in each byte of `x` that is zero (exact: no carries
// between bytes, as (b & 0x7F) + 0x7F <= 0xFE).
inline uint64_t ZeroBytes(uint64_t x) {
  constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;
  return ~(((x & kLow7) + kLow7) | x) & ~kLow7;
}

// Separators in [p, p + n) and whether a quote is among them, eight bytes
// at a time: this loop sees every byte of every row, the most of a merge's
// own time.
size_t CountSeparators(const char* p, size_t n, char sep, bool* quote) {
  const uint64_t seps = 0x0101010101010101ULL * static_cast<unsigned char>(sep);
  const uint64_t quotes = 0x0101010101010101ULL * static_cast<unsigned char>('"');
  size_t count = 0, i = 0;
  uint64_t any_quote = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    count += __builtin_popcountll(ZeroBytes(w ^ seps));
    any_quote |= ZeroBytes(w ^ quotes);
  }
  for (; i < n; i++) {
    count += p[i] == sep;
    any_quote |= p[i] == '"';
  }
  *quote = any_quote != 0;
  return count;
}

uint64_t CountNewlines(const char* p, size_t n) {
  uint64_t count = 0;
  if (n == 0) return 0;  // p may be null then, which memchr must not see
  for (const char* end = p + n; (p = static_cast<const char*>(std::memchr(p, '\n', end - p))); p++) count++;
  return count;
}

}  // namespace

Status Table::Error(uint64_t line, const std::string& what) const {
  return Status::InvalidArgument("not a " + std::string(TableFormatName(format_)) + " table: " + version_ + " line " +
                                 std::to_string(line) + ": " + what);
}

Result<Table> Table::Parse(std::string_view bytes, TableFormat format, std::string_view version) {
  Table t;
  t.format_ = format;
  t.version_ = std::string(version);
  t.bytes_ = bytes;
  t.sep_ = Separator(format);
  t.bom_ = bytes.starts_with(kBom);
  t.data_begin_ = t.bom_ ? kBom.size() : 0;
  const void* nul = bytes.empty() ? nullptr : std::memchr(bytes.data(), '\0', bytes.size());
  if (nul) {
    size_t at = static_cast<const char*>(nul) - bytes.data();
    return t.Error(1 + CountNewlines(bytes.data(), at), "embedded NUL byte");
  }
  TUSK_RETURN_IF_ERROR(format == TableFormat::kJsonl ? t.ParseJsonl() : t.ParseCsv());
  return t;
}

// One record starting at `pos` (on line `line`): validates its quoting and
// finds where its text and its line ending end. The fields' raw spans go
// to `fields` when given (the header); else only counted.
struct RecordScan {
  size_t text_end = 0, end = 0, fields = 0;
  uint64_t newlines = 0;  // inside quoted fields
};

Status Table::ParseCsv() {
  const char* p = bytes_.data();
  const size_t n = bytes_.size();
  auto scan = [&](size_t pos, uint64_t line, RecordScan* r, std::vector<FieldSpan>* fields) -> Status {
    size_t i = pos;
    *r = RecordScan();
    for (;;) {
      size_t begin = i;
      r->fields++;
      if (i < n && p[i] == '"') {
        for (i++;;) {
          const void* q = std::memchr(p + i, '"', n - i);
          if (!q) return Error(line, "a quoted field never ends");
          size_t at = static_cast<const char*>(q) - p;
          r->newlines += CountNewlines(p + i, at - i);
          i = at + 1;
          if (i < n && p[i] == '"') {
            i++;
            continue;
          }
          break;
        }
        if (fields) fields->push_back({begin - pos, i - pos, true});
        if (i == n) {
          r->text_end = r->end = n;
          return Status::Ok();
        }
        if (p[i] == sep_) {
          i++;
          continue;
        }
        if (p[i] == '\n' || (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')) {
          r->text_end = i;
          r->end = i + (p[i] == '\r' ? 2 : 1);
          return Status::Ok();
        }
        return Error(line + r->newlines, "text after the closing quote of a field");
      }
      while (i < n && p[i] != sep_ && p[i] != '\n' && p[i] != '"') i++;
      if (i < n && p[i] == '"') return Error(line + r->newlines, "a quote inside an unquoted field");
      size_t field_end = (i < n && p[i] == '\n' && i > begin && p[i - 1] == '\r') ? i - 1 : i;
      if (fields) fields->push_back({begin - pos, field_end - pos, false});
      if (i < n && p[i] == sep_) {
        i++;
        continue;
      }
      r->text_end = field_end;
      r->end = i < n ? i + 1 : n;
      return Status::Ok();
    }
  };

  size_t pos = data_begin_;
  if (pos == n) return Error(1, "no header line");
  RecordScan r;
  std::vector<FieldSpan> spans;
  TUSK_RETURN_IF_ERROR(scan(pos, 1, &r, &spans));
  header_text_ = bytes_.substr(pos, r.text_end - pos);
  header_eol_ = bytes_.substr(r.text_end, r.end - r.text_end);
  std::unordered_set<std::string> seen;
  std::string scratch;
  for (const auto& s : spans) {
    std::string name(DecodeField(header_text_.substr(s.begin, s.end - s.begin), s.quoted, &scratch));
    if (name.empty()) return Error(1, "column " + std::to_string(columns_.size() + 1) + " has no name");
    if (!seen.insert(name).second) return Error(1, "column name \"" + name + "\" appears twice");
    columns_.push_back(std::move(name));
  }
  uint64_t line = 2 + r.newlines;
  first_row_line_ = line;
  data_begin_ = pos = r.end;
  const size_t want = columns_.size();
  uint64_t extra_lines = 0;
  // Sized once: growing by doubling would copy and touch twice the memory.
  row_end_.reserve(CountNewlines(p + pos, n - pos) + 1);
  while (pos < n) {
    // Fast path: a line without quotes is a whole record; count separators.
    const void* nl = std::memchr(p + pos, '\n', n - pos);
    size_t line_end = nl ? static_cast<const char*>(nl) - p : n;
    bool quote = false;
    size_t seps = CountSeparators(p + pos, line_end - pos, sep_, &quote);
    if (!quote) {
      r.fields = seps + 1;
      r.newlines = 0;
      r.end = nl ? line_end + 1 : n;
      r.text_end = (nl && line_end > pos && p[line_end - 1] == '\r') ? line_end - 1 : line_end;
    } else {
      TUSK_RETURN_IF_ERROR(scan(pos, line, &r, nullptr));
    }
    if (r.fields != want) {
      return Error(line, "row has " + std::to_string(r.fields) + " fields, the header " + std::to_string(want));
    }
    if (r.end - r.text_end == 2) crlf_rows_++;
    if (r.newlines) {
      extra_lines += r.newlines;
      multiline_.emplace_back(row_end_.size(), extra_lines);
    }
    row_end_.push_back(r.end);
    line += 1 + r.newlines;
    pos = r.end;
  }
  return Status::Ok();
}

int Table::ColumnIndex(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); i++) {
    if (columns_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string_view Table::RowBytes(size_t row) const {
  size_t begin = RowBegin(row);
  return bytes_.substr(begin, row_end_[row] - begin);
}

std::string_view Table::RowEol(size_t row) const {
  std::string_view b = RowBytes(row);
  if (b.ends_with("\r\n")) return b.substr(b.size() - 2);
  if (b.ends_with('\n')) return b.substr(b.size() - 1);
  return b.substr(b.size());
}

std::string_view Table::RowText(size_t row) const {
  std::string_view b = RowBytes(row);
  return b.substr(0, b.size() - RowEol(row).size());
}

uint64_t Table::RowLine(size_t row) const {
  // multiline_ holds running sums: the last entry before `row` is the shift.
  auto it = std::lower_bound(multiline_.begin(), multiline_.end(), row,
                             [](const std::pair<size_t, uint64_t>& e, size_t r) { return e.first < r; });
  uint64_t shift = it == multiline_.begin() ? 0 : std::prev(it)->second;
  return first_row_line_ + row + shift;
}

std::string_view Table::Field(size_t row, int column, std::string* scratch) const {
  std::string_view text = RowText(row);
  if (format_ == TableFormat::kJsonl) return {};
  // Plain fields (the usual key) need no full split.
  size_t i = 0, n = text.size();
  for (int c = 0;; c++) {
    size_t begin = i;
    bool quoted = i < n && text[i] == '"';
    if (quoted) {
      for (i++; i < n; i++) {
        if (text[i] != '"') continue;
        if (i + 1 < n && text[i + 1] == '"') {
          i++;
          continue;
        }
        i++;
        break;
      }
    } else {
      const void* s = std::memchr(text.data() + i, sep_, n - i);
      i = s ? static_cast<const char*>(s) - text.data() : n;
    }
    if (c == column) return DecodeField(text.substr(begin, i - begin), quoted, scratch);
    if (i >= n) return {};
    i++;
  }
}

void Table::DecodeRow(size_t row, std::vector<Cell>* cells) const {
  if (format_ == TableFormat::kJsonl) return DecodeJsonlRow(row, cells);
  thread_local std::vector<FieldSpan> spans;
  std::string_view text = RowText(row);
  SplitFields(text, sep_, &spans);
  cells->resize(columns_.size());
  std::string scratch;
  for (size_t c = 0; c < cells->size(); c++) {
    Cell& cell = (*cells)[c];
    cell.present = c < spans.size();
    if (!cell.present) continue;
    const FieldSpan& s = spans[c];
    cell.text.assign(DecodeField(text.substr(s.begin, s.end - s.begin), s.quoted, &scratch));
    cell.out = cell.text;
  }
}

}  // namespace tusk::table
