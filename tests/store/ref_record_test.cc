// Ref records (store/internal/ref_record.h, FORMAT.md "Ref records"): their
// encoding, the order in which writers make them durable, and the index
// rebuilt from them.
#include "store/internal/ref_record.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/tables.h"
#include "store/repository.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;
using Code = Status::Code;

ObjectId Id(uint8_t fill) {
  uint8_t b[32];
  std::fill(std::begin(b), std::end(b), fill);
  return ObjectId::FromBytes(b);
}

RefRecord Branch(const std::string& dataset, const std::string& name, std::optional<ObjectId> commit) {
  RefRecord r;
  r.op = RefRecord::Op::kRefSet;
  r.seq = 7;
  r.time_ns = 1234567890123;
  r.prev = Id(9);
  r.dataset = dataset;
  r.kind = 'b';
  r.name = name;
  r.commit = commit;
  return r;
}

// ---- encoding ----

TEST(RefRecordTest, EveryKindOfRecordDecodesToWhatWasEncoded) {
  std::vector<RefRecord> all = {Branch("data", "main", Id(1)), Branch("data", "empty", std::nullopt)};
  RefRecord tag = Branch("data", "v1", Id(2));
  tag.kind = 't';
  all.push_back(tag);
  RefRecord del = Branch("data", "old", std::nullopt);
  del.op = RefRecord::Op::kRefDeleted;
  all.push_back(del);
  for (auto op : {RefRecord::Op::kDatasetCreated, RefRecord::Op::kDatasetDeleted}) {
    RefRecord d;
    d.op = op;
    d.seq = 1;
    d.time_ns = -5;
    d.dataset = "data";
    all.push_back(d);
  }
  for (const auto& r : all) {
    auto back = RefRecord::Decode(r.Encode());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->Encode(), r.Encode());
    EXPECT_EQ(back->Key(), r.Key());
    EXPECT_EQ(back->commit, r.commit);
    EXPECT_EQ(back->prev, r.prev);
  }
}

TEST(RefRecordTest, DamagedOrForeignBytesAreRefused) {
  std::string good = Branch("data", "main", Id(1)).Encode();
  for (size_t n = 0; n < good.size(); n++)
    EXPECT_FALSE(RefRecord::Decode(good.substr(0, n)).ok()) << "truncated to " << n;
  EXPECT_FALSE(RefRecord::Decode(good + "x").ok()) << "trailing bytes";
  std::string newer = good;
  newer[0] = 2;
  EXPECT_EQ(RefRecord::Decode(newer).status().code(), Code::kUnsupported);
  std::string bad_op = good;
  bad_op[1] = 9;
  EXPECT_EQ(RefRecord::Decode(bad_op).status().code(), Code::kCorruption);
  RefRecord tag = Branch("data", "v1", std::nullopt);
  tag.kind = 't';
  EXPECT_EQ(RefRecord::Decode(tag.Encode()).status().code(), Code::kCorruption) << "a tag must name a commit";
  EXPECT_EQ(RefRecord::Decode(Branch("da/ta", "main", Id(1)).Encode()).status().code(), Code::kCorruption);
  EXPECT_EQ(RefRecord::Decode(Branch("data", "", Id(1)).Encode()).status().code(), Code::kCorruption);
}

TEST(RefRecordTest, LaterMeansHigherSeqThenLaterTimeThenHigherId) {
  RefRecord a = Branch("d", "b", Id(1)), b = a;
  b.seq = a.seq + 1;
  b.time_ns = a.time_ns - 1000;
  EXPECT_TRUE(b.After(a, Id(1), Id(2)));
  b.seq = a.seq;
  EXPECT_FALSE(b.After(a, Id(2), Id(1)));
  b.time_ns = a.time_ns + 1;
  EXPECT_TRUE(b.After(a, Id(1), Id(2)));
}

// ---- writers and the rebuild ----

class RefLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.Sub("store");
    ASSERT_TRUE(Repository::Create(dir_, StoreConfig{}).ok());
    Reopen();
    ASSERT_TRUE(repo_->CreateDataset("data").ok());
  }
  void Reopen() {
    repo_.reset();
    auto r = Repository::Open(dir_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(r).value();
  }
  Commit NewCommit(WriteSession& s, const std::string& message) {
    auto root = WriteDirectory(s, {});
    EXPECT_TRUE(root.ok());
    Commit c;
    c.dataset = "data";
    c.root = root.ok() ? *root : ObjectId();
    c.author = "test";
    c.time_sec = 1;
    c.message = message;
    return c;
  }
  // Every ref record in every pack on disk, by key.
  std::multimap<std::string, RefRecord> RecordsOnDisk() {
    std::multimap<std::string, RefRecord> out;
    PackDirectory packs(dir_ + "/packs");
    auto ids = packs.ListPacks();
    EXPECT_TRUE(ids.ok());
    std::string plain;
    for (PackId p : *ids) {
      auto records = packs.ListRecords(p);
      EXPECT_TRUE(records.ok()) << records.status().ToString();
      for (const auto& r : *records) {
        if (r.location.type != ObjectType::kRef) continue;
        EXPECT_TRUE(packs.ReadRecord(r.id, r.location, true, &plain).ok());
        auto rec = RefRecord::Decode(plain);
        EXPECT_TRUE(rec.ok()) << rec.status().ToString();
        if (rec.ok()) out.emplace(rec->Key(), *rec);
      }
    }
    return out;
  }
  // Every table of the index but the cache, key by key.
  std::map<std::string, std::string> DumpIndex() {
    std::map<std::string, std::string> out;
    auto env = LmdbEnv::Open(dir_ + "/index", tables::Names());
    EXPECT_TRUE(env.ok()) << env.status().ToString();
    auto txn = (*env)->BeginRead();
    EXPECT_TRUE(txn.ok());
    auto names = tables::Names();
    for (size_t t = 0; t < names.size(); t++) {
      if (t == tables::kFileStats) continue;
      EXPECT_TRUE(txn->ScanPrefix((*env)->db(t), "", [&](std::string_view k, std::string_view v) {
                       out[names[t] + ":" + std::string(k)] = std::string(v);
                       return true;
                     }).ok());
    }
    return out;
  }

  TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(RefLogTest, TheLoserOfACompareAndSetWritesNoRecordAndTheRebuildKeepsTheWinner) {
  auto s1 = repo_->BeginWrite();
  auto s2 = repo_->BeginWrite();
  ASSERT_TRUE(s1.ok() && s2.ok());
  Commit c1 = NewCommit(**s1, "first"), c2 = NewCommit(**s2, "second");
  // Both prepared on the empty branch; the first to commit wins.
  auto won = (*s1)->CommitToBranch(c1, "main", std::nullopt);
  ASSERT_TRUE(won.ok()) << won.status().ToString();
  auto lost = (*s2)->CommitToBranch(c2, "main", std::nullopt);
  EXPECT_EQ(lost.status().code(), Code::kConflict) << lost.status().ToString();
  s1->reset();
  s2->reset();

  auto on_disk = RecordsOnDisk();
  auto [first, last] = on_disk.equal_range(tables::RefKey("data", 'b', "main"));
  ASSERT_EQ(std::distance(first, last), 1) << "only the winner recorded the move";
  EXPECT_EQ(first->second.commit, *won);

  repo_.reset();
  auto rebuilt = Repository::RebuildIndex(dir_, nullptr);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  Reopen();
  auto head = repo_->GetBranch("data", "main");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(*head, std::optional<ObjectId>(*won));
}

TEST_F(RefLogTest, EveryChangeChainsToTheRecordItSupersedesWithIncreasingSequenceNumbers) {
  auto s = repo_->BeginWrite();
  ASSERT_TRUE(s.ok());
  auto c = (*s)->CommitToBranch(NewCommit(**s, "one"), "main", std::nullopt);
  ASSERT_TRUE(c.ok());
  s->reset();
  ASSERT_TRUE(repo_->CreateTag("data", "v1", *c).ok());
  ASSERT_TRUE(repo_->DeleteTag("data", "v1").ok());
  ASSERT_TRUE(repo_->CreateTag("data", "v1", *c).ok());
  std::vector<RefRecord> tag;
  for (const auto& [k, r] : RecordsOnDisk())
    if (k == tables::RefKey("data", 't', "v1")) tag.push_back(r);
  ASSERT_EQ(tag.size(), 3u);
  std::sort(tag.begin(), tag.end(), [](const RefRecord& a, const RefRecord& b) { return a.seq < b.seq; });
  EXPECT_TRUE(tag[0].prev.IsZero());
  EXPECT_EQ(tag[1].op, RefRecord::Op::kRefDeleted);
  EXPECT_EQ(tag[1].prev, HashObject(ObjectType::kRef, tag[0].Encode()));
  EXPECT_EQ(tag[2].prev, HashObject(ObjectType::kRef, tag[1].Encode()));
  EXPECT_LT(tag[0].seq, tag[1].seq);
  EXPECT_LT(tag[1].seq, tag[2].seq);
}

TEST_F(RefLogTest, RebuildingTwiceGivesTheSameIndexAsTheWritersBuilt) {
  auto s = repo_->BeginWrite();
  ASSERT_TRUE(s.ok());
  auto c = (*s)->CommitToBranch(NewCommit(**s, "one"), "main", std::nullopt);
  ASSERT_TRUE(c.ok());
  s->reset();
  ASSERT_TRUE(repo_->CreateBranch("data", "dev", *c).ok());
  ASSERT_TRUE(repo_->CreateBranch("data", "gone", *c).ok());
  ASSERT_TRUE(repo_->DeleteBranch("data", "gone").ok());
  ASSERT_TRUE(repo_->CreateTag("data", "v1", *c).ok());
  ASSERT_TRUE(repo_->CreateDataset("other").ok());
  ASSERT_TRUE(repo_->CreateDataset("old").ok());
  ASSERT_TRUE(repo_->CreateBranch("old", "x", std::nullopt).ok());
  ASSERT_TRUE(repo_->DeleteDataset("old").ok());
  ASSERT_TRUE(repo_->CreateDataset("old").ok());  // a namesake: its old branch x must not come back
  repo_.reset();
  auto written = DumpIndex();

  ASSERT_TRUE(Repository::RebuildIndex(dir_, nullptr).ok());
  auto once = DumpIndex();
  ASSERT_TRUE(Repository::RebuildIndex(dir_, nullptr).ok());
  auto twice = DumpIndex();
  EXPECT_EQ(once, twice);
  // Pending entries of the writers' own packs were resolved as they went;
  // what the writers built and what the packs say agree.
  EXPECT_EQ(once, written);
  Reopen();
  auto branches = repo_->ListBranches("old");
  ASSERT_TRUE(branches.ok());
  ASSERT_EQ(branches->size(), 1u);
  EXPECT_EQ((*branches)[0].name, "main");
}

// ---- fsck: the index's refs against the records ----

// Damage that LMDB's structural check cannot see: a value changed in place.
class IndexAgainstRecordsTest : public RefLogTest {
 protected:
  void SetUp() override {
    RefLogTest::SetUp();
    for (const char* message : {"one", "two"}) {
      auto s = repo_->BeginWrite();
      ASSERT_TRUE(s.ok());
      auto c = (*s)->CommitToBranch(NewCommit(**s, message), "main", commits_.empty() ? std::nullopt
                                                                                       : std::optional(commits_.back()));
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      commits_.push_back(*c);
    }
    ASSERT_TRUE(repo_->CreateTag("data", "v1", commits_[0]).ok());
    ASSERT_TRUE(repo_->CreateDataset("gone").ok());
    ASSERT_TRUE(repo_->DeleteDataset("gone").ok());
    auto clean = repo_->Check(nullptr);
    ASSERT_TRUE(clean.ok());
    ASSERT_TRUE(clean->problems.empty()) << clean->problems.front().object << ": " << clean->problems.front().error;
    repo_.reset();
  }
  // Changes the index behind tusk's back, then reopens it.
  void Tamper(const std::function<Status(LmdbEnv&, LmdbTxn&)>& change) {
    {
      auto env = LmdbEnv::Open(dir_ + "/index", tables::Names());
      ASSERT_TRUE(env.ok()) << env.status().ToString();
      ASSERT_TRUE((*env)->Update([&](LmdbTxn& txn) { return change(**env, txn); }).ok());
    }
    Reopen();
  }
  // The one problem fsck reports.
  FsckProblem OnlyProblem() {
    auto report = repo_->Check(nullptr);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    if (!report.ok() || report->problems.size() != 1) {
      ADD_FAILURE() << "expected one problem, got " << (report.ok() ? report->problems.size() : 0);
      return {};
    }
    return report->problems[0];
  }
  std::vector<ObjectId> commits_;
};

TEST_F(IndexAgainstRecordsTest, ABranchMovedInTheIndexIsReportedWithBothValues) {
  Tamper([&](LmdbEnv& env, LmdbTxn& txn) {
    return txn.Put(env.db(tables::kRefs), tables::RefKey("data", 'b', "main"), commits_[0].view());
  });
  FsckProblem p = OnlyProblem();
  EXPECT_EQ(p.object, "ref data@main");
  EXPECT_NE(p.error.find("the index says commit " + commits_[0].Hex()), std::string::npos) << p.error;
  EXPECT_NE(p.error.find("the ref records say commit " + commits_[1].Hex()), std::string::npos) << p.error;
  EXPECT_NE(p.error.find("--rebuild-index"), std::string::npos) << p.error;
}

TEST_F(IndexAgainstRecordsTest, ATagLostFromTheIndexIsReported) {
  Tamper([&](LmdbEnv& env, LmdbTxn& txn) { return txn.Delete(env.db(tables::kRefs), tables::RefKey("data", 't', "v1")); });
  FsckProblem p = OnlyProblem();
  EXPECT_EQ(p.object, "ref data@v1");
  EXPECT_NE(p.error.find("the index says no such ref"), std::string::npos) << p.error;
}

TEST_F(IndexAgainstRecordsTest, ADeletedDatasetBackInTheIndexIsReported) {
  Tamper([&](LmdbEnv& env, LmdbTxn& txn) { return txn.Put(env.db(tables::kDatasets), "gone", std::string(1, '\0')); });
  auto report = repo_->Check(nullptr);
  ASSERT_TRUE(report.ok());
  bool named = false;
  for (const auto& p : report->problems) named |= p.object == "dataset gone" && p.error.find("it exists") != std::string::npos;
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace tusk
