#include "store/settings/settings.h"

#include <algorithm>
#include <ctime>

#include "store/internal/varint.h"

namespace tusk {
namespace {

// 1: table rules of pattern and key; 2 (store format 5): and a format, and
// a key that may be left to detection.
constexpr uint8_t kSettingsFormat = 2;
constexpr uint8_t kCheckCommand = 1, kCheckBuiltin = 2;

void EncodeCheckBody(Encoder& e, const CheckDefinition& c) {
  bool builtin = !c.builtin.empty();
  e.PutU8(builtin ? kCheckBuiltin : kCheckCommand);
  const auto& words = builtin ? c.args : c.command;
  if (builtin) e.PutString(c.builtin);
  e.PutVarint(words.size());
  for (const auto& w : words) e.PutString(w);
  e.PutVarint(c.timeout_sec);
}

std::string Quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                           std::string::npos)
    return word;
  std::string out = "'";
  for (char ch : word) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// Matches path components; `**` spans any number of them.
bool MatchComponents(const std::vector<std::string_view>& pat, size_t i, const std::vector<std::string_view>& path,
                     size_t j);

bool MatchComponent(std::string_view pat, std::string_view s) {
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[i])) {
      p++;
      i++;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') p++;
  return p == pat.size();
}

bool MatchComponents(const std::vector<std::string_view>& pat, size_t i, const std::vector<std::string_view>& path,
                     size_t j) {
  if (i == pat.size()) return j == path.size();
  if (pat[i] == "**") {
    for (size_t k = j; k <= path.size(); k++)
      if (MatchComponents(pat, i + 1, path, k)) return true;
    return false;
  }
  return j < path.size() && MatchComponent(pat[i], path[j]) && MatchComponents(pat, i + 1, path, j + 1);
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) slash = s.size();
    if (slash > start) out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

}  // namespace

ObjectId CheckDefinition::Digest() const {
  Encoder e;
  EncodeCheckBody(e, *this);
  std::string body = e.Take();
  return Sha256::Of(body.data(), body.size());
}

std::string CheckDefinition::Describe() const {
  std::string out = builtin.empty() ? "--" : "--builtin " + Quote(builtin);
  for (const auto& w : builtin.empty() ? command : args) out += " " + Quote(w);
  return out;
}

const CheckDefinition* DatasetSettings::FindCheck(std::string_view name) const {
  for (const auto& c : checks)
    if (c.name == name) return &c;
  return nullptr;
}

std::string EncodeSettings(const DatasetSettings& s) {
  Encoder e;
  e.PutU8(kSettingsFormat);
  e.PutString(s.dataset);
  e.PutU8(s.parent ? 1 : 0);
  if (s.parent) e.PutBytes(s.parent->view());
  e.PutString(s.author);
  e.PutSigned(s.time_sec);
  e.PutString(s.change);
  e.PutVarint(s.checks.size());
  for (const auto& c : s.checks) {
    e.PutString(c.name);
    EncodeCheckBody(e, c);
  }
  e.PutVarint(s.tables.size());
  for (const auto& t : s.tables) {
    e.PutString(t.pattern);
    e.PutU8(static_cast<uint8_t>(t.format));
    e.PutU8(t.key ? 1 : 0);
    if (!t.key) continue;
    e.PutVarint(t.key->size());
    for (const auto& k : *t.key) e.PutString(k);
  }
  return e.Take();
}

Result<DatasetSettings> DecodeSettings(std::string_view bytes) {
  auto bad = [](const char* why) { return Status::Corruption(std::string("bad settings record: ") + why); };
  Decoder d(bytes);
  DatasetSettings s;
  uint8_t format, has_parent;
  std::string_view v;
  uint64_t n;
  if (!d.GetU8(&format)) return bad("empty");
  if (format != 1 && format != kSettingsFormat)
    return Status::Unsupported("settings format " + std::to_string(format) + " (written by a newer tusk?)");
  if (!d.GetString(&v)) return bad("truncated");
  s.dataset.assign(v);
  if (!ValidateName("dataset", s.dataset).ok()) return bad("invalid dataset name");
  if (!d.GetU8(&has_parent) || has_parent > 1) return bad("bad parent");
  if (has_parent) {
    if (!d.GetBytes(ObjectId::kSize, &v)) return bad("truncated parent");
    s.parent = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(v.data()));
  }
  if (!d.GetString(&v)) return bad("truncated");
  s.author.assign(v);
  if (!d.GetSigned(&s.time_sec) || !d.GetString(&v)) return bad("truncated");
  s.change.assign(v);
  if (!d.GetVarint(&n) || n > d.remaining()) return bad("bad check count");
  for (uint64_t i = 0; i < n; i++) {
    CheckDefinition c;
    uint8_t kind;
    uint64_t words, timeout;
    if (!d.GetString(&v)) return bad("truncated check");
    c.name.assign(v);
    if (!ValidateCheckName(c.name).ok()) return bad("invalid check name");
    if (!s.checks.empty() && !(s.checks.back().name < c.name)) return bad("checks not sorted by name");
    if (!d.GetU8(&kind) || (kind != kCheckCommand && kind != kCheckBuiltin)) return bad("unknown check kind");
    if (kind == kCheckBuiltin) {
      if (!d.GetString(&v) || v.empty()) return bad("built-in check without a name");
      c.builtin.assign(v);
    }
    if (!d.GetVarint(&words) || words > d.remaining()) return bad("bad word count");
    auto& out = kind == kCheckBuiltin ? c.args : c.command;
    for (uint64_t w = 0; w < words; w++) {
      if (!d.GetString(&v)) return bad("truncated word");
      out.emplace_back(v);
    }
    if (kind == kCheckCommand && c.command.empty()) return bad("a check with no command");
    if (!d.GetVarint(&timeout) || timeout == 0 || timeout > UINT32_MAX) return bad("bad timeout");
    c.timeout_sec = static_cast<uint32_t>(timeout);
    s.checks.push_back(std::move(c));
  }
  if (!d.GetVarint(&n) || n > d.remaining()) return bad("bad table rule count");
  for (uint64_t i = 0; i < n; i++) {
    TableRule t;
    uint64_t keys;
    uint8_t file_format = 0, has_key = 1;
    if (!d.GetString(&v) || v.empty()) return bad("bad table pattern");
    t.pattern.assign(v);
    if (format >= 2) {
      if (!d.GetU8(&file_format) || file_format > static_cast<uint8_t>(FileFormat::kBinary))
        return bad("unknown file format in a table rule");
      if (!d.GetU8(&has_key) || has_key > 1) return bad("bad key flag");
    }
    t.format = static_cast<FileFormat>(file_format);
    if (has_key) {
      if (!d.GetVarint(&keys) || keys > d.remaining()) return bad("bad key count");
      t.key.emplace();
      for (uint64_t k = 0; k < keys; k++) {
        if (!d.GetString(&v) || v.empty()) return bad("bad key column");
        t.key->emplace_back(v);
      }
    }
    s.tables.push_back(std::move(t));
  }
  if (!d.empty()) return bad("trailing bytes");
  return s;
}

Status ValidateCheckName(std::string_view name) {
  auto bad = [&] {
    return Status::InvalidArgument("invalid check name '" + EscapeForDisplay(name) +
                                   "': use 1-64 letters, digits, '-', '_' or '.', not starting with '-' or '.'");
  };
  if (name.empty() || name.size() > 64 || name[0] == '-' || name[0] == '.') return bad();
  for (char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') return bad();
  return Status::Ok();
}

Result<DatasetSettings> ReadSettings(Repository& repo, const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(std::string bytes, repo.ReadObject(id, ObjectType::kSettings));
  return DecodeSettings(bytes);
}

Result<CurrentSettings> ReadCurrentSettings(Repository& repo, const std::string& dataset) {
  CurrentSettings cur;
  TUSK_ASSIGN_OR_RETURN(cur.id, repo.GetSettingsHead(dataset));
  if (cur.id) {
    TUSK_ASSIGN_OR_RETURN(cur.settings, ReadSettings(repo, *cur.id));
    if (cur.settings.dataset != dataset)
      return Status::Corruption("the settings head of dataset '" + dataset + "' belongs to dataset '" +
                                cur.settings.dataset + "'");
  } else {
    cur.settings.dataset = dataset;
  }
  return cur;
}

Result<ObjectId> UpdateSettings(Repository& repo, const std::string& dataset, const std::string& author,
                                const std::string& change, const std::function<Status(DatasetSettings*)>& edit) {
  TUSK_ASSIGN_OR_RETURN(CurrentSettings cur, ReadCurrentSettings(repo, dataset));
  DatasetSettings next = cur.settings;
  TUSK_RETURN_IF_ERROR(edit(&next));
  std::sort(next.checks.begin(), next.checks.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  next.dataset = dataset;
  next.parent = cur.id;
  next.author = author;
  next.time_sec = std::time(nullptr);
  next.change = change;
  TUSK_ASSIGN_OR_RETURN(auto session, repo.BeginWrite());
  TUSK_ASSIGN_OR_RETURN(ObjectId id, session->WriteObject(ObjectType::kSettings, EncodeSettings(next)));
  TUSK_RETURN_IF_ERROR(session->SetSettingsHead(dataset, id, cur.id));
  return id;
}

Result<std::vector<std::pair<ObjectId, DatasetSettings>>> SettingsHistory(Repository& repo, const std::string& dataset) {
  std::vector<std::pair<ObjectId, DatasetSettings>> out;
  TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> at, repo.GetSettingsHead(dataset));
  while (at) {
    TUSK_ASSIGN_OR_RETURN(DatasetSettings s, ReadSettings(repo, *at));
    std::optional<ObjectId> parent = s.parent;
    out.emplace_back(*at, std::move(s));
    at = parent;
  }
  return out;
}

const TableRule* TableRuleFor(const DatasetSettings& settings, std::string_view path) {
  for (const auto& rule : settings.tables)
    if (GlobMatch(rule.pattern, path)) return &rule;
  return nullptr;
}

std::optional<std::vector<std::string>> TableKeyFor(const DatasetSettings& settings, std::string_view path) {
  const TableRule* rule = TableRuleFor(settings, path);
  return rule ? rule->key : std::nullopt;
}

FileFormat FileFormatFor(const DatasetSettings& settings, std::string_view path) {
  const TableRule* rule = TableRuleFor(settings, path);
  return rule ? rule->format : FileFormat::kDetect;
}

namespace {
constexpr const char* kFileFormatNames[] = {"detect", "csv", "tsv", "jsonl", "text", "binary"};
}  // namespace

const char* FileFormatName(FileFormat format) {
  auto i = static_cast<size_t>(format);
  return i < std::size(kFileFormatNames) ? kFileFormatNames[i] : "?";
}

std::optional<FileFormat> ParseFileFormat(std::string_view name) {
  for (size_t i = 0; i < std::size(kFileFormatNames); i++)
    if (name == kFileFormatNames[i]) return static_cast<FileFormat>(i);
  return std::nullopt;
}

bool GlobMatch(std::string_view pattern, std::string_view path) {
  if (pattern.find('/') == std::string_view::npos) {
    size_t slash = path.rfind('/');
    return MatchComponent(pattern, slash == std::string_view::npos ? path : path.substr(slash + 1));
  }
  return MatchComponents(Split(pattern), 0, Split(path), 0);
}

}  // namespace tusk
