// Repository: the facade over one tusk store directory.
//
// A store holds packs (content), an LMDB index (where each object lives,
// which datasets, branches, tags and commits exist) and a config file. All
// reads go through ReadObject, which checks every record's CRC-32C, decodes
// it and (unless disabled) re-hashes chunks, so corrupted data is reported as
// Corruption and never returned.
//
// Writing happens in a WriteSession: chunks and objects go into new packs;
// a pack is made durable (fsync) before the index transaction that refers to
// it commits, and a commit becomes visible only when its branch moves, by
// compare-and-set, in the same transaction. Killing a writer at any point
// therefore leaves every earlier commit intact; what it wrote is garbage that
// `gc` reclaims.
//
// Locking: writers hold a shared lock on STORE/lock for their session; gc
// holds it exclusively. Readers take no lock.
//
// Thread-safety: Repository is thread-safe. WriteSession::PutChunk and
// WriteObject may be called from many threads; Commit* from one.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "store/backend/env.h"
#include "store/chunker.h"
#include "store/ids.h"
#include "store/lineage/lineage.h"
#include "store/objects.h"
#include "store/refs.h"
#include "store/status.h"

namespace tusk {

class LmdbEnv;
struct ObjectLocation;
struct PackRecord;
class RandomAccessFile;
class RoutingPackStore;
class PackMirror;
class RemoteReader;
class LmdbTxn;
struct RefBatch;
class PackDirectory;
class PackWriter;
class Fd;

// Format 2 added ref records, format 3 run records and commits that name
// their run, format 4 dataset settings (checks, table keys) and commits that
// record their checks (store/FORMAT.md); an older store is upgraded when
// opened.
// Format 5 the index stamp; format 6 packs registered from remotes and
// remote-tracking refs (index only).
inline constexpr int kStoreFormatVersion = 6;

// The default bound of the cache of chunks read from remotes.
inline constexpr uint64_t kDefaultRemoteCacheSize = uint64_t{8} << 30;

struct StoreConfig {
  ChunkerParams chunker;
  // Readable (not writable) by the group of the store directory; see
  // store/internal/access.h. A private store's config omits the line.
  bool shared = false;
  // 0: store everything raw; 1..19: zstd level. Level 1 by measurement: on the
  // benchmark data it compresses CSV better than level 3, and 4x faster.
  int compression_level = 1;
  // As read from the config (1 to 3); Encode always writes the current one.
  int format_version = kStoreFormatVersion;

  Status Validate() const;
  std::string Encode() const;
  static Result<StoreConfig> Parse(const std::string& text, const std::string& path);
};

struct DatasetInfo {
  std::string name;
  int64_t created_sec = 0;
  size_t branch_count = 0;
  size_t tag_count = 0;
};

struct RefInfo {
  std::string name;
  std::optional<ObjectId> commit;  // empty: a branch with no commits yet
};

// What a progress display needs; counters only grow.
struct Progress {
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> bytes_total{0};  // 0: unknown
  std::atomic<uint64_t> items_done{0};
  std::atomic<uint64_t> items_total{0};
};

struct GcReport {
  uint64_t objects_removed = 0;
  uint64_t bytes_removed = 0;  // stored bytes of removed records
  uint64_t packs_rewritten = 0;
  uint64_t packs_deleted = 0;
  uint64_t objects_kept = 0;
};

struct FsckProblem {
  std::string object;  // "chunk <id>", "tree <id>", "commit <id>", "pack <name>", "ref <name>"
  std::string error;
  std::vector<std::string> affected;  // "data@1a2b3c… path/to/file", or commit refs
};
struct FsckReport {
  uint64_t objects_checked = 0;
  uint64_t bytes_checked = 0;
  uint64_t commits_checked = 0;
  std::vector<FsckProblem> problems;
  // Findings that are not damage (e.g. garbage an interrupted writer left).
  std::vector<std::string> notes;
};

struct RebuildReport {
  uint64_t packs = 0;
  uint64_t unsealed_packs = 0;  // left by interrupted writers; their ref records are ignored
  uint64_t objects = 0;
  uint64_t ref_records = 0;
  uint64_t datasets = 0;
  uint64_t branches = 0;
  uint64_t tags = 0;
  uint64_t commits = 0;
  uint64_t runs = 0;
  uint64_t settings = 0;  // datasets with settings
  std::string old_index;  // where the previous index was moved; empty if there was none
  std::vector<std::string> warnings;
};

struct StoreStats {
  uint64_t datasets = 0;
  uint64_t commits = 0;
  uint64_t logical_bytes = 0;  // sum of file sizes over every commit
  uint64_t unique_bytes = 0;   // distinct chunk plaintext reachable
  uint64_t stored_bytes = 0;   // those chunks as stored (compressed)
  uint64_t chunks = 0;
  uint64_t trees = 0;
  uint64_t packs = 0;
  uint64_t pack_bytes = 0;   // all pack files on disk
  uint64_t index_bytes = 0;  // the LMDB file
};

// A pack on a remote, as its footer lists it.
struct RemotePackListing {
  uint64_t id = 0;
  uint64_t size = 0;
  std::vector<PackRecord> records;
};

// Where a remote's ref was when this store last talked to the remote
// (fetch or push): a remote-tracking ref, "DATASET@REMOTE/BRANCH".
struct RemoteRefInfo {
  std::string remote;
  std::string dataset;
  char kind = 'b';  // 'b' branch, 't' tag, 's' the dataset's settings head
  std::string name;
  ObjectId commit;
};

class WriteSession;

// kReadOnly: for commands that only read. It works on a store this process
// may read but not write (someone else's shared store, chmod -R a-w), and
// every change fails with ReadOnly.
enum class StoreAccess { kReadWrite, kReadOnly };

class Repository : public ObjectSource {
 public:
  // Creates a store in `dir` (created if missing; must be empty or absent),
  // private to this user (0700) or, with config.shared, shared read-only
  // with the directory's group.
  // `files` is the file seam (store/backend/env.h) for packs and the
  // config; tests pass one that can simulate a power loss.
  static Status Create(const std::string& dir, const StoreConfig& config, Env* files = Env::Default());
  // A store of another user opens only read-only, and only if it is shared
  // (or otherwise readable); errors name the owner.
  // `index_verified`: the caller's parent, a tusk process that has the
  // store open, verified the index (every page walked) a moment ago, so this
  // open checks only its meta pages. The walk costs ~0.35 s at a million
  // files; a check subprocess (fs/check_runner.h) would pay it per commit.
  static Result<std::unique_ptr<Repository>> Open(const std::string& dir,
                                                  StoreAccess access = StoreAccess::kReadWrite,
                                                  Env* files = Env::Default(), bool index_verified = false);
  ~Repository() override;

  const std::string& dir() const { return dir_; }
  const StoreConfig& config() const { return config_; }
  bool read_only() const { return read_only_; }
  // The file seam the store was opened with; workspaces write their own
  // files (base, next) and make names durable through it too.
  Env* files() const { return files_; }

  // Objects. ReadObject verifies the record and the object's hash.
  Result<std::string> ReadObject(const ObjectId& id, ObjectType type) override;
  Result<Commit> ReadCommit(const ObjectId& id);
  // Part of a chunk: only the 16 KiB blocks (raw chunks) or 32 KiB zstd
  // frames (compressed ones) the range touches are read, verified (their
  // CRCs; the SHA-256 needs the whole chunk) and decompressed. Unsupported
  // for chunks without a range table (one block or one frame long): the
  // caller reads those whole. Corruption when the chunk's length is not the
  // one `chunk` (an entry of a file's chunk list) gives it.
  Result<std::string> ReadChunkRange(const ChunkRef& chunk, uint64_t offset, size_t len);
  Result<bool> Contains(const ObjectId& id);
  // In this store's own packs (not only read from a remote): what writers
  // check, so that data written here never depends on a bucket.
  Result<bool> ContainsLocally(const ObjectId& id);
  // Chunks are re-hashed on every read unless this is turned off (the CRC
  // is always checked).
  void set_verify_chunk_hashes(bool on) { verify_chunk_hashes_ = on; }
  // Chunks read from a remote are kept in STORE/cache/packs, up to this
  // many bytes of disk (least recently used packs go first;
  // store/backend/pack_mirror.h); 0: the size last given for that cache,
  // else kDefaultRemoteCacheSize. Set it before reading.
  void set_remote_cache_size(uint64_t bytes);
  PackMirror& remote_cache() { return *mirror_; }
  // Whether a chunk held on a remote is in that cache.
  Result<bool> RemoteChunkCached(const ObjectId& id);
  // Reading ahead from remotes (store/remote_reads.cc). Of `chunks`, those
  // held only on a remote and not in the cache are fetched: neighbours in a
  // pack joined into one ranged request, several requests in flight
  // (store/internal/remote_reader.h), every chunk checked against its id
  // before it enters the cache. With `wait`, returns when all are in, with
  // the first error; without, returns at once (read-ahead: what the queue
  // cannot take is left to the reader). Nothing to do in a store without
  // remote packs.
  Status FetchRemoteChunks(const std::vector<ObjectId>& chunks, bool wait);
  // Whether the index names a remote pack (as of open, or of this
  // process's last registration): reads may go to a bucket.
  bool has_remote_packs() const { return has_remote_packs_; }
  // Requests in flight for FetchRemoteChunks (default 8). Set it before
  // reading.
  void set_remote_fetch_threads(unsigned n) { remote_fetch_threads_ = std::max(1u, n); }

  // Datasets.
  Status CreateDataset(const std::string& name);
  Status DeleteDataset(const std::string& name);
  Result<std::vector<DatasetInfo>> ListDatasets();
  Status CheckDataset(const std::string& name);

  // Branches and tags (one namespace per dataset).
  Result<std::optional<ObjectId>> GetBranch(const std::string& dataset, const std::string& branch);
  Result<std::vector<RefInfo>> ListBranches(const std::string& dataset);
  Result<std::vector<RefInfo>> ListTags(const std::string& dataset);
  Status CreateBranch(const std::string& dataset, const std::string& name, const std::optional<ObjectId>& at);
  Status DeleteBranch(const std::string& dataset, const std::string& name);
  Status CreateTag(const std::string& dataset, const std::string& name, const ObjectId& at);
  Status DeleteTag(const std::string& dataset, const std::string& name);
  // Resolves a ref to a commit id of its dataset.
  Result<ObjectId> Resolve(const RefSpec& ref);
  Result<ObjectId> Resolve(const std::string& ref_text, bool allow_bare_dataset = true);

  // Runs (store/lineage/runs.cc). A run is named by its id or an
  // unambiguous hex prefix of it (at least 4 digits), optionally written
  // "run:PREFIX".
  Result<RunRecord> ReadRun(const ObjectId& id);
  Result<ObjectId> ResolveRun(std::string_view text);
  // Every run, oldest first, with its output commits.
  Result<std::vector<RunSummary>> ListRuns();
  // The runs that read `commit` through an input, and the output commits of
  // `run`.
  Result<std::vector<ObjectId>> RunsReading(const ObjectId& commit);
  Result<std::vector<ObjectId>> RunOutputs(const ObjectId& run);

  // The current version of a dataset's settings (store/settings/settings.h);
  // nullopt while it has none.
  Result<std::optional<ObjectId>> GetSettingsHead(const std::string& dataset);

  // Remotes (issue 12; store/remote_index.cc). A fetch registers the packs
  // of a remote in the index: their objects, where this store lacks them,
  // are then read from the remote (and every chunk read from there has its
  // SHA-256 checked: a bucket is not trusted). Nothing here talks to a
  // remote; store/remote does, through these.
  //
  // Every registered pack: id -> the remote holding it ("" for local).
  Result<std::map<uint64_t, std::string>> RegisteredPacks();
  // Registers packs of `remote` that the index does not know yet; objects
  // the store already has keep their location.
  Status RegisterRemotePacks(const std::string& remote, const std::vector<RemotePackListing>& packs);
  Result<bool> IsRemotePack(uint64_t pack);
  // Where the index says an object is; nullopt when it is not in the store.
  Result<std::optional<ObjectLocation>> FindObject(const ObjectId& id);
  // A local pack's records, and its bytes (for push to upload it whole).
  Result<std::vector<PackRecord>> LocalPackRecords(uint64_t pack);
  Result<std::unique_ptr<RandomAccessFile>> OpenLocalPack(uint64_t pack, uint64_t* size);
  // A record's stored bytes (compressed as they are), CRC-checked.
  Status ReadStoredRecord(const ObjectId& id, const ObjectLocation& loc, std::string* stored);
  // Adds `commits` to the commits of `dataset` (prefix lookups, branch
  // checks): for histories that arrived from a remote.
  Status IndexCommits(const std::string& dataset, const std::vector<ObjectId>& commits);
  // Remote-tracking refs, kept in the index only (a fetch or push renews
  // them; an index rebuild drops them until the next fetch). With
  // `replace`, the remote's refs of `dataset` become exactly `refs` (a
  // fetch); else each of `refs` is set and the others stay (a push).
  Status SetRemoteRefs(const std::string& remote, const std::string& dataset, const std::vector<RemoteRefInfo>& refs,
                       bool replace);
  Result<std::vector<RemoteRefInfo>> ListRemoteRefs(const std::string& remote,
                                                    const std::optional<std::string>& dataset = std::nullopt);
  // Forgets a remote's tracking refs (tusk remote remove).
  Status DropRemoteRefs(const std::string& remote);

  // Starts writing. Takes the store's shared writer lock.
  Result<std::unique_ptr<WriteSession>> BeginWrite();

  // Per-file stat records that let a re-import skip unchanged files. Keys
  // are opaque to the repository.
  Result<std::map<std::string, std::string>> LoadFileStats(const std::string& prefix);

  // Maintenance (maintenance.cc).
  Result<GcReport> CollectGarbage(bool dry_run, Progress* progress);
  Result<FsckReport> Check(Progress* progress);
  Result<StoreStats> Stats(const std::optional<std::string>& dataset);

  // Rebuilds the index of the store in `dir` from its packs alone (objects,
  // packs, commits, datasets, branches and tags; file stats are dropped) and
  // moves the old index aside. Does not open the old index, so it works when
  // that is missing or damaged. Takes the store lock exclusively. (rebuild.cc)
  static Result<RebuildReport> RebuildIndex(const std::string& dir, Progress* progress, Env* files = Env::Default());

 private:
  friend class WriteSession;
  Repository() = default;
  Result<std::vector<ObjectId>> FindCommitsByPrefix(const std::string& dataset, const std::string& hex_prefix);
  Result<std::vector<RefInfo>> ListRefs(const std::string& dataset, char kind);
  Status CreateRef(const std::string& dataset, char kind, const std::string& name, const std::optional<ObjectId>& at);
  Status DeleteRef(const std::string& dataset, char kind, const std::string& name);
  // Under the shared store lock: refuses with `check`'s error, else records
  // `batch` in a pack of its own, sealed inside the index transaction that
  // then runs `apply` (see store/internal/ref_log.h for the ordering).
  Status RecordAndApply(RefBatch& batch, const std::function<Status(LmdbTxn&)>& check,
                        const std::function<Status(LmdbTxn&)>& apply);
  Result<Fd> LockStore(bool exclusive);
  // Where the index says `id` lives (Corruption if nowhere, or as another type).
  Result<ObjectLocation> Locate(const ObjectId& id, ObjectType type);
  // Runs `read` on the object's location; when the pack is gone (a gc moved
  // the record after the lookup), looks the object up again and retries once.
  Status ReadFromPack(const ObjectId& id, ObjectType type, const std::function<Status(const ObjectLocation&)>& read);
  // Writes ref records for every dataset and ref of a format-1 store, then
  // bumps its config to the current format.
  Status UpgradeFromFormat1();
  // Formats 2 -> 3 -> 4 add only index tables (created when the index
  // opens) and object kinds that the older store cannot hold yet: the config
  // is rewritten with the current version.
  Status UpgradeConfigVersion();
  // A missing index (index/ or its data.mdb): an error naming the rebuild
  // if packs exist (LMDB would say ENOENT, or make an empty one), else the
  // directory is made for a new empty index.
  Status CheckIndexPresent();
  // Refuses an index that lacks its completion mark beside pack files (it
  // was deleted or emptied).
  Status CheckIndexComplete();
  // Ok when the store holds no pack (a lost index lost nothing); else the
  // Corruption that names the rebuild, saying the index is `what`.
  Status RefuseLostIndex(const std::string& what);
  // Unregistered pack files that hold records: the index does not account
  // for them (it is missing or stale). Packs that hold no record at all are
  // a writer's garbage and listed in `garbage` when given.
  Result<std::vector<uint64_t>> UnknownPacks(std::vector<uint64_t>* garbage);  // pack ids
  // Reachability from every ref of every dataset: commit ids, and every tree
  // page and chunk their trees reach.
  Status MarkReachable(std::unordered_set<ObjectId, ObjectIdHash>* live, Progress* progress);

  std::string dir_;
  Env* files_ = nullptr;  // packs and config go through it
  StoreConfig config_;
  std::unique_ptr<LmdbEnv> env_;
  std::unique_ptr<PackDirectory> packs_;
  RoutingPackStore* routing_ = nullptr;  // packs_'s store
  std::unique_ptr<PackMirror> mirror_;             // the cache of remote records
  std::unique_ptr<PackDirectory> mirror_packs_;    // reads mirror_'s files
  bool verify_chunk_hashes_ = true;
  bool read_only_ = false;
  // Remote reads (store/remote_reads.cc).
  Status NoteRemotePacks();  // sets has_remote_packs_ from the index
  // A chunk on a remote: handed over by a read-ahead, else from the
  // mirror, else fetched now (and mirrored).
  Status ReadRemoteChunk(const ObjectId& id, const ObjectLocation& loc, std::string* out);
  // Reads a span of records of a remote pack (RemoteReader::Span), checks
  // each against its id and writes them to the mirror. `want`: the
  // plaintext of the span's first record goes there; `read_ahead`: the
  // plaintexts are handed to RemoteReader::Land. Failing to mirror fails
  // only a fetch nobody reads (a prefetch's).
  Status FetchRemoteSpan(uint64_t pack, const std::vector<std::pair<ObjectId, ObjectLocation>>& span, bool read_ahead,
                         std::string* want);
  RemoteReader& remote_reader();  // made on first use
  // Read-ahead in pack order: packs hold files in the order they were
  // imported, which is the order most readers go in (find, tar, loaders
  // walking a tree). A reader going through a remote pack has the next
  // kPackReadAhead bytes of its records fetched.
  void ReadAheadInPack(const ObjectLocation& loc);
  struct PackReading {
    uint64_t last_end = 0;     // where the last chunk read from it ends
    uint64_t asked_until = 0;  // read-ahead asked up to here
  };
  std::mutex pack_reading_mu_;  // guards the two maps below
  std::map<uint64_t, PackReading> pack_reading_;
  std::map<uint64_t, std::shared_ptr<const std::vector<PackRecord>>> remote_footers_;
  std::atomic<bool> has_remote_packs_{false};
  unsigned remote_fetch_threads_ = 8;
  std::once_flag remote_reader_once_;
  std::atomic<bool> remote_reader_ready_{false};
  // Last: its threads stop before what they read through goes.
  std::unique_ptr<RemoteReader> remote_reader_;
};

// Called with a commit about to land (its tree written to `session`, not
// yet durable), before the branch moves: it may fill in the commit's check
// fields (Commit::settings, checks) and may refuse, in which case nothing
// lands. Checks (fs/check_runner.h) are run this way.
using PrepareCommit = std::function<Status(Commit* commit, WriteSession& session)>;

class WriteSession : public ObjectSink {
 public:
  ~WriteSession() override;

  // Stores a chunk unless the store already has it. Returns true if stored.
  Result<bool> PutChunk(const ObjectId& id, std::string_view plaintext);
  Result<ObjectId> WriteObject(ObjectType type, std::string encoding) override;
  // Stores an object the index has on a remote into this store's own packs
  // (a pull keeps commits and trees local); `plaintext` must hash to `id`.
  Status Localize(ObjectType type, const ObjectId& id, std::string_view plaintext);
  // The same for a run record, indexed as WriteRun indexes it.
  Status LocalizeRun(const ObjectId& id, std::string_view encoding);
  // Records that `commit` (copied from a remote) is the output of `run`.
  void IndexRunOutput(const ObjectId& run, const ObjectId& commit);

  // Records a file-stat entry to be written with the commit.
  void RememberFileStat(std::string key, std::string value);

  // Writes a run record; it is indexed (`tusk runs` lists it) with the next
  // Flush or CommitToBranch, which also make it durable.
  Result<ObjectId> WriteRun(const RunRecord& run);

  // Writes `commit`, makes everything durable, and moves dataset@branch from
  // `expected` (nullopt: the branch has no commits) to the new commit, all or
  // nothing. Conflict if the branch has moved meanwhile.
  Result<ObjectId> CommitToBranch(const Commit& commit, const std::string& branch,
                                  const std::optional<ObjectId>& expected);
  // Makes everything written so far durable and indexed, with no ref change.
  Status Flush();
  // Like CommitToBranch for the dataset's settings head
  // (store/settings/settings.h): `settings` must be written already.
  Status SetSettingsHead(const std::string& dataset, const ObjectId& settings, const std::optional<ObjectId>& expected);

  uint64_t new_objects() const { return new_objects_; }
  uint64_t new_stored_bytes() const { return new_stored_bytes_; }

 private:
  friend class Repository;
  WriteSession(Repository* repo, std::unique_ptr<Fd> lock);
  // Compresses (without the lock) and appends a record; rotates the pack
  // when it is large.
  Status Store(ObjectType type, const ObjectId& id, std::string_view plaintext);
  // Seals the current pack and registers its records in the index, with the
  // session's file stats and run index entries, in one transaction. Needs mu_.
  Status SealLocked();
  // Hands the current (full) pack to a background thread that seals and
  // registers it, so writers go on while it is fsynced. Needs mu_.
  void RotateLocked();
  // Waits for every background seal; returns the first failure. Needs mu_.
  Status WaitForSealsLocked();
  // Makes everything durable and sets dataset's ref (kind, name) to `to`
  // with a ref record, in one index transaction that first runs
  // `check_and_apply` with the ref's current value (it refuses: the
  // compare-and-set, or adds its own index entries). Takes mu_.
  Status MoveRef(const std::string& dataset, char kind, const std::string& name, const ObjectId& to,
                 const std::function<Status(LmdbTxn&, const std::optional<ObjectId>&)>& check_and_apply);

  Repository* repo_;
  std::unique_ptr<Fd> lock_;
  std::mutex mu_;  // guards everything below; never held while compressing
  std::unordered_set<ObjectId, ObjectIdHash> seen_;
  std::unique_ptr<PackWriter> writer_;
  std::vector<std::future<Status>> sealing_;
  std::vector<std::pair<std::string, std::string>> file_stats_;
  // Index entries of the run records written (table, key, value), put in
  // the transaction that registers their pack or a later one.
  std::vector<std::tuple<size_t, std::string, std::string>> index_puts_;
  std::atomic<uint64_t> new_objects_{0};
  std::atomic<uint64_t> new_stored_bytes_{0};
  Status broken_;
};

}  // namespace tusk
