#include "fs/chunk_cache.h"

namespace tusk::fs {
namespace {
constexpr size_t kMaxQueuedPrefetches = 64;
}

ChunkCache::ChunkCache(ObjectSource* source, size_t capacity_bytes, unsigned prefetch_threads)
    : source_(source), capacity_(capacity_bytes) {
  for (unsigned i = 0; i < prefetch_threads; i++) threads_.emplace_back([this] { PrefetchLoop(); });
}

ChunkCache::~ChunkCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

size_t ChunkCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void ChunkCache::EvictLocked() {
  // Walk from the least recently used end; entries still loading have no
  // bytes yet and are skipped (their waiters hold the future anyway).
  auto it = lru_.end();
  while (bytes_ > capacity_ && it != lru_.begin()) {
    --it;
    auto slot = map_.find(*it);
    if (slot->second.bytes == 0) continue;
    bytes_ -= slot->second.bytes;
    map_.erase(slot);
    it = lru_.erase(it);
  }
}

Result<ChunkCache::Data> ChunkCache::Get(const ObjectId& id) {
  std::promise<Result<Data>> promise;
  {
    std::unique_lock lock(mu_);
    auto it = map_.find(id);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      auto future = it->second.future;
      lock.unlock();
      return future.get();
    }
    lru_.push_front(id);
    map_[id] = Slot{promise.get_future().share(), lru_.begin(), 0};
  }
  Result<Data> result = Status::Ok();
  auto loaded = source_->ReadObject(id, ObjectType::kChunk);
  if (loaded.ok()) result = Data(std::make_shared<const std::string>(std::move(loaded).value()));
  else result = loaded.status();
  // Fulfil the future before the slot shows bytes: Peek treats a slot with
  // bytes as ready and must never wait under the lock.
  promise.set_value(result);
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(id);
    if (it != map_.end()) {
      if (result.ok()) {
        it->second.bytes = std::max<size_t>(1, (*result)->size());
        bytes_ += it->second.bytes;
        EvictLocked();
      } else {
        lru_.erase(it->second.lru);
        map_.erase(it);
      }
    }
  }
  return result;
}

ChunkCache::Data ChunkCache::Peek(const ObjectId& id) {
  std::lock_guard lock(mu_);
  auto it = map_.find(id);
  if (it == map_.end() || it->second.bytes == 0) return nullptr;  // absent or still loading
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  auto result = it->second.future.get();  // ready: bytes are set only after it is
  return result.ok() ? *result : nullptr;
}

void ChunkCache::Prefetch(const ObjectId& id) {
  if (threads_.empty()) return;
  {
    std::lock_guard lock(mu_);
    if (map_.count(id) || queue_.size() >= kMaxQueuedPrefetches) return;
    for (const auto& q : queue_)
      if (q == id) return;
    queue_.push_back(id);
  }
  queue_cv_.notify_one();
}

void ChunkCache::PrefetchLoop() {
  for (;;) {
    ObjectId id;
    {
      std::unique_lock lock(mu_);
      queue_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      id = queue_.front();
      queue_.pop_front();
      if (map_.count(id)) continue;
    }
    (void)Get(id);  // errors surface to the reader that needs the chunk
  }
}

}  // namespace tusk::fs
