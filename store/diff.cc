#include "store/diff.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>

namespace tusk {
namespace {

struct Leaf {
  std::string path;
  TreeEntry entry;
};

class Differ {
 public:
  explicit Differ(ObjectSource& source) : source_(source) {}

  Status Compare(const ObjectId& a, const ObjectId& b, const std::string& prefix);
  std::vector<Change> changes;
  std::vector<Leaf> deleted, added;

 private:
  // Every non-directory below a directory, or the directory itself if empty.
  Status Expand(const TreeEntry& e, const std::string& path, std::vector<Leaf>* out);
  ObjectSource& source_;
};

Status Differ::Expand(const TreeEntry& e, const std::string& path, std::vector<Leaf>* out) {
  if (e.kind != EntryKind::kDirectory) {
    out->push_back({path, e});
    return Status::Ok();
  }
  TUSK_ASSIGN_OR_RETURN(auto entries, ReadDirectory(source_, e.tree));
  if (entries.empty()) out->push_back({path + "/", e});
  for (const auto& c : entries) TUSK_RETURN_IF_ERROR(Expand(c, path + "/" + c.name, out));
  return Status::Ok();
}

Status Differ::Compare(const ObjectId& a, const ObjectId& b, const std::string& prefix) {
  if (a == b) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(auto old_entries, ReadDirectory(source_, a));
  TUSK_ASSIGN_OR_RETURN(auto new_entries, ReadDirectory(source_, b));
  size_t i = 0, j = 0;
  while (i < old_entries.size() || j < new_entries.size()) {
    bool take_old = j == new_entries.size() || (i < old_entries.size() && old_entries[i].name < new_entries[j].name);
    bool take_new = i == old_entries.size() || (j < new_entries.size() && new_entries[j].name < old_entries[i].name);
    if (take_old) {
      const auto& o = old_entries[i++];
      TUSK_RETURN_IF_ERROR(Expand(o, prefix + o.name, &deleted));
    } else if (take_new) {
      const auto& n = new_entries[j++];
      TUSK_RETURN_IF_ERROR(Expand(n, prefix + n.name, &added));
    } else {
      const auto& o = old_entries[i++];
      const auto& n = new_entries[j++];
      std::string path = prefix + n.name;
      if (o.kind == EntryKind::kDirectory && n.kind == EntryKind::kDirectory) {
        TUSK_RETURN_IF_ERROR(Compare(o.tree, n.tree, path + "/"));
      } else if (o.kind != n.kind || (o.mode & S_IFMT) != (n.mode & S_IFMT)) {  // a fifo became a device, say
        Change c{Change::Kind::kTypeChanged, path, "", o.size, n.size, true};
        changes.push_back(c);
      } else if (!(o == n)) {
        Change c{Change::Kind::kModified, path, "", o.size, n.size, !o.SameContent(n)};
        changes.push_back(c);
      }
    }
  }
  return Status::Ok();
}

// Identity of content for rename detection.
std::string ContentKey(const TreeEntry& e) {
  std::string key(1, static_cast<char>(e.kind));
  if (e.kind == EntryKind::kSymlink) return key + e.target;
  if (e.kind == EntryKind::kSpecial) return key + std::to_string(e.mode & S_IFMT) + ":" + std::to_string(e.rdev);
  for (const auto& c : e.chunks) {
    key.append(c.id.view());
    key.append(std::to_string(c.length));
  }
  return key;
}

}  // namespace

char ChangeLetter(Change::Kind kind) {
  switch (kind) {
    case Change::Kind::kAdded: return 'A';
    case Change::Kind::kDeleted: return 'D';
    case Change::Kind::kModified: return 'M';
    case Change::Kind::kRenamed: return 'R';
    case Change::Kind::kTypeChanged: return 'T';
  }
  return '?';
}

Result<std::vector<Change>> DiffTrees(ObjectSource& source, const ObjectId& old_root, const ObjectId& new_root) {
  Differ d(source);
  TUSK_RETURN_IF_ERROR(d.Compare(old_root, new_root, ""));
  // Pair deletions with additions of the same non-empty content as renames.
  std::multimap<std::string, size_t> added_by_content;
  for (size_t k = 0; k < d.added.size(); k++) {
    const auto& e = d.added[k].entry;
    if (e.kind != EntryKind::kDirectory && e.size > 0) added_by_content.emplace(ContentKey(e), k);
  }
  std::vector<bool> added_used(d.added.size(), false);
  for (const auto& del : d.deleted) {
    auto it = del.entry.kind != EntryKind::kDirectory && del.entry.size > 0 ? added_by_content.find(ContentKey(del.entry))
                                                                              : added_by_content.end();
    if (it != added_by_content.end()) {
      const auto& add = d.added[it->second];
      added_used[it->second] = true;
      d.changes.push_back({Change::Kind::kRenamed, add.path, del.path, del.entry.size, add.entry.size, false});
      added_by_content.erase(it);
    } else {
      d.changes.push_back({Change::Kind::kDeleted, del.path, "", del.entry.size, 0, true});
    }
  }
  for (size_t k = 0; k < d.added.size(); k++)
    if (!added_used[k]) d.changes.push_back({Change::Kind::kAdded, d.added[k].path, "", 0, d.added[k].entry.size, true});
  std::sort(d.changes.begin(), d.changes.end(), [](const Change& x, const Change& y) { return x.path < y.path; });
  return d.changes;
}

}  // namespace tusk
