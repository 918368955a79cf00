// Writing ref records and the pack bookkeeping around them.
//
// The ordering that makes a rebuilt index agree with the last completed
// command (store/FORMAT.md, "Ref records"):
//   1. a writer creates its pack and registers it as *pending* in an index
//      transaction of its own, so that a writer killed later leaves a pack
//      the index accounts for as garbage;
//   2. inside the index write transaction that applies a change (LMDB's
//      writer lock is held, so writers are serialized across processes) it
//      checks the change (compare-and-set), takes the next store-wide
//      sequence number, appends the ref records to its pack and seals the
//      pack (fsync);
//   3. only then does the transaction register the pack and apply the
//      change, and commit.
// A writer that loses a compare-and-set therefore never writes a record,
// and committed records have distinct, increasing sequence numbers.
//
// Thread-safety: the functions are thread-safe as LmdbEnv is; a PackWriter
// passed in belongs to the caller.
#pragma once

#include <memory>
#include <vector>

#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/ref_record.h"

namespace tusk {

struct RefBatch {
  // op, dataset, kind, name, commit and time_ns are the caller's; seq and
  // prev are assigned when staged.
  std::vector<RefRecord> records;
  std::vector<ObjectId> ids;
  bool staged = false;
};

// In `txn` (a write transaction): assigns each record its sequence number
// and predecessor, appends the records to `pack` and points `refrecords` and
// the sequence counter at them. When the transaction is retried (LMDB grew
// its map) the records are already in the pack: if the index moved
// meanwhile, Conflict, else the index entries are written again.
Status StageRefBatch(LmdbEnv& env, LmdbTxn& txn, RefBatch* batch, PackWriter* pack);

// Registers a sealed pack (its records in `objects`, its size in `packs`).
Status RegisterPack(LmdbEnv& env, LmdbTxn& txn, const PackWriter& pack);

// Creates a pack file and registers it as pending, in a transaction of its
// own (so it must not be called inside one).
Result<std::unique_ptr<PackWriter>> CreatePendingPack(LmdbEnv& env, PackDirectory* packs);

// Removes a pack no committed transaction refers to: the file, then its
// pending entry.
Status DropPendingPack(LmdbEnv& env, PackDirectory* packs, PackId id);

// Nanoseconds since the epoch (CLOCK_REALTIME).
int64_t NowNs();

// Test seam for the kill tests: when $TUSK_TEST_KILL_AT names `point`, the
// process kills itself with SIGKILL there. Points: "ref-record-durable"
// (records sealed in their pack, index transaction not yet committed), and
// gc's steps in order (store/maintenance.cc): "gc-pending-packs-removed",
// "gc-garbage-packs-pending", "gc-garbage-packs-removed",
// "gc-copies-sealed", "gc-index-switched", "gc-old-packs-removed".
void KillPointForTests(const char* point);

}  // namespace tusk
