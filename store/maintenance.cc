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
#include "store/internal/ref_log.h"
#include "store/internal/ref_record.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"
#include "store/lease.h"
#include "store/settings/settings.h"
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

// The remotes that have remote-tracking refs.
Result<std::vector<std::string>> RemoteNamesWithRefs(LmdbEnv& env) {
  std::set<std::string> names;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kRemoteRefs), "", [&](std::string_view k, std::string_view) {
    names.emplace(k.substr(0, k.find('\0')));
    return true;
  }));
  return std::vector<std::string>(names.begin(), names.end());
}

Status AllRefHeads(LmdbEnv& env, const std::optional<std::string>& only_dataset, std::vector<RefHead>* out) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
  std::string prefix = only_dataset ? tables::DatasetPrefix(*only_dataset) : "";
  return txn.ScanPrefix(env.db(tables::kRefs), prefix, [&](std::string_view k, std::string_view v) {
    tables::RefKeyParts ref;
    if (v.size() != ObjectId::kSize || !tables::ParseRefKey(k, &ref)) return true;  // a branch with no commits
    if (ref.kind == tables::kSettingsKind) return true;  // not a commit: MarkReachable keeps settings
    out->push_back({std::string(ref.dataset) + "@" + std::string(ref.name), IdFromView(v)});
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

// Deletes the index entries of removed objects, and the commits-table keys
// (dataset \0 id) of removed commits, in `txn`.
Status ForgetObjects(LmdbEnv& env, LmdbTxn& txn, const std::vector<IndexedObject>& dead) {
  IdSet dead_commits;
  for (const auto& o : dead) {
    TUSK_RETURN_IF_ERROR(txn.Delete(env.db(tables::kObjects), o.id.view()));
    if (o.loc.type == ObjectType::kCommit) dead_commits.insert(o.id);
  }
  if (dead_commits.empty()) return Status::Ok();
  std::vector<std::string> keys;
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kCommits), "", [&](std::string_view k, std::string_view) {
    if (k.size() > ObjectId::kSize && dead_commits.count(IdFromView(k.substr(k.size() - ObjectId::kSize))))
      keys.emplace_back(k);
    return true;
  }));
  for (const auto& k : keys) TUSK_RETURN_IF_ERROR(txn.Delete(env.db(tables::kCommits), k));
  // And the runs' links to outputs that are gone (a deleted rerun branch).
  keys.clear();
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kRunLinks), "o", [&](std::string_view k, std::string_view) {
    if (k.size() == 1 + 2 * ObjectId::kSize && dead_commits.count(IdFromView(k.substr(1 + ObjectId::kSize))))
      keys.emplace_back(k);
    return true;
  }));
  for (const auto& k : keys) TUSK_RETURN_IF_ERROR(txn.Delete(env.db(tables::kRunLinks), k));
  return Status::Ok();
}

// The one rule by which gc deletes a pack file the index does not list
// (issue 9, defects 1 and 11): the pack has no valid trailer, so it was
// never sealed, and it is older than every writer holding the store lock
// shared. Writers hold that lock for their whole session and `exclusive`
// (the store lock, held exclusively by the caller) shuts them all out, so
// whoever wrote such a pack is gone and will never seal or register it.
// Callers still check that nothing reachable lives only in it
// (CheckRemovedPacksHoldNothingLive).
Result<bool> IsAbandonedPartialPack(PackDirectory& packs, PackId id, const Fd& exclusive) {
  if (!exclusive.valid()) return Status::InvalidArgument("the store lock is not held");
  TUSK_ASSIGN_OR_RETURN(bool sealed, packs.HasValidTrailer(id));
  return !sealed;
}

// Before gc removes pack files: every record in them that a ref still
// reaches must survive where the index says it is. The index has no
// checksums, so a damaged entry (a flipped pack id, an object id changed
// in place) could otherwise make a pack that holds live data look like
// garbage. `copied` are the packs whose live records gc copies out, from
// the places the index names (each copy re-checks the record it reads).
Status CheckRemovedPacksHoldNothingLive(PackDirectory& packs, LmdbEnv& env, const IdSet& live,
                                        const std::set<PackId>& removed, const std::set<PackId>& copied) {
  auto refuse = [&](PackId p, const ObjectId& id, const std::string& why) {
    return Status::Corruption("gc refused, nothing was removed: pack " + PackName(p) + " holds " + id.Hex() +
                              ", which a ref still reaches, but " + why + "; the index may be damaged: run 'tusk fsck', "
                              "and rebuild the index with '" + kIndexRebuildCommand + "'");
  };
  std::string stored;
  for (PackId p : removed) {
    auto size = packs.SizeOf(p);
    if (!size.ok()) {
      // A gc killed after it deleted a pack's file but before it dropped the
      // pack's index entry leaves the entry alone. Gone is what gc wanted,
      // unless the index still places something reachable there.
      if (size.status().code() == Status::Code::kNotFound && !copied.count(p)) continue;
      return size.status().Annotate("gc refused, nothing was removed");
    }
    if (*size < kPackHeaderSize) continue;  // a writer died before the header: nothing in it
    auto records = packs.ListRecords(p);
    if (!records.ok()) {
      // Unreadable, and the index places nothing reachable in it: nothing
      // to keep that could be read anyway.
      if (!copied.count(p)) continue;
      return records.status().Annotate("gc refused, nothing was removed: cannot list pack " + PackName(p));
    }
    for (const PackRecord& r : *records) {
      if (!live.count(r.id)) continue;
      std::optional<ObjectLocation> at;
      {
        TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
        auto v = txn.Get(env.db(tables::kObjects), r.id.view());
        if (!v.ok() && v.status().code() != Status::Code::kNotFound) return v.status();
        if (v.ok()) {
          auto loc = ObjectLocation::Decode(*v);
          if (loc.ok()) at = *loc;
        }
      }
      if (!at) return refuse(p, r.id, "the index does not locate it");
      if (at->pack == p) {
        if (!copied.count(p) || at->offset != r.location.offset || at->stored_len != r.location.stored_len)
          return refuse(p, r.id, "the index places it differently");
        continue;
      }
      if (removed.count(at->pack) && !copied.count(at->pack)) return refuse(p, r.id, "its other copy goes too");
      if (!packs.ReadStored(r.id, *at, &stored).ok()) return refuse(p, r.id, "the index places it where it is not");
    }
  }
  return Status::Ok();
}

// Removes whole packs of garbage before anything is written, so that a full
// disk gets space back before gc needs any: one index transaction that only
// forgets their objects and marks the packs pending (it writes no new key,
// and LMDB reuses its free pages for it), then the files, then the entries.
// A gc killed between any two steps leaves packs the index accounts for, so
// the next gc finishes the job rather than finding packs it does not know.
// Takes them out of `packs_with_dead` and their objects out of `dead`;
// returns how many.
Result<uint64_t> DropWholeGarbagePacks(LmdbEnv& env, PackDirectory& packs,
                                       const std::map<PackId, std::vector<IndexedObject>>& live_by_pack,
                                       std::set<PackId>* packs_with_dead, std::vector<IndexedObject>* dead) {
  std::set<PackId> whole;
  for (PackId p : *packs_with_dead)
    if (!live_by_pack.count(p)) whole.insert(p);
  if (whole.empty()) return uint64_t{0};
  std::vector<IndexedObject> gone, rest;
  for (const auto& o : *dead) (whole.count(o.loc.pack) ? gone : rest).push_back(o);
  TUSK_RETURN_IF_ERROR(env.Update([&](LmdbTxn& txn) -> Status {
    TUSK_RETURN_IF_ERROR(ForgetObjects(env, txn, gone));
    for (PackId p : whole) TUSK_RETURN_IF_ERROR(txn.Put(env.db(tables::kPacks), PackKey(p), ""));
    return Status::Ok();
  }));
  KillPointForTests("gc-garbage-packs-pending");
  for (PackId p : whole) TUSK_RETURN_IF_ERROR(packs.Remove(p));
  KillPointForTests("gc-garbage-packs-removed");
  TUSK_RETURN_IF_ERROR(env.Update([&](LmdbTxn& txn) -> Status {
    for (PackId p : whole) TUSK_RETURN_IF_ERROR(txn.Delete(env.db(tables::kPacks), PackKey(p)));
    return Status::Ok();
  }));
  for (PackId p : whole) packs_with_dead->erase(p);
  *dead = std::move(rest);
  return uint64_t{whole.size()};
}

// The index's `datasets` and `refs` are a cache of the current ref records:
// what a rebuild would derive from the records `refrecords` points at
// (DeriveRefState) must be what the index holds. A value damaged in place
// passes LMDB's structural check; only this finds it.
Status CheckRefsAgainstRecords(Repository& repo, LmdbEnv& env, FsckReport* report) {
  std::map<std::string, RefRecordPointer> pointers;
  std::set<std::string> datasets;           // as the index has them
  std::map<std::string, std::string> refs;  // as the index has them
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
    Status bad;
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kRefRecords), "", [&](std::string_view k, std::string_view v) {
      auto p = RefRecordPointer::Decode(v);
      if (!p.ok()) bad = p.status();
      else pointers.emplace(std::string(k), *p);
      return p.ok();
    }));
    TUSK_RETURN_IF_ERROR(bad);
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kDatasets), "", [&](std::string_view k, std::string_view) {
      datasets.emplace(k);
      return true;
    }));
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kRefs), "", [&](std::string_view k, std::string_view v) {
      refs.emplace(std::string(k), std::string(v));
      return true;
    }));
  }
  std::map<std::string, StoredRefRecord> current;
  for (const auto& [key, at] : pointers) {
    auto plain = repo.ReadObject(at.id, ObjectType::kRef);
    Result<RefRecord> record = plain.ok() ? RefRecord::Decode(*plain) : Result<RefRecord>(plain.status());
    if (record.ok() && record->Key() != key) record = Status::Corruption("it is the record of another key");
    if (!record.ok()) {
      report->problems.push_back({"ref record " + at.id.Hex(), "the current record of " + EscapeForDisplay(key) +
                                                                 " cannot be used: " + record.status().message(),
                                  {}});
      continue;
    }
    current.emplace(key, StoredRefRecord{*record, at.id});
  }
  const RefState want = DeriveRefState(current);
  auto index_problem = [&](const std::string& what, const std::string& index_says, const std::string& records_say) {
    report->problems.push_back({what, "the index says " + index_says + ", the ref records say " + records_say +
                                          ": the index is damaged; rebuild it with '" + kIndexRebuildCommand + "'",
                                {}});
  };
  std::set<std::string> all_datasets = datasets;
  for (const auto& [name, f] : want.datasets) all_datasets.insert(name);
  for (const auto& d : all_datasets)
    if (datasets.count(d) != want.datasets.count(d))
      index_problem("dataset " + EscapeForDisplay(d), datasets.count(d) ? "it exists" : "it does not exist",
                    want.datasets.count(d) ? "it exists" : "it does not exist");
  auto describe = [](const std::string* value) -> std::string {
    if (!value) return "no such ref";
    if (value->empty()) return "a branch with no commits";
    if (value->size() != ObjectId::kSize) return "a value that is not a commit id";
    return "commit " + IdFromView(*value).Hex();
  };
  std::set<std::string> all_refs;
  for (const auto& [k, v] : refs) all_refs.insert(k);
  for (const auto& [k, v] : want.refs) all_refs.insert(k);
  for (const auto& key : all_refs) {
    auto have = refs.find(key);
    auto should = want.refs.find(key);
    const std::string* h = have == refs.end() ? nullptr : &have->second;
    const std::string* w = should == want.refs.end() ? nullptr : &should->second;
    if ((h == nullptr) == (w == nullptr) && (!h || *h == *w)) continue;
    tables::RefKeyParts ref;
    std::string name = tables::ParseRefKey(key, &ref)
                           ? EscapeForDisplay(std::string(ref.dataset)) + "@" + EscapeForDisplay(std::string(ref.name))
                           : EscapeForDisplay(key);
    index_problem("ref " + name, describe(h), describe(w));
  }
  return Status::Ok();
}

}  // namespace

Status Repository::MarkReachable(IdSet* live, Progress* progress) {
  // The current record of every dataset and ref (deletions included) is
  // what a rebuild reads back: it stays; superseded records are garbage.
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    Status bad;
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRefRecords), "", [&](std::string_view, std::string_view v) {
      auto p = RefRecordPointer::Decode(v);
      if (!p.ok()) bad = p.status();
      else live->insert(p->id);
      return p.ok();
    }));
    TUSK_RETURN_IF_ERROR(bad);
  }
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
  // Every version of every dataset's settings stays: `tusk log` shows the
  // history, and commits name the version they were checked against.
  std::vector<ObjectId> settings_heads;
  // Remote-tracking refs too: what a fetch copied here (commits, trees,
  // settings) is what merges and pushes of those refs read.
  {
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> remotes, RemoteNamesWithRefs(*env_));
    for (const std::string& remote : remotes) {
      TUSK_ASSIGN_OR_RETURN(std::vector<RemoteRefInfo> tracked, ListRemoteRefs(remote));
      for (const RemoteRefInfo& t : tracked) {
        if (t.kind == tables::kSettingsKind) settings_heads.push_back(t.commit);
        else heads.push_back({t.dataset + "@" + remote + "/" + t.name, t.commit});
      }
    }
  }
  {
    {
      TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRefs), "", [&](std::string_view k, std::string_view v) {
        tables::RefKeyParts ref;
        if (tables::ParseRefKey(k, &ref) && ref.kind == tables::kSettingsKind && v.size() == ObjectId::kSize)
          settings_heads.push_back(IdFromView(v));
        return true;
      }));
    }
    for (std::optional<ObjectId> at : settings_heads) {
      while (at && !live->count(*at)) {
        live->insert(*at);
        TUSK_ASSIGN_OR_RETURN(DatasetSettings s, ReadSettings(*this, *at));
        at = s.parent;
      }
    }
  }
  // Run records are roots: they keep their read sets, and their input
  // commits, so that a run can be reproduced.
  std::vector<ObjectId> read_trees;
  {
    std::vector<ObjectId> runs;
    {
      TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRuns), "", [&](std::string_view k, std::string_view) {
        if (k.size() == ObjectId::kSize) runs.push_back(IdFromView(k));
        return true;
      }));
    }
    for (const auto& id : runs) {
      live->insert(id);
      TUSK_ASSIGN_OR_RETURN(RunRecord run, ReadRun(id));
      for (const auto& in : run.inputs) {
        // A run that came from a remote names inputs of datasets this store
        // may not have fetched: nothing here to keep.
        auto present = Contains(in.commit);
        if (!present.ok()) return present.status();
        if (*present) heads.push_back({"run " + id.ShortHex() + " (input " + in.name + ")", in.commit});
        read_trees.push_back(in.read_tree);
        if (!in.listed.IsZero()) live->insert(in.listed);
      }
    }
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
  for (const auto& t : read_trees) TUSK_RETURN_IF_ERROR(walk_tree(t).Annotate("the read set of a run"));
  // Merges staged in workspaces (tusk merge --stage): their trees are no
  // commit's yet.
  TUSK_ASSIGN_OR_RETURN(std::vector<ObjectId> staged_trees, WorkspaceStagedTrees(dir_));
  for (const auto& t : staged_trees) {
    auto present = Contains(t);
    if (present.ok() && *present) TUSK_RETURN_IF_ERROR(walk_tree(t).Annotate("a merge staged in a workspace"));
  }
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
  // Every page of the index, whatever its verified stamp says (lmdb.h):
  // gc removes what the index says nothing needs.
  TUSK_RETURN_IF_ERROR(env_->Verify().status());
  // With packs the index does not know, "unreachable" means nothing: the
  // index may have lost the refs that reach them.
  std::vector<PackId> orphans;
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> unknown, UnknownPacks(&orphans));
  if (!unknown.empty())
    return Status::Corruption("gc refused, nothing was removed: " + std::to_string(unknown.size()) +
                              " pack file(s) hold records the index does not know (e.g. " +
                              packs_->PathOf(unknown.front()) + "); the index is missing or stale: rebuild it with '" +
                              kIndexRebuildCommand + "'");
  GcReport report;
  IdSet live;
  // A store whose reachable data cannot be read must not be collected: we
  // could not tell what is garbage.
  TUSK_RETURN_IF_ERROR(MarkReachable(&live, progress).Annotate("gc stopped, nothing was removed (run tusk fsck)"));
  std::vector<IndexedObject> all;
  TUSK_RETURN_IF_ERROR(AllIndexed(*env_, &all));
  // Packs on a remote are the remote's: gc here neither copies out of them
  // nor drops them (objects read from there stay readable).
  std::set<PackId> remote_packs;
  {
    TUSK_ASSIGN_OR_RETURN(auto placed, RegisteredPacks());
    for (const auto& [p, remote] : placed)
      if (!remote.empty()) remote_packs.insert(p);
  }
  std::map<PackId, std::vector<IndexedObject>> live_by_pack;
  std::set<PackId> packs_with_dead;
  std::vector<IndexedObject> dead;
  for (const auto& o : all) {
    if (remote_packs.count(o.loc.pack)) continue;
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
  std::set<PackId> registered;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view v) {
      if (!tables::IsRemotePack(v)) registered.insert(PackFromKey(k));
      return true;
    }));
  }
  // Registered packs with no live object at all are deleted outright.
  for (PackId p : registered)
    if (!live_by_pack.count(p)) packs_with_dead.insert(p);
  report.packs_deleted = orphans.size();
  if (dry_run) {
    for (PackId p : packs_with_dead) (live_by_pack.count(p) ? report.packs_rewritten : report.packs_deleted)++;
    return report;
  }

  std::set<PackId> removed(orphans.begin(), orphans.end()), copied;
  for (PackId p : packs_with_dead) (live_by_pack.count(p) ? copied : removed).insert(p);
  removed.insert(copied.begin(), copied.end());
  TUSK_RETURN_IF_ERROR(CheckRemovedPacksHoldNothingLive(*packs_, *env_, live, removed, copied));
  // Free space before needing any (a full disk): first what needs no write
  // at all, then whole packs of garbage.
  std::vector<PackId> sealed_orphans;
  for (PackId p : orphans) {
    TUSK_ASSIGN_OR_RETURN(bool abandoned, IsAbandonedPartialPack(*packs_, p, lock));
    if (abandoned) TUSK_RETURN_IF_ERROR(packs_->Remove(p));
    else sealed_orphans.push_back(p);
  }
  orphans = sealed_orphans;
  // Pending packs (a writer or gc was interrupted; none runs now) hold
  // nothing committed: their files go before any index write, so a full
  // disk has room for it. Their entries go with the other packs below.
  std::vector<PackId> pending;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view v) {
      if (tables::IsPendingPack(v)) pending.push_back(PackFromKey(k));
      return true;
    }));
  }
  for (PackId p : pending) TUSK_RETURN_IF_ERROR(packs_->Remove(p));
  KillPointForTests("gc-pending-packs-removed");
  TUSK_ASSIGN_OR_RETURN(uint64_t dropped, DropWholeGarbagePacks(*env_, *packs_, live_by_pack, &packs_with_dead, &dead));
  report.packs_deleted += dropped;

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
  KillPointForTests("gc-copies-sealed");
        TUSK_ASSIGN_OR_RETURN(auto w, CreatePendingPack(*env_, packs_.get()));
        written.push_back(std::move(w));
      }
      TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, written.back()->Append(o.loc.type, o.id, o.loc.codec, o.loc.raw_len, stored,
                                                                               Crc32c(stored.data(), stored.size())));
      moved.push_back({o.id, loc});
      if (progress) progress->bytes_done += o.loc.stored_len;
    }
  }
  if (!written.empty()) TUSK_RETURN_IF_ERROR(written.back()->Seal());
  KillPointForTests("gc-copies-sealed");
  // One transaction switches the index to the new packs; only after it
  // commits are the old packs deleted, so a crash at any point loses nothing.
  TUSK_RETURN_IF_ERROR(env_->Update([&](LmdbTxn& txn) -> Status {
    TUSK_RETURN_IF_ERROR(ForgetObjects(*env_, txn, dead));
    for (const auto& o : moved) TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kObjects), o.id.view(), o.loc.Encode()));
    // Old packs stay listed, as pending, until their files are gone: a gc
    // killed before deleting them leaves garbage the index accounts for.
    for (PackId p : packs_with_dead) TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kPacks), PackKey(p), ""));
    for (const auto& w : written) {
      Encoder e;
      e.PutFixed64(w->size());
      e.PutFixed32(static_cast<uint32_t>(w->records().size()));
      TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kPacks), PackKey(w->id()), e.buffer()));
    }
    return Status::Ok();
  }));
  KillPointForTests("gc-index-switched");
  for (PackId p : packs_with_dead) TUSK_RETURN_IF_ERROR(packs_->Remove(p));
  for (PackId p : orphans) TUSK_RETURN_IF_ERROR(packs_->Remove(p));
  KillPointForTests("gc-old-packs-removed");
  TUSK_RETURN_IF_ERROR(env_->Update([&](LmdbTxn& txn) -> Status {
    for (PackId p : packs_with_dead) TUSK_RETURN_IF_ERROR(txn.Delete(env_->db(tables::kPacks), PackKey(p)));
    return Status::Ok();
  }));
  return report;
}

Result<FsckReport> Repository::Check(Progress* progress) {
  // Every page of the index, whatever its verified stamp says (lmdb.h).
  TUSK_RETURN_IF_ERROR(env_->Verify().status());
  FsckReport report;
  std::map<ObjectId, std::string> bad;  // id -> error
  // 1. Every pack the index knows exists.
  std::set<PackId> registered;
  // Packs on remotes are not read here (every read of them is checked
  // against the objects' ids; reading a whole remote is not fsck's job).
  std::set<PackId> remote_packs;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view v) {
      if (tables::IsRemotePack(v)) remote_packs.insert(PackFromKey(k));
      else if (!tables::IsPendingPack(v)) registered.insert(PackFromKey(k));
      else report.notes.push_back("pack " + PackName(PackFromKey(k)) +
                                  " was left by an interrupted writer or gc and holds nothing committed; 'tusk gc' removes it");
      return true;
    }));
  }
  // ... and every pack on disk is known to the index.
  {
    std::vector<PackId> garbage;
    TUSK_ASSIGN_OR_RETURN(std::vector<PackId> unknown, UnknownPacks(&garbage));
    for (PackId p : unknown) {
      auto records = packs_->ListRecords(p);
      size_t refs = 0;
      if (records.ok())
        for (const auto& r : *records) refs += r.location.type == ObjectType::kRef;
      report.problems.push_back(
          {"pack " + PackName(p),
           "not in the index (" + (records.ok() ? std::to_string(records->size()) + " records, " + std::to_string(refs) +
                                                      " ref records" : records.status().message()) +
               "): the index is missing or stale; rebuild it with '" + kIndexRebuildCommand + "'",
           {}});
    }
    for (PackId p : garbage)
      report.notes.push_back("pack " + PackName(p) + " holds no record (a writer was interrupted while creating it); 'tusk gc' removes it");
  }
  // ... and is whole: header, records, footer and trailer agree.
  for (PackId p : registered) {
    auto problems = packs_->CheckPack(p);
    if (!problems.ok()) report.problems.push_back({"pack " + PackName(p), problems.status().message(), {}});
    else
      for (auto& problem : *problems) report.problems.push_back({"pack " + PackName(p), std::move(problem), {}});
  }
  // ... and its refs agree with the ref records (format 1 has none).
  if (config_.format_version >= 2) TUSK_RETURN_IF_ERROR(CheckRefsAgainstRecords(*this, *env_, &report));
  // 2. Every indexed object re-read, in pack order, and re-hashed.
  std::vector<IndexedObject> all;
  TUSK_RETURN_IF_ERROR(AllIndexed(*env_, &all));
  std::sort(all.begin(), all.end(), [](const IndexedObject& a, const IndexedObject& b) {
    return std::tie(a.loc.pack, a.loc.offset) < std::tie(b.loc.pack, b.loc.offset);
  });
  if (!remote_packs.empty()) {
    size_t before = all.size();
    std::erase_if(all, [&](const IndexedObject& o) { return remote_packs.count(o.loc.pack) > 0; });
    report.notes.push_back(std::to_string(before - all.size()) + " object(s) in " + std::to_string(remote_packs.size()) +
                           " pack(s) on remotes were not read here: every read of them is checked against the objects' ids");
  }
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
    if (st.ok() && o.loc.type == ObjectType::kRef) st = RefRecord::Decode(plain).status();
    if (st.ok() && o.loc.type == ObjectType::kRun) st = DecodeRun(plain).status();
    if (st.ok() && o.loc.type == ObjectType::kSettings) st = DecodeSettings(plain).status();
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
  std::unordered_map<ObjectId, uint32_t, ObjectIdHash> raw_len_of;
  for (const auto& o : all)
    if (o.loc.type == ObjectType::kChunk) raw_len_of.emplace(o.id, o.loc.raw_len);
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
        for (const auto& c : e.chunks) {
          if (c.IsHole()) continue;
          if (problem_object(c.id)) {
            affected[c.id].push_back(path);
            clean = false;
            continue;
          }
          // A chunk list that disagrees with its chunks would make readers
          // serve bytes past the chunk; the tree is what is wrong.
          auto held = raw_len_of.find(c.id);
          if (held != raw_len_of.end() && !CheckChunkLength(c, held->second).ok()) {
            bad.emplace(root, "tree: file " + EscapeForDisplay(e.name) + ": " + CheckChunkLength(c, held->second).message());
            affected[root].push_back(path);
            clean = false;
          }
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
      if (tables::IsRemotePack(v)) return true;  // on a remote: not on this disk
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
