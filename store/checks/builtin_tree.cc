// The built-ins answered from tree metadata alone: nonempty, max-size
// (per file), unique and count (whole tree).
#include <algorithm>
#include <map>
#include <unordered_map>

#include "store/checks/builtin_internal.h"

namespace tusk::checks {

namespace {

// The file's chunk list, condensed: equal for files whose chunk lists are
// equal (SameContent), so files group by it without keeping the lists.
ObjectId ContentKey(const TreeEntry& e) {
  Sha256 h;
  for (const ChunkRef& c : e.chunks) {
    h.Update(c.id.data(), ObjectId::kSize);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = static_cast<uint8_t>(c.length >> (8 * i));
    h.Update(len, sizeof len);
  }
  return h.Finish();
}

std::string Judged(const CheckContext& c, size_t files) {
  return Count(files, c.all_paths ? "file" : "changed file") + " checked";
}

}  // namespace

Result<std::string> CheckNonempty(const CheckContext& c) {
  TUSK_ASSIGN_OR_RETURN(auto files, FilesToJudge(c.repo, c.root, c.args.glob, c.changed, c.all_paths));
  for (const auto& f : files) {
    if (f.entry.size == 0) c.problems.Add(f.path, 0, "empty file");
  }
  return Judged(c, files.size());
}

Result<std::string> CheckMaxSize(const CheckContext& c) {
  TUSK_ASSIGN_OR_RETURN(auto files, FilesToJudge(c.repo, c.root, c.args.glob, c.changed, c.all_paths));
  for (const auto& f : files) {
    if (f.entry.size > c.args.max_size) {
      c.problems.Add(f.path, 0,
                     DescribeSize(f.entry.size) + ", larger than the limit of " + DescribeSize(c.args.max_size));
    }
  }
  return Judged(c, files.size());
}

Result<std::string> CheckUnique(const CheckContext& c) {
  // Memory is a key and a path per file; paths of a group are kept in walk
  // order and sorted when reported.
  std::unordered_map<ObjectId, std::vector<std::string>, ObjectIdHash> by_content;
  uint64_t files = 0;
  TUSK_RETURN_IF_ERROR(ForEachFile(c.repo, c.root, c.args.glob, [&](const std::string& path, const TreeEntry& e) {
    files++;
    if (e.size > 0) by_content[ContentKey(e)].push_back(path);
  }));
  std::vector<std::vector<std::string>> groups;
  for (auto& [key, paths] : by_content) {
    if (paths.size() < 2) continue;
    std::sort(paths.begin(), paths.end());
    groups.push_back(std::move(paths));
  }
  std::sort(groups.begin(), groups.end());
  constexpr size_t kShown = 10;
  for (const auto& g : groups) {
    std::string msg = "same content as ";
    for (size_t i = 1; i < g.size() && i <= kShown; i++) msg += (i > 1 ? ", " : "") + g[i];
    if (g.size() - 1 > kShown) msg += " and " + std::to_string(g.size() - 1 - kShown) + " more";
    c.problems.Add(g[0], 0, msg);
  }
  return Count(files, "file") + " compared, " + Count(groups.size(), "group") + " of identical files";
}

Result<std::string> CheckCount(const CheckContext& c) {
  uint64_t n = 0;
  TUSK_RETURN_IF_ERROR(ForEachFile(c.repo, c.root, c.args.glob, [&](const std::string&, const TreeEntry&) { n++; }));
  std::string matched = Count(n, "file") + (n == 1 ? " matches " : " match ") + c.args.glob;
  if (c.args.min && n < *c.args.min) {
    c.problems.AddTree(matched + ", fewer than the minimum of " + std::to_string(*c.args.min));
  } else if (c.args.max && n > *c.args.max) {
    c.problems.AddTree(matched + ", more than the maximum of " + std::to_string(*c.args.max));
  }
  return matched;
}

}  // namespace tusk::checks
