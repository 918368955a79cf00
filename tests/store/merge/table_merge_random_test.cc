// MergeTables against a plain model: random base tables, two random edit
// scripts (cell edits, inserts, deletes, a reordering of one side, added
// columns), and the expected result computed with maps keyed by id and the
// rules applied one by one. Fixed seeds; a failure names its seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "store/merge/table.h"
#include "tests/store/merge/table_test_util.h"

namespace tusk {
namespace {

using Values = std::map<std::string, std::string>;  // column -> value; a missing column is absent

struct Row {
  std::string id;
  Values v;
  std::string text;  // as written in the file (without line ending)
};

struct Version {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::string Bytes() const {
    std::string s;
    for (size_t i = 0; i < columns.size(); i++) s += (i ? "," : "") + columns[i];
    s += "\n";
    for (const auto& r : rows) s += r.text + "\n";
    return s;
  }
  const Row* Find(const std::string& id) const {
    for (const auto& r : rows) {
      if (r.id == id) return &r;
    }
    return nullptr;
  }
};

std::string Minimal(const std::string& v) {
  std::string s;
  table::AppendCsvField(v, ',', &s);
  return s;
}

std::string Encode(const std::vector<std::string>& columns, const Values& v) {
  std::string s;
  for (size_t i = 0; i < columns.size(); i++) {
    if (i) s += ",";
    auto it = v.find(columns[i]);
    s += Minimal(it == v.end() ? "" : it->second);
  }
  return s;
}

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::string Label() {
    static const char* const kWords[] = {"cat",        "dog",  "emu", "a,b",     "say \"hi\"",
                                         "two\nlines", " sp ", "",    "\xff\xfe"};
    return kWords[Below(std::size(kWords))];
  }
  std::string Score() { return "0." + std::to_string(Below(20)); }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
};

Version MakeBase(Gen& g, size_t n) {
  Version b{{"id", "label", "score"}, {}};
  std::set<int> ids;
  while (ids.size() < n) ids.insert(static_cast<int>(1 + g.Below(100000)));
  std::vector<int> order(ids.begin(), ids.end());
  std::shuffle(order.begin(), order.end(), g.rng());
  for (int id : order) {
    Row r{std::to_string(id), {{"id", std::to_string(id)}, {"label", g.Label()}, {"score", g.Score()}}, ""};
    // Some cells quoted though they need not be: such bytes must survive.
    std::string label = Minimal(r.v["label"]);
    if (g.Chance(0.3) && label.front() != '"') label = "\"" + label + "\"";
    r.text = r.id + "," + label + "," + r.v["score"];
    b.rows.push_back(std::move(r));
  }
  return b;
}

struct Edits {
  bool reorder = false;
  std::string added_column;  // "" for none
};

// Applies a random edit script for side `s` (0 ours, 1 theirs). Edited rows
// are re-encoded minimally; untouched rows keep their bytes.
Version Edit(Gen& g, const Version& base, int s, const Edits& e, const std::vector<std::string>& hot) {
  Version v = base;
  auto edit_cell = [&](Row& r) {
    std::string col = g.Chance(0.5) ? "label" : "score";
    r.v[col] = g.Chance(0.5) ? g.Label() : (s ? "t" : "o") + std::to_string(g.Below(3));
    r.text = Encode(v.columns, r.v);
  };
  for (size_t k = 0, n = g.Below(6); k < n && !v.rows.empty(); k++) edit_cell(v.rows[g.Below(v.rows.size())]);
  for (const auto& id : hot) {  // rows both sides may touch: conflicts and agreements
    for (auto& r : v.rows) {
      if (r.id == id && g.Chance(0.5)) edit_cell(r);
    }
  }
  for (size_t k = 0, n = g.Below(4); k < n && !v.rows.empty(); k++)
    v.rows.erase(v.rows.begin() + g.Below(v.rows.size()));
  for (size_t k = 0, n = g.Below(4); k < n; k++) {
    // New ids: a side's own range, sometimes a range both sides insert into.
    bool shared = g.Chance(0.2);
    std::string id = std::to_string((shared ? 400000 : 200000 + 100000 * s) + g.Below(shared ? 3 : 1000));
    if (v.Find(id)) continue;
    Row r{id, {{"id", id}, {"label", shared ? "same" : g.Label()}, {"score", g.Score()}}, ""};
    if (shared && g.Chance(0.5)) r.v["score"] = "0.5";
    r.text = Encode(v.columns, r.v);
    v.rows.insert(v.rows.begin() + g.Below(v.rows.size() + 1), r);
  }
  if (e.reorder) {
    std::stable_sort(v.rows.begin(), v.rows.end(),
                     [](const Row& a, const Row& b) { return a.v.at("score") < b.v.at("score"); });
  }
  if (!e.added_column.empty()) {
    v.columns.push_back(e.added_column);
    for (auto& r : v.rows) {
      r.v[e.added_column] = "x" + std::to_string(g.Below(2));
      r.text += "," + Minimal(r.v[e.added_column]);
    }
  }
  return v;
}

struct Expected {
  std::set<std::tuple<TableConflict::Kind, std::string, std::string>> conflicts;  // kind, key, column
  std::vector<std::string> columns;
  std::vector<std::pair<std::string, Values>> rows;  // clean: in order
  std::set<std::string> untouched;                   // ids neither side changed
};

bool Reordered(const Version& base, const Version& side) {
  std::map<std::string, size_t> pos;
  for (size_t i = 0; i < base.rows.size(); i++) pos[base.rows[i].id] = i;
  std::optional<size_t> last;
  for (const auto& r : side.rows) {
    auto it = pos.find(r.id);
    if (it == pos.end()) continue;
    if (last && it->second < *last) return true;
    last = it->second;
  }
  return false;
}

std::optional<std::string> Get(const Values& v, const std::string& c) {
  auto it = v.find(c);
  return it == v.end() ? std::nullopt : std::optional<std::string>(it->second);
}

Expected Model(const Version& b, const Version& o, const Version& t) {
  Expected x;
  x.columns = o.columns;
  for (const auto& c : t.columns) {
    if (std::find(x.columns.begin(), x.columns.end(), c) == x.columns.end()) x.columns.push_back(c);
  }
  auto in = [](const std::vector<std::string>& cols, const std::string& c) {
    return std::find(cols.begin(), cols.end(), c) != cols.end();
  };
  std::map<std::string, std::optional<Values>> merged;  // nullopt: deleted
  std::set<std::string> ids;
  for (const Version* v : {&b, &o, &t}) {
    for (const auto& r : v->rows) ids.insert(r.id);
  }
  for (const auto& id : ids) {
    const Row *rb = b.Find(id), *ro = o.Find(id), *rt = t.Find(id);
    Values out;
    if (rb && ro && rt) {
      bool touched = false;
      for (const auto& c : x.columns) {
        auto vb = Get(rb->v, c), vo = Get(ro->v, c), vt = Get(rt->v, c);
        touched |=
            (in(o.columns, c) && in(b.columns, c) && vo != vb) || (in(t.columns, c) && in(b.columns, c) && vt != vb);
        std::optional<std::string> m;
        if (vo == vt) {
          m = vo;
        } else if (vo == vb) {
          m = vt;
        } else if (vt == vb) {
          m = vo;
        } else {
          x.conflicts.insert({TableConflict::Kind::kCell, "id=" + id, c});
        }
        out[c] = m.value_or("");
      }
      if (!touched) x.untouched.insert(id);
      merged[id] = out;
    } else if (rb && (ro || rt)) {
      const Version& kept = ro ? o : t;
      const Row* r = ro ? ro : rt;
      bool modified = false;
      for (const auto& c : b.columns) {
        if (in(kept.columns, c) && Get(r->v, c) != Get(rb->v, c)) modified = true;
      }
      if (modified) x.conflicts.insert({TableConflict::Kind::kDeleteModify, "id=" + id, ""});
      merged[id] = std::nullopt;
    } else if (!rb && ro && rt) {
      // A column one side does not have at all is no disagreement.
      bool clash = false;
      for (const auto& c : x.columns) {
        clash |= in(o.columns, c) && in(t.columns, c) && Get(ro->v, c) != Get(rt->v, c);
        out[c] = (in(o.columns, c) ? Get(ro->v, c) : Get(rt->v, c)).value_or("");
      }
      if (clash) x.conflicts.insert({TableConflict::Kind::kInsertInsert, "id=" + id, ""});
      merged[id] = out;
    } else if (!rb) {
      const Row* r = ro ? ro : rt;
      for (const auto& c : x.columns) out[c] = Get(r->v, c).value_or("");
      merged[id] = out;
    }
  }
  // Order: the primary side's rows, then each of the other side's rows
  // after the nearest row before it (on its side) that the primary has,
  // past the primary's own rows there.
  bool theirs_first = Reordered(b, t) && !Reordered(b, o);
  const Version &p = theirs_first ? t : o, &q = theirs_first ? o : t;
  std::vector<std::string> order;
  for (const auto& r : p.rows) order.push_back(r.id);
  auto in_q = [&](const std::string& id) { return q.Find(id) != nullptr; };
  std::string anchor;  // "" = top
  std::map<std::string, size_t> inserted_after;
  for (const auto& r : q.rows) {
    if (p.Find(r.id)) {
      anchor = r.id;
      continue;
    }
    size_t at = 0;
    if (!anchor.empty()) at = std::find(order.begin(), order.end(), anchor) - order.begin() + 1;
    while (at < order.size() && !in_q(order[at])) at++;  // past the primary's own rows
    at += inserted_after[anchor];                        // after the other side's rows placed here before
    inserted_after[anchor]++;
    order.insert(order.begin() + std::min(at, order.size()), r.id);
  }
  for (const auto& id : order) {
    if (merged.count(id) && merged[id]) x.rows.emplace_back(id, *merged[id]);
  }
  return x;
}

struct Tally {
  int clean = 0, conflicting = 0, reordered = 0, columns_added = 0;
};

void RunOnce(uint32_t seed, Tally* tally) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Gen g(seed);
  Version base = MakeBase(g, 5 + g.Below(40));
  std::vector<std::string> hot;
  for (size_t k = 0; k < 2 && !base.rows.empty(); k++) hot.push_back(base.rows[g.Below(base.rows.size())].id);
  Edits eo, et;
  int reorderer = static_cast<int>(g.Below(4));  // 0 ours, 1 theirs, 2 both, 3 neither
  eo.reorder = reorderer == 0 || reorderer == 2;
  et.reorder = reorderer == 1 || reorderer == 2;
  if (g.Chance(0.2)) eo.added_column = g.Chance(0.5) ? "extra" : "extra_o";
  if (g.Chance(0.2)) et.added_column = g.Chance(0.5) ? "extra" : "extra_t";
  Version ours = Edit(g, base, 0, eo, hot), theirs = Edit(g, base, 1, et, hot);
  std::string bb = base.Bytes(), ob = ours.Bytes(), tb = theirs.Bytes();
  auto m = MergeTables(bb, ob, tb, TableFormat::kCsv, std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->key.columns, (std::vector<std::string>{"id"}));
  Expected x = Model(base, ours, theirs);
  std::set<std::tuple<TableConflict::Kind, std::string, std::string>> got;
  for (const auto& c : m->conflicts) got.insert({c.kind, c.key, c.column});
  ASSERT_EQ(got, x.conflicts) << "base:\n" << bb << "ours:\n" << ob << "theirs:\n" << tb << "merged:\n" << m->merged;
  EXPECT_EQ(m->clean, x.conflicts.empty());
  (m->clean ? tally->clean : tally->conflicting)++;
  tally->reordered += eo.reorder || et.reorder;
  tally->columns_added += !eo.added_column.empty() || !et.added_column.empty();
  auto rows = testing_table::Decode(m->merged);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], x.columns) << "the output keeps the merged columns, conflicts or not";
  if (!m->clean) return;
  ASSERT_EQ(rows.size(), x.rows.size() + 1) << m->merged;
  auto out = table::Table::Parse(m->merged, TableFormat::kCsv, "merged");
  ASSERT_TRUE(out.ok());
  for (size_t i = 0; i < x.rows.size(); i++) {
    const auto& [id, values] = x.rows[i];
    std::vector<std::string> want;
    for (const auto& c : x.columns) want.push_back(values.at(c));
    ASSERT_EQ(rows[i + 1], want) << "row " << i << "\nbase:\n"
                                 << bb << "ours:\n"
                                 << ob << "theirs:\n"
                                 << tb << "merged:\n"
                                 << m->merged;
    if (x.untouched.count(id)) {
      // Untouched rows keep ours' bytes, plus any cell of a column only theirs added.
      std::string text(ours.Find(id)->text);
      for (size_t c = ours.columns.size(); c < x.columns.size(); c++) text += "," + Minimal(values.at(x.columns[c]));
      EXPECT_EQ(out->RowText(i), text) << "row " << i;
    }
  }
}

TEST(TableMergeRandom, AgreesWithAPlainModel) {
  Tally tally;
  for (uint32_t seed = 1; seed <= 1500; seed++) {
    RunOnce(seed, &tally);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // The campaign covers both outcomes and the edits that change order and columns.
  EXPECT_GT(tally.clean, 300);
  EXPECT_GT(tally.conflicting, 300);
  EXPECT_GT(tally.reordered, 300);
  EXPECT_GT(tally.columns_added, 300);
  std::printf("clean %d, conflicting %d, reordered %d, columns added %d\n", tally.clean, tally.conflicting,
              tally.reordered, tally.columns_added);
}

}  // namespace
}  // namespace tusk
