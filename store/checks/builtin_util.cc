// What the built-ins share: the capped list of problems, walking and
// streaming the tree's files, and message formatting.
#include <algorithm>
#include <cstdio>

#include "store/checks/builtin_internal.h"
#include "store/exporter.h"
#include "store/settings/settings.h"

namespace tusk::checks {

void Problems::Add(std::string_view path, uint64_t line, std::string_view message) {
  std::string s(path);
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  s += message;
  AddLine(std::move(s));
}

void Problems::AddTree(std::string_view message) { AddLine(std::string(message)); }

void Problems::AddLine(std::string line) {
  // Past the cap only counted: a table with a bad value in every one of its
  // million rows must not make a million-line output.
  if (count_++ >= cap_) return;
  text_ += line;
  text_ += '\n';
}

std::string Problems::Render(std::string_view summary) const {
  std::string out = text_;
  if (count_ > cap_) out += "... and " + Count(count_ - cap_, "more problem") + "\n";
  out += summary;
  out += '\n';
  return out;
}

namespace {

Status WalkDirectory(ObjectSource& source, const ObjectId& tree, const std::string& prefix, const std::string& glob,
                     const std::function<void(const std::string&, const TreeEntry&)>& fn) {
  // Subdirectories are walked after the page walk ends: ForEachEntry's
  // callback cannot return a Status, and this keeps one page read at a time.
  std::vector<std::pair<std::string, ObjectId>> subdirs;
  TUSK_RETURN_IF_ERROR(ForEachEntry(source, tree, [&](const TreeEntry& e) {
    std::string path = prefix + e.name;
    if (e.kind == EntryKind::kDirectory) {
      subdirs.emplace_back(std::move(path), e.tree);
    } else if (e.kind == EntryKind::kFile && GlobMatch(glob, path)) {
      fn(path, e);
    }
    return true;
  }));
  for (const auto& [path, id] : subdirs) TUSK_RETURN_IF_ERROR(WalkDirectory(source, id, path + "/", glob, fn));
  return Status::Ok();
}

}  // namespace

Status ForEachFile(ObjectSource& source, const ObjectId& root, const std::string& glob,
                   const std::function<void(const std::string& path, const TreeEntry& entry)>& fn) {
  return WalkDirectory(source, root, "", glob, fn);
}

Result<std::vector<TreeFile>> FilesToJudge(ObjectSource& source, const ObjectId& root, const std::string& glob,
                                           const std::vector<std::string>& changed, bool all_paths) {
  std::vector<TreeFile> files;
  if (all_paths) {
    TUSK_RETURN_IF_ERROR(ForEachFile(source, root, glob, [&](const std::string& path, const TreeEntry& e) {
      files.push_back({path, e});
    }));
  } else {
    for (const std::string& path : changed) {
      if (!GlobMatch(glob, path)) continue;
      Result<TreeEntry> e = LookupPath(source, root, path);
      // The caller's list may name what is no file here (a path deleted
      // again, a directory): there is nothing of it to judge.
      if (!e.ok() && e.status().code() == Status::Code::kNotFound) continue;
      if (!e.ok()) return e.status();
      if (e->kind == EntryKind::kFile) files.push_back({path, *e});
    }
  }
  std::sort(files.begin(), files.end(), [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; });
  files.erase(
      std::unique(files.begin(), files.end(), [](const TreeFile& a, const TreeFile& b) { return a.path == b.path; }),
      files.end());
  return files;
}

Status StreamFile(ObjectSource& source, const TreeEntry& file, const std::function<bool(std::string_view)>& fn) {
  // ReadFileContent stops only on an error from its sink: a private one
  // says "enough", told apart from real errors by `stopped`.
  bool stopped = false;
  Status st = ReadFileContent(source, file, [&](std::string_view data) {
    if (fn(data)) return Status::Ok();
    stopped = true;
    return Status::Busy("stop reading");
  });
  return stopped ? Status::Ok() : st;
}

std::string DescribeSize(uint64_t bytes) {
  if (bytes < 1024) return Count(bytes, "byte");
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    unit++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  return std::string(buf) + " (" + std::to_string(bytes) + " bytes)";
}

std::string Count(uint64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

std::string Quote(std::string_view value) {
  constexpr size_t kMax = 60;
  std::string out = "\"";
  size_t n = value.size();
  if (n > kMax) {
    n = kMax;
    // Not in the middle of a UTF-8 sequence: back up over continuation bytes.
    while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) n--;
  }
  for (char ch : value.substr(0, n)) {
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else {
      out += ch;
    }
  }
  out += n < value.size() ? "\"..." : "\"";
  return out;
}

}  // namespace tusk::checks
