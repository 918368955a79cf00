// Fetching from a remote: register its packs, copy the metadata its refs
// reach, set the remote-tracking refs.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <unordered_set>

#include "store/internal/pack.h"
#include "store/merge/merge.h"
#include "store/remote/remote.h"
#include "store/settings/settings.h"

namespace tusk {
namespace {

constexpr int kFootersInFlight = 8;
// Bounds on what a bucket may claim, so that a hostile one cannot make a
// fetch (or a later read) allocate without limit: tusk writes packs of
// about 32 MiB, and records of at most one chunk (chunk-max is at most
// 64 MiB) or one tree page.
constexpr uint64_t kMaxRemotePackSize = uint64_t{256} << 20;
constexpr uint64_t kMaxRemoteRecordSize = uint64_t{64} << 20;

// Reads the footers of `ids` on several threads.
std::vector<Result<RemotePackListing>> ListPacks(PackDirectory& packs, const std::vector<PackId>& ids,
                                                 Progress* progress) {
  std::vector<Result<RemotePackListing>> out(ids.size(), Status::Corruption("not read"));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < ids.size();) {
      out[i] = [&]() -> Result<RemotePackListing> {
        RemotePackListing l;
        l.id = ids[i];
        TUSK_ASSIGN_OR_RETURN(l.size, packs.SizeOf(ids[i]));
        if (l.size > kMaxRemotePackSize)
          return Status::Corruption(packs.PathOf(ids[i]) + " is " + std::to_string(l.size) +
                                    " bytes: larger than any pack tusk writes");
        bool sealed = false;
        TUSK_ASSIGN_OR_RETURN(l.records, packs.ListRecords(ids[i], &sealed));
        if (!sealed) return Status::Corruption(packs.PathOf(ids[i]) + " has no valid footer");
        for (const PackRecord& r : l.records)
          if (r.location.stored_len > kMaxRemoteRecordSize || r.location.raw_len > kMaxRemoteRecordSize ||
              r.location.offset + r.location.stored_len > l.size)
            return Status::Corruption(packs.PathOf(ids[i]) + " lists record " + r.id.Hex() +
                                      " with lengths no tusk record has");
        return l;
      }();
      if (progress) progress->items_done++;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min<int>(kFootersInFlight, static_cast<int>(ids.size())); t++) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  return out;
}

// Copies the metadata objects a remote's refs reach, where they are still
// read from a remote, into this store's own packs: a commit after its
// parents and its tree, a directory's pages after its subdirectories. So
// a fetch that stops part-way leaves no local object above a remote one,
// and the next fetch may stop at the first local object it meets.
// A commit's run record comes with it, after its read sets (its inputs'
// commits and data do not: they travel with their own datasets).
class Localizer {
 public:
  Localizer(Repository& repo, WriteSession& session, FetchReport* report)
      : repo_(repo), session_(session), report_(report) {}

  Status Commits(const ObjectId& head) {
    // The remote commits reachable, with their decoded parents...
    std::map<ObjectId, std::pair<std::string, Commit>> remote;
    std::vector<ObjectId> stack{head};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (remote.count(id) || !done_.insert(id).second) continue;
      TUSK_ASSIGN_OR_RETURN(bool is_remote, IsRemote(id, "commit"));
      if (!is_remote) continue;  // a local commit's history is local too
      TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(id, ObjectType::kCommit));
      auto commit = DecodeCommit(bytes);
      if (!commit.ok()) return commit.status().Annotate("commit " + id.Hex());
      for (const ObjectId& p : commit->parents) stack.push_back(p);
      remote.emplace(id, std::make_pair(std::move(bytes), std::move(commit).value()));
    }
    // ...copied oldest first: a commit once all its remote parents are.
    std::set<ObjectId> copied;
    while (copied.size() < remote.size()) {
      size_t before = copied.size();
      for (auto& [id, entry] : remote) {
        if (copied.count(id)) continue;
        const Commit& c = entry.second;
        if (std::any_of(c.parents.begin(), c.parents.end(),
                        [&](const ObjectId& p) { return remote.count(p) && !copied.count(p); }))
          continue;
        TUSK_RETURN_IF_ERROR(Tree(c.root));
        if (c.settings) TUSK_RETURN_IF_ERROR(Settings(*c.settings));
        if (c.run) TUSK_RETURN_IF_ERROR(Run(*c.run));
        TUSK_RETURN_IF_ERROR(Copy(id, ObjectType::kCommit, entry.first));
        if (c.run) session_.IndexRunOutput(*c.run, id);
        copied.insert(id);
      }
      if (copied.size() == before) return Status::Corruption("the history of commit " + head.Hex() + " has a cycle");
    }
    return Status::Ok();
  }

  // A run record, after the pages of its read sets; `tusk runs` and
  // lineage find it once it is here (the runs index is filled as it lands).
  // A push from a store older than this one sent none: nothing to copy.
  Status Run(const ObjectId& id) {
    if (!done_.insert(id).second) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectLocation> loc, repo_.FindObject(id));
    if (!loc) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(bool remote, repo_.IsRemotePack(loc->pack));
    if (!remote) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(id, ObjectType::kRun));
    auto run = DecodeRun(bytes);
    if (!run.ok()) return run.status().Annotate("run " + id.Hex());
    for (const RunInput& in : run->inputs) TUSK_RETURN_IF_ERROR(Tree(in.read_tree));
    TUSK_RETURN_IF_ERROR(session_.LocalizeRun(id, bytes));
    report_->objects_localized++;
    report_->bytes_localized += bytes.size();
    return Status::Ok();
  }

  // A settings version after the versions before it.
  Status Settings(const ObjectId& head) {
    std::vector<std::pair<ObjectId, std::string>> chain;
    std::optional<ObjectId> at = head;
    while (at && done_.insert(*at).second) {
      TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(*at, "settings"));
      if (!remote) break;
      TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(*at, ObjectType::kSettings));
      auto settings = DecodeSettings(bytes);
      if (!settings.ok()) return settings.status().Annotate("settings " + at->Hex());
      chain.emplace_back(*at, std::move(bytes));
      at = settings->parent;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
      TUSK_RETURN_IF_ERROR(Copy(it->first, ObjectType::kSettings, it->second));
    return Status::Ok();
  }

 private:
  Result<bool> IsRemote(const ObjectId& id, const char* what) {
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectLocation> loc, repo_.FindObject(id));
    if (!loc)
      return Status::Corruption(std::string(what) + " " + id.Hex() +
                                " is reached from the remote's refs but no pack of the remote holds it");
    return repo_.IsRemotePack(loc->pack);
  }
  Status Copy(const ObjectId& id, ObjectType type, const std::string& plaintext) {
    TUSK_RETURN_IF_ERROR(session_.Localize(type, id, plaintext));
    report_->objects_localized++;
    report_->bytes_localized += plaintext.size();
    return Status::Ok();
  }
  Status Tree(const ObjectId& root) {
    if (!done_.insert(root).second) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(root, "tree"));
    if (!remote) return Status::Ok();
    std::vector<ObjectId> subdirs;
    TUSK_RETURN_IF_ERROR(ForEachEntry(repo_, root, [&](const TreeEntry& e) {
      if (e.kind == EntryKind::kDirectory) subdirs.push_back(e.tree);
      return true;
    }));
    for (const ObjectId& sub : subdirs) TUSK_RETURN_IF_ERROR(Tree(sub));
    std::vector<ObjectId> pages;
    TUSK_RETURN_IF_ERROR(ForEachPage(repo_, root, [&](const ObjectId& page) { pages.push_back(page); }));
    // The root page last: it is what the next fetch looks at.
    std::reverse(pages.begin(), pages.end());
    for (const ObjectId& page : pages) {
      TUSK_ASSIGN_OR_RETURN(bool page_remote, IsRemote(page, "tree"));
      if (!page_remote) continue;
      TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(page, ObjectType::kTree));
      TUSK_RETURN_IF_ERROR(Copy(page, ObjectType::kTree, bytes));
    }
    return Status::Ok();
  }

  Repository& repo_;
  WriteSession& session_;
  FetchReport* report_;
  std::unordered_set<ObjectId, ObjectIdHash> done_;
};

}  // namespace

Status IndexFetchedHistory(Repository& repo, const std::string& dataset, const ObjectId& commit) {
  std::vector<ObjectId> stack{commit}, all;
  std::unordered_set<ObjectId, ObjectIdHash> seen;
  while (!stack.empty()) {
    ObjectId id = stack.back();
    stack.pop_back();
    if (!seen.insert(id).second) continue;
    TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(id));
    if (c.dataset != dataset)
      return Status::Corruption("commit " + id.Hex() + " belongs to dataset '" + c.dataset + "', not '" + dataset + "'");
    all.push_back(id);
    for (const ObjectId& p : c.parents) stack.push_back(p);
  }
  return repo.IndexCommits(dataset, all);
}

Result<FetchReport> Fetch(Repository& repo, const RemoteConnection& remote, const std::optional<std::string>& dataset,
                          Progress* progress) {
  const std::string& name = remote.remote.name;
  TUSK_RETURN_IF_ERROR(CheckRemoteIdentity(remote));
  FetchReport report;
  // Refs before packs: a push uploads packs before it moves a ref, so the
  // packs listed after reading a ref include everything that ref reaches.
  TUSK_ASSIGN_OR_RETURN(report.refs, ListRemoteRefValues(*remote.client, remote.location, dataset, &report.warnings));

  PackDirectory packs(RemotePackStore(remote));
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> ids, packs.ListPacks());
  TUSK_ASSIGN_OR_RETURN(auto registered, repo.RegisteredPacks());
  std::vector<PackId> fresh;
  for (PackId p : ids)
    if (!registered.count(p)) fresh.push_back(p);
  if (progress) progress->items_total = fresh.size();
  std::vector<RemotePackListing> listings;
  auto listed = ListPacks(packs, fresh, progress);
  for (size_t i = 0; i < listed.size(); i++) {
    if (!listed[i].ok()) {
      report.warnings.push_back("pack " + packs.PathOf(fresh[i]) + " skipped: " + listed[i].status().message());
      continue;
    }
    listings.push_back(std::move(listed[i]).value());
  }
  TUSK_RETURN_IF_ERROR(repo.RegisterRemotePacks(name, listings));
  report.packs_registered = listings.size();

  // Commits, trees and settings come here; file data stays. The session's
  // lock (shared) keeps gc away until the tracking refs, which make what
  // was copied reachable, are set.
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WriteSession> session, repo.BeginWrite());
  {
    Localizer localizer(repo, *session, &report);
    for (const RemoteRefValue& r : report.refs) {
      Status st = r.kind == 's' ? localizer.Settings(r.commit) : localizer.Commits(r.commit);
      if (!st.ok()) return st.Annotate("fetching " + r.dataset + (r.kind == 's' ? " settings" : "@" + r.name) +
                                       " from remote '" + name + "'");
    }
    TUSK_RETURN_IF_ERROR(session->Flush());
  }

  // The remote-tracking refs: per dataset, exactly what the remote has.
  std::map<std::string, std::vector<RemoteRefInfo>> by_dataset;
  if (dataset) by_dataset[*dataset];
  TUSK_ASSIGN_OR_RETURN(std::vector<RemoteRefInfo> tracked, repo.ListRemoteRefs(name, dataset));
  for (const RemoteRefInfo& t : tracked) by_dataset[t.dataset];  // gone from the remote: cleared
  for (const RemoteRefValue& r : report.refs)
    by_dataset[r.dataset].push_back({name, r.dataset, r.kind, r.name, r.commit});
  for (const auto& [d, refs] : by_dataset) TUSK_RETURN_IF_ERROR(repo.SetRemoteRefs(name, d, refs, true));

  // A dataset first seen on the remote is made here, without branches
  // (pull or branch make them), so that its remote-tracking refs are read
  // as any ref is: log, ls, diff, mount. Then every dataset learns the
  // fetched commits (prefix lookups).
  for (const RemoteRefValue& r : report.refs) {
    Status known = repo.CheckDataset(r.dataset);
    if (known.code() == Status::Code::kNotFound) TUSK_RETURN_IF_ERROR(repo.CreateDataset(r.dataset));
    else TUSK_RETURN_IF_ERROR(known);
  }
  for (const RemoteRefValue& r : report.refs) {
    if (r.kind == 's') continue;
    TUSK_RETURN_IF_ERROR(IndexFetchedHistory(repo, r.dataset, r.commit));
  }
  return report;
}

}  // namespace tusk
