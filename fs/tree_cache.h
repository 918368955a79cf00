// TreeCache: decoded directory listings of committed trees, shared by all
// requests of a mount. Bounded by an estimate of their memory; a listing
// larger than the whole budget is not cached, and lookups in it then read
// only the pages on the path to the name.
//
// Thread-safety: thread-safe.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "store/objects.h"

namespace tusk::fs {

class TreeCache {
 public:
  using Listing = std::shared_ptr<const std::vector<TreeEntry>>;

  TreeCache(ObjectSource* source, size_t capacity_bytes) : source_(source), capacity_(capacity_bytes) {}

  // All entries of the directory whose root page is `dir`, in name order.
  Result<Listing> List(const ObjectId& dir);
  // `entry_count` is the directory's size from its parent entry: a directory
  // small enough is loaded and cached whole, a huge one is searched page by
  // page.
  Result<std::optional<TreeEntry>> Lookup(const ObjectId& dir, uint64_t entry_count, std::string_view name);
  // Number of subdirectories (for nlink).
  Result<uint32_t> SubdirCount(const ObjectId& dir);

 private:
  struct Slot {
    Listing listing;
    size_t bytes;
    uint32_t subdirs;
    std::list<ObjectId>::iterator lru;
  };
  std::optional<Slot> Find(const ObjectId& dir);
  Result<Slot> Load(const ObjectId& dir);

  ObjectSource* source_;
  const size_t capacity_;
  std::mutex mu_;  // guards map_, lru_, bytes_
  std::unordered_map<ObjectId, Slot, ObjectIdHash> map_;
  std::list<ObjectId> lru_;
  size_t bytes_ = 0;
};

}  // namespace tusk::fs
