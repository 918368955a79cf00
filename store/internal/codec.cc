#include "store/internal/codec.h"

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_decompressBound
#include <zstd.h>

#include <algorithm>
#include <memory>

namespace tusk {
namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

constexpr size_t kSampleSize = 16 * 1024;
constexpr size_t kMinSizeToCompress = 128;

// Compresses into `out`; returns the compressed size or 0 on failure.
size_t ZstdInto(std::string_view data, int level, std::string* out) {
  out->resize(ZSTD_compressBound(data.size()));
  size_t n = ZSTD_compressCCtx(ThreadCCtx(), out->data(), out->size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) return 0;
  out->resize(n);
  return n;
}

bool LooksCompressible(std::string_view data) {
  if (data.size() <= kSampleSize) return true;  // small: the full attempt is cheap anyway
  // Sample the middle: headers at the start of a file are often compressible
  // even when the body (image pixels, archives) is not.
  std::string_view sample = data.substr((data.size() - kSampleSize) / 2, kSampleSize);
  thread_local std::string scratch;
  size_t n = ZstdInto(sample, 1, &scratch);
  return n != 0 && n < sample.size() * 97 / 100;
}

// Compresses every kFrameSize slice of `data` as its own frame into `out`;
// returns the total size or 0 on failure.
size_t ZstdFramesInto(std::string_view data, int level, std::string* out) {
  out->resize(FrameCount(data.size()) * ZSTD_compressBound(kFrameSize));
  size_t at = 0;
  for (size_t from = 0; from < data.size(); from += kFrameSize) {
    size_t len = std::min(kFrameSize, data.size() - from);
    size_t n = ZSTD_compressCCtx(ThreadCCtx(), out->data() + at, out->size() - at, data.data() + from, len, level);
    if (ZSTD_isError(n)) return 0;
    at += n;
  }
  out->resize(at);
  return at;
}

}  // namespace

Codec Compress(std::string_view data, int level, bool framed, std::string* out) {
  if (level > 0 && data.size() >= kMinSizeToCompress && LooksCompressible(data)) {
    bool frames = framed && data.size() > kFrameSize;
    size_t n = frames ? ZstdFramesInto(data, level, out) : ZstdInto(data, level, out);
    if (n != 0 && n < data.size() * 97 / 100) return frames ? Codec::kZstdFrames : Codec::kZstd;
  }
  out->assign(data);
  return Codec::kRaw;
}

Status Decompress(Codec codec, std::string_view stored, size_t raw_len, std::string* out) {
  switch (codec) {
    case Codec::kRaw:
      if (stored.size() != raw_len) return Status::Corruption("raw record length mismatch");
      out->assign(stored);
      return Status::Ok();
    case Codec::kZstd:
    case Codec::kZstdFrames: {  // zstd decodes concatenated frames in one call
      // raw_len comes from disk: the frames must be able to hold it before
      // it sizes a buffer.
      unsigned long long bound = ZSTD_decompressBound(stored.data(), stored.size());
      if (bound == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("zstd: not a sequence of whole frames");
      if (raw_len > bound)
        return Status::Corruption("zstd frames hold at most " + std::to_string(bound) + " bytes, the record says " +
                                  std::to_string(raw_len));
      out->resize(raw_len);
      size_t n = ZSTD_decompressDCtx(ThreadDCtx(), out->data(), out->size(), stored.data(), stored.size());
      if (ZSTD_isError(n)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
      if (n != raw_len) return Status::Corruption("decompressed length mismatch");
      return Status::Ok();
    }
  }
  return Status::Corruption("unknown codec " + std::to_string(static_cast<int>(codec)));
}

Status FrameEnds(std::string_view stored, size_t raw_len, std::vector<uint32_t>* ends) {
  ends->clear();
  size_t at = 0;
  for (size_t i = 0; i < FrameCount(raw_len); i++) {
    size_t n = ZSTD_findFrameCompressedSize(stored.data() + at, stored.size() - at);
    if (ZSTD_isError(n)) return Status::Corruption(std::string("zstd frame ") + std::to_string(i) + ": " + ZSTD_getErrorName(n));
    at += n;
    ends->push_back(static_cast<uint32_t>(at));
  }
  if (at != stored.size()) return Status::Corruption("zstd frames do not fill the record");
  return Status::Ok();
}

Status DecompressFrame(std::string_view frame, size_t raw_len, char* out) {
  size_t n = ZSTD_decompressDCtx(ThreadDCtx(), out, raw_len, frame.data(), frame.size());
  if (ZSTD_isError(n)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != raw_len) return Status::Corruption("decompressed frame length mismatch");
  return Status::Ok();
}

}  // namespace tusk
