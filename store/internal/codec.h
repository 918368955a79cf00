// How a record's payload is stored in a pack: raw or zstd-compressed.
//
// Compress() decides cheaply whether compression is worth it: it first
// compresses a sample of the input at level 1 and stores the record raw when
// the sample does not shrink by at least 3%, so random or already-compressed
// data costs one small trial instead of a full compression pass.
//
// Thread-safety: free functions with thread-local zstd contexts; safe from any
// number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/status.h"

namespace tusk {

enum class Codec : uint8_t { kRaw = 0, kZstd = 1 };

// Fills `out` with the stored form of `data` and returns the codec used.
Codec Compress(std::string_view data, int level, std::string* out);

// Inverse of Compress. `raw_len` is the recorded plaintext length; a mismatch
// is Corruption.
Status Decompress(Codec codec, std::string_view stored, size_t raw_len, std::string* out);

}  // namespace tusk
