// Turning file content into stored chunks; shared by the importer and the
// workspace commit.
//
// ChunkPipeline hashes (SHA-256) and stores chunks on worker threads, with a
// bound on the bytes queued so memory does not grow with file sizes.
// ChunkFileRange reads a byte range of a file, cuts it with the store's
// chunker and submits every chunk to a pipeline; the holes of a sparse file
// become hole refs without being read.
//
// Thread-safety: one producer thread calls Submit (or ChunkFileRange) and
// Finish; the workers are internal.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/chunker.h"
#include "store/objects.h"
#include "store/repository.h"

namespace tusk {

struct ChunkJob {
  std::string data;
  ChunkRef* target;  // gets the chunk's id; must stay valid until Finish
};

class ChunkPipeline {
 public:
  // Bytes of chunk data queued for the workers at most.
  static constexpr size_t kMaxBytesInFlight = 64 << 20;

  // `session` may be null: chunks are then hashed but not stored (a dry run).
  ChunkPipeline(WriteSession* session, unsigned threads) : session_(session) {
    for (unsigned i = 0; i < threads; i++) workers_.emplace_back([this] { Work(); });
  }
  ~ChunkPipeline() { (void)Finish(); }
  ChunkPipeline(const ChunkPipeline&) = delete;
  ChunkPipeline& operator=(const ChunkPipeline&) = delete;

  // Blocks while too many bytes are queued. Returns the first worker error.
  Status Submit(ChunkJob job) {
    std::unique_lock lock(mu_);
    space_.wait(lock, [&] { return in_flight_ < kMaxBytesInFlight || !error_.ok(); });
    if (!error_.ok()) return error_;
    in_flight_ += job.data.size();
    jobs_.push_back(std::move(job));
    ready_.notify_one();
    return Status::Ok();
  }

  // Waits for every job to finish and stops the workers.
  Status Finish() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      ready_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void Work() {
    for (;;) {
      ChunkJob job;
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [&] { return !jobs_.empty() || closing_; });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      Status st;
      {
        std::lock_guard lock(mu_);
        st = error_;
      }
      if (st.ok()) {
        ObjectId id = Sha256::Of(job.data.data(), job.data.size());
        job.target->id = id;
        if (session_) {
          auto stored = session_->PutChunk(id, job.data);
          if (!stored.ok()) st = stored.status();
        }
      }
      std::lock_guard lock(mu_);
      if (!st.ok() && error_.ok()) error_ = st;
      in_flight_ -= job.data.size();
      space_.notify_all();
    }
  }

  WriteSession* session_;
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<ChunkJob> jobs_;
  size_t in_flight_ = 0;
  bool closing_ = false;
  Status error_;
  std::vector<std::thread> workers_;
};

// The file ChunkFileRange reads, and how it reports.
struct ChunkSourceFile {
  int fd = -1;
  std::string path;                        // for messages
  std::function<void(uint64_t)> on_bytes;  // optional: bytes read or skipped as holes
  std::function<Status()> on_short;        // the error for a file that ends before `end`
};

namespace chunk_pipeline_internal {

// Chunks [begin, end), all of it data, cutting at `end`.
inline Status ChunkDataRange(const Chunker& chunker, const ChunkSourceFile& file, uint64_t begin, uint64_t end,
                             ChunkPipeline* pipeline, std::deque<ChunkRef>* chunks, std::vector<char>* buf) {
  const size_t max_size = chunker.params().max_size;
  size_t filled = 0;  // bytes at the front of buf not yet chunked
  uint64_t pos = begin;
  for (;;) {
    // Top up the buffer so that a full max-size chunk is available.
    while (filled < buf->size() && pos < end) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf->size() - filled, end - pos));
      ssize_t n = ::pread(file.fd, buf->data() + filled, want, static_cast<off_t>(pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "cannot read " + file.path);
      }
      if (n == 0) return file.on_short();
      filled += static_cast<size_t>(n);
      pos += static_cast<uint64_t>(n);
      if (file.on_bytes) file.on_bytes(static_cast<uint64_t>(n));
    }
    bool at_end = pos >= end;
    size_t offset = 0;
    while (filled - offset > 0 && (at_end || filled - offset >= max_size)) {
      const auto* data = reinterpret_cast<const uint8_t*>(buf->data() + offset);
      size_t cut = chunker.NextCut(data, filled - offset, at_end);
      chunks->push_back(ChunkRef{ObjectId(), cut});
      TUSK_RETURN_IF_ERROR(pipeline->Submit(ChunkJob{std::string(buf->data() + offset, cut), &chunks->back()}));
      offset += cut;
    }
    std::memmove(buf->data(), buf->data() + offset, filled - offset);
    filled -= offset;
    if (at_end && filled == 0) return Status::Ok();
  }
}

}  // namespace chunk_pipeline_internal

// Chunks [begin, end) of `file`: appends one ChunkRef per chunk to `chunks`
// (their ids are filled in by the pipeline's workers, so they are valid once
// Finish returns) and cuts at `end`. With `sparse`, the holes SEEK_DATA and
// SEEK_HOLE find become hole refs of at most 1 GiB each instead of being
// read, and chunking restarts after each hole. `buf` is scratch space of at
// least twice the maximum chunk size.
inline Status ChunkFileRange(const Chunker& chunker, const ChunkSourceFile& file, uint64_t begin, uint64_t end,
                             bool sparse, ChunkPipeline* pipeline, std::deque<ChunkRef>* chunks,
                             std::vector<char>* buf) {
  uint64_t pos = begin;
  while (pos < end) {
    uint64_t data_start = pos, data_end = end;
    if (sparse) {
      off_t d = ::lseek(file.fd, static_cast<off_t>(pos), SEEK_DATA);
      if (d < 0 && errno != ENXIO) return Status::FromErrno(errno, "seek " + file.path);
      data_start = d < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(d), end);
      if (data_start > pos) {
        for (uint64_t h = pos; h < data_start;) {
          uint64_t len = std::min<uint64_t>(data_start - h, uint64_t{1} << 30);
          chunks->push_back(ChunkRef{ObjectId(), len});
          h += len;
        }
        if (file.on_bytes) file.on_bytes(data_start - pos);
      }
      if (data_start >= end) break;
      off_t e = ::lseek(file.fd, static_cast<off_t>(data_start), SEEK_HOLE);
      if (e < 0) return Status::FromErrno(errno, "seek " + file.path);
      data_end = std::min<uint64_t>(static_cast<uint64_t>(e), end);
    }
    TUSK_RETURN_IF_ERROR(
        chunk_pipeline_internal::ChunkDataRange(chunker, file, data_start, data_end, pipeline, chunks, buf));
    pos = data_end;
  }
  return Status::Ok();
}

}  // namespace tusk
