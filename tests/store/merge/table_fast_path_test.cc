// The fast path of diff and merge: ours' and theirs' rows taken from the
// base where their bytes are the base's (Table::Parse with `like`), keys
// not built for them, and runs of rows the same in all three versions
// written at once. It must change nothing: random tables, each edited in
// the ways that throw the walk along the base off (cell edits, inserts,
// deletes, moves, shuffles, repeated rows and keys, quoting with newlines,
// CRLF and LF mixed, a last line without one, broken rows, changed
// headers), parsed, diffed and merged with and without it. Fixed seeds; a
// failure names its seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "store/merge/table.h"
#include "store/merge/table_internal.h"

namespace tusk {
namespace {

using table::Table;

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
};

// A version as rows of cells and how each row is written.
struct Row {
  std::vector<std::string> cells;
  std::string eol = "\n";
  bool quote_all = false;  // quoted though it need not be: the bytes differ, the cells do not
};
struct Version {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::string header_eol = "\n";
  std::vector<std::pair<size_t, std::string>> raw;  // (before row i, a line written as is: a broken row)
};

std::string Field(const std::string& v, char sep, bool quote_all) {
  std::string s;
  if (quote_all) {
    s = "\"";
    for (char c : v) s += c == '"' ? std::string("\"\"") : std::string(1, c);
    return s + "\"";
  }
  table::AppendCsvField(v, sep, &s);
  return s;
}

std::string Bytes(const Version& v, char sep) {
  std::string s;
  for (size_t i = 0; i < v.columns.size(); i++) s += (i ? std::string(1, sep) : "") + v.columns[i];
  s += v.header_eol;
  for (size_t r = 0; r <= v.rows.size(); r++) {
    for (const auto& [at, line] : v.raw) {
      if (at == r) s += line;
    }
    if (r == v.rows.size()) break;
    const Row& row = v.rows[r];
    for (size_t i = 0; i < row.cells.size(); i++) {
      if (i) s += sep;
      s += Field(row.cells[i], sep, row.quote_all);
    }
    s += row.eol;
  }
  return s;
}

std::string Value(Gen& g) {
  static const char* const kWords[] = {"cat",        "dog",      "",     "a,b",  "a\tb", "say \"hi\"",
                                       "two\nlines", "cr\r\nlf", " sp ", "\xff", "0.5",  "x"};
  return kWords[g.Below(std::size(kWords))];
}

// Rows end in CRLF with this chance: a table's usual line ending (what new
// rows get) is the one most rows have.
double crlf_chance = 0.2;

Row MakeRow(Gen& g, size_t width, const std::string& id) {
  Row r;
  r.cells.push_back(id);
  while (r.cells.size() < width) r.cells.push_back(Value(g));
  r.eol = g.Chance(crlf_chance) ? "\r\n" : "\n";
  r.quote_all = g.Chance(0.1);
  return r;
}

std::string NewId(Gen& g) { return "n" + std::to_string(g.Below(g.Chance(0.5) ? 5 : 100000)); }

Version MakeBase(Gen& g) {
  Version v;
  v.columns = {"id", "label", "score"};
  const double kChances[] = {0, 0.2, 0.6, 1};
  crlf_chance = kChances[g.Below(4)];
  // Mostly small; sometimes long enough for the walk's give-up after many
  // misses and its block-wise compare.
  size_t n = g.Chance(0.1) ? 300 + g.Below(600) : g.Below(40);
  for (size_t i = 0; i < n; i++) v.rows.push_back(MakeRow(g, 3, std::to_string(i)));
  if (g.Chance(0.05) && !v.rows.empty()) v.rows[g.Below(v.rows.size())].cells[0] = v.rows[0].cells[0];  // keyless
  if (g.Chance(0.1)) v.header_eol = "\r\n";
  return v;
}

Version Edit(Gen& g, const Version& base) {
  Version v = base;
  const size_t edits = g.Chance(0.1) ? 0 : 1 + g.Below(g.Chance(0.5) ? 3 : 12);
  for (size_t k = 0; k < edits; k++) {
    const size_t n = v.rows.size(), at = n ? g.Below(n) : 0;
    switch (g.Below(10)) {
      case 0:
      case 1:
      case 2:  // a cell
        if (n) v.rows[at].cells[1 + g.Below(v.rows[at].cells.size() - 1)] = Value(g);
        break;
      case 3:  // a new row, sometimes under a key the table has
        v.rows.insert(v.rows.begin() + at,
                      MakeRow(g, v.columns.size(), n && g.Chance(0.2) ? v.rows[g.Below(n)].cells[0] : NewId(g)));
        break;
      case 4:  // rows deleted
        if (n) v.rows.erase(v.rows.begin() + at, v.rows.begin() + std::min(n, at + 1 + g.Below(12)));
        break;
      case 5:  // a row moved
        if (n > 1) {
          Row r = v.rows[at];
          v.rows.erase(v.rows.begin() + at);
          v.rows.insert(v.rows.begin() + g.Below(n), r);
        }
        break;
      case 6:  // a row's bytes repeated
        if (n) v.rows.insert(v.rows.begin() + g.Below(n + 1), v.rows[at]);
        break;
      case 7:  // a line ending or the quoting changed: same cells, other bytes
        if (n) {
          if (g.Chance(0.5)) {
            v.rows[at].eol = v.rows[at].eol == "\n" ? "\r\n" : "\n";
          } else {
            v.rows[at].quote_all = !v.rows[at].quote_all;
          }
        }
        break;
      case 8:  // the last line's ending
        if (n) v.rows.back().eol = v.rows.back().eol.empty() ? "\n" : "";
        break;
      case 9:  // rarer: shuffled, a broken row, a changed header
        switch (g.Below(5)) {
          case 0:
            std::shuffle(v.rows.begin(), v.rows.end(), g.rng());
            break;
          case 1:
            v.raw.emplace_back(g.Below(n + 1), g.Chance(0.5) ? "1,2\n" : "x,\"open\n");
            break;
          case 2:  // renamed: the same field count
            v.columns[1 + g.Below(2)] = g.Chance(0.5) ? "name" : "key";
            break;
          case 3:  // added
            v.columns.push_back("extra");
            for (auto& r : v.rows) r.cells.push_back(Value(g));
            break;
          case 4:
            v.header_eol = v.header_eol == "\n" ? "\r\n" : "\n";
            break;
        }
        break;
    }
  }
  // A last row without its line ending must stay last: one moved away from
  // the end would merge with the next line.
  for (size_t r = 0; r + 1 < v.rows.size(); r++) {
    if (v.rows[r].eol.empty()) v.rows[r].eol = "\n";
  }
  return v;
}

// Parsing with `like` finds exactly the rows a plain parse does, and the
// rows it names as like's have like's bytes.
void ExpectSameParse(std::string_view bytes, TableFormat f, const Table& like, const std::string& trace) {
  auto plain = Table::Parse(bytes, f, "ours");
  auto fast = Table::Parse(bytes, f, "ours", &like);
  ASSERT_EQ(plain.ok(), fast.ok()) << trace;
  if (!plain.ok()) {
    EXPECT_EQ(plain.status().message(), fast.status().message()) << trace;
    return;
  }
  ASSERT_EQ(plain->row_count(), fast->row_count()) << trace;
  EXPECT_EQ(plain->columns(), fast->columns()) << trace;
  EXPECT_EQ(plain->newline(), fast->newline()) << trace;
  size_t plain_hint = 0, hint = 0;
  for (size_t r = 0; r < plain->row_count(); r++) {
    ASSERT_EQ(plain->RowBytes(r), fast->RowBytes(r)) << "row " << r << trace;
    ASSERT_EQ(plain->RowLine(r), fast->RowLine(r)) << "row " << r << trace;
    EXPECT_EQ(plain->SameAs(r, &plain_hint), Table::kNoRow);
    uint32_t same = fast->SameAs(r, &hint);
    if (same != Table::kNoRow) {
      ASSERT_EQ(fast->RowBytes(r), like.RowBytes(same)) << "row " << r << trace;
    }
  }
}

std::string Describe(const TableConflict& c) {
  return std::string(TableConflictKindName(c.kind)) + "|" + c.key + "|" + c.column + "|" + c.base + "|" + c.ours + "|" +
         c.theirs + "|" + std::to_string(c.base_present) + std::to_string(c.ours_present) +
         std::to_string(c.theirs_present) + "|" + std::to_string(c.line);
}

void ExpectSameMerge(const Result<TableMergeResult>& plain, const Result<TableMergeResult>& fast,
                     const std::string& trace) {
  ASSERT_EQ(plain.ok(), fast.ok()) << trace;
  if (!plain.ok()) {
    EXPECT_EQ(plain.status().message(), fast.status().message()) << trace;
    return;
  }
  ASSERT_EQ(plain->merged, fast->merged) << trace;
  EXPECT_EQ(plain->clean, fast->clean) << trace;
  EXPECT_EQ(plain->key.Describe(), fast->key.Describe()) << trace;
  ASSERT_EQ(plain->conflicts.size(), fast->conflicts.size()) << trace;
  for (size_t i = 0; i < plain->conflicts.size(); i++) {
    EXPECT_EQ(Describe(plain->conflicts[i]), Describe(fast->conflicts[i])) << trace;
  }
  EXPECT_EQ(plain->rows_from_ours, fast->rows_from_ours) << trace;
  EXPECT_EQ(plain->rows_from_theirs, fast->rows_from_theirs) << trace;
  EXPECT_EQ(plain->cells_merged, fast->cells_merged) << trace;
}

std::string DescribeDiff(const TableDiff& d) {
  std::string s = d.key.Describe() + (d.reordered ? " reordered" : "") + "\n";
  for (const auto& r : d.rows) {
    s += std::to_string(static_cast<int>(r.kind)) + " " + r.key + " " + std::to_string(r.old_line) + " " +
         std::to_string(r.new_line);
    for (const auto& c : r.cells) s += " " + c.column + ":" + c.old_value + ">" + c.new_value;
    s += "\n";
  }
  return s;
}

void RunOnce(uint32_t seed, int* merged_clean, int* long_tables) {
  Gen g(seed);
  const TableFormat f = g.Chance(0.8) ? TableFormat::kCsv : TableFormat::kTsv;
  const char sep = table::Separator(f);
  Version base = MakeBase(g);
  Version ours = Edit(g, base), theirs = Edit(g, base);
  const std::string b = Bytes(base, sep), o = Bytes(ours, sep), t = Bytes(theirs, sep);
  const std::string trace = "\nseed " + std::to_string(seed) + "\nbase:\n" + b + "ours:\n" + o + "theirs:\n" + t;
  *long_tables += base.rows.size() >= 300;
  auto pb = Table::Parse(b, f, "base");
  ASSERT_TRUE(pb.ok()) << pb.status().ToString() << trace;
  ExpectSameParse(o, f, *pb, trace);
  ExpectSameParse(t, f, *pb, trace);
  if (::testing::Test::HasFatalFailure()) return;
  const KeySpec key = g.Chance(0.2) ? KeySpec(std::vector<std::string>{"id"}) : std::nullopt;
  const TableFavor favor = g.Chance(0.8) ? TableFavor::kNone : g.Chance(0.5) ? TableFavor::kOurs : TableFavor::kTheirs;

  // The full algorithm: every version parsed on its own.
  auto po = Table::Parse(o, f, "ours"), pt = Table::Parse(t, f, "theirs");
  auto fast = MergeTables(b, o, t, f, key, favor);
  if (po.ok() && pt.ok()) {
    ExpectSameMerge(table::MergeParsed(*pb, *po, *pt, key, favor), fast, trace);
  } else {
    EXPECT_FALSE(fast.ok()) << trace;
  }
  auto old_version = Table::Parse(b, f, "old"), new_version = Table::Parse(o, f, "new");
  auto diff_fast = DiffTables(b, o, f, key);
  if (new_version.ok()) {
    auto diff_plain = table::DiffParsed(*old_version, *new_version, key);
    ASSERT_EQ(diff_plain.ok(), diff_fast.ok()) << trace;
    if (diff_plain.ok()) {
      EXPECT_EQ(DescribeDiff(*diff_plain), DescribeDiff(*diff_fast)) << trace;
    } else {
      EXPECT_EQ(diff_plain.status().message(), diff_fast.status().message()) << trace;
    }
  } else {
    ASSERT_FALSE(diff_fast.ok()) << trace;
    EXPECT_EQ(new_version.status().message(), diff_fast.status().message()) << trace;
  }
  *merged_clean += fast.ok() && fast->clean;
}

TEST(TableFastPath, ChangesNothing) {
  int merged_clean = 0, long_tables = 0;
  for (uint32_t seed = 1; seed <= 3000; seed++) {
    RunOnce(seed, &merged_clean, &long_tables);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // The campaign reaches clean merges and the long tables.
  EXPECT_GT(merged_clean, 300);
  EXPECT_GT(long_tables, 100);
}

// Rows with the base's bytes under a header that puts the key elsewhere
// have other keys: here ours' row "1,2" is the base's row "2,1".
TEST(TableFastPath, SameBytesUnderAnotherHeader) {
  const std::string base = "id,label\n1,2\n2,1\n3,3\n", ours = "label,id\n1,2\n2,1\n3,3\n",
                    theirs = "id,label\n1,2\n2,9\n3,3\n";
  auto b = Table::Parse(base, TableFormat::kCsv, "base");
  auto o = Table::Parse(ours, TableFormat::kCsv, "ours"), t = Table::Parse(theirs, TableFormat::kCsv, "theirs");
  ASSERT_TRUE(b.ok() && o.ok() && t.ok());
  auto plain = table::MergeParsed(*b, *o, *t, std::nullopt, TableFavor::kNone);
  auto fast = MergeTables(base, ours, theirs, TableFormat::kCsv, std::nullopt);
  ExpectSameMerge(plain, fast, "");
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(fast->merged, "label,id\n9,2\n2,1\n3,3\n");
  auto diff = DiffTables(base, ours, TableFormat::kCsv, std::nullopt);
  ASSERT_TRUE(diff.ok());
  EXPECT_TRUE(diff->rows.empty()) << DescribeDiff(*diff);
}

// The walk along the base: a large table edited here and there is taken
// almost whole from the base, and finds its way back after each edit.
TEST(TableFastPath, TakesUnchangedRowsFromTheBase) {
  std::string base = "id,label\n", ours = "id,label\n";
  for (int i = 0; i < 10000; i++) {
    std::string row = std::to_string(i) + ",l" + std::to_string(i % 7) + "\n";
    base += row;
    if (i % 1000 == 500) continue;                                    // deleted
    if (i % 1000 == 700) ours += "new" + std::to_string(i) + ",x\n";  // inserted before
    ours += i % 1000 == 900 ? std::to_string(i) + ",changed\n" : row;
  }
  auto b = Table::Parse(base, TableFormat::kCsv, "base");
  auto o = Table::Parse(ours, TableFormat::kCsv, "ours", &*b);
  ASSERT_TRUE(b.ok() && o.ok());
  size_t taken = 0, hint = 0;
  for (size_t r = 0; r < o->row_count(); r++) {
    uint32_t same = o->SameAs(r, &hint);
    if (same == Table::kNoRow) continue;
    taken++;
    EXPECT_EQ(o->RowBytes(r), b->RowBytes(same));
  }
  EXPECT_EQ(o->row_count(), 10000u);
  EXPECT_EQ(taken, 10000u - 10 - 10) << "every row but the 10 changed and the 10 inserted";
}

}  // namespace
}  // namespace tusk
