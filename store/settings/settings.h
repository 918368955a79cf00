// Dataset settings: the checks every new version of a dataset must pass and
// the rules for its tables, versioned with the dataset.
//
// Terms.
// - A *settings version* is an object (record type 6, FORMAT.md
//   "Settings") holding the dataset's whole settings after one change, with
//   the version before it as parent, who made the change, when, and a
//   one-line description ("check add schema"). The dataset's *settings
//   head* is the current version; it moves by compare-and-set with a ref
//   record (kind 's'), like a branch, so settings survive an index rebuild
//   and travel with the dataset's packs. Settings belong to the dataset,
//   not to a branch: one set governs every branch.
// - A *check* is a named command, or a built-in, run against a candidate
//   tree before it lands (fs/check_runner.h runs them).
// - A *table rule* says, for the paths matching a glob (GlobMatch), how
//   merge and diff read them: their format (detected by default) and, for
//   tables, their key columns.
//
// Thread-safety: values and reentrant functions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/repository.h"

namespace tusk {

struct CheckDefinition {
  std::string name;
  // A command: argv (run with the candidate tree as its working directory).
  std::vector<std::string> command;
  // A built-in (store/checks/builtin.h): its name and arguments; `command`
  // is then empty.
  std::string builtin;
  std::vector<std::string> args;
  uint32_t timeout_sec = kDefaultTimeoutSec;
  static constexpr uint32_t kDefaultTimeoutSec = 600;

  // What the definition does, for trust (the same definition under another
  // name is trusted alike): SHA-256 of its encoding without the name.
  ObjectId Digest() const;
  // "-- CMD ARGS" or "--builtin NAME ARGS", shell-quoted.
  std::string Describe() const;
  bool operator==(const CheckDefinition&) const = default;
};

// How files are read by merge and diff (tusk table set --format).
enum class FileFormat : uint8_t {
  kDetect = 0,  // by name (.csv, .tsv, .jsonl/.ndjson) and content (text or binary)
  kCsv = 1,     // a CSV table whatever its name
  kTsv = 2,
  kJsonl = 3,
  kText = 4,    // text merged by line, never as a table
  kBinary = 5,  // never merged or diffed by line: changed on both sides is a conflict
};
const char* FileFormatName(FileFormat format);  // "detect", "csv", "tsv", "jsonl", "text", "binary"
std::optional<FileFormat> ParseFileFormat(std::string_view name);

struct TableRule {
  std::string pattern;  // glob over the path in the tree
  // Key columns; empty: keyless; nullopt: detected, as without a rule.
  std::optional<std::vector<std::string>> key;
  FileFormat format = FileFormat::kDetect;
  bool operator==(const TableRule&) const = default;
};

struct DatasetSettings {
  std::string dataset;
  std::optional<ObjectId> parent;  // the version this one changed
  std::string author;
  int64_t time_sec = 0;
  std::string change;  // what this version changed, one line

  std::vector<CheckDefinition> checks;  // sorted by name, names unique
  std::vector<TableRule> tables;        // first match wins

  const CheckDefinition* FindCheck(std::string_view name) const;
  bool operator==(const DatasetSettings&) const = default;
};

std::string EncodeSettings(const DatasetSettings& settings);
Result<DatasetSettings> DecodeSettings(std::string_view bytes);

// A check name: 1-64 bytes of letters, digits, '-', '_' and '.', not
// starting with '-' or '.'.
Status ValidateCheckName(std::string_view name);

// The settings a dataset has now (empty, with no parent, if it never had
// any), and the id of that version.
struct CurrentSettings {
  std::optional<ObjectId> id;
  DatasetSettings settings;
};
Result<CurrentSettings> ReadCurrentSettings(Repository& repo, const std::string& dataset);
Result<DatasetSettings> ReadSettings(Repository& repo, const ObjectId& id);

// Changes a dataset's settings: `edit` gets the current settings and
// changes them (or refuses); the result becomes the new head, by
// compare-and-set, with `change` as its description. Returns the new
// version's id. Conflict when another change landed meanwhile.
Result<ObjectId> UpdateSettings(Repository& repo, const std::string& dataset, const std::string& author,
                                const std::string& change, const std::function<Status(DatasetSettings*)>& edit);

// Every version of a dataset's settings, newest first.
Result<std::vector<std::pair<ObjectId, DatasetSettings>>> SettingsHistory(Repository& repo, const std::string& dataset);

// The first table rule whose pattern matches `path`, or null.
const TableRule* TableRuleFor(const DatasetSettings& settings, std::string_view path);
// The key the table rules declare for `path`, or nullopt (detect).
std::optional<std::vector<std::string>> TableKeyFor(const DatasetSettings& settings, std::string_view path);
// The format the table rules declare for `path` (kDetect: none).
FileFormat FileFormatFor(const DatasetSettings& settings, std::string_view path);
// The glob match of table rules and built-in checks, as .gitignore does it:
// `*` matches within one path component, `?` one character of it, `**`
// any number of components; a pattern without '/' matches the last
// component anywhere in the tree ("*.csv"), one with '/' the whole path
// ("labels/*.csv").
bool GlobMatch(std::string_view pattern, std::string_view path);

}  // namespace tusk
