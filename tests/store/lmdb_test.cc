// Specification of the LMDB wrapper (store/internal/lmdb.h): transactions,
// prefix scans, and growing the map on demand.

#include "store/internal/lmdb.h"

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

using ::tusk::test_util::TempDir;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%08d", i);
  return buf;
}

class LmdbTest : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("TUSK_LMDB_MAP_SIZE"); }

  std::unique_ptr<LmdbEnv> OpenEnv(const std::string& dir) {
    auto env = LmdbEnv::Open(dir, {"a", "b"});
    EXPECT_TRUE(env.ok()) << env.status().ToString();
    return env.ok() ? std::move(env).value() : nullptr;
  }

  TempDir tmp_;
};

TEST_F(LmdbTest, CommittedWritesAreVisibleToLaterReads) {
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  TUSK_ASSERT_OK(env->Update([&](LmdbTxn& txn) { return txn.Put(env->db(0), "key", "value"); }));
  TUSK_ASSERT_OK_AND_ASSIGN(LmdbTxn txn, env->BeginRead());
  TUSK_ASSERT_OK_AND_ASSIGN(std::string_view v, txn.Get(env->db(0), "key"));
  EXPECT_EQ(v, "value");
  EXPECT_EQ(txn.Get(env->db(1), "key").status().code(), Status::Code::kNotFound) << "tables are separate";
}

TEST_F(LmdbTest, FailedUpdateWritesNothing) {
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  Status st = env->Update([&](LmdbTxn& txn) -> Status {
    TUSK_RETURN_IF_ERROR(txn.Put(env->db(0), "key", "value"));
    return Status::Conflict("changed my mind");
  });
  EXPECT_EQ(st.code(), Status::Code::kConflict);
  TUSK_ASSERT_OK_AND_ASSIGN(LmdbTxn txn, env->BeginRead());
  EXPECT_EQ(txn.Get(env->db(0), "key").status().code(), Status::Code::kNotFound);
}

TEST_F(LmdbTest, ScanPrefixVisitsMatchingKeysInOrder) {
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  TUSK_ASSERT_OK(env->Update([&](LmdbTxn& txn) -> Status {
    for (std::string k : {"a", "ab", "abc", "abd", "b", "aa"}) TUSK_RETURN_IF_ERROR(txn.Put(env->db(0), k, "v" + k));
    return Status::Ok();
  }));
  TUSK_ASSERT_OK_AND_ASSIGN(LmdbTxn txn, env->BeginRead());
  std::vector<std::string> seen;
  TUSK_ASSERT_OK(txn.ScanPrefix(env->db(0), "ab", [&](std::string_view k, std::string_view v) {
    EXPECT_EQ(v, "v" + std::string(k));
    seen.emplace_back(k);
    return true;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"ab", "abc", "abd"}));
  seen.clear();
  TUSK_ASSERT_OK(txn.ScanPrefix(env->db(0), "", [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return seen.size() < 2;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "aa"}));
}

TEST_F(LmdbTest, DeletingAnAbsentKeyIsNotAnError) {
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  TUSK_EXPECT_OK(env->Update([&](LmdbTxn& txn) { return txn.Delete(env->db(0), "nothing"); }));
}

TEST_F(LmdbTest, MapGrowsWhenAnUpdateDoesNotFit) {
  ASSERT_EQ(::setenv("TUSK_LMDB_MAP_SIZE", "65536", 1), 0);
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  size_t initial = env->map_size();
  EXPECT_LE(initial, 65536u * 2);
  std::string value(100, 'v');
  TUSK_ASSERT_OK(env->Update([&](LmdbTxn& txn) -> Status {
    for (int i = 0; i < 20000; i++) TUSK_RETURN_IF_ERROR(txn.Put(env->db(0), Key(i), value));
    return Status::Ok();
  }));
  EXPECT_GT(env->map_size(), initial);
  TUSK_ASSERT_OK_AND_ASSIGN(LmdbTxn txn, env->BeginRead());
  for (int i : {0, 9999, 19999}) {
    TUSK_ASSERT_OK_AND_ASSIGN(std::string_view v, txn.Get(env->db(0), Key(i)));
    EXPECT_EQ(v, value);
  }
}

TEST_F(LmdbTest, GrownMapIsAdoptedWhenReopened) {
  ASSERT_EQ(::setenv("TUSK_LMDB_MAP_SIZE", "65536", 1), 0);
  {
    auto env = OpenEnv(tmp_.path());
    ASSERT_NE(env, nullptr);
    TUSK_ASSERT_OK(env->Update([&](LmdbTxn& txn) -> Status {
      for (int i = 0; i < 5000; i++) TUSK_RETURN_IF_ERROR(txn.Put(env->db(0), Key(i), std::string(100, 'v')));
      return Status::Ok();
    }));
  }
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  TUSK_ASSERT_OK_AND_ASSIGN(LmdbTxn txn, env->BeginRead());
  TUSK_ASSERT_OK_AND_ASSIGN(std::string_view v, txn.Get(env->db(0), Key(4999)));
  EXPECT_EQ(v.size(), 100u);
}

// The importer's worker threads look objects up (short read transactions)
// while another thread registers a sealed pack in a write transaction that
// may have to grow the map. Growing must not pull the map out from under
// those readers.
TEST_F(LmdbTest, MapGrowthIsSafeWhileOtherThreadsRead) {
  ASSERT_EQ(::setenv("TUSK_LMDB_MAP_SIZE", "65536", 1), 0);
  auto env = OpenEnv(tmp_.path());
  ASSERT_NE(env, nullptr);
  TUSK_ASSERT_OK(env->Update([&](LmdbTxn& txn) { return txn.Put(env->db(0), "probe", "probe-value"); }));

  std::atomic<bool> done{false};
  std::atomic<int> bad_reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; t++) {
    readers.emplace_back([&] {
      while (!done) {
        auto txn = env->BeginRead();
        if (!txn.ok()) continue;
        auto v = txn->Get(env->db(0), "probe");
        if (!v.ok() || *v != "probe-value") bad_reads++;
      }
    });
  }
  std::string value(200, 'v');
  Status st;
  for (int batch = 0; batch < 40 && st.ok(); batch++) {
    st = env->Update([&](LmdbTxn& txn) -> Status {
      for (int i = 0; i < 2000; i++) TUSK_RETURN_IF_ERROR(txn.Put(env->db(0), Key(batch * 2000 + i), value));
      return Status::Ok();
    });
  }
  done = true;
  for (auto& r : readers) r.join();
  TUSK_EXPECT_OK(st);
  EXPECT_EQ(bad_reads.load(), 0);
}

}  // namespace
}  // namespace tusk
