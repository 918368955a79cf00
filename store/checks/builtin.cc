// The table of built-ins, their argument parsing and the entry points.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "store/checks/builtin_internal.h"

namespace tusk {

namespace {

using checks::CheckArgs;
using checks::CheckContext;

struct Builtin {
  const char* name;
  const char* usage;  // after the name
  const char* what;
  // Positional arguments, in order: "GLOB", "SIZE"; those after `required`
  // may be left out.
  std::vector<std::string_view> positionals;
  size_t required;
  std::vector<std::string_view> valued;  // options taking a value
  std::vector<std::string_view> flags;   // options without one
  Result<std::string> (*run)(const CheckContext&);
};

const std::vector<Builtin>& Builtins() {
  static const std::vector<Builtin> kBuiltins = {
      {"csv",
       "GLOB [--numeric COL[,COL...]] [--allow-empty]",
       "CSV/TSV files parse, one header; --numeric columns are numbers",
       {"GLOB"},
       1,
       {"--numeric"},
       {"--allow-empty"},
       checks::CheckCsv},
      {"jsonl",
       "GLOB [--allow-blank]",
       "every line of the JSONL files is JSON",
       {"GLOB"},
       1,
       {},
       {"--allow-blank"},
       checks::CheckJsonl},
      {"nonempty", "[GLOB]", "no empty files (default GLOB: every file)", {"GLOB"}, 0, {}, {}, checks::CheckNonempty},
      {"unique", "[GLOB]", "no two files in the tree with the same content", {"GLOB"}, 0, {}, {}, checks::CheckUnique},
      {"count",
       "GLOB [--min N] [--max N]",
       "the number of matching files in the tree is within bounds",
       {"GLOB"},
       1,
       {"--min", "--max"},
       {},
       checks::CheckCount},
      {"max-size",
       "SIZE [GLOB]",
       "no file larger than SIZE (bytes; K, M, G, T: powers of 1024)",
       {"SIZE", "GLOB"},
       1,
       {},
       {},
       checks::CheckMaxSize},
  };
  return kBuiltins;
}

const Builtin* FindBuiltin(std::string_view name) {
  for (const auto& b : Builtins()) {
    if (name == b.name) return &b;
  }
  return nullptr;
}

bool Contains(const std::vector<std::string_view>& v, std::string_view s) {
  for (auto x : v) {
    if (x == s) return true;
  }
  return false;
}

Status CheckGlob(const std::string& glob) {
  if (glob.empty()) return Status::InvalidArgument("the glob is empty");
  if (glob.front() == '/') {
    return Status::InvalidArgument("glob " + glob + " starts with '/': globs are relative to the dataset's root");
  }
  if (glob.back() == '/') {
    return Status::InvalidArgument("glob " + glob + " ends with '/': a glob matches files (" + glob +
                                   "** for every file below)");
  }
  return Status::Ok();
}

Result<uint64_t> ParseCount(std::string_view option, std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(option) + " wants a whole number, not \"" + std::string(text) + "\"");
  }
  return v;
}

// "10M", "1G", "512", "4KiB": powers of 1024.
Result<uint64_t> ParseSize(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("size \"" + std::string(text) + "\" " + why +
                                   " (a whole number of bytes, optionally with K, M, G or T: powers of 1024)");
  };
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (end == text.data()) return bad("does not start with a number");
  if (ec != std::errc()) return bad("is too large");
  std::string unit(end, text.data() + text.size());
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.size() == 3 && unit.ends_with("IB")) unit.resize(1);
  int shift = 0;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K") {
    shift = 10;
  } else if (unit == "M") {
    shift = 20;
  } else if (unit == "G") {
    shift = 30;
  } else if (unit == "T") {
    shift = 40;
  } else if (unit.size() == 2 && unit[1] == 'B') {
    return bad("is ambiguous (write " + std::string(1, unit[0]) + " or " + unit[0] + "iB for powers of 1024)");
  } else {
    return bad("has an unknown unit");
  }
  if (shift > 0 && v > (std::numeric_limits<uint64_t>::max() >> shift)) return bad("is too large");
  return v << shift;
}

// Splits `args` into positionals and options per `b`, then reads them.
Result<CheckArgs> ParseArgs(const Builtin& b, const std::vector<std::string>& args) {
  CheckArgs out;
  std::vector<std::string> positionals;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    if (!a.starts_with("--")) {
      positionals.push_back(a);
      continue;
    }
    size_t eq = a.find('=');
    std::string option = a.substr(0, eq);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = a.substr(eq + 1);
    if (Contains(b.flags, option)) {
      if (value) return Status::InvalidArgument(option + " takes no value");
      if (option == "--allow-empty") out.allow_empty = true;
      if (option == "--allow-blank") out.allow_blank = true;
      continue;
    }
    if (!Contains(b.valued, option)) return Status::InvalidArgument("unknown option " + option);
    if (!value) {
      if (i + 1 == args.size()) return Status::InvalidArgument(option + " needs a value");
      value = args[++i];
    }
    if (option == "--numeric") {
      for (size_t start = 0; start <= value->size();) {
        size_t comma = std::min(value->find(',', start), value->size());
        std::string col = value->substr(start, comma - start);
        if (col.empty()) return Status::InvalidArgument("--numeric \"" + *value + "\" has an empty column name");
        if (std::find(out.numeric.begin(), out.numeric.end(), col) == out.numeric.end()) out.numeric.push_back(col);
        start = comma + 1;
      }
    } else {
      TUSK_ASSIGN_OR_RETURN(uint64_t n, ParseCount(option, *value));
      (option == "--min" ? out.min : out.max) = n;
    }
  }
  if (positionals.size() < b.required) {
    return Status::InvalidArgument("missing " + std::string(b.positionals[positionals.size()]));
  }
  if (positionals.size() > b.positionals.size()) {
    return Status::InvalidArgument("unexpected argument \"" + positionals[b.positionals.size()] + "\"");
  }
  for (size_t i = 0; i < positionals.size(); i++) {
    if (b.positionals[i] == "GLOB") {
      TUSK_RETURN_IF_ERROR(CheckGlob(positionals[i]));
      out.glob = positionals[i];
    } else {
      TUSK_ASSIGN_OR_RETURN(out.max_size, ParseSize(positionals[i]));
    }
  }
  if (std::string_view(b.name) == "count") {
    if (!out.min && !out.max) return Status::InvalidArgument("count needs --min or --max (or both)");
    if (out.min && out.max && *out.min > *out.max) {
      return Status::InvalidArgument("--min " + std::to_string(*out.min) + " is more than --max " +
                                     std::to_string(*out.max));
    }
  }
  return out;
}

// The parsed arguments, or InvalidArgument ending in the usage.
Result<std::pair<const Builtin*, CheckArgs>> Prepare(const std::string& name, const std::vector<std::string>& args) {
  const Builtin* b = FindBuiltin(name);
  if (!b) {
    std::string names;
    for (const auto& x : Builtins()) names += std::string(names.empty() ? "" : ", ") + x.name;
    return Status::InvalidArgument("no built-in check named \"" + name + "\" (there are " + names + ")");
  }
  Result<CheckArgs> parsed = ParseArgs(*b, args);
  if (!parsed.ok()) {
    return Status::InvalidArgument("built-in " + name + ": " + parsed.status().message() + " (usage: " + name + " " +
                                   b->usage + ")");
  }
  return std::make_pair(b, std::move(parsed).value());
}

}  // namespace

Result<BuiltinCheckResult> RunBuiltinCheck(Repository& repo, const ObjectId& root, const std::string& name,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& changed, bool all_paths) {
  return RunBuiltinCheck(repo, root, name, args, changed, all_paths, BuiltinCheckLimits{});
}

Result<BuiltinCheckResult> RunBuiltinCheck(Repository& repo, const ObjectId& root, const std::string& name,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& changed, bool all_paths,
                                           const BuiltinCheckLimits& limits) {
  TUSK_ASSIGN_OR_RETURN(auto prepared, Prepare(name, args));
  checks::Problems problems(limits.max_problems);
  CheckContext c{repo, root, prepared.second, changed, all_paths, limits, problems};
  TUSK_ASSIGN_OR_RETURN(std::string summary, prepared.first->run(c));
  BuiltinCheckResult result;
  result.passed = problems.count() == 0;
  result.output = problems.Render(summary);
  return result;
}

Status ValidateBuiltinCheck(const std::string& name, const std::vector<std::string>& args) {
  return Prepare(name, args).status();
}

std::string BuiltinCheckUsage() {
  std::vector<std::string> heads;
  size_t width = 0;
  for (const auto& b : Builtins()) {
    heads.push_back(std::string(b.name) + " " + b.usage);
    width = std::max(width, heads.back().size());
  }
  std::string out;
  for (size_t i = 0; i < heads.size(); i++) {
    out += heads[i] + std::string(width + 2 - heads[i].size(), ' ') + Builtins()[i].what + "\n";
  }
  return out;
}

}  // namespace tusk
