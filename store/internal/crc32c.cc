#include "store/internal/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace tusk {
namespace {

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = MakeTable();

uint32_t Crc32cTable(const uint8_t* p, size_t len, uint32_t crc) {
  while (len--) crc = kTable[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// The crc32 instruction has a 3-cycle latency but issues every cycle, so one
// dependency chain uses a third of it. Long inputs are cut into rounds of
// three kLane-byte lanes whose CRCs run interleaved; the lanes are joined with
// crc(s, A||B) = Shift(s, |B|) ^ crc(0, B), where Shift (appending |B| zero
// bytes to the register) is linear, so for |B| = kLane it is four byte tables.
constexpr size_t kLane = 4096;

__attribute__((target("sse4.2"))) uint32_t AppendZeros(uint32_t crc, size_t n) {
  uint64_t c = crc;
  for (size_t i = 0; i < n; i += 8) c = _mm_crc32_u64(c, 0);
  return static_cast<uint32_t>(c);
}

struct LaneShift {
  uint32_t t[4][256];
  LaneShift() {
    for (int k = 0; k < 4; k++)
      for (uint32_t b = 0; b < 256; b++) t[k][b] = AppendZeros(b << (8 * k), kLane);
  }
  uint32_t operator()(uint32_t c) const {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
  }
};

__attribute__((target("sse4.2"))) uint32_t Crc32cHw(const uint8_t* p, size_t len, uint32_t crc) {
  uint64_t c = crc;
  if (len >= 3 * kLane) {
    static const LaneShift shift;
    while (len >= 3 * kLane) {
      uint64_t c0 = c, c1 = 0, c2 = 0;
      for (size_t i = 0; i < kLane; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, p + i, 8);
        std::memcpy(&v1, p + kLane + i, 8);
        std::memcpy(&v2, p + 2 * kLane + i, 8);
        c0 = _mm_crc32_u64(c0, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      uint32_t joined = shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
      c = shift(joined) ^ static_cast<uint32_t>(c2);
      p += 3 * kLane;
      len -= 3 * kLane;
    }
  }
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (len--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace

uint32_t Crc32c(const void* data, size_t len, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  static const bool have_hw = __builtin_cpu_supports("sse4.2");
  crc = have_hw ? Crc32cHw(p, len, crc) : Crc32cTable(p, len, crc);
#else
  crc = Crc32cTable(p, len, crc);
#endif
  return ~crc;
}

uint32_t Crc32cPortable(const void* data, size_t len, uint32_t crc) {
  return ~Crc32cTable(static_cast<const uint8_t*>(data), len, ~crc);
}

}  // namespace tusk
