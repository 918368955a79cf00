// Real programs on a mounted commit: tar, rsync, du, find, grep, sha256sum
// and a Python multiprocessing reader. Each must see exactly the imported
// tree. A test whose program is missing is skipped with the reason.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "store/importer.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"

namespace tusk {
namespace {

using namespace tusk::fstest;

struct Shared {
  TempDir tmp;
  TempDir scratch{ScratchBase()};
  std::string store, src;
  RichTreeInfo info;
  uint64_t file_bytes = 0;
};
Shared* g = nullptr;

std::string HexOf(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

class ProgramsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g = new Shared;
    g->store = g->tmp.Sub("store");
    g->src = g->scratch.Sub("src");
    BuildRichTree(g->src, 0, &g->info);
    // A few hundred files of assorted sizes for the parallel readers.
    ASSERT_TRUE(MkDir(g->src + "/many"));
    for (int i = 0; i < 300; i++) {
      std::string rel = "many/file-" + std::to_string(i) + ".dat";
      size_t size = (static_cast<size_t>(i) * 7919) % (200 * 1024);
      ASSERT_TRUE(WriteFile(g->src + "/" + rel, i % 3 ? RandomBytes(size, 1000 + i) : TextBytes(size, 2000 + i)));
      g->info.files.push_back(rel);
    }
    std::sort(g->info.files.begin(), g->info.files.end());
    for (const auto& f : g->info.files) {
      struct stat st;
      ASSERT_EQ(::lstat((g->src + "/" + f).c_str(), &st), 0) << f;
      g->file_bytes += static_cast<uint64_t>(st.st_size);
    }
    ASSERT_TRUE(Repository::Create(g->store, StoreConfig{}).ok());
    auto repo = Repository::Open(g->store);
    ASSERT_TRUE(repo.ok());
    ASSERT_TRUE((*repo)->CreateDataset("ds").ok());
    ImportOptions options;
    options.message = "programs";
    options.author = "test";
    auto r = ImportDirectory(**repo, g->src, "ds", "main", options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  static void TearDownTestSuite() {
    delete g;
    g = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g, nullptr);
    mnt_ = tmp_.Sub("mnt");
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
    ASSERT_TRUE(mounts_.StartForeground(g->store, {}, mnt_, tmp_.Sub("mount.log")));
    commit_ = mnt_ + "/ds/main";
  }
  void TearDown() override { mounts_.CleanupAll(); }

  void Require(const std::string& program) {
    if (!HaveProgram(program)) GTEST_SKIP() << program << " is not installed";
  }

  TempDir tmp_;
  MountGuard mounts_;
  std::string mnt_, commit_;
};

TEST_F(ProgramsTest, TarOfACommitExtractsToTheSource) {
  Require("tar");
  if (IsSkipped()) return;
  std::string dest = tmp_.Sub("untar");
  ASSERT_EQ(::mkdir(dest.c_str(), 0755), 0);
  RunResult r = Sh("set -e; tar -cf - . | tar -xpf - -C '" + dest + "'", commit_);
  ASSERT_EQ(r.exit_code, 0) << r;
  // The tree has mtimes before 1970 and in 2100 on purpose; tar notes those.
  std::string complaints;
  std::istringstream err_lines(r.err);
  for (std::string line; std::getline(err_lines, line);)
    if (!HasSubstr(line, "time stamp")) complaints += line + "\n";
  EXPECT_EQ(complaints, "") << "tar complained";
  CompareOptions o;
  o.mtime_nsec = false;  // the tar format keeps seconds
  size_t compared = 0;
  o.entries_compared = &compared;
  auto diffs = CompareTrees(g->src, dest, o);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences:\n" << JoinFirst(diffs);
  EXPECT_GT(compared, g->info.files.size());
}

TEST_F(ProgramsTest, RsyncDryRunAndCopy) {
  Require("rsync");
  if (IsSkipped()) return;
  std::string dest = tmp_.Sub("rsync");
  RunResult dry = RunProgram({"rsync", "-a", "--dry-run", "-v", commit_ + "/", dest + "/"});
  ASSERT_EQ(dry.exit_code, 0) << dry;
  EXPECT_TRUE(HasSubstr(dry.out, "README.md")) << dry;
  EXPECT_TRUE(HasSubstr(dry.out, "data/a/b/c/d/e/deep.txt")) << dry;
  EXPECT_FALSE(std::filesystem::exists(dest + "/README.md")) << "a dry run copied files";
  RunResult copy = RunProgram({"rsync", "-a", commit_ + "/", dest + "/"});
  ASSERT_EQ(copy.exit_code, 0) << copy;
  CompareOptions o;
  o.mtime_nsec = false;
  auto diffs = CompareTrees(g->src, dest, o);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences:\n" << JoinFirst(diffs);
  // A second run finds nothing to transfer (sizes and mtimes agree).
  RunResult again = RunProgram({"rsync", "-a", "-i", commit_ + "/", dest + "/"});
  ASSERT_EQ(again.exit_code, 0) << again;
  std::string transfers;
  std::istringstream lines(again.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '>') transfers += line + "\n";
  EXPECT_EQ(transfers, "") << "rsync wanted to copy again";
}

TEST_F(ProgramsTest, DuPrintsAPositiveSize) {
  Require("du");
  if (IsSkipped()) return;
  RunResult r = RunProgram({"du", "-sb", commit_});
  ASSERT_EQ(r.exit_code, 0) << r;
  long long bytes = std::atoll(r.out.c_str());
  EXPECT_GT(bytes, 0) << r;
  EXPECT_GE(static_cast<uint64_t>(bytes), g->file_bytes) << "du -sb counts at least the file bytes" << r;
  RunResult blocks = RunProgram({"du", "-s", commit_});
  ASSERT_EQ(blocks.exit_code, 0) << blocks;
  EXPECT_GT(std::atoll(blocks.out.c_str()), 0) << blocks;
}

TEST_F(ProgramsTest, FindCountsEveryFile) {
  Require("find");
  if (IsSkipped()) return;
  RunResult r = Sh("find . -type f | wc -l", commit_);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(static_cast<size_t>(std::atoll(r.out.c_str())), g->info.files.size()) << r;
  for (const char* type : {"d", "l"}) {
    RunResult a = Sh(std::string("find . -type ") + type + " | sort", g->src);
    RunResult b = Sh(std::string("find . -type ") + type + " | sort", commit_);
    EXPECT_EQ(a.exit_code, 0) << a;
    EXPECT_EQ(b.exit_code, 0) << b;
    EXPECT_EQ(a.out, b.out) << "find -type " << type;
  }
  RunResult errors = Sh("find . > /dev/null", commit_);
  EXPECT_EQ(errors.exit_code, 0) << errors;
  EXPECT_EQ(errors.err, "") << errors;
}

TEST_F(ProgramsTest, GrepFindsAKnownString) {
  Require("grep");
  if (IsSkipped()) return;
  RunResult r = Sh("grep -r -l '" + g->info.needle + "' .", commit_);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "./" + g->info.needle_file + "\n") << r;
  RunResult line = Sh("grep -r -h '" + g->info.needle + "' .", commit_);
  EXPECT_EQ(line.out, "here is the " + g->info.needle + " in a haystack\n") << line;
  // A string that is nowhere: exit 1 (2 would mean a read error).
  RunResult none = Sh("grep -r -l 'no-such-string-anywhere-9d8c' .", commit_);
  EXPECT_EQ(none.exit_code, 1) << none;
  EXPECT_EQ(none.err, "") << none;
}

TEST_F(ProgramsTest, Sha256sumOfEveryFileMatches) {
  Require("sha256sum");
  if (IsSkipped()) return;
  const std::string cmd = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum";
  RunResult a = Sh(cmd, g->src);
  RunResult b = Sh(cmd, commit_);
  ASSERT_EQ(a.exit_code, 0) << a;
  ASSERT_EQ(b.exit_code, 0) << b;
  EXPECT_EQ(b.err, "") << b;
  EXPECT_EQ(a.out, b.out);
  size_t lines = static_cast<size_t>(std::count(b.out.begin(), b.out.end(), '\n'));
  EXPECT_EQ(lines, g->info.files.size());
}

TEST_F(ProgramsTest, PythonMultiprocessingReadersSeeTheSource) {
  Require("python3");
  if (IsSkipped()) return;
  std::string script = tmp_.Sub("hash_all.py");
  ASSERT_TRUE(WriteFile(script, R"PY(
import hashlib, os, sys
from multiprocessing import Pool

def digest(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            h.update(block)
    return path, h.hexdigest()

if __name__ == '__main__':
    root = sys.argv[1]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(p)
    files.sort()
    # Every worker also reads the largest file at once: concurrent readers
    # of the same chunks.
    biggest = max(files, key=os.path.getsize)
    with Pool(8) as pool:
        results = pool.map(digest, files + [biggest] * 8, chunksize=2)
    seen = {}
    for path, d in results:
        if seen.setdefault(path, d) != d:
            print('MISMATCH', path, file=sys.stderr)
            sys.exit(3)
    for path in files:
        print(os.fsencode(os.path.relpath(path, root)).hex(), seen[path])
)PY"));
  RunResult r = RunProgram({"python3", script, commit_}, RunOptions{"", 120});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::map<std::string, std::string> got;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string name, digest;
    f >> name >> digest;
    got[name] = digest;
  }
  EXPECT_EQ(got.size(), g->info.files.size());
  size_t mismatches = 0;
  for (const auto& rel : g->info.files) {
    auto want = Sha256File(g->src + "/" + rel);
    ASSERT_TRUE(want) << rel;
    auto it = got.find(HexOf(rel));
    if (it == got.end()) {
      ADD_FAILURE() << rel << " missing from the Python output";
      continue;
    }
    if (it->second != *want) {
      mismatches++;
      ADD_FAILURE() << rel << ": sha256 through the mount " << it->second << " != source " << *want;
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

}  // namespace
}  // namespace tusk
