#include "store/backend/routing_pack_store.h"

namespace tusk {

namespace {
RemotePackSourceFactory& Factory() {
  static RemotePackSourceFactory factory;
  return factory;
}
}  // namespace

void SetRemotePackSourceFactory(RemotePackSourceFactory factory) { Factory() = std::move(factory); }

std::unique_ptr<RemotePackSource> NewRemotePackSource(const std::string& store_dir, Env* files) {
  return Factory() ? Factory()(store_dir, files) : nullptr;
}

RoutingPackStore::RoutingPackStore(std::unique_ptr<PackStore> local,
                                   std::function<Result<std::string>(PackId)> remote_of,
                                   std::unique_ptr<RemotePackSource> remotes)
    : local_(std::move(local)), remote_of_(std::move(remote_of)), remotes_(std::move(remotes)) {}

Result<bool> RoutingPackStore::IsRemote(PackId id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = remote_name_.find(id);
    if (it != remote_name_.end()) return !it->second.empty();
  }
  TUSK_ASSIGN_OR_RETURN(std::string name, remote_of_(id));
  std::lock_guard<std::mutex> lock(mu_);
  remote_name_[id] = name;
  return !name.empty();
}

Result<std::shared_ptr<PackStore>> RoutingPackStore::RemoteStoreOf(PackId id) {
  TUSK_ASSIGN_OR_RETURN(bool remote, IsRemote(id));
  if (!remote) return std::shared_ptr<PackStore>();
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    name = remote_name_[id];
    auto it = remote_stores_.find(name);
    if (it != remote_stores_.end()) return it->second;
  }
  if (!remotes_)
    return Status::Unsupported("pack " + PackName(id) + " is on remote '" + name +
                               "', and this program cannot read remotes");
  // Connecting reads STORE/remotes and the credentials: not under mu_.
  auto store = remotes_->Open(name);
  if (!store.ok()) {
    // Not NotFound: readers take that for a pack gc moved, then for damage.
    // The remote's own message says what to do (an unknown remote names
    // 'tusk remote add'; missing credentials name where they were looked for).
    if (store.status().code() == Status::Code::kNotFound)
      return Status::InvalidArgument("pack " + PackName(id) + " is on remote '" + name + "': " +
                                     store.status().message());
    return store.status().Annotate("pack " + PackName(id) + " is on remote '" + name + "'");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = remote_stores_.emplace(name, *store);
  return it->second;
}

std::string RoutingPackStore::Describe(PackId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = remote_name_.find(id);
  if (it != remote_name_.end() && !it->second.empty()) {
    auto s = remote_stores_.find(it->second);
    if (s != remote_stores_.end()) return s->second->Describe(id);
    return "pack " + PackName(id) + " on remote '" + it->second + "'";
  }
  return local_->Describe(id);
}

Result<std::unique_ptr<RandomAccessFile>> RoutingPackStore::Open(PackId id) {
  auto local = local_->Open(id);
  if (local.ok() || local.status().code() != Status::Code::kNotFound) return local;
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<PackStore> remote, RemoteStoreOf(id));
  if (!remote) return local;
  return remote->Open(id);
}

Result<uint64_t> RoutingPackStore::Size(PackId id) {
  auto local = local_->Size(id);
  if (local.ok() || local.status().code() != Status::Code::kNotFound) return local;
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<PackStore> remote, RemoteStoreOf(id));
  if (!remote) return local;
  return remote->Size(id);
}

}  // namespace tusk
