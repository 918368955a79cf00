// The power-loss test of issue 9. A random workload (imports of generated
// trees to several branches, branches and tags created and deleted, gc)
// runs on a store whose file seam is a FaultEnv (tests/store/fault_env.h)
// that loses power at a random call. What the disk holds afterwards must
// keep every operation that returned before the loss, under each of three
// models of the LMDB index, which does its own I/O outside the seam
// (DECISIONS.md, "Storage: two seams"):
//   (a) as LMDB left it: its last commit, which LMDB made durable;
//   (b) rolled back to an older durable state (a copy taken between two
//       operations before the loss): opened as it is, fsck must notice it
//       is stale unless it lacks nothing; then rebuilt from the packs;
//   (c) lost, then rebuilt from the packs.
// The operation the loss interrupted may or may not be there; whatever is
// there must read back correctly, and fsck must find nothing wrong. Then
// the recovered store must still work: gc, fsck, one more commit.
//
// TUSK_POWER_LOSS_RUNS sets the number of runs (default 25, 10 in a
// sanitizer build; tools/test.sh --long runs 400) and TUSK_POWER_LOSS_SEED the seed of the first (run r
// uses seed + r; by default a random one). Every run prints its seed:
// TUSK_POWER_LOSS_SEED=<seed> TUSK_POWER_LOSS_RUNS=1 replays it. The replay
// makes the same operations and cuts at the same call, but pack names come
// from getrandom, so which fan-out directories are new may differ.
//
// The file also specifies FaultEnv itself, first.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "store/backend/env.h"
#include "store/exporter.h"
#include "store/importer.h"
#include "store/repository.h"
#include "tests/sanitizer_scale.h"
#include "tests/store/fault_env.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

namespace fs = std::filesystem;
using test_util::FaultEnv;
using test_util::RandomBytes;
using test_util::ScratchDir;
using test_util::ReadFile;
using test_util::TempDir;
using test_util::WriteFile;

// ---------------------------------------------------------------------------
// FaultEnv

class FaultEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(root_); }

  // A file made durable as a pack is: its content synced, then its
  // directory.
  void MakeDurableFile(const std::string& path, std::string_view content) {
    auto file = env_.CreateExclusive(path, 0644);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    TUSK_ASSERT_OK((*file)->Write(0, content));
    TUSK_ASSERT_OK((*file)->Sync());
    TUSK_ASSERT_OK(env_.SyncDir(fs::path(path).parent_path()));
  }

  TempDir tmp_;
  std::string root_ = tmp_.Sub("root");
  FaultEnv env_{tmp_.Sub("shadow")};
};

TEST_F(FaultEnvTest, BytesWrittenAfterTheLastSyncAreDropped) {
  std::string path = root_ + "/pack";
  auto file = env_.CreateExclusive(path, 0444);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  TUSK_ASSERT_OK(env_.SyncDir(root_));
  TUSK_ASSERT_OK((*file)->Write(0, "durable"));
  TUSK_ASSERT_OK((*file)->Sync());
  TUSK_ASSERT_OK((*file)->Write(7, " but not this"));
  file->reset();

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(ReadFile(path), "durable");
}

TEST_F(FaultEnvTest, AFileNeverSyncedIsEmptyEvenIfItsNameIsDurable) {
  std::string path = root_ + "/file";
  auto file = env_.CreateExclusive(path, 0644);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  TUSK_ASSERT_OK((*file)->Write(0, "never synced"));
  TUSK_ASSERT_OK(env_.SyncDir(root_));
  file->reset();

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::file_size(path), 0u);
}

TEST_F(FaultEnvTest, ACreatedFileWhoseDirectoryWasNotSyncedIsGone) {
  std::string path = root_ + "/new";
  auto file = env_.CreateExclusive(path, 0644);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  TUSK_ASSERT_OK((*file)->Write(0, "synced data, unsynced name"));
  TUSK_ASSERT_OK((*file)->Sync());
  file->reset();

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(FaultEnvTest, ARenameWithoutDirectorySyncIsUndone) {
  std::string config = root_ + "/config";
  MakeDurableFile(config, "old");
  auto tmp = env_.CreateExclusive(config + ".tmp", 0644);
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  TUSK_ASSERT_OK((*tmp)->Write(0, "new"));
  TUSK_ASSERT_OK((*tmp)->Sync());
  tmp->reset();
  TUSK_ASSERT_OK(env_.Rename(config + ".tmp", config));
  ASSERT_EQ(ReadFile(config), "new");

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(ReadFile(config), "old");
  EXPECT_FALSE(fs::exists(config + ".tmp"));
}

TEST_F(FaultEnvTest, AnAtomicWriteSurvives) {
  std::string config = root_ + "/config";
  MakeDurableFile(config, "old");
  TUSK_ASSERT_OK(WriteFileAtomically(&env_, config, "new"));

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(ReadFile(config), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(root_), fs::directory_iterator()), 1);
}

TEST_F(FaultEnvTest, ARemoveWithoutDirectorySyncIsUndone) {
  std::string path = root_ + "/pack";
  MakeDurableFile(path, "durable content");
  TUSK_ASSERT_OK(env_.Remove(path));
  ASSERT_FALSE(fs::exists(path));

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(ReadFile(path), "durable content");
}

TEST_F(FaultEnvTest, ARemoveFollowedByADirectorySyncStays) {
  std::string path = root_ + "/pack";
  MakeDurableFile(path, "durable content");
  TUSK_ASSERT_OK(env_.Remove(path));
  TUSK_ASSERT_OK(env_.SyncDir(root_));

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(FaultEnvTest, ANewDirectoryIsDurableOnlyOnceItsParentIsSynced) {
  // Made as a pack is (packs/ab/<pack>): the file, then ab, then packs; but
  // only "synced" is then named in root.
  for (std::string sub : {"synced", "late"}) {
    std::string dir = root_ + "/" + sub + "/ab";
    TUSK_ASSERT_OK(env_.MakeDirs(dir, 0755));
    MakeDurableFile(dir + "/pack", "records");
    TUSK_ASSERT_OK(env_.SyncDir(root_ + "/" + sub));
    if (sub == "synced") TUSK_ASSERT_OK(env_.SyncDir(root_));
  }

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(ReadFile(root_ + "/synced/ab/pack"), "records");
  EXPECT_FALSE(fs::exists(root_ + "/late"));
}

TEST_F(FaultEnvTest, ThePowerGoesOutAtTheChosenCallAndEverythingAfterFails) {
  MakeDurableFile(root_ + "/a", "abc");
  auto reader = env_.OpenForRead(root_ + "/a");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  env_.SetFailAfter(2);
  auto file = env_.CreateExclusive(root_ + "/b", 0644);  // 1
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  TUSK_ASSERT_OK((*file)->Write(0, "x"));  // 2
  EXPECT_FALSE(env_.power_lost());

  Status sync = (*file)->Sync();  // 3: the power goes out
  EXPECT_EQ(sync.code(), Status::Code::kIoError);
  EXPECT_EQ(sync.sys_errno(), EIO);
  EXPECT_TRUE(env_.power_lost());
  EXPECT_EQ(env_.mutating_calls(), 6u);  // four to make "a" durable, two here
  char byte;
  EXPECT_EQ((*reader)->Read(0, 1, &byte).sys_errno(), EIO);
  EXPECT_EQ(env_.OpenForRead(root_ + "/a").status().sys_errno(), EIO);
  EXPECT_EQ(env_.ListDir(root_).status().sys_errno(), EIO);
  EXPECT_EQ(env_.FileSize(root_ + "/a").status().sys_errno(), EIO);
  EXPECT_EQ(env_.SyncDir(root_).sys_errno(), EIO);
  file->reset();

  TUSK_ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(ReadFile(root_ + "/a"), "abc");
  EXPECT_FALSE(fs::exists(root_ + "/b"));
}

// ---------------------------------------------------------------------------
// The workload

constexpr char kDataset[] = "d";
constexpr int kOps = 14;  // operation 0 creates the dataset

using FileMap = std::map<std::string, std::string>;  // path in a tree -> content
// Refs by key ("branch main", "tag v1") -> the commit each points at (none:
// a branch with no commit yet).
using Refs = std::map<std::string, std::optional<ObjectId>>;
// A ref's state: absent, or present (at a commit or at none).
using RefState = std::optional<std::optional<ObjectId>>;

std::string BranchKey(const std::string& name) { return "branch " + name; }
std::string TagKey(const std::string& name) { return "tag " + name; }

RefState Find(const Refs& refs, const std::string& key) {
  auto it = refs.find(key);
  return it == refs.end() ? RefState() : RefState(it->second);
}

std::string Show(const RefState& ref) {
  if (!ref) return "absent";
  return *ref ? "at " + (*ref)->ShortHex() : "at no commit";
}

struct Op {
  enum class Kind { kCreateDataset, kImport, kCreateBranch, kDeleteBranch, kCreateTag, kDeleteTag, kGc };
  Kind kind = Kind::kGc;
  int index = 0;
  std::string name;            // the branch or tag
  std::optional<ObjectId> at;  // where a branch or tag is created

  // The ref it changes, if any.
  std::string RefKey() const {
    switch (kind) {
      case Kind::kCreateDataset:
        return BranchKey("main");  // a new dataset's empty main
      case Kind::kImport:
      case Kind::kCreateBranch:
      case Kind::kDeleteBranch:
        return BranchKey(name);
      case Kind::kCreateTag:
      case Kind::kDeleteTag:
        return TagKey(name);
      case Kind::kGc:
        break;
    }
    return "";
  }
  std::string Describe() const {
    std::string what;
    switch (kind) {
      case Kind::kCreateDataset:
        what = "create dataset";
        break;
      case Kind::kImport:
        what = "import to branch " + name;
        break;
      case Kind::kCreateBranch:
        what = "create branch " + name + (at ? " at " + at->ShortHex() : " with no commit");
        break;
      case Kind::kDeleteBranch:
        what = "delete branch " + name;
        break;
      case Kind::kCreateTag:
        what = "create tag " + name + " at " + at->ShortHex();
        break;
      case Kind::kDeleteTag:
        what = "delete tag " + name;
        break;
      case Kind::kGc:
        what = "gc";
        break;
    }
    return "op " + std::to_string(index) + " (" + what + ")";
  }
};

struct CommitRecord {
  FileMap files;
  std::string made_by;  // the operation
};

// What a workload did: the store as the operations that returned OK left
// it, and the operation the power loss interrupted.
struct History {
  bool dataset = false;
  Refs refs;
  std::map<std::string, std::string> set_by;  // ref key -> the operation that last changed it
  std::map<ObjectId, CommitRecord> commits;   // every commit an import returned
  std::vector<uint64_t> calls_before;         // mutating calls before operation i, and after the last
  int completed = 0;
  std::optional<Op> interrupted;
  Status interruption;  // how it failed
  FileMap importing;    // the tree of the last import begun (the interrupted one, if it is one)
};

// Generates and runs the operations of one seed. Each choice depends only
// on the seed and on what earlier operations returned, so a dry run and a
// run that loses power make the same operations up to the loss.
class Workload {
 public:
  Workload(uint64_t seed, std::string sources_dir) : rng_(seed), sources_dir_(std::move(sources_dir)) {}

  // Creates a store in `store` through `env`, then runs the operations
  // until all are done or one fails. `between(i)` runs before operation i
  // and, with i == kOps, after the last.
  History Run(const std::string& store, FaultEnv& env, const std::function<void(int)>& between) {
    History h;
    Status created = Repository::Create(store, StoreConfig{}, &env);
    if (!created.ok()) {
      ADD_FAILURE() << "creating the store: " << created.ToString();
      return h;
    }
    auto repo = Repository::Open(store, StoreAccess::kReadWrite, &env);
    if (!repo.ok()) {
      ADD_FAILURE() << "opening the store: " << repo.status().ToString();
      return h;
    }
    uint64_t base = env.mutating_calls();
    for (int i = 0;; i++) {
      h.calls_before.push_back(env.mutating_calls() - base);
      between(i);
      if (i == kOps) break;
      Op op = Choose(i, h);
      Status st = Apply(**repo, op, &h);
      if (!st.ok()) {
        h.interrupted = op;
        h.interruption = st;
        break;
      }
      h.completed++;
    }
    return h;
  }

 private:
  struct Source {
    std::string dir;
    FileMap files;  // what `dir` holds
  };

  uint64_t Uniform(uint64_t n) { return rng_() % n; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(v.size())];
  }

  Op Choose(int index, const History& h) {
    Op op;
    op.index = index;
    if (index == 0) {
      op.kind = Op::Kind::kCreateDataset;
      return op;
    }
    std::vector<std::string> branches, tags;
    std::vector<std::optional<ObjectId>> targets;  // for a new branch
    std::vector<ObjectId> commits;                 // for a new tag
    for (const auto& [key, at] : h.refs) {
      if (key.starts_with("branch "))
        branches.push_back(key.substr(7));
      else
        tags.push_back(key.substr(4));
      targets.push_back(at);
      if (at) commits.push_back(*at);
    }
    uint64_t dice = Uniform(100);
    if (dice < 12) {
      op.name = "b" + std::to_string(1 + Uniform(4));  // names come back after a delete
      op.at = Pick(targets);
      if (!h.refs.count(BranchKey(op.name))) {
        op.kind = Op::Kind::kCreateBranch;
        return op;
      }
    } else if (dice < 20 && branches.size() > 1) {
      op.name = Pick(branches);
      if (op.name != "main") {
        op.kind = Op::Kind::kDeleteBranch;
        return op;
      }
    } else if (dice < 30 && !commits.empty()) {
      op.name = "v" + std::to_string(1 + Uniform(3));
      op.at = Pick(commits);
      if (!h.refs.count(TagKey(op.name))) {
        op.kind = Op::Kind::kCreateTag;
        return op;
      }
    } else if (dice < 37 && !tags.empty()) {
      op.kind = Op::Kind::kDeleteTag;
      op.name = Pick(tags);
      return op;
    } else if (dice < 47) {
      op.kind = Op::Kind::kGc;
      return op;
    }
    op.kind = Op::Kind::kImport;
    op.name = Pick(branches);
    op.at.reset();
    return op;
  }

  // Runs `op`; when it returns OK, records what it did in `h`.
  Status Apply(Repository& repo, const Op& op, History* h) {
    std::string key = op.RefKey();
    switch (op.kind) {
      case Op::Kind::kCreateDataset:
        TUSK_RETURN_IF_ERROR(repo.CreateDataset(kDataset));
        h->dataset = true;
        ResetSource("main", FileMap());
        return SetRef(h, key, std::nullopt, op);
      case Op::Kind::kImport:
        return Import(repo, op, h);
      case Op::Kind::kCreateBranch:
        TUSK_RETURN_IF_ERROR(repo.CreateBranch(kDataset, op.name, op.at));
        ResetSource(op.name, op.at ? h->commits.at(*op.at).files : FileMap());
        return SetRef(h, key, op.at, op);
      case Op::Kind::kDeleteBranch:
        TUSK_RETURN_IF_ERROR(repo.DeleteBranch(kDataset, op.name));
        return SetRef(h, key, std::nullopt, op);
      case Op::Kind::kCreateTag:
        TUSK_RETURN_IF_ERROR(repo.CreateTag(kDataset, op.name, *op.at));
        return SetRef(h, key, op.at, op);
      case Op::Kind::kDeleteTag:
        TUSK_RETURN_IF_ERROR(repo.DeleteTag(kDataset, op.name));
        return SetRef(h, key, std::nullopt, op);
      case Op::Kind::kGc:
        return repo.CollectGarbage(false, nullptr).status();
    }
    return Status::InvalidArgument("unknown operation");
  }

  // A delete leaves the ref absent; anything else sets it to `at`.
  static Status SetRef(History* h, const std::string& key, std::optional<ObjectId> at, const Op& op) {
    if (op.kind == Op::Kind::kDeleteBranch || op.kind == Op::Kind::kDeleteTag)
      h->refs.erase(key);
    else
      h->refs[key] = at;
    h->set_by[key] = op.Describe();
    return Status::Ok();
  }

  Status Import(Repository& repo, const Op& op, History* h) {
    Source& src = sources_.at(op.name);
    FileMap next = src.files;
    Mutate(&next);
    UpdateSource(&src, next);
    h->importing = next;
    ImportOptions options;
    options.message = op.Describe();
    options.author = "power-loss test";
    options.threads = static_cast<unsigned>(1 + Uniform(2));
    options.warn = [](const std::string&) {};
    TUSK_ASSIGN_OR_RETURN(ImportResult result, ImportDirectory(repo, src.dir, kDataset, op.name, options));
    // Mutate always adds a file, so every import commits.
    if (!result.commit) return Status::InvalidArgument(op.Describe() + " made no commit");
    h->commits[*result.commit] = {std::move(next), op.Describe()};
    return SetRef(h, op.RefKey(), result.commit, op);
  }

  // Deletes and changes a few files, then adds some: the tree always
  // changes, and most of it stays as it was (what gc and dedup work on).
  void Mutate(FileMap* tree) {
    if (tree->size() > 4 && Uniform(3) == 0) tree->erase(std::next(tree->begin(), Uniform(tree->size())));
    for (uint64_t n = tree->empty() ? 0 : Uniform(3); n > 0; n--) {
      auto it = std::next(tree->begin(), Uniform(tree->size()));
      if (Uniform(2) == 0)
        it->second = NewContent();
      else
        it->second.insert(Uniform(it->second.size() + 1), "a small edit");  // most chunks stay
    }
    for (uint64_t n = tree->empty() ? 3 + Uniform(4) : 1 + Uniform(3); n > 0; n--) {
      std::string dir = Uniform(3) == 0 ? "dir" + std::to_string(Uniform(3)) + "/" : "";
      (*tree)[dir + "f" + std::to_string(next_file_++)] = NewContent();
    }
  }

  // Mostly small files, some over 1 MiB (several chunks, so several records
  // per pack), some text (compressed), some copies of earlier ones (shared
  // chunks).
  std::string NewContent() {
    if (!pool_.empty() && Uniform(100) < 15) return Pick(pool_);
    uint64_t kind = Uniform(100);
    size_t size = kind < 10   ? (1 << 20) + Uniform(3 << 19)
                  : kind < 30 ? (32 << 10) + Uniform(480 << 10)
                              : Uniform(32 << 10);
    std::string content;
    if (Uniform(3) == 0) {
      for (uint64_t row = Uniform(1000); content.size() < size; row++)
        content += "row " + std::to_string(row) + ",label " + std::to_string(row % 7) + "\n";
      content.resize(size);
    } else {
      content = RandomBytes(size, rng_());
    }
    pool_.push_back(content);
    return content;
  }

  // A branch (re)made: its source starts as a fresh directory holding `files`.
  void ResetSource(const std::string& branch, const FileMap& files) {
    Source& src = sources_[branch];
    if (!src.dir.empty()) fs::remove_all(src.dir);
    src.dir = sources_dir_ + "/" + branch + "." + std::to_string(next_source_++);
    fs::create_directories(src.dir);
    src.files.clear();
    UpdateSource(&src, files);
  }

  // Rewrites only what changed, so that the importer's stat cache has
  // unchanged files to skip.
  static void UpdateSource(Source* src, const FileMap& next) {
    for (const auto& [path, content] : src->files)
      if (!next.count(path)) fs::remove(src->dir + "/" + path);
    for (const auto& [path, content] : next) {
      auto it = src->files.find(path);
      if (it == src->files.end() || it->second != content) WriteFile(src->dir + "/" + path, content);
    }
    src->files = next;
  }

  std::mt19937_64 rng_;
  std::string sources_dir_;
  std::map<std::string, Source> sources_;  // by branch
  std::vector<std::string> pool_;          // every content made so far
  int next_file_ = 0;
  int next_source_ = 0;
};

// ---------------------------------------------------------------------------
// Checking a store after the loss

// Every file under `dir`, read in one piece (test_util::ReadFile goes byte by
// byte, which a sanitizer build makes the slowest part of the test).
FileMap ReadTree(const std::string& dir) {
  FileMap out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string content(e.file_size(), '\0');
    std::ifstream in(e.path(), std::ios::binary);
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    if (!in) content = "(unreadable)";
    out[fs::relative(e.path(), dir).string()] = std::move(content);
  }
  return out;
}

// Empty when the trees are equal, else their first difference.
std::string TreeDifference(const FileMap& want, const FileMap& got) {
  for (const auto& [path, content] : want) {
    auto it = got.find(path);
    if (it == got.end()) return path + " is missing";
    if (it->second != content)
      return path + " differs (" + std::to_string(it->second.size()) + " bytes, expected " +
             std::to_string(content.size()) + ")";
  }
  for (const auto& [path, content] : got)
    if (!want.count(path)) return "it holds " + path + ", which was never imported there";
  return "";
}

// Checks a recovered store against a history: every ref is as the
// operations that returned OK left it (or as the interrupted one would
// have), and every commit the refs reach reads back, exported, exactly as
// imported. Each finding is one line naming the ref or commit and the
// operation it comes from.
class StoreChecker {
 public:
  StoreChecker(Repository& repo, const History& h, std::string scratch)
      : repo_(repo), h_(h), scratch_(std::move(scratch)) {}

  std::vector<std::string> Check() {
    auto branches = repo_.ListBranches(kDataset);
    if (!branches.ok()) {
      // Only operation 0 makes the dataset; interrupted, it may be absent.
      if (!h_.dataset && branches.status().code() == Status::Code::kNotFound) return {};
      return {"listing the branches: " + branches.status().ToString()};
    }
    auto tags = repo_.ListTags(kDataset);
    if (!tags.ok()) return {"listing the tags: " + tags.status().ToString()};
    Refs actual;
    for (const RefInfo& b : *branches) actual[BranchKey(b.name)] = b.commit;
    for (const RefInfo& t : *tags) actual[TagKey(t.name)] = t.commit;
    CheckRefs(actual);
    for (const auto& [key, at] : actual)
      if (at) CheckCommitsFrom(key, *at);
    return findings_;
  }
  // Whether the interrupted operation turned out done.
  bool interrupted_op_done() const { return interrupted_op_done_; }

 private:
  void CheckRefs(const Refs& actual) {
    std::set<std::string> keys;
    for (const auto& [key, at] : h_.refs) keys.insert(key);
    for (const auto& [key, at] : actual) keys.insert(key);
    for (const std::string& key : keys) {
      RefState want = Find(h_.refs, key), got = Find(actual, key);
      if (want == got) continue;
      if (h_.interrupted && h_.interrupted->RefKey() == key && InterruptedOpExplains(want, got)) {
        interrupted_op_done_ = true;
        continue;
      }
      auto by = h_.set_by.find(key);
      findings_.push_back(
          key + " is " + Show(got) + ", but " +
          (by == h_.set_by.end() ? std::string("no operation made it") : by->second + " left it " + Show(want)));
    }
  }

  // Whether `got` is what the interrupted operation would have made of `want`.
  bool InterruptedOpExplains(const RefState& want, const RefState& got) {
    const Op& op = *h_.interrupted;
    switch (op.kind) {
      case Op::Kind::kCreateDataset:
        return got == RefState(std::optional<ObjectId>());
      case Op::Kind::kCreateBranch:
      case Op::Kind::kCreateTag:
        return got == RefState(op.at);
      case Op::Kind::kDeleteBranch:
      case Op::Kind::kDeleteTag:
        return !got;
      case Op::Kind::kImport: {
        // A new commit on the old head; CheckCommitsFrom reads its tree.
        if (!want || !got || !*got || h_.commits.count(**got)) return false;
        auto commit = repo_.ReadCommit(**got);
        if (!commit.ok()) return false;
        std::vector<ObjectId> parents;
        if (*want) parents.push_back(**want);
        if (commit->parents != parents) return false;
        interrupted_commit_ = **got;
        return true;
      }
      case Op::Kind::kGc:
        break;
    }
    return false;
  }

  // The commit `head` and its ancestors, each read back once.
  void CheckCommitsFrom(const std::string& key, const ObjectId& head) {
    std::vector<ObjectId> stack{head};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (!checked_.insert(id).second) continue;
      std::string what = "commit " + id.ShortHex() + " (reached from " + key + ")";
      const FileMap* want = nullptr;
      if (auto it = h_.commits.find(id); it != h_.commits.end()) {
        want = &it->second.files;
        what += " made by " + it->second.made_by;
      } else if (interrupted_commit_ == id) {
        want = &h_.importing;
        what += " made by the interrupted " + h_.interrupted->Describe();
      } else {
        findings_.push_back(what + " was made by no operation");
        continue;
      }
      auto commit = repo_.ReadCommit(id);
      if (!commit.ok()) {
        findings_.push_back(what + ": " + commit.status().ToString());
        continue;
      }
      std::string difference = ExportAndCompare(commit->root, *want);
      if (!difference.empty()) findings_.push_back(what + ": " + difference);
      for (const ObjectId& parent : commit->parents) stack.push_back(parent);
    }
  }

  std::string ExportAndCompare(const ObjectId& root, const FileMap& want) {
    std::string dest = scratch_ + "/export-" + std::to_string(exports_++);
    auto exported = ExportTree(repo_, root, dest, nullptr);
    std::string difference =
        exported.ok() ? TreeDifference(want, ReadTree(dest)) : "export failed: " + exported.status().ToString();
    fs::remove_all(dest);
    return difference;
  }

  Repository& repo_;
  const History& h_;
  std::string scratch_;
  std::vector<std::string> findings_;
  std::set<ObjectId> checked_;
  std::optional<ObjectId> interrupted_commit_;
  bool interrupted_op_done_ = false;
  int exports_ = 0;
};

// ---------------------------------------------------------------------------
// The runs

enum class IndexModel { kAsLeft, kRolledBack, kLost };
constexpr IndexModel kModels[] = {IndexModel::kAsLeft, IndexModel::kRolledBack, IndexModel::kLost};

const char* ModelName(IndexModel model) {
  switch (model) {
    case IndexModel::kAsLeft:
      return "(a) index as LMDB left it";
    case IndexModel::kRolledBack:
      return "(b) index rolled back to an older copy, then rebuilt";
    case IndexModel::kLost:
      return "(c) index lost, then rebuilt";
  }
  return "?";
}

// Fewer runs in a sanitizer build (tests/sanitizer_scale.h).
constexpr uint64_t kDefaultRuns = tusk::test_scale::ForThisBuild<uint64_t>(25, 10);

using tusk::test_scale::EnvNumber;

struct Totals {
  uint64_t runs = 0;
  uint64_t ops_completed = 0;
  uint64_t interrupted = 0;
  std::map<IndexModel, uint64_t> interrupted_done;  // interrupted operations found done
};

// One run: a dry run to count the workload's calls, the run that loses
// power at a random one of them, and the three models of the index.
class PowerLossRun {
 public:
  PowerLossRun(uint64_t seed, uint64_t run, uint64_t runs, Totals* totals)
      : seed_(seed),
        totals_(totals),
        where_("seed " + std::to_string(seed) + " (run " + std::to_string(run + 1) + " of " + std::to_string(runs) +
               ")") {}

  void Go() {
    History dry;
    {
      FaultEnv env(tmp_.Sub("dry-shadow"));
      dry = Workload(seed_, tmp_.Sub("dry-sources")).Run(tmp_.Sub("dry-store"), env, [](int) {});
      ASSERT_FALSE(dry.interrupted) << where_ << ": the dry run failed at " << dry.interrupted->Describe() << ": "
                                    << dry.interruption.ToString();
    }
    for (const char* sub : {"dry-sources", "dry-store"}) fs::remove_all(tmp_.Sub(sub));

    // Where the power goes out (after the last call at most: then no
    // operation fails, and the test is that all of them are durable), and
    // when the older index is copied: before the operation the loss cuts.
    std::mt19937_64 plan(seed_ ^ 0x9E3779B97F4A7C15ull);
    uint64_t total = dry.calls_before.back();
    uint64_t loss_at = plan() % (total + 1);
    int loss_op = 0;
    while (loss_op < kOps && dry.calls_before[loss_op + 1] <= loss_at) loss_op++;
    int copy_before = static_cast<int>(plan() % (loss_op + 1));

    std::string store = tmp_.Sub("store"), old_index = tmp_.Sub("old-data.mdb");
    History h;
    {
      FaultEnv env(tmp_.Sub("shadow"));
      h = Workload(seed_, tmp_.Sub("sources")).Run(store, env, [&](int i) {
        if (i == 0) env.SetFailAfter(loss_at);
        // Copied at 0 too, in case the loss comes before the dry run said.
        if (i != 0 && i != copy_before) return;
        fs::copy_file(store + "/index/data.mdb", old_index, fs::copy_options::overwrite_existing);
        copied_before_ = i;
      });
      if (h.interrupted && !env.power_lost())
        ADD_FAILURE() << where_ << ": " << h.interrupted->Describe()
                      << " failed without a power loss: " << h.interruption.ToString();
      Status dropped = env.DropUnsyncedData();
      ASSERT_TRUE(dropped.ok()) << where_ << ": " << dropped.ToString();
    }
    fs::remove_all(tmp_.Sub("sources"));
    std::printf(
        "power-loss %s: power lost at call %llu of %llu, %d of %d ops completed%s%s; index copy from before op %d\n",
        where_.c_str(), static_cast<unsigned long long>(loss_at), static_cast<unsigned long long>(total), h.completed,
        kOps, h.interrupted ? ", interrupted " : "", h.interrupted ? h.interrupted->Describe().c_str() : "",
        copied_before_);
    std::fflush(stdout);
    totals_->runs++;
    totals_->ops_completed += h.completed;
    if (h.interrupted) totals_->interrupted++;

    for (IndexModel model : kModels) CheckModel(model, store, old_index, h);
  }

 private:
  // Applies `model` to a copy of the store as the loss left it, recovers,
  // and checks it against the history; then that it still works.
  void CheckModel(IndexModel model, const std::string& lost_store, const std::string& old_index, const History& h) {
    std::string where = where_ + ", power lost " +
                        (h.interrupted ? "in " + h.interrupted->Describe() : std::string("after the last op")) +
                        ", model " + ModelName(model);
    if (model == IndexModel::kRolledBack) where += " (the copy from before op " + std::to_string(copied_before_) + ")";
    std::string dir = tmp_.Sub("model"), store = dir + "/store", data = store + "/index/data.mdb";
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy(lost_store, store, fs::copy_options::recursive);
    if (model == IndexModel::kRolledBack) {
      fs::copy_file(old_index, data, fs::copy_options::overwrite_existing);
      ExpectStaleIndexNoticed(store, h, dir, where);
    }
    if (model == IndexModel::kLost) fs::remove(data);
    std::unique_ptr<Repository> repo = OpenOrRebuild(store, model != IndexModel::kAsLeft, where);
    if (!repo) return;
    ExpectFsckClean(*repo, where + ", after the loss");
    StoreChecker checker(*repo, h, dir);
    for (const std::string& finding : checker.Check()) ADD_FAILURE() << where << ": " << finding;
    if (checker.interrupted_op_done()) totals_->interrupted_done[model]++;

    // Still a working store: gc, fsck again, and one more commit.
    auto gc = repo->CollectGarbage(false, nullptr);
    EXPECT_TRUE(gc.ok()) << where << ": gc after the recovery: " << gc.status().ToString();
    ExpectFsckClean(*repo, where + ", after gc");
    if (h.dataset) ExpectWritable(*repo, dir, where);
  }

  // A rolled-back index must not pass for a current one: opened as it is,
  // either fsck finds the packs written since (and names the rebuild) or the
  // index lacks nothing the history needs.
  void ExpectStaleIndexNoticed(const std::string& store, const History& h, const std::string& dir,
                               const std::string& where) {
    auto repo = Repository::Open(store);
    if (!repo.ok()) return;  // refusing is noticing
    auto fsck = (*repo)->Check(nullptr);
    if (!fsck.ok() || !fsck->problems.empty()) return;
    StoreChecker checker(**repo, h, dir);
    for (const std::string& finding : checker.Check())
      ADD_FAILURE() << where << ": before the rebuild, fsck passed the rolled-back index, yet " << finding;
  }

  std::unique_ptr<Repository> OpenOrRebuild(const std::string& store, bool rebuild, const std::string& where) {
    if (!rebuild) {
      auto repo = Repository::Open(store);
      if (repo.ok()) return std::move(repo).value();
      // Open may refuse, if it says how to recover.
      if (repo.status().message().find("rebuild") == std::string::npos) {
        ADD_FAILURE() << where << ": open refused without naming the rebuild: " << repo.status().ToString();
        return nullptr;
      }
    }
    auto report = Repository::RebuildIndex(store, nullptr);
    if (!report.ok()) {
      ADD_FAILURE() << where << ": rebuilding the index: " << report.status().ToString();
      return nullptr;
    }
    for (const std::string& warning : report->warnings)
      std::printf("  %s: rebuild warning: %s\n", where.c_str(), warning.c_str());
    auto repo = Repository::Open(store);
    if (!repo.ok()) {
      ADD_FAILURE() << where << ": open after the rebuild: " << repo.status().ToString();
      return nullptr;
    }
    return std::move(repo).value();
  }

  static void ExpectFsckClean(Repository& repo, const std::string& where) {
    auto fsck = repo.Check(nullptr);
    if (!fsck.ok()) {
      ADD_FAILURE() << where << ": fsck failed: " << fsck.status().ToString();
      return;
    }
    for (const FsckProblem& p : fsck->problems) ADD_FAILURE() << where << ": fsck: " << p.object << ": " << p.error;
  }

  static void ExpectWritable(Repository& repo, const std::string& dir, const std::string& where) {
    Status branched = repo.CreateBranch(kDataset, "after-loss", std::nullopt);
    ASSERT_TRUE(branched.ok()) << where << ": a branch after the recovery: " << branched.ToString();
    FileMap tree{{"written-after", "written after the recovery"}};
    std::string src = dir + "/after-loss";
    WriteFile(src + "/written-after", tree.begin()->second);
    ImportOptions options;
    options.message = "after the recovery";
    auto imported = ImportDirectory(repo, src, kDataset, "after-loss", options);
    ASSERT_TRUE(imported.ok() && imported->commit)
        << where << ": an import after the recovery: " << imported.status().ToString();
    auto commit = repo.ReadCommit(*imported->commit);
    ASSERT_TRUE(commit.ok()) << where << ": " << commit.status().ToString();
    std::string dest = dir + "/after-loss-export";
    auto exported = ExportTree(repo, commit->root, dest, nullptr);
    ASSERT_TRUE(exported.ok()) << where << ": " << exported.status().ToString();
    EXPECT_EQ(TreeDifference(tree, ReadTree(dest)), "") << where << ": the commit made after the recovery";
  }

  uint64_t seed_;
  Totals* totals_;
  std::string where_;
  int copied_before_ = 0;  // the operation before which the older index was copied
  ScratchDir tmp_;
};

TEST(PowerLossTest, EveryOperationThatReturnedSurvivesAPowerLossAtAnyCall) {
  uint64_t runs = EnvNumber("TUSK_POWER_LOSS_RUNS", kDefaultRuns);
  uint64_t seed = EnvNumber("TUSK_POWER_LOSS_SEED", std::random_device{}());
  std::printf(
      "power-loss: %llu runs from seed %llu (replay one: TUSK_POWER_LOSS_SEED=<its seed> TUSK_POWER_LOSS_RUNS=1)\n",
      static_cast<unsigned long long>(runs), static_cast<unsigned long long>(seed));
  Totals totals;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t r = 0; r < runs && !::testing::Test::HasFailure(); r++) PowerLossRun(seed + r, r, runs, &totals).Go();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "power-loss: %llu runs in %.1f s, %llu operations completed before the losses, %llu interrupted; "
      "interrupted operations found done: %llu (a), %llu (b), %llu (c)\n",
      static_cast<unsigned long long>(totals.runs), secs, static_cast<unsigned long long>(totals.ops_completed),
      static_cast<unsigned long long>(totals.interrupted),
      static_cast<unsigned long long>(totals.interrupted_done[IndexModel::kAsLeft]),
      static_cast<unsigned long long>(totals.interrupted_done[IndexModel::kRolledBack]),
      static_cast<unsigned long long>(totals.interrupted_done[IndexModel::kLost]));
}

}  // namespace
}  // namespace tusk
