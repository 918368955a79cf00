#include "store/internal/lmdb.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include "store/internal/file.h"

namespace tusk {
namespace {

// Small enough that a fresh store costs nothing, large enough that ordinary
// imports never grow it. TUSK_LMDB_MAP_SIZE overrides it (tests use a tiny
// map to exercise growth).
size_t InitialMapSize() {
  if (const char* env = std::getenv("TUSK_LMDB_MAP_SIZE")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 10);
    if (end && *end == '\0' && v >= 65536) return static_cast<size_t>(v);
  }
  return size_t{1} << 30;
}

// Damage found by a check of the data file.
Status Damaged(const std::string& path, const Status& found) {
  return Status::Corruption("the index " + path + " is damaged (" + found.message() + "); rebuild it with '" +
                            kIndexRebuildCommand + "'");
}

// What the verified stamp records of data.mdb: the kernel sets ctime on
// every write and no program can set it back, so an unchanged identity,
// size, mtime and ctime mean nothing has written the file since.
struct FileState {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const FileState&) const = default;
};

bool StateOf(const std::string& path, FileState* out, mode_t* mode = nullptr) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (mode) *mode = st.st_mode & 0666;
  auto ns = [](const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; };
  *out = FileState{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                   static_cast<uint64_t>(st.st_size), ns(st.st_mtim), ns(st.st_ctim)};
  return true;
}

// Whether every write to a file in `dir` that follows a stat of it changes
// its ctime. Only with multigrain timestamps (Linux 6.13, on ext4, xfs,
// btrfs and tmpfs): before them ctime moves once per clock tick, and a
// write in the tick of the stamp's stat would go unseen.
bool CtimeShowsEveryWrite(const std::string& dir) {
  struct utsname u;
  int major = 0, minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  if (major < 6 || (major == 6 && minor < 13)) return false;
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0) return false;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case EXT4_SUPER_MAGIC:
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC: return true;
    default: return false;
  }
}

constexpr const char* kStampFormat = "tusk index verified 1 %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 "\n";

// A missing, torn or foreign stamp says nothing.
bool StampSays(const std::string& path, const FileState& state) {
  auto text = ReadWholeFile(path);
  if (!text.ok() || text->size() > 200 || text->empty() || text->back() != '\n') return false;
  FileState f;
  int n = std::sscanf(text->c_str(), kStampFormat, &f.dev, &f.ino, &f.size, &f.mtime_ns, &f.ctime_ns);
  return n == 5 && f == state;
}

// Best effort, without fsync: a stamp lost or torn by a crash only costs
// the next open a full walk.
void WriteStamp(const std::string& path, const FileState& f, mode_t mode) {
  char line[200];
  int len = std::snprintf(line, sizeof line, "tusk index verified 1 %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64
                          " %" PRId64 "\n", f.dev, f.ino, f.size, f.mtime_ns, f.ctime_ns);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fd = OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (!fd.ok()) return;
  bool written = WriteAll(fd->get(), line, static_cast<size_t>(len), tmp).ok();
  fd->Reset();
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

// A meta page is rewritten by every commit, so a read that races one can
// see half of it: a check failure counts only when two reads agree.
Result<lmdb_verify::MetaPages> ReadMetaAgreed(int fd, const std::string& path) {
  std::string previous;
  for (int attempt = 0;; attempt++) {
    auto pages = lmdb_verify::ReadMetaPages(fd);
    if (!pages.ok() && pages.status().code() != Status::Code::kCorruption) return pages.status();
    Status st = pages.ok() ? lmdb_verify::CheckMetaPages(*pages) : pages.status();
    if (st.ok()) return pages;
    std::string seen = st.message() + (pages.ok() ? pages->raw[0] + pages->raw[1] : std::string());
    if (seen == previous || attempt >= 20) return Damaged(path, st);
    previous = seen;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

}  // namespace

Status LmdbError(int rc, const std::string& what) {
  std::string msg = what + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL: return Status::NoSpace(what + ": index map is full");
    case MDB_NOTFOUND: return Status::NotFound(what + ": not found");
    case MDB_KEYEXIST: return Status::AlreadyExists(msg);
    // What LMDB finds when its pages do not hold what they should.
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
      return Status::Corruption(msg + "; the index is damaged: rebuild it with '" + kIndexRebuildCommand + "'");
    // Resources that run out while the index is fine: the caller may retry
    // (readers come and go) or do less at once.
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_MAP_RESIZED:
      return Status::Rebuild(Status::Code::kBusy, EAGAIN, msg + " (too many readers at once; try again)");
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
      return Status::Rebuild(Status::Code::kIoError, ENOMEM, msg);
    case MDB_BAD_VALSIZE: return Status::InvalidArgument(msg);
    // A commit failed half-way (MDB_PANIC) or a handle was misused: the
    // index on disk is intact, this process cannot go on with it.
    case MDB_PANIC:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_DBI:
      return Status::Rebuild(Status::Code::kIoError, EIO, msg);
    default: break;
  }
  if (rc > 0) return Status::FromErrno(rc, what);
  return Status::Rebuild(Status::Code::kIoError, EIO, msg);
}

LmdbTxn::LmdbTxn(LmdbTxn&& other) noexcept
    : txn_(other.txn_), map_full_(other.map_full_), hold_(std::move(other.hold_)) {
  other.txn_ = nullptr;
}

LmdbTxn::~LmdbTxn() {
  if (txn_) mdb_txn_abort(txn_);
  // hold_ is released after the transaction has ended.
}

Status LmdbTxn::Check(int rc, const std::string& what) {
  if (rc == MDB_MAP_FULL) map_full_ = true;
  return rc == 0 ? Status::Ok() : LmdbError(rc, what);
}

Result<std::string_view> LmdbTxn::Get(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound("key not found");
  TUSK_RETURN_IF_ERROR(Check(rc, "index get"));
  return View(v);
}

Status LmdbTxn::Put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = Val(key), v = Val(value);
  return Check(mdb_put(txn_, dbi, &k, &v, flags), "index put");
}

Status LmdbTxn::Delete(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  return Check(rc, "index delete");
}

Status LmdbTxn::ScanPrefix(MDB_dbi dbi, std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& fn) {
  MDB_cursor* cursor = nullptr;
  TUSK_RETURN_IF_ERROR(Check(mdb_cursor_open(txn_, dbi, &cursor), "index cursor"));
  std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> guard(cursor, mdb_cursor_close);
  MDB_val k = Val(prefix), v;
  int rc = prefix.empty() ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST) : mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key = View(k);
    if (key.substr(0, prefix.size()) != prefix) return Status::Ok();
    if (!fn(key, View(v))) return Status::Ok();
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  if (rc == MDB_NOTFOUND) return Status::Ok();
  return Check(rc, "index scan");
}

Status LmdbTxn::Commit() {
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // committed or, on failure, freed by LMDB
  Status st = Check(rc, "index commit");
  if (hold_.owns_lock()) hold_.unlock();
  return st;
}

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, const std::vector<std::string>& db_names,
                                               LmdbAccess access, bool verify) {
  std::unique_ptr<LmdbEnv> env(new LmdbEnv());
  env->dir_ = dir;
  env->read_only_ = access != LmdbAccess::kReadWrite;
  int rc = mdb_env_create(&env->env_);
  if (rc != 0) return LmdbError(rc, "lmdb env create");
  mdb_env_set_maxdbs(env->env_, static_cast<MDB_dbi>(db_names.size() + 2));
  mdb_env_set_maxreaders(env->env_, 1024);
  mdb_env_set_mapsize(env->env_, InitialMapSize());
  // Before LMDB maps the file: a truncated file would be SIGBUS.
  TUSK_RETURN_IF_ERROR(env->CheckMetaBeforeOpen());
  unsigned flags = MDB_NOTLS;
  if (access != LmdbAccess::kReadWrite) flags |= MDB_RDONLY;
  if (access == LmdbAccess::kReadOnlyNoLock) flags |= MDB_NOLOCK;
  rc = mdb_env_open(env->env_, dir.c_str(), flags, 0644);
  if (rc != 0) return LmdbError(rc, "open index " + dir);
  // A map smaller than the file (grown by another process) is adopted here.
  rc = mdb_env_set_mapsize(env->env_, 0);
  if (rc != 0) return LmdbError(rc, "map index " + dir);
  // Before the first table is opened, which reads the tree through the map.
  // The state is taken before the walk: a write during it leaves the stamp
  // behind the file, and the next open walks again.
  env->stamps_ = CtimeShowsEveryWrite(dir) && !std::getenv("TUSK_INDEX_ALWAYS_WALK");
  if (verify) {
    mode_t mode = 0600;
    FileState before;
    bool exists = StateOf(env->data_path(), &before, &mode);
    if (!env->stamps_ || !exists || !StampSays(env->stamp_path(), before)) {
      TUSK_RETURN_IF_ERROR(env->Verify().status());
      env->walked_at_open_ = true;
      if (env->stamps_ && exists && !env->read_only_) WriteStamp(env->stamp_path(), before, mode);
    }
  }
  if (env->read_only_) {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env->BeginRead());
    for (const auto& name : db_names) {
      MDB_dbi dbi;
      int r = mdb_dbi_open(txn.get(), name.c_str(), 0, &dbi);
      if (r != 0) return LmdbError(r, "open index table " + name);
      env->dbis_.push_back(dbi);
    }
    // Committing a read transaction keeps its database handles open.
    TUSK_RETURN_IF_ERROR(txn.Commit());
    return env;
  }
  TUSK_RETURN_IF_ERROR(env->Update([&](LmdbTxn& txn) {
    env->dbis_.clear();
    for (const auto& name : db_names) {
      MDB_dbi dbi;
      int r = mdb_dbi_open(txn.get(), name.c_str(), MDB_CREATE, &dbi);
      if (r != 0) return LmdbError(r, "open index table " + name);
      env->dbis_.push_back(dbi);
    }
    return Status::Ok();
  }));
  return env;
}

Status LmdbEnv::CheckMetaBeforeOpen() {
  auto fd = OpenFile(data_path(), O_RDONLY);
  if (!fd.ok()) return fd.status().code() == Status::Code::kNotFound ? Status::Ok() : fd.status();
  auto pages = ReadMetaAgreed(fd->get(), data_path());
  // An empty file is initialized by LMDB, like a missing one.
  if (!pages.ok() && pages.status().code() == Status::Code::kNotFound) return Status::Ok();
  return pages.status();
}

Result<lmdb_verify::VerifyStats> LmdbEnv::Verify() {
  TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(data_path(), O_RDONLY));
  for (int attempt = 0;; attempt++) {
    // The read transaction keeps writers from reusing the pages of its
    // snapshot, and of every later one, while they are walked. It reads the
    // meta page of its transaction id. Reading both meta pages twice and
    // finding them unchanged, with that id the newest, shows no commit came
    // in between: the next commit would have rewritten the other page, and
    // only the one after it could have been rewriting ours as we read it.
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, BeginRead());
    uint64_t txnid = mdb_txn_id(txn.get());
    TUSK_ASSIGN_OR_RETURN(lmdb_verify::MetaPages pages, ReadMetaAgreed(fd.get(), data_path()));
    auto again = lmdb_verify::ReadMetaPages(fd.get());
    bool unchanged = again.ok() && again->raw[0] == pages.raw[0] && again->raw[1] == pages.raw[1];
    const lmdb_verify::Meta& newest = pages.newest();
    if (!unchanged || newest.txnid != txnid) {
      if (attempt < 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (!unchanged) return Status::Busy("the index " + data_path() + " kept changing while it was checked; try again");
      return Damaged(data_path(), Status::Corruption("its newest meta page is transaction " + std::to_string(newest.txnid) +
                                                     ", LMDB reads transaction " + std::to_string(txnid)));
    }
    auto stats = lmdb_verify::VerifySnapshot(fd.get(), newest);
    if (!stats.ok() && stats.status().code() == Status::Code::kCorruption) return Damaged(data_path(), stats.status());
    return stats;
  }
}

LmdbEnv::~LmdbEnv() {
  if (env_) mdb_env_close(env_);
}

size_t LmdbEnv::map_size() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

Result<LmdbTxn> LmdbEnv::Begin(unsigned flags) {
  for (int attempt = 0;; attempt++) {
    std::shared_lock hold(resize_mu_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
    if (rc == MDB_MAP_RESIZED && attempt < 3) {
      // Another process grew the map: adopt its size, with no transaction
      // of ours active.
      hold.unlock();
      std::unique_lock exclusive(resize_mu_);
      mdb_env_set_mapsize(env_, 0);
      continue;
    }
    if (rc != 0) return LmdbError(rc, "index transaction");
    return LmdbTxn(txn, std::move(hold));
  }
}

Result<LmdbTxn> LmdbEnv::BeginRead() { return Begin(MDB_RDONLY); }

Status LmdbEnv::Grow() {
  std::unique_lock lock(resize_mu_);  // waits until no transaction is active
  size_t next = map_size() * 2;
  int rc = mdb_env_set_mapsize(env_, next);
  if (rc != 0) return LmdbError(rc, "grow index map to " + std::to_string(next));
  return Status::Ok();
}

Status LmdbEnv::ExplainCommitFailure(const Status& st) const {
  if (st.sys_errno() != EIO) return st;
  struct statvfs sv;
  if (::statvfs(dir_.c_str(), &sv) != 0) return st;
  uint64_t free_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  if (free_bytes >= (uint64_t{16} << 20)) return st;
  return Status::NoSpace("index commit: no space left on device (" + std::to_string(free_bytes) + " bytes free in " + dir_ + ")");
}

Status LmdbEnv::Update(const std::function<Status(LmdbTxn&)>& fn) {
  if (read_only_) return Status::ReadOnly("the index " + dir_ + " is open read-only");
  for (int attempt = 0; attempt < 40; attempt++) {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, Begin(0));
    // With the writer lock held: if the file is as the stamp says (walked,
    // or written only by LMDB since), this commit's pages are LMDB's too,
    // and the stamp moves on with it.
    mode_t mode = 0600;
    FileState before;
    bool stamped = stamps_ && StateOf(data_path(), &before, &mode) && StampSays(stamp_path(), before);
    Status st = fn(txn);
    if (st.ok()) {
      st = txn.Commit();
      if (!st.ok()) st = ExplainCommitFailure(st);
    }
    if (st.ok()) {
      if (stamped) {
        FileState after;
        if (StateOf(data_path(), &after) && !(after == before)) WriteStamp(stamp_path(), after, mode);
      }
      return st;
    }
    if (!txn.map_full()) return st;
    // Only now is no transaction of ours open, as mdb_env_set_mapsize requires.
    { LmdbTxn discard = std::move(txn); }
    TUSK_RETURN_IF_ERROR(Grow());
  }
  return Status::NoSpace("index map could not grow enough");
}

}  // namespace tusk
