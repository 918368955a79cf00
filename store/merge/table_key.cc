// Row keys: choosing the key (declared, detected or none) and indexing
// every row of a version by it.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "store/merge/table_internal.h"

namespace tusk {

std::string KeyChoice::Describe() const {
  if (columns.empty()) {
    return reason.empty() ? "no key: rows compared whole" : "no key: rows compared whole (" + reason + ")";
  }
  std::string s = "key ";
  if (columns.size() == 1) {
    s += columns[0];
  } else {
    s += "(";
    for (size_t i = 0; i < columns.size(); i++) s += (i ? ", " : "") + columns[i];
    s += ")";
  }
  if (declared) s += " (declared)";
  if (!reason.empty()) s += " (" + reason + ")";
  return s;
}

namespace table {

namespace {

// Parts of a built key: a 4-byte length before each, so no two different
// lists of parts make the same bytes.
void AppendPart(std::string_view part, std::string* key) {
  uint32_t len = static_cast<uint32_t>(part.size());
  key->append(reinterpret_cast<const char*>(&len), sizeof len);
  key->append(part);
}

bool LooksLikeIdentifier(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* const kNames[] = {"id", "key", "uuid", "name", "file", "filename", "path", "image"};
  for (const char* k : kNames) {
    if (lower == k) return true;
  }
  return lower.size() > 3 && lower.ends_with("_id");
}

// A JSON value for people: strings without their quotes.
std::string Unquoted(const Cell& cell) {
  if (!cell.text.starts_with('"')) return cell.out;
  auto v = nlohmann::json::parse(cell.out, nullptr, false);
  return v.is_string() ? v.get<std::string>() : cell.out;
}

}  // namespace

uint32_t HashKey(std::string_view key) {
  // Eight bytes at a time, each mixed in with a multiply, then a final
  // avalanche (MurmurHash3's): keys are short (ids, names, paths) and a
  // merge hashes one per base row. Nothing stores these values.
  constexpr uint64_t kMul = 0xff51afd7ed558ccdULL;
  const char* p = key.data();
  size_t n = key.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
  }
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return static_cast<uint32_t>(h);
}

bool KeyIndex::Build(const Table& t, const KeyPlan& plan, const std::vector<std::string>& identity_columns, bool lookup,
                     std::string* why) {
  t_ = &t;
  names_ = plan.columns;
  keyless_ = names_.empty();
  key_cols_.clear();
  owned_.clear();
  for (const auto& name : names_) {
    int c = t.ColumnIndex(name);
    if (c < 0) {
      *why = "column " + name + " is missing in " + std::string(t.version());
      return false;
    }
    key_cols_.push_back(c);
  }
  const size_t rows = t.row_count();
  if (keyless_ || t.format() == TableFormat::kJsonl) {
    // Keys made of decoded cells are built once per row and kept.
    std::vector<int> identity;
    for (const auto& name : identity_columns) identity.push_back(t.ColumnIndex(name));
    const std::vector<int>& parts = keyless_ ? identity : key_cols_;
    std::unordered_map<std::string, uint32_t> seen;  // keyless: occurrences of each content
    std::vector<Cell> cells;
    owned_.resize(rows);
    for (size_t r = 0; r < rows; r++) {
      t.DecodeRow(r, &cells);
      std::string& key = owned_[r];
      for (size_t i = 0; i < parts.size(); i++) {
        int c = parts[i];
        if (c < 0 || !cells[c].present) {
          if (!keyless_) {
            *why = "line " + std::to_string(t.RowLine(r)) + " of " + std::string(t.version()) + " has no " + names_[i];
            return false;
          }
          key.push_back('\0');  // absent, unlike any present value
          continue;
        }
        key.push_back('\1');
        AppendPart(cells[c].text, &key);
      }
      if (keyless_) {
        // Repeated content: the n-th copy matches the n-th copy in another
        // version, which makes a keyless table a multiset of rows.
        uint32_t n = seen[key]++;
        if (n) AppendPart(std::to_string(n), &key);
      }
    }
  }
  rows_ = rows;
  if (!lookup) return true;
  size_t slots = 16;
  while (slots < rows * 2) slots *= 2;
  slots_.assign(slots, 0);
  // In batches whose slots are prefetched first: a large index is mostly
  // cache misses, and this lets them overlap.
  constexpr size_t kBatch = 16;
  uint32_t hashes[kBatch];
  std::string_view keys[kBatch];
  std::string scratch[kBatch];  // keys built per row (composite) live here meanwhile
  for (size_t start = 0; start < rows; start += kBatch) {
    size_t end = std::min(rows, start + kBatch);
    for (size_t r = start; r < end; r++) {
      keys[r - start] = Key(r, &scratch[r - start]);
      hashes[r - start] = HashKey(keys[r - start]);
      __builtin_prefetch(&slots_[hashes[r - start] & (slots - 1)]);
    }
    for (size_t r = start; r < end; r++) {
      if (!Insert(static_cast<uint32_t>(r), keys[r - start], hashes[r - start], why)) return false;
    }
  }
  return true;
}

std::string_view KeyIndex::Key(size_t row, std::string* scratch) const {
  if (!owned_.empty()) return owned_[row];
  if (key_cols_.size() == 1) return t_->Field(row, key_cols_[0], scratch);
  scratch->clear();
  std::string field_scratch;
  for (int c : key_cols_) {
    scratch->push_back('\1');
    AppendPart(t_->Field(row, c, &field_scratch), scratch);
  }
  return *scratch;
}

bool KeyIndex::Insert(uint32_t row, std::string_view key, uint32_t h, std::string* why) {
  const uint64_t tag = uint64_t{h} << 32;
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == 0) {
      slots_[i] = tag | (row + 1);
      return true;
    }
    if ((slots_[i] & ~uint64_t{UINT32_MAX}) != tag) continue;
    uint32_t other = static_cast<uint32_t>(slots_[i]) - 1;
    if (Key(other, &probe_scratch_) == key) {
      *why = Repeats(row, other);
      return false;
    }
  }
}

std::string KeyIndex::Repeats(size_t row, size_t first) const {
  return (names_.size() == 1 ? "column " + names_[0] : "key (" + Display(row) + ")") + " repeats a value on line " +
         std::to_string(t_->RowLine(row)) + " of " + std::string(t_->version()) + " (first on line " +
         std::to_string(t_->RowLine(first)) + ")";
}

uint32_t KeyIndex::Find(std::string_view key, uint32_t hint) const {
  if (hint < rows_ && Key(hint, &probe_scratch_) == key) return hint;
  if (slots_.empty()) return kNone;
  const uint32_t h = HashKey(key);
  const uint64_t tag = uint64_t{h} << 32;
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == 0) return kNone;
    if ((slots_[i] & ~uint64_t{UINT32_MAX}) != tag) continue;
    uint32_t other = static_cast<uint32_t>(slots_[i]) - 1;
    if (Key(other, &probe_scratch_) == key) return other;
  }
}

std::string KeyIndex::Display(size_t row) const {
  if (keyless_) return Shorten(t_->RowText(row));
  std::string s, scratch;
  std::vector<Cell> cells;
  if (t_->format() == TableFormat::kJsonl) t_->DecodeRow(row, &cells);
  for (size_t i = 0; i < key_cols_.size(); i++) {
    if (i) s += ", ";
    s += names_[i] + "=";
    if (t_->format() == TableFormat::kJsonl) {
      s += Unquoted(cells[key_cols_[i]]);
    } else {
      s += t_->Field(row, key_cols_[i], &scratch);
    }
  }
  return s;
}

namespace {

// Columns whose content is a keyless row's identity: for CSV/TSV those
// every version has (so a column added on one side does not make every
// row of that side new), for JSONL every field.
std::vector<std::string> IdentityColumns(const std::vector<const Table*>& versions) {
  std::set<std::string> names(versions[0]->columns().begin(), versions[0]->columns().end());
  for (const Table* t : versions) {
    if (t->format() == TableFormat::kJsonl) {
      names.insert(t->columns().begin(), t->columns().end());
    } else {
      std::erase_if(names, [&](const std::string& n) { return t->ColumnIndex(n) < 0; });
    }
  }
  return {names.begin(), names.end()};
}

// Matches `side`'s rows to the base's; false on a repeated key.
bool MatchToBase(const KeyIndex& base, const KeyIndex& side, RowMatch* m, std::string* why) {
  m->to_base.assign(side.rows(), KeyIndex::kNone);
  m->from_base.assign(base.rows(), KeyIndex::kNone);
  std::unordered_map<std::string, uint32_t> fresh;  // keys the base lacks: few, so strings are fine
  std::string scratch;
  uint32_t next = 0;
  // A row parsed as a copy of a base row has that row's key, which is the
  // base's only row with it (the base's keys are unique): no key to build.
  const bool same_rows_same_key = side.SameBytesSameKey(base);
  size_t hint = 0;
  for (uint32_t s = 0; s < side.rows(); s++) {
    uint32_t b = same_rows_same_key ? side.table().SameAs(s, &hint) : Table::kNoRow;
    if (b == Table::kNoRow) {
      std::string_view key = side.Key(s, &scratch);
      b = base.Find(key, next);
      if (b == KeyIndex::kNone) {
        auto [it, inserted] = fresh.emplace(key, s);
        if (!inserted) return *why = side.Repeats(s, it->second), false;
        continue;
      }
    }
    if (m->from_base[b] != KeyIndex::kNone) return *why = side.Repeats(s, m->from_base[b]), false;
    m->from_base[b] = s;
    m->to_base[s] = b;
    next = b + 1;
  }
  return true;
}

bool BuildAll(const std::vector<const Table*>& versions, const KeyPlan& plan, std::vector<KeyIndex>* indexes,
              std::vector<RowMatch>* matches, std::string* why) {
  std::vector<std::string> identity = plan.columns.empty() ? IdentityColumns(versions) : std::vector<std::string>();
  indexes->assign(versions.size(), KeyIndex());
  matches->assign(versions.size(), RowMatch());
  for (size_t i = 0; i < versions.size(); i++) {
    if (!(*indexes)[i].Build(*versions[i], plan, identity, i == 0, why)) return false;
    if (i > 0 && !MatchToBase((*indexes)[0], (*indexes)[i], &(*matches)[i], why)) return false;
  }
  return true;
}

}  // namespace

Result<KeyChoice> ChooseKey(const std::vector<const Table*>& versions, const KeySpec& spec,
                            std::vector<KeyIndex>* indexes, std::vector<RowMatch>* matches) {
  KeyPlan plan;
  std::string why;
  if (spec && !spec->empty()) {
    plan.columns = *spec;
    plan.declared = true;
    if (!BuildAll(versions, plan, indexes, matches, &why)) {
      return Status::InvalidArgument("declared key does not hold: " + why);
    }
    return KeyChoice{plan.columns, true, ""};
  }
  // Detected: the first identifier-like column every version has, else the
  // first column; kept only if unique everywhere.
  auto everywhere = [&](const std::string& name) {
    return std::all_of(versions.begin(), versions.end(), [&](const Table* t) { return t->ColumnIndex(name) >= 0; });
  };
  const auto& columns = versions[0]->columns();
  std::string candidate, reason;
  for (const auto& c : columns) {
    if (LooksLikeIdentifier(c) && everywhere(c)) {
      candidate = c;
      break;
    }
  }
  if (candidate.empty() && !columns.empty() && everywhere(columns[0])) {
    candidate = columns[0];
    reason = "the first column; no column is named like an identifier";
  }
  if (!candidate.empty()) {
    plan.columns = {candidate};
    if (BuildAll(versions, plan, indexes, matches, &why)) return KeyChoice{plan.columns, false, reason};
    reason = why;
  } else {
    reason = columns.empty() ? "no columns" : "no column that every version has";
  }
  plan.columns.clear();
  if (!BuildAll(versions, plan, indexes, matches, &why)) return Status::InvalidArgument(why);  // keyless never repeats
  return KeyChoice{{}, false, reason};
}

}  // namespace table
}  // namespace tusk
