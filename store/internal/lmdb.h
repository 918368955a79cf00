// RAII wrappers over LMDB: one environment per process, short transactions.
//
// The environment is opened with MDB_NOTLS so that a read transaction is not
// tied to the thread that began it (import workers and, later, FUSE worker
// threads each begin their own short read transactions).
//
// The map size starts small and grows on demand: Update() runs its function in
// a write transaction and, if LMDB reports MDB_MAP_FULL at any point, aborts,
// doubles the map and runs the function again. A map grown by another process
// (MDB_MAP_RESIZED) is adopted on the next transaction.
//
// Thread-safety: LmdbEnv is thread-safe. A transaction belongs to one thread
// at a time. Only one write transaction exists at a time per store (LMDB
// serializes writers across processes with its own lock).
//
// A damaged index must be an error, never a signal: LMDB trusts every byte
// it maps (no checksums), so Open checks the meta pages and the file's length
// with pread before anything touches the map, and then walks every page of
// the newest snapshot (lmdb_verify.h) before the first table is opened.
// Damage is Corruption with a message naming the rebuild command.
//
// The walk reads the whole file (209 MB at a million files: 0.5 s from a
// cold disk, paid by every command). So a walk that passes leaves a stamp
// of the file's identity, size, mtime and ctime in index/verified, every
// commit through Update that finds the stamp true moves it on (its pages
// are LMDB's own), and Open skips the walk while the stamp is true. Any
// other write to the file changes its ctime, which no program can set
// back, and brings the walk back. That holds only where the kernel gives
// a write after a stat a new ctime (multigrain timestamps: Linux 6.13 and
// later, on ext4, xfs, btrfs and tmpfs); elsewhere every open walks. A
// read-only open trusts a stamp but writes none. What the stamp cannot see is damage below the file system
// (a disk returning other bytes): `tusk fsck` and `tusk gc` walk every
// page whatever the stamp says. TUSK_INDEX_ALWAYS_WALK=1 turns stamps off.
//
// Resizing the map (mdb_env_set_mapsize) remaps the file and is only allowed
// while no transaction of this process is active. Every transaction
// therefore holds `resize_mu_` shared for its whole life, and resizing takes
// it exclusively. Lock order: resize_mu_ before LMDB's own locks; a thread
// must not begin a transaction while it holds another one open.
#pragma once

#include <lmdb.h>

#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/internal/lmdb_verify.h"
#include "store/status.h"

namespace tusk {

// What a damaged index tells the user to run.
inline constexpr char kIndexRebuildCommand[] = "tusk fsck --rebuild-index";

// Maps an LMDB or system return code to a Status: damage (MDB_CORRUPTED,
// MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_VERSION_MISMATCH and the like) is
// Corruption naming the rebuild command; exhausted resources keep an errno a
// FUSE reply can carry (MDB_READERS_FULL: Busy/EAGAIN, MDB_TXN_FULL:
// ENOMEM, MDB_MAP_FULL: NoSpace).
Status LmdbError(int rc, const std::string& what);

class LmdbTxn {
 public:
  LmdbTxn(LmdbTxn&& other) noexcept;
  LmdbTxn& operator=(LmdbTxn&&) = delete;
  ~LmdbTxn();

  // Returns NotFound when the key is absent. The view is valid until the
  // transaction ends.
  Result<std::string_view> Get(MDB_dbi dbi, std::string_view key);
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  // Deleting an absent key is not an error.
  Status Delete(MDB_dbi dbi, std::string_view key);
  // Calls fn(key, value) for keys starting with `prefix`, in key order, until
  // fn returns false.
  Status ScanPrefix(MDB_dbi dbi, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn);
  Status Commit();
  MDB_txn* get() { return txn_; }
  bool map_full() const { return map_full_; }

 private:
  friend class LmdbEnv;
  LmdbTxn(MDB_txn* txn, std::shared_lock<std::shared_mutex> hold) : txn_(txn), hold_(std::move(hold)) {}
  Status Check(int rc, const std::string& what);
  MDB_txn* txn_ = nullptr;
  bool map_full_ = false;
  std::shared_lock<std::shared_mutex> hold_;  // keeps the map from being resized
};

// How an environment is opened. kReadOnly (MDB_RDONLY) still registers its
// readers in lock.mdb, so it needs that file writable; kReadOnlyNoLock
// (MDB_RDONLY | MDB_NOLOCK) is for a store this process cannot write at all
// (chmod -R a-w, a read-only mount): with no reader slot, a concurrent writer
// could reuse pages it is reading, so it is only used when lock.mdb is not
// writable by us, which in a store made by tusk means nobody but its owner
// (or root) can write; see Repository::Open.
enum class LmdbAccess { kReadWrite, kReadOnly, kReadOnlyNoLock };

class LmdbEnv {
 public:
  // Names of the databases opened (and, read-write, created when absent) in
  // the env. Read-only, a missing database is NotFound, and Update answers
  // ReadOnly.
  // `verify` false skips the walk of every page (not the meta checks):
  // only for a process whose parent opened the same index, verified, a
  // moment ago (Repository::Open's `index_verified`).
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const std::vector<std::string>& db_names,
                                               LmdbAccess access = LmdbAccess::kReadWrite, bool verify = true);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_dbi db(size_t index) const { return dbis_[index]; }
  // Whether Open walked every page (false: asked not to, or the verified
  // stamp was true).
  bool walked_at_open() const { return walked_at_open_; }
  // Walks the current snapshot of the data file again, as Open does
  // (fsck and gc call it before they trust the whole index).
  Result<lmdb_verify::VerifyStats> Verify();
  Result<LmdbTxn> BeginRead();
  // Runs fn in a write transaction and commits it, growing the map and
  // retrying when it is full. fn must be safe to run more than once.
  Status Update(const std::function<Status(LmdbTxn&)>& fn);
  size_t map_size() const;

 private:
  LmdbEnv() = default;
  Result<LmdbTxn> Begin(unsigned flags);
  Status Grow();
  // The checks Open runs; see the header comment.
  Status CheckMetaBeforeOpen();
  std::string data_path() const { return dir_ + "/data.mdb"; }
  // The verified stamp: data.mdb's identity, size and times when it was
  // last walked, or last written by a commit of this class that found the
  // stamp true before it. Open skips the walk while the stamp is true.
  std::string stamp_path() const { return dir_ + "/verified"; }
  // LMDB reports a write cut short by a full disk as EIO; when the disk is in
  // fact (nearly) full, say so.
  Status ExplainCommitFailure(const Status& st) const;
  MDB_env* env_ = nullptr;
  std::string dir_;
  bool read_only_ = false;
  bool stamps_ = false;
  bool walked_at_open_ = false;  // the verified stamp is read and written (lmdb.cc, CtimeShowsEveryWrite)
  std::vector<MDB_dbi> dbis_;
  std::shared_mutex resize_mu_;
};

}  // namespace tusk
