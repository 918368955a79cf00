// Content-defined chunking (FastCDC with normalized chunking).
//
// A chunk boundary is placed where a rolling "gear" hash of the last 64 bytes
// matches a mask, so boundaries depend on local content only: inserting or
// deleting bytes near the start of a file moves the boundaries around the
// edit and leaves all later chunks (and their ids) unchanged.
//
// Normalized chunking (FastCDC, Xia et al. 2016, "NC level 2"): before the
// average size the mask has 2 more bits than log2(avg) (a cut is unlikely),
// after it 2 fewer (a cut is likely), which narrows the size distribution
// around the average. No chunk is shorter than min_size (except the last chunk
// of a stream) nor longer than max_size.
//
// Thread-safety: a Chunker is immutable after construction and may be shared.
#pragma once

#include <cstddef>
#include <cstdint>

#include "store/status.h"

namespace tusk {

struct ChunkerParams {
  uint32_t min_size = 64 * 1024;
  uint32_t avg_size = 256 * 1024;
  uint32_t max_size = 1024 * 1024;

  // min <= avg <= max, avg a power of two in [256 B, 64 MiB], max <= 64 MiB,
  // min >= 64 B (the width of the rolling window).
  Status Validate() const;
};

class Chunker {
 public:
  explicit Chunker(const ChunkerParams& params);

  // Returns the length of the next chunk at the start of `data`.
  // `len` must be >= max_size unless `at_eof` (the rest of the stream is all
  // of `data`); the result is in [1, len] (for len > 0).
  size_t NextCut(const uint8_t* data, size_t len, bool at_eof) const;

  const ChunkerParams& params() const { return params_; }

 private:
  ChunkerParams params_;
  uint64_t mask_small_;  // used before avg_size: harder to match
  uint64_t mask_large_;  // used after avg_size: easier to match
};

}  // namespace tusk
