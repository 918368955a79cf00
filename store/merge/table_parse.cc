// Parsing CSV/TSV (RFC 4180) into row offsets, and decoding a row's cells
// on demand. JSONL lives in table_jsonl.cc.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <unordered_set>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

// Bits set in `x`, without the POPCNT instruction the baseline x86-64
// target lacks (__builtin_popcount would be a libgcc call per use).
inline unsigned Popcount(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<unsigned>((x * 0x0101010101010101ULL) >> 56);
}

// One line from `pos`: where it ends (its '\n', or n), how many separators
// it holds and whether a quote is among them. This sees every byte of every
// row the base has (the other versions mostly reuse the base's rows), so it
// goes sixteen bytes at a time where SSE2 is there.
struct LineScan {
  size_t end, seps;
  bool quote;
};
inline LineScan ScanLine(const char* p, size_t pos, size_t n, char sep) {
  size_t i = pos, seps = 0;
  bool quote = false;
#ifdef __SSE2__
  const __m128i nls = _mm_set1_epi8('\n'), sepv = _mm_set1_epi8(sep), quotes = _mm_set1_epi8('"');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    unsigned nl = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nls)));
    unsigned sp = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, sepv)));
    unsigned q = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quotes)));
    if (nl) {
      unsigned before = (nl & (0u - nl)) - 1;  // the bits below the first newline
      return {i + static_cast<size_t>(__builtin_ctz(nl)), seps + Popcount(sp & before), quote || (q & before)};
    }
    seps += Popcount(sp);
    quote = quote || q;
  }
#endif
  for (; i < n && p[i] != '\n'; i++) {
    seps += p[i] == sep;
    quote = quote || p[i] == '"';
  }
  return {i, seps, quote};
}

uint64_t CountNewlines(const char* p, size_t n) {
  uint64_t count = 0;
  size_t i = 0;
#ifdef __SSE2__
  // Per byte lane, up to 255 matches summed in 8 bits, then added up.
  const __m128i nls = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
  while (i + 16 <= n) {
    __m128i acc = zero;
    for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
      acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), nls));
    }
    __m128i sums = _mm_sad_epu8(acc, zero);
    count += static_cast<uint64_t>(_mm_cvtsi128_si64(sums)) +
             static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)));
  }
#endif
  for (; i < n; i++) count += p[i] == '\n';
  return count;
}

// How many bytes at the start of `a` and `b` (each `n` long at least) are equal.
size_t EqualPrefix(const char* a, const char* b, size_t n) {
  size_t i = 0;
  // Whole blocks by memcmp (vectorized in libc), then the differing block
  // word by word.
  constexpr size_t kBlock = 256;
  while (i + kBlock <= n && std::memcmp(a + i, b + i, kBlock) == 0) i += kBlock;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y) break;
  }
  while (i < n && a[i] == b[i]) i++;
  return i;
}

}  // namespace

Status Table::Error(uint64_t line, const std::string& what) const {
  return Status::InvalidArgument("not a " + std::string(TableFormatName(format_)) + " table: " + version_ + " line " +
                                 std::to_string(line) + ": " + what);
}

Result<Table> Table::Parse(std::string_view bytes, TableFormat format, std::string_view version, const Table* like) {
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
  // JSONL rows also name the columns in order of first appearance, which
  // rows taken from another version would not tell: parsed whole.
  if (like && (like->format_ != format || format == TableFormat::kJsonl)) like = nullptr;
  TUSK_RETURN_IF_ERROR(format == TableFormat::kJsonl ? t.ParseJsonl() : t.ParseCsv(like));
  return t;
}

// One record starting at `pos` (on line `line`): validates its quoting and
// finds where its text and its line ending end. The fields' raw spans go
// to `fields` when given (the header); else only counted.
struct RecordScan {
  size_t text_end = 0, end = 0, fields = 0;
  uint64_t newlines = 0;  // inside quoted fields
};

Status Table::ParseCsv(const Table* like) {
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
  // Rows are only taken from `like` when they are records of it with the
  // same number of fields: the same bytes then pass the same checks.
  if (like && like->columns_.size() != want) like = nullptr;
  like_ = like;
  if (like) {
    // Most rows are like's: as many as it has, and any more one at a time.
    row_end_.reserve(like->row_count() + 1024);
  } else {
    // Sized once: growing by doubling would copy and touch twice the memory.
    row_end_.reserve(CountNewlines(p + pos, n - pos) + 1);
  }
  size_t j = 0;       // with `like`: its row that ours' next row probably is
  size_t misses = 0;  // rows in a row not found in `like`
  constexpr size_t kLookAhead = 8;
  while (pos < n) {
    if (like && (misses < 64 || misses % 64 == 0)) {
      if (size_t taken = TakeSameRows(*like, pos, j, &line)) {
        pos = row_end_.back();
        j += taken;
        misses = 0;
        continue;
      }
      // Not like's row j: maybe rows of `like` were deleted here.
      size_t d = 1;
      while (d <= kLookAhead && j + d < like->row_count() && !RowAt(*like, j + d, pos)) d++;
      if (d <= kLookAhead && j + d < like->row_count()) {
        j += d;
        continue;
      }
    }
    // A line without quotes is a whole record; count separators.
    LineScan ls = ScanLine(p, pos, n, sep_);
    if (!ls.quote) {
      bool nl = ls.end < n;
      r.fields = ls.seps + 1;
      r.newlines = 0;
      r.end = nl ? ls.end + 1 : n;
      r.text_end = (nl && ls.end > pos && p[ls.end - 1] == '\r') ? ls.end - 1 : ls.end;
    } else {
      TUSK_RETURN_IF_ERROR(scan(pos, line, &r, nullptr));
    }
    if (r.fields != want) {
      return Error(line, "row has " + std::to_string(r.fields) + " fields, the header " + std::to_string(want));
    }
    if (r.end - r.text_end == 2) crlf_rows_++;
    if (r.newlines) multiline_.emplace_back(row_end_.size(), ExtraLines() + r.newlines);
    row_end_.push_back(r.end);
    misses++;
    line += 1 + r.newlines;
    pos = r.end;
  }
  return Status::Ok();
}

bool Table::RowAt(const Table& like, size_t j, size_t pos) const {
  std::string_view row = like.RowBytes(j);
  if (row.size() > bytes_.size() - pos || std::memcmp(row.data(), bytes_.data() + pos, row.size()) != 0) return false;
  // A last row without a line ending is a record only where the input ends.
  return row.ends_with('\n') || pos + row.size() == bytes_.size();
}

size_t Table::TakeSameRows(const Table& like, size_t pos, size_t j, uint64_t* line) {
  const size_t rows = like.row_count();
  if (j >= rows) return 0;
  const size_t like_pos = like.RowBegin(j);
  const size_t same = EqualPrefix(bytes_.data() + pos, like.bytes_.data() + like_pos,
                                  std::min(bytes_.size() - pos, like.bytes_.size() - like_pos));
  // like's rows j..k-1 lie wholly inside the equal bytes.
  size_t k = std::upper_bound(like.row_end_.begin() + j, like.row_end_.end(), like_pos + same) - like.row_end_.begin();
  if (k > j && !RowAt(like, k - 1, pos + (like.RowBegin(k - 1) - like_pos))) k--;  // only a last row can fail
  if (k == j) return 0;
  const uint64_t shift = pos - like_pos;  // modulo 2^64: ours' offsets may be smaller
  const size_t first_row = row_end_.size();
  row_end_.insert(row_end_.end(), like.row_end_.begin() + j, like.row_end_.begin() + k);
  for (size_t i = first_row; i < row_end_.size(); i++) row_end_[i] += shift;
  if (!same_rows_.empty() && same_rows_.back().row + same_rows_.back().count == first_row &&
      same_rows_.back().like_row + same_rows_.back().count == j) {
    same_rows_.back().count += k - j;
  } else {
    same_rows_.push_back({first_row, j, k - j});
  }
  if (like.crlf_rows_ == like.row_count()) {
    crlf_rows_ += k - j;
  } else if (like.crlf_rows_ > 0) {
    for (size_t i = j; i < k; i++) crlf_rows_ += like.RowEol(i).size() == 2;
  }
  // like's rows with quoted newlines among them: their newlines, at ours' rows.
  uint64_t newlines = 0;
  auto m = std::lower_bound(like.multiline_.begin(), like.multiline_.end(), j,
                            [](const std::pair<size_t, uint64_t>& e, size_t r) { return e.first < r; });
  uint64_t before = m == like.multiline_.begin() ? 0 : std::prev(m)->second;
  for (; m != like.multiline_.end() && m->first < k; ++m) {
    uint64_t in_row = m->second - before;
    before = m->second;
    newlines += in_row;
    multiline_.emplace_back(first_row + (m->first - j), ExtraLines() + in_row);
  }
  *line += (k - j) + newlines;
  return k - j;
}

uint32_t Table::SameAs(size_t row, size_t* hint) const {
  const size_t n = same_rows_.size();
  size_t i = *hint;
  auto starts_after = [&](size_t k) { return k >= n || same_rows_[k].row > row; };
  if (i >= n || same_rows_[i].row > row || (!starts_after(i + 1) && !starts_after(i + 2))) {
    // Not at or just before the run holding `row`: the last run starting at or before it.
    i = std::upper_bound(same_rows_.begin(), same_rows_.end(), row,
                         [](size_t r, const SameRows& s) { return r < s.row; }) -
        same_rows_.begin();
    if (i == 0) return kNoRow;
    i--;
  } else if (!starts_after(i + 1)) {
    i++;
  }
  *hint = i;
  const SameRows& s = same_rows_[i];
  return row < s.row + s.count ? static_cast<uint32_t>(s.like_row + (row - s.row)) : kNoRow;
}

int Table::ColumnIndex(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); i++) {
    if (columns_[i] == name) return static_cast<int>(i);
  }
  return -1;
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
