// Private to the built-in checks (builtin*.cc): parsed arguments, the list
// of problems with its cap, walking a tree's files, and one function per
// built-in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/checks/builtin.h"
#include "store/objects.h"

namespace tusk::checks {

// A built-in's arguments after parsing; which fields mean something
// depends on the built-in.
struct CheckArgs {
  std::string glob = "*";
  std::vector<std::string> numeric;  // csv --numeric
  bool allow_empty = false;          // csv --allow-empty
  bool allow_blank = false;          // jsonl --allow-blank
  std::optional<uint64_t> min, max;  // count
  uint64_t max_size = 0;             // max-size
};

// Collects problems; keeps the first `cap` lines and counts the rest.
class Problems {
 public:
  explicit Problems(size_t cap) : cap_(cap) {}
  // "path:line: message", or "path: message" when line is 0.
  void Add(std::string_view path, uint64_t line, std::string_view message);
  // A problem of the whole tree: the message alone.
  void AddTree(std::string_view message);
  size_t count() const { return count_; }
  // The kept lines, "... and N more problems" when some were left out, and
  // `summary` (no newline needed) as the last line.
  std::string Render(std::string_view summary) const;

 private:
  void AddLine(std::string line);
  size_t cap_;
  size_t count_ = 0;
  std::string text_;
};

struct TreeFile {
  std::string path;
  TreeEntry entry;
};

// Calls fn for every regular file of the tree under `root` whose path
// matches `glob`, depth first in name order (not path order: "a.csv" sorts
// before "a/b" as a path but after the directory "a" as a name).
Status ForEachFile(ObjectSource& source, const ObjectId& root, const std::string& glob,
                   const std::function<void(const std::string& path, const TreeEntry& entry)>& fn);
// The files a per-file built-in judges: every matching file, or (not
// all_paths) the matching changed ones that are files of the tree. Sorted
// by path.
Result<std::vector<TreeFile>> FilesToJudge(ObjectSource& source, const ObjectId& root, const std::string& glob,
                                           const std::vector<std::string>& changed, bool all_paths);

// Streams a file's content to `fn` until it returns false or the file ends.
Status StreamFile(ObjectSource& source, const TreeEntry& file, const std::function<bool(std::string_view)>& fn);

// "1.5 MiB (1572864 bytes)", "12 bytes".
std::string DescribeSize(uint64_t bytes);
// "1", "2 files", for summaries: `n` and the noun, plural unless n is 1.
std::string Count(uint64_t n, std::string_view noun);
// A value quoted for a message, shortened to about 60 bytes.
std::string Quote(std::string_view value);

struct CheckContext {
  Repository& repo;
  const ObjectId& root;
  const CheckArgs& args;
  const std::vector<std::string>& changed;
  bool all_paths;
  const BuiltinCheckLimits& limits;
  Problems& problems;
};

// Each returns the summary line, having added its problems; an error only
// when the tree cannot be read.
Result<std::string> CheckCsv(const CheckContext& c);
Result<std::string> CheckJsonl(const CheckContext& c);
Result<std::string> CheckNonempty(const CheckContext& c);
Result<std::string> CheckUnique(const CheckContext& c);
Result<std::string> CheckCount(const CheckContext& c);
Result<std::string> CheckMaxSize(const CheckContext& c);

}  // namespace tusk::checks
