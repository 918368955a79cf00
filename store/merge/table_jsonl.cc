// JSONL: one JSON object per line, its top-level fields the columns.
// Lines are validated with a SAX pass (no document is built for rows that
// are never compared); a row's cells are parsed only when it is decoded.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "store/merge/table_internal.h"

namespace tusk::table {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// Deeper values are refused: the dump and the canonical form recurse.
constexpr size_t kMaxDepth = 512;

// Checks that a line is one JSON object and collects its top-level keys.
class LineCheck : public nlohmann::json_sax<json> {
 public:
  enum class Fault { kNone, kNotObject, kTooDeep, kSyntax };
  std::vector<std::string> keys;
  Fault fault = Fault::kNone;
  std::string detail;

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Open(); }
  bool key(string_t& k) override {
    if (depth_ == 1) keys.push_back(k);
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return depth_ == 0 ? NotObject() : Open(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    if (fault == Fault::kNone) {
      fault = Fault::kSyntax;
      detail = ex.what();
    }
    return false;
  }

 private:
  bool Value() { return depth_ == 0 ? NotObject() : true; }
  bool NotObject() {
    fault = Fault::kNotObject;
    return false;
  }
  bool Open() {
    if (++depth_ > kMaxDepth) {
      fault = Fault::kTooDeep;
      return false;
    }
    return true;
  }
  bool Close() {
    depth_--;
    return true;
  }
  size_t depth_ = 0;
};

// Equality of JSON values as values: object key order ignored (json keeps
// keys sorted) and a number equal to an integer written as one (1.0 == 1).
json Canonical(const ordered_json& v) {
  switch (v.type()) {
    case ordered_json::value_t::object: {
      json o = json::object();
      for (const auto& [k, x] : v.items()) o[k] = Canonical(x);
      return o;
    }
    case ordered_json::value_t::array: {
      json a = json::array();
      for (const auto& x : v) a.push_back(Canonical(x));
      return a;
    }
    case ordered_json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2e18) return json(static_cast<int64_t>(d));
      return json(d);
    }
    case ordered_json::value_t::number_unsigned: {
      uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return json(static_cast<int64_t>(u));
      return json(u);
    }
    case ordered_json::value_t::number_integer:
      return json(v.get<int64_t>());
    case ordered_json::value_t::boolean:
      return json(v.get<bool>());
    case ordered_json::value_t::string:
      return json(v.get_ref<const std::string&>());
    default:
      return json(nullptr);
  }
}

template <typename J>
std::string Compact(const J& v) {
  return v.dump(-1, ' ', false, J::error_handler_t::replace);
}

}  // namespace

Status Table::ParseJsonl() {
  const char* p = bytes_.data();
  const size_t n = bytes_.size();
  std::unordered_set<std::string> seen;
  size_t pos = data_begin_;
  uint64_t line = 1;
  first_row_line_ = 1;
  row_end_.reserve(std::count(bytes_.begin() + pos, bytes_.end(), '\n') + 1);
  while (pos < n) {
    const void* nl = std::memchr(p + pos, '\n', n - pos);
    size_t line_end = nl ? static_cast<const char*>(nl) - p : n;
    size_t text_end = (nl && line_end > pos && p[line_end - 1] == '\r') ? line_end - 1 : line_end;
    LineCheck check;
    std::string_view text(p + pos, text_end - pos);
    bool ok = json::sax_parse(text.begin(), text.end(), &check, nlohmann::detail::input_format_t::json, true, false);
    if (!ok || check.fault != LineCheck::Fault::kNone) {
      switch (check.fault) {
        case LineCheck::Fault::kNotObject:
          return Error(line, "not a JSON object");
        case LineCheck::Fault::kTooDeep:
          return Error(line, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
        default:
          return Error(line, "not valid JSON (" + check.detail + ")");
      }
    }
    for (auto& k : check.keys) {
      if (seen.insert(k).second) columns_.push_back(std::move(k));
    }
    if (text_end < line_end) crlf_rows_++;
    pos = nl ? line_end + 1 : n;
    row_end_.push_back(pos);
    line++;
  }
  return Status::Ok();
}

void Table::DecodeJsonlRow(size_t row, std::vector<Cell>* cells) const {
  cells->assign(columns_.size(), Cell());
  ordered_json v = ordered_json::parse(RowText(row), nullptr, false);
  if (!v.is_object()) return;  // validated by ParseJsonl; never here
  for (const auto& [k, x] : v.items()) {
    int c = ColumnIndex(k);
    if (c < 0) continue;
    Cell& cell = (*cells)[c];
    cell.present = true;
    cell.text = Compact(Canonical(x));
    cell.out = Compact(x);
  }
}

}  // namespace tusk::table
