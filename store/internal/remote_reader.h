// RemoteReader: fetching chunks from remote packs ahead of the readers that
// need them (issue 12, lazy reads).
//
// A chunk read alone from a bucket costs one request, and a request's
// latency, not its bytes, bounds small reads. So chunks are fetched in
// spans: the wanted chunks of one pack, sorted by offset, neighbours (gaps
// under kMaxGap) joined into one ranged read of up to kMaxSpan bytes; a
// pool of threads keeps several spans in flight. Packs hold a dataset's
// files in import order, so a span is the next chunks of a file, or the
// next files of a directory.
//
// The reader knows which chunks are being fetched: a chunk asked for twice
// is fetched once, and a reader that needs a chunk in flight waits for that
// fetch (WaitFor) instead of asking the bucket again.
//
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/ids.h"
#include "store/internal/pack.h"
#include "store/status.h"

namespace tusk {

class RemoteReader {
 public:
  // A span: records of one pack, sorted by offset.
  using Span = std::vector<std::pair<ObjectId, ObjectLocation>>;
  // Reads one span and keeps its chunks (in the cache); called on the pool.
  // `read_ahead`: nobody waits for the span; its chunks may be handed over
  // through Land.
  using FetchSpan = std::function<Status(PackId pack, const Span& span, bool read_ahead)>;

  static constexpr uint64_t kMaxSpan = uint64_t{4} << 20;
  static constexpr uint64_t kMaxGap = uint64_t{256} << 10;
  // Chunks fetched ahead and not yet taken are held up to this many bytes
  // (the oldest go first: they are in the disk cache too).
  static constexpr uint64_t kMaxLanded = uint64_t{32} << 20;
  // Spans queued beyond this are dropped when nobody waits for them (they
  // are read-ahead; the reader fetches what it needs itself).
  static constexpr size_t kMaxQueued = 64;

  RemoteReader(FetchSpan fetch, unsigned threads);
  // Waits for running fetches; queued ones are dropped (waiters get an
  // error).
  ~RemoteReader();
  RemoteReader(const RemoteReader&) = delete;
  RemoteReader& operator=(const RemoteReader&) = delete;

  // Fetches `wanted` (chunks on remote packs, with their locations), leaving
  // out those already in flight. With `wait`, returns when every wanted
  // chunk's fetch (this call's and earlier ones') is done, with the first
  // error; without, returns at once (and spans beyond kMaxQueued are
  // dropped).
  Status Fetch(std::vector<std::pair<ObjectId, ObjectLocation>> wanted, bool wait);
  // Blocks while `id` is being fetched; true when it was (its fetch is over,
  // whether or not it succeeded).
  bool WaitFor(const ObjectId& id);
  // Hands a chunk fetched ahead to the reader that will Take it, saving it a
  // read of the disk cache.
  void Land(const ObjectId& id, std::string plaintext);
  std::optional<std::string> Take(const ObjectId& id);

  // Joins sorted records of one pack into spans (exposed for tests).
  static std::vector<Span> MakeSpans(std::vector<std::pair<ObjectId, ObjectLocation>> records);

 private:
  struct Flight {
    bool done = false;
    Status status;
  };
  struct Job {
    bool read_ahead = false;
    Span span;
    std::vector<std::shared_ptr<Flight>> flights;  // one per record
  };
  void Loop();

  const FetchSpan fetch_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // a job was queued, or stop_
  std::condition_variable done_cv_;  // a flight landed
  bool stop_ = false;
  std::deque<Job> queue_;                                                     // guarded by mu_
  std::unordered_map<ObjectId, std::shared_ptr<Flight>, ObjectIdHash> in_flight_;  // guarded by mu_
  std::vector<std::thread> threads_;
  std::mutex landed_mu_;  // guards the three below
  std::unordered_map<ObjectId, std::string, ObjectIdHash> landed_;
  std::deque<ObjectId> landed_order_;  // oldest first; may name chunks taken since
  uint64_t landed_bytes_ = 0;
};

}  // namespace tusk
