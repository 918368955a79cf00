// The small public pieces of the table library: formats by path, names,
// the conflict notation and its detection, and the encoders shared by diff
// and merge.
#include "store/merge/table.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "store/merge/table_internal.h"

namespace tusk {

std::optional<TableFormat> TableFormatForPath(std::string_view path) {
  size_t dot = path.rfind('.');
  if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) return std::nullopt;
  std::string ext(path.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "csv") return TableFormat::kCsv;
  if (ext == "tsv" || ext == "tab") return TableFormat::kTsv;
  if (ext == "jsonl" || ext == "ndjson") return TableFormat::kJsonl;
  return std::nullopt;
}

const char* TableFormatName(TableFormat format) {
  switch (format) {
    case TableFormat::kCsv:
      return "CSV";
    case TableFormat::kTsv:
      return "TSV";
    case TableFormat::kJsonl:
      return "JSONL";
  }
  return "?";
}

const char* TableConflictKindName(TableConflict::Kind kind) {
  switch (kind) {
    case TableConflict::Kind::kCell:
      return "cell";
    case TableConflict::Kind::kDeleteModify:
      return "delete/modify";
    case TableConflict::Kind::kInsertInsert:
      return "insert/insert";
    case TableConflict::Kind::kSchema:
      return "schema";
  }
  return "?";
}

namespace {

// A line merge's markers, each at the start of a line (git writes
// "=======" alone on its line; a trailing CR is a CRLF file's).
bool IsLineMarker(std::string_view line) {
  return line.starts_with("<<<<<<< ") || line.starts_with(">>>>>>> ") || line == "=======" ||
         line.starts_with("======= ") || line == "=======\r";
}

// Calls `found(line_number)` for each line holding a notation or marker;
// stops when it returns false.
template <typename F>
void ScanNotation(std::string_view bytes, F found) {
  uint64_t number = 1;
  for (size_t pos = 0; pos < bytes.size(); number++) {
    size_t nl = bytes.find('\n', pos);
    std::string_view line = bytes.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if ((IsLineMarker(line) || line.find(kCellConflictOpen) != std::string_view::npos) && !found(number)) return;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
}

}  // namespace

bool HasConflictNotation(std::string_view bytes) {
  if (bytes.find(kCellConflictOpen) != std::string_view::npos) return true;
  bool any = false;
  ScanNotation(bytes, [&](uint64_t) { return !(any = true); });
  return any;
}

std::vector<uint64_t> ConflictNotationLines(std::string_view bytes) {
  std::vector<uint64_t> lines;
  ScanNotation(bytes, [&](uint64_t line) {
    lines.push_back(line);
    return true;
  });
  return lines;
}

namespace table {

char Separator(TableFormat format) { return format == TableFormat::kTsv ? '\t' : ','; }

void AppendCsvField(std::string_view text, char sep, std::string* out) {
  bool quote = false;
  for (char c : text) {
    if (c == sep || c == '"' || c == '\n' || c == '\r') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out->append(text);
    return;
  }
  out->push_back('"');
  for (char c : text) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string JsonString(std::string_view text) {
  // `replace`: a value's text is valid UTF-8 already (the parser checked),
  // but a dump must never throw.
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

void AppendSide(std::string_view label, NotationSide side, std::string* out) {
  out->append(label);
  if (!side.cell || !side.cell->present) {
    out->append(side.absent_word);
  } else {
    out->append(side.cell->out);
  }
}

}  // namespace

std::string Notation(NotationSide ours, NotationSide base, NotationSide theirs) {
  std::string s;
  AppendSide(kCellConflictOpen, ours, &s);
  AppendSide(" ||||||| base: ", base, &s);
  AppendSide(" ======= theirs: ", theirs, &s);
  s.append(kCellConflictClose);
  return s;
}

std::string Shorten(std::string_view text) {
  constexpr size_t kMax = 60;
  if (text.size() <= kMax) return std::string(text);
  size_t cut = kMax;
  // Back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) cut--;
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace table
}  // namespace tusk
