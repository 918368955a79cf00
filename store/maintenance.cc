// Repository maintenance: garbage collection, integrity checks, statistics.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "store/internal/crc32c.h"
#include "store/internal/file.h"
#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"
#include "store/lease.h"
#include "store/workspace/workspace.h"
#include "store/repository.h"

namespace tusk {
namespace {

using IdSet = std::unordered_set<ObjectId, ObjectIdHash>;

struct IndexedObject {
  ObjectId id;
  ObjectLocation loc;
};

using tables::IdFromView;
using tables::PackFromKey;
using tables::PackKey;

struct RefHead {
  std::string label;  // "data@main"
  ObjectId commit;
};

Status AllRefHeads(LmdbEnv& env, const std::optional<std::string>& only_dataset, std::vector<RefHead>* out) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
  std::string prefix = only_dataset ? tables::DatasetPrefix(*only_dataset) : "";
  return txn.ScanPrefix(env.db(tables::kRefs), prefix, [&](std::string_view k, std::string_view v) {
    if (v.size() != ObjectId::kSize) return true;  // a branch with no commits
    size_t nul = k.find('\0');
    out->push_back({std::string(k.substr(0, nul)) + "@" + std::string(k.substr(nul + 2)), IdFromView(v)});
    return true;
  });
}

Status AllIndexed(LmdbEnv& env, std::vector<IndexedObject>* out) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
  Status bad;
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kObjects), "", [&](std::string_view k, std::string_view v) {
    auto loc = ObjectLocation::Decode(v);
    if (!loc.ok() || k.size() != ObjectId::kSize) {
      bad = Status::Corruption("index entry for " + IdFromView(k).Hex() + " does not decode");
      return false;
    }
    out->push_back({IdFromView(k), *loc});
    return true;
  }));
  return bad;
}

}  // namespace

Status Repository::MarkReachable(IdSet* live, Progress* progress) {
  std::vector<RefHead> heads;
  TUSK_RETURN_IF_ERROR(AllRefHeads(*env_, std::nullopt, &heads));
  // Commits that running mounts serve stay, whatever refs say.
  TUSK_ASSIGN_OR_RETURN(std::vector<ObjectId> leased, LeasedCommits(dir_));
  for (const auto& id : leased) {
    auto present = Contains(id);
    if (present.ok() && *present) heads.push_back({"a running mount", id});
  }
  // So do the commits that workspaces with staged changes build on.
  TUSK_ASSIGN_OR_RETURN(std::vector<ObjectId> bases, WorkspaceBases(dir_));
  for (const auto& id : bases) {
    auto present = Contains(id);
    if (present.ok() && *present) heads.push_back({"a workspace", id});
  }
  IdSet trees;
  std::function<Status(const ObjectId&)> walk_tree = [&](const ObjectId& root) -> Status {
    if (!trees.insert(root).second) return Status::Ok();
    TUSK_RETURN_IF_ERROR(ForEachPage(*this, root, [&](const ObjectId& page) { live->insert(page); }));
    std::vector<ObjectId> subdirs;
    TUSK_RETURN_IF_ERROR(ForEachEntry(*this, root, [&](const TreeEntry& e) {
      if (e.kind == EntryKind::kDirectory) subdirs.push_back(e.tree);
      for (const auto& c : e.chunks)
        if (!c.IsHole()) live->insert(c.id);
      return true;
    }));
    for (const auto& s : subdirs) TUSK_RETURN_IF_ERROR(walk_tree(s));
    return Status::Ok();
  };
  for (const auto& head : heads) {
    std::vector<ObjectId> stack{head.commit};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (!live->insert(id).second) continue;
      TUSK_ASSIGN_OR_RETURN(Commit c, ReadCommit(id));
      TUSK_RETURN_IF_ERROR(walk_tree(c.root).Annotate("reachable from " + head.label));
      for (const auto& p : c.parents) stack.push_back(p);
      if (progress) progress->items_done++;
    }
  }
  return Status::Ok();
}

Result<GcReport> Repository::CollectGarbage(bool dry_run, Progress* progress) {
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockStore(true));
  GcReport report;
  IdSet live;
  // A store whose reachable data cannot be read must not be collected: we
  // could not tell what is garbage.
  TUSK_RETURN_IF_ERROR(MarkReachable(&live, progress).Annotate("gc stopped, nothing was removed (run tusk fsck)"));
  std::vector<IndexedObject> all;
  TUSK_RETURN_IF_ERROR(AllIndexed(*env_, &all));
  std::map<PackId, std::vector<IndexedObject>> live_by_pack;
  std::set<PackId> packs_with_dead;
  std::vector<IndexedObject> dead;
  for (const auto& o : all) {
    if (live.count(o.id)) {
      live_by_pack[o.loc.pack].push_back(o);
      report.objects_kept++;
    } else {
      dead.push_back(o);
      packs_with_dead.insert(o.loc.pack);
      report.objects_removed++;
      report.bytes_removed += o.loc.stored_len;
    }
  }
  // Packs on disk that the index does not know: leftovers of interrupted
  // writes (no other writer runs while we hold the exclusive lock).
  std::set<PackId> registered;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view) {
      registered.insert(PackFromKey(k));
      return true;
    }));
  }
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> on_disk, packs_->ListPacks());
  std::vector<PackId> orphans;
  for (PackId p : on_disk)
    if (!registered.count(p)) orphans.push_back(p);
  // Registered packs with no live object at all are deleted outright.
  for (PackId p : registered)
    if (!live_by_pack.count(p)) packs_with_dead.insert(p);
  report.packs_deleted = orphans.size();
  if (dry_run) {
    for (PackId p : packs_with_dead) (live_by_pack.count(p) ? report.packs_rewritten : report.packs_deleted)++;
    return report;
  }

  // Copy live records out of packs that hold garbage into new packs.
  std::vector<std::unique_ptr<PackWriter>> written;
  std::vector<IndexedObject> moved;
  std::string stored;
  for (PackId p : packs_with_dead) {
    auto it = live_by_pack.find(p);
    if (it == live_by_pack.end()) {
      report.packs_deleted++;
      continue;
    }
    report.packs_rewritten++;
    for (const auto& o : it->second) {
      TUSK_RETURN_IF_ERROR(packs_->ReadStored(o.id, o.loc, &stored).Annotate("gc stopped, nothing was removed"));
      if (written.empty() || written.back()->size() >= (32ull << 20)) {
        if (!written.empty()) TUSK_RETURN_IF_ERROR(written.back()->Seal());
        TUSK_ASSIGN_OR_RETURN(auto w, PackWriter::Create(packs_.get()));
        written.push_back(std::move(w));
      }
      TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, written.back()->Append(o.loc.type, o.id, o.loc.codec, o.loc.raw_len, stored,
                                                                               Crc32c(stored.data(), stored.size())));
      moved.push_back({o.id, loc});
      if (progress) progress->bytes_done += o.loc.stored_len;
    }
  }
  if (!written.empty()) TUSK_RETURN_IF_ERROR(written.back()->Seal());
  // One transaction switches the index to the new packs; only after it
  // commits are the old packs deleted, so a crash at any point loses nothing.
  TUSK_RETURN_IF_ERROR(env_->Update([&](LmdbTxn& txn) -> Status {
    IdSet dead_commits;
    for (const auto& o : dead) {
      TUSK_RETURN_IF_ERROR(txn.Delete(env_->db(tables::kObjects), o.id.view()));
      if (o.loc.type == ObjectType::kCommit) dead_commits.insert(o.id);
    }
    if (!dead_commits.empty()) {
      // commits-table keys are dataset \0 id; drop those of removed commits.
      std::vector<std::string> keys;
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kCommits), "", [&](std::string_view k, std::string_view) {
        if (k.size() > ObjectId::kSize && dead_commits.count(IdFromView(k.substr(k.size() - ObjectId::kSize))))
          keys.emplace_back(k);
        return true;
      }));
      for (const auto& k : keys) TUSK_RETURN_IF_ERROR(txn.Delete(env_->db(tables::kCommits), k));
    }
    for (const auto& o : moved) TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kObjects), o.id.view(), o.loc.Encode()));
    for (PackId p : packs_with_dead) TUSK_RETURN_IF_ERROR(txn.Delete(env_->db(tables::kPacks), PackKey(p)));
    for (const auto& w : written) {
      Encoder e;
      e.PutFixed64(w->size());
      e.PutFixed32(static_cast<uint32_t>(w->records().size()));
      TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kPacks), PackKey(w->id()), e.buffer()));
    }
    return Status::Ok();
  }));
  for (PackId p : packs_with_dead) TUSK_RETURN_IF_ERROR(packs_->Remove(p));
  for (PackId p : orphans) TUSK_RETURN_IF_ERROR(packs_->Remove(p));
  return report;
}

Result<FsckReport> Repository::Check(Progress* progress) {
  FsckReport report;
  std::map<ObjectId, std::string> bad;  // id -> error
  // 1. Every pack the index knows exists.
  std::set<PackId> registered;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view) {
      registered.insert(PackFromKey(k));
      return true;
    }));
  }
  for (PackId p : registered) {
    auto size = packs_->SizeOf(p);
    if (!size.ok()) report.problems.push_back({"pack " + PackName(p), size.status().message(), {}});
  }
  // 2. Every indexed object re-read, in pack order, and re-hashed.
  std::vector<IndexedObject> all;
  TUSK_RETURN_IF_ERROR(AllIndexed(*env_, &all));
  std::sort(all.begin(), all.end(), [](const IndexedObject& a, const IndexedObject& b) {
    return std::tie(a.loc.pack, a.loc.offset) < std::tie(b.loc.pack, b.loc.offset);
  });
  if (progress) {
    uint64_t total = 0;
    for (const auto& o : all) total += o.loc.raw_len;
    progress->bytes_total = total;
    progress->items_total = all.size();
  }
  std::string plain;
  for (const auto& o : all) {
    Status st = packs_->ReadRecord(o.id, o.loc, true, &plain);
    if (st.ok() && o.loc.type != ObjectType::kChunk && HashObject(o.loc.type, plain) != o.id)
      st = Status::Corruption("does not hash to its id");
    if (st.ok() && o.loc.type == ObjectType::kTree) st = DecodeTreePage(plain).status();
    if (st.ok() && o.loc.type == ObjectType::kCommit) st = DecodeCommit(plain).status();
    if (!st.ok()) bad[o.id] = std::string(ObjectTypeName(o.loc.type)) + ": " + st.message();
    report.objects_checked++;
    report.bytes_checked += o.loc.raw_len;
    if (progress) {
      progress->items_done++;
      progress->bytes_done += o.loc.raw_len;
    }
  }
  // 3. Walk every ref: report missing objects, and name the files and commits
  // that each bad object breaks.
  std::vector<RefHead> heads;
  TUSK_RETURN_IF_ERROR(AllRefHeads(*env_, std::nullopt, &heads));
  std::map<ObjectId, std::vector<std::string>> affected;  // bad or missing object -> what it breaks
  std::unordered_map<ObjectId, bool, ObjectIdHash> tree_clean;
  std::set<ObjectId> missing;
  auto problem_object = [&](const ObjectId& id) -> bool {
    if (bad.count(id)) return true;
    auto present = Contains(id);
    if (present.ok() && !*present) {
      missing.insert(id);
      return true;
    }
    return false;
  };
  // Returns whether the subtree is clean; records affected paths when not.
  std::function<bool(const ObjectId&, const std::string&)> walk = [&](const ObjectId& root, const std::string& where) {
    auto known = tree_clean.find(root);
    if (known != tree_clean.end() && known->second) return true;
    bool clean = true;
    std::vector<ObjectId> pages;
    Status st = ForEachPage(*this, root, [&](const ObjectId& page) { pages.push_back(page); });
    for (const auto& p : pages)
      if (problem_object(p)) {
        affected[p].push_back(where + "/");
        clean = false;
      }
    if (!st.ok() && clean) {
      affected[root].push_back(where + "/");
      bad.emplace(root, "tree: " + st.message());
      clean = false;
    }
    if (st.ok()) {
      std::vector<std::pair<ObjectId, std::string>> subdirs;
      Status each = ForEachEntry(*this, root, [&](const TreeEntry& e) {
        std::string path = where + "/" + e.name;
        if (e.kind == EntryKind::kDirectory) subdirs.emplace_back(e.tree, path);
        for (const auto& c : e.chunks)
          if (!c.IsHole() && problem_object(c.id)) {
            affected[c.id].push_back(path);
            clean = false;
          }
        return true;
      });
      if (!each.ok()) clean = false;
      for (const auto& [sub, path] : subdirs)
        if (!walk(sub, path)) clean = false;
    }
    tree_clean[root] = clean;
    return clean;
  };
  std::set<ObjectId> commits_seen;
  for (const auto& head : heads) {
    std::vector<ObjectId> stack{head.commit};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (!commits_seen.insert(id).second) continue;
      report.commits_checked++;
      std::string label = head.label.substr(0, head.label.find('@')) + "@" + id.ShortHex();
      if (problem_object(id)) {
        affected[id].push_back(label + " (reachable from " + head.label + ")");
        continue;
      }
      auto c = ReadCommit(id);
      if (!c.ok()) continue;
      walk(c->root, label + ":");
      for (const auto& p : c->parents) stack.push_back(p);
    }
  }
  for (const auto& [id, err] : bad) {
    FsckProblem p{"", err, affected[id]};
    p.object = err.substr(0, err.find(':')) + " " + id.Hex();
    p.error = err.substr(err.find(':') + 2);
    report.problems.push_back(std::move(p));
  }
  for (const auto& id : missing) report.problems.push_back({"object " + id.Hex(), "missing from the store", affected[id]});
  return report;
}

Result<StoreStats> Repository::Stats(const std::optional<std::string>& dataset) {
  if (dataset) TUSK_RETURN_IF_ERROR(CheckDataset(*dataset));
  StoreStats s;
  std::vector<RefHead> heads;
  TUSK_RETURN_IF_ERROR(AllRefHeads(*env_, dataset, &heads));
  TUSK_ASSIGN_OR_RETURN(auto datasets, ListDatasets());
  s.datasets = dataset ? 1 : datasets.size();
  IdSet commits, trees, chunks;
  for (const auto& head : heads) {
    std::vector<ObjectId> stack{head.commit};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (!commits.insert(id).second) continue;
      TUSK_ASSIGN_OR_RETURN(Commit c, ReadCommit(id));
      s.logical_bytes += c.total_bytes;
      std::function<Status(const ObjectId&)> walk = [&](const ObjectId& root) -> Status {
        if (!trees.insert(root).second) return Status::Ok();
        std::vector<ObjectId> subdirs;
        TUSK_RETURN_IF_ERROR(ForEachEntry(*this, root, [&](const TreeEntry& e) {
          if (e.kind == EntryKind::kDirectory) subdirs.push_back(e.tree);
          for (const auto& ch : e.chunks)
            if (!ch.IsHole()) chunks.insert(ch.id);
          return true;
        }));
        for (const auto& d : subdirs) TUSK_RETURN_IF_ERROR(walk(d));
        return Status::Ok();
      };
      TUSK_RETURN_IF_ERROR(walk(c.root));
      for (const auto& p : c.parents) stack.push_back(p);
    }
  }
  s.commits = commits.size();
  s.trees = trees.size();
  s.chunks = chunks.size();
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    for (const auto& id : chunks) {
      auto v = txn.Get(env_->db(tables::kObjects), id.view());
      if (!v.ok()) continue;
      auto loc = ObjectLocation::Decode(*v);
      if (!loc.ok()) continue;
      s.unique_bytes += loc->raw_len;
      s.stored_bytes += loc->stored_len;
    }
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view, std::string_view v) {
      Decoder d(v);
      uint64_t size = 0;
      d.GetFixed64(&size);
      s.packs++;
      s.pack_bytes += size;
      return true;
    }));
  }
  struct stat st;
  if (::stat(JoinPath(dir_, "index/data.mdb").c_str(), &st) == 0) s.index_bytes = static_cast<uint64_t>(st.st_size);
  return s;
}

}  // namespace tusk
