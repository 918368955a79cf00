// The pack seam (DECISIONS.md, "Storage: two seams"): where the bytes of
// pack files live. PackDirectory (store/internal/pack.h) knows the pack
// format and reads and writes packs only through a PackStore, so packs can
// live on the local disk (LocalPackStore, on the file seam of env.h) or, for
// remotes, in object storage. Nothing here assumes a local file: a pack is
// written once, front to back, made durable by Finish, then only read,
// listed and removed; readers get a RandomAccessFile, never a descriptor.
//
// Thread-safety: a PackStore is thread-safe; a PackSink is its owner's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend/env.h"
#include "store/status.h"

namespace tusk {

using PackId = uint64_t;

// A pack being written.
class PackSink {
 public:
  virtual ~PackSink() = default;
  // Writes `data` at `offset`; writers append (each offset is the end of
  // what came before).
  virtual Status Write(uint64_t offset, std::string_view data) = 0;
  // Makes what was written so far durable, without finishing the pack
  // (a later Finish has less left to do).
  virtual Status Sync() = 0;
  // Makes the whole pack durable and listed: after it returns, a power loss
  // leaves the pack whole, and List finds it.
  virtual Status Finish() = 0;
};

class PackStore {
 public:
  virtual ~PackStore() = default;
  // Where the pack is, for messages (a path, or a URL).
  virtual std::string Describe(PackId id) const = 0;
  // NotFound when the pack does not exist.
  virtual Result<std::unique_ptr<RandomAccessFile>> Open(PackId id) = 0;
  // AlreadyExists when the id is taken.
  virtual Result<std::unique_ptr<PackSink>> Create(PackId id) = 0;
  // Every pack, finished or not (a writer that died leaves an unfinished one).
  virtual Result<std::vector<PackId>> List() = 0;
  // NotFound when there is nothing to remove. The removal is durable when
  // it returns: a power loss does not bring the pack back.
  virtual Status Remove(PackId id) = 0;
  virtual Result<uint64_t> Size(PackId id) = 0;
};

// Packs as files `DIR/xx/<16 hex digits>.pack` (xx: the first two digits),
// read-only (0444) once created, through `env`.
std::unique_ptr<PackStore> NewLocalPackStore(std::string dir, Env* env);

// The packs of a store's remotes (issue 12), by remote name. The store
// knows nothing of S3: store/remote supplies the implementation
// (InstallRemotePackSources in store/remote/remote.h), and a process that
// installs none cannot read a remote pack (its reads fail naming the remote).
//
// Thread-safety: implementations are thread-safe.
class RemotePackSource {
 public:
  virtual ~RemotePackSource() = default;
  // The remote's pack store; NotFound when the store has no such remote.
  virtual Result<std::shared_ptr<PackStore>> Open(const std::string& remote) = 0;
  // The names of the store's remotes.
  virtual Result<std::vector<std::string>> Names() = 0;
};
// Makes the source for the store in `store_dir`.
using RemotePackSourceFactory =
    std::function<std::unique_ptr<RemotePackSource>(const std::string& store_dir, Env* files)>;
// Installs the factory every Repository opened afterwards uses (one per
// process: the CLI and the mount daemon install S3's at start).
void SetRemotePackSourceFactory(RemotePackSourceFactory factory);
std::unique_ptr<RemotePackSource> NewRemotePackSource(const std::string& store_dir, Env* files);  // null if none

std::string PackName(PackId id);  // 16 lowercase hex digits
// Parses "<16 hex digits>.pack"; false for any other name.
bool ParsePackFileName(std::string_view name, PackId* id);

}  // namespace tusk
