// A lost, emptied, stale or damaged index (issue 9, defect 1): the packs are
// the truth, so no command may act on such an index as if it were the whole
// store, and `tusk fsck --rebuild-index` brings back every dataset, branch,
// tag and commit as of the last completed command.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "tests/cli/cli_helpers.h"

namespace tusk::cli_test {
namespace {

namespace fs = std::filesystem;

constexpr char kRebuild[] = "tusk fsck --rebuild-index";

class IndexRebuildTest : public CliTest {
 protected:
  // Two datasets with history, branches, tags and deletions of each kind.
  void MakeHistory() {
    InitStore();
    CreateDataset("photos");
    MakeTree(Path("src1"), {File("a.txt", "alpha\n"), File("dir/b.bin", RandomBytes(300000, 1)), Symlink("link", "a.txt")});
    Import(Path("src1"), "photos@main", "v1");
    ASSERT_EQ(Run("tag", "photos@v1").exit_code, 0);
    MakeTree(Path("src1"), {File("a.txt", "alpha two\n"), File("c.csv", std::string(100000, 'c'))});
    Import(Path("src1"), "photos@main", "v2");
    ASSERT_EQ(Run("branch", "photos@dev", "photos@v1").exit_code, 0);
    MakeTree(Path("src2"), {File("d.txt", "delta\n")});
    Import(Path("src2"), "photos@dev", "dev work");
    ASSERT_EQ(Run("branch", "photos@gone", "photos@v1").exit_code, 0);
    ASSERT_EQ(Run("branch", "-d", "photos@gone").exit_code, 0);
    ASSERT_EQ(Run("tag", "photos@old", "photos@v1").exit_code, 0);
    ASSERT_EQ(Run("tag", "-d", "photos@old").exit_code, 0);
    CreateDataset("empty");
    ASSERT_EQ(Run("branch", "empty@side").exit_code, 0);
    CreateDataset("dropped");
    Import(Path("src2"), "dropped@main", "to be dropped");
    ASSERT_EQ(Run("dataset", "delete", "dropped").exit_code, 0);
  }

  std::vector<std::string> Refs() { return {"photos@main", "photos@v1", "photos@dev", "photos@main~1"}; }

  // Exports of every ref and the ids they name, to compare after a rebuild.
  std::map<std::string, std::string> Remember(const std::string& tag) {
    std::map<std::string, std::string> ids;
    for (const auto& ref : Refs()) {
      ids[ref] = CommitOf(ref);
      Export(ref, Path(tag + "-" + ref));
    }
    return ids;
  }

  void ExpectSameAsBefore(const std::map<std::string, std::string>& ids, const std::string& state,
                          const std::string& tag = "after") {
    EXPECT_EQ(RefState(), state);
    for (const auto& ref : Refs()) {
      EXPECT_EQ(CommitOf(ref), ids.at(ref)) << ref;
      ASSERT_NO_FATAL_FAILURE(Export(ref, Path(tag + "-" + ref)));
      EXPECT_EQ(TreeDiff(Path("before-" + ref), Path(tag + "-" + ref)), std::vector<std::string>()) << ref;
    }
    EXPECT_EQ(LogLength("photos@main"), 2u);
    EXPECT_EQ(Run("show", "dropped@main").exit_code, 1) << "a deleted dataset stays deleted";
    ExpectFsckClean();
  }

  size_t PackCount() {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(store() + "/packs")) n += e.path().extension() == ".pack";
    return n;
  }

  // The index must be refused loudly, and nothing deleted.
  void ExpectRefusedNamingTheRebuild() {
    size_t packs = PackCount();
    RunResult fsck = Run("fsck");
    EXPECT_NE(fsck.exit_code, 0) << fsck;
    EXPECT_TRUE(HasSubstr(fsck.out + fsck.err, kRebuild)) << fsck;
    RunResult gc = Run("gc");
    EXPECT_NE(gc.exit_code, 0) << gc;
    EXPECT_TRUE(HasSubstr(gc.err, kRebuild)) << gc;
    EXPECT_EQ(PackCount(), packs) << "gc deleted packs of a store whose index is lost";
  }

  std::string IndexFile() { return store() + "/index/data.mdb"; }
};

TEST_F(IndexRebuildTest, DeletedIndexIsRefusedByEveryCommandAndRebuiltWithEverything) {
  ASSERT_NO_FATAL_FAILURE(MakeHistory());
  std::string state = RefState();
  auto ids = Remember("before");
  ASSERT_EQ(::unlink(IndexFile().c_str()), 0);

  ASSERT_NO_FATAL_FAILURE(ExpectRefusedNamingTheRebuild());
  RunResult list = Run("dataset", "list");
  EXPECT_NE(list.exit_code, 0) << "an empty list would say the datasets are gone" << list;
  EXPECT_TRUE(HasSubstr(list.err, kRebuild)) << list;

  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_TRUE(HasSubstr(rebuilt.out, "2 datasets, 4 branches, 1 tags")) << rebuilt;
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsBefore(ids, state));
  // The rebuilt index is a working one: gc and new commits use it.
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsBefore(ids, state, "after-gc"));
}

TEST_F(IndexRebuildTest, EmptiedIndexIsRefusedAndRebuiltAndTheOldOneIsKeptAside) {
  ASSERT_NO_FATAL_FAILURE(MakeHistory());
  std::string state = RefState();
  auto ids = Remember("before");
  ASSERT_EQ(::truncate(IndexFile().c_str(), 0), 0);

  ASSERT_NO_FATAL_FAILURE(ExpectRefusedNamingTheRebuild());
  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_TRUE(HasSubstr(rebuilt.out, "previous index was moved to " + store() + "/index.old-")) << rebuilt;
  size_t aside = 0;
  for (const auto& e : fs::directory_iterator(store()))
    if (e.path().filename().string().rfind("index.old-", 0) == 0) aside++;
  EXPECT_EQ(aside, 1u);
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsBefore(ids, state));
}

TEST_F(IndexRebuildTest, DamagedIndexIsRebuiltWithoutBeingRead) {
  ASSERT_NO_FATAL_FAILURE(MakeHistory());
  std::string state = RefState();
  auto ids = Remember("before");
  struct stat st;
  ASSERT_EQ(::stat(IndexFile().c_str(), &st), 0);
  WriteFileOrDie(IndexFile(), RandomBytes(static_cast<size_t>(st.st_size), 99));

  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsBefore(ids, state));
}

TEST_F(IndexRebuildTest, StaleIndexMakesFsckFailAndGcRefuse) {
  InitStore();
  CreateDataset("photos");
  MakeTree(Path("src1"), {File("a.txt", "alpha\n")});
  Import(Path("src1"), "photos@main", "v1");
  fs::copy(store() + "/index", Path("old-index"), fs::copy_options::recursive);
  MakeTree(Path("src1"), {File("a.txt", "alpha two\n"), File("b.bin", RandomBytes(200000, 2))});
  Import(Path("src1"), "photos@main", "v2");
  ASSERT_EQ(Run("tag", "photos@v2").exit_code, 0);
  std::string state = RefState();
  std::string head = CommitOf("photos@main");
  Export("photos@main", Path("before"));
  // An index restored from an older copy: complete, but it lacks the packs
  // written since.
  fs::remove_all(store() + "/index");
  fs::copy(Path("old-index"), store() + "/index", fs::copy_options::recursive);

  RunResult fsck = Run("fsck");
  EXPECT_EQ(fsck.exit_code, 1) << fsck;
  EXPECT_TRUE(HasSubstr(fsck.out, "not in the index")) << fsck;
  EXPECT_TRUE(HasSubstr(fsck.out, kRebuild)) << fsck;
  size_t packs = PackCount();
  RunResult gc = Run("gc");
  EXPECT_NE(gc.exit_code, 0) << gc;
  EXPECT_TRUE(HasSubstr(gc.err, kRebuild)) << gc;
  EXPECT_EQ(PackCount(), packs);

  ASSERT_EQ(Run("fsck", "--rebuild-index").exit_code, 0);
  EXPECT_EQ(RefState(), state);
  EXPECT_EQ(CommitOf("photos@main"), head);
  Export("photos@main", Path("after"));
  EXPECT_EQ(TreeDiff(Path("before"), Path("after")), std::vector<std::string>());
  ExpectFsckClean();
}

// ---- writers killed between making their record durable and committing ----

class KilledWriterTest : public IndexRebuildTest {
 protected:
  // Runs tusk with $TUSK_TEST_KILL_AT set: it kills itself after its ref
  // record is sealed in a pack, before the index transaction commits.
  template <typename... Args>
  RunResult RunKilled(const Args&... args) {
    return RunKilledAt("ref-record-durable", args...);
  }
  // The same at any kill point (store/internal/ref_log.h).
  template <typename... Args>
  RunResult RunKilledAt(const char* point, const Args&... args) {
    ::setenv("TUSK_TEST_KILL_AT", point, 1);
    RunResult r = Run(args...);
    ::unsetenv("TUSK_TEST_KILL_AT");
    EXPECT_EQ(r.exit_code, 128 + SIGKILL) << "tusk did not reach kill point " << point << ": " << r;
    return r;
  }
  void Rebuild() {
    ASSERT_EQ(::unlink(IndexFile().c_str()), 0);
    RunResult r = Run("fsck", "--rebuild-index");
    ASSERT_EQ(r.exit_code, 0) << r;
  }
};

TEST_F(KilledWriterTest, KilledImportLeavesTheBranchAndAPackFsckCallsGarbageNotDamage) {
  InitStore();
  CreateDataset("data");
  MakeTree(Path("src"), {File("a.txt", "one\n")});
  Import(Path("src"), "data@main", "v1");
  std::string v1 = CommitOf("data@main");
  size_t packs = PackCount();
  MakeTree(Path("src"), {File("a.txt", "two\n"), File("big", RandomBytes(400000, 3))});
  RunKilled("import", Path("src"), "data@main", "-m", "v2");
  EXPECT_EQ(CommitOf("data@main"), v1) << "the killed import did not complete";
  EXPECT_EQ(PackCount(), packs + 1);

  RunResult fsck = Run("fsck");
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  EXPECT_TRUE(HasSubstr(fsck.out, "interrupted writer")) << fsck;
  EXPECT_TRUE(HasSubstr(fsck.out, "no problems found")) << fsck;
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  EXPECT_EQ(PackCount(), packs) << "gc removes the killed writer's pack";
  ExpectFsckClean();
  ASSERT_NO_FATAL_FAILURE(Rebuild());
  EXPECT_EQ(CommitOf("data@main"), v1);
}

TEST_F(KilledWriterTest, RebuildAppliesAKilledWritersRecordUnlessACompletedCommandSupersededIt) {
  InitStore();
  CreateDataset("data");
  MakeTree(Path("src"), {File("a.txt", "one\n")});
  Import(Path("src"), "data@main", "v1");
  std::string v1 = CommitOf("data@main");
  MakeTree(Path("src"), {File("a.txt", "two\n")});
  RunKilled("import", Path("src"), "data@main", "-m", "killed");
  // The killed record and this commit's record both supersede v1's and
  // share a sequence number (the index never saw the killed one); the
  // completed command wrote later.
  MakeTree(Path("src"), {File("a.txt", "three\n")});
  Import(Path("src"), "data@main", "v3");
  std::string v3 = CommitOf("data@main");
  Export("data@main", Path("before"));
  ASSERT_NO_FATAL_FAILURE(Rebuild());
  EXPECT_EQ(CommitOf("data@main"), v3);
  Export("data@main", Path("after"));
  EXPECT_EQ(TreeDiff(Path("before"), Path("after")), std::vector<std::string>());
  EXPECT_EQ(LogLength("data@main"), 2u);

  // With nothing after it, a killed writer's record cannot be told from a
  // committed one (FORMAT.md): the rebuild applies it, and it is whole.
  RunKilled("tag", "data@last", "data@main~1");
  ASSERT_NO_FATAL_FAILURE(Rebuild());
  EXPECT_EQ(CommitOf("data@last"), v1);
  ExpectFsckClean();
}

TEST_F(KilledWriterTest, KilledBranchCommandsLeaveNothingTheIndexCannotAccountFor) {
  InitStore();
  CreateDataset("data");
  MakeTree(Path("src"), {File("a.txt", "one\n")});
  Import(Path("src"), "data@main", "v1");
  std::string state = RefState();
  RunKilled("branch", "data@dev");
  RunKilled("branch", "-d", "data@main");
  RunKilled("dataset", "create", "other");
  EXPECT_EQ(RefState(), state);
  RunResult fsck = Run("fsck");
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  ExpectFsckClean();
  // gc removed their packs, records and all: a rebuild now agrees.
  ASSERT_NO_FATAL_FAILURE(Rebuild());
  EXPECT_EQ(RefState(), state);
}

// ---- gc killed between any two of its steps ----

// A store with every kind of garbage gc handles: a killed writer's pending
// pack, a pack that is all garbage (a deleted branch's data and records)
// and packs that hold live data beside superseded ref records (which gc
// copies out). A gc killed at `GetParam()` must leave a store that fsck
// calls healthy, that the next gc finishes collecting, and whose index can
// still be rebuilt from the packs, with every version as it was.
class KilledGcTest : public KilledWriterTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void MakeGarbage() {
    InitStore();
    CreateDataset("data");
    MakeTree(Path("src"), {File("a.txt", "one\n"), File("big", RandomBytes(300000, 1))});
    Import(Path("src"), "data@main", "v1");
    MakeTree(Path("src"), {File("a.txt", "two\n"), File("big", RandomBytes(300000, 1))});
    Import(Path("src"), "data@main", "v2");
    MakeTree(Path("side"), {File("tmp.bin", RandomBytes(400000, 2))});
    ASSERT_EQ(Run("branch", "data@tmp").exit_code, 0);
    Import(Path("side"), "data@tmp", "scratch");
    ASSERT_EQ(Run("branch", "-d", "data@tmp").exit_code, 0);
    MakeTree(Path("src"), {File("a.txt", "killed\n"), File("more", RandomBytes(200000, 3))});
    RunKilled("import", Path("src"), "data@main", "-m", "killed");
  }
  std::map<std::string, std::string> Remember(const std::string& tag) {
    std::map<std::string, std::string> ids;
    for (const std::string ref : {"data@main", "data@main~1"}) {
      ids[ref] = CommitOf(ref);
      Export(ref, Path(tag + "-" + ref));
    }
    return ids;
  }
  void ExpectSame(const std::map<std::string, std::string>& ids, const std::string& tag) {
    for (const auto& [ref, id] : ids) {
      EXPECT_EQ(CommitOf(ref), id) << ref;
      ASSERT_NO_FATAL_FAILURE(Export(ref, Path(tag + "-" + ref)));
      EXPECT_EQ(TreeDiff(Path("before-" + ref), Path(tag + "-" + ref)), std::vector<std::string>()) << ref;
    }
  }
};

TEST_P(KilledGcTest, LeavesAHealthyStoreThatTheNextGcFinishes) {
  ASSERT_NO_FATAL_FAILURE(MakeGarbage());
  auto ids = Remember("before");
  std::string state = RefState();

  RunKilledAt(GetParam(), "gc");
  RunResult fsck = Run("fsck");
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  EXPECT_TRUE(HasSubstr(fsck.out, "no problems found")) << fsck;
  ExpectSame(ids, "killed");
  RunResult gc = Run("gc");
  ASSERT_EQ(gc.exit_code, 0) << gc;
  RunResult again = Run("gc", "--dry-run");
  EXPECT_TRUE(HasSubstr(again.out, "would remove 0 unreachable objects")) << "the second gc left garbage: " << again;
  fsck = Run("fsck");
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  EXPECT_FALSE(HasSubstr(fsck.out, "interrupted")) << "pending packs are left: " << fsck;
  EXPECT_EQ(RefState(), state);
  ExpectSame(ids, "collected");
}

TEST_P(KilledGcTest, LeavesPacksFromWhichTheIndexCanBeRebuilt) {
  ASSERT_NO_FATAL_FAILURE(MakeGarbage());
  auto ids = Remember("before");
  std::string state = RefState();
  RunKilledAt(GetParam(), "gc");
  ASSERT_NO_FATAL_FAILURE(Rebuild());
  EXPECT_EQ(RefState(), state);
  ExpectSame(ids, "rebuilt");
  ExpectFsckClean();
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  ExpectSame(ids, "collected");
  ExpectFsckClean();
}

INSTANTIATE_TEST_SUITE_P(EveryStep, KilledGcTest,
                         ::testing::Values("gc-pending-packs-removed", "gc-garbage-packs-pending",
                                           "gc-garbage-packs-removed", "gc-copies-sealed", "gc-index-switched",
                                           "gc-old-packs-removed"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- stores written by earlier releases (tests/cli/data/README.md) ----

class OldStoreTest : public CliTest {
 protected:
  // Unpacks tests/cli/data/NAME (a store directory "store") into the test's directory.
  void UnpackFixture(const std::string& name) {
    RunResult r = RunProcess({"/bin/tar", "-xzf", std::string(TUSK_SOURCE_DIR) + "/tests/cli/data/" + name, "-C", dir()},
                             {"PATH=/usr/bin:/bin"});
    ASSERT_EQ(r.exit_code, 0) << r;
  }
};

// ---- a store written by the previous release (format 1) ----

class Format1StoreTest : public OldStoreTest {
 protected:
  // tests/cli/data/format1-store.tar.gz was made by tusk 8edb244 (the last
  // format-1 release; see tests/cli/data/README.md).
  void Unpack() { UnpackFixture("format1-store.tar.gz"); }
  static constexpr char kMain[] = "894100e50a7673b3e5d177f11375afb664c9f78adbe8145d289c303e9ff3b6fa";
  static constexpr char kV1[] = "05fe6dc97eef40e5e1178f8e0d436343242aedf8ad86f39a02b77292f1c1808f";
  static constexpr char kDev[] = "5bbd5e29529ff5099f7054d64236e63c05a0bf675f139ea320612eb9e225348d";

  void ExpectFixtureContent(const std::string& tag) {
    EXPECT_EQ(CommitOf("photos@main"), kMain);
    EXPECT_EQ(CommitOf("photos@v1"), kV1);
    EXPECT_EQ(CommitOf("photos@dev"), kDev);
    Export("photos@main", Path(tag + "-main"));
    EXPECT_EQ(ReadFileOrDie(Path(tag + "-main/a.txt")), "alpha2\n");
    EXPECT_EQ(ReadFileOrDie(Path(tag + "-main/dir/b.txt")), "bravo\n");
    EXPECT_EQ(ReadFileOrDie(Path(tag + "-main/c.txt")), "charlie\n");
    Export("photos@v1", Path(tag + "-v1"));
    EXPECT_EQ(ReadFileOrDie(Path(tag + "-v1/a.txt")), "alpha\n");
    Export("photos@dev", Path(tag + "-dev"));
    EXPECT_EQ(ReadFileOrDie(Path(tag + "-dev/d.txt")), "delta\n");
    RunResult empty = Run("branch", "empty", "--json");
    EXPECT_EQ(empty.out, "[{\"name\":\"main\",\"commit\":null},{\"name\":\"side\",\"commit\":null}]\n") << empty;
  }
};

TEST_F(Format1StoreTest, OpensUpgradesToTheCurrentFormatAndThenRebuildsFromItsPacks) {
  ASSERT_NO_FATAL_FAILURE(Unpack());
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 1\n"));
  ASSERT_NO_FATAL_FAILURE(ExpectFixtureContent("upgraded"));
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 6\n")) << "the first command upgraded it";
  ExpectFsckClean();
  std::string state = RefState();

  ASSERT_EQ(::unlink((store() + "/index/data.mdb").c_str()), 0);
  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_EQ(RefState(), state);
  ASSERT_NO_FATAL_FAILURE(ExpectFixtureContent("rebuilt"));
  ExpectFsckClean();
  // And it is an ordinary store from then on.
  MakeTree(Path("src"), {File("e.txt", "echo\n")});
  Import(Path("src"), "photos@main", "after the upgrade");
  EXPECT_EQ(LogLength("photos@main"), 3u);
}

TEST_F(Format1StoreTest, ARebuildOfAFormat1StoreIsRefusedWithTheReason) {
  ASSERT_NO_FATAL_FAILURE(Unpack());
  RunResult r = Run("fsck", "--rebuild-index");
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.err, "format-1 store")) << r;
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 1\n"));
}

TEST_F(Format1StoreTest, AStoreOfANewerFormatIsRefusedWithTheVersions) {
  ASSERT_NO_FATAL_FAILURE(Unpack());
  WriteFileOrDie(store() + "/config", "tusk-store-format 7\nchunk-min 65536\nchunk-avg 262144\nchunk-max 1048576\ncompression-level 1\n");
  RunResult r = Run("dataset", "list");
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.err, "store format version 7")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "reads versions 1 to 6")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "not supported by this tusk")) << r;
}

// ---- a store written by the previous release (format 2) ----

class Format2StoreTest : public OldStoreTest {
 protected:
  // tests/cli/data/format2-store.tar.gz was made by tusk dad1630 (the last
  // format-2 release; see tests/cli/data/README.md).
  void Unpack() { UnpackFixture("format2-store.tar.gz"); }
  static constexpr char kMain[] = "217b8209503fed308f4362148374fc7ea8e771a8440e910a4b114af082375484";
  static constexpr char kV1[] = "8df20300f93be9f8f1dbc3c0e6d15c6783874aa4d756deb8e6c7810cf96faf77";
  static constexpr char kDev[] = "9c30fca6ed2f37508ec38dfd743f83563cbfbad7947534b88b0f9985637d6927";
};

TEST_F(Format2StoreTest, OpensUpgradesToTheCurrentFormatKeepsEveryCommitAndRebuilds) {
  ASSERT_NO_FATAL_FAILURE(Unpack());
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 2\n"));
  EXPECT_EQ(CommitOf("photos@main"), kMain);
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 6\n")) << "the first command upgraded it";
  EXPECT_EQ(CommitOf("photos@v1"), kV1);
  EXPECT_EQ(CommitOf("photos@dev"), kDev);
  Export("photos@main", Path("main"));
  EXPECT_EQ(ReadFileOrDie(Path("main/a.txt")), "alpha2\n");
  EXPECT_EQ(ReadFileOrDie(Path("main/c.txt")), "charlie\n");
  RunResult runs = Run("runs");
  EXPECT_EQ(runs.exit_code, 0) << runs;
  EXPECT_TRUE(HasSubstr(runs.out, "no runs recorded")) << runs;
  ExpectFsckClean();
  std::string state = RefState();
  ASSERT_EQ(::unlink((store() + "/index/data.mdb").c_str()), 0);
  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_EQ(RefState(), state);
  ExpectFsckClean();
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  EXPECT_EQ(CommitOf("photos@dev"), kDev);
}

}  // namespace
}  // namespace tusk::cli_test

namespace tusk::cli_test {
namespace {

// ---- a store written by the previous release (format 3) ----

class Format3StoreTest : public OldStoreTest {
 protected:
  // tests/cli/data/format3-store.tar.gz was made by tusk 28af424 (the last
  // format-3 release; see tests/cli/data/README.md), with a run record.
  void Unpack() { UnpackFixture("format3-store.tar.gz"); }
  static constexpr char kMain[] = "c9db9399c9b5d76790da315a19e6174a2141350c286341499920d53df360146d";
  static constexpr char kV1[] = "719b0c264286bc97ea575935fe471be98ebecf62e8256f48e21b5e2bffb3c426";
  static constexpr char kDev[] = "8fbd0396ec13a592e16f07d802d92947d06d5bf5aa64d308bd396d8e86c32082";
  static constexpr char kDerived[] = "8e8fba0eef5737967dded2935727e1281f2a06ba053747807a11867012b81174";
};

TEST_F(Format3StoreTest, OpensUpgradesToFormat4KeepsCommitsAndRunsAndTakesSettings) {
  ASSERT_NO_FATAL_FAILURE(Unpack());
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 3\n"));
  EXPECT_EQ(CommitOf("photos@main"), kMain);
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 6\n")) << "the first command upgraded it";
  EXPECT_EQ(CommitOf("photos@v1"), kV1);
  EXPECT_EQ(CommitOf("photos@dev"), kDev);
  EXPECT_EQ(CommitOf("derived@main"), kDerived);
  RunResult runs = Run("runs");
  EXPECT_EQ(runs.exit_code, 0) << runs;
  EXPECT_TRUE(HasSubstr(runs.out, "9b82d3c5b664")) << runs;
  RunResult lineage = Run("lineage", "derived@main");
  EXPECT_EQ(lineage.exit_code, 0) << lineage;
  EXPECT_TRUE(HasSubstr(lineage.out, "photos@c9db9399c9b5")) << lineage;
  ExpectFsckClean();
  std::string state = RefState();
  ASSERT_EQ(::unlink((store() + "/index/data.mdb").c_str()), 0);
  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_EQ(RefState(), state);
  // The upgraded store takes settings and checked commits.
  RunResult add = Run("check", "add", "photos", "nonempty", "--builtin", "--", "nonempty");
  ASSERT_EQ(add.exit_code, 0) << add;
  MakeTree(Path("src"), {File("e.txt", "echo\n")});
  Import(Path("src"), "photos@main", "after the upgrade");
  RunResult show = Run("show", "photos@main");
  EXPECT_TRUE(HasSubstr(show.out, "passed  nonempty")) << show;
  ExpectFsckClean();
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  EXPECT_EQ(CommitOf("photos@dev"), kDev);
}

// ---- a store written by the previous release (format 4) ----

class Format4StoreTest : public OldStoreTest {
 protected:
  // tests/cli/data/format4-store.tar.gz: store format 4 (settings format 1),
  // with a table rule, a check, a checked commit and a run (see
  // tests/cli/data/README.md).
  void Unpack() { UnpackFixture("format4-store.tar.gz"); }
  static constexpr char kMain[] = "4a57a6c80d5cf77227f077f1deee1b41089ca9a9d8fba78fe009d41c12c20525";
  static constexpr char kV1[] = "5a0973e6bab28223f815253a938cdec4e8116c922a873c7f31162c87af16dae1";
  static constexpr char kDev[] = "efd38bd5157862a93ad71f833135612b1a7d4410edd6b92f2502f1814e226f7c";
  static constexpr char kDerived[] = "56b67ab2cb52c48e0512a20134946444aa14519fe839a7bdc9d28dbcc5f4c608";
};

TEST_F(Format4StoreTest, OpensUpgradesToFormat5KeepsSettingsAndTakesFileFormats) {
  ASSERT_NO_FATAL_FAILURE(Unpack());
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 4\n"));
  EXPECT_EQ(CommitOf("photos@main"), kMain);
  EXPECT_TRUE(HasSubstr(ReadFileOrDie(store() + "/config"), "tusk-store-format 6\n")) << "the first command upgraded it";
  EXPECT_EQ(CommitOf("photos@v1"), kV1);
  EXPECT_EQ(CommitOf("photos@dev"), kDev);
  EXPECT_EQ(CommitOf("derived@main"), kDerived);
  // The format-1 settings record reads: its rule and check are there.
  RunResult tables = Run("table", "list", "photos");
  EXPECT_EQ(tables.exit_code, 0) << tables;
  EXPECT_TRUE(HasSubstr(tables.out, "*.csv  key id")) << tables;
  RunResult checks = Run("check", "list", "photos");
  EXPECT_TRUE(HasSubstr(checks.out, "nonempty")) << checks;
  RunResult show = Run("show", "photos@main");
  EXPECT_TRUE(HasSubstr(show.out, "passed  nonempty")) << show;
  ExpectFsckClean();
  std::string state = RefState();
  ASSERT_EQ(::unlink((store() + "/index/data.mdb").c_str()), 0);
  RunResult rebuilt = Run("fsck", "--rebuild-index");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_EQ(RefState(), state);
  // The upgraded store takes a rule with a file format (settings format 2)
  // after the old record, and keeps both through gc.
  RunResult set = Run("table", "set", "photos", "*.log", "--format", "text");
  ASSERT_EQ(set.exit_code, 0) << set;
  RunResult after = Run("table", "list", "photos");
  EXPECT_TRUE(HasSubstr(after.out, "*.csv  key id")) << after;
  EXPECT_TRUE(HasSubstr(after.out, "*.log  format text")) << after;
  RunResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc;
  ExpectFsckClean();
  RunResult log = Run("log", "photos");
  EXPECT_EQ(log.exit_code, 0) << log;
}

}  // namespace
}  // namespace tusk::cli_test
