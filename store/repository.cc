#include "store/repository.h"

#include <filesystem>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <sstream>

#include "store/backend/pack_mirror.h"
#include "store/backend/routing_pack_store.h"
#include "store/internal/access.h"
#include "store/internal/codec.h"
#include "store/internal/crc32c.h"
#include "store/internal/file.h"
#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/ref_log.h"
#include "store/internal/remote_reader.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"

namespace tusk {
namespace {

using tables::IdFromView;
using tables::PackKey;

constexpr uint64_t kPackTargetSize = 32ull << 20;
constexpr char kConfigFile[] = "config";
constexpr char kFormatKey[] = "tusk-store-format";

bool IsHexPrefix(const std::string& s) {
  return s.size() >= 4 && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

// ---- StoreConfig ----

Status StoreConfig::Validate() const {
  TUSK_RETURN_IF_ERROR(chunker.Validate());
  if (compression_level < 0 || compression_level > 19)
    return Status::InvalidArgument("compression level must be between 0 and 19, got " + std::to_string(compression_level));
  return Status::Ok();
}

std::string StoreConfig::Encode() const {
  std::ostringstream out;
  out << kFormatKey << " " << kStoreFormatVersion << "\n"
      << "chunk-min " << chunker.min_size << "\n"
      << "chunk-avg " << chunker.avg_size << "\n"
      << "chunk-max " << chunker.max_size << "\n"
      << "compression-level " << compression_level << "\n";
  if (shared) out << "shared 1\n";
  return out.str();
}

Result<StoreConfig> StoreConfig::Parse(const std::string& text, const std::string& path) {
  StoreConfig c;
  std::istringstream in(text);
  std::string key;
  long long value;
  bool have_format = false;
  while (in >> key) {
    if (!(in >> value)) return Status::Corruption(path + ": bad value for '" + key + "'");
    if (key == kFormatKey) {
      // Version 1 is read and upgraded on open (Repository::UpgradeFromFormat1).
      if (value < 1 || value > kStoreFormatVersion)
        return Status::Unsupported("store format version " + std::to_string(value) + " in " + path +
                                   " is not supported by this tusk (it reads versions 1 to " +
                                   std::to_string(kStoreFormatVersion) + "); use a newer tusk");
      c.format_version = static_cast<int>(value);
      have_format = true;
    } else if (key == "chunk-min") {
      c.chunker.min_size = static_cast<uint32_t>(value);
    } else if (key == "chunk-avg") {
      c.chunker.avg_size = static_cast<uint32_t>(value);
    } else if (key == "chunk-max") {
      c.chunker.max_size = static_cast<uint32_t>(value);
    } else if (key == "compression-level") {
      c.compression_level = static_cast<int>(value);
    } else if (key == "shared") {
      if (value != 0 && value != 1) return Status::Corruption(path + ": 'shared' must be 0 or 1");
      c.shared = value == 1;
    } else {
      return Status::Unsupported(path + ": unknown setting '" + key + "' (written by a newer tusk?)");
    }
  }
  if (!have_format) return Status::Corruption(path + ": no format version; not a tusk store config");
  TUSK_RETURN_IF_ERROR(c.Validate().Annotate(path));
  return c;
}

// ---- opening ----

Status Repository::Create(const std::string& dir, const StoreConfig& config, Env* files) {
  TUSK_RETURN_IF_ERROR(config.Validate());
  struct stat st;
  if (::stat(JoinPath(dir, kConfigFile).c_str(), &st) == 0)
    return Status::AlreadyExists(dir + " is already a tusk store");
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status::AlreadyExists(dir + " exists and is not a directory");
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    if (!d) return Status::FromErrno(errno, "open " + dir);
    while (dirent* e = readdir(d.get())) {
      std::string n = e->d_name;
      if (n != "." && n != "..")
        return Status::AlreadyExists(dir + " is not empty; choose an empty or new directory for the store");
    }
  }
  if (config.shared) SetUpSharedWriter(dir);
  TUSK_RETURN_IF_ERROR(MakeDirs(dir));
  TUSK_RETURN_IF_ERROR(SetUpStoreModes(dir, false));  // private until it is complete
  TUSK_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "packs")));
  TUSK_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "index")));
  {
    TUSK_ASSIGN_OR_RETURN(auto env, LmdbEnv::Open(JoinPath(dir, "index"), tables::Names()));
    TUSK_RETURN_IF_ERROR(env->Update([&](LmdbTxn& txn) {
      return txn.Put(env->db(tables::kMeta), tables::kMetaIndexComplete, "1");
    }));
  }
  TUSK_ASSIGN_OR_RETURN(Fd lock, OpenFile(JoinPath(dir, "lock"), O_RDWR | O_CREAT, 0644));
  if (config.shared) TUSK_RETURN_IF_ERROR(SetUpStoreModes(dir, true));
  // The config is written last: a store without it is not a store yet, so an
  // interrupted init can simply be repeated.
  return WriteFileAtomically(files, JoinPath(dir, kConfigFile), config.Encode());
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& dir, StoreAccess access, Env* files,
                                                     bool index_verified) {
  LmdbAccess lmdb;
  TUSK_RETURN_IF_ERROR(CheckStoreAccess(dir, access, &lmdb));
  std::string config_path = JoinPath(dir, kConfigFile);
  auto text = ReadWholeFile(files, config_path);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kNotFound)
      return Status::NotFound(dir + " is not a tusk store (no config file); create one with 'tusk init'");
    return text.status();
  }
  TUSK_ASSIGN_OR_RETURN(StoreConfig config, StoreConfig::Parse(*text, config_path));
  std::unique_ptr<Repository> repo(new Repository());
  repo->dir_ = dir;
  repo->files_ = files;
  repo->config_ = config;
  repo->read_only_ = access == StoreAccess::kReadOnly;
  if (config.shared && !repo->read_only_) SetUpSharedWriter(dir);
  {
    Repository* self = repo.get();
    auto routing = std::make_unique<RoutingPackStore>(
        NewLocalPackStore(JoinPath(dir, "packs"), files),
        [self](PackId id) -> Result<std::string> {
          TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, self->env_->BeginRead());
          auto v = txn.Get(self->env_->db(tables::kPacks), tables::PackKey(id));
          tables::PackValue value;
          if (!v.ok() || !tables::DecodePackValue(*v, &value)) return std::string();
          return value.remote;
        },
        NewRemotePackSource(dir, files));
    repo->routing_ = routing.get();
    repo->set_remote_cache_size(0);  // as recorded by the last explicit size
    // The cache of remote data was a directory of chunk files before it
    // mirrored packs (STORE/cache/packs): what it held is fetched again.
    if (!repo->read_only_) {
      std::error_code ignored;
      std::filesystem::remove_all(JoinPath(dir, "cache/chunks"), ignored);
    }
    repo->packs_ = std::make_unique<PackDirectory>(std::move(routing));
  }
  TUSK_RETURN_IF_ERROR(repo->CheckIndexPresent());
  // An older index lacks tables a read-only open cannot create.
  if (config.format_version < kStoreFormatVersion && lmdb != LmdbAccess::kReadWrite)
    return Status::Unsupported("store " + dir + " was written by an older tusk (store format " +
                               std::to_string(config.format_version) + ") and must be upgraded "
                               "once by a user who can write it: run any tusk command on it as its owner");
  TUSK_ASSIGN_OR_RETURN(repo->env_, LmdbEnv::Open(JoinPath(dir, "index"), tables::Names(), lmdb, !index_verified));
  if (config.format_version == 1) {
    Status st = repo->UpgradeFromFormat1();
    // A store this user may not write (read-only media, another owner's
    // store) is read as it is; every write would fail anyway.
    if (!st.ok() && st.sys_errno() != EACCES && st.sys_errno() != EPERM && st.sys_errno() != EROFS)
      return st.Annotate("upgrading " + dir + " from store format 1");
  } else if (config.format_version < kStoreFormatVersion) {
    TUSK_RETURN_IF_ERROR(repo->CheckIndexComplete());
    Status st = repo->UpgradeConfigVersion();
    if (!st.ok() && st.sys_errno() != EACCES && st.sys_errno() != EPERM && st.sys_errno() != EROFS)
      return st.Annotate("upgrading " + dir + " from store format " + std::to_string(config.format_version));
  } else {
    TUSK_RETURN_IF_ERROR(repo->CheckIndexComplete());
  }
  TUSK_RETURN_IF_ERROR(repo->NoteRemotePacks());
  return repo;
}

Status Repository::CheckIndexPresent() {
  std::string index = JoinPath(dir_, "index");
  std::string missing;
  for (const std::string& path : {index, JoinPath(index, "data.mdb")}) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) continue;
    if (errno != ENOENT) return Status::FromErrno(errno, "stat " + path);
    missing = path;
    break;
  }
  if (missing.empty()) return Status::Ok();
  TUSK_RETURN_IF_ERROR(RefuseLostIndex("missing (" + missing + ")"));
  // A store with no packs has nothing to lose: a new empty index will do.
  return MakeDirs(index);
}

Status Repository::RefuseLostIndex(const std::string& what) {
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> packs, packs_->ListPacks());
  if (packs.empty()) return Status::Ok();
  return Status::Corruption("the index of " + dir_ + " is " + what + ", but the store holds " +
                            std::to_string(packs.size()) + " pack file(s); rebuild the index from them with '" +
                            kIndexRebuildCommand + "'");
}

Status Repository::CheckIndexComplete() {
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    auto v = txn.Get(env_->db(tables::kMeta), tables::kMetaIndexComplete);
    if (v.ok()) return Status::Ok();
    if (v.status().code() != Status::Code::kNotFound) return v.status();
  }
  TUSK_RETURN_IF_ERROR(RefuseLostIndex("missing or empty (" + JoinPath(dir_, "index/data.mdb") + ")"));
  // A store with no packs has nothing to lose: this empty index is complete.
  return env_->Update([&](LmdbTxn& txn) { return txn.Put(env_->db(tables::kMeta), tables::kMetaIndexComplete, "1"); });
}

Repository::~Repository() = default;

Result<Fd> Repository::LockStore(bool exclusive) {
  TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(JoinPath(dir_, "lock"), O_RDWR | O_CREAT, 0644));
  int rc;
  do {
    rc = ::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Status::FromErrno(errno, "lock " + dir_);
  return fd;
}

// ---- objects ----

Result<ObjectLocation> Repository::Locate(const ObjectId& id, ObjectType type) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kObjects), id.view());
  if (!v.ok()) {
    if (v.status().code() == Status::Code::kNotFound)
      return Status::Corruption(std::string(ObjectTypeName(type)) + " " + id.Hex() + " is missing from the store");
    return v.status();
  }
  TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, ObjectLocation::Decode(*v));
  if (loc.type != type)
    return Status::Corruption("object " + id.Hex() + " is a " + ObjectTypeName(loc.type) + ", expected a " +
                              ObjectTypeName(type));
  return loc;
}

Status Repository::ReadFromPack(const ObjectId& id, ObjectType type,
                                const std::function<Status(const ObjectLocation&)>& read) {
  TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, Locate(id, type));
  Status st = read(loc);
  if (st.code() != Status::Code::kNotFound) return st;
  // The pack is gone: a gc may have copied the record elsewhere and deleted
  // it after our lookup. Look once more; a second miss is damage.
  TUSK_ASSIGN_OR_RETURN(ObjectLocation moved, Locate(id, type));
  if (moved.pack != loc.pack) st = read(moved);
  if (st.code() == Status::Code::kNotFound) return Status::Corruption(st.message());
  return st;
}

void Repository::set_remote_cache_size(uint64_t bytes) {
  std::string dir = JoinPath(dir_, "cache/packs");
  mirror_ = std::make_unique<PackMirror>(dir, bytes, kDefaultRemoteCacheSize);
  mirror_packs_ = std::make_unique<PackDirectory>(NewLocalPackStore(dir, Env::Default()));
}

Result<std::string> Repository::ReadObject(const ObjectId& id, ObjectType type) {
  std::string out;
  TUSK_RETURN_IF_ERROR(ReadFromPack(id, type, [&](const ObjectLocation& loc) -> Status {
    if (type == ObjectType::kChunk) {
      TUSK_ASSIGN_OR_RETURN(bool remote, routing_->IsRemote(loc.pack));
      if (remote) return ReadRemoteChunk(id, loc, &out);
    }
    return packs_->ReadRecord(id, loc, verify_chunk_hashes_, &out);
  }));
  if (type != ObjectType::kChunk && HashObject(type, out) != id)
    return Status::Corruption(std::string(ObjectTypeName(type)) + " " + id.Hex() + " does not hash to its id");
  return out;
}

Result<std::string> Repository::ReadChunkRange(const ChunkRef& chunk, uint64_t offset, size_t len) {
  const ObjectId& id = chunk.id;
  std::string out;
  TUSK_RETURN_IF_ERROR(ReadFromPack(id, ObjectType::kChunk, [&](const ObjectLocation& loc) -> Status {
    TUSK_RETURN_IF_ERROR(CheckChunkLength(chunk, loc.raw_len));
    if (!HasRangeTable(loc.codec, loc.stored_len))
      return Status::Unsupported("chunk " + id.Hex() + " has no range table (one zstd frame, or small); read it whole");
    if (offset + len > loc.raw_len) return Status::InvalidArgument("range outside chunk " + id.Hex());
    TUSK_ASSIGN_OR_RETURN(bool remote, routing_->IsRemote(loc.pack));
    if (!remote) return packs_->ReadRange(id, loc, offset, len, &out);
    // A remote chunk in the mirror is read in part as a local one (its range
    // table was checked with its content when it was fetched; a hole fails
    // the header check); else whole, as only a whole chunk can be checked
    // against its id.
    if (mirror_packs_->ReadRange(id, loc, offset, len, &out).ok()) {
      mirror_->Touch(loc.pack);
      return Status::Ok();
    }
    return Status::Unsupported("chunk " + id.Hex() + " is on a remote; read it whole");
  }));
  return out;
}

Result<Commit> Repository::ReadCommit(const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(std::string bytes, ReadObject(id, ObjectType::kCommit));
  auto c = DecodeCommit(bytes);
  if (!c.ok()) return c.status().Annotate("commit " + id.Hex());
  return c;
}

Result<bool> Repository::ContainsLocally(const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kObjects), id.view());
  if (!v.ok()) {
    if (v.status().code() == Status::Code::kNotFound) return false;
    return v.status();
  }
  TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, ObjectLocation::Decode(*v));
  TUSK_ASSIGN_OR_RETURN(bool remote, routing_->IsRemote(loc.pack));
  return !remote;
}

Result<bool> Repository::Contains(const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kObjects), id.view());
  if (v.ok()) return true;
  if (v.status().code() == Status::Code::kNotFound) return false;
  return v.status();
}

// ---- datasets ----

Status Repository::CheckDataset(const std::string& name) {
  TUSK_RETURN_IF_ERROR(ValidateName("dataset", name));
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kDatasets), name);
  if (v.ok()) return Status::Ok();
  if (v.status().code() == Status::Code::kNotFound)
    return Status::NotFound("no dataset named '" + name + "' (see 'tusk dataset list')");
  return v.status();
}

Status Repository::RecordAndApply(RefBatch& batch, const std::function<Status(LmdbTxn&)>& check,
                                  const std::function<Status(LmdbTxn&)>& apply) {
  // The shared lock keeps gc from taking the new pack for garbage.
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockStore(false));
  {
    // Refuse the common mistakes before writing any file.
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(check(txn));
  }
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<PackWriter> pack, CreatePendingPack(*env_, packs_.get()));
  bool sealed = false;
  Status st = env_->Update([&](LmdbTxn& txn) -> Status {
    TUSK_RETURN_IF_ERROR(check(txn));
    TUSK_RETURN_IF_ERROR(StageRefBatch(*env_, txn, &batch, pack.get()));
    TUSK_RETURN_IF_ERROR(pack->Seal());
    sealed = true;
    KillPointForTests("ref-record-durable");
    TUSK_RETURN_IF_ERROR(RegisterPack(*env_, txn, *pack));
    return apply(txn);
  });
  // A sealed pack stays (pending, for gc) even on failure: a failed commit
  // may still have reached the disk.
  if (!st.ok() && !sealed) (void)DropPendingPack(*env_, packs_.get(), pack->id());
  return st;
}

Status Repository::CreateDataset(const std::string& name) {
  TUSK_RETURN_IF_ERROR(ValidateName("dataset", name));
  RefBatch batch;
  RefRecord r = RefRecord::ForDataset(RefRecord::Op::kDatasetCreated, name, NowNs());
  batch.records.push_back(r);
  auto check = [&](LmdbTxn& txn) -> Status {
    if (txn.Get(env_->db(tables::kDatasets), name).ok()) return Status::AlreadyExists("dataset '" + name + "' already exists");
    return Status::Ok();
  };
  return RecordAndApply(batch, check, [&](LmdbTxn& txn) -> Status {
    Encoder e;
    e.PutSigned(r.time_ns / 1000000000);
    TUSK_RETURN_IF_ERROR(txn.Put(env_->db(tables::kDatasets), name, e.buffer()));
    // A new dataset's empty 'main' is implied by its record (FORMAT.md).
    return txn.Put(env_->db(tables::kRefs), tables::RefKey(name, 'b', kDefaultBranch), "");
  });
}

Status Repository::DeleteDataset(const std::string& name) {
  TUSK_RETURN_IF_ERROR(CheckDataset(name));
  RefBatch batch;
  RefRecord r = RefRecord::ForDataset(RefRecord::Op::kDatasetDeleted, name, NowNs());
  batch.records.push_back(r);
  auto check = [&](LmdbTxn& txn) -> Status {
    if (!txn.Get(env_->db(tables::kDatasets), name).ok()) return Status::NotFound("no dataset named '" + name + "'");
    return Status::Ok();
  };
  return RecordAndApply(batch, check, [&](LmdbTxn& txn) -> Status {
    TUSK_RETURN_IF_ERROR(txn.Delete(env_->db(tables::kDatasets), name));
    std::string prefix = tables::DatasetPrefix(name);
    std::string dataset_key = r.Key();  // its record stays current: the deletion
    for (size_t table : {tables::kRefs, tables::kCommits, tables::kFileStats, tables::kRefRecords}) {
      std::vector<std::string> keys;
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(table), prefix, [&](std::string_view k, std::string_view) {
        if (k != dataset_key) keys.emplace_back(k);
        return true;
      }));
      for (const auto& k : keys) TUSK_RETURN_IF_ERROR(txn.Delete(env_->db(table), k));
    }
    return Status::Ok();
  });
}

Result<std::vector<DatasetInfo>> Repository::ListDatasets() {
  std::vector<DatasetInfo> out;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kDatasets), "", [&](std::string_view k, std::string_view v) {
    DatasetInfo info;
    info.name = std::string(k);
    Decoder d(v);
    d.GetSigned(&info.created_sec);
    out.push_back(std::move(info));
    return true;
  }));
  for (auto& info : out) {
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRefs), tables::DatasetPrefix(info.name),
                                        [&](std::string_view k, std::string_view) {
                                          char kind = k[info.name.size() + 1];
                                          if (kind == 'b') info.branch_count++;
                                          if (kind == 't') info.tag_count++;
                                          return true;
                                        }));
  }
  return out;
}

// ---- refs ----

Result<std::vector<RefInfo>> Repository::ListRefs(const std::string& dataset, char kind) {
  TUSK_RETURN_IF_ERROR(CheckDataset(dataset));
  std::vector<RefInfo> out;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  std::string prefix = tables::RefKey(dataset, kind, "");
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRefs), prefix, [&](std::string_view k, std::string_view v) {
    RefInfo r;
    r.name = std::string(k.substr(prefix.size()));
    if (v.size() == ObjectId::kSize) r.commit = IdFromView(v);
    out.push_back(std::move(r));
    return true;
  }));
  return out;
}

Result<std::vector<RefInfo>> Repository::ListBranches(const std::string& dataset) { return ListRefs(dataset, 'b'); }
Result<std::vector<RefInfo>> Repository::ListTags(const std::string& dataset) { return ListRefs(dataset, 't'); }

Result<std::optional<ObjectId>> Repository::GetBranch(const std::string& dataset, const std::string& branch) {
  TUSK_RETURN_IF_ERROR(CheckDataset(dataset));
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kRefs), tables::RefKey(dataset, 'b', branch));
  if (!v.ok()) {
    if (v.status().code() == Status::Code::kNotFound)
      return Status::NotFound("dataset '" + dataset + "' has no branch '" + branch + "' (see 'tusk branch " + dataset + "')");
    return v.status();
  }
  if (v->size() == ObjectId::kSize) return std::optional<ObjectId>(IdFromView(*v));
  return std::optional<ObjectId>();
}

Status Repository::CreateRef(const std::string& dataset, char kind, const std::string& name,
                             const std::optional<ObjectId>& at) {
  const char* what = kind == 'b' ? "branch" : "tag";
  TUSK_RETURN_IF_ERROR(ValidateName(what, name));
  TUSK_RETURN_IF_ERROR(CheckDataset(dataset));
  RefBatch batch;
  batch.records.push_back(RefRecord::ForRef(RefRecord::Op::kRefSet, dataset, kind, name, at, NowNs()));
  auto refs = env_->db(tables::kRefs);
  auto check = [&](LmdbTxn& txn) -> Status {
    if (!txn.Get(env_->db(tables::kDatasets), dataset).ok())
      return Status::NotFound("dataset '" + dataset + "' was deleted meanwhile");
    if (txn.Get(refs, tables::RefKey(dataset, 'b', name)).ok())
      return Status::AlreadyExists("dataset '" + dataset + "' already has a branch named '" + name + "'");
    if (txn.Get(refs, tables::RefKey(dataset, 't', name)).ok())
      return Status::AlreadyExists("dataset '" + dataset + "' already has a tag named '" + name + "'");
    if (at && !txn.Get(env_->db(tables::kCommits), tables::DatasetPrefix(dataset) + std::string(at->view())).ok())
      return Status::NotFound("commit " + at->ShortHex() + " does not belong to dataset '" + dataset + "'");
    return Status::Ok();
  };
  return RecordAndApply(batch, check, [&](LmdbTxn& txn) {
    return txn.Put(refs, tables::RefKey(dataset, kind, name), at ? at->view() : std::string_view());
  });
}

Status Repository::DeleteRef(const std::string& dataset, char kind, const std::string& name) {
  const char* what = kind == 'b' ? "branch" : "tag";
  TUSK_RETURN_IF_ERROR(CheckDataset(dataset));
  RefBatch batch;
  batch.records.push_back(RefRecord::ForRef(RefRecord::Op::kRefDeleted, dataset, kind, name, std::nullopt, NowNs()));
  std::string key = tables::RefKey(dataset, kind, name);
  auto check = [&](LmdbTxn& txn) -> Status {
    if (!txn.Get(env_->db(tables::kRefs), key).ok())
      return Status::NotFound("dataset '" + dataset + "' has no " + what + " named '" + name + "'");
    return Status::Ok();
  };
  return RecordAndApply(batch, check, [&](LmdbTxn& txn) { return txn.Delete(env_->db(tables::kRefs), key); });
}

Status Repository::CreateBranch(const std::string& dataset, const std::string& name, const std::optional<ObjectId>& at) {
  return CreateRef(dataset, 'b', name, at);
}
Status Repository::DeleteBranch(const std::string& dataset, const std::string& name) { return DeleteRef(dataset, 'b', name); }
Status Repository::CreateTag(const std::string& dataset, const std::string& name, const ObjectId& at) {
  return CreateRef(dataset, 't', name, at);
}
Status Repository::DeleteTag(const std::string& dataset, const std::string& name) { return DeleteRef(dataset, 't', name); }

Result<std::vector<ObjectId>> Repository::FindCommitsByPrefix(const std::string& dataset, const std::string& hex) {
  // Scan by the whole bytes of the prefix, then filter on a trailing nibble.
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  std::vector<ObjectId> out;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  std::string prefix = tables::DatasetPrefix(dataset);
  TUSK_RETURN_IF_ERROR(
      txn.ScanPrefix(env_->db(tables::kCommits), prefix + bytes, [&](std::string_view k, std::string_view) {
        ObjectId id = IdFromView(k.substr(prefix.size()));
        if (id.Hex().compare(0, hex.size(), hex) == 0) out.push_back(id);
        return out.size() < 20;
      }));
  return out;
}

Result<ObjectId> Repository::Resolve(const std::string& ref_text, bool allow_bare_dataset) {
  TUSK_ASSIGN_OR_RETURN(RefSpec spec, ParseRef(ref_text, allow_bare_dataset));
  return Resolve(spec);
}

Result<ObjectId> Repository::Resolve(const RefSpec& ref) {
  TUSK_RETURN_IF_ERROR(CheckDataset(ref.dataset));
  std::string rev = ref.rev.empty() ? kDefaultBranch : ref.rev;
  ObjectId id;
  bool found = false;
  if (!ref.remote.empty()) {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    for (char kind : {'b', 't'}) {
      auto v = txn.Get(env_->db(tables::kRemoteRefs), tables::RemoteRefKey(ref.remote, ref.dataset, kind, rev));
      if (!v.ok() || v->size() != ObjectId::kSize) continue;
      id = IdFromView(*v);
      found = true;
      break;
    }
    if (!found)
      return Status::NotFound("unknown ref '" + ref.text + "': no branch '" + rev + "' of dataset '" + ref.dataset +
                              "' was seen on remote '" + ref.remote + "' (run 'tusk fetch " + ref.remote + "')");
  }
  if (!found) {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    for (char kind : {'b', 't'}) {
      auto v = txn.Get(env_->db(tables::kRefs), tables::RefKey(ref.dataset, kind, rev));
      if (!v.ok()) continue;
      if (v->size() != ObjectId::kSize)
        return Status::NotFound("branch '" + rev + "' of dataset '" + ref.dataset + "' has no commits yet");
      id = IdFromView(*v);
      found = true;
      break;
    }
  }
  std::string lower = rev;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!found && ref.remote.empty() && IsHexPrefix(lower)) {
    TUSK_ASSIGN_OR_RETURN(auto matches, FindCommitsByPrefix(ref.dataset, lower));
    if (matches.size() > 1) {
      std::string list;
      for (const auto& m : matches) list += " " + m.ShortHex(16);
      return Status::InvalidArgument("commit prefix '" + rev + "' is ambiguous in dataset '" + ref.dataset +
                                     "'; candidates:" + list);
    }
    if (matches.size() == 1) {
      id = matches[0];
      found = true;
    }
  }
  if (!found)
    return Status::NotFound("unknown ref '" + ref.text + "': dataset '" + ref.dataset + "' has no branch, tag or commit '" +
                            rev + "'");
  for (unsigned i = 0; i < ref.ancestors; i++) {
    TUSK_ASSIGN_OR_RETURN(Commit c, ReadCommit(id));
    if (c.parents.empty())
      return Status::NotFound("'" + ref.text + "' does not exist: the history has only " + std::to_string(i) +
                              " commit(s) before that point");
    id = c.parents[0];
  }
  return id;
}

Result<std::map<std::string, std::string>> Repository::LoadFileStats(const std::string& prefix) {
  std::map<std::string, std::string> out;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kFileStats), prefix, [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k.substr(prefix.size())), std::string(v));
    return true;
  }));
  return out;
}

// ---- writing ----

Result<std::unique_ptr<WriteSession>> Repository::BeginWrite() {
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockStore(false));
  return std::unique_ptr<WriteSession>(new WriteSession(this, std::make_unique<Fd>(std::move(lock))));
}

WriteSession::WriteSession(Repository* repo, std::unique_ptr<Fd> lock) : repo_(repo), lock_(std::move(lock)) {}
WriteSession::~WriteSession() = default;

Result<bool> WriteSession::PutChunk(const ObjectId& id, std::string_view plaintext) {
  {
    std::lock_guard lock(mu_);
    if (!broken_.ok()) return broken_;
    if (!seen_.insert(id).second) return false;
  }
  TUSK_ASSIGN_OR_RETURN(bool present, repo_->ContainsLocally(id));
  if (present) return false;
  TUSK_RETURN_IF_ERROR(Store(ObjectType::kChunk, id, plaintext));
  return true;
}

Result<ObjectId> WriteSession::WriteObject(ObjectType type, std::string encoding) {
  ObjectId id = HashObject(type, encoding);
  {
    std::lock_guard lock(mu_);
    if (!broken_.ok()) return broken_;
    if (!seen_.insert(id).second) return id;
  }
  TUSK_ASSIGN_OR_RETURN(bool present, repo_->ContainsLocally(id));
  if (!present) TUSK_RETURN_IF_ERROR(Store(type, id, encoding));
  return id;
}

Status WriteSession::Localize(ObjectType type, const ObjectId& id, std::string_view plaintext) {
  if (type == ObjectType::kChunk ? Sha256::Of(plaintext.data(), plaintext.size()) != id : HashObject(type, plaintext) != id)
    return Status::Corruption(std::string(ObjectTypeName(type)) + " " + id.Hex() + " does not hash to its id");
  {
    std::lock_guard lock(mu_);
    if (!broken_.ok()) return broken_;
    if (!seen_.insert(id).second) return Status::Ok();
  }
  return Store(type, id, plaintext);
}

Status WriteSession::Store(ObjectType type, const ObjectId& id, std::string_view plaintext) {
  thread_local std::string stored;
  Codec codec = Compress(plaintext, repo_->config_.compression_level, type == ObjectType::kChunk, &stored);
  uint32_t crc = Crc32c(stored.data(), stored.size());
  auto table = RangeTable(codec, stored, plaintext.size());
  if (!table.ok()) return table.status().Annotate("compressing " + id.Hex());
  std::lock_guard lock(mu_);
  if (!broken_.ok()) return broken_;
  Status st;
  if (!writer_) {
    auto w = CreatePendingPack(*repo_->env_, repo_->packs_.get());
    if (!w.ok()) st = w.status();
    else writer_ = std::move(w).value();
  }
  if (st.ok()) st = writer_->Append(type, id, codec, static_cast<uint32_t>(plaintext.size()), stored, crc, *table).status();
  if (st.ok() && writer_->size() >= kPackTargetSize) RotateLocked();
  if (!st.ok()) {
    broken_ = st;
    return st;
  }
  new_objects_++;
  new_stored_bytes_ += stored.size();
  return Status::Ok();
}

// Seals the pending pack and registers it, in one transaction with the file
// stats and index entries (run records) the session gathered: the index
// never lists a run whose pack is not registered, nor loses one whose pack is.
Status WriteSession::SealLocked() {
  LmdbEnv* env = repo_->env_.get();
  if (writer_ && writer_->empty()) {
    PackId empty_id = writer_->id();
    writer_.reset();
    TUSK_RETURN_IF_ERROR(DropPendingPack(*env, repo_->packs_.get(), empty_id));
  }
  if (!writer_ && file_stats_.empty() && index_puts_.empty()) return Status::Ok();
  if (writer_) TUSK_RETURN_IF_ERROR(writer_->Seal());
  // The pack is durable; only now may the index point into it.
  TUSK_RETURN_IF_ERROR(env->Update([&](LmdbTxn& txn) -> Status {
    if (writer_) TUSK_RETURN_IF_ERROR(RegisterPack(*env, txn, *writer_));
    // File stats learned without a commit still save reading next time; they
    // refer only to content the branch already holds.
    for (const auto& [k, v] : file_stats_) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kFileStats), k, v));
    for (const auto& [t, k, v] : index_puts_) TUSK_RETURN_IF_ERROR(txn.Put(env->db(t), k, v));
    return Status::Ok();
  }));
  writer_.reset();
  file_stats_.clear();
  index_puts_.clear();
  return Status::Ok();
}

void WriteSession::RotateLocked() {
  std::shared_ptr<PackWriter> full(writer_.release());
  // At most two packs are being sealed at once, bounding memory and fds.
  if (sealing_.size() >= 2) {
    Status st = sealing_.front().get();
    sealing_.erase(sealing_.begin());
    if (!st.ok()) broken_ = st;
  }
  LmdbEnv* env = repo_->env_.get();
  sealing_.push_back(std::async(std::launch::async, [full, env]() -> Status {
    TUSK_RETURN_IF_ERROR(full->Seal());
    // The pack is durable; only now may the index point into it.
    return env->Update([&](LmdbTxn& t) { return RegisterPack(*env, t, *full); });
  }));
}

Status WriteSession::WaitForSealsLocked() {
  Status first;
  for (auto& f : sealing_) {
    Status st = f.get();
    if (!st.ok() && first.ok()) first = st;
  }
  sealing_.clear();
  if (!first.ok()) broken_ = first;
  return first;
}

void WriteSession::RememberFileStat(std::string key, std::string value) {
  std::lock_guard lock(mu_);
  file_stats_.emplace_back(std::move(key), std::move(value));
}

Status WriteSession::Flush() {
  std::lock_guard lock(mu_);
  TUSK_RETURN_IF_ERROR(WaitForSealsLocked());
  if (!broken_.ok()) return broken_;
  Status st = SealLocked();
  if (!st.ok()) broken_ = st;
  return st;
}

Result<ObjectId> WriteSession::CommitToBranch(const Commit& commit, const std::string& branch,
                                              const std::optional<ObjectId>& expected) {
  TUSK_ASSIGN_OR_RETURN(ObjectId id, WriteObject(ObjectType::kCommit, EncodeCommit(commit)));
  LmdbEnv* env = repo_->env_.get();
  auto describe = [](const std::optional<ObjectId>& c) { return c ? c->ShortHex() : std::string("(none)"); };
  TUSK_RETURN_IF_ERROR(MoveRef(commit.dataset, 'b', branch, id, [&](LmdbTxn& txn, const std::optional<ObjectId>& head) -> Status {
    if (head != expected)
      return Status::Conflict("branch " + commit.dataset + "@" + branch + " moved to " + describe(head) +
                              " while this commit was prepared on " + describe(expected) +
                              "; nothing was committed, run the command again");
    TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kCommits), tables::DatasetPrefix(commit.dataset) + std::string(id.view()), ""));
    if (commit.run) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kRunLinks), tables::RunOutputKey(*commit.run, id), ""));
    return Status::Ok();
  }));
  return id;
}

Status WriteSession::SetSettingsHead(const std::string& dataset, const ObjectId& settings,
                                     const std::optional<ObjectId>& expected) {
  return MoveRef(dataset, tables::kSettingsKind, tables::kSettingsRefName, settings,
                 [&](LmdbTxn&, const std::optional<ObjectId>& head) -> Status {
                   if (head != expected)
                     return Status::Conflict("the settings of dataset '" + dataset +
                                             "' changed meanwhile; nothing was changed, run the command again");
                   return Status::Ok();
                 });
}

Status WriteSession::MoveRef(const std::string& dataset, char kind, const std::string& name, const ObjectId& to,
                             const std::function<Status(LmdbTxn&, const std::optional<ObjectId>&)>& check_and_apply) {
  std::lock_guard lock(mu_);
  TUSK_RETURN_IF_ERROR(WaitForSealsLocked());
  if (!broken_.ok()) return broken_;
  auto fail = [&](const Status& st) {
    broken_ = st;
    return st;
  };
  LmdbEnv* env = repo_->env_.get();
  if (!writer_) {
    // Nothing new but the ref record (the object existed already).
    auto w = CreatePendingPack(*env, repo_->packs_.get());
    if (!w.ok()) return fail(w.status());
    writer_ = std::move(w).value();
  }
  // The bulk of the pack is made durable before LMDB's writer lock is taken,
  // so that the seal under it only adds the ref record and the footer.
  if (Status synced = writer_->Sync(); !synced.ok()) return fail(synced);
  RefBatch batch;
  batch.records.push_back(RefRecord::ForRef(RefRecord::Op::kRefSet, dataset, kind, name, to, NowNs()));
  Status st = env->Update([&](LmdbTxn& txn) -> Status {
    if (!txn.Get(env->db(tables::kDatasets), dataset).ok())
      return Status::NotFound("dataset '" + dataset + "' was deleted meanwhile");
    std::string ref_key = tables::RefKey(dataset, kind, name);
    auto current = txn.Get(env->db(tables::kRefs), ref_key);
    std::optional<ObjectId> head;
    if (current.ok()) {
      if (current->size() == ObjectId::kSize) head = IdFromView(*current);
    } else if (kind == 'b') {
      return Status::NotFound("branch '" + name + "' of dataset '" + dataset + "' was deleted meanwhile");
    }
    // The compare-and-set (in `check_and_apply`) must hold: only then is the
    // move recorded, so a writer that loses the race leaves no record behind.
    TUSK_RETURN_IF_ERROR(check_and_apply(txn, head));
    TUSK_RETURN_IF_ERROR(StageRefBatch(*env, txn, &batch, writer_.get()));
    TUSK_RETURN_IF_ERROR(writer_->Seal());
    KillPointForTests("ref-record-durable");
    TUSK_RETURN_IF_ERROR(RegisterPack(*env, txn, *writer_));
    TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kRefs), ref_key, to.view()));
    for (const auto& [k, v] : file_stats_) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kFileStats), k, v));
    for (const auto& [t, k, v] : index_puts_) TUSK_RETURN_IF_ERROR(txn.Put(env->db(t), k, v));
    return Status::Ok();
  });
  if (!st.ok()) return fail(st);
  writer_.reset();
  file_stats_.clear();
  index_puts_.clear();
  return Status::Ok();
}

Result<std::optional<ObjectId>> Repository::GetSettingsHead(const std::string& dataset) {
  TUSK_RETURN_IF_ERROR(CheckDataset(dataset));
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(env_->db(tables::kRefs), tables::RefKey(dataset, tables::kSettingsKind, tables::kSettingsRefName));
  if (!v.ok()) {
    if (v.status().code() == Status::Code::kNotFound) return std::optional<ObjectId>();
    return v.status();
  }
  if (v->size() != ObjectId::kSize) return Status::Corruption("the settings head of dataset '" + dataset + "' is not an id");
  return std::optional<ObjectId>(IdFromView(*v));
}

// ---- format upgrade ----

Status Repository::UpgradeFromFormat1() {
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockStore(true));
  // Another process may have upgraded the store while we waited for the lock.
  std::string config_path = JoinPath(dir_, kConfigFile);
  TUSK_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(files_, config_path));
  TUSK_ASSIGN_OR_RETURN(StoreConfig current, StoreConfig::Parse(text, config_path));
  if (current.format_version != 1) {
    config_ = current;
    return Status::Ok();
  }
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<PackWriter> pack, CreatePendingPack(*env_, packs_.get()));
  RefBatch batch;
  int64_t now = NowNs();
  bool sealed = false;
  Status st = env_->Update([&](LmdbTxn& txn) -> Status {
    if (!batch.staged) {
      // Datasets first, so that every ref record comes after its dataset's.
      batch.records.clear();
      std::vector<RefRecord> refs;
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kDatasets), "", [&](std::string_view k, std::string_view v) {
        int64_t created = 0;
        Decoder(v).GetSigned(&created);
        batch.records.push_back(RefRecord::ForDataset(RefRecord::Op::kDatasetCreated, std::string(k), created * 1000000000));
        return true;
      }));
      TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRefs), "", [&](std::string_view k, std::string_view v) {
        tables::RefKeyParts ref;
        if (!tables::ParseRefKey(k, &ref)) return true;
        std::optional<ObjectId> commit;
        if (v.size() == ObjectId::kSize) commit = IdFromView(v);
        refs.push_back(RefRecord::ForRef(RefRecord::Op::kRefSet, std::string(ref.dataset), ref.kind, std::string(ref.name),
                                         commit, now));
        return true;
      }));
      batch.records.insert(batch.records.end(), refs.begin(), refs.end());
    }
    if (!batch.records.empty()) {
      TUSK_RETURN_IF_ERROR(StageRefBatch(*env_, txn, &batch, pack.get()));
      TUSK_RETURN_IF_ERROR(pack->Seal());
      sealed = true;
      TUSK_RETURN_IF_ERROR(RegisterPack(*env_, txn, *pack));
    }
    return txn.Put(env_->db(tables::kMeta), tables::kMetaIndexComplete, "1");
  });
  if (!st.ok()) {
    if (!sealed) (void)DropPendingPack(*env_, packs_.get(), pack->id());
    return st;
  }
  if (!sealed) TUSK_RETURN_IF_ERROR(DropPendingPack(*env_, packs_.get(), pack->id()));
  // The records are durable and indexed; only now does the config say so.
  // A crash before this rename repeats the upgrade, whose newer records
  // supersede these.
  current.format_version = kStoreFormatVersion;
  TUSK_RETURN_IF_ERROR(WriteFileAtomically(files_, config_path, current.Encode()));
  config_ = current;
  return Status::Ok();
}

Status Repository::UpgradeConfigVersion() {
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockStore(true));
  std::string config_path = JoinPath(dir_, kConfigFile);
  TUSK_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(files_, config_path));
  TUSK_ASSIGN_OR_RETURN(StoreConfig current, StoreConfig::Parse(text, config_path));
  if (current.format_version >= 2 && current.format_version < kStoreFormatVersion) {
    // The index opened read-write, so its new tables exist (empty: an older
    // store has no runs and no settings).
    current.format_version = kStoreFormatVersion;
    TUSK_RETURN_IF_ERROR(WriteFileAtomically(files_, config_path, current.Encode()));
  }
  config_ = current;
  return Status::Ok();
}

}  // namespace tusk
