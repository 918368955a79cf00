// The packs of one store, wherever they are: the local directory, and the
// buckets of its remotes for packs that a fetch registered in the index as
// remote (issue 12). Reads go to the local pack when there is one (a pack
// pushed from here, or fetched whole, is read locally), else to the remote
// the index names; writes, listings and removals are local only: nothing
// but push writes to a remote, and no local operation removes from one.
//
// Thread-safety: thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/backend/pack_store.h"

namespace tusk {

class RoutingPackStore final : public PackStore {
 public:
  // `remote_of` says which remote holds a pack ("" when the index knows it
  // as local or not at all). `remotes` may be null (no remote is readable).
  RoutingPackStore(std::unique_ptr<PackStore> local, std::function<Result<std::string>(PackId)> remote_of,
                   std::unique_ptr<RemotePackSource> remotes);

  // Whether reads of the pack go to a remote (its bytes are then untrusted:
  // the caller verifies every chunk's hash).
  Result<bool> IsRemote(PackId id);

  std::string Describe(PackId id) const override;
  Result<std::unique_ptr<RandomAccessFile>> Open(PackId id) override;
  Result<std::unique_ptr<PackSink>> Create(PackId id) override { return local_->Create(id); }
  Result<std::vector<PackId>> List() override { return local_->List(); }
  Status Remove(PackId id) override { return local_->Remove(id); }
  Result<uint64_t> Size(PackId id) override;

 private:
  // The remote pack store holding `id`, or null when it is not remote.
  Result<std::shared_ptr<PackStore>> RemoteStoreOf(PackId id);

  std::unique_ptr<PackStore> local_;
  std::function<Result<std::string>(PackId)> remote_of_;
  std::unique_ptr<RemotePackSource> remotes_;
  mutable std::mutex mu_;
  std::unordered_map<PackId, std::string> remote_name_;             // guarded by mu_; "" = local
  std::map<std::string, std::shared_ptr<PackStore>> remote_stores_;  // guarded by mu_
};

}  // namespace tusk
