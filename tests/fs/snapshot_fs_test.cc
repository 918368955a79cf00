// SnapshotFs driven directly (no FUSE): the namespace (root, datasets,
// branches, tags, commit prefixes), attributes, reads at any offset, holes,
// directory handles and offsets, lookup counting and forget, inode
// stability, pinned views, branch moves, xattrs, the reader-lease callback,
// the chunk cache bound, and verified block reads of large raw chunks
// (exact at block and chunk edges, damage confined to its block, intact
// after gc rewrites the pack).
#include "fs/snapshot_fs.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "store/importer.h"
#include "store/objects.h"
#include "store/repository.h"
#include "tests/fs/fs_test_util.h"

namespace tusk::fs {
namespace {

using fstest::RandomBytes;
using fstest::TempDir;
using fstest::TextBytes;
using fstest::WriteFile;

constexpr int64_t kMtime = 1700000000;

struct Listed {
  std::string name;
  uint32_t mode = 0;
  uint64_t ino = 0;
  uint64_t next_offset = 0;
  bool had_reply = false;
};

class SnapshotFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    src_ = scratch_.Sub("src");
    StoreConfig config;
    config.chunker.min_size = 1024;
    config.chunker.avg_size = 4096;
    config.chunker.max_size = 16384;
    Status st = Repository::Create(store_, config);
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
    ASSERT_TRUE(repo_->CreateDataset("ds").ok());
    MakeSourceTree(src_);
    first_ = Import(src_, "ds", "main");
  }

  void TearDown() override {
    fs_.reset();
    repo_.reset();
  }

  // The base tree: files of all kinds, a sparse file, a large directory.
  void MakeSourceTree(const std::string& root) {
    ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
    ASSERT_TRUE(WriteFile(root + "/hello.txt", "hello world\n", 0644));
    big_ = RandomBytes(300 * 1024 + 17, 1);
    ASSERT_TRUE(WriteFile(root + "/big.bin", big_, 0600));
    text_ = TextBytes(100 * 1024, 2);
    ASSERT_TRUE(WriteFile(root + "/text.txt", text_, 0444));
    ASSERT_TRUE(WriteFile(root + "/empty.txt", "", 0644));
    ASSERT_TRUE(WriteFile(root + "/run.sh", "#!/bin/sh\necho hi\n", 04755));
    ASSERT_EQ(::mkdir((root + "/sub").c_str(), 0750), 0);
    ASSERT_EQ(::mkdir((root + "/sub/deeper").c_str(), 0700), 0);
    ASSERT_TRUE(WriteFile(root + "/sub/inner.txt", "inner\n", 0640));
    ASSERT_TRUE(WriteFile(root + "/sub/deeper/x.txt", "x\n", 0644));
    ASSERT_EQ(::mkdir((root + "/emptydir").c_str(), 0755), 0);
    ASSERT_EQ(::symlink("hello.txt", (root + "/link").c_str()), 0);
    ASSERT_EQ(::symlink("nowhere/at/all", (root + "/dangling").c_str()), 0);
    // Sparse: 3 MiB with 10 KiB of data at 1 MiB and 5 KiB at the end.
    {
      std::string p = root + "/sparse.bin";
      int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::ftruncate(fd, 3 << 20), 0);
      sparse_a_ = RandomBytes(10 * 1024, 3);
      sparse_b_ = RandomBytes(5 * 1024, 4);
      ASSERT_EQ(::pwrite(fd, sparse_a_.data(), sparse_a_.size(), 1 << 20), static_cast<ssize_t>(sparse_a_.size()));
      ASSERT_EQ(::pwrite(fd, sparse_b_.data(), sparse_b_.size(), (3 << 20) - 5 * 1024),
                static_cast<ssize_t>(sparse_b_.size()));
      ::close(fd);
    }
    ASSERT_EQ(::mkdir((root + "/many").c_str(), 0755), 0);
    for (int i = 0; i < kManyFiles; i++) {
      char name[32];
      std::snprintf(name, sizeof name, "/many/f%05d", i);
      int fd = ::open((root + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ASSERT_GE(fd, 0);
      if (i % 100 == 0) { ASSERT_EQ(::write(fd, name, std::strlen(name)), static_cast<ssize_t>(std::strlen(name))); }
      ::close(fd);
    }
    for (const char* p : {"/hello.txt", "/big.bin", "/text.txt", "/empty.txt", "/sub/inner.txt", "/sparse.bin"})
      ASSERT_TRUE(fstest::SetMtime(root + p, kMtime, 123456789));
  }

  ObjectId Import(const std::string& src, const std::string& dataset, const std::string& branch) {
    ImportOptions options;
    options.message = "import";
    options.author = "test";
    auto r = ImportDirectory(*repo_, src, dataset, branch, options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->commit) {
      ADD_FAILURE() << "import made no commit";
      return ObjectId();
    }
    return *r->commit;
  }

  SnapshotFs& Fs(FsOptions options = {}) {
    if (!fs_) fs_ = std::make_unique<SnapshotFs>(repo_.get(), std::move(options));
    return *fs_;
  }

  // Looks up each component from `start`; every step counts one lookup.
  Result<EntryReply> LookupPath(SnapshotFs& fs, const std::string& path, uint64_t start = kRootIno) {
    uint64_t ino = start;
    Result<EntryReply> last = fs.GetAttr(start);
    size_t pos = 0;
    while (pos < path.size()) {
      size_t slash = path.find('/', pos);
      if (slash == std::string::npos) slash = path.size();
      std::string comp = path.substr(pos, slash - pos);
      pos = slash + 1;
      if (comp.empty()) continue;
      last = fs.Lookup(ino, comp);
      if (!last.ok()) return last;
      ino = last->attr.ino;
    }
    return last;
  }

  uint64_t InoOf(SnapshotFs& fs, const std::string& path) {
    auto r = LookupPath(fs, path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status().ToString();
    return r.ok() ? r->attr.ino : 0;
  }

  static std::string ReadRange(SnapshotFs& fs, uint64_t ino, uint64_t off, size_t size) {
    auto r = fs.Read(ino, off, size);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "<error>";
    std::string out;
    for (const auto& s : *r) out.append(s.data, s.len);
    return out;
  }

  // Reads a whole directory through one handle, in batches of `batch`
  // entries (0: unlimited), resuming at the offset of the last accepted one.
  static std::vector<Listed> ListDir(SnapshotFs& fs, uint64_t ino, bool plus, size_t batch = 0) {
    std::vector<Listed> out;
    bool immutable = false;
    auto h = fs.OpenDir(ino, &immutable);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return out;
    uint64_t offset = 0;
    for (int round = 0; round < 1000000; round++) {
      size_t accepted = 0;
      Status st = fs.ReadDir(*h, offset, plus, [&](const DirItem& item, const EntryReply* reply) {
        if (batch && accepted == batch) return false;
        accepted++;
        out.push_back({item.name, item.mode, item.ino, item.next_offset, reply != nullptr});
        offset = item.next_offset;
        return true;
      });
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (!st.ok() || accepted == 0) break;
      if (!batch) break;
    }
    fs.ReleaseDir(*h);
    return out;
  }

  static std::vector<std::string> Names(const std::vector<Listed>& items, bool drop_dots = true) {
    std::vector<std::string> out;
    for (const auto& i : items)
      if (!drop_dots || (i.name != "." && i.name != "..")) out.push_back(i.name);
    return out;
  }

  // Forgets every lookup that a readdirplus listing counted.
  static void ForgetListed(SnapshotFs& fs, const std::vector<Listed>& items) {
    for (const auto& i : items)
      if (i.had_reply) fs.Forget(i.ino, 1);
  }

  static constexpr int kManyFiles = 3000;
  TempDir tmp_;
  TempDir scratch_{fstest::ScratchBase()};
  std::string store_, src_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<SnapshotFs> fs_;
  ObjectId first_;
  std::string big_, text_, sparse_a_, sparse_b_;
};

TEST_F(SnapshotFsTest, RootListsDatasets) {
  ASSERT_TRUE(repo_->CreateDataset("beta").ok());
  ASSERT_TRUE(repo_->CreateDataset("alpha").ok());
  auto& fs = Fs();
  for (bool plus : {false, true}) {
    auto items = ListDir(fs, kRootIno, plus);
    std::set<std::string> names;
    for (const auto& n : Names(items)) names.insert(n);
    EXPECT_EQ(names, (std::set<std::string>{"alpha", "beta", "ds"})) << "plus=" << plus;
    for (const auto& i : items) {
      EXPECT_TRUE(S_ISDIR(i.mode)) << i.name;
      if (i.name == "ds") {
        auto r = fs.Lookup(kRootIno, "ds");
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(i.ino, r->attr.ino) << "readdir and lookup disagree on the inode of ds";
      }
    }
    if (plus) ForgetListed(fs, items);
  }
  auto root = fs.GetAttr(kRootIno);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(S_ISDIR(root->attr.mode));
  EXPECT_EQ(root->attr.ino, kRootIno);
}

TEST_F(SnapshotFsTest, DatasetListsBranchesAndTagsButNotCommitPrefixes) {
  ASSERT_TRUE(repo_->CreateBranch("ds", "dev", first_).ok());
  ASSERT_TRUE(repo_->CreateTag("ds", "v1", first_).ok());
  auto& fs = Fs();
  uint64_t ds = InoOf(fs, "ds");
  for (bool plus : {false, true}) {
    auto items = ListDir(fs, ds, plus);
    std::set<std::string> names;
    for (const auto& n : Names(items)) names.insert(n);
    EXPECT_EQ(names, (std::set<std::string>{"main", "dev", "@v1"})) << "plus=" << plus;
    for (const auto& i : items) EXPECT_TRUE(S_ISDIR(i.mode)) << i.name;
    if (plus) ForgetListed(fs, items);
  }
  // A commit prefix is looked up (and shows the same tree) but not listed.
  std::string prefix = "@" + first_.Hex().substr(0, 10);
  auto by_prefix = fs.Lookup(ds, prefix);
  ASSERT_TRUE(by_prefix.ok()) << by_prefix.status().ToString();
  EXPECT_TRUE(S_ISDIR(by_prefix->attr.mode));
  EXPECT_GE(by_prefix->entry_timeout, 3600) << "a commit id never changes meaning";
  auto full = fs.Lookup(ds, "@" + first_.Hex());
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  for (const std::string& dir : {std::string("main"), std::string("dev"), std::string("@v1"), prefix}) {
    auto f = LookupPath(fs, "ds/" + dir + "/hello.txt");
    ASSERT_TRUE(f.ok()) << dir << ": " << f.status().ToString();
    EXPECT_EQ(ReadRange(fs, f->attr.ino, 0, 100), "hello world\n") << dir;
    auto x = fs.GetXattr(f->attr.ino, kCommitXattr);
    ASSERT_TRUE(x.ok()) << dir;
    EXPECT_EQ(*x, first_.Hex()) << dir;
  }
  // Branch and tag names are re-resolved after a second.
  auto main = fs.Lookup(ds, "main");
  ASSERT_TRUE(main.ok());
  EXPECT_LE(main->entry_timeout, 1.0);
  auto tag = fs.Lookup(ds, "@v1");
  ASSERT_TRUE(tag.ok());
  EXPECT_LE(tag->entry_timeout, 1.0);
}

TEST_F(SnapshotFsTest, UnknownNamesAreNotFound) {
  auto& fs = Fs();
  auto expect_not_found = [&](uint64_t parent, const std::string& name) {
    auto r = fs.Lookup(parent, name);
    ASSERT_FALSE(r.ok()) << "lookup of '" << name << "' unexpectedly succeeded";
    EXPECT_EQ(r.status().code(), Status::Code::kNotFound) << name << ": " << r.status().ToString();
  };
  expect_not_found(kRootIno, "nope");
  expect_not_found(kRootIno, "@ds");
  expect_not_found(kRootIno, "bad~name");
  uint64_t ds = InoOf(fs, "ds");
  expect_not_found(ds, "nope");
  expect_not_found(ds, "@nope");
  expect_not_found(ds, "@");
  expect_not_found(ds, "@ffffffffffff");
  expect_not_found(ds, "@main~1");  // no ~ syntax in the mount
  expect_not_found(ds, "bad~name");
  uint64_t main = InoOf(fs, "ds/main");
  expect_not_found(main, "missing.txt");
  expect_not_found(main, "HELLO.TXT");
  uint64_t sub = InoOf(fs, "ds/main/sub");
  expect_not_found(sub, "hello.txt");
  uint64_t many = InoOf(fs, "ds/main/many");
  expect_not_found(many, "f99999");
  expect_not_found(many, "f0100");
  // Below a file: not a directory.
  uint64_t file = InoOf(fs, "ds/main/hello.txt");
  auto below = fs.Lookup(file, "x");
  EXPECT_FALSE(below.ok());
  // An inode the filesystem never handed out.
  EXPECT_FALSE(fs.GetAttr(0x1234567).ok());
  EXPECT_FALSE(fs.Lookup(0x1234567, "x").ok());
}

TEST_F(SnapshotFsTest, AttributesMatchTheSource) {
  auto& fs = Fs();
  for (const char* rel : {"hello.txt", "big.bin", "text.txt", "empty.txt", "run.sh", "sub", "sub/deeper",
                          "sub/inner.txt", "sub/deeper/x.txt", "emptydir", "link", "dangling", "sparse.bin", "many",
                          "many/f00100"}) {
    SCOPED_TRACE(rel);
    struct stat st;
    ASSERT_EQ(::lstat((src_ + "/" + rel).c_str(), &st), 0);
    auto r = LookupPath(fs, std::string("ds/main/") + rel);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const Attr& a = r->attr;
    EXPECT_EQ(a.mode, st.st_mode) << std::oct << a.mode << " vs " << st.st_mode;
    EXPECT_EQ(a.uid, st.st_uid);
    EXPECT_EQ(a.gid, st.st_gid);
    if (!S_ISLNK(st.st_mode)) {
      EXPECT_EQ(a.mtime_sec, st.st_mtim.tv_sec);
      EXPECT_EQ(a.mtime_nsec, static_cast<uint32_t>(st.st_mtim.tv_nsec));
    }
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) { EXPECT_EQ(a.size, static_cast<uint64_t>(st.st_size)); }
    if (S_ISREG(st.st_mode)) { EXPECT_EQ(a.nlink, 1u); }
    if (S_ISDIR(st.st_mode)) { EXPECT_EQ(a.nlink, st.st_nlink) << "2 + subdirectories"; }
    EXPECT_GE(r->attr_timeout, 3600) << "committed nodes never change";
  }
  auto sparse = LookupPath(fs, "ds/main/sparse.bin");
  ASSERT_TRUE(sparse.ok());
  EXPECT_LT(sparse->attr.blocks * 512, uint64_t{1} << 20) << "holes are not counted as stored blocks";
  EXPECT_GE(sparse->attr.blocks * 512, 15u * 1024);
  auto big = LookupPath(fs, "ds/main/big.bin");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->attr.blocks, (big_.size() + 511) / 512);
  // The commit root: a directory with the commit's time.
  auto root = LookupPath(fs, "ds/main");
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(S_ISDIR(root->attr.mode));
  auto commit = repo_->ReadCommit(first_);
  ASSERT_TRUE(commit.ok());
  EXPECT_EQ(root->attr.mtime_sec, commit->time_sec);
  EXPECT_EQ(root->attr.nlink, 2u + 3u) << "2 + sub, emptydir, many";
}

TEST_F(SnapshotFsTest, ReadsMatchTheSourceAtAnyOffsetAndSize) {
  auto& fs = Fs();
  uint64_t ino = InoOf(fs, "ds/main/big.bin");
  // The chunk boundaries as the store recorded them.
  auto entry = ::tusk::LookupPath(*repo_, repo_->ReadCommit(first_)->root, "big.bin");
  ASSERT_TRUE(entry.ok());
  ASSERT_GT(entry->chunks.size(), 20u) << "the small chunker should cut a 300 KiB file into many chunks";
  std::vector<uint64_t> boundaries;
  uint64_t end = 0;
  for (const auto& c : entry->chunks) {
    end += c.length;
    boundaries.push_back(end);
  }
  ASSERT_EQ(end, big_.size());
  auto expect_range = [&](uint64_t off, size_t size) {
    std::string want = off >= big_.size() ? "" : big_.substr(off, size);
    std::string got = ReadRange(fs, ino, off, size);
    ASSERT_EQ(got.size(), want.size()) << "read(" << off << ", " << size << ")";
    ASSERT_TRUE(got == want) << "read(" << off << ", " << size << ") content differs";
  };
  // Around every chunk boundary: straddling by one byte, ending at, starting at.
  for (uint64_t b : boundaries) {
    if (b >= 1) expect_range(b - 1, 2);
    if (b >= 100) expect_range(b - 100, 100);
    expect_range(b, 100);
  }
  // Reads spanning many chunks come back as several slices.
  {
    auto r = fs.Read(ino, boundaries[3] - 10, 40000);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(r->size(), 3u);
  }
  // Random offsets and sizes, incl. sizes of a FUSE request.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; i++) {
    uint64_t off = rng() % big_.size();
    size_t size = std::vector<size_t>{1, 7, 4095, 4096, 4097, 65536, 131072, 1 << 20}[rng() % 8];
    expect_range(off, size);
  }
  // Whole file, sequentially in 128 KiB requests (the readahead path).
  std::string all;
  for (uint64_t off = 0; off < big_.size(); off += 131072) all += ReadRange(fs, ino, off, 131072);
  EXPECT_TRUE(all == big_);
  // Edges.
  expect_range(0, 0);
  expect_range(big_.size() - 1, 10);
  expect_range(big_.size(), 10);
  expect_range(big_.size() + 12345, 10);
  // Other files.
  uint64_t text = InoOf(fs, "ds/main/text.txt");
  EXPECT_TRUE(ReadRange(fs, text, 0, 1 << 20) == text_);
  EXPECT_EQ(ReadRange(fs, text, 50000, 10), text_.substr(50000, 10));
  EXPECT_EQ(ReadRange(fs, InoOf(fs, "ds/main/empty.txt"), 0, 4096), "");
  EXPECT_EQ(ReadRange(fs, InoOf(fs, "ds/main/many/f00100"), 0, 4096), "/many/f00100");
  EXPECT_EQ(ReadRange(fs, InoOf(fs, "ds/main/many/f00101"), 0, 4096), "");
}

TEST_F(SnapshotFsTest, HolesReadAsZeros) {
  auto& fs = Fs();
  auto entry = ::tusk::LookupPath(*repo_, repo_->ReadCommit(first_)->root, "sparse.bin");
  ASSERT_TRUE(entry.ok());
  bool has_hole = false;
  for (const auto& c : entry->chunks) has_hole |= c.IsHole();
  if (!has_hole) GTEST_SKIP() << "the filesystem under /tmp did not report holes (no SEEK_HOLE support)";
  std::string want(3 << 20, '\0');
  want.replace(1 << 20, sparse_a_.size(), sparse_a_);
  want.replace((3 << 20) - sparse_b_.size(), sparse_b_.size(), sparse_b_);
  uint64_t ino = InoOf(fs, "ds/main/sparse.bin");
  EXPECT_TRUE(ReadRange(fs, ino, 0, 4 << 20) == want);
  for (auto [off, size] : std::vector<std::pair<uint64_t, size_t>>{{0, 1},
                                                                   {0, 200000},
                                                                   {100, 70000},
                                                                   {(1 << 20) - 5, 10},
                                                                   {(1 << 20) - 70000, 80000},
                                                                   {(1 << 20) + 10 * 1024 - 3, 6},
                                                                   {(1 << 20) + 5000, 1 << 20},
                                                                   {(3 << 20) - 5 * 1024 - 1, 2},
                                                                   {(3 << 20) - 100, 200}}) {
    std::string got = ReadRange(fs, ino, off, size);
    std::string exp = want.substr(off, size);
    EXPECT_TRUE(got == exp) << "read(" << off << ", " << size << ")";
  }
}

TEST_F(SnapshotFsTest, ReadLinkAndWrongKinds) {
  auto& fs = Fs();
  auto link = fs.ReadLink(InoOf(fs, "ds/main/link"));
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(*link, "hello.txt");
  auto dangling = fs.ReadLink(InoOf(fs, "ds/main/dangling"));
  ASSERT_TRUE(dangling.ok());
  EXPECT_EQ(*dangling, "nowhere/at/all");
  EXPECT_FALSE(fs.ReadLink(InoOf(fs, "ds/main/hello.txt")).ok());
  EXPECT_FALSE(fs.ReadLink(InoOf(fs, "ds/main/sub")).ok());
  EXPECT_FALSE(fs.Read(InoOf(fs, "ds/main/sub"), 0, 10).ok());
  EXPECT_FALSE(fs.Read(InoOf(fs, "ds/main/link"), 0, 10).ok());
  EXPECT_FALSE(fs.Read(InoOf(fs, "ds"), 0, 10).ok());
  bool immutable = true;
  EXPECT_FALSE(fs.OpenDir(InoOf(fs, "ds/main/hello.txt"), &immutable).ok());
}

TEST_F(SnapshotFsTest, ReadDirResumedAtOffsetsYieldsEachEntryOnce) {
  auto& fs = Fs();
  uint64_t many = InoOf(fs, "ds/main/many");
  std::vector<std::string> expected;
  for (int i = 0; i < kManyFiles; i++) {
    char name[16];
    std::snprintf(name, sizeof name, "f%05d", i);
    expected.push_back(name);
  }
  size_t baseline = fs.node_count();
  for (bool plus : {false, true}) {
    for (size_t batch : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, size_t{1023}}) {
      SCOPED_TRACE("plus=" + std::to_string(plus) + " batch=" + std::to_string(batch));
      auto items = ListDir(fs, many, plus, batch);
      auto all = Names(items, false);
      ASSERT_GE(all.size(), 2u);
      EXPECT_EQ(all[0], ".");
      EXPECT_EQ(all[1], "..");
      auto names = Names(items);
      EXPECT_EQ(names.size(), expected.size());
      EXPECT_TRUE(names == expected) << "entries missing, repeated or out of order";
      std::set<uint64_t> offsets;
      for (const auto& i : items) offsets.insert(i.next_offset);
      EXPECT_EQ(offsets.size(), items.size()) << "offsets must be distinct";
      if (plus) ForgetListed(fs, items);
      EXPECT_EQ(fs.node_count(), baseline);
    }
  }
  // An offset from one handle is valid in another handle of the same directory.
  bool immutable = false;
  auto h1 = fs.OpenDir(many, &immutable);
  ASSERT_TRUE(h1.ok());
  EXPECT_TRUE(immutable);
  uint64_t resume = 0;
  std::vector<std::string> seen;
  ASSERT_TRUE(fs.ReadDir(*h1, 0, false, [&](const DirItem& item, const EntryReply*) {
                  if (seen.size() == 1500) return false;
                  seen.push_back(item.name);
                  resume = item.next_offset;
                  return true;
                }).ok());
  fs.ReleaseDir(*h1);
  auto h2 = fs.OpenDir(many, &immutable);
  ASSERT_TRUE(h2.ok());
  ASSERT_TRUE(fs.ReadDir(*h2, resume, false, [&](const DirItem& item, const EntryReply*) {
                  seen.push_back(item.name);
                  return true;
                }).ok());
  fs.ReleaseDir(*h2);
  seen.erase(seen.begin(), seen.begin() + 2);  // . and ..
  EXPECT_TRUE(seen == expected);
  // Reading past the end yields nothing; a released handle is an error.
  auto h3 = fs.OpenDir(many, &immutable);
  ASSERT_TRUE(h3.ok());
  int extra = 0;
  ASSERT_TRUE(fs.ReadDir(*h3, kManyFiles + 3, false, [&](const DirItem&, const EntryReply*) {
                  extra++;
                  return true;
                }).ok());
  EXPECT_EQ(extra, 0);
  fs.ReleaseDir(*h3);
  EXPECT_FALSE(fs.ReadDir(*h3, 0, false, [&](const DirItem&, const EntryReply*) { return true; }).ok());
  // Virtual directories resume too.
  ASSERT_TRUE(repo_->CreateDataset("b").ok());
  ASSERT_TRUE(repo_->CreateDataset("c").ok());
  for (const char* t : {"t1", "t2", "t3", "t4"}) ASSERT_TRUE(repo_->CreateTag("ds", t, first_).ok());
  for (bool plus : {false, true}) {
    auto root_items = ListDir(fs, kRootIno, plus, 1);
    EXPECT_EQ(Names(root_items), (std::vector<std::string>{"b", "c", "ds"}));
    if (plus) ForgetListed(fs, root_items);
    auto ds_items = ListDir(fs, InoOf(fs, "ds"), plus, 2);
    std::multiset<std::string> got;
    for (const auto& n : Names(ds_items)) got.insert(n);
    EXPECT_EQ(got, (std::multiset<std::string>{"main", "@t1", "@t2", "@t3", "@t4"}));
    if (plus) ForgetListed(fs, ds_items);
  }
}

TEST_F(SnapshotFsTest, ReadDirPlusCountsLookupsAndForgetDropsNodes) {
  auto& fs = Fs();
  uint64_t many = InoOf(fs, "ds/main/many");
  uint64_t main = InoOf(fs, "ds/main");
  size_t baseline = fs.node_count();

  // Plain readdir registers nothing.
  auto plain = ListDir(fs, many, false);
  EXPECT_EQ(fs.node_count(), baseline);

  // Readdirplus counts one lookup per accepted entry, none for a rejected one.
  bool immutable = false;
  auto h = fs.OpenDir(many, &immutable);
  ASSERT_TRUE(h.ok());
  std::vector<uint64_t> inos;
  ASSERT_TRUE(fs.ReadDir(*h, 0, true, [&](const DirItem& item, const EntryReply* reply) {
                  if (inos.size() == 50) return false;  // rejects the 51st entry
                  if (reply) {
                    EXPECT_EQ(reply->attr.ino, item.ino);
                    inos.push_back(item.ino);
                  }
                  return true;
                }).ok());
  fs.ReleaseDir(*h);
  EXPECT_EQ(inos.size(), 50u);
  EXPECT_EQ(fs.node_count(), baseline + 50);

  // A lookup of a listed entry adds to the same node.
  auto again = fs.Lookup(many, "f00000");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->attr.ino, inos[0]);
  EXPECT_EQ(fs.node_count(), baseline + 50);
  fs.Forget(inos[0], 1);
  EXPECT_TRUE(fs.GetAttr(inos[0]).ok()) << "one of two lookups forgotten: the node stays";
  for (uint64_t ino : inos) fs.Forget(ino, 1);
  EXPECT_EQ(fs.node_count(), baseline);
  EXPECT_FALSE(fs.GetAttr(inos[0]).ok()) << "all lookups forgotten: the node is gone";
  EXPECT_FALSE(fs.Read(inos[100 % inos.size()], 0, 10).ok());

  // Forget with a count covering several lookups.
  for (int i = 0; i < 5; i++) ASSERT_TRUE(fs.Lookup(main, "hello.txt").ok());
  uint64_t hello = InoOf(fs, "ds/main/hello.txt");  // lookups: ds, main (+1 each), hello (6th)
  EXPECT_EQ(fs.node_count(), baseline + 1);
  fs.Forget(hello, 5);
  EXPECT_TRUE(fs.GetAttr(hello).ok());
  fs.Forget(hello, 1);
  EXPECT_FALSE(fs.GetAttr(hello).ok());
  EXPECT_EQ(fs.node_count(), baseline);
  // Forgetting the root or an unknown inode does nothing harmful.
  fs.Forget(kRootIno, 100);
  fs.Forget(0xdeadbeef, 1);
  EXPECT_TRUE(fs.GetAttr(kRootIno).ok());
  EXPECT_EQ(fs.node_count(), baseline);

  // A bigger readdirplus: everything counted and all of it released.
  auto all = ListDir(fs, many, true, 200);
  EXPECT_EQ(fs.node_count(), baseline + kManyFiles);
  ForgetListed(fs, all);
  EXPECT_EQ(fs.node_count(), baseline);
}

TEST_F(SnapshotFsTest, InodesAreStableAcrossForgetAndLookup) {
  auto& fs = Fs();
  std::vector<std::string> paths = {"ds", "ds/main", "ds/main/hello.txt", "ds/main/sub", "ds/main/sub/deeper/x.txt",
                                    "ds/main/link", "ds/main/many/f02999"};
  size_t baseline = fs.node_count();
  std::map<std::string, std::vector<uint64_t>> chains;  // inode of every component
  auto lookup_chain = [&](const std::string& p) {
    std::vector<uint64_t> chain;
    uint64_t ino = kRootIno;
    size_t pos = 0;
    while (pos < p.size()) {
      size_t slash = p.find('/', pos);
      if (slash == std::string::npos) slash = p.size();
      auto r = fs.Lookup(ino, p.substr(pos, slash - pos));
      EXPECT_TRUE(r.ok()) << p;
      if (!r.ok()) break;
      ino = r->attr.ino;
      chain.push_back(ino);
      pos = slash + 1;
    }
    return chain;
  };
  for (const auto& p : paths) chains[p] = lookup_chain(p);
  std::set<uint64_t> distinct;
  for (const auto& [p, chain] : chains) distinct.insert(chain.back());
  EXPECT_EQ(distinct.size(), paths.size()) << "distinct nodes need distinct inodes";
  // Drop everything, look it all up again in another order.
  for (const auto& [p, chain] : chains)
    for (uint64_t ino : chain) fs.Forget(ino, 1);
  EXPECT_EQ(fs.node_count(), baseline);
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    auto chain = lookup_chain(*it);
    EXPECT_EQ(chain, chains[*it]) << *it << ": inode changed after forget + lookup";
  }
  // A second SnapshotFs over the same store hands out the same numbers.
  SnapshotFs other(repo_.get(), FsOptions{});
  for (const auto& p : paths) {
    auto r = LookupPath(other, p);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->attr.ino, chains[p].back()) << p;
  }
  // Readdir (without plus) reports the inode a lookup gives.
  auto items = ListDir(fs, chains["ds/main/sub"].back(), false);
  for (const auto& i : items) {
    if (i.name == "." || i.name == "..") continue;
    auto r = fs.Lookup(chains["ds/main/sub"].back(), i.name);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(i.ino, r->attr.ino) << i.name;
    EXPECT_EQ(i.mode & S_IFMT, r->attr.mode & S_IFMT) << i.name;
  }
}

TEST_F(SnapshotFsTest, PinnedFsShowsOneCommitAtTheRoot) {
  // Move main on, then pin the first commit.
  ASSERT_TRUE(WriteFile(src_ + "/hello.txt", "changed\n"));
  ASSERT_TRUE(WriteFile(src_ + "/new.txt", "new\n"));
  ObjectId second = Import(src_, "ds", "main");
  ASSERT_NE(second, first_);
  FsOptions options;
  options.pinned_dataset = "ds";
  options.pinned_commit = first_;
  auto& fs = Fs(options);
  auto root = fs.GetAttr(kRootIno);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(S_ISDIR(root->attr.mode));
  auto items = ListDir(fs, kRootIno, false);
  std::set<std::string> names;
  for (const auto& n : Names(items)) names.insert(n);
  EXPECT_EQ(names, (std::set<std::string>{"hello.txt", "big.bin", "text.txt", "empty.txt", "run.sh", "sub",
                                          "emptydir", "link", "dangling", "sparse.bin", "many"}));
  EXPECT_EQ(ReadRange(fs, InoOf(fs, "hello.txt"), 0, 100), "hello world\n");
  EXPECT_TRUE(ReadRange(fs, InoOf(fs, "big.bin"), 0, 1 << 20) == big_);
  EXPECT_EQ(fs.Lookup(kRootIno, "new.txt").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(fs.Lookup(kRootIno, "ds").status().code(), Status::Code::kNotFound);
  auto x = fs.GetXattr(kRootIno, kCommitXattr);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, first_.Hex());
  x = fs.GetXattr(InoOf(fs, "sub/deeper/x.txt"), kCommitXattr);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, first_.Hex());
  EXPECT_TRUE(fs.IsImmutableDir(kRootIno));

  // Pinning the second commit shows it.
  options.pinned_commit = second;
  SnapshotFs fs2(repo_.get(), options);
  auto r = LookupPath(fs2, "hello.txt");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadRange(fs2, r->attr.ino, 0, 100), "changed\n");
  EXPECT_TRUE(LookupPath(fs2, "new.txt").ok());
}

TEST_F(SnapshotFsTest, BranchMoveGivesANewInodeWhileOpenFilesKeepTheirVersion) {
  auto& fs = Fs();
  uint64_t ds = InoOf(fs, "ds");
  auto main1 = fs.Lookup(ds, "main");
  ASSERT_TRUE(main1.ok());
  uint64_t old_file = InoOf(fs, "ds/main/big.bin");
  uint64_t old_hello = InoOf(fs, "ds/main/hello.txt");
  uint64_t old_sub = InoOf(fs, "ds/main/sub");

  std::string big2 = RandomBytes(200 * 1024, 99);
  ASSERT_TRUE(WriteFile(src_ + "/big.bin", big2, 0600));
  ASSERT_TRUE(WriteFile(src_ + "/hello.txt", "hello again\n"));
  ASSERT_EQ(::unlink((src_ + "/sub/inner.txt").c_str()), 0);
  ObjectId second = Import(src_, "ds", "main");
  ASSERT_NE(second, first_);

  auto main2 = fs.Lookup(ds, "main");
  ASSERT_TRUE(main2.ok());
  EXPECT_NE(main2->attr.ino, main1->attr.ino) << "a moved branch must be a new inode";
  // The new head.
  auto new_file = fs.Lookup(main2->attr.ino, "big.bin");
  ASSERT_TRUE(new_file.ok());
  EXPECT_NE(new_file->attr.ino, old_file);
  EXPECT_EQ(new_file->attr.size, big2.size());
  EXPECT_TRUE(ReadRange(fs, new_file->attr.ino, 0, 1 << 20) == big2);
  auto new_sub = fs.Lookup(main2->attr.ino, "sub");
  ASSERT_TRUE(new_sub.ok());
  EXPECT_EQ(fs.Lookup(new_sub->attr.ino, "inner.txt").status().code(), Status::Code::kNotFound);
  auto x = fs.GetXattr(new_file->attr.ino, kCommitXattr);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, second.Hex());
  // The old nodes still read the old version.
  EXPECT_TRUE(ReadRange(fs, old_file, 0, 1 << 20) == big_);
  EXPECT_EQ(ReadRange(fs, old_hello, 0, 100), "hello world\n");
  auto old_attr = fs.GetAttr(old_file);
  ASSERT_TRUE(old_attr.ok());
  EXPECT_EQ(old_attr->attr.size, big_.size());
  EXPECT_TRUE(fs.Lookup(old_sub, "inner.txt").ok()) << "the old tree still has inner.txt";
  x = fs.GetXattr(old_file, kCommitXattr);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, first_.Hex());
  // The old commit stays reachable by prefix.
  auto by_prefix = LookupPath(fs, "ds/@" + first_.Hex().substr(0, 8) + "/hello.txt");
  ASSERT_TRUE(by_prefix.ok());
  EXPECT_EQ(ReadRange(fs, by_prefix->attr.ino, 0, 100), "hello world\n");
  // The listing of the dataset shows one main.
  auto items = ListDir(fs, ds, false);
  EXPECT_EQ(Names(items), (std::vector<std::string>{"main"}));
  for (const auto& i : items)
    if (i.name == "main") { EXPECT_EQ(i.ino, main2->attr.ino) << "readdir must report the new head's inode"; }
}

// "@<name>" resolves like a ref (branch first). A name that resolves through
// a branch moves with it, so it must not be cached as if it were a commit id.
TEST_F(SnapshotFsTest, AtBranchNameIsNotCachedAsImmutable) {
  auto& fs = Fs();
  uint64_t ds = InoOf(fs, "ds");
  auto at_main = fs.Lookup(ds, "@main");
  if (!at_main.ok()) {
    EXPECT_EQ(at_main.status().code(), Status::Code::kNotFound);
    return;  // not offered at all: fine
  }
  EXPECT_LE(at_main->entry_timeout, kVolatileTimeout)
      << "ds/@main resolves through branch main, which moves; caching the name for " << at_main->entry_timeout
      << " s shows a stale head";
}

TEST_F(SnapshotFsTest, XattrsInsideCommitsOnly) {
  ASSERT_TRUE(repo_->CreateTag("ds", "v1", first_).ok());
  auto& fs = Fs();
  for (const char* p : {"ds/main", "ds/main/hello.txt", "ds/main/sub", "ds/main/sub/deeper", "ds/main/link",
                        "ds/main/dangling", "ds/main/emptydir", "ds/@v1", "ds/@v1/sparse.bin"}) {
    uint64_t ino = InoOf(fs, p);
    auto x = fs.GetXattr(ino, kCommitXattr);
    ASSERT_TRUE(x.ok()) << p << ": " << x.status().ToString();
    EXPECT_EQ(*x, first_.Hex()) << p;
    auto list = fs.ListXattr(ino);
    ASSERT_TRUE(list.ok());
    EXPECT_EQ(*list, std::vector<std::string>{kCommitXattr}) << p;
    auto other = fs.GetXattr(ino, "user.other");
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.status().sys_errno(), ENODATA) << p;
  }
  for (uint64_t ino : {kRootIno, InoOf(fs, "ds")}) {
    auto x = fs.GetXattr(ino, kCommitXattr);
    ASSERT_FALSE(x.ok());
    EXPECT_EQ(x.status().sys_errno(), ENODATA);
    auto list = fs.ListXattr(ino);
    ASSERT_TRUE(list.ok());
    EXPECT_TRUE(list->empty());
  }
}

TEST_F(SnapshotFsTest, EmptyBranchIsAnEmptyDirectory) {
  ASSERT_TRUE(repo_->CreateDataset("fresh").ok());
  auto& fs = Fs();
  auto r = LookupPath(fs, "fresh/main");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(S_ISDIR(r->attr.mode));
  EXPECT_EQ(Names(ListDir(fs, r->attr.ino, false)), std::vector<std::string>{});
  EXPECT_EQ(Names(ListDir(fs, r->attr.ino, true)), std::vector<std::string>{});
  EXPECT_EQ(fs.Lookup(r->attr.ino, "x").status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(fs.GetXattr(r->attr.ino, kCommitXattr).ok());
  EXPECT_EQ(Names(ListDir(fs, InoOf(fs, "fresh"), false)), std::vector<std::string>{"main"});
}

// The mount records every commit it serves (its reader lease, which gc
// respects) before reading any of the commit's objects.
TEST_F(SnapshotFsTest, OnCommitSeesEveryServedCommitFirst) {
  ASSERT_TRUE(WriteFile(src_ + "/hello.txt", "second\n"));
  ObjectId second = Import(src_, "ds", "main");
  ASSERT_TRUE(repo_->CreateTag("ds", "v1", first_).ok());
  std::mutex mu;
  std::set<std::string> seen;
  FsOptions options;
  options.on_commit = [&](const ObjectId& id) {
    std::lock_guard lock(mu);
    seen.insert(id.Hex());
    return Status::Ok();
  };
  auto& fs = Fs(options);
  EXPECT_TRUE(seen.empty());
  ASSERT_TRUE(LookupPath(fs, "ds/main/hello.txt").ok());
  EXPECT_EQ(seen, (std::set<std::string>{second.Hex()}));
  ASSERT_TRUE(LookupPath(fs, "ds/@v1/hello.txt").ok());
  EXPECT_EQ(seen, (std::set<std::string>{first_.Hex(), second.Hex()}));
  // Listing the dataset with attributes serves (and so records) each head.
  seen.clear();
  auto items = ListDir(fs, InoOf(fs, "ds"), true);
  ForgetListed(fs, items);
  EXPECT_TRUE(seen.count(second.Hex()) && seen.count(first_.Hex()));

  // A commit the lease cannot record is not served.
  FsOptions refusing;
  refusing.on_commit = [](const ObjectId&) { return Status::FromErrno(ENOSPC, "lease file"); };
  SnapshotFs strict(repo_.get(), refusing);
  auto r = LookupPath(strict, "ds/main");
  EXPECT_FALSE(r.ok()) << "served a commit its lease could not record";
}

TEST_F(SnapshotFsTest, ChunkCacheStaysWithinItsCapacity) {
  // 8 MiB of random data in ~4 KiB chunks: about 2000 chunks through a 1 MiB cache.
  std::string data = RandomBytes(8 << 20, 42);
  ASSERT_TRUE(WriteFile(src_ + "/huge.bin", data));
  Import(src_, "ds", "main");
  FsOptions options;
  options.chunk_cache_bytes = 1 << 20;
  options.prefetch_threads = 2;
  options.readahead_chunks = 8;
  auto& fs = Fs(options);
  ChunkCache& cache = fs.chunk_cache();
  EXPECT_EQ(cache.capacity(), size_t{1} << 20);
  uint64_t ino = InoOf(fs, "ds/main/huge.bin");
  size_t max_seen = 0;
  // Sequential (with prefetching).
  for (uint64_t off = 0; off < data.size(); off += 131072) {
    std::string got = ReadRange(fs, ino, off, 131072);
    ASSERT_TRUE(got == data.substr(off, 131072)) << "offset " << off;
    max_seen = std::max(max_seen, cache.bytes());
    ASSERT_LE(cache.bytes(), cache.capacity()) << "after reading at " << off;
  }
  // Random.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 500; i++) {
    uint64_t off = rng() % data.size();
    std::string got = ReadRange(fs, ino, off, 20000);
    ASSERT_TRUE(got == data.substr(off, 20000));
    max_seen = std::max(max_seen, cache.bytes());
    ASSERT_LE(cache.bytes(), cache.capacity());
  }
  // Concurrent readers, as data-loader workers would be.
  std::atomic<bool> bad{false};
  std::atomic<size_t> over{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 r(100 + t);
      for (int i = 0; i < 200; i++) {
        uint64_t off = (t % 2 == 0) ? (static_cast<uint64_t>(i) * 40000) % data.size() : r() % data.size();
        auto res = fs.Read(ino, off, 40000);
        if (!res.ok()) {
          bad = true;
          return;
        }
        std::string got;
        for (const auto& s : *res) got.append(s.data, s.len);
        if (got != data.substr(off, 40000)) bad = true;
        size_t b = cache.bytes();
        if (b > cache.capacity()) over = std::max<size_t>(over.load(), b);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(bad.load()) << "a concurrent read failed or returned wrong bytes";
  EXPECT_EQ(over.load(), 0u) << "cache grew to " << over.load() << " bytes";
  EXPECT_LE(cache.bytes(), cache.capacity());
  EXPECT_GT(max_seen, cache.capacity() / 2) << "the cache should actually be used";
}

// ---------------------------------------------------------------------------
// Large raw chunks: random small reads are served from the 16 KiB blocks
// they touch (verified by the blocks' CRCs) instead of whole chunks.

class LargeChunkTest : public ::testing::Test {
 protected:
  // Block reads serve files larger than half the chunk cache; a cache
  // smaller than big.bin (12 MiB) makes them apply.
  static FsOptions BlockReadOptions() {
    FsOptions options;
    options.chunk_cache_bytes = 8 << 20;
    return options;
  }
  void SetUp() override {
    store_ = tmp_.Sub("store");
    StoreConfig config;
    config.chunker.min_size = 512 * 1024;
    config.chunker.avg_size = 1 << 20;
    config.chunker.max_size = 2 << 20;
    ASSERT_TRUE(Repository::Create(store_, config).ok());
    auto repo = Repository::Open(store_);
    ASSERT_TRUE(repo.ok());
    repo_ = std::move(repo).value();
    ASSERT_TRUE(repo_->CreateDataset("ds").ok());
    src_ = scratch_.Sub("src");
    ASSERT_TRUE(fstest::MkDir(src_));
    big_ = RandomBytes(12 << 20, 8);
    ASSERT_TRUE(WriteFile(src_ + "/big.bin", big_));
    text_ = TextBytes(3 << 20, 9);
    ASSERT_TRUE(WriteFile(src_ + "/text.txt", text_));
    commit_ = Import("ds", src_);
    auto c = repo_->ReadCommit(commit_);
    ASSERT_TRUE(c.ok());
    auto e = ::tusk::LookupPath(*repo_, c->root, "big.bin");
    ASSERT_TRUE(e.ok());
    uint64_t end = 0;
    for (const auto& ch : e->chunks) {
      chunks_.push_back({end, ch.length, ch.id});
      end += ch.length;
    }
    ASSERT_GE(chunks_.size(), 4u);
  }

  ObjectId Import(const std::string& dataset, const std::string& dir) {
    ImportOptions options;
    options.message = "import";
    options.author = "test";
    auto r = ImportDirectory(*repo_, dir, dataset, "main", options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->commit ? *r->commit : ObjectId();
  }

  static uint64_t Ino(SnapshotFs& fs, const std::string& path) {
    uint64_t ino = kRootIno;
    size_t pos = 0;
    while (pos < path.size()) {
      size_t slash = path.find('/', pos);
      if (slash == std::string::npos) slash = path.size();
      auto r = fs.Lookup(ino, path.substr(pos, slash - pos));
      EXPECT_TRUE(r.ok()) << path;
      if (!r.ok()) return 0;
      ino = r->attr.ino;
      pos = slash + 1;
    }
    return ino;
  }

  static Result<std::string> ReadStr(SnapshotFs& fs, uint64_t ino, uint64_t off, size_t len) {
    TUSK_ASSIGN_OR_RETURN(auto slices, fs.Read(ino, off, len));
    std::string out;
    for (const auto& sl : slices) out.append(sl.data, sl.len);
    return out;
  }

  // Offsets that exercise block and chunk edges (never a sequential pattern).
  std::vector<std::pair<uint64_t, size_t>> EdgeReads() {
    std::vector<std::pair<uint64_t, size_t>> reads;
    for (const auto& c : chunks_) {
      uint64_t blocks = (c.length + 16383) / 16384;
      for (uint64_t b : {uint64_t{1}, uint64_t{2}, blocks / 2, blocks - 1}) {
        uint64_t at = c.start + b * 16384;
        for (int64_t d : {-1, 0, 1}) {
          uint64_t off = at + d;
          for (size_t len : {size_t{1}, size_t{2}, size_t{4096}, size_t{16383}, size_t{16384}, size_t{16385},
                             size_t{40000}, size_t{65536}})
            reads.push_back({off, len});
        }
      }
      // The end of the chunk (a partial last block) and across into the next.
      for (size_t len : {size_t{1}, size_t{100}, size_t{5000}, size_t{65536}}) {
        reads.push_back({c.start + c.length - len, len});
        reads.push_back({c.start + c.length - len / 2 - 1, len});
      }
    }
    std::mt19937_64 rng(3);
    for (int i = 0; i < 400; i++)
      reads.push_back({rng() % big_.size(), std::vector<size_t>{1, 512, 4096, 8192, 65536}[rng() % 5]});
    std::shuffle(reads.begin(), reads.end(), rng);
    return reads;
  }

  struct ChunkPos {
    uint64_t start, length;
    ObjectId id;
  };
  TempDir tmp_;
  TempDir scratch_{fstest::ScratchBase()};
  std::string store_, src_, big_, text_;
  std::unique_ptr<Repository> repo_;
  ObjectId commit_;
  std::vector<ChunkPos> chunks_;
};

TEST_F(LargeChunkTest, RandomSmallReadsAreExactAndSkipTheChunkCache) {
  for (const auto& c : chunks_) ASSERT_GT(c.length, 256u * 1024) << "chunks must be large enough for block reads";
  SnapshotFs fs(repo_.get(), BlockReadOptions());
  uint64_t ino = Ino(fs, "ds/main/big.bin");
  uint64_t prev_end = 1;
  size_t checked = 0;
  for (auto [off, len] : EdgeReads()) {
    if (off >= big_.size() || off == prev_end) continue;
    auto got = ReadStr(fs, ino, off, len);
    ASSERT_TRUE(got.ok()) << "read(" << off << ", " << len << "): " << got.status().ToString();
    ASSERT_TRUE(*got == big_.substr(off, len)) << "read(" << off << ", " << len << ") differs";
    prev_end = off + got->size();
    checked++;
  }
  EXPECT_GT(checked, 500u);
  EXPECT_EQ(fs.chunk_cache().bytes(), 0u) << "random small reads should not have loaded whole chunks";
  // A compressed file takes the whole-chunk path for the same reads.
  uint64_t text = Ino(fs, "ds/main/text.txt");
  std::mt19937_64 rng(4);
  for (int i = 0; i < 100; i++) {
    uint64_t off = 1 + rng() % (text_.size() - 1);
    auto got = ReadStr(fs, text, off, 4096);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(*got == text_.substr(off, 4096)) << off;
  }
  // Sequential reading afterwards still sees the same bytes.
  std::string all;
  for (uint64_t off = 0; off < big_.size(); off += 131072) {
    auto got = ReadStr(fs, ino, off, 131072);
    ASSERT_TRUE(got.ok());
    all += *got;
  }
  EXPECT_TRUE(all == big_);
}

// Block reads only exist for raw chunks. A compressed chunk has to be
// decompressed whole for any read, so small random reads of it must go
// through the chunk cache; otherwise every 4 KiB read decompresses the
// whole chunk again and keeps nothing.
TEST_F(LargeChunkTest, RandomSmallReadsOfCompressedChunksAreCached) {
  SnapshotFs fs(repo_.get(), BlockReadOptions());
  uint64_t text = Ino(fs, "ds/main/text.txt");
  std::mt19937_64 rng(6);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 300; i++) {
    uint64_t off = 1 + rng() % (text_.size() - 4096);
    auto got = ReadStr(fs, text, off, 4096);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(*got == text_.substr(off, 4096));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(fs.chunk_cache().bytes(), 0u)
      << "300 random 4 KiB reads of a compressed file (" << text_.size() / (1 << 20)
      << " MiB in chunks of ~1 MiB) left nothing in the chunk cache: each read decompressed a whole chunk ("
      << secs * 1000 << " ms in all)";
}

TEST_F(LargeChunkTest, ADamagedBlockFailsReadsThatTouchIt) {
  // Flip one byte in block 5 of the second chunk.
  const ChunkPos& victim = chunks_[1];
  uint64_t in_chunk = 5 * 16384 + 100;
  bool flipped = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store_ + "/packs")) {
    if (!e.is_regular_file() || e.path().extension() != ".pack") continue;
    std::string bytes = fstest::ReadOr(e.path().string(), "");
    size_t at = bytes.find(std::string(victim.id.view()));
    if (at == std::string::npos || at < 16) continue;
    // The id sits 16 bytes into the 56-byte record header; the payload follows it.
    uint64_t payload = at - 16 + 56;
    int fd = ::open(e.path().c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    char b;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(payload + in_chunk)), 1);
    b = static_cast<char>(b ^ 0x10);
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(payload + in_chunk)), 1);
    ::close(fd);
    flipped = true;
    break;
  }
  ASSERT_TRUE(flipped);
  std::vector<std::string> log;
  std::mutex log_mu;
  FsOptions options = BlockReadOptions();
  options.log = [&](const std::string& m) {
    std::lock_guard lock(log_mu);
    log.push_back(m);
  };
  SnapshotFs fs(repo_.get(), options);
  uint64_t ino = Ino(fs, "ds/main/big.bin");
  uint64_t bad = victim.start + in_chunk;
  // Small reads touching the damaged block fail...
  for (auto [off, len] : std::vector<std::pair<uint64_t, size_t>>{
           {bad, 1}, {bad - 200, 4096}, {victim.start + 5 * 16384 - 1, 2}, {victim.start + 4 * 16384, 40000}}) {
    auto got = ReadStr(fs, ino, off, len);
    EXPECT_FALSE(got.ok()) << "read(" << off << ", " << len << ") over a damaged block succeeded";
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), Status::Code::kCorruption);
    }
  }
  // ...reads of other blocks of the same chunk are still verified and served...
  for (auto [off, len] : std::vector<std::pair<uint64_t, size_t>>{
           {victim.start + 16384, 4096}, {victim.start + 6 * 16384, 16384}, {victim.start + 4 * 16384, 16384}}) {
    auto got = ReadStr(fs, ino, off, len);
    ASSERT_TRUE(got.ok()) << "read(" << off << ", " << len << "): " << got.status().ToString();
    EXPECT_TRUE(*got == big_.substr(off, len));
  }
  // ...and reading the whole file fails.
  bool failed = false;
  for (uint64_t off = 0; off < big_.size() && !failed; off += 131072) failed = !ReadStr(fs, ino, off, 131072).ok();
  EXPECT_TRUE(failed) << "a sequential read of the whole file passed over the damaged block";
  std::lock_guard lock(log_mu);
  ASSERT_FALSE(log.empty());
  EXPECT_TRUE(fstest::HasSubstr(log.front(), "big.bin")) << log.front();
  EXPECT_TRUE(fstest::HasSubstr(log.front(), victim.id.Hex().substr(0, 12))) << log.front();
}

TEST_F(LargeChunkTest, BlockReadsStillVerifyAfterGcRewritesThePack) {
  // The same big.bin (deduplicated, so its chunks stay in the first pack)
  // in a second dataset; then the first dataset goes away, leaving text.txt
  // as garbage in that pack, and gc copies the live chunks to a new pack.
  ASSERT_TRUE(repo_->CreateDataset("keep").ok());
  std::string keep_dir = scratch_.Sub("keep");
  ASSERT_TRUE(fstest::MkDir(keep_dir));
  ASSERT_TRUE(WriteFile(keep_dir + "/big.bin", big_));
  Import("keep", keep_dir);
  ASSERT_TRUE(repo_->DeleteDataset("ds").ok());
  auto gc = repo_->CollectGarbage(false, nullptr);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_GE(gc->packs_rewritten, 1u) << "the test needs gc to copy live chunks";
  auto fsck = repo_->Check(nullptr);
  ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
  EXPECT_TRUE(fsck->problems.empty()) << fsck->problems.front().object << ": " << fsck->problems.front().error;

  SnapshotFs fs(repo_.get(), BlockReadOptions());
  uint64_t ino = Ino(fs, "keep/main/big.bin");
  uint64_t prev_end = 1;
  for (auto [off, len] : EdgeReads()) {
    if (off >= big_.size() || off == prev_end) continue;
    auto got = ReadStr(fs, ino, off, len);
    ASSERT_TRUE(got.ok()) << "after gc, read(" << off << ", " << len << "): " << got.status().ToString();
    ASSERT_TRUE(*got == big_.substr(off, len)) << "after gc, read(" << off << ", " << len << ") differs";
    prev_end = off + got->size();
  }
}

}  // namespace
}  // namespace tusk::fs
