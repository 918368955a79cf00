// The three-way merge of dataset versions (store/merge/merge.h): merge
// bases, the per-path rules, content merges, and landing on a branch.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "store/exporter.h"
#include "store/merge/content_merge.h"
#include "store/merge/merge.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;

// A version as a map of path -> file (a trailing '/' in a path: an empty
// directory; a `link` value: a symlink).
struct File {
  std::string content;
  uint32_t mode = 0644;
  std::string link;  // non-empty: a symlink to this target
  int64_t mtime = 1000;
  bool operator==(const File&) const = default;
};
using Files = std::map<std::string, File>;

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TUSK_ASSERT_OK(Repository::Create(dir_.path(), StoreConfig{}));
    TUSK_ASSERT_OK_AND_ASSIGN(repo_, Repository::Open(dir_.path()));
    TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  }

  // Writes the directory at `prefix` of `files`; counts regular files.
  ObjectId WriteTree(WriteSession& s, const Files& files, const std::string& prefix, Commit* counts,
                     size_t* entry_count = nullptr) {
    std::map<std::string, Files> subdirs;
    std::vector<TreeEntry> entries;
    for (const auto& [path, f] : files) {
      if (path.compare(0, prefix.size(), prefix) != 0) continue;
      std::string rest = path.substr(prefix.size());
      size_t slash = rest.find('/');
      if (slash != std::string::npos) {
        subdirs[rest.substr(0, slash)];
        continue;
      }
      TreeEntry e;
      e.name = rest;
      e.mtime_sec = f.mtime;
      if (!f.link.empty()) {
        e.kind = EntryKind::kSymlink;
        e.mode = S_IFLNK | 0777;
        e.target = f.link;
        e.size = f.link.size();
      } else {
        e.kind = EntryKind::kFile;
        e.mode = S_IFREG | f.mode;
        auto chunks = StoreContent(*repo_, s, f.content);
        EXPECT_TRUE(chunks.ok());
        e.chunks = *chunks;
        e.size = f.content.size();
        counts->file_count++;
        counts->total_bytes += e.size;
      }
      entries.push_back(std::move(e));
    }
    for (const auto& [name, unused] : subdirs) {
      TreeEntry e;
      e.name = name;
      e.kind = EntryKind::kDirectory;
      e.mode = S_IFDIR | 0755;
      e.mtime_sec = 1000;
      size_t n = 0;
      e.tree = WriteTree(s, files, prefix + name + "/", counts, &n);
      e.size = n;
      entries.push_back(std::move(e));
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    if (entry_count) *entry_count = entries.size();
    auto id = WriteDirectory(s, entries);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return *id;
  }

  // Commits `files` on top of `branch`'s head.
  ObjectId CommitFiles(const std::string& branch, const Files& files, int64_t time = 0) {
    auto head = repo_->GetBranch("d", branch);
    EXPECT_TRUE(head.ok());
    auto s = repo_->BeginWrite();
    EXPECT_TRUE(s.ok());
    Commit c;
    c.dataset = "d";
    c.root = WriteTree(**s, files, "", &c);
    if (*head) c.parents.push_back(**head);
    c.time_sec = time ? time : ++clock_;
    c.message = "commit";
    auto id = (*s)->CommitToBranch(c, branch, *head);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return *id;
  }

  // Reads a commit's tree back as Files (directories implied by paths).
  Files ReadFiles(const ObjectId& commit) {
    auto c = repo_->ReadCommit(commit);
    EXPECT_TRUE(c.ok());
    Files out;
    ReadInto(c->root, "", &out);
    return out;
  }
  void ReadInto(const ObjectId& tree, const std::string& prefix, Files* out) {
    auto entries = ReadDirectory(*repo_, tree);
    ASSERT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      std::string path = prefix + e.name;
      if (e.kind == EntryKind::kDirectory) {
        ReadInto(e.tree, path + "/", out);
        continue;
      }
      File f;
      f.mtime = e.mtime_sec;
      if (e.kind == EntryKind::kSymlink) {
        f.link = e.target;
        f.mode = 0;
      } else {
        f.mode = e.mode & 07777;
        TUSK_ASSERT_OK(ReadFileContent(*repo_, e, [&](std::string_view p) {
          f.content.append(p);
          return Status::Ok();
        }));
      }
      (*out)[path] = f;
    }
  }
  void ExpectSameFiles(const Files& got, const Files& want) {
    // mtimes are compared by the tests that care about them.
    auto strip = [](Files f) {
      for (auto& [p, x] : f) x.mtime = 0;
      return f;
    };
    EXPECT_EQ(strip(got).size(), strip(want).size());
    for (const auto& [path, f] : strip(want)) {
      auto it = got.find(path);
      if (it == got.end()) {
        ADD_FAILURE() << "missing " << path;
        continue;
      }
      EXPECT_EQ(it->second.content, f.content) << path;
      EXPECT_EQ(it->second.mode, f.mode) << path;
      EXPECT_EQ(it->second.link, f.link) << path;
    }
    for (const auto& [path, f] : got)
      if (!want.count(path)) ADD_FAILURE() << "unexpected " << path;
  }

  ObjectId Branch(const std::string& name, const ObjectId& at) {
    TUSK_EXPECT_OK(repo_->CreateBranch("d", name, at));
    return at;
  }

  Result<BranchMergeResult> Merge(const std::string& from, const std::string& into = "main",
                                  MergeFavor favor = MergeFavor::kNone, bool no_ff = false, bool stage = false) {
    TUSK_ASSIGN_OR_RETURN(ObjectId source, repo_->Resolve("d@" + from));
    BranchMergeRequest r;
    r.dataset = "d";
    r.branch = into;
    r.source = source;
    r.source_name = "d@" + from;
    r.author = "tester";
    r.tree.favor = favor;
    r.no_ff = no_ff;
    r.stage = stage;
    return MergeIntoBranch(*repo_, r);
  }

  TempDir dir_;
  std::unique_ptr<Repository> repo_;
  int64_t clock_ = 1000;
};

std::string Lines(int n, const std::map<int, std::string>& changed = {}) {
  std::string out;
  for (int i = 0; i < n; i++) {
    auto it = changed.find(i);
    out += it != changed.end() ? it->second : "line " + std::to_string(i);
    out += "\n";
  }
  return out;
}

TEST_F(MergeTest, TheMergeBaseIsTheNewestCommonAncestor) {
  ObjectId a = CommitFiles("main", {{"x", {"1"}}});
  ObjectId b = CommitFiles("main", {{"x", {"2"}}});
  Branch("side", b);
  ObjectId ours = CommitFiles("main", {{"x", {"3"}}});
  ObjectId theirs = CommitFiles("side", {{"x", {"4"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto base, FindMergeBase(*repo_, ours, theirs));
  ASSERT_TRUE(base);
  EXPECT_EQ(*base, b);
  TUSK_ASSERT_OK_AND_ASSIGN(bool yes, IsAncestor(*repo_, a, theirs));
  EXPECT_TRUE(yes);
  TUSK_ASSERT_OK_AND_ASSIGN(bool no, IsAncestor(*repo_, theirs, ours));
  EXPECT_FALSE(no);
}

TEST_F(MergeTest, AfterAMergeTheNextMergeBaseIsTheMergedCommit) {
  CommitFiles("main", {{"x", {Lines(5)}}});
  Branch("side", *repo_->Resolve("d@main"));
  CommitFiles("main", {{"x", {Lines(5, {{0, "ours"}})}}});
  ObjectId theirs1 = CommitFiles("side", {{"x", {Lines(5, {{4, "theirs"}})}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto first, Merge("side"));
  ASSERT_EQ(first.outcome, BranchMergeResult::Outcome::kMerged);
  ObjectId theirs2 = CommitFiles("side", {{"x", {Lines(5, {{4, "theirs"}, {2, "again"}})}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto base, FindMergeBase(*repo_, *first.commit, theirs2));
  ASSERT_TRUE(base);
  EXPECT_EQ(*base, theirs1);
  TUSK_ASSERT_OK_AND_ASSIGN(auto second, Merge("side"));
  ASSERT_EQ(second.outcome, BranchMergeResult::Outcome::kMerged);
  ExpectSameFiles(ReadFiles(*second.commit), {{"x", {Lines(5, {{0, "ours"}, {4, "theirs"}, {2, "again"}})}}});
}

TEST_F(MergeTest, ABranchThatHasNotMovedFastForwards) {
  ObjectId base = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", base);
  ObjectId theirs = CommitFiles("side", {{"x", {"2"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  EXPECT_EQ(r.outcome, BranchMergeResult::Outcome::kFastForward);
  EXPECT_EQ(*r.commit, theirs);
  EXPECT_EQ(**repo_->GetBranch("d", "main"), theirs);
}

TEST_F(MergeTest, NoFfMakesAMergeCommitWhereAFastForwardWouldDo) {
  ObjectId base = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", base);
  ObjectId theirs = CommitFiles("side", {{"x", {"2"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side", "main", MergeFavor::kNone, /*no_ff=*/true));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
  EXPECT_EQ(c.parents, (std::vector<ObjectId>{base, theirs}));
  ExpectSameFiles(ReadFiles(*r.commit), {{"x", {"2"}}});
}

TEST_F(MergeTest, ASourceAlreadyInTheBranchChangesNothing) {
  ObjectId base = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", base);
  ObjectId ours = CommitFiles("main", {{"x", {"2"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  EXPECT_EQ(r.outcome, BranchMergeResult::Outcome::kUpToDate);
  EXPECT_EQ(**repo_->GetBranch("d", "main"), ours);
}

TEST_F(MergeTest, ChangesMadeOnOneSideEachAreAllTakenInACommitWithTwoParents) {
  Files base = {{"keep", {"k"}}, {"ours/a", {"a"}}, {"theirs/b", {"b"}}, {"gone", {"g"}}, {"mode", {"m"}}};
  ObjectId b = CommitFiles("main", base);
  Branch("side", b);
  Files ours = base, theirs = base;
  ours["ours/a"].content = "a2";
  ours["ours/new"] = {"n"};
  ours.erase("gone");
  theirs["theirs/b"].content = "b2 longer";
  theirs["theirs/c/deep"] = {"deep"};
  theirs["mode"].mode = 0755;
  ObjectId o = CommitFiles("main", ours);
  ObjectId t = CommitFiles("side", theirs);
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  EXPECT_TRUE(r.tree.conflicts.empty());
  Files want = ours;
  want["theirs/b"].content = "b2 longer";
  want["theirs/c/deep"] = {"deep"};
  want["mode"].mode = 0755;
  ExpectSameFiles(ReadFiles(*r.commit), want);
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
  EXPECT_EQ(c.parents, (std::vector<ObjectId>{o, t}));
  EXPECT_EQ(c.file_count, want.size());
  uint64_t bytes = 0;
  for (const auto& [p, f] : want) bytes += f.content.size();
  EXPECT_EQ(c.total_bytes, bytes);
  EXPECT_EQ(c.message, "merge d@side into d@main");
}

TEST_F(MergeTest, ManyDirectoriesChangedOnBothSidesAllMerge) {
  // More directories changed on both sides, nested two deep, than the walk
  // reads ahead at once (DirPrefetcher's window), so some are read ahead,
  // some wait on a read under way and some are read when the walk gets
  // there; a directory whose sides are identical is queued once.
  Files base;
  for (int d = 0; d < 150; d++)
    for (int f = 0; f < 3; f++) {
      std::string dir = "d" + std::to_string(d) + "/";
      base[dir + "f" + std::to_string(f)] = {"base"};
      base[dir + "sub/f" + std::to_string(f)] = {"base"};
    }
  ObjectId b = CommitFiles("main", base);
  Branch("side", b);
  Files ours = base, theirs = base, want = base;
  for (int d = 0; d < 150; d++) {
    std::string dir = "d" + std::to_string(d) + "/";
    ours[dir + "f0"] = {"ours " + dir};
    theirs[dir + "f1"] = {"theirs " + dir};
    ours[dir + "sub/f0"] = {"ours sub " + dir};
    theirs[dir + "sub/f2"] = {"theirs sub " + dir};
    want[dir + "f0"] = ours[dir + "f0"];
    want[dir + "f1"] = theirs[dir + "f1"];
    want[dir + "sub/f0"] = ours[dir + "sub/f0"];
    want[dir + "sub/f2"] = theirs[dir + "sub/f2"];
  }
  CommitFiles("main", ours);
  CommitFiles("side", theirs);
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  EXPECT_TRUE(r.tree.conflicts.empty());
  ExpectSameFiles(ReadFiles(*r.commit), want);
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
  EXPECT_EQ(c.file_count, want.size());
}

TEST_F(MergeTest, TheSameChangeOnBothSidesIsTakenOnceAndCountedOnce) {
  ObjectId b = CommitFiles("main", {{"x", {"1"}}, {"y", {"y"}}});
  Branch("side", b);
  CommitFiles("main", {{"x", {"same new"}}, {"y", {"y"}}, {"both/new", {"nn"}}, {"o", {"o"}}});
  CommitFiles("side", {{"x", {"same new"}}, {"both/new", {"nn"}}, {"y", {"y"}}, {"t", {"t"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  Files want = {{"x", {"same new"}}, {"y", {"y"}}, {"both/new", {"nn"}}, {"o", {"o"}}, {"t", {"t"}}};
  ExpectSameFiles(ReadFiles(*r.commit), want);
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
  EXPECT_EQ(c.file_count, 5u);
  EXPECT_EQ(c.total_bytes, 8u + 1 + 2 + 1 + 1);
}

TEST_F(MergeTest, TextEditsOfDifferentLinesMergeLineByLine) {
  ObjectId b = CommitFiles("main", {{"notes.txt", {Lines(20)}}});
  Branch("side", b);
  CommitFiles("main", {{"notes.txt", {Lines(20, {{2, "ours fixed line 2"}})}}});
  CommitFiles("side", {{"notes.txt", {Lines(20, {{15, "theirs fixed line 15"}})}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  ExpectSameFiles(ReadFiles(*r.commit),
                  {{"notes.txt", {Lines(20, {{2, "ours fixed line 2"}, {15, "theirs fixed line 15"}})}}});
  ASSERT_EQ(r.tree.merged_files.size(), 1u);
  EXPECT_EQ(r.tree.merged_files[0].method, "lines");
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
  EXPECT_EQ(c.total_bytes, ReadFiles(*r.commit)["notes.txt"].content.size());
}

TEST_F(MergeTest, OneLineChangedDifferentlyIsATextConflictAndNothingLands) {
  ObjectId b = CommitFiles("main", {{"notes.txt", {Lines(5)}}});
  Branch("side", b);
  ObjectId o = CommitFiles("main", {{"notes.txt", {Lines(5, {{2, "ours"}})}}});
  CommitFiles("side", {{"notes.txt", {Lines(5, {{2, "theirs"}})}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
  ASSERT_EQ(r.tree.conflicts.size(), 1u);
  EXPECT_EQ(r.tree.conflicts[0].kind, MergeConflict::Kind::kText);
  EXPECT_EQ(r.tree.conflicts[0].path, "notes.txt");
  EXPECT_NE(r.tree.conflicts[0].marked.find("<<<<<<< "), std::string::npos);
  EXPECT_EQ(**repo_->GetBranch("d", "main"), o);
}

TEST_F(MergeTest, OursAndTheirsResolveEveryConflictForOneSide) {
  ObjectId b = CommitFiles("main", {{"t.txt", {Lines(5)}}, {"bin", {std::string("\0a", 2)}}, {"del", {"d"}}});
  Branch("side", b);
  Branch("side2", b);
  CommitFiles("main", {{"t.txt", {Lines(5, {{1, "ours"}, {4, "ours only"}})}},
                       {"bin", {std::string("\0o", 2)}}});
  Files theirs = {{"t.txt", {Lines(5, {{1, "theirs"}})}}, {"bin", {std::string("\0t", 2)}}, {"del", {"changed"}}};
  CommitFiles("side", theirs);
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side", "main", MergeFavor::kTheirs));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  Files got = ReadFiles(*r.commit);
  EXPECT_EQ(got["bin"].content, std::string("\0t", 2));
  EXPECT_EQ(got["del"].content, "changed");
  EXPECT_EQ(got["t.txt"].content, Lines(5, {{1, "theirs"}, {4, "ours only"}}));
}

TEST_F(MergeTest, ModifyDeleteIsAConflictNamingWhoDidWhich) {
  ObjectId b = CommitFiles("main", {{"x", {"1"}}, {"y", {"y"}}});
  Branch("side", b);
  CommitFiles("main", {{"y", {"y"}}});
  CommitFiles("side", {{"x", {"2"}}, {"y", {"y"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
  ASSERT_EQ(r.tree.conflicts.size(), 1u);
  EXPECT_EQ(r.tree.conflicts[0].kind, MergeConflict::Kind::kModifyDelete);
  EXPECT_EQ(r.tree.conflicts[0].detail, "deleted in ours, changed in theirs");
}

TEST_F(MergeTest, AFileOnOneSideAndADirectoryOnTheOtherConflict) {
  ObjectId b = CommitFiles("main", {{"y", {"y"}}});
  Branch("side", b);
  CommitFiles("main", {{"y", {"y"}}, {"p", {"file"}}});
  CommitFiles("side", {{"y", {"y"}}, {"p/inner", {"dir"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
  ASSERT_EQ(r.tree.conflicts.size(), 1u);
  EXPECT_EQ(r.tree.conflicts[0].kind, MergeConflict::Kind::kFileDirectory);
  EXPECT_EQ(r.tree.conflicts[0].path, "p");
}

TEST_F(MergeTest, ModeSetDifferentlyOnBothSidesConflicts) {
  ObjectId b = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", b);
  CommitFiles("main", {{"x", {"1", 0600}}});
  CommitFiles("side", {{"x", {"1", 0755}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
  ASSERT_EQ(r.tree.conflicts.size(), 1u);
  EXPECT_EQ(r.tree.conflicts[0].kind, MergeConflict::Kind::kMode);
}

TEST_F(MergeTest, SymlinksRetargetedDifferentlyConflict) {
  ObjectId b = CommitFiles("main", {{"l", {"", 0, "a"}}});
  Branch("side", b);
  CommitFiles("main", {{"l", {"", 0, "b"}}});
  CommitFiles("side", {{"l", {"", 0, "c"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
  EXPECT_EQ(r.tree.conflicts[0].kind, MergeConflict::Kind::kSymlink);
}

TEST_F(MergeTest, ADirectoryDeletedOnOneSideKeepsWhatTheOtherSideAdded) {
  ObjectId b = CommitFiles("main", {{"dir/a", {"a"}}, {"dir/b", {"b"}}, {"top", {"t"}}});
  Branch("side", b);
  CommitFiles("main", {{"top", {"t"}}});
  CommitFiles("side", {{"dir/a", {"a"}}, {"dir/b", {"b"}}, {"dir/new", {"new"}}, {"top", {"t"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
  ExpectSameFiles(ReadFiles(*r.commit), {{"dir/new", {"new"}}, {"top", {"t"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
  EXPECT_EQ(c.file_count, 2u);
  EXPECT_EQ(c.total_bytes, 4u);
}

TEST_F(MergeTest, BinaryContentChangedOnBothSidesConflicts) {
  ObjectId b = CommitFiles("main", {{"img.bin", {std::string("\0\1\2", 3)}}});
  Branch("side", b);
  CommitFiles("main", {{"img.bin", {std::string("\0\1\3", 3)}}});
  CommitFiles("side", {{"img.bin", {std::string("\0\1\4", 3)}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side"));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
  EXPECT_EQ(r.tree.conflicts[0].kind, MergeConflict::Kind::kBinary);
}

TEST_F(MergeTest, StagingWritesEveryConflictAsAPersonResolvesItAndMovesNoBranch) {
  ObjectId b = CommitFiles("main", {{"notes.txt", {Lines(5)}},
                                    {"img.bin", {std::string("\0\1\2", 3)}},
                                    {"gone", {"g"}},
                                    {"p", {"file"}},
                                    {"q", {"q"}},
                                    {"same", {"s"}}});
  Branch("side", b);
  ObjectId ours = CommitFiles("main", {{"notes.txt", {Lines(5, {{2, "ours"}})}},
                                       {"img.bin", {std::string("\0\1\3", 3)}},
                                       {"p", {"file, ours"}},
                                       {"q", {"q, ours"}},
                                       {"q~theirs", {"a file of ours with that name"}},
                                       {"same", {"s"}},
                                       {"mine", {"m"}}});
  CommitFiles("side", {{"notes.txt", {Lines(5, {{2, "theirs"}})}},
                       {"img.bin", {std::string("\0\1\4", 3)}},
                       {"gone", {"changed in theirs"}},
                       {"p/inner", {"dir"}},
                       {"q", {"q, theirs"}},
                       {"same", {"s"}},
                       {"yours", {"y"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side", "main", MergeFavor::kNone, false, true));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kStaged);
  TUSK_ASSERT_OK_AND_ASSIGN(auto head, repo_->GetBranch("d", "main"));
  EXPECT_EQ(head, ours);
  ASSERT_TRUE(r.staged.has_value());

  std::map<std::string, std::pair<MergeConflict::Kind, std::string>> conflicts;
  for (const auto& c : r.tree.conflicts) conflicts[c.path] = {c.kind, c.theirs_path};
  using K = MergeConflict::Kind;
  EXPECT_EQ(conflicts["notes.txt"], std::pair(K::kText, std::string()));
  EXPECT_EQ(conflicts["img.bin"], std::pair(K::kBinary, std::string("img.bin~theirs")));
  EXPECT_EQ(conflicts["gone"], std::pair(K::kModifyDelete, std::string("gone~theirs")));
  EXPECT_EQ(conflicts["p"], std::pair(K::kFileDirectory, std::string("p~theirs")));
  EXPECT_EQ(conflicts["q"], std::pair(K::kText, std::string()));
  EXPECT_EQ(conflicts.size(), 5u);

  Files got;
  ReadInto(*r.staged, "", &got);
  EXPECT_TRUE(got["notes.txt"].content.find("<<<<<<< ") != std::string::npos) << got["notes.txt"].content;
  EXPECT_EQ(got["img.bin"].content, std::string("\0\1\3", 3));          // ours at the path
  EXPECT_EQ(got["img.bin~theirs"].content, std::string("\0\1\4", 3));   // theirs beside it
  EXPECT_FALSE(got.count("gone"));                                      // ours deleted it
  EXPECT_EQ(got["gone~theirs"].content, "changed in theirs");
  EXPECT_EQ(got["p"].content, "file, ours");
  EXPECT_EQ(got["p~theirs/inner"].content, "dir");
  EXPECT_EQ(got["q~theirs"].content, "a file of ours with that name");  // not overwritten
  EXPECT_EQ(got["mine"].content, "m");
  EXPECT_EQ(got["yours"].content, "y");
  EXPECT_EQ(got["same"].content, "s");
}

TEST_F(MergeTest, ATheirsNameTakenOnEitherSideGetsANumber) {
  ObjectId b = CommitFiles("main", {{"x", {std::string("\0a", 2)}}});
  Branch("side", b);
  CommitFiles("main", {{"x", {std::string("\0b", 2)}}, {"x~theirs", {"ours"}}});
  CommitFiles("side", {{"x", {std::string("\0c", 2)}}, {"x~theirs.2", {"theirs"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side", "main", MergeFavor::kNone, false, true));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kStaged);
  ASSERT_EQ(r.tree.conflicts.size(), 1u);
  EXPECT_EQ(r.tree.conflicts[0].theirs_path, "x~theirs.3");
  Files got;
  ReadInto(*r.staged, "", &got);
  EXPECT_EQ(got["x~theirs.3"].content, std::string("\0c", 2));
  EXPECT_EQ(got["x~theirs"].content, "ours");
  EXPECT_EQ(got["x~theirs.2"].content, "theirs");
}

TEST_F(MergeTest, StagingABranchThatCouldFastForwardStagesAMerge) {
  ObjectId b = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", b);
  CommitFiles("side", {{"x", {"2"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge("side", "main", MergeFavor::kNone, false, true));
  ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kStaged);
  EXPECT_TRUE(r.tree.conflicts.empty());
  Files got;
  ReadInto(*r.staged, "", &got);
  ExpectSameFiles(got, {{"x", {"2"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(auto head, repo_->GetBranch("d", "main"));
  EXPECT_EQ(head, b);
}

TEST_F(MergeTest, UnrelatedHistoriesAreRefusedUnlessAllowed) {
  CommitFiles("main", {{"x", {"1"}}});
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "other", std::nullopt));
  CommitFiles("other", {{"y", {"2"}}});
  auto refused = Merge("other");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("share no history"), std::string::npos);
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId source, repo_->Resolve("d@other"));
  BranchMergeRequest r;
  r.dataset = "d";
  r.branch = "main";
  r.source = source;
  r.source_name = "d@other";
  r.allow_unrelated = true;
  TUSK_ASSERT_OK_AND_ASSIGN(auto merged, MergeIntoBranch(*repo_, r));
  ASSERT_EQ(merged.outcome, BranchMergeResult::Outcome::kMerged);
  ExpectSameFiles(ReadFiles(*merged.commit), {{"x", {"1"}}, {"y", {"2"}}});
}

TEST_F(MergeTest, AVersionOfAnotherDatasetIsRefused) {
  CommitFiles("main", {{"x", {"1"}}});
  TUSK_ASSERT_OK(repo_->CreateDataset("e"));
  auto s = repo_->BeginWrite();
  ASSERT_TRUE(s.ok());
  Commit c;
  c.dataset = "e";
  TUSK_ASSERT_OK_AND_ASSIGN(c.root, WriteDirectory(**s, {}));
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId e_head, (*s)->CommitToBranch(c, "main", std::nullopt));
  s->reset();
  BranchMergeRequest r;
  r.dataset = "d";
  r.branch = "main";
  r.source = e_head;
  r.source_name = "e@main";
  auto refused = MergeIntoBranch(*repo_, r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(MergeTest, ACheckThatFailsBeforeLandingChangesNothing) {
  ObjectId b = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", b);
  ObjectId o = CommitFiles("main", {{"x", {"1"}}, {"o", {"o"}}});
  CommitFiles("side", {{"x", {"1"}}, {"t", {"t"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId source, repo_->Resolve("d@side"));
  BranchMergeRequest r;
  r.dataset = "d";
  r.branch = "main";
  r.source = source;
  r.source_name = "d@side";
  std::optional<ObjectId> seen_parent;
  r.prepare_commit = [&](Commit* c, WriteSession&) {
    seen_parent = c->parents.front();
    return Status::InvalidArgument("check 'no-t' failed");
  };
  auto refused = MergeIntoBranch(*repo_, r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(seen_parent, o);
  EXPECT_EQ(**repo_->GetBranch("d", "main"), o);
}

TEST_F(MergeTest, ABranchThatMovesDuringTheMergeIsNotOverwritten) {
  ObjectId b = CommitFiles("main", {{"x", {"1"}}});
  Branch("side", b);
  CommitFiles("main", {{"x", {"1"}}, {"o", {"o"}}});
  CommitFiles("side", {{"x", {"1"}}, {"t", {"t"}}});
  TUSK_ASSERT_OK_AND_ASSIGN(ObjectId source, repo_->Resolve("d@side"));
  BranchMergeRequest r;
  r.dataset = "d";
  r.branch = "main";
  r.source = source;
  r.source_name = "d@side";
  ObjectId moved;
  r.prepare_commit = [&](Commit*, WriteSession&) {
    moved = CommitFiles("main", {{"x", {"moved"}}});
    return Status::Ok();
  };
  auto lost = MergeIntoBranch(*repo_, r);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), Status::Code::kConflict);
  EXPECT_EQ(**repo_->GetBranch("d", "main"), moved);
}

// Random edits on two branches against a model of the per-path rules: each
// path is left alone, changed on one side, changed the same on both,
// changed on different lines (text merge), or changed on the same line,
// deleted against changed, or added on both with different content
// (conflicts).
TEST_F(MergeTest, RandomBranchesMergeAsTheModelSays) {
  for (uint32_t seed = 1; seed <= 12; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    std::string branch = "s" + std::to_string(seed);
    Files base;
    int n = 30 + static_cast<int>(rng() % 30);
    for (int i = 0; i < n; i++)
      base["d" + std::to_string(rng() % 6) + "/f" + std::to_string(i) + ".txt"] = {Lines(8, {{0, "file " + std::to_string(i)}})};
    CommitFiles("main", base);
    // Each round starts main and the side branch from a fresh common base.
    ObjectId b = *repo_->Resolve("d@main");
    TUSK_ASSERT_OK(repo_->CreateBranch("d", branch, b));
    Files ours = base, theirs = base, want = base;
    std::set<std::string> conflicts;
    int k = 0;
    for (const auto& [path, f] : base) {
      switch (rng() % 9) {
        case 0: break;
        case 1: ours[path].content = Lines(8, {{0, "file"}, {3, "ours " + path}}); want[path] = ours[path]; break;
        case 2: theirs[path].content = Lines(8, {{0, "file"}, {3, "theirs " + path}}); want[path] = theirs[path]; break;
        case 3:
          ours[path].content = theirs[path].content = want[path].content = "both the same " + path + "\n";
          break;
        case 4: {
          std::string first = f.content.substr(0, f.content.find('\n'));
          ours[path].content = Lines(8, {{0, first}, {1, "ours"}});
          theirs[path].content = Lines(8, {{0, first}, {6, "theirs"}});
          want[path].content = Lines(8, {{0, first}, {1, "ours"}, {6, "theirs"}});
          break;
        }
        case 5:
          ours[path].content = Lines(8, {{4, "ours"}});
          theirs[path].content = Lines(8, {{4, "theirs"}});
          conflicts.insert(path);
          break;
        case 6:
          ours.erase(path);
          theirs[path].content = "changed " + path;
          conflicts.insert(path);
          break;
        case 7: ours.erase(path); theirs.erase(path); want.erase(path); break;
        case 8: theirs.erase(path); want.erase(path); break;
      }
      if (rng() % 10 == 0) {
        std::string added = "new/" + std::to_string(k++) + ".txt";
        ours[added] = {"ours add\n"};
        theirs[added] = {"theirs add\n"};
        conflicts.insert(added);  // added on both, no common lines
      }
    }
    CommitFiles("main", ours);
    CommitFiles(branch, theirs);
    TUSK_ASSERT_OK_AND_ASSIGN(auto r, Merge(branch));
    std::set<std::string> got;
    for (const auto& c : r.tree.conflicts) got.insert(c.path);
    EXPECT_EQ(got, conflicts);
    if (conflicts.empty()) {
      ASSERT_EQ(r.outcome, BranchMergeResult::Outcome::kMerged);
      ExpectSameFiles(ReadFiles(*r.commit), want);
      TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*r.commit));
      uint64_t bytes = 0;
      for (const auto& [p, f] : want) bytes += f.content.size();
      EXPECT_EQ(c.file_count, want.size());
      EXPECT_EQ(c.total_bytes, bytes);
    } else {
      EXPECT_EQ(r.outcome, BranchMergeResult::Outcome::kConflicts);
      // Resolved for theirs, the merge lands and matches the model with
      // theirs at every conflicting path.
      TUSK_ASSERT_OK_AND_ASSIGN(auto t, Merge(branch, "main", MergeFavor::kTheirs));
      ASSERT_EQ(t.outcome, BranchMergeResult::Outcome::kMerged);
      Files want_t = want;
      for (const auto& p : conflicts) {
        if (theirs.count(p)) want_t[p] = theirs[p];
        else want_t.erase(p);
      }
      ExpectSameFiles(ReadFiles(*t.commit), want_t);
      TUSK_ASSERT_OK_AND_ASSIGN(Commit c, repo_->ReadCommit(*t.commit));
      EXPECT_EQ(c.file_count, want_t.size());
    }
  }
}

}  // namespace
}  // namespace tusk
