// The jsonl built-in: every line of a JSON Lines file is one JSON value.
// Files are read line by line (never whole), and each line is validated by
// nlohmann's SAX parser, which builds no document and keeps its nesting on
// the heap, so neither a large file nor a deeply nested line costs much.
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "store/checks/builtin_internal.h"
#include "store/merge/table.h"

namespace tusk::checks {

namespace {

using nlohmann::json;

// Accepts any value; keeps the parser's message on an error.
class Validator : public nlohmann::json_sax<json> {
 public:
  std::string error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    error = ex.what();
    return false;
  }
};

// The parser's message without what the output says already: its
// exception id and "line 1" (it only ever sees one line).
std::string Reason(std::string what) {
  constexpr std::string_view kLineOne = "parse error at line 1, ";
  size_t at = what.find(kLineOne);
  if (at != std::string::npos) what = what.substr(at + kLineOne.size());
  if (what.starts_with("[json.exception.")) what = what.substr(what.find(']') + 1);
  while (what.starts_with(' ')) what.erase(0, 1);
  constexpr size_t kMax = 200;
  if (what.size() > kMax) what = what.substr(0, kMax) + "...";
  return "invalid JSON: " + what;
}

bool IsBlank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

class JsonlFile {
 public:
  JsonlFile(const CheckContext& c, const TreeFile& file) : c_(c), file_(file) {}

  Status Run() {
    TUSK_RETURN_IF_ERROR(StreamFile(c_.repo, file_.entry, [this](std::string_view data) { return Take(data); }));
    // A last line without a line ending is a line too; a final line ending
    // does not start an empty one.
    if (!stopped_ && !pending_.empty()) Line(pending_);
    return Status::Ok();
  }

 private:
  bool Take(std::string_view data) {
    // Whole lines straight from `data`; only a line cut by the end of a
    // piece is copied.
    while (!data.empty() && !stopped_) {
      size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        if (pending_.size() + data.size() > c_.limits.max_record_bytes) return TooLong();
        pending_.append(data);
        return true;
      }
      if (pending_.empty()) {
        Line(data.substr(0, nl));
      } else {
        pending_.append(data.substr(0, nl));
        Line(pending_);
        pending_.clear();
      }
      data.remove_prefix(nl + 1);
    }
    return !stopped_;
  }

  bool TooLong() {
    c_.problems.Add(
        file_.path, line_,
        "a line longer than " + DescribeSize(c_.limits.max_record_bytes) + "; the rest of the file is not checked");
    stopped_ = true;
    return false;
  }

  void Line(std::string_view text) {
    // Judged alike however the file came in pieces.
    if (text.size() > c_.limits.max_record_bytes) {
      TooLong();
      return;
    }
    if (text.ends_with('\r')) text.remove_suffix(1);
    if (IsBlank(text)) {
      if (!c_.args.allow_blank) c_.problems.Add(file_.path, line_, "blank line");
    } else {
      Validator v;
      json::sax_parse(text.begin(), text.end(), &v, nlohmann::detail::input_format_t::json, true, false);
      if (!v.error.empty()) c_.problems.Add(file_.path, line_, Reason(v.error));
    }
    line_++;
  }

  const CheckContext& c_;
  const TreeFile& file_;
  std::string pending_;  // the start of a line cut by a piece's end
  uint64_t line_ = 1;
  bool stopped_ = false;
};

}  // namespace

Result<std::string> CheckJsonl(const CheckContext& c) {
  TUSK_ASSIGN_OR_RETURN(auto files, FilesToJudge(c.repo, c.root, c.args.glob, c.changed, c.all_paths));
  size_t count = 0;
  for (const auto& f : files) {
    if (TableFormatForPath(f.path) != TableFormat::kJsonl) {
      c.problems.Add(f.path, 0, "not a JSONL file (by its extension: .jsonl or .ndjson)");
      continue;
    }
    count++;
    TUSK_RETURN_IF_ERROR(JsonlFile(c, f).Run());
  }
  return Count(count, c.all_paths ? "JSONL file" : "changed JSONL file") + " checked";
}

}  // namespace tusk::checks
