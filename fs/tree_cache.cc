#include "fs/tree_cache.h"

#include <algorithm>

namespace tusk::fs {
namespace {
size_t EstimateBytes(const TreeEntry& e) {
  size_t xattr_bytes = 0;
  for (const auto& [name, value] : e.xattrs) xattr_bytes += sizeof(name) * 2 + name.size() + value.size();
  return sizeof(TreeEntry) + e.name.size() + e.target.size() + e.extensions.size() + xattr_bytes +
         e.chunks.size() * sizeof(ChunkRef);
}
}  // namespace

std::optional<TreeCache::Slot> TreeCache::Find(const ObjectId& dir) {
  std::lock_guard lock(mu_);
  auto it = map_.find(dir);
  if (it == map_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second;
}

Result<TreeCache::Slot> TreeCache::Load(const ObjectId& dir) {
  if (auto hit = Find(dir)) return *hit;
  TUSK_ASSIGN_OR_RETURN(std::vector<TreeEntry> entries, ReadDirectory(*source_, dir));
  Slot slot{nullptr, sizeof(Slot), 0, {}};
  for (const auto& e : entries) {
    slot.bytes += EstimateBytes(e);
    if (e.kind == EntryKind::kDirectory) slot.subdirs++;
  }
  slot.listing = std::make_shared<const std::vector<TreeEntry>>(std::move(entries));
  if (slot.bytes > capacity_) return slot;  // too big to keep
  std::lock_guard lock(mu_);
  auto it = map_.find(dir);
  if (it != map_.end()) return it->second;  // another thread won the race
  lru_.push_front(dir);
  slot.lru = lru_.begin();
  map_[dir] = slot;
  bytes_ += slot.bytes;
  while (bytes_ > capacity_ && !lru_.empty()) {
    auto victim = map_.find(lru_.back());
    bytes_ -= victim->second.bytes;
    map_.erase(victim);
    lru_.pop_back();
  }
  return slot;
}

Result<TreeCache::Listing> TreeCache::List(const ObjectId& dir) {
  TUSK_ASSIGN_OR_RETURN(Slot slot, Load(dir));
  return slot.listing;
}

Result<uint32_t> TreeCache::SubdirCount(const ObjectId& dir) {
  TUSK_ASSIGN_OR_RETURN(Slot slot, Load(dir));
  return slot.subdirs;
}

Result<std::optional<TreeEntry>> TreeCache::Lookup(const ObjectId& dir, uint64_t entry_count, std::string_view name) {
  constexpr uint64_t kLoadWholeBelow = 65536;
  auto slot = Find(dir);
  if (!slot && entry_count >= kLoadWholeBelow) {
    // Large directories: read only the pages on the path to `name`.
    return LookupEntry(*source_, dir, name);
  }
  if (!slot) {
    auto loaded = Load(dir);
    if (!loaded.ok()) return loaded.status();
    slot = std::move(loaded).value();
  }
  const auto& entries = *slot->listing;
  auto it = std::lower_bound(entries.begin(), entries.end(), name,
                             [](const TreeEntry& e, std::string_view n) { return e.name < n; });
  if (it != entries.end() && it->name == name) return std::optional<TreeEntry>(*it);
  return std::optional<TreeEntry>();
}

}  // namespace tusk::fs
