// Remotes (issue 12): named S3 locations that a store shares its datasets
// through. This header is the capability's public face; push, pull and
// lazily fetched packs build on it.
//
// A store's remotes are a small text file, STORE/remotes (FORMAT.md,
// "Remotes"), beside the config: not in the index, which must stay
// rebuildable from packs, and never holding credentials, which come from
// the environment each time (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
// AWS_SESSION_TOKEN, or AWS_PROFILE in ~/.aws/credentials).
//
// On the bucket, a remote is everything under its prefix, starting with
// the object PREFIX/tusk-remote, whose first line names the remote format
// ("tusk remote 1"). Refs on a remote move only by conditional writes
// (If-Match / If-None-Match), so a server without them cannot hold a
// remote: AddRemote tries them on a scratch key first and refuses such a
// server, rather than lose a ref to a race later.
//
// Thread-safety: functions are reentrant; AddRemote and RemoveRemote
// serialize on an flock of the store directory.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend/env.h"
#include "store/backend/pack_store.h"
#include "store/backend/s3/location.h"
#include "store/backend/s3/s3_client.h"
#include "store/repository.h"
#include "store/status.h"

namespace tusk {

struct Remote {
  std::string name;      // CheckRemoteName
  std::string url;       // s3://BUCKET[/PREFIX], as given
  std::string endpoint;  // "" for AWS, else http(s)://host[:port]
  std::string region;    // "" for AWS_REGION, AWS_DEFAULT_REGION or us-east-1
  enum class Addressing { kAuto, kPathStyle, kVirtualHost };
  Addressing addressing = Addressing::kAuto;
  bool insecure = false;  // TLS certificates not verified
  // The remote's identity: 32 hex digits from PREFIX/tusk-remote, recorded
  // when the remote was added; "" for a remote made by a tusk that gave
  // none. A prefix emptied and made again is another remote.
  std::string id;
  bool operator==(const Remote&) const = default;
};

const char* AddressingName(Remote::Addressing a);  // "auto", "path", "virtual-host"

// 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit.
Status CheckRemoteName(std::string_view name);

// STORE/remotes as text, and back. DecodeRemotes takes untrusted input:
// Corruption naming the line for anything malformed, Unsupported for a
// newer format.
std::string EncodeRemotes(const std::vector<Remote>& remotes);
Result<std::vector<Remote>> DecodeRemotes(std::string_view text);

// The remotes of the store in `store_dir` (none when the file is absent).
Result<std::vector<Remote>> LoadRemotes(Env* files, const std::string& store_dir);
// The one named `name`: NotFound listing the names there are.
Result<Remote> FindRemote(Env* files, const std::string& store_dir, std::string_view name);

// A client of the remote's bucket with credentials from the environment,
// and where in the bucket the remote lives.
struct RemoteConnection {
  Remote remote;
  s3::Location location;
  std::shared_ptr<s3::Client> client;
};
// `options` start from the remote's own endpoint, region, addressing and
// TLS setting (timeouts and retries may be set by the caller).
Result<RemoteConnection> Connect(const Remote& remote, s3::ClientOptions options = {});

// Checks that the bucket exists (creating it if `create_bucket`), that the
// server honours conditional writes (Unsupported, saying so, if not), and
// that PREFIX/tusk-remote names a format this version reads, writing it
// when the prefix is new; then adds the remote to the store. AlreadyExists
// when the name is taken; nothing is written to the store unless all of
// this passed.
Status AddRemote(Env* files, const std::string& store_dir, const Remote& remote, bool create_bucket);
// Forgets the remote (nothing on the bucket changes). NotFound when absent.
Status RemoveRemote(Env* files, const std::string& store_dir, std::string_view name);

// The checks of AddRemote on a connection, for callers that connect
// themselves (tests, clone): conditional writes on a scratch key under the
// prefix (removed afterwards), then the format object.
Status ProbeConditionalWrites(s3::Client& client, const s3::Location& location);
// Returns the remote's id ("" when its format object gives none); a new
// remote gets a random one.
Result<std::string> AdoptRemoteFormat(s3::Client& client, const s3::Location& location);
// Conflict when the remote is not the one this store added: its format
// object is gone or names another id (the prefix was emptied, maybe made
// again, or STORE/remotes was edited to point elsewhere). What this store
// remembers of it (remote-tracking refs) would then be wrong, and a push
// would skip objects the remote lacks. Ok for a remote recorded without id.
Status CheckRemoteIdentity(const RemoteConnection& connection);

inline constexpr int kRemoteFormat = 1;       // PREFIX/tusk-remote
inline constexpr int kRemotesFileFormat = 2;  // STORE/remotes (2: id=); reads 1 too

// ---- refs on the remote (remote_refs.cc) ----
// A branch is the object PREFIX/refs/DATASET/branches/NAME, a tag
// PREFIX/refs/DATASET/tags/NAME, a dataset's settings head
// PREFIX/refs/DATASET/settings; each holds "tusk ref 1\n<64 hex digits>\n".
// They are written only conditionally: created with If-None-Match: *,
// moved with If-Match on the etag read before.
struct RemoteRefValue {
  std::string dataset;
  char kind = 'b';  // 'b', 't', 's' as in RemoteRefInfo
  std::string name;
  ObjectId commit;
  std::string etag;
};
std::string RemoteRefKey(const s3::Location& location, const std::string& dataset, char kind, const std::string& name);
// nullopt when the ref does not exist on the remote.
Result<std::optional<RemoteRefValue>> ReadRemoteRef(s3::Client& client, const s3::Location& location,
                                                   const std::string& dataset, char kind, const std::string& name);
// Every ref on the remote (of one dataset, when given). Objects under
// refs/ that are not refs are skipped; a ref object that does not parse is
// Corruption naming it, or, with `skipped`, left out with a message there.
Result<std::vector<RemoteRefValue>> ListRemoteRefValues(s3::Client& client, const s3::Location& location,
                                                       const std::optional<std::string>& dataset = std::nullopt,
                                                       std::vector<std::string>* skipped = nullptr);
// Sets the ref to `commit` if it is still as read (`expected`; nullopt: it
// must not exist). Conflict when it moved meanwhile. Returns the new etag.
Result<std::string> WriteRemoteRef(s3::Client& client, const s3::Location& location, const std::string& dataset,
                                   char kind, const std::string& name, const ObjectId& commit,
                                   const std::optional<RemoteRefValue>& expected);

// ---- reading a remote's packs (sources.cc) ----
// Makes every Repository opened afterwards in this process able to read
// packs that a fetch registered from the store's remotes (on S3, with
// credentials from the environment). The CLI and the mount daemon call it
// at start.
void InstallRemotePackSources();
// The pack store of a remote connection (packs under PREFIX/packs/).
std::unique_ptr<PackStore> RemotePackStore(const RemoteConnection& connection, const std::string& scratch_dir = "");

// ---- fetch, push (fetch.cc, push.cc) ----
struct FetchReport {
  uint64_t packs_registered = 0;   // packs of the remote the index learnt of
  uint64_t objects_localized = 0;  // commits, trees, settings and run records copied here
  uint64_t bytes_localized = 0;
  std::vector<RemoteRefValue> refs;  // the remote's refs of the datasets fetched
  std::vector<std::string> warnings;  // refs and packs of the remote that could not be read (damage)
};
// Learns what the remote holds: registers its packs that this store does
// not know (one read of each pack's footer), sets the remote-tracking refs
// of `dataset` (of every dataset when nullopt) to the remote's refs, and
// copies the commits, trees, settings and run records they reach into this
// store (file data stays on the remote, read when first needed). Moves no
// local branch.
Result<FetchReport> Fetch(Repository& repo, const RemoteConnection& remote,
                          const std::optional<std::string>& dataset, Progress* progress = nullptr);
// Adds the history of `commit` to the commits of `dataset` here (after a
// fetch brought it, before a local branch may point at it).
Status IndexFetchedHistory(Repository& repo, const std::string& dataset, const ObjectId& commit);

// ---- prefetch (prefetch.cc) ----
struct PrefetchReport {
  uint64_t files = 0;
  uint64_t chunks = 0;          // distinct chunks of those files
  uint64_t bytes = 0;           // their plaintext
  uint64_t chunks_fetched = 0;  // read from a remote now
  uint64_t bytes_fetched = 0;
  uint64_t chunks_cached = 0;   // in the cache already
  uint64_t chunks_local = 0;    // in this store's own packs
  uint64_t bytes_remote = 0;    // of the chunks that are not: what the cache must hold
};
// Reads into the store's cache of remote data (Repository::remote_cache)
// every chunk of the files under `paths` of `commit` (all of it when
// `paths` is empty) that is not in it yet, `threads` at a time, so a job
// started afterwards reads at local-disk speed. NotFound naming a path that
// does not exist.
Result<PrefetchReport> Prefetch(Repository& repo, const ObjectId& commit, const std::vector<std::string>& paths,
                                int threads = 8, Progress* progress = nullptr);

struct PushOptions {
  bool force = false;         // move the remote branch even when it is not a fast-forward
  bool tag = false;           // `branch` names a tag (created on the remote, never moved unless force)
  int packs_in_flight = 4;    // uploads at once
  size_t part_size = 8 << 20; // multipart part size for large packs
  uint64_t repack_size = 32ull << 20;  // stored bytes per repacked pack (as the store's own packs)
};
struct PushReport {
  enum class Outcome { kUpToDate, kCreated, kFastForward, kForced };
  Outcome outcome = Outcome::kUpToDate;
  std::optional<ObjectId> old_commit;  // the remote branch before
  ObjectId new_commit;
  uint64_t objects = 0;          // objects the remote lacked
  uint64_t packs_uploaded = 0;   // local packs sent whole
  uint64_t packs_repacked = 0;   // packs made of the needed records of partly needed packs
  uint64_t packs_skipped = 0;    // already on the remote (an earlier, interrupted push sent them)
  uint64_t bytes_uploaded = 0;
  std::string settings_note;  // why the dataset's settings did not follow, when they did not
};
// Sends `dataset@branch` to the remote: the objects it lacks (sealed
// local packs whole when all of their records are needed, the needed
// records of other packs repacked), then moves the remote branch by
// compare-and-set. Refused (Conflict, nothing moved) when the remote
// branch is not an ancestor of the local one, unless options.force, and
// when someone else moved it meanwhile. An interrupted push re-sends none
// of the packs it finished: they are found on the remote by their ids.
Result<PushReport> Push(Repository& repo, const RemoteConnection& remote, const std::string& dataset,
                        const std::string& branch, const PushOptions& options, Progress* progress = nullptr);

}  // namespace tusk
