// Specification of the content-defined chunker (store/chunker.h).

#include "store/chunker.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/ids.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using ::tusk::test_util::RandomBytes;

constexpr size_t kMiB = 1 << 20;

// Chunks a whole in-memory stream; returns the chunk lengths in order.
std::vector<size_t> CutAll(const Chunker& chunker, std::string_view data) {
  std::vector<size_t> cuts;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = chunker.NextCut(p + pos, data.size() - pos, /*at_eof=*/true);
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, data.size() - pos);
    if (n == 0) break;
    cuts.push_back(n);
    pos += n;
  }
  return cuts;
}

// Chunks the way the importer does: through a window of at least max_size
// bytes that is only marked at_eof at the very end of the stream.
std::vector<size_t> CutStreaming(const Chunker& chunker, std::string_view data, size_t window) {
  std::vector<size_t> cuts;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t pos = 0;
  while (pos < data.size()) {
    size_t avail = std::min(window, data.size() - pos);
    bool at_eof = pos + avail == data.size();
    size_t n = chunker.NextCut(p + pos, avail, at_eof);
    cuts.push_back(n);
    pos += n;
  }
  return cuts;
}

std::vector<ObjectId> ChunkIds(std::string_view data, const std::vector<size_t>& cuts) {
  std::vector<ObjectId> ids;
  size_t pos = 0;
  for (size_t n : cuts) {
    ids.push_back(Sha256::Of(data.data() + pos, n));
    pos += n;
  }
  return ids;
}

// How many chunks at the end of `a` and `b` are identical.
size_t CommonSuffix(const std::vector<ObjectId>& a, const std::vector<ObjectId>& b) {
  size_t k = 0;
  while (k < a.size() && k < b.size() && a[a.size() - 1 - k] == b[b.size() - 1 - k]) k++;
  return k;
}

void ExpectSizesWithinBounds(const std::vector<size_t>& cuts, const ChunkerParams& params) {
  ASSERT_FALSE(cuts.empty());
  for (size_t i = 0; i < cuts.size(); i++) {
    EXPECT_LE(cuts[i], params.max_size) << "chunk " << i;
    if (i + 1 < cuts.size()) {
      EXPECT_GE(cuts[i], params.min_size) << "chunk " << i << " of " << cuts.size();
    }
  }
}

TEST(ChunkerParamsTest, DefaultsAreValid) { EXPECT_TRUE(ChunkerParams{}.Validate().ok()); }

TEST(ChunkerParamsTest, AcceptsSmallestAndLargestAllowedSizes) {
  EXPECT_TRUE((ChunkerParams{64, 256, 1024}).Validate().ok());
  EXPECT_TRUE((ChunkerParams{64u << 20, 64u << 20, 64u << 20}).Validate().ok());
  EXPECT_TRUE((ChunkerParams{256, 256, 256}).Validate().ok());
}

TEST(ChunkerParamsTest, RejectsAverageThatIsNotAPowerOfTwo) {
  Status st = ChunkerParams{64 * 1024, 300 * 1000, 1024 * 1024}.Validate();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ChunkerParams({64, 384, 1024}).Validate().code(), Status::Code::kInvalidArgument);
}

TEST(ChunkerParamsTest, RejectsAverageOutsideItsRange) {
  EXPECT_EQ(ChunkerParams({64, 128, 1024}).Validate().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ChunkerParams({64, 128u << 20, 128u << 20}).Validate().code(), Status::Code::kInvalidArgument);
}

TEST(ChunkerParamsTest, RejectsMinLargerThanAverage) {
  EXPECT_EQ(ChunkerParams({512 * 1024, 256 * 1024, 1024 * 1024}).Validate().code(), Status::Code::kInvalidArgument);
}

TEST(ChunkerParamsTest, RejectsMaxSmallerThanAverage) {
  EXPECT_EQ(ChunkerParams({64 * 1024, 256 * 1024, 128 * 1024}).Validate().code(), Status::Code::kInvalidArgument);
}

TEST(ChunkerParamsTest, RejectsMaxAbove64MiB) {
  EXPECT_EQ(ChunkerParams({64 * 1024, 256 * 1024, (64u << 20) + 1}).Validate().code(),
            Status::Code::kInvalidArgument);
}

TEST(ChunkerParamsTest, RejectsMinBelowTheRollingWindow) {
  EXPECT_EQ(ChunkerParams({63, 256, 1024}).Validate().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ChunkerParams({0, 256, 1024}).Validate().code(), Status::Code::kInvalidArgument);
}

TEST(ChunkerParamsTest, RejectionMessageNamesTheSizes) {
  Status st = ChunkerParams{64 * 1024, 300000, 1024 * 1024}.Validate();
  EXPECT_NE(st.message().find("300000"), std::string::npos) << st.message();
}

TEST(ChunkerTest, ChunksOfRandomDataRespectMinAndMax) {
  ChunkerParams params;  // 64 KiB / 256 KiB / 1 MiB
  std::string data = RandomBytes(16 * kMiB, 1);
  ExpectSizesWithinBounds(CutAll(Chunker(params), data), params);
}

TEST(ChunkerTest, SmallParamsRespectMinAndMax) {
  ChunkerParams params{64, 256, 1024};
  std::string data = RandomBytes(2 * kMiB, 2);
  auto cuts = CutAll(Chunker(params), data);
  ExpectSizesWithinBounds(cuts, params);
  EXPECT_GT(cuts.size(), 2 * kMiB / 1024);  // far more chunks than max-size cuts would give
}

TEST(ChunkerTest, ConstantDataIsCutAtMaxSize) {
  ChunkerParams params{1024, 4096, 16384};
  std::string zeros(1 * kMiB + 123, '\0');
  auto cuts = CutAll(Chunker(params), zeros);
  ExpectSizesWithinBounds(cuts, params);
  size_t total = 0;
  for (size_t c : cuts) total += c;
  EXPECT_EQ(total, zeros.size());
}

TEST(ChunkerTest, ChunkLengthsAddUpToTheStream) {
  ChunkerParams params;
  std::string data = RandomBytes(5 * kMiB + 17, 3);
  auto cuts = CutAll(Chunker(params), data);
  size_t total = 0;
  for (size_t c : cuts) total += c;
  EXPECT_EQ(total, data.size());
}

TEST(ChunkerTest, ShortStreamIsOneChunk) {
  Chunker chunker{ChunkerParams{}};
  std::string data = RandomBytes(1000, 4);
  EXPECT_EQ(chunker.NextCut(reinterpret_cast<const uint8_t*>(data.data()), data.size(), true), data.size());
  // Exactly min_size bytes cannot be split either.
  std::string min = RandomBytes(chunker.params().min_size, 5);
  EXPECT_EQ(chunker.NextCut(reinterpret_cast<const uint8_t*>(min.data()), min.size(), true), min.size());
}

TEST(ChunkerTest, CutsAreDeterministic) {
  ChunkerParams params;
  std::string data = RandomBytes(8 * kMiB, 6);
  auto first = CutAll(Chunker(params), data);
  auto second = CutAll(Chunker(params), data);
  EXPECT_EQ(first, second);
}

TEST(ChunkerTest, StreamingThroughAWindowGivesTheSameCutsAsWholeBuffer) {
  ChunkerParams params;
  Chunker chunker(params);
  std::string data = RandomBytes(8 * kMiB + 999, 7);
  EXPECT_EQ(CutStreaming(chunker, data, params.max_size), CutAll(chunker, data));
  EXPECT_EQ(CutStreaming(chunker, data, 3 * params.max_size), CutAll(chunker, data));
}

TEST(ChunkerTest, AverageChunkSizeOnRandomDataIsNearTheTarget) {
  ChunkerParams params;
  std::string data = RandomBytes(16 * kMiB, 8);
  auto cuts = CutAll(Chunker(params), data);
  double mean = static_cast<double>(data.size()) / static_cast<double>(cuts.size());
  EXPECT_GE(mean, params.avg_size / 2.0) << cuts.size() << " chunks";
  EXPECT_LE(mean, params.avg_size * 2.0) << cuts.size() << " chunks";

  ChunkerParams small{1024, 4096, 16384};
  cuts = CutAll(Chunker(small), data);
  mean = static_cast<double>(data.size()) / static_cast<double>(cuts.size());
  EXPECT_GE(mean, small.avg_size / 2.0);
  EXPECT_LE(mean, small.avg_size * 2.0);
}

TEST(ChunkerTest, InsertingBytesNearTheStartKeepsLaterChunks) {
  ChunkerParams params;
  Chunker chunker(params);
  std::string original = RandomBytes(16 * kMiB, 9);
  std::string edited = original;
  edited.insert(1000, RandomBytes(100, 10));

  auto before = ChunkIds(original, CutAll(chunker, original));
  auto after = ChunkIds(edited, CutAll(chunker, edited));
  size_t common = CommonSuffix(before, after);
  EXPECT_GE(common + 3, before.size()) << "only " << common << " of " << before.size() << " chunks survived";
  EXPECT_LT(common, before.size());  // the edited chunk itself did change
}

TEST(ChunkerTest, DeletingBytesNearTheStartKeepsLaterChunks) {
  ChunkerParams params;
  Chunker chunker(params);
  std::string original = RandomBytes(16 * kMiB, 11);
  std::string edited = original;
  edited.erase(5000, 300);

  auto before = ChunkIds(original, CutAll(chunker, original));
  auto after = ChunkIds(edited, CutAll(chunker, edited));
  size_t common = CommonSuffix(before, after);
  EXPECT_GE(common + 3, before.size()) << "only " << common << " of " << before.size() << " chunks survived";
}

TEST(ChunkerTest, EditInTheMiddleOnlyDisturbsNearbyBoundaries) {
  ChunkerParams params{1024, 4096, 16384};
  Chunker chunker(params);
  std::string original = RandomBytes(4 * kMiB, 12);
  std::string edited = original;
  const size_t edit_at = 2 * kMiB;
  edited.insert(edit_at, "inserted!");

  // Boundaries, measured from the end of the stream, agree except near the edit.
  auto boundaries_from_end = [](const std::vector<size_t>& cuts, size_t total) {
    std::vector<size_t> out;
    size_t pos = 0;
    for (size_t c : cuts) {
      pos += c;
      out.push_back(total - pos);
    }
    return out;
  };
  auto before = boundaries_from_end(CutAll(chunker, original), original.size());
  auto after = boundaries_from_end(CutAll(chunker, edited), edited.size());
  std::vector<size_t> after_sorted(after.begin(), after.end());
  std::sort(after_sorted.begin(), after_sorted.end());
  size_t tail = original.size() - edit_at;  // bytes after the edit point
  size_t missing = 0;
  for (size_t b : before)
    if (b + 2 * params.max_size < tail && !std::binary_search(after_sorted.begin(), after_sorted.end(), b)) missing++;
  EXPECT_EQ(missing, 0u);

  // Before the edit point, boundaries are identical from the start.
  auto cuts_before = CutAll(chunker, original);
  auto cuts_after = CutAll(chunker, edited);
  size_t pos = 0, same = 0;
  for (size_t i = 0; i < cuts_before.size() && i < cuts_after.size() && cuts_before[i] == cuts_after[i]; i++) {
    pos += cuts_before[i];
    if (pos > edit_at) break;
    same++;
  }
  EXPECT_GT(pos + params.max_size, edit_at) << "only " << same << " leading chunks kept";
}

}  // namespace
}  // namespace tusk
