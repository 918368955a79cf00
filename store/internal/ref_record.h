// Ref records: the durable history of datasets, branches and tags.
//
// Every change to a dataset or a ref (create, move, delete) is written as a
// record of type 4 into a pack, and that pack is sealed (fsynced) before the
// index transaction that applies the change commits. The index's `refs` and
// `datasets` tables are then a cache of these records, and `tusk fsck
// --rebuild-index` recovers them from the packs alone. See store/FORMAT.md,
// "Ref records", for the encoding and for how a rebuild orders them.
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "store/ids.h"
#include "store/status.h"

namespace tusk {

struct RefRecord {
  enum class Op : uint8_t { kDatasetCreated = 1, kDatasetDeleted = 2, kRefSet = 3, kRefDeleted = 4 };
  static constexpr char kDatasetKind = 'd';

  Op op = Op::kRefSet;
  uint64_t seq = 0;     // store-wide, assigned under the index's write lock
  int64_t time_ns = 0;  // wall clock when written; breaks ties of seq (see FORMAT.md)
  ObjectId prev;        // the record this one supersedes for the same key; zero: none
  std::string dataset;
  char kind = kDatasetKind;  // 'b' branch, 't' tag, 'd' the dataset itself
  std::string name;          // empty for dataset records
  std::optional<ObjectId> commit;  // kRefSet: the new value; empty: a branch with no commits

  // A change to the dataset itself (kDatasetCreated or kDatasetDeleted).
  static RefRecord ForDataset(Op op, std::string dataset, int64_t time_ns);
  // A change to branch ('b') or tag ('t') `name`: kRefSet to `commit`, or
  // kRefDeleted. seq and prev are assigned when the record is staged.
  static RefRecord ForRef(Op op, std::string dataset, char kind, std::string name, std::optional<ObjectId> commit,
                          int64_t time_ns);

  bool is_dataset() const { return op == Op::kDatasetCreated || op == Op::kDatasetDeleted; }
  // The key of this record's subject: `dataset \0 kind name` (kind 'd' and no
  // name for the dataset itself), as in the index's `refrecords` table.
  std::string Key() const;
  std::string Encode() const;
  static Result<RefRecord> Decode(std::string_view bytes);
  // Whether this record was written after `other` (seq, then time, then id).
  bool After(const RefRecord& other, const ObjectId& my_id, const ObjectId& other_id) const;
};

// Value of a `refrecords` entry: the current record of a key.
struct RefRecordPointer {
  ObjectId id;
  uint64_t seq = 0;
  int64_t time_ns = 0;
  static constexpr size_t kEncodedSize = 48;
  std::string Encode() const;
  static Result<RefRecordPointer> Decode(std::string_view bytes);
};

// A record and its id (the hash of its encoding), as read from a pack.
struct StoredRefRecord {
  RefRecord record;
  ObjectId id;
};

// What the index's `datasets`, `refs` and `refrecords` tables hold, given
// the current (latest) record of every key (FORMAT.md, "Rebuilding the
// index"): a dataset exists when its record creates it; a ref counts only
// when its record orders after that creation (older ones belong to a
// deleted namesake), and exists when it sets the ref; a new dataset's empty
// branch 'main' is implied by its creation. The rebuild writes this; fsck
// compares the index with it.
struct RefState {
  std::map<std::string, const StoredRefRecord*> datasets;  // name -> its creation record
  std::map<std::string, std::string> refs;                 // refs key -> 32-byte commit id, or empty
  std::map<std::string, const StoredRefRecord*> current;   // refrecords key -> the record it points at
};
RefState DeriveRefState(const std::map<std::string, StoredRefRecord>& latest);

}  // namespace tusk
