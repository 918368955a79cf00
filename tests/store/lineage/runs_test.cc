// Run records in the store (store/lineage/lineage.h): their encoding, read
// sets stored as cut-down trees, the index that lists them, gc keeping what
// a run needs to be reproduced, and an index rebuild finding them again.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/importer.h"
#include "store/lineage/lineage.h"
#include "store/repository.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using ::tusk::test_util::TempDir;
using ::tusk::test_util::WriteFile;

RunRecord SampleRun() {
  RunRecord r;
  r.argv = {"python3", "train.py", "--lr", "0.1", "", "a b\n"};
  r.cwd = "/home/me/project";
  r.start_ns = 1796615472123456789;
  r.end_ns = r.start_ns + 5;
  r.exit_status = 0;
  r.user = "me";
  r.host = "box";
  r.tusk_version = "tusk 0.1.0";
  r.message = "train";
  RunInput in;
  in.name = "data";
  in.dataset = "raw";
  in.ref = "raw@main";
  in.commit = Sha256::Of("c", 1);
  in.read_tree = Sha256::Of("t", 1);
  in.files_read = 7;
  in.dirs_listed = 0;
  r.inputs.push_back(in);
  r.env = {{"CUDA_VISIBLE_DEVICES", "0"}};
  r.meta = {{"lr", "0.1"}, {"seed", "1"}};
  r.code = CodeVersion{"/home/me/project", "0123abcd", "main", true, "ff00"};
  r.out_dataset = "model";
  r.out_branch = "main";
  r.out_parent = Sha256::Of("p", 1);
  return r;
}

TEST(RunRecordTest, EncodesAndDecodesEveryField) {
  RunRecord r = SampleRun();
  auto back = DecodeRun(EncodeRun(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  r.code.reset();
  r.out_parent.reset();
  r.out_dataset.clear();
  r.out_branch.clear();
  r.exit_status = 128 + 9;
  back = DecodeRun(EncodeRun(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
}

TEST(RunRecordTest, RefusesEveryTruncationAndTrailingBytes) {
  std::string bytes = EncodeRun(SampleRun());
  for (size_t n = 0; n < bytes.size(); n++) EXPECT_FALSE(DecodeRun(bytes.substr(0, n)).ok()) << "cut at " << n;
  EXPECT_FALSE(DecodeRun(bytes + "x").ok());
  std::string newer = bytes;
  newer[0] = 2;
  EXPECT_EQ(DecodeRun(newer).status().code(), Status::Code::kUnsupported);
}

TEST(CommitRunTest, ACommitWithARunIsFormat2AndOneWithoutKeepsFormat1) {
  Commit c;
  c.dataset = "model";
  c.root = Sha256::Of("r", 1);
  c.author = "me";
  c.message = "m";
  std::string plain = EncodeCommit(c);
  EXPECT_EQ(plain[0], 1) << "commits without a run keep their encoding, and so their ids";
  c.run = Sha256::Of("run", 3);
  std::string with_run = EncodeCommit(c);
  EXPECT_EQ(with_run[0], 2);
  auto back = DecodeCommit(with_run);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
  for (size_t n = 0; n < with_run.size(); n++) EXPECT_FALSE(DecodeCommit(with_run.substr(0, n)).ok()) << n;
  // An unknown odd (critical) extension is refused, an unknown even one skipped.
  std::string odd = plain;
  odd[0] = 2;
  odd += std::string("\x01\x03\x00", 3);
  EXPECT_EQ(DecodeCommit(odd).status().code(), Status::Code::kUnsupported);
  std::string even = plain;
  even[0] = 2;
  even += std::string("\x01\x64\x01x", 4);  // tag 100: not one this version knows (4 and 6 are)
  auto skipped = DecodeCommit(even);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_FALSE(skipped->run.has_value());
}

class RunStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    ASSERT_TRUE(Repository::Create(store_, StoreConfig{}).ok());
    Reopen();
    ASSERT_TRUE(repo_->CreateDataset("raw").ok());
    ASSERT_TRUE(repo_->CreateDataset("model").ok());
    src_ = tmp_.Sub("src");
    std::filesystem::create_directories(src_ + "/d1");
    std::filesystem::create_directories(src_ + "/d2");
    WriteFile(src_ + "/top.txt", "top\n");
    for (int i = 0; i < 5; i++) {
      WriteFile(src_ + "/d1/f" + std::to_string(i), "one " + std::to_string(i));
      WriteFile(src_ + "/d2/f" + std::to_string(i), "two " + std::to_string(i));
    }
    raw_ = Import(src_, "raw");
  }

  void Reopen() {
    repo_.reset();
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
  }

  ObjectId Import(const std::string& dir, const std::string& dataset, std::optional<ObjectId> run = std::nullopt) {
    ImportOptions options;
    options.message = "import";
    options.author = "test";
    options.run = run;
    options.commit_unchanged = true;
    auto r = ImportDirectory(*repo_, dir, dataset, "main", options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->commit ? *r->commit : ObjectId();
  }

  // The read set of opening `paths` (and listing `dirs`) in raw@main.
  ReadSet Reads(const std::vector<std::string>& paths, const std::vector<std::string>& dirs = {}) {
    auto commit = repo_->ReadCommit(raw_);
    EXPECT_TRUE(commit.ok());
    ReadSet set;
    for (const auto& p : paths) {
      auto e = LookupPath(*repo_, commit->root, p);
      EXPECT_TRUE(e.ok()) << p;
      if (e.ok()) set.files.emplace(p, *e);
    }
    set.dirs.insert(dirs.begin(), dirs.end());
    return set;
  }

  // Records a run of raw@main that read `reads`.
  ObjectId RecordRun(const ReadSet& reads, RunInput* input_out = nullptr) {
    auto commit = repo_->ReadCommit(raw_);
    auto session = repo_->BeginWrite();
    EXPECT_TRUE(session.ok());
    RunRecord run = SampleRun();
    RunInput in;
    in.name = "raw";
    in.dataset = "raw";
    in.ref = "raw@main";
    in.commit = raw_;
    Status st = WriteReadSet(*repo_, **session, commit->root, reads, &in);
    EXPECT_TRUE(st.ok()) << st.ToString();
    run.inputs = {in};
    auto id = (*session)->WriteRun(run);
    EXPECT_TRUE(id.ok());
    EXPECT_TRUE((*session)->Flush().ok());
    if (input_out) *input_out = in;
    return *id;
  }

  std::vector<std::string> ReadPaths(const RunInput& in) {
    std::vector<std::string> out;
    Status st = ForEachReadFile(*repo_, in.read_tree, [&](const std::string& p, const TreeEntry&) {
      out.push_back(p);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  TempDir tmp_;
  std::string store_, src_;
  std::unique_ptr<Repository> repo_;
  ObjectId raw_;
};

TEST_F(RunStoreTest, AReadSetHoldsExactlyTheFilesOpenedWithTheirContentIds) {
  RunInput in;
  RecordRun(Reads({"d1/f1", "d2/f3", "top.txt"}, {"", "d1"}), &in);
  EXPECT_EQ(in.files_read, 3u);
  EXPECT_EQ(in.dirs_listed, 2u);
  EXPECT_EQ(ReadPaths(in), (std::vector<std::string>{"d1/f1", "d2/f3", "top.txt"}));
  auto listed = ReadListedDirs(*repo_, in);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, (std::vector<std::string>{"", "d1"}));
  auto commit = repo_->ReadCommit(raw_);
  auto entry = LookupPath(*repo_, in.read_tree, "d2/f3");
  auto original = LookupPath(*repo_, commit->root, "d2/f3");
  ASSERT_TRUE(entry.ok() && original.ok());
  EXPECT_EQ(*entry, *original) << "the same entry: same chunks, the content id of what was read";
}

TEST_F(RunStoreTest, AReadSetOfTheWholeInputIsTheInputsOwnTree) {
  std::vector<std::string> all = {"top.txt"};
  for (int i = 0; i < 5; i++) {
    all.push_back("d1/f" + std::to_string(i));
    all.push_back("d2/f" + std::to_string(i));
  }
  RunInput in;
  RecordRun(Reads(all), &in);
  EXPECT_EQ(in.read_tree, repo_->ReadCommit(raw_)->root) << "reading everything stores no new tree page";
  RunInput part;
  RecordRun(Reads({"d1/f0", "d1/f1", "d1/f2", "d1/f3", "d1/f4"}), &part);
  auto whole_d1 = LookupPath(*repo_, repo_->ReadCommit(raw_)->root, "d1");
  auto part_d1 = LookupPath(*repo_, part.read_tree, "d1");
  ASSERT_TRUE(whole_d1.ok() && part_d1.ok());
  EXPECT_EQ(part_d1->tree, whole_d1->tree) << "a directory read whole is the input's own page";
}

TEST_F(RunStoreTest, RunsAreListedResolvedByPrefixAndLinkedToTheirOutputs) {
  ObjectId run = RecordRun(Reads({"top.txt"}));
  auto listed = repo_->ListRuns();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, run);
  EXPECT_TRUE((*listed)[0].outputs.empty());
  EXPECT_EQ(*repo_->ResolveRun("run:" + run.Hex().substr(0, 6)), run);
  EXPECT_EQ(*repo_->ResolveRun(run.Hex().substr(0, 10)), run);
  std::string other = run.Hex().substr(0, 8);
  other[0] = other[0] == '0' ? '1' : '0';
  EXPECT_EQ(repo_->ResolveRun("run:" + other).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(repo_->ResolveRun("run:xyz").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(repo_->ResolveRun("run:ab").status().code(), Status::Code::kInvalidArgument);
  auto reading = repo_->RunsReading(raw_);
  ASSERT_TRUE(reading.ok());
  EXPECT_EQ(*reading, std::vector<ObjectId>{run});

  std::string out = tmp_.Sub("out");
  std::filesystem::create_directories(out);
  WriteFile(out + "/model.bin", "weights");
  ObjectId output = Import(out, "model", run);
  EXPECT_EQ(repo_->ReadCommit(output)->run, run);
  EXPECT_EQ(*repo_->RunOutputs(run), std::vector<ObjectId>{output});
}

TEST_F(RunStoreTest, GcKeepsARunsRecordReadSetAndInputCommitsWhenNoRefReachesThem) {
  // Two side branches with content of their own; a run reads one of them.
  auto side_commit = [&](const std::string& branch, const std::string& content) {
    std::string dir = tmp_.Sub(branch);
    std::filesystem::create_directories(dir);
    WriteFile(dir + "/only.txt", content);
    EXPECT_TRUE(repo_->CreateBranch("raw", branch, std::nullopt).ok());
    ImportOptions options;
    options.message = branch;
    auto r = ImportDirectory(*repo_, dir, "raw", branch, options);
    EXPECT_TRUE(r.ok() && r->commit);
    return *r->commit;
  };
  ObjectId read = side_commit("side", "read by a run");
  ObjectId unread = side_commit("other", "read by nobody");
  raw_ = read;
  RunInput in;
  ObjectId run = RecordRun(Reads({"only.txt"}, {""}), &in);
  ASSERT_TRUE(repo_->DeleteBranch("raw", "side").ok());
  ASSERT_TRUE(repo_->DeleteBranch("raw", "other").ok());
  auto gc = repo_->CollectGarbage(false, nullptr);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_FALSE(repo_->ReadCommit(unread).ok()) << "a commit no ref and no run reaches is garbage";
  auto again = repo_->ReadRun(run);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto input = repo_->ReadCommit(read);
  ASSERT_TRUE(input.ok()) << "the input commit of a run stays: " << input.status().ToString();
  auto file = LookupPath(*repo_, input->root, "only.txt");
  ASSERT_TRUE(file.ok());
  auto chunk = repo_->ReadObject(file->chunks.at(0).id, ObjectType::kChunk);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(*chunk, "read by a run");
  EXPECT_EQ(ReadPaths(in), std::vector<std::string>{"only.txt"});
  auto listed = ReadListedDirs(*repo_, in);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(*listed, std::vector<std::string>{""});
  auto fsck = repo_->Check(nullptr);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->problems.empty()) << fsck->problems.front().object << ": " << fsck->problems.front().error;
}

TEST_F(RunStoreTest, DriftCountsOnlyWhatTheRunReadOrListed) {
  ObjectId run = RecordRun(Reads({"d1/f1"}, {"d1"}));
  auto record = repo_->ReadRun(run);
  ASSERT_TRUE(record.ok());
  auto drift = [&] {
    auto d = DriftOf(*repo_, *record);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() && d->size() == 1 ? (*d)[0] : InputDrift{};
  };
  InputDrift still = drift();
  EXPECT_EQ(still.branch, "main");
  EXPECT_FALSE(still.moved);
  // An unread file changes: moved, nothing the run read changed.
  WriteFile(src_ + "/d2/f0", "changed");
  Import(src_, "raw");
  InputDrift unread = drift();
  EXPECT_TRUE(unread.moved);
  EXPECT_TRUE(unread.changed.empty()) << unread.changed.front();
  // A name appears in the listed directory.
  WriteFile(src_ + "/d1/new", "new");
  Import(src_, "raw");
  EXPECT_EQ(drift().changed, std::vector<std::string>{"d1/"});
  // The directory the run read in becomes a file.
  std::filesystem::remove_all(src_ + "/d1");
  WriteFile(src_ + "/d1", "now a file");
  Import(src_, "raw");
  EXPECT_EQ(drift().changed, std::vector<std::string>{"d1/"});
  std::filesystem::remove(src_ + "/d1");
  std::filesystem::create_directories(src_ + "/d1");
  WriteFile(src_ + "/d1/f1", "one 1");
  WriteFile(src_ + "/d1/f2", "one 2 changed");
  Import(src_, "raw");
  InputDrift back = drift();
  EXPECT_EQ(back.changed, std::vector<std::string>{"d1/"}) << "f1 is the same again, but d1 lost names";
}

TEST_F(RunStoreTest, AnIndexRebuildFindsEveryRunAndItsOutput) {
  ObjectId run = RecordRun(Reads({"top.txt"}));
  std::string out = tmp_.Sub("out");
  std::filesystem::create_directories(out);
  WriteFile(out + "/model.bin", "weights");
  ObjectId output = Import(out, "model", run);
  repo_.reset();
  std::filesystem::remove(store_ + "/index/data.mdb");
  auto rebuilt = Repository::RebuildIndex(store_, nullptr);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  EXPECT_EQ(rebuilt->runs, 1u);
  Reopen();
  auto listed = repo_->ListRuns();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, run);
  EXPECT_EQ((*listed)[0].outputs, std::vector<ObjectId>{output});
  EXPECT_EQ(*repo_->RunsReading(raw_), std::vector<ObjectId>{run});
}

}  // namespace
}  // namespace tusk
