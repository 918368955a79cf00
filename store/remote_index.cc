// What the index knows of remotes (issue 12): packs registered from a
// remote, and remote-tracking refs. Nothing here talks to a remote;
// store/remote does, and records what it learnt through these.
#include <set>

#include "store/backend/routing_pack_store.h"
#include "store/internal/file.h"
#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/tables.h"
#include "store/repository.h"

namespace tusk {

using tables::IdFromView;

Result<std::map<uint64_t, std::string>> Repository::RegisteredPacks() {
  std::map<uint64_t, std::string> out;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view v) {
    tables::PackValue value;
    if (tables::DecodePackValue(v, &value)) out.emplace(tables::PackFromKey(k), value.remote);
    return true;
  }));
  return out;
}

Status Repository::RegisterRemotePacks(const std::string& remote, const std::vector<RemotePackListing>& packs) {
  if (remote.empty()) return Status::InvalidArgument("a remote pack needs the remote's name");
  if (read_only_) return Status::ReadOnly("the store is open read-only");
  // The shared lock: gc (exclusive) never sees half of a registration.
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockStore(false));
  if (!packs.empty()) has_remote_packs_ = true;
  return env_->Update([&](LmdbTxn& txn) -> Status {
    auto objects = env_->db(tables::kObjects);
    auto pack_table = env_->db(tables::kPacks);
    for (const RemotePackListing& p : packs) {
      if (txn.Get(pack_table, tables::PackKey(p.id)).ok()) continue;  // known already (local, or registered)
      for (const PackRecord& r : p.records) {
        if (r.location.pack != p.id) return Status::InvalidArgument("record " + r.id.Hex() + " is not in its pack");
        // A ref record is a store's own history, never another's: refs
        // travel as remote refs. An object the store has stays where it is.
        if (r.location.type == ObjectType::kRef) continue;
        if (txn.Get(objects, r.id.view()).ok()) continue;
        TUSK_RETURN_IF_ERROR(txn.Put(objects, r.id.view(), r.location.Encode()));
      }
      tables::PackValue value{p.size, static_cast<uint32_t>(p.records.size()), remote};
      TUSK_RETURN_IF_ERROR(txn.Put(pack_table, tables::PackKey(p.id), tables::EncodePackValue(value)));
    }
    return Status::Ok();
  });
}

Result<bool> Repository::IsRemotePack(uint64_t pack) { return routing_->IsRemote(pack); }

Result<std::optional<ObjectLocation>> Repository::FindObject(const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kObjects), id.view());
  if (!v.ok()) {
    if (v.status().code() == Status::Code::kNotFound) return std::optional<ObjectLocation>();
    return v.status();
  }
  TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, ObjectLocation::Decode(*v));
  return std::optional<ObjectLocation>(loc);
}

Result<std::vector<PackRecord>> Repository::LocalPackRecords(uint64_t pack) {
  TUSK_ASSIGN_OR_RETURN(bool remote, routing_->IsRemote(pack));
  if (remote) return Status::InvalidArgument("pack " + PackName(pack) + " is on a remote");
  bool sealed = false;
  TUSK_ASSIGN_OR_RETURN(std::vector<PackRecord> records, packs_->ListRecords(pack, &sealed));
  if (!sealed) return Status::Corruption("pack " + packs_->PathOf(pack) + " is not sealed (no valid footer)");
  return records;
}

Result<std::unique_ptr<RandomAccessFile>> Repository::OpenLocalPack(uint64_t pack, uint64_t* size) {
  TUSK_ASSIGN_OR_RETURN(bool remote, routing_->IsRemote(pack));
  if (remote) return Status::InvalidArgument("pack " + PackName(pack) + " is on a remote");
  auto local = NewLocalPackStore(JoinPath(dir_, "packs"), files_);
  TUSK_ASSIGN_OR_RETURN(*size, local->Size(pack));
  return local->Open(pack);
}

Status Repository::ReadStoredRecord(const ObjectId& id, const ObjectLocation& loc, std::string* stored) {
  return packs_->ReadStored(id, loc, stored);
}

Status Repository::IndexCommits(const std::string& dataset, const std::vector<ObjectId>& commits) {
  if (commits.empty()) return Status::Ok();
  return env_->Update([&](LmdbTxn& txn) -> Status {
    for (const ObjectId& c : commits)
      TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kCommits), tables::DatasetPrefix(dataset) + std::string(c.view()), ""));
    return Status::Ok();
  });
}

Status Repository::SetRemoteRefs(const std::string& remote, const std::string& dataset,
                                 const std::vector<RemoteRefInfo>& refs, bool replace) {
  return env_->Update([&](LmdbTxn& txn) -> Status {
    auto db = env_->db(tables::kRemoteRefs);
    if (replace) {
      std::string prefix = remote + '\0' + dataset + '\0';
      std::vector<std::string> old;
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(db, prefix, [&](std::string_view k, std::string_view) {
        old.emplace_back(k);
        return true;
      }));
      for (const auto& k : old) TUSK_RETURN_IF_ERROR(txn.Delete(db, k));
    }
    for (const RemoteRefInfo& r : refs)
      TUSK_RETURN_IF_ERROR(txn.Put(db, tables::RemoteRefKey(remote, dataset, r.kind, r.name), r.commit.view()));
    return Status::Ok();
  });
}

Result<std::vector<RemoteRefInfo>> Repository::ListRemoteRefs(const std::string& remote,
                                                             const std::optional<std::string>& dataset) {
  std::vector<RemoteRefInfo> out;
  std::string prefix = remote + '\0';
  if (dataset) prefix += *dataset + '\0';
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRemoteRefs), prefix, [&](std::string_view k, std::string_view v) {
    k.remove_prefix(remote.size() + 1);
    tables::RefKeyParts parts;
    if (!tables::ParseRefKey(k, &parts) || v.size() != ObjectId::kSize) return true;  // damage: ignored, fetch rewrites
    out.push_back({remote, std::string(parts.dataset), parts.kind, std::string(parts.name), IdFromView(v)});
    return true;
  }));
  return out;
}

Status Repository::DropRemoteRefs(const std::string& remote) {
  return env_->Update([&](LmdbTxn& txn) -> Status {
    auto db = env_->db(tables::kRemoteRefs);
    std::vector<std::string> old;
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(db, remote + '\0', [&](std::string_view k, std::string_view) {
      old.emplace_back(k);
      return true;
    }));
    for (const auto& k : old) TUSK_RETURN_IF_ERROR(txn.Delete(db, k));
    return Status::Ok();
  });
}

}  // namespace tusk
