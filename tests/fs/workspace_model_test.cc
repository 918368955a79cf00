// Differential (model-based) test of branch workspaces: seeded random
// sequences of file operations are applied to a workspace through a real
// mount and to a plain directory on the local disk (the model). After every
// operation the results (return value and errno) must agree and the two
// trees must be identical; every few sequences the workspace is committed,
// and the commit is exported and compared with the model too.
//
// TUSK_MODEL_SEQUENCES (default 1000; 100 in a sanitizer build) and
// TUSK_MODEL_SEED (default 1) make a failure reproducible: the message names
// the seed, sequence and step.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "store/importer.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"
#include "tests/sanitizer_scale.h"

namespace tusk {
namespace {

using namespace tusk::fstest;

using tusk::test_scale::EnvNumber;

// One operation, applied the same way under two roots.
struct Op {
  std::string text;  // for failure messages
  std::function<int(const std::string& root)> apply;  // returns 0 or an errno
};

int Errno0(int rc) { return rc == 0 ? 0 : errno; }

// After a content change both sides get the same mtime, so the trees can be
// compared with times (directory times, which every entry change moves, are
// not compared).
int Stamp(const std::string& path, int64_t sec) {
  struct timespec t[2] = {{sec, 0}, {sec, 0}};
  return Errno0(::utimensat(AT_FDCWD, path.c_str(), t, 0));
}

class ModelGen {
 public:
  explicit ModelGen(uint64_t seed) : rng_(seed) {}
  int64_t NextStamp() { return 1700000000 + static_cast<int64_t>(++stamps_); }

  // Picks an operation on names under `dir` ("" or a relative directory).
  // The names come from a small set, so operations collide often.
  Op Next(const std::string& seq) {
    auto pick = [&](std::initializer_list<const char*> names) {
      std::vector<const char*> v(names);
      return seq + "/" + v[rng_() % v.size()];
    };
    auto file = [&] { return pick({"f1", "f2", "d1/f3", "d1/d2/f4", "d2/f5", "f6"}); };
    auto dir = [&] { return pick({"d1", "d2", "d1/d2", "d3", "d1/d3"}); };
    auto any = [&] { return rng_() % 2 ? file() : dir(); };
    switch (rng_() % 14) {
      case 0:
      case 1: {  // write a whole file (create or truncate)
        std::string p = file();
        std::string data = Content(rng_() % 3 == 0 ? 200000 : 3000);
        int64_t t = NextStamp();
        return {"write " + p + " (" + std::to_string(data.size()) + " B)", [p, data, t](const std::string& r) {
                  int fd = ::open((r + "/" + p).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                  if (fd < 0) return errno;
                  ssize_t n = ::write(fd, data.data(), data.size());
                  int e = n == static_cast<ssize_t>(data.size()) ? 0 : errno;
                  ::close(fd);
                  return e ? e : Stamp(r + "/" + p, t);
                }};
      }
      case 2: {  // pwrite into an existing file (maybe past its end)
        std::string p = file();
        uint64_t off = rng_() % 250000;
        std::string data = Content(1 + rng_() % 5000);
        int64_t t = NextStamp();
        return {"pwrite " + p + " @" + std::to_string(off), [p, off, data, t](const std::string& r) {
                  int fd = ::open((r + "/" + p).c_str(), O_WRONLY | O_CLOEXEC);
                  if (fd < 0) return errno;
                  ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off));
                  int e = n == static_cast<ssize_t>(data.size()) ? 0 : errno;
                  ::close(fd);
                  return e ? e : Stamp(r + "/" + p, t);
                }};
      }
      case 3: {  // append
        std::string p = file();
        std::string data = Content(1 + rng_() % 3000);
        int64_t t = NextStamp();
        return {"append " + p, [p, data, t](const std::string& r) {
                  int fd = ::open((r + "/" + p).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
                  if (fd < 0) return errno;
                  ssize_t n = ::write(fd, data.data(), data.size());
                  int e = n == static_cast<ssize_t>(data.size()) ? 0 : errno;
                  ::close(fd);
                  return e ? e : Stamp(r + "/" + p, t);
                }};
      }
      case 4: {
        std::string p = file();
        off_t size = static_cast<off_t>(rng_() % 300000);
        int64_t t = NextStamp();
        return {"truncate " + p + " " + std::to_string(size), [p, size, t](const std::string& r) {
                  int e = Errno0(::truncate((r + "/" + p).c_str(), size));
                  return e ? e : Stamp(r + "/" + p, t);
                }};
      }
      case 5: {
        std::string p = file();
        return {"unlink " + p, [p](const std::string& r) { return Errno0(::unlink((r + "/" + p).c_str())); }};
      }
      case 6:
      case 7: {
        std::string p = dir();
        return {"mkdir " + p, [p](const std::string& r) { return Errno0(::mkdir((r + "/" + p).c_str(), 0755)); }};
      }
      case 8: {
        std::string p = dir();
        return {"rmdir " + p, [p](const std::string& r) { return Errno0(::rmdir((r + "/" + p).c_str())); }};
      }
      case 9:
      case 10: {
        std::string a = any(), b = any();
        bool noreplace = rng_() % 4 == 0;
        return {std::string(noreplace ? "rename-noreplace " : "rename ") + a + " " + b,
                [a, b, noreplace](const std::string& r) {
                  return Errno0(::renameat2(AT_FDCWD, (r + "/" + a).c_str(), AT_FDCWD, (r + "/" + b).c_str(),
                                            noreplace ? RENAME_NOREPLACE : 0));
                }};
      }
      case 11: {
        std::string p = file();
        std::string target = "t" + std::to_string(rng_() % 3);
        return {"symlink " + p + " -> " + target,
                [p, target](const std::string& r) { return Errno0(::symlink(target.c_str(), (r + "/" + p).c_str())); }};
      }
      case 12: {  // chmod of regular files (directories stay searchable)
        std::string p = any();
        mode_t mode = std::vector<mode_t>{0600, 0644, 0755, 0640}[rng_() % 4];
        return {"chmod " + p + " " + ModeStr(mode), [p, mode](const std::string& r) {
                  struct stat st;
                  if (::lstat((r + "/" + p).c_str(), &st) != 0) return errno;
                  if (!S_ISREG(st.st_mode)) return 0;
                  return Errno0(::chmod((r + "/" + p).c_str(), mode));
                }};
      }
      default: {
        std::string p = any();
        int64_t sec = 1600000000 + static_cast<int64_t>(rng_() % 100000000);
        return {"utimes " + p, [p, sec](const std::string& r) {
                  struct timespec t[2] = {{sec, 0}, {sec, 500}};
                  return Errno0(::utimensat(AT_FDCWD, (r + "/" + p).c_str(), t, AT_SYMLINK_NOFOLLOW));
                }};
      }
    }
  }

 private:
  std::string Content(size_t n) {
    std::string s(n, '\0');
    uint64_t x = rng_();
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      s[i] = static_cast<char>('a' + (x >> 60));
    }
    return s;
  }
  std::mt19937_64 rng_;
  uint64_t stamps_ = 0;
};

TEST(WorkspaceModelTest, RandomOperationSequencesMatchALocalDirectory) {
  // Fewer in a sanitizer build (tests/sanitizer_scale.h): 1000 sequences took
  // over ctest's 600 s in CI's ASan pass.
  constexpr uint64_t kDefaultSequences = tusk::test_scale::ForThisBuild<uint64_t>(1000, 100);
  const uint64_t sequences = EnvNumber("TUSK_MODEL_SEQUENCES", kDefaultSequences);
  const uint64_t seed = EnvNumber("TUSK_MODEL_SEED", 1);
  const uint64_t commit_every = 50;
  TempDir tmp;
  std::string store = tmp.Sub("store"), model = tmp.Sub("model"), mnt = tmp.Sub("mnt");
  ASSERT_TRUE(MkDir(model));
  ASSERT_TRUE(MkDir(mnt));
  ASSERT_TRUE(Repository::Create(store, StoreConfig{}).ok());
  {
    auto repo = Repository::Open(store);
    ASSERT_TRUE(repo.ok());
    ASSERT_TRUE((*repo)->CreateDataset("m").ok());
    // A first commit, so the workspace starts from committed data.
    std::string seedsrc = tmp.Sub("seedsrc");
    ASSERT_TRUE(MkDir(seedsrc));
    ASSERT_TRUE(WriteFile(seedsrc + "/base.txt", "base\n"));
    ASSERT_TRUE(WriteFile(model + "/base.txt", "base\n"));
    ASSERT_TRUE(SetMtime(seedsrc + "/base.txt", 1600000000, 0));
    ASSERT_TRUE(SetMtime(model + "/base.txt", 1600000000, 0));
    ImportOptions options;
    options.message = "seed";
    ASSERT_TRUE(ImportDirectory(**repo, seedsrc, "m", "main", options).ok());
  }
  MountGuard mounts;
  ASSERT_TRUE(mounts.StartForeground(store, {}, mnt, tmp.Sub("mount.log")));
  std::string ws = mnt + "/m/main";
  CompareOptions compare;
  compare.owner = true;
  compare.dir_mtime = false;
  ModelGen gen(seed);
  std::mt19937_64 lengths(seed * 7 + 3);
  uint64_t ops = 0, commits = 0;
  for (uint64_t s = 0; s < sequences; s++) {
    std::string seq = "s" + std::to_string(s % 40);  // sequences reuse directories, so state carries over
    if (::mkdir((model + "/" + seq).c_str(), 0755) == 0) {
      ASSERT_EQ(::mkdir((ws + "/" + seq).c_str(), 0755), 0) << Errno();
    }
    uint64_t steps = 3 + lengths() % 10;
    for (uint64_t i = 0; i < steps; i++) {
      Op op = gen.Next(seq);
      int want = op.apply(model);
      int got = op.apply(ws);
      std::string where = "seed " + std::to_string(seed) + " sequence " + std::to_string(s) + " step " +
                          std::to_string(i) + ": " + op.text;
      ASSERT_EQ(got, want) << where << ": workspace errno " << got << " (" << Errno(got) << "), local "
                           << want << " (" << Errno(want) << ")";
      auto diffs = CompareTrees(model + "/" + seq, ws + "/" + seq, compare);
      ASSERT_TRUE(diffs.empty()) << where << ":\n" << JoinFirst(diffs);
      ops++;
    }
    if ((s + 1) % commit_every == 0 || s + 1 == sequences) {
      RunResult c = Tusk(store, {"commit", "m@main", "-m", "model " + std::to_string(s)});
      ASSERT_EQ(c.exit_code, 0) << "seed " << seed << " after sequence " << s << ": " << c;
      commits++;
      auto diffs = CompareTrees(model, ws, compare);
      ASSERT_TRUE(diffs.empty()) << "workspace after commit " << commits << ":\n" << JoinFirst(diffs);
      std::string out = tmp.Sub("export" + std::to_string(commits));
      RunResult e = Tusk(store, {"export", "m@main", out});
      ASSERT_EQ(e.exit_code, 0) << e;
      diffs = CompareTrees(model, out, compare);
      ASSERT_TRUE(diffs.empty()) << "export of commit " << commits << " (seed " << seed << "):\n" << JoinFirst(diffs);
      std::filesystem::remove_all(out);
    }
  }
  RecordProperty("operations", std::to_string(ops));
  RecordProperty("commits", std::to_string(commits));
  std::cout << "[ model ] " << sequences << " sequences, " << ops << " operations, " << commits
            << " commits, seed " << seed << std::endl;
}

}  // namespace
}  // namespace tusk
