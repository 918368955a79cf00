// How a record's payload is stored in a pack: raw, one zstd frame, or a
// sequence of independent zstd frames of kFrameSize plaintext bytes each (so
// a small read of a large compressed chunk decompresses one frame, not the
// whole chunk).
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
#include <vector>

#include "store/status.h"

namespace tusk {

enum class Codec : uint8_t { kRaw = 0, kZstd = 1, kZstdFrames = 2 };
inline bool ValidCodec(uint8_t c) { return c <= 2; }

// Plaintext bytes per frame of a kZstdFrames payload (the last may be
// shorter). 32 KiB frames compress CSV-like data as well as 256 KiB ones
// (zstd -b1 -B32768: 2.200x vs 2.196x) and decompress in ~12 us.
inline constexpr size_t kFrameSize = 32 * 1024;
inline size_t FrameCount(size_t raw_len) { return (raw_len + kFrameSize - 1) / kFrameSize; }

// Fills `out` with the stored form of `data` and returns the codec used.
// With `framed` (chunks, which the mount reads in pieces) data longer than one
// frame is compressed as independent frames.
Codec Compress(std::string_view data, int level, bool framed, std::string* out);

// Inverse of Compress. `raw_len` is the recorded plaintext length; a mismatch
// is Corruption.
Status Decompress(Codec codec, std::string_view stored, size_t raw_len, std::string* out);

// The end offset, within `stored`, of every frame of a kZstdFrames payload.
// Corruption unless `stored` is exactly FrameCount(raw_len) whole frames.
Status FrameEnds(std::string_view stored, size_t raw_len, std::vector<uint32_t>* ends);

// Decompresses one frame that must hold exactly `raw_len` bytes into `out`.
Status DecompressFrame(std::string_view frame, size_t raw_len, char* out);

}  // namespace tusk
