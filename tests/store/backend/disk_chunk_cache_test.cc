// Specification of the disk cache of chunks read from remotes
// (store/backend/disk_chunk_cache.h).
#include "store/backend/disk_chunk_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::RandomBytes;
using test_util::TempDir;

ObjectId IdOf(const std::string& bytes) { return Sha256::Of(bytes.data(), bytes.size()); }

std::string PathIn(const std::string& dir, const ObjectId& id) {
  return dir + "/" + id.Hex().substr(0, 2) + "/" + id.Hex();
}

// Sets the file's mtime (its last use) `sec` seconds into the past.
void Age(const std::string& path, int sec) {
  struct timespec times[2] = {{time(nullptr) - sec, 0}, {time(nullptr) - sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(DiskChunkCacheTest, WhatIsPutIsGotBackAndWhatIsNotIsAMiss) {
  TempDir dir;
  DiskChunkCache cache(dir.Sub("cache"), 1 << 20, 1 << 20);
  std::string a = RandomBytes(10000, 1);
  EXPECT_FALSE(cache.Get(IdOf(a)).has_value());
  TUSK_ASSERT_OK(cache.Put(IdOf(a), a));
  EXPECT_EQ(cache.Get(IdOf(a)), a);
  EXPECT_TRUE(cache.Contains(IdOf(a)));
  EXPECT_EQ(cache.bytes(), a.size());
  TUSK_ASSERT_OK(cache.Put(IdOf(""), ""));  // an empty chunk is a chunk too
  EXPECT_EQ(cache.Get(IdOf("")), std::string());
}

TEST(DiskChunkCacheTest, ADamagedOrTornFileIsAMissAndIsRemoved) {
  TempDir dir;
  std::string a = RandomBytes(5000, 2), b = RandomBytes(5000, 3);
  {
    DiskChunkCache cache(dir.Sub("cache"), 1 << 20, 1 << 20);
    TUSK_ASSERT_OK(cache.Put(IdOf(a), a));
    TUSK_ASSERT_OK(cache.Put(IdOf(b), b));
  }
  std::string pa = PathIn(dir.Sub("cache"), IdOf(a)), pb = PathIn(dir.Sub("cache"), IdOf(b));
  std::string bytes = test_util::ReadFile(pa);
  bytes[100] ^= 1;
  ::chmod(pa.c_str(), 0600);
  test_util::WriteFile(pa, bytes);
  ASSERT_EQ(::truncate(pb.c_str(), 2000), 0);  // as a crash before the data reached the disk
  DiskChunkCache cache(dir.Sub("cache"), 1 << 20, 1 << 20);
  EXPECT_FALSE(cache.Get(IdOf(a)).has_value());
  EXPECT_FALSE(cache.Get(IdOf(b)).has_value());
  struct stat st;
  EXPECT_NE(::stat(pa.c_str(), &st), 0);
  EXPECT_NE(::stat(pb.c_str(), &st), 0);
  TUSK_ASSERT_OK(cache.Put(IdOf(a), a));
  EXPECT_EQ(cache.Get(IdOf(a)), a) << "put again after the damage";
}

TEST(DiskChunkCacheTest, TheLeastRecentlyUsedGoFirstWhenItOutgrowsItsCapacity) {
  TempDir dir;
  std::string a = RandomBytes(40000, 4), b = RandomBytes(40000, 5), c = RandomBytes(40000, 6);
  DiskChunkCache cache(dir.Sub("cache"), 100000, 100000);
  TUSK_ASSERT_OK(cache.Put(IdOf(a), a));
  TUSK_ASSERT_OK(cache.Put(IdOf(b), b));
  EXPECT_TRUE(cache.Get(IdOf(a)).has_value());  // a is now more recent than b
  TUSK_ASSERT_OK(cache.Put(IdOf(c), c));
  EXPECT_TRUE(cache.Get(IdOf(a)).has_value());
  EXPECT_FALSE(cache.Get(IdOf(b)).has_value());
  EXPECT_TRUE(cache.Get(IdOf(c)).has_value());
  EXPECT_LE(cache.bytes(), 100000u);
  // A chunk larger than the whole cache is not kept (it would evict all).
  std::string huge = RandomBytes(200000, 7);
  TUSK_ASSERT_OK(cache.Put(IdOf(huge), huge));
  EXPECT_FALSE(cache.Get(IdOf(huge)).has_value());
  EXPECT_TRUE(cache.Get(IdOf(c)).has_value());
}

TEST(DiskChunkCacheTest, TheOrderOfUseSurvivesARestartAndASmallerCapacityEvictsAtOnce) {
  TempDir dir;
  std::string a = RandomBytes(30000, 8), b = RandomBytes(30000, 9), c = RandomBytes(30000, 10);
  {
    DiskChunkCache cache(dir.Sub("cache"), 1 << 20, 1 << 20);
    for (const auto* x : {&a, &b, &c}) TUSK_ASSERT_OK(cache.Put(IdOf(*x), *x));
  }
  // Last used: b long ago, then c, then a.
  Age(PathIn(dir.Sub("cache"), IdOf(b)), 300);
  Age(PathIn(dir.Sub("cache"), IdOf(c)), 200);
  Age(PathIn(dir.Sub("cache"), IdOf(a)), 100);
  ::mkdir(dir.Sub("cache/tmp").c_str(), 0700);
  test_util::WriteFile(dir.Sub("cache/tmp/123-4"), "left by a crash");
  DiskChunkCache cache(dir.Sub("cache"), 70000, 70000);
  EXPECT_EQ(cache.count(), 2u);
  EXPECT_FALSE(cache.Contains(IdOf(b)));
  EXPECT_EQ(cache.Get(IdOf(c)), c);
  EXPECT_EQ(cache.Get(IdOf(a)), a);
}

TEST(DiskChunkCacheTest, TheCapacityBelongsToTheDirectoryAndCrashLeftoversGo) {
  TempDir dir;
  std::string a = RandomBytes(30000, 11), b = RandomBytes(30000, 12);
  {
    DiskChunkCache sized(dir.Sub("cache"), 50000, 1 << 20);  // as prefetch --remote-cache-size 50000
    TUSK_ASSERT_OK(sized.Put(IdOf(a), a));
    EXPECT_EQ(sized.capacity(), 50000u);
  }
  std::string leftover = dir.Sub("cache/tmp/99-1"), fresh = dir.Sub("cache/tmp/99-2");
  test_util::WriteFile(leftover, "torn");
  test_util::WriteFile(fresh, "being written");
  Age(leftover, 7200);
  // A process that gives no size (a plain tusk cat) uses the recorded one.
  DiskChunkCache plain(dir.Sub("cache"), 0, 1 << 20);
  EXPECT_EQ(plain.capacity(), 50000u);
  TUSK_ASSERT_OK(plain.Put(IdOf(b), b));
  EXPECT_FALSE(plain.Contains(IdOf(a)));
  EXPECT_TRUE(plain.Contains(IdOf(b)));
  struct stat st;
  EXPECT_NE(::stat(leftover.c_str(), &st), 0) << "a crash's leftover is removed";
  EXPECT_EQ(::stat(fresh.c_str(), &st), 0) << "a file another process is writing stays";
  // Without a recorded size: the fallback.
  TempDir other;
  DiskChunkCache fallback(other.Sub("cache"), 0, 123456);
  EXPECT_EQ(fallback.capacity(), 123456u);
}

}  // namespace
}  // namespace tusk
