// ChunkCache: decompressed, verified chunks kept in memory for the mount.
//
// Bounded by bytes (least recently used first out). Concurrent requests for
// the same chunk share one load ("single flight"), so eight data-loader
// workers reading one file decompress each chunk once. Prefetch() loads
// chunks in background threads ahead of a sequential reader, so reading and
// decompressing overlap with the kernel consuming earlier data.
//
// Errors are never cached: a chunk that failed to read is retried on the
// next request.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/objects.h"

namespace tusk::fs {

class ChunkCache {
 public:
  using Data = std::shared_ptr<const std::string>;

  ChunkCache(ObjectSource* source, size_t capacity_bytes, unsigned prefetch_threads);
  ~ChunkCache();
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  Result<Data> Get(const ObjectId& id);
  // The chunk if it is cached and loaded; null otherwise (never loads).
  Data Peek(const ObjectId& id);
  // Starts loading `id` in the background unless it is cached or loading.
  void Prefetch(const ObjectId& id);

  size_t bytes() const;
  size_t capacity() const { return capacity_; }

 private:
  struct Slot {
    std::shared_future<Result<Data>> future;
    std::list<ObjectId>::iterator lru;
    size_t bytes = 0;  // 0 while loading
  };
  void PrefetchLoop();
  void EvictLocked();

  ObjectSource* source_;
  const size_t capacity_;
  mutable std::mutex mu_;  // guards map_, lru_, bytes_, queue_, stop_
  std::unordered_map<ObjectId, Slot, ObjectIdHash> map_;
  std::list<ObjectId> lru_;  // front: most recent
  size_t bytes_ = 0;
  std::deque<ObjectId> queue_;
  std::condition_variable queue_cv_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tusk::fs
