// Specification of RemoteReader (store/internal/remote_reader.h): how chunks
// wanted from remote packs become ranged reads, and how readers share them.

#include "store/internal/remote_reader.h"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

ObjectId IdOf(int n) {
  std::string s = "chunk " + std::to_string(n);
  return Sha256::Of(s.data(), s.size());
}

// A raw chunk record of `len` payload bytes at `offset` of `pack` (no range
// table below 16 KiB).
std::pair<ObjectId, ObjectLocation> Record(int n, PackId pack, uint64_t offset, uint32_t len = 1000) {
  ObjectLocation loc;
  loc.pack = pack;
  loc.offset = offset;
  loc.stored_len = loc.raw_len = len;
  loc.codec = Codec::kRaw;
  return {IdOf(n), loc};
}

uint64_t End(const std::pair<ObjectId, ObjectLocation>& r) { return r.second.offset + RecordExtent(r.second); }

TEST(RemoteReaderSpansTest, NeighboursInOnePackShareOneRead) {
  auto a = Record(1, 7, 32);
  auto b = Record(2, 7, End(a));
  auto c = Record(3, 7, End(b) + 1000);  // a small gap is read and dropped
  auto spans = RemoteReader::MakeSpans({c, a, b});
  ASSERT_EQ(spans.size(), 1u);
  ASSERT_EQ(spans[0].size(), 3u);
  EXPECT_EQ(spans[0][0].first, IdOf(1));  // in pack order
  EXPECT_EQ(spans[0][2].first, IdOf(3));
}

TEST(RemoteReaderSpansTest, PacksLargeGapsAndTheSpanBoundSplit) {
  auto a = Record(1, 7, 32);
  auto far = Record(2, 7, End(a) + RemoteReader::kMaxGap + 1);
  auto other_pack = Record(3, 8, 32);
  EXPECT_EQ(RemoteReader::MakeSpans({a, far, other_pack}).size(), 3u);

  // Records of 1 MiB back to back: no span is longer than kMaxSpan.
  std::vector<std::pair<ObjectId, ObjectLocation>> big;
  uint64_t at = 32;
  for (int i = 0; i < 20; i++) {
    big.push_back(Record(10 + i, 9, at, 1 << 20));
    at = End(big.back());
  }
  auto spans = RemoteReader::MakeSpans(big);
  EXPECT_GT(spans.size(), 4u);
  size_t records = 0;
  for (const auto& span : spans) {
    EXPECT_LE(End(span.back()) - span.front().second.offset, RemoteReader::kMaxSpan);
    records += span.size();
  }
  EXPECT_EQ(records, big.size());
}

TEST(RemoteReaderSpansTest, AChunkAskedTwiceIsReadOnce) {
  auto a = Record(1, 7, 32);
  auto spans = RemoteReader::MakeSpans({a, a, Record(2, 7, End(a))});
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].size(), 2u);
}

// A fetch function that records what it was asked and can be held back.
struct FakeRemote {
  std::mutex mu;
  std::vector<RemoteReader::Span> calls;
  std::set<ObjectId> fail;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool hold = false;
  std::atomic<int> entered{0};

  RemoteReader::FetchSpan Fn() {
    return [this](PackId, const RemoteReader::Span& span, bool) -> Status {
      entered++;
      if (hold) released.wait();
      std::lock_guard lock(mu);
      calls.push_back(span);
      for (const auto& r : span)
        if (fail.count(r.first)) return Status::Corruption("chunk " + r.first.Hex() + " does not hash to its id");
      return Status::Ok();
    };
  }
};

TEST(RemoteReaderTest, AWaitingFetchReturnsWhenAllItsChunksAreIn) {
  FakeRemote remote;
  RemoteReader reader(remote.Fn(), 4);
  auto a = Record(1, 7, 32);
  auto b = Record(2, 7, End(a));
  auto c = Record(3, 8, 32);
  TUSK_ASSERT_OK(reader.Fetch({a, b, c}, /*wait=*/true));
  ASSERT_EQ(remote.calls.size(), 2u);  // one read per pack
  EXPECT_FALSE(reader.WaitFor(IdOf(1)));  // nothing in flight any more
}

TEST(RemoteReaderTest, AFailedSpanFailsTheWaitingFetch) {
  FakeRemote remote;
  remote.fail.insert(IdOf(2));
  RemoteReader reader(remote.Fn(), 2);
  auto a = Record(1, 7, 32);
  Status st = reader.Fetch({a, Record(2, 7, End(a))}, /*wait=*/true);
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  // Errors are not remembered: asked again, the chunks are fetched again.
  remote.fail.clear();
  TUSK_ASSERT_OK(reader.Fetch({a}, /*wait=*/true));
  EXPECT_EQ(remote.calls.size(), 2u);
}

TEST(RemoteReaderTest, ChunksInFlightAreFetchedOnceAndWaitedFor) {
  FakeRemote remote;
  remote.hold = true;
  RemoteReader reader(remote.Fn(), 2);
  auto a = Record(1, 7, 32);
  auto b = Record(2, 7, End(a));
  TUSK_ASSERT_OK(reader.Fetch({a, b}, /*wait=*/false));  // read-ahead: returns at once
  // A second reader wanting the same chunks joins the fetch in flight.
  auto second = std::async(std::launch::async, [&] { return reader.Fetch({b, a}, /*wait=*/true); });
  auto waiter = std::async(std::launch::async, [&] { return reader.WaitFor(IdOf(2)); });
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(10)), std::future_status::timeout);
  remote.release.set_value();
  TUSK_ASSERT_OK(second.get());
  EXPECT_TRUE(waiter.get());
  std::lock_guard lock(remote.mu);
  EXPECT_EQ(remote.calls.size(), 1u);
}

TEST(RemoteReaderTest, ReadAheadBeyondTheQueueIsDroppedNotBlocked) {
  FakeRemote remote;
  remote.hold = true;
  RemoteReader reader(remote.Fn(), 1);
  std::vector<std::pair<ObjectId, ObjectLocation>> wanted;
  for (int i = 0; i < static_cast<int>(RemoteReader::kMaxQueued) + 20; i++)
    wanted.push_back(Record(i, 100 + i, 32));  // one span each
  TUSK_ASSERT_OK(reader.Fetch(wanted, /*wait=*/false));
  // The dropped ones are not in flight: a reader fetches them itself.
  EXPECT_FALSE(reader.WaitFor(wanted.back().first));
  remote.release.set_value();
}

TEST(RemoteReaderTest, LandedChunksAreTakenOnceAndBounded) {
  FakeRemote remote;
  RemoteReader reader(remote.Fn(), 1);
  reader.Land(IdOf(1), "one");
  EXPECT_EQ(reader.Take(IdOf(1)), std::optional<std::string>("one"));
  EXPECT_EQ(reader.Take(IdOf(1)), std::nullopt);
  // Past kMaxLanded bytes, the oldest go.
  std::string mib(1 << 20, 'x');
  for (int i = 0; i < 40; i++) reader.Land(IdOf(100 + i), mib);
  EXPECT_EQ(reader.Take(IdOf(100)), std::nullopt);
  EXPECT_TRUE(reader.Take(IdOf(139)).has_value());
}

TEST(RemoteReaderTest, ClosingWithReadAheadQueuedDropsIt) {
  FakeRemote remote;
  remote.hold = true;
  {
    RemoteReader reader(remote.Fn(), 1);
    for (int i = 0; i < 10; i++) TUSK_ASSERT_OK(reader.Fetch({Record(i, 7 + i, 32)}, /*wait=*/false));
    while (remote.entered == 0) std::this_thread::yield();  // the one thread holds the first
    remote.release.set_value();
  }  // returns: the running fetch finished, the queued ones were dropped
  std::lock_guard lock(remote.mu);
  EXPECT_GE(remote.calls.size(), 1u);
  EXPECT_LE(remote.calls.size(), 10u);
}

}  // namespace
}  // namespace tusk
