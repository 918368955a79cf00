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
        bool sealed = false;
        TUSK_ASSIGN_OR_RETURN(l.records, packs.ListRecords(ids[i], &sealed));
        if (!sealed) return Status::Corruption(packs.PathOf(ids[i]) + " has no valid footer");
        TUSK_ASSIGN_OR_RETURN(l.size, packs.SizeOf(ids[i]));
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
// read from a remote, into this store's own packs.
class Localizer {
 public:
  Localizer(Repository& repo, WriteSession& session, FetchReport* report)
      : repo_(repo), session_(session), report_(report) {}

  Status Commits(const ObjectId& head) {
    std::vector<ObjectId> stack{head};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (!done_.insert(id).second) continue;
      TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(id, "commit"));
      if (!remote) continue;  // a local commit's history is local too
      TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(id, ObjectType::kCommit));
      auto commit = DecodeCommit(bytes);
      if (!commit.ok()) return commit.status().Annotate("commit " + id.Hex());
      TUSK_RETURN_IF_ERROR(Tree(commit->root));
      if (commit->settings) TUSK_RETURN_IF_ERROR(Settings(*commit->settings));
      if (commit->run) TUSK_RETURN_IF_ERROR(CopyIfRemote(*commit->run, ObjectType::kRun));
      TUSK_RETURN_IF_ERROR(Copy(id, ObjectType::kCommit, bytes));
      for (const ObjectId& p : commit->parents) stack.push_back(p);
    }
    return Status::Ok();
  }

  Status Settings(const ObjectId& head) {
    std::optional<ObjectId> at = head;
    while (at && done_.insert(*at).second) {
      TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(*at, "settings"));
      if (!remote) break;
      TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(*at, ObjectType::kSettings));
      auto settings = DecodeSettings(bytes);
      if (!settings.ok()) return settings.status().Annotate("settings " + at->Hex());
      TUSK_RETURN_IF_ERROR(Copy(*at, ObjectType::kSettings, bytes));
      at = settings->parent;
    }
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
  Status CopyIfRemote(const ObjectId& id, ObjectType type) {
    if (!done_.insert(id).second) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(id, ObjectTypeName(type)));
    if (!remote) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(id, type));
    return Copy(id, type, bytes);
  }
  // A directory's pages, then its subdirectories. A directory whose first
  // page is local is taken to be local below (a tree is written bottom
  // up, and a fetch copies it top down only when it was interrupted).
  Status Tree(const ObjectId& root) {
    if (done_.count(root)) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(root, "tree"));
    if (!remote) {
      done_.insert(root);
      return Status::Ok();
    }
    std::vector<ObjectId> pages;
    TUSK_RETURN_IF_ERROR(ForEachPage(repo_, root, [&](const ObjectId& page) { pages.push_back(page); }));
    for (const ObjectId& page : pages) TUSK_RETURN_IF_ERROR(CopyIfRemote(page, ObjectType::kTree));
    std::vector<ObjectId> subdirs;
    TUSK_RETURN_IF_ERROR(ForEachEntry(repo_, root, [&](const TreeEntry& e) {
      if (e.kind == EntryKind::kDirectory) subdirs.push_back(e.tree);
      return true;
    }));
    for (const ObjectId& sub : subdirs) TUSK_RETURN_IF_ERROR(Tree(sub));
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
  FetchReport report;
  // Refs before packs: a push uploads packs before it moves a ref, so the
  // packs listed after reading a ref include everything that ref reaches.
  TUSK_ASSIGN_OR_RETURN(report.refs, ListRemoteRefValues(*remote.client, remote.location, dataset));

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

  // Commits, trees, settings and run records come here; file data stays.
  {
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WriteSession> session, repo.BeginWrite());
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

  // Datasets that exist here learn the fetched commits (prefix lookups).
  for (const RemoteRefValue& r : report.refs) {
    if (r.kind == 's' || !repo.CheckDataset(r.dataset).ok()) continue;
    TUSK_RETURN_IF_ERROR(IndexFetchedHistory(repo, r.dataset, r.commit));
  }
  return report;
}

}  // namespace tusk
