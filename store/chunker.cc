#include "store/chunker.h"

#include <array>
#include <bit>
#include <string>

namespace tusk {
namespace {

// 256 pseudo-random 64-bit values from splitmix64 with a fixed seed. They are
// part of the store format: changing them changes every chunk boundary.
constexpr std::array<uint64_t, 256> MakeGearTable() {
  std::array<uint64_t, 256> table{};
  uint64_t state = 0x7475736b63646331ull;  // "tuskcdc1"
  for (auto& v : table) {
    state += 0x9e3779b97f4a7c15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return table;
}
constexpr std::array<uint64_t, 256> kGear = MakeGearTable();

// A gear hash shifts left once per byte, so bit k depends only on the last
// k+1 bytes. Masks therefore use the top bits, which see the whole 64-byte
// window.
constexpr uint64_t TopBitsMask(int bits) { return bits <= 0 ? 0 : ~0ull << (64 - bits); }

}  // namespace

Status ChunkerParams::Validate() const {
  auto fail = [&](const std::string& why) {
    return Status::InvalidArgument("invalid chunk sizes (min " + std::to_string(min_size) + ", avg " +
                                   std::to_string(avg_size) + ", max " + std::to_string(max_size) +
                                   "): " + why);
  };
  if (min_size < 64) return fail("min must be at least 64 bytes");
  if (avg_size < 256 || avg_size > (64u << 20) || !std::has_single_bit(avg_size))
    return fail("avg must be a power of two between 256 B and 64 MiB");
  if (max_size > (64u << 20)) return fail("max must be at most 64 MiB");
  if (!(min_size <= avg_size && avg_size <= max_size)) return fail("need min <= avg <= max");
  return Status::Ok();
}

Chunker::Chunker(const ChunkerParams& params) : params_(params) {
  int bits = std::countr_zero(params.avg_size);
  mask_small_ = TopBitsMask(bits + 2);
  mask_large_ = TopBitsMask(bits - 2);
}

size_t Chunker::NextCut(const uint8_t* data, size_t len, bool at_eof) const {
  (void)at_eof;  // the caller guarantees len >= max_size unless at EOF
  if (len <= params_.min_size) return len;
  size_t end = len < params_.max_size ? len : params_.max_size;
  size_t normal = params_.avg_size < end ? params_.avg_size : end;
  uint64_t hash = 0;
  // Skipping the first min_size bytes is safe: no cut may fall there, and the
  // hash only needs 64 bytes of history before the first candidate.
  size_t i = params_.min_size - 64;
  for (; i < params_.min_size; i++) hash = (hash << 1) + kGear[data[i]];
  for (; i < normal; i++) {
    hash = (hash << 1) + kGear[data[i]];
    if (!(hash & mask_small_)) return i + 1;
  }
  for (; i < end; i++) {
    hash = (hash << 1) + kGear[data[i]];
    if (!(hash & mask_large_)) return i + 1;
  }
  return end;
}

}  // namespace tusk
