// Reading packs from a store's remotes: the RemotePackSource that
// Repository uses for packs a fetch registered (store/backend/pack_store.h).
#include <map>
#include <mutex>

#include "store/backend/s3/s3_pack_store.h"
#include "store/remote/remote.h"

namespace tusk {
namespace {

class S3RemotePackSource final : public RemotePackSource {
 public:
  S3RemotePackSource(std::string store_dir, Env* files) : store_dir_(std::move(store_dir)), files_(files) {}

  Result<std::shared_ptr<PackStore>> Open(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stores_.find(name);
    if (it != stores_.end()) return it->second;
    TUSK_ASSIGN_OR_RETURN(Remote remote, FindRemote(files_, store_dir_, name));
    TUSK_ASSIGN_OR_RETURN(RemoteConnection connection, Connect(remote));
    std::shared_ptr<PackStore> store = RemotePackStore(connection);
    stores_[name] = store;
    return store;
  }

  Result<std::vector<std::string>> Names() override {
    TUSK_ASSIGN_OR_RETURN(std::vector<Remote> remotes, LoadRemotes(files_, store_dir_));
    std::vector<std::string> out;
    for (const Remote& r : remotes) out.push_back(r.name);
    return out;
  }

 private:
  const std::string store_dir_;
  Env* const files_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<PackStore>> stores_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<PackStore> RemotePackStore(const RemoteConnection& connection, const std::string& scratch_dir) {
  S3PackStoreOptions options;
  options.scratch_dir = scratch_dir;
  return NewS3PackStore(connection.client, connection.location.prefix, options);
}

void InstallRemotePackSources() {
  SetRemotePackSourceFactory([](const std::string& store_dir, Env* files) -> std::unique_ptr<RemotePackSource> {
    return std::make_unique<S3RemotePackSource>(store_dir, files);
  });
}

}  // namespace tusk
