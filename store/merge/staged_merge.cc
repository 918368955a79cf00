// A merge staged in a workspace (`tusk merge --stage`): what the workspace
// keeps of it, and judging whether a person has resolved a conflict.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "store/merge/merge.h"

namespace tusk {
namespace {

// Files larger than this are not read to look for markers: a resolved
// file of a line or table merge is far smaller (kMaxLineMergeBytes).
constexpr uint64_t kMaxMarkerScanBytes = 1ull << 30;

// Conflicting cells listed per file in the merge state (`tusk status`).
constexpr size_t kMaxListedCells = 1000;

bool HasMarks(const std::string& kind) { return kind == "text" || kind == "table"; }

// The file at `path`, or nullopt when the path holds no regular file (a
// conflict resolved by deleting it, or replaced by a directory).
Result<std::optional<std::string>> ReadStaged(Workspace& ws, const std::string& path) {
  auto attr = ws.Stat(path);
  if (!attr.ok()) {
    if (attr.status().sys_errno() == ENOENT || attr.status().sys_errno() == ENOTDIR)
      return std::optional<std::string>();
    return attr.status();
  }
  if (!S_ISREG(attr->mode)) return std::optional<std::string>();
  if (attr->size > kMaxMarkerScanBytes)
    return Status::InvalidArgument(path + " is " + std::to_string(attr->size) +
                                   " bytes, more than a resolved text or table file can be checked for markers");
  TUSK_ASSIGN_OR_RETURN(auto file, ws.Open(path, O_RDONLY));
  std::string out;
  out.reserve(attr->size);
  for (;;) {
    TUSK_ASSIGN_OR_RETURN(std::string piece, file->Read(out.size(), 1 << 20));
    if (piece.empty()) break;
    out += piece;
  }
  return std::optional<std::string>(std::move(out));
}

std::vector<uint64_t> MarkedLines(const std::string& kind, const std::string& content) {
  return kind == "table" ? ConflictNotationLines(content) : ConflictMarkerLines(content);
}

std::string LineList(const std::vector<uint64_t>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < 10; i++) out += (i ? ", " : "") + std::to_string(lines[i]);
  if (lines.size() > 10) out += ", ...";
  return out;
}

std::string Quoted(const std::string& v, bool present) { return present ? "'" + v + "'" : "(none)"; }

}  // namespace

std::string DescribeTableConflict(const TableConflict& cell) {
  std::string out = TableConflictKindName(cell.kind);
  if (!cell.key.empty()) out += " " + cell.key;
  if (!cell.column.empty()) out += " column " + cell.column;
  return out + ": base " + Quoted(cell.base, cell.base_present) + ", ours " + Quoted(cell.ours, cell.ours_present) +
         ", theirs " + Quoted(cell.theirs, cell.theirs_present);
}

WsMerge StagedMergeOf(const BranchMergeRequest& request, const BranchMergeResult& result) {
  WsMerge m;
  m.ours = *result.ours;
  m.theirs = request.source;
  m.staged = *result.staged;
  m.source = request.source_name;
  m.message = request.message.empty()
                  ? "merge " + request.source_name + " into " + request.dataset + "@" + request.branch
                  : request.message;
  for (const auto& c : result.tree.conflicts) {
    WsMergeConflict x;
    x.kind = MergeConflictKindName(c.kind);
    x.path = c.path;
    x.theirs_path = c.theirs_path;
    x.detail = c.detail;
    // The file itself holds every conflicting cell; the list is for
    // reading, and must fit a control-socket message.
    for (size_t i = 0; i < c.cells.size() && i < kMaxListedCells; i++)
      x.cells.push_back(DescribeTableConflict(c.cells[i]));
    if (c.cells.size() > kMaxListedCells)
      x.cells.push_back("... and " + std::to_string(c.cells.size() - kMaxListedCells) +
                        " more (each marked in the file)");
    // One path can have several conflicts (content and mode): one entry.
    if (!m.conflicts.empty() && m.conflicts.back().path == x.path) {
      WsMergeConflict& prev = m.conflicts.back();
      if (HasMarks(x.kind) && !HasMarks(prev.kind)) std::swap(prev.kind, x.kind);
      prev.detail += "; " + x.detail;
      if (prev.theirs_path.empty()) prev.theirs_path = x.theirs_path;
      prev.cells.insert(prev.cells.end(), x.cells.begin(), x.cells.end());
      continue;
    }
    m.conflicts.push_back(std::move(x));
  }
  return m;
}

Status ResolveStagedConflicts(Workspace& ws, const std::vector<std::string>& paths) {
  std::optional<WsMerge> merge = ws.StagedMerge();
  const std::string name = ws.dataset() + "@" + ws.branch();
  if (!merge) return Status::InvalidArgument("no merge is staged in " + name + ": there is nothing to resolve");
  for (const auto& path : paths) {
    auto it = std::find_if(merge->conflicts.begin(), merge->conflicts.end(),
                           [&](const WsMergeConflict& c) { return c.path == path; });
    if (it == merge->conflicts.end())
      return Status::NotFound("'" + path + "' is not a conflict of the merge of " + merge->source + " staged in " +
                              name + " ('tusk status " + name + "' lists them)");
    if (!it->theirs_path.empty()) {
      auto beside = ws.Stat(it->theirs_path);
      if (beside.ok())
        return Status::InvalidArgument("'" + path + "' is not resolved: theirs' version is still at '" +
                                       it->theirs_path + "'; move it over '" + path + "' or remove it first");
      int err = beside.status().sys_errno();
      if (err != ENOENT && err != ENOTDIR) return beside.status();
    }
    if (!HasMarks(it->kind)) continue;
    TUSK_ASSIGN_OR_RETURN(auto content, ReadStaged(ws, path));
    if (!content) continue;
    std::vector<uint64_t> lines = MarkedLines(it->kind, *content);
    if (!lines.empty())
      return Status::InvalidArgument("'" + path + "' is not resolved: " +
                                     (it->kind == "table" ? "conflict notation remains" : "conflict markers remain") +
                                     " on line" + (lines.size() == 1 ? " " : "s ") + LineList(lines) +
                                     "; edit them out first");
  }
  return ws.MarkResolved(paths);
}

Status FindMarkedLines(Workspace& ws, WsMerge* merge) {
  for (auto& c : merge->conflicts) {
    if (c.resolved || !HasMarks(c.kind)) continue;
    auto content = ReadStaged(ws, c.path);
    if (!content.ok()) {
      if (content.status().code() == Status::Code::kInvalidArgument) continue;  // too large to scan
      return content.status();
    }
    if (*content) c.marked_lines = MarkedLines(c.kind, **content);
  }
  return Status::Ok();
}

}  // namespace tusk
