// Record payloads: Decompress (whole reads), FrameEnds and RangeTable (the
// range table of a zstd-frames or raw record) and DecompressFrame (the
// mount's partial reads), on stored bytes from a pack.
//
// Input: a mode byte, a varint raw_len (the length a record header claims),
// then the bytes. Mode bit 0 set: the bytes are plaintext, compressed here
// (framed) and read back; clear: they are a stored payload of codec
// (mode >> 1) % 3.
//
// Properties: compress/decompress round-trips and its range table is
// well-formed; a stored payload that decompresses whole and splits into
// frames decompresses frame by frame to the same bytes (a partial read
// never disagrees with a whole read of a record fsck accepts).
#include <cstring>

#include "store/internal/codec.h"
#include "store/internal/pack.h"
#include "store/internal/varint.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace tusk;

constexpr uint64_t kMaxRawLen = 1 << 20;

// Decompresses every frame of a kZstdFrames payload one by one.
Status ReadFramewise(std::string_view stored, size_t raw_len, std::string* out) {
  std::vector<uint32_t> ends;
  TUSK_RETURN_IF_ERROR(FrameEnds(stored, raw_len, &ends));
  out->assign(raw_len, '\0');
  uint32_t start = 0;
  for (size_t f = 0; f < ends.size(); f++) {
    FUZZ_CHECK(ends[f] >= start && ends[f] <= stored.size());
    size_t frame_raw = std::min(kFrameSize, raw_len - f * kFrameSize);
    TUSK_RETURN_IF_ERROR(DecompressFrame(stored.substr(start, ends[f] - start), frame_raw, out->data() + f * kFrameSize));
    start = ends[f];
  }
  return Status::Ok();
}

void CheckStored(Codec codec, std::string_view stored, size_t raw_len) {
  std::string whole;
  Status st = Decompress(codec, stored, raw_len, &whole);
  if (st.ok()) FUZZ_CHECK(whole.size() == raw_len);
  auto table = RangeTable(codec, stored, raw_len);
  if (table.ok()) FUZZ_CHECK(table->size() == (HasRangeTable(codec, stored.size()) ? RangeTableSize(codec, stored.size(), raw_len) : 0));
  if (codec != Codec::kZstdFrames) return;
  std::string framewise;
  Status frames = ReadFramewise(stored, raw_len, &framewise);
  if (st.ok() && table.ok()) {
    FUZZ_CHECK(frames.ok());
    FUZZ_CHECK(framewise == whole);
  }
}

void CheckRoundTrip(std::string_view plain) {
  std::string stored;
  Codec codec = Compress(plain, 1, /*framed=*/true, &stored);
  std::string back;
  FUZZ_CHECK(Decompress(codec, stored, plain.size(), &back).ok());
  FUZZ_CHECK(back == plain);
  auto table = RangeTable(codec, stored, plain.size());
  FUZZ_CHECK(table.ok());
  FUZZ_CHECK(table->size() == RangeTableSize(codec, stored.size(), plain.size()));
  CheckStored(codec, stored, plain.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz::View(data, size);
  uint8_t mode = fuzz::TakeByte(&in);
  if (mode & 1) {
    CheckRoundTrip(in);
    return 0;
  }
  Decoder d(in);
  uint64_t raw_len;
  if (!d.GetVarint(&raw_len) || raw_len > kMaxRawLen) return 0;
  std::string_view stored = in.substr(in.size() - d.remaining());
  CheckStored(static_cast<Codec>((mode >> 1) % 3), stored, raw_len);
  return 0;
}
