// Dataset settings (store/settings/settings.h): their encoding, the
// versioned head that moves by compare-and-set, what gc keeps and what an
// index rebuild recovers, table rules and their globs, and commits that
// record check results.
#include "store/settings/settings.h"

#include <filesystem>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;

DatasetSettings Sample() {
  DatasetSettings s;
  s.dataset = "labels";
  s.parent = Sha256::Of("p", 1);
  s.author = "alice";
  s.time_sec = 1796600000;
  s.change = "check add schema";
  CheckDefinition a;
  a.name = "lint";
  a.command = {"python3", "lint.py", "--strict"};
  a.timeout_sec = 30;
  CheckDefinition b;
  b.name = "schema";
  b.builtin = "csv";
  b.args = {"labels/*.csv", "--numeric", "score"};
  s.checks = {a, b};
  s.tables = {{"labels/*.csv", std::vector<std::string>{"id"}, FileFormat::kDetect},
              {"boxes/**", std::vector<std::string>{"image", "box"}, FileFormat::kDetect},
              {"*.jsonl", std::vector<std::string>{}, FileFormat::kDetect},
              {"data/*.txt", std::nullopt, FileFormat::kCsv},
              {"*.log", std::nullopt, FileFormat::kText},
              {"*.bin", std::nullopt, FileFormat::kBinary}};
  return s;
}

TEST(SettingsCodecTest, EncodesAndDecodesEveryField) {
  DatasetSettings s = Sample();
  TUSK_ASSERT_OK_AND_ASSIGN(DatasetSettings back, DecodeSettings(EncodeSettings(s)));
  EXPECT_EQ(back, s);
}

TEST(SettingsCodecTest, RefusesWhatItCannotTrust) {
  std::string good = EncodeSettings(Sample());
  EXPECT_FALSE(DecodeSettings("").ok());
  EXPECT_FALSE(DecodeSettings(good + "x").ok()) << "trailing bytes";
  for (size_t cut = 1; cut < good.size(); cut += 7) EXPECT_FALSE(DecodeSettings(good.substr(0, cut)).ok()) << cut;
  std::string newer = good;
  newer[0] = 3;
  EXPECT_EQ(DecodeSettings(newer).status().code(), Status::Code::kUnsupported);
  DatasetSettings unsorted = Sample();
  std::swap(unsorted.checks[0], unsorted.checks[1]);
  EXPECT_FALSE(DecodeSettings(EncodeSettings(unsorted)).ok()) << "checks must be sorted by name";
  // An unknown file format in a table rule: the last rule's format byte.
  DatasetSettings one;
  one.dataset = "labels";
  one.tables = {{"x", std::nullopt, FileFormat::kText}};
  std::string bytes = EncodeSettings(one);
  bytes[bytes.size() - 2] = 9;
  EXPECT_FALSE(DecodeSettings(bytes).ok());
}

TEST(SettingsCodecTest, ReadsFormat1WhoseRulesAllHaveKeys) {
  // A format-1 record (store format 4): dataset "labels", no parent, one
  // rule "*.csv" keyed by id, as tusk 0.1 at store format 4 wrote it.
  std::string v1;
  v1 += '\x01';
  v1 += '\x06';
  v1 += "labels";
  v1 += '\x00';                 // no parent
  v1 += '\x00';                 // author ""
  v1 += '\x00';                 // time 0
  v1 += '\x00';                 // change ""
  v1 += '\x00';                 // no checks
  v1 += '\x01';                 // one rule
  v1 += '\x05';
  v1 += "*.csv";
  v1 += '\x01';
  v1 += '\x02';
  v1 += "id";
  TUSK_ASSERT_OK_AND_ASSIGN(DatasetSettings s, DecodeSettings(v1));
  ASSERT_EQ(s.tables.size(), 1u);
  EXPECT_EQ(s.tables[0].key, std::optional(std::vector<std::string>{"id"}));
  EXPECT_EQ(s.tables[0].format, FileFormat::kDetect);
}

TEST(SettingsCodecTest, ADefinitionsDigestIgnoresItsName) {
  CheckDefinition a = Sample().checks[0], b = a;
  b.name = "renamed";
  EXPECT_EQ(a.Digest(), b.Digest());
  b.command.push_back("--more");
  EXPECT_NE(a.Digest(), b.Digest());
  EXPECT_EQ(a.Describe(), "-- python3 lint.py --strict");
  EXPECT_EQ(Sample().checks[1].Describe(), "--builtin csv 'labels/*.csv' --numeric score");
}

TEST(SettingsCodecTest, CheckNamesAreShortAndPlain) {
  TUSK_EXPECT_OK(ValidateCheckName("schema-v2.1_x"));
  for (const std::string& bad : std::vector<std::string>{"", "-x", ".x", "a b", "a/b", std::string(65, 'a'), std::string("a\0b", 3)})
    EXPECT_FALSE(ValidateCheckName(bad).ok()) << bad;
}

TEST(GlobTest, MatchesLikeGitignore) {
  EXPECT_TRUE(GlobMatch("*.csv", "labels.csv"));
  EXPECT_TRUE(GlobMatch("*.csv", "a/b/labels.csv")) << "no slash: the name anywhere";
  EXPECT_FALSE(GlobMatch("*.csv", "labels.csv.bak"));
  EXPECT_TRUE(GlobMatch("labels/*.csv", "labels/a.csv"));
  EXPECT_FALSE(GlobMatch("labels/*.csv", "labels/x/a.csv")) << "* stays within a component";
  EXPECT_FALSE(GlobMatch("labels/*.csv", "other/labels/a.csv"));
  EXPECT_TRUE(GlobMatch("labels/**/*.csv", "labels/a.csv"));
  EXPECT_TRUE(GlobMatch("labels/**/*.csv", "labels/x/y/a.csv"));
  EXPECT_TRUE(GlobMatch("labels/**", "labels/x/y"));
  EXPECT_TRUE(GlobMatch("data/?.txt", "data/a.txt"));
  EXPECT_FALSE(GlobMatch("data/?.txt", "data/ab.txt"));
}

TEST(GlobTest, TheFirstMatchingTableRuleWins) {
  DatasetSettings s = Sample();
  EXPECT_EQ(TableKeyFor(s, "labels/a.csv"), std::optional(std::vector<std::string>{"id"}));
  EXPECT_EQ(TableKeyFor(s, "boxes/x/y.csv"), std::optional(std::vector<std::string>{"image", "box"}));
  EXPECT_EQ(TableKeyFor(s, "notes/a.jsonl"), std::optional(std::vector<std::string>{})) << "keyless";
  EXPECT_EQ(TableKeyFor(s, "other.csv"), std::nullopt) << "no rule: detect";
  EXPECT_EQ(TableKeyFor(s, "data/a.txt"), std::nullopt) << "a format alone: the key is detected";
  EXPECT_EQ(FileFormatFor(s, "data/a.txt"), FileFormat::kCsv);
  EXPECT_EQ(FileFormatFor(s, "x/run.log"), FileFormat::kText);
  EXPECT_EQ(FileFormatFor(s, "labels/a.csv"), FileFormat::kDetect);
  EXPECT_EQ(FileFormatFor(s, "other.csv"), FileFormat::kDetect);
  for (auto f : {FileFormat::kDetect, FileFormat::kCsv, FileFormat::kTsv, FileFormat::kJsonl, FileFormat::kText,
                 FileFormat::kBinary})
    EXPECT_EQ(ParseFileFormat(FileFormatName(f)), f);
  EXPECT_EQ(ParseFileFormat("xml"), std::nullopt);
}

class SettingsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TUSK_ASSERT_OK(Repository::Create(dir_.path(), StoreConfig{}));
    TUSK_ASSERT_OK_AND_ASSIGN(repo_, Repository::Open(dir_.path()));
    TUSK_ASSERT_OK(repo_->CreateDataset("labels"));
  }
  Result<ObjectId> AddCheck(const std::string& name) {
    return UpdateSettings(*repo_, "labels", "alice", "check add " + name, [&](DatasetSettings* s) {
      CheckDefinition c;
      c.name = name;
      c.command = {"true"};
      s->checks.push_back(c);
      return Status::Ok();
    });
  }
  TempDir dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(SettingsStoreTest, ADatasetStartsWithoutSettingsAndEachChangeIsAVersion) {
  TUSK_ASSERT_OK_AND_ASSIGN(CurrentSettings none, ReadCurrentSettings(*repo_, "labels"));
  EXPECT_FALSE(none.id);
  EXPECT_TRUE(none.settings.checks.empty());
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId v1, AddCheck("b"));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId v2, AddCheck("a"));
  TUSK_ASSERT_OK_AND_ASSIGN(CurrentSettings now, ReadCurrentSettings(*repo_, "labels"));
  EXPECT_EQ(now.id, v2);
  ASSERT_EQ(now.settings.checks.size(), 2u);
  EXPECT_EQ(now.settings.checks[0].name, "a") << "kept sorted by name";
  EXPECT_EQ(now.settings.parent, v1);
  EXPECT_EQ(now.settings.change, "check add a");
  TUSK_ASSERT_OK_AND_ASSIGN(auto history, SettingsHistory(*repo_, "labels"));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].first, v2);
  EXPECT_EQ(history[1].first, v1);
  // Branches and tags are not disturbed by the settings head.
  TUSK_ASSERT_OK_AND_ASSIGN(auto branches, repo_->ListBranches("labels"));
  EXPECT_EQ(branches.size(), 1u);
  TUSK_ASSERT_OK_AND_ASSIGN(auto datasets, repo_->ListDatasets());
  EXPECT_EQ(datasets[0].branch_count, 1u);
  EXPECT_EQ(datasets[0].tag_count, 0u);
}

TEST_F(SettingsStoreTest, AnEditThatRefusesChangesNothing) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId v1, AddCheck("a"));
  auto refused = UpdateSettings(*repo_, "labels", "bob", "nothing",
                                [](DatasetSettings*) { return Status::NotFound("no such check"); });
  EXPECT_EQ(refused.status().code(), Status::Code::kNotFound);
  TUSK_ASSERT_OK_AND_ASSIGN(auto head, repo_->GetSettingsHead("labels"));
  EXPECT_EQ(head, v1);
}

TEST_F(SettingsStoreTest, TheHeadMovesOnlyFromWhereTheWriterSawIt) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId v1, AddCheck("a"));
  TUSK_ASSERT_OK_AND_ASSIGN(auto session, repo_->BeginWrite());
  DatasetSettings s;
  s.dataset = "labels";
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId other, session->WriteObject(ObjectType::kSettings, EncodeSettings(s)));
  Status lost = session->SetSettingsHead("labels", other, std::nullopt);
  EXPECT_EQ(lost.code(), Status::Code::kConflict) << lost.ToString();
  TUSK_ASSERT_OK_AND_ASSIGN(auto head, repo_->GetSettingsHead("labels"));
  EXPECT_EQ(head, v1);
}

TEST_F(SettingsStoreTest, GcKeepsEveryVersionAndARebuiltIndexFindsTheHead) {
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId v1, AddCheck("a"));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId v2, AddCheck("b"));
  TUSK_ASSERT_OK_AND_ASSIGN(GcReport gc, repo_->CollectGarbage(false, nullptr));
  (void)gc;
  TUSK_ASSERT_OK_AND_ASSIGN(auto history, SettingsHistory(*repo_, "labels"));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[1].first, v1);
  repo_.reset();
  TUSK_ASSERT_OK_AND_ASSIGN(RebuildReport report, Repository::RebuildIndex(dir_.path(), nullptr));
  EXPECT_EQ(report.settings, 1u);
  EXPECT_EQ(report.branches, 1u);
  EXPECT_EQ(report.tags, 0u);
  TUSK_ASSERT_OK_AND_ASSIGN(repo_, Repository::Open(dir_.path()));
  TUSK_ASSERT_OK_AND_ASSIGN(auto head, repo_->GetSettingsHead("labels"));
  EXPECT_EQ(head, v2);
  TUSK_ASSERT_OK_AND_ASSIGN(FsckReport fsck, repo_->Check(nullptr));
  EXPECT_TRUE(fsck.problems.empty()) << fsck.problems[0].object << ": " << fsck.problems[0].error;
}

TEST_F(SettingsStoreTest, ADeletedDatasetTakesItsSettingsAlong) {
  TUSK_ASSERT_OK(AddCheck("a").status());
  TUSK_ASSERT_OK(repo_->DeleteDataset("labels"));
  TUSK_ASSERT_OK(repo_->CreateDataset("labels"));
  TUSK_ASSERT_OK_AND_ASSIGN(auto head, repo_->GetSettingsHead("labels"));
  EXPECT_FALSE(head) << "a new dataset of the same name starts without settings";
}

TEST(CommitChecksTest, ACommitRecordsItsSettingsAndCheckResults) {
  Commit c;
  c.dataset = "labels";
  c.root = Sha256::Of("r", 1);
  c.settings = Sha256::Of("s", 1);
  c.checks = {{"lint", CheckResult::Outcome::kPassed, 12, ""},
              {"schema", CheckResult::Outcome::kFailed, 340, "labels/a.csv:3: ragged\n"}};
  TUSK_ASSERT_OK_AND_ASSIGN(Commit back, DecodeCommit(EncodeCommit(c)));
  EXPECT_EQ(back, c);
  c.checks = {{"lint", CheckResult::Outcome::kSkipped, 0, ""}};
  c.checks_skipped_by = "bob";
  c.checks_skipped_reason = "hotfix";
  TUSK_ASSERT_OK_AND_ASSIGN(back, DecodeCommit(EncodeCommit(c)));
  EXPECT_EQ(back, c);
}

TEST(CommitChecksTest, ACommitWithoutSettingsKeepsItsFormatOneEncoding) {
  Commit c;
  c.dataset = "labels";
  c.root = Sha256::Of("r", 1);
  EXPECT_EQ(EncodeCommit(c)[0], 1) << "commit ids of datasets without settings do not change";
}

}  // namespace
}  // namespace tusk
