// tusk diff REF REF [PATH...]: what changed between two versions, as one
// line per change (the default), lines added and removed per file (--stat),
// the unified diff of each file (-p), or what two runs read (--inputs,
// cmd_lineage.cc). tusk-diff(1) is the full text.
//
// File content is read only for the files shown whose content changed, one
// file at a time, and only up to kMaxLineMergeBytes: a larger file is named
// as too large without being read.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "store/diff.h"
#include "store/exporter.h"
#include "store/merge/text.h"
#include "store/merge/merge.h"
#include "store/merge/table.h"
#include "store/settings/settings.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct DiffOpts {
  std::string a, b;
  std::vector<std::string> paths;  // filters, as given
  bool json = false;
  bool inputs = false;
  bool stat = false;
  bool patch = false;
  bool rows = false;
  std::string key;  // --key COLUMN[,COLUMN...]
};

// The two versions compared and the changes shown.
struct Versions {
  std::unique_ptr<Repository> repo;
  ObjectId old_root, new_root;
  std::vector<Change> changes;  // sorted by path; only those under a filter
  // The dataset's current settings (of B's dataset): table keys and file
  // formats (tusk table set).
  std::optional<DatasetSettings> settings;
  FileFormat FormatOf(const std::string& path) const {
    return settings ? FileFormatFor(*settings, path) : FileFormat::kDetect;
  }
};

// ---- path filters ----

// "./a//b/" is "a/b", as LookupPath reads it; "" (also "/" and ".") is the
// whole tree.
std::string NormalizeFilter(std::string_view path) {
  std::string out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = std::min(path.find('/', at), path.size());
    std::string_view part = path.substr(at, slash - at);
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + std::string(part);
    at = slash + 1;
  }
  return out;
}

// `path` is `filter` or below it (an empty directory's path ends in '/').
bool IsUnder(std::string_view path, std::string_view filter) {
  return filter.empty() || (path.starts_with(filter) && (path.size() == filter.size() || path[filter.size()] == '/'));
}

bool Shown(const Change& c, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  for (const auto& f : filters)
    if (IsUnder(c.path, f) || (c.kind == Change::Kind::kRenamed && IsUnder(c.old_path, f))) return true;
  return false;
}

Result<ObjectId> RootOf(Repository& repo, const std::string& ref) {
  TUSK_ASSIGN_OR_RETURN(ObjectId id, repo.Resolve(ref, true));
  TUSK_ASSIGN_OR_RETURN(Commit commit, repo.ReadCommit(id));
  return commit.root;
}

Result<Versions> LoadVersions(Cli& cli, const DiffOpts& o) {
  Versions v;
  TUSK_ASSIGN_OR_RETURN(v.repo, cli.OpenStore(StoreAccess::kReadOnly));
  TUSK_ASSIGN_OR_RETURN(v.old_root, RootOf(*v.repo, o.a));
  TUSK_ASSIGN_OR_RETURN(v.new_root, RootOf(*v.repo, o.b));
  std::vector<std::string> filters;
  for (const auto& given : o.paths) {
    std::string f = NormalizeFilter(given);
    bool found = false;
    for (const ObjectId* root : {&v.old_root, &v.new_root}) {
      auto entry = LookupPath(*v.repo, *root, f);
      if (!entry.ok() && entry.status().code() != Status::Code::kNotFound) return entry.status();
      found = found || entry.ok();
    }
    if (!found) return Status::NotFound("path '" + Printable(given) + "' is in neither " + o.a + " nor " + o.b);
    filters.push_back(f);
  }
  TUSK_ASSIGN_OR_RETURN(std::vector<Change> all, DiffTrees(*v.repo, v.old_root, v.new_root));
  for (auto& c : all)
    if (Shown(c, filters)) v.changes.push_back(std::move(c));
  if (auto spec = ParseRef(o.b, true); spec.ok()) {
    auto cur = ReadCurrentSettings(*v.repo, spec->dataset);
    if (cur.ok()) v.settings = std::move(cur->settings);
  }
  return v;
}

// ---- the default listing ----

void PrintChangeList(const std::vector<Change>& changes, bool json) {
  uint64_t counts[5] = {0, 0, 0, 0, 0};
  Json j;
  j.BeginArray();
  for (const auto& c : changes) {
    counts[static_cast<int>(c.kind)]++;
    if (json) {
      j.BeginObject().Key("status").String(std::string(1, ChangeLetter(c.kind))).Key("path").String(c.path);
      if (c.kind == Change::Kind::kRenamed) j.Key("old_path").String(c.old_path);
      j.Key("old_size").Number(c.old_size).Key("new_size").Number(c.new_size).EndObject();
      continue;
    }
    std::cout << ChangeLetter(c.kind) << "  ";
    switch (c.kind) {
      case Change::Kind::kAdded:
        std::cout << Printable(c.path) << " (" << HumanBytes(c.new_size) << ")";
        break;
      case Change::Kind::kDeleted:
        std::cout << Printable(c.path) << " (" << HumanBytes(c.old_size) << ")";
        break;
      case Change::Kind::kRenamed:
        std::cout << Printable(c.old_path) << " -> " << Printable(c.path) << " (" << HumanBytes(c.new_size) << ")";
        break;
      case Change::Kind::kModified:
        std::cout << Printable(c.path) << " (" << HumanBytes(c.old_size) << " -> " << HumanBytes(c.new_size)
                  << (c.content_changed ? "" : ", metadata only") << ")";
        break;
      case Change::Kind::kTypeChanged:
        std::cout << Printable(c.path);
        break;
    }
    std::cout << "\n";
  }
  if (json) return j.EndArray().Print();
  std::cout << counts[0] << " added, " << counts[1] << " deleted, " << counts[2] << " modified, " << counts[3]
            << " renamed, " << counts[4] << " type changed" << std::endl;
}

// ---- file content ----

// One side of a change. A file's content is its bytes, a symbolic link's
// its target (as git has it); directories and special files have none,
// which reads as empty text.
struct Side {
  std::optional<TreeEntry> entry;  // none: absent on this side
  enum class Content { kText, kBinary, kTooLarge } content = Content::kText;
  std::string text;    // kText
  uint64_t bytes = 0;  // the content's size
};

// `format`: the dataset's rule for the path; kBinary is never read as
// text.
Result<Side> ReadSide(Repository& repo, const ObjectId& root, const std::string& path, bool read_content,
                      FileFormat format) {
  Side side;
  TUSK_ASSIGN_OR_RETURN(side.entry, LookupPath(repo, root, path));
  const TreeEntry& e = *side.entry;
  if (e.kind == EntryKind::kSymlink) side.bytes = e.target.size();
  if (e.kind == EntryKind::kFile) side.bytes = e.size;
  if (!read_content) return side;
  if (format == FileFormat::kBinary && e.kind == EntryKind::kFile) {
    side.content = Side::Content::kBinary;
    return side;
  }
  if (!FitsLineMerge(side.bytes)) {
    side.content = Side::Content::kTooLarge;
    return side;
  }
  if (e.kind == EntryKind::kSymlink) side.text = e.target;
  if (e.kind == EntryKind::kFile) {
    side.text.reserve(e.size);
    auto append = [&](std::string_view piece) {
      // The size was checked above; a chunk list that disagrees with it
      // must not make this read unbounded.
      if (side.text.size() + piece.size() > e.size) return Status::Corruption("content longer than its size");
      side.text.append(piece);
      return Status::Ok();
    };
    TUSK_RETURN_IF_ERROR(ReadFileContent(repo, e, append).Annotate(path));
  }
  if (!LooksLikeText(side.text)) {
    side.content = Side::Content::kBinary;
    side.text = std::string();
  }
  return side;
}

// One change with both sides, read as far as it is shown.
struct FileDiff {
  const Change* change = nullptr;
  Side old_side, new_side;
  // Renames and metadata-only changes leave the content as it was: it is
  // not read, and they count no lines.
  bool content_read = false;

  std::string OldPath() const { return change->kind == Change::Kind::kRenamed ? change->old_path : change->path; }
  bool Binary() const { return old_side.content != Side::Content::kText || new_side.content != Side::Content::kText; }
  bool TooLarge() const {
    return old_side.content == Side::Content::kTooLarge || new_side.content == Side::Content::kTooLarge;
  }
};

Result<FileDiff> ReadFileDiff(Versions& v, const Change& c) {
  FileDiff d;
  d.change = &c;
  d.content_read = c.kind != Change::Kind::kRenamed && !(c.kind == Change::Kind::kModified && !c.content_changed);
  if (c.kind != Change::Kind::kAdded) {
    TUSK_ASSIGN_OR_RETURN(d.old_side, ReadSide(*v.repo, v.old_root, d.OldPath(), d.content_read, v.FormatOf(d.OldPath())));
  }
  if (c.kind != Change::Kind::kDeleted) {
    TUSK_ASSIGN_OR_RETURN(d.new_side, ReadSide(*v.repo, v.new_root, c.path, d.content_read, v.FormatOf(c.path)));
  }
  return d;
}

// ---- --stat ----

struct FileStat {
  bool binary = false;              // sizes instead of lines (binary or too large on a side)
  uint64_t added = 0, removed = 0;  // lines, or for binary: the new and old sizes
};

Result<FileStat> StatOf(const FileDiff& d) {
  FileStat s;
  if (!d.content_read) return s;
  if (d.Binary()) {
    s.binary = true;
    s.added = d.new_side.bytes;
    s.removed = d.old_side.bytes;
    return s;
  }
  TUSK_ASSIGN_OR_RETURN(LineCounts n, CountLineChanges(d.old_side.text, d.new_side.text));
  s.added = n.added;
  s.removed = n.removed;
  return s;
}

int DecimalWidth(uint64_t n) { return static_cast<int>(std::to_string(n).size()); }

// Columns a terminal gives `s` (UTF-8: one per character; wide characters
// are not told apart, as a compromise).
int DisplayWidth(std::string_view s) {
  return static_cast<int>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

// "..." and the end of `name`, `width` columns in all, cut after a '/'
// where there is one (git's rule).
std::string ShortenName(const std::string& name, int width) {
  int keep = std::max(0, width - 3);
  size_t at = 0;
  while (DisplayWidth(std::string_view(name).substr(at)) > keep) {
    at++;
    while (at < name.size() && (name[at] & 0xc0) == 0x80) at++;
  }
  size_t slash = name.find('/', at);
  return "..." + name.substr(slash == std::string::npos ? at : slash);
}

// git's scale_linear: at least one column for any change.
uint64_t ScaleLinear(uint64_t n, uint64_t width, uint64_t max_change) {
  return n == 0 ? 0 : 1 + n * (width - 1) / max_change;
}

// git diff --stat's layout for an 80-column line (show_stats in git's
// diff.c): names padded to the longest, counts right-aligned, the +/- graph
// scaled down when the largest change does not fit.
void PrintStat(const std::vector<std::pair<std::string, FileStat>>& rows) {
  constexpr int kWidth = 80;
  uint64_t max_change = 0;
  int max_len = 0, number_width = 0, bin_width = 0;
  for (const auto& [name, s] : rows) {
    max_len = std::max(max_len, DisplayWidth(name));
    if (s.binary) {
      bin_width = std::max(bin_width, 14 + DecimalWidth(s.added) + DecimalWidth(s.removed));
      number_width = 3;  // counts align with "Bin"
      continue;
    }
    max_change = std::max(max_change, s.added + s.removed);
  }
  number_width = std::max(number_width, DecimalWidth(max_change));
  int width = std::max(kWidth, 16 + 6 + number_width);
  int graph_width = max_change + 4 > static_cast<uint64_t>(bin_width)
                        ? static_cast<int>(std::min<uint64_t>(max_change, kWidth))
                        : bin_width - 4;
  int name_width = max_len;
  if (name_width + number_width + 6 + graph_width > width) {
    if (graph_width > width * 3 / 8 - number_width - 6) graph_width = std::max(6, width * 3 / 8 - number_width - 6);
    if (name_width > width - number_width - 6 - graph_width)
      name_width = width - number_width - 6 - graph_width;
    else
      graph_width = width - number_width - 6 - name_width;
  }
  uint64_t files = 0, insertions = 0, deletions = 0;
  for (const auto& [full_name, s] : rows) {
    files++;
    std::string name = DisplayWidth(full_name) > name_width ? ShortenName(full_name, name_width) : full_name;
    std::string line = " " + name + std::string(std::max(0, name_width - DisplayWidth(name)), ' ') + " | ";
    auto right = [&](const std::string& text) {
      line += std::string(std::max(0, number_width - static_cast<int>(text.size())), ' ') + text;
    };
    if (s.binary) {
      right("Bin");
      if (s.added || s.removed) line += " " + std::to_string(s.removed) + " -> " + std::to_string(s.added) + " bytes";
      std::cout << line << "\n";
      continue;
    }
    insertions += s.added;
    deletions += s.removed;
    uint64_t add = s.added, del = s.removed;
    if (static_cast<uint64_t>(graph_width) <= max_change) {
      uint64_t total = ScaleLinear(add + del, graph_width, max_change);
      if (total < 2 && add && del) total = 2;
      if (add < del) {
        add = ScaleLinear(add, graph_width, max_change);
        del = total - add;
      } else {
        del = ScaleLinear(del, graph_width, max_change);
        add = total - del;
      }
    }
    right(std::to_string(s.added + s.removed));
    if (s.added + s.removed) line += " ";
    std::cout << line << std::string(add, '+') << std::string(del, '-') << "\n";
  }
  // git's print_stat_summary, also for nothing changed.
  std::cout << " " << files << (files == 1 ? " file changed" : " files changed");
  if (files && (insertions || !deletions))
    std::cout << ", " << insertions << (insertions == 1 ? " insertion(+)" : " insertions(+)");
  if (files && (deletions || !insertions))
    std::cout << ", " << deletions << (deletions == 1 ? " deletion(-)" : " deletions(-)");
  std::cout << std::endl;
}

std::string StatName(const Change& c) {
  if (c.kind == Change::Kind::kRenamed) return Printable(c.old_path) + " => " + Printable(c.path);
  return Printable(c.path);
}

Status PrintStats(Versions& v) {
  std::vector<std::pair<std::string, FileStat>> rows;
  for (const auto& c : v.changes) {
    TUSK_ASSIGN_OR_RETURN(FileDiff d, ReadFileDiff(v, c));
    TUSK_ASSIGN_OR_RETURN(FileStat s, StatOf(d));
    rows.emplace_back(StatName(c), s);
  }
  PrintStat(rows);
  return Status::Ok();
}

// ---- -p ----

const char* TypeName(const TreeEntry& e) {
  switch (e.kind) {
    case EntryKind::kFile:
      return "file";
    case EntryKind::kDirectory:
      return "dir";
    case EntryKind::kSymlink:
      return "symlink";
    case EntryKind::kSpecial:
      break;
  }
  return S_ISFIFO(e.mode) ? "fifo" : S_ISSOCK(e.mode) ? "socket" : S_ISCHR(e.mode) ? "char-device" : "block-device";
}

std::string Octal(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06o", mode);
  return buf;
}

std::string Mtime(const TreeEntry& e, bool with_ns) {
  std::string t = FormatTime(e.mtime_sec);
  if (!with_ns) return t;
  char ns[16];
  std::snprintf(ns, sizeof ns, ".%09u", e.mtime_nsec);
  return t.insert(t.find(' ', t.find(' ') + 1), ns);  // after the seconds, before the zone
}

// What changed besides the content, on one line; empty if nothing did.
std::string MetadataNote(const TreeEntry& o, const TreeEntry& n, bool content_changed) {
  std::vector<std::string> parts;
  if (o.kind != n.kind || (o.mode & S_IFMT) != (n.mode & S_IFMT))
    parts.push_back(std::string("type ") + TypeName(o) + " -> " + TypeName(n));
  else if (o.mode != n.mode)
    parts.push_back("mode " + Octal(o.mode) + " -> " + Octal(n.mode));
  if (o.uid != n.uid || o.gid != n.gid)
    parts.push_back("owner " + std::to_string(o.uid) + ":" + std::to_string(o.gid) + " -> " + std::to_string(n.uid) +
                    ":" + std::to_string(n.gid));
  if (o.rdev != n.rdev)
    parts.push_back("device " + std::to_string(major(o.rdev)) + "," + std::to_string(minor(o.rdev)) + " -> " +
                    std::to_string(major(n.rdev)) + "," + std::to_string(minor(n.rdev)));
  if (o.xattrs != n.xattrs) parts.push_back("xattrs changed");
  if (o.link_group != n.link_group) parts.push_back("hard links changed");
  if (o.extensions != n.extensions) parts.push_back("extension records changed");
  // An edit moves the mtime too: it is news only when the content stayed.
  if (!content_changed && (o.mtime_sec != n.mtime_sec || o.mtime_nsec != n.mtime_nsec)) {
    bool ns = o.mtime_sec == n.mtime_sec;
    parts.push_back("mtime " + Mtime(o, ns) + " -> " + Mtime(n, ns));
  }
  std::string note;
  for (const auto& p : parts) note += (note.empty() ? "" : ", ") + p;
  return note;
}

// The header git would give the change, and a line for what git has no
// header for (owner, mtime, xattrs, ...). `old_name`, `new_name`: as shown.
std::string PatchHeader(const FileDiff& d, const std::string& old_name, const std::string& new_name) {
  const Change& c = *d.change;
  std::string h = "diff --git a/" + old_name + " b/" + new_name + "\n";
  if (c.kind == Change::Kind::kAdded)
    h += std::string("new ") + TypeName(*d.new_side.entry) + " mode " + Octal(d.new_side.entry->mode) + "\n";
  if (c.kind == Change::Kind::kDeleted)
    h += std::string("deleted ") + TypeName(*d.old_side.entry) + " mode " + Octal(d.old_side.entry->mode) + "\n";
  if (c.kind == Change::Kind::kRenamed) h += "rename from " + old_name + "\nrename to " + new_name + "\n";
  if (d.old_side.entry && d.new_side.entry) {
    std::string note = MetadataNote(*d.old_side.entry, *d.new_side.entry, d.content_read);
    if (!note.empty()) h += note + "\n";
  }
  return h;
}

// The hunks of a text change ("" when there are none), or the line that
// names a binary or too large file.
Result<std::string> PatchBody(const FileDiff& d, const std::string& old_name, const std::string& new_name) {
  if (!d.content_read) return std::string();
  bool old_absent = !d.old_side.entry, new_absent = !d.new_side.entry;
  std::string a = old_absent ? "/dev/null" : "a/" + old_name;
  std::string b = new_absent ? "/dev/null" : "b/" + new_name;
  if (d.TooLarge())
    return "Files " + a + " and " + b + " differ (too large to diff by line: over " +
           std::to_string(kMaxLineMergeBytes >> 20) + " MiB)\n";
  if (d.Binary()) return "Binary files " + a + " and " + b + " differ\n";
  UnifiedDiffOptions options;
  options.old_path = old_name;
  options.new_path = new_name;
  options.old_absent = old_absent;
  options.new_absent = new_absent;
  return UnifiedDiff(d.old_side.text, d.new_side.text, options);
}

Status PrintPatches(Versions& v) {
  for (const auto& c : v.changes) {
    TUSK_ASSIGN_OR_RETURN(FileDiff d, ReadFileDiff(v, c));
    std::string old_name = Printable(d.OldPath()), new_name = Printable(c.path);
    TUSK_ASSIGN_OR_RETURN(std::string body, PatchBody(d, old_name, new_name));
    std::cout << PatchHeader(d, old_name, new_name) << body;
  }
  std::cout << std::flush;
  return Status::Ok();
}

// ---- --json with --stat or -p ----

Status PrintContentJson(Versions& v, const DiffOpts& o) {
  Json j;
  j.BeginArray();
  for (const auto& c : v.changes) {
    TUSK_ASSIGN_OR_RETURN(FileDiff d, ReadFileDiff(v, c));
    j.BeginObject().Key("status").String(std::string(1, ChangeLetter(c.kind))).Key("path").String(c.path);
    if (c.kind == Change::Kind::kRenamed) j.Key("old_path").String(c.old_path);
    j.Key("old_size").Number(c.old_size).Key("new_size").Number(c.new_size);
    if (d.content_read && d.Binary()) {
      j.Key("binary").Bool(true);
      if (d.TooLarge()) j.Key("too_large").Bool(true);
    } else {
      if (o.stat) {
        TUSK_ASSIGN_OR_RETURN(FileStat s, StatOf(d));
        j.Key("lines_added").Number(s.added).Key("lines_removed").Number(s.removed);
      }
      if (o.patch) {
        // Exact paths, as everywhere in --json output.
        TUSK_ASSIGN_OR_RETURN(std::string body, PatchBody(d, d.OldPath(), c.path));
        j.Key("patch").String(body);
      }
    }
    j.EndObject();
  }
  j.EndArray().Print();
  return Status::Ok();
}

// ---- --rows [--key COLUMN] ----
//
// Table files (store/merge/table.h) compared row by row, with the parser
// and key rules that merge uses: what diff shows as changed cells is what
// a merge combines. Other changes are listed as without --rows.

const char* RowKindName(RowChange::Kind k) {
  switch (k) {
    case RowChange::Kind::kAdded: return "added";
    case RowChange::Kind::kRemoved: return "removed";
    case RowChange::Kind::kChanged: return "changed";
  }
  return "?";
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

void PrintTableDiff(const std::string& path, const TableDiff& d) {
  std::cout << "M  " << Printable(path) << " (" << TableFormatName(d.format) << ", " << d.key.Describe()
            << "): " << Plural(d.rows_added, "row", "rows") << " added, " << d.rows_removed << " removed, "
            << d.rows_changed << " changed (" << Plural(d.cells_changed, "cell", "cells") << ")";
  if (d.reordered) std::cout << ", rows reordered";
  std::cout << "\n";
  for (const auto& c : d.columns_added) std::cout << "   + column " << Printable(c) << "\n";
  for (const auto& c : d.columns_removed) std::cout << "   - column " << Printable(c) << "\n";
  for (const auto& r : d.rows) {
    char mark = r.kind == RowChange::Kind::kAdded ? '+' : r.kind == RowChange::Kind::kRemoved ? '-' : '~';
    std::cout << "   " << mark << " " << Printable(r.key);
    for (size_t i = 0; i < r.cells.size(); i++) {
      const auto& c = r.cells[i];
      std::cout << (i == 0 ? ": " : "; ") << Printable(c.column) << " " << Printable(c.old_value) << " -> "
                << Printable(c.new_value);
    }
    std::cout << "\n";
  }
}

void TableDiffJson(Json& j, const std::string& path, const TableDiff& d) {
  j.BeginObject().Key("path").String(path).Key("format").String(TableFormatName(d.format));
  j.Key("key").BeginArray();
  for (const auto& k : d.key.columns) j.String(k);
  j.EndArray().Key("key_description").String(d.key.Describe());
  j.Key("columns_added").BeginArray();
  for (const auto& c : d.columns_added) j.String(c);
  j.EndArray().Key("columns_removed").BeginArray();
  for (const auto& c : d.columns_removed) j.String(c);
  j.EndArray();
  j.Key("rows_added").Number(d.rows_added).Key("rows_removed").Number(d.rows_removed);
  j.Key("rows_changed").Number(d.rows_changed).Key("cells_changed").Number(d.cells_changed);
  j.Key("reordered").Bool(d.reordered).Key("rows").BeginArray();
  for (const auto& r : d.rows) {
    j.BeginObject().Key("change").String(RowKindName(r.kind)).Key("key").String(r.key);
    j.Key("old_line").Number(r.old_line).Key("new_line").Number(r.new_line).Key("cells").BeginArray();
    for (const auto& c : r.cells)
      j.BeginObject().Key("column").String(c.column).Key("old").String(c.old_value).Key("new").String(c.new_value).EndObject();
    j.EndArray().EndObject();
  }
  j.EndArray().EndObject();
}

// The key for `path`: --key (`flag_key`), else the dataset's table rules,
// else detected.
KeySpec KeyFor(const std::string& path, const KeySpec& flag_key, const DatasetSettings* settings) {
  if (flag_key) return flag_key;
  return settings ? TableKeyFor(*settings, path) : std::nullopt;
}

int PrintRows(Versions& v, const DiffOpts& o) {
  KeySpec flag_key;
  if (!o.key.empty()) {
    auto cols = ParseKeyColumns(o.key);
    if (!cols.ok()) return Fail(cols.status());
    flag_key = std::move(cols).value();
  }
  const std::optional<DatasetSettings>& settings = v.settings;
  Json j;
  j.BeginArray();
  std::vector<Change> others;
  int not_tables = 0;
  for (const auto& c : v.changes) {
    auto format = TableFormatFor(v.FormatOf(c.path), c.path);
    bool both = c.kind == Change::Kind::kModified || c.kind == Change::Kind::kRenamed;
    if (!format || !both || (c.kind == Change::Kind::kModified && !c.content_changed)) {
      others.push_back(c);
      continue;
    }
    auto d = ReadFileDiff(v, c);
    if (!d.ok()) return Fail(d.status());
    if (d->TooLarge()) return Fail(Printable(c.path) + " is larger than 64 MiB: too large to compare by row");
    auto diff = DiffTables(d->old_side.text, d->new_side.text, *format, KeyFor(c.path, flag_key, settings ? &*settings : nullptr));
    if (!diff.ok()) {
      // Not a table: say why, with the line, and go on with the others.
      std::cerr << "tusk: " << Printable(c.path) << ": " << diff.status().message() << std::endl;
      not_tables++;
      continue;
    }
    if (o.json) TableDiffJson(j, c.path, *diff);
    else PrintTableDiff(c.path, *diff);
  }
  if (o.json) {
    j.EndArray().Print();
  } else if (!others.empty()) {
    PrintChangeList(others, false);
  }
  if (not_tables) return Fail(std::to_string(not_tables) + " file(s) could not be compared as tables (above)");
  return 0;
}

int RunDiff(Cli& cli, const DiffOpts& o) {
  if (o.inputs) return DiffInputs(cli, o.a, o.b, o.json);
  auto v = LoadVersions(cli, o);
  if (!v.ok()) return Fail(v.status());
  if (o.rows) return PrintRows(*v, o);
  if (!o.stat && !o.patch) {
    PrintChangeList(v->changes, o.json);
    return 0;
  }
  Status st;
  if (o.json) st = PrintContentJson(*v, o);
  if (!o.json && o.stat) st = PrintStats(*v);
  if (!o.json && st.ok() && o.patch) {
    if (o.stat && !v->changes.empty()) std::cout << "\n";
    st = PrintPatches(*v);
  }
  return st.ok() ? 0 : Fail(st);
}

}  // namespace

void AddDiffCommand(CLI::App& app, Cli& cli) {
  auto o = std::make_shared<DiffOpts>();
  CLI::App* sub = app.add_subcommand(
      "diff", "Show what changed between two versions: files, line counts (--stat) or the unified diff (-p)");
  sub->add_option("old", o->a, "DATASET@REF (with --inputs: run:ID, or a version a run made)")->required();
  sub->add_option("new", o->b, "DATASET@REF (with --inputs: run:ID, or a version a run made)")->required();
  CLI::Option* paths = sub->add_option(
      "paths", o->paths, "Only changes at or below these paths (each must exist in at least one of the versions)");
  CLI::Option* stat = sub->add_flag(
      "--stat", o->stat, "Per file: lines added and removed (text), or old and new size (binary), and a summary");
  CLI::Option* patch = sub->add_flag(
      "-p,--patch", o->patch,
      "The unified diff of each changed text file (binary and larger than 64 MiB files are named as such)");
  CLI::Option* rows = sub->add_flag(
      "--rows", o->rows,
      "CSV/TSV/JSONL files row by row: rows added, removed and changed, with the changed cells (as tusk merge keys them)");
  CLI::Option* key = sub->add_option("--key", o->key, "With --rows: the key column(s), comma-separated (default: the "
                                                      "dataset's table rules, else detected)")
                         ->needs(rows);
  rows->excludes(stat)->excludes(patch);
  AddJsonFlag(sub, &o->json);
  sub->add_flag("--inputs", o->inputs,
                "Compare what two runs read: files read by only one, and read by both with different content")
      ->excludes(paths)
      ->excludes(stat)
      ->excludes(patch)
      ->excludes(rows)
      ->excludes(key);
  sub->callback([o, &cli] { cli.exit_code = RunDiff(cli, *o); });
}

}  // namespace tusk::cli
