// The damage campaign (issue 9): one flipped byte or one truncation at a
// time, spread over every kind of file a store holds (pack headers, record
// headers, payloads, range tables, footers and trailers, the LMDB index, the
// config, workspace files). After each:
//   - no command dies by a signal (a crash, an ASan report, SIGBUS);
//   - no read returns a wrong byte: an export (and a read through the mount)
//     either fails or gives exactly the reference bytes;
//   - fsck exits non-zero for every damage that changes reachable data or
//     metadata: any damage to a pack, and any damage after which a read
//     fails or a listing (log, ls, refs, status) differs from the reference;
//   - where the damage is in the index, rebuilding it from the packs brings
//     back every dataset, branch, tag and commit, with identical exports.
//
// TUSK_DAMAGE_FLIPS sets how many flips (default 160, 40 under ASan: the
// reduced campaign of the test command; `tools/test.sh --long` runs 1200
// on the normal build), TUSK_DAMAGE_SEED
// which ones (default 1). A failure names the file, offset and seed.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "store/repository.h"
#include "store/workspace/workspace.h"
#include "tests/cli/cli_helpers.h"
#include "tests/sanitizer_scale.h"

namespace tusk::cli_test {
namespace {

constexpr char kRebuildIndex[] = "--rebuild-index";  // tusk fsck --rebuild-index

// Fewer flips in a sanitizer build (tests/sanitizer_scale.h); every kind of
// damage is still reached.
constexpr uint64_t kDefaultFlips = tusk::test_scale::ForThisBuild<uint64_t>(160, 16);

// A byte range of one store file, and what kind of thing it holds.
struct Region {
  std::string file;  // relative to the store
  std::string kind;  // "pack header", "record header", "payload", "range table", "footer", "trailer", ...
  uint64_t begin = 0, end = 0;
};

uint32_t LoadU32(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint64_t LoadU64(const std::string& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}

// The regions of a sealed pack, from its trailer and footer (FORMAT.md):
// header 16 bytes | records (56-byte header, payload, optional range table) |
// footer (52 bytes an entry) | trailer 24 bytes.
std::vector<Region> PackRegions(const std::string& store, const std::string& rel) {
  constexpr uint64_t kFooterEntry = 52;
  std::string b = ReadFileOrDie(store + "/" + rel);
  std::vector<Region> out;
  if (b.size() < 16 + 24) return out;
  out.push_back({rel, "pack header", 0, 16});
  uint64_t footer = LoadU64(b, b.size() - 24);
  uint32_t count = LoadU32(b, b.size() - 16);
  EXPECT_EQ(footer + uint64_t{count} * kFooterEntry + 24, b.size()) << rel << " is not a sealed pack";
  if (footer + uint64_t{count} * kFooterEntry + 24 != b.size()) return out;
  std::vector<std::pair<uint64_t, uint32_t>> records;  // header offset, stored_len
  for (uint32_t i = 0; i < count; i++) {
    size_t e = footer + size_t{i} * kFooterEntry;
    records.emplace_back(LoadU64(b, e + 32), LoadU32(b, e + 44));
  }
  std::sort(records.begin(), records.end());
  for (size_t i = 0; i < records.size(); i++) {
    auto [at, stored] = records[i];
    uint64_t next = i + 1 < records.size() ? records[i + 1].first : footer;
    out.push_back({rel, "record header", at, at + 56});
    if (stored > 0) out.push_back({rel, "payload", at + 56, at + 56 + stored});
    if (at + 56 + stored < next) out.push_back({rel, "range table", at + 56 + stored, next});
  }
  if (count > 0) out.push_back({rel, "footer", footer, footer + uint64_t{count} * kFooterEntry});
  out.push_back({rel, "trailer", b.size() - 24, b.size()});
  return out;
}

void FlipByte(const std::string& path, uint64_t offset, uint8_t mask) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);  // packs are read-only files; we run as root
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1) << path << " @" << offset;
  c = static_cast<char>(c ^ mask);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

void Truncate(const std::string& path, uint64_t length) {
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(length)), 0) << path << ": " << std::strerror(errno);
}

using tusk::test_scale::EnvNumber;

bool Crashed(const RunResult& r) { return r.exit_code >= 128 || r.exit_code < 0; }

const std::vector<std::string> kRefs = {"d@main", "d@v1", "d@dev", "e@main"};

// What the checks saw after one damage.
struct Outcome {
  std::vector<std::string> crashes;    // command: exit status
  std::vector<std::string> wrong;      // reads that returned wrong bytes
  std::vector<std::string> changed;    // reads that failed, listings that differ
  bool fsck_failed = false;
  std::string fsck_output;
};

class DamageTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    reference_ = Path("reference");
    ASSERT_NO_FATAL_FAILURE(BuildReferenceStore());
    seed_ = EnvNumber("TUSK_DAMAGE_SEED", 1);
    flips_ = EnvNumber("TUSK_DAMAGE_FLIPS", kDefaultFlips);
  }

  // Two datasets; d has two commits, a tag v1 and a branch dev at the first,
  // and a workspace on dev with staged changes, one of them a partial
  // copy-up of a large committed file (a sidecar).
  void BuildReferenceStore() {
    UseStore(reference_);
    ASSERT_NO_FATAL_FAILURE(InitStore());
    ASSERT_NO_FATAL_FAILURE(CreateDataset("d"));
    ASSERT_NO_FATAL_FAILURE(CreateDataset("e"));
    std::string csv;
    for (int i = 0; csv.size() < (1u << 20) + 12345; i++)
      csv += std::to_string(i) + ",label_" + std::to_string(i % 7) + ",0." + std::to_string(i * 7919 % 1000) + "\n";
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("src"), {File("big.bin", RandomBytes((3 << 20) + 777, 5)),
                                                   File("table.csv", csv), File("small/a.txt", "alpha\n"),
                                                   File("small/b.txt", std::string(3000, 'b')),
                                                   File("small/empty", ""), Symlink("link", "small/a.txt")}));
    ASSERT_EQ(::setxattr(Path("src/small/a.txt").c_str(), "user.color", "red", 3, 0), 0) << std::strerror(errno);
    ASSERT_EQ(::link(Path("src/small/b.txt").c_str(), Path("src/small/b-again.txt").c_str()), 0);
    ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "first"));
    ASSERT_EQ(Run("tag", "d@v1", "d@main").exit_code, 0);
    ASSERT_EQ(Run("branch", "d@dev", "d@v1").exit_code, 0);
    ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(Path("src/small/a.txt"), "alpha, relabelled\n"));
    ASSERT_EQ(::unlink(Path("src/small/empty").c_str()), 0);
    ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(Path("src/new.bin"), RandomBytes(200000, 6)));
    ASSERT_NO_FATAL_FAILURE(Import(Path("src"), "d@main", "second"));
    ASSERT_NO_FATAL_FAILURE(MakeTree(Path("esrc"), {File("only.txt", "e's only file\n")}));
    ASSERT_NO_FATAL_FAILURE(Import(Path("esrc"), "e@main", "e first"));
    {
      auto repo = Repository::Open(reference_);
      ASSERT_TRUE(repo.ok()) << repo.status().ToString();
      auto ws = Workspace::Open(repo->get(), "d", "dev");
      ASSERT_TRUE(ws.ok()) << ws.status().ToString();
      auto big = (*ws)->Open("big.bin", O_RDWR);
      ASSERT_TRUE(big.ok()) << big.status().ToString();
      ASSERT_TRUE((*big)->Write(1 << 20, "staged bytes in the middle").ok());
      big->reset();
      auto made = (*ws)->Create("staged.txt", 0644, true, WsCaller{});
      ASSERT_TRUE(made.ok()) << made.status().ToString();
      ASSERT_TRUE((*made)->Write(0, "staged, not committed\n").ok());
      made->reset();
      ASSERT_TRUE((*ws)->Unlink("link").ok());
    }
    MakeDirs(Path("expected"));
    MakeDirs(Path("out"));
    for (const auto& ref : kRefs) ASSERT_NO_FATAL_FAILURE(Export(ref, Path("expected/" + ref)));
    expected_listings_ = Listings();
    RunResult fsck = Run("fsck");
    ASSERT_EQ(fsck.exit_code, 0) << "the undamaged store must check clean" << fsck;
  }

  // Every listing a user would compare: history, files, refs, staged changes.
  std::map<std::string, RunResult> Listings() {
    std::map<std::string, RunResult> out;
    out["log d"] = Run("log", "d@main", "--json");
    out["log d@dev"] = Run("log", "d@dev", "--json");
    out["log e"] = Run("log", "e", "--json");
    out["ls d@v1"] = Run("ls", "d@v1", "-l", "-r", "--json");
    out["dataset list"] = Run("dataset", "list", "--json");
    out["branch d"] = Run("branch", "d", "--json");
    out["tag d"] = Run("tag", "d", "--json");
    out["status d@dev"] = Run("status", "d@dev", "--json");
    return out;
  }

  // Every region of every file of the reference store, by kind.
  std::map<std::string, std::vector<Region>> RegionsByKind() {
    std::map<std::string, std::vector<Region>> by_kind;
    for (const auto& [rel, info] : Snapshot(reference_)) {
      if (!S_ISREG(info.mode) || info.size == 0) continue;
      auto add = [&](const std::string& kind) { by_kind[kind].push_back({rel, kind, 0, uint64_t(info.size)}); };
      if (rel.size() > 5 && rel.compare(rel.size() - 5, 5, ".pack") == 0) {
        for (Region& r : PackRegions(reference_, rel)) by_kind[r.kind].push_back(r);
      } else if (rel == "index/data.mdb") {
        add("index");
      } else if (rel == "config") {
        add("config");
      } else if (rel.rfind("workspaces/", 0) == 0 && rel.find("/upper/") == std::string::npos &&
                 rel.find("/lock") == std::string::npos) {
        add("workspace metadata");  // base, meta/<id> sidecars
      } else if (rel.rfind("workspaces/", 0) == 0 && rel.find("/upper/") != std::string::npos) {
        add("workspace staged file");
      }
    }
    return by_kind;
  }

  // Copies the reference store to a fresh scratch store and points Run at it.
  void FreshCopy() {
    std::error_code ec;
    std::filesystem::remove_all(Path("trial"), ec);
    RunResult cp = RunProcess({"/bin/cp", "-a", reference_, Path("trial")}, {"PATH=/usr/bin:/bin"});
    ASSERT_EQ(cp.exit_code, 0) << cp;
    UseStore(Path("trial"));
  }

  // Reads through a one-version mount of d@main: whole files and random
  // small ranges of big.bin. Only done for some trials (a mount costs more).
  void ReadThroughMount(Outcome* o) {
    std::string mnt = Path("mnt");
    MakeDirs(mnt);
    RunResult m = Run("mount", "d@main", mnt);
    if (Crashed(m)) o->crashes.push_back("mount: " + std::to_string(m.exit_code));
    if (m.exit_code != 0) {
      o->changed.push_back("mount failed");
      return;
    }
    for (const char* name : {"big.bin", "table.csv", "small/a.txt", "new.bin"}) {
      std::string expected = ReadFileOrDie(Path(std::string("expected/d@main/") + name));
      int fd = ::open((mnt + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        o->changed.push_back(std::string("mount open ") + name);
        continue;
      }
      std::mt19937_64 rng(seed_);
      for (int i = 0; i < 24; i++) {
        uint64_t at = i == 0 ? 0 : rng() % expected.size();
        size_t len = i == 0 ? expected.size() : std::min<size_t>(1 + rng() % 9000, expected.size() - at);
        std::string got(len, '\0');
        ssize_t n = ::pread(fd, got.data(), len, static_cast<off_t>(at));
        if (n < 0) {
          o->changed.push_back(std::string("mount read ") + name + ": " + std::strerror(errno));
          break;
        }
        if (got.compare(0, size_t(n), expected, at, size_t(n)) != 0) {
          o->wrong.push_back(std::string("mount read of ") + name + " at " + std::to_string(at));
          continue;
        }
        if (size_t(n) < len) {
          // The kernel splits a large read into several requests and returns
          // what came before one that failed: a short count is right if the
          // bytes are, and reading on from there must fail, not end the file.
          char next;
          ssize_t more = ::pread(fd, &next, 1, static_cast<off_t>(at + n));
          if (more < 0) {
            o->changed.push_back(std::string("mount read ") + name + ": " + std::strerror(errno));
            break;
          }
          o->wrong.push_back(std::string("mount read of ") + name + " at " + std::to_string(at) + " ended at " +
                             std::to_string(at + n) + " of " + std::to_string(expected.size()));
        }
      }
      ::close(fd);
    }
    if (::umount(mnt.c_str()) != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  }

  Outcome Check(bool through_mount) {
    Outcome o;
    RunResult fsck = Run("fsck");
    if (Crashed(fsck)) o.crashes.push_back("fsck: " + std::to_string(fsck.exit_code));
    o.fsck_failed = fsck.exit_code != 0;
    o.fsck_output = fsck.out + fsck.err;
    for (const auto& ref : kRefs) {
      std::string out = Path("out/" + ref);
      std::error_code ec;
      std::filesystem::remove_all(out, ec);
      RunResult r = Run("export", ref, out);
      if (Crashed(r)) o.crashes.push_back("export " + ref + ": " + std::to_string(r.exit_code) + r.err);
      if (r.exit_code != 0) {
        o.changed.push_back("export " + ref + " failed");
        continue;
      }
      for (const auto& d : TreeDiff(Path("expected/" + ref), out)) o.wrong.push_back("export " + ref + ": " + d);
    }
    for (const auto& [what, r] : Listings()) {
      if (Crashed(r)) o.crashes.push_back(what + ": " + std::to_string(r.exit_code) + r.err);
      const RunResult& want = expected_listings_.at(what);
      if (r.exit_code != want.exit_code || r.out != want.out) o.changed.push_back(what + " differs");
    }
    if (through_mount) ReadThroughMount(&o);
    return o;
  }

  // The rules above, for one damage described by `what`.
  void Judge(const std::string& what, const std::string& kind, const Outcome& o) {
    std::string where = what + " (seed " + std::to_string(seed_) + ")";
    for (const auto& c : o.crashes) ADD_FAILURE() << where << ": crashed: " << c;
    for (const auto& w : o.wrong) ADD_FAILURE() << where << ": WRONG BYTES: " << w;
    bool in_pack = kind != "index" && kind != "config" && kind.rfind("workspace", 0) != 0;
    if (in_pack && !o.fsck_failed) ADD_FAILURE() << where << ": fsck found nothing wrong in a damaged pack";
    if (!o.changed.empty() && !o.fsck_failed && kind != "workspace staged file")
      ADD_FAILURE() << where << ": " << o.changed.front() << ", yet fsck found nothing wrong";
  }

  // After index damage: the rebuild from the packs restores everything.
  void ExpectRebuildRestores(const std::string& what) {
    RunResult r = Run("fsck", kRebuildIndex);
    ASSERT_FALSE(Crashed(r)) << what << r;
    ASSERT_EQ(r.exit_code, 0) << what << ": the rebuild failed" << r;
    Outcome after = Check(false);
    EXPECT_TRUE(after.crashes.empty() && after.wrong.empty() && after.changed.empty() && !after.fsck_failed)
        << what << ", after the rebuild: "
        << (after.changed.empty() ? (after.wrong.empty() ? after.fsck_output : after.wrong.front())
                                  : after.changed.front());
  }

  std::string reference_;
  uint64_t seed_ = 1;
  uint64_t flips_ = 160;
  std::map<std::string, RunResult> expected_listings_;
};

TEST_F(DamageTest, EveryFlippedByteIsFoundOrHarmlessAndNeverCrashesOrReadsWrong) {
  auto by_kind = RegionsByKind();
  for (const char* kind : {"pack header", "record header", "payload", "footer", "trailer", "index", "config",
                           "workspace metadata"})
    ASSERT_TRUE(by_kind.count(kind)) << "the reference store has no " << kind;
  std::vector<std::string> kinds;
  for (const auto& [kind, regions] : by_kind) kinds.push_back(kind);
  std::mt19937_64 rng(seed_);
  std::map<std::string, int> per_kind;
  for (uint64_t trial = 0; trial < flips_ && !HasFailure(); trial++) {
    // Kinds in turn, so each gets its share however many bytes it has.
    const std::string& kind = kinds[trial % kinds.size()];
    const auto& regions = by_kind[kind];
    const Region& region = regions[rng() % regions.size()];
    uint64_t offset = region.begin + rng() % (region.end - region.begin);
    uint8_t mask = static_cast<uint8_t>(1u << (rng() % 8));
    ASSERT_NO_FATAL_FAILURE(FreshCopy());
    ASSERT_NO_FATAL_FAILURE(FlipByte(store() + "/" + region.file, offset, mask));
    std::string what = "flip of bit mask " + std::to_string(mask) + " at " + region.file + "+" +
                       std::to_string(offset) + " (" + kind + ")";
    Outcome o = Check(/*through_mount=*/trial % 7 == 0);
    Judge(what, kind, o);
    if (kind == "index" && (trial / kinds.size()) % 3 == 0) ExpectRebuildRestores(what);
    per_kind[kind]++;
  }
  for (const auto& [kind, n] : per_kind) std::printf("  %-22s %d flips\n", kind.c_str(), n);
}

TEST_F(DamageTest, TruncatingAnyKindOfFileIsFoundAndNeverCrashes) {
  auto by_kind = RegionsByKind();
  // One file of each kind, cut at several lengths.
  std::map<std::string, std::string> file_of_kind;
  for (const auto& [kind, regions] : by_kind) file_of_kind[kind == "record header" || kind == "payload" ||
                                                               kind == "footer" || kind == "trailer" ||
                                                               kind == "range table" || kind == "pack header"
                                                           ? "pack"
                                                           : kind] = regions.front().file;
  for (const auto& [kind, file] : file_of_kind) {
    uint64_t size = std::filesystem::file_size(reference_ + "/" + file);
    std::set<uint64_t> lengths = {0, 1, size / 2, size - 1};
    if (size > 5) lengths.insert(size - 5);
    if (kind == "index" && size > 8192) lengths.insert(8192);
    if (kind == "pack" && size > 40) lengths.insert(16), lengths.insert(size - 24);
    for (uint64_t length : lengths) {
      if (length >= size) continue;
      ASSERT_NO_FATAL_FAILURE(FreshCopy());
      ASSERT_NO_FATAL_FAILURE(Truncate(store() + "/" + file, length));
      std::string what = "truncation of " + file + " to " + std::to_string(length) + " of " + std::to_string(size);
      Outcome o = Check(/*through_mount=*/kind == "pack");
      Judge(what, kind == "pack" ? "payload" : kind, o);
      if (kind == "index") ExpectRebuildRestores(what);
    }
  }
}

TEST_F(DamageTest, ADeletedIndexIsRebuiltFromThePacksWithEveryRefAndIdenticalExports) {
  ASSERT_NO_FATAL_FAILURE(FreshCopy());
  std::error_code ec;
  std::filesystem::remove_all(store() + "/index", ec);
  ASSERT_FALSE(ec) << ec.message();
  RunResult fsck = Run("fsck");
  EXPECT_NE(fsck.exit_code, 0) << "fsck must notice that the index lost everything" << fsck;
  EXPECT_TRUE(HasSubstr(fsck.out + fsck.err, kRebuildIndex)) << fsck;
  RunResult gc = Run("gc");
  EXPECT_NE(gc.exit_code, 0) << "gc must refuse while packs are unaccounted for" << gc;
  ASSERT_FALSE(Crashed(gc));
  // gc deleted nothing.
  EXPECT_TRUE(TreeDiff(reference_ + "/packs", store() + "/packs").empty());
  ExpectRebuildRestores("deleted index");
  // Rebuilding again changes nothing.
  ExpectRebuildRestores("second rebuild");
}

}  // namespace
}  // namespace tusk::cli_test
