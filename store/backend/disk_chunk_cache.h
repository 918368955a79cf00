// A bounded cache on local disk of chunks read from remotes (issue 12), so
// that a file read once from a bucket is read from the disk afterwards,
// across restarts.
//
// Layout: DIR/xx/<64 hex digits> (xx: the first two), each file the chunk's
// plaintext followed by its CRC-32C (4 bytes, little-endian); new files are
// written under DIR/tmp and renamed into place. Only chunks whose SHA-256
// matched their id are put (the caller checks: data from a bucket is not
// trusted); a file whose CRC does not hold (torn by a crash, damaged) is a
// miss, and is removed.
//
// Least recently used chunks go first when the cache outgrows its
// capacity. A file's mtime is its last use (set again on every hit), so
// the order survives restarts. The capacity belongs to the directory: the
// last one given explicitly is kept in DIR/capacity, and a process that
// gives none uses it (so a plain `tusk cat` does not shrink a cache that a
// prefetch sized). Files left in DIR/tmp by a crash are removed. Several processes may share one directory
// (a mount and CLI commands): each keeps its own account of it, from a scan
// when it first uses the cache and its own puts, so together they may hold
// a little more than the capacity for a while; a file one of them evicts
// is a miss for the others.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/ids.h"
#include "store/status.h"

namespace tusk {

class DiskChunkCache {
 public:
  // `capacity` 0: the one recorded in DIR/capacity, else `fallback`; any
  // other is recorded there. Nothing is read or made until first use.
  DiskChunkCache(std::string dir, uint64_t capacity, uint64_t fallback)
      : dir_(std::move(dir)), capacity_(capacity), fallback_(fallback) {}

  // The chunk, or nullopt on a miss (absent, damaged, or the cache cannot
  // be read).
  std::optional<std::string> Get(const ObjectId& id);
  // Adds a chunk whose id the caller checked. Errors (a full or read-only
  // disk) are returned for messages; the cache stays usable.
  Status Put(const ObjectId& id, std::string_view plaintext);
  bool Contains(const ObjectId& id);
  // Removes a chunk (one that turned out wrong).
  void Drop(const ObjectId& id);

  uint64_t capacity();
  uint64_t bytes();   // as this process accounts for it
  size_t count();

 private:
  struct Entry {
    uint64_t size = 0;
    std::list<ObjectId>::iterator use;  // in uses_, most recent last
    int64_t touched = 0;                // when this process last set its mtime (seconds)
  };
  // Scans the directory once (under mu_).
  void LoadLocked();
  std::string PathOf(const ObjectId& id) const;
  void ForgetLocked(const ObjectId& id);
  // Removes least recently used files until the cache fits (under mu_).
  void EvictLocked();

  const std::string dir_;
  uint64_t capacity_;  // guarded by mu_ once loaded
  const uint64_t fallback_;
  std::mutex mu_;
  bool loaded_ = false;
  uint64_t bytes_ = 0;
  std::list<ObjectId> uses_;  // least recent first
  std::unordered_map<ObjectId, Entry, ObjectIdHash> entries_;
};

}  // namespace tusk
