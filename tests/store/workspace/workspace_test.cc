// Specification of branch workspaces (store/workspace/workspace.h) on a real store in
// a temporary directory: the merged view, copy-on-write at chunk
// granularity, namespace operations with their errno values, metadata,
// Changes, Commit (and what upper holds afterwards), divergence, Reset,
// crash recovery with the `next` file, locking, and bad input.

#include "store/workspace/workspace.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/exporter.h"
#include "store/importer.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

namespace fs = std::filesystem;
using ::tusk::test_util::RandomBytes;
using ::tusk::test_util::ReadFile;
using ::tusk::test_util::TempDir;
using ::tusk::test_util::WriteFile;

using FileMap = std::map<std::string, std::string>;

Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}

::testing::AssertionResult HasErrno(const Status& st, int err) {
  if (st.ok()) return ::testing::AssertionFailure() << "succeeded; expected errno " << err;
  if (st.sys_errno() != err)
    return ::testing::AssertionFailure() << "errno " << st.sys_errno() << " (" << st.ToString() << "); expected "
                                         << err;
  return ::testing::AssertionSuccess();
}
#define EXPECT_ERRNO(expr, err) EXPECT_TRUE(HasErrno(StatusOf(expr), err)) << #expr

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_dir_ = tmp_.Sub("store");
    TUSK_ASSERT_OK(Repository::Create(store_dir_, StoreConfig{}));
    auto repo = Repository::Open(store_dir_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
    TUSK_ASSERT_OK(repo_->CreateDataset("d"));
    m_bin_ = RandomBytes(1 << 20, 7);
    first_ =
        Import({{"a.txt", "alpha\n"}, {"dir/b.txt", "bravo\n"}, {"dir/sub/c.txt", "charlie\n"}, {"m.bin", m_bin_}});
    OpenWs();
  }

  void TearDown() override {
    ws_.reset();
    repo_.reset();
  }

  void OpenWs() {
    ws_.reset();
    auto ws = Workspace::Open(repo_.get(), "d", "main");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(ws).value();
  }

  // Imports `files` as the new state of d@main and returns the commit.
  ObjectId Import(const FileMap& files) {
    std::string src = tmp_.Sub("src" + std::to_string(next_src_++));
    fs::create_directories(src);
    for (const auto& [rel, content] : files) WriteFile(src + "/" + rel, content);
    return ImportDir(src);
  }

  // Imports the directory `src` as the new state of d@main.
  ObjectId ImportDir(const std::string& src) {
    ImportOptions options;
    options.message = "import";
    options.threads = 2;
    auto r = ImportDirectory(*repo_, src, "d", "main", options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->commit) return ObjectId();
    return *r->commit;
  }

  // A fresh source directory with `files`, to be given links, xattrs, ...
  std::string NewSource(const FileMap& files) {
    std::string src = tmp_.Sub("src" + std::to_string(next_src_++));
    fs::create_directories(src);
    for (const auto& [rel, content] : files) WriteFile(src + "/" + rel, content);
    return src;
  }

  std::string WsDir() const { return store_dir_ + "/workspaces/d/main"; }
  std::string UpperDir() const { return WsDir() + "/upper"; }

  // Every path in upper/, relative, sorted.
  std::set<std::string> UpperEntries() const {
    std::set<std::string> out;
    for (auto it = fs::recursive_directory_iterator(UpperDir()); it != fs::recursive_directory_iterator(); ++it)
      out.insert(fs::relative(it->path(), UpperDir()).string());
    return out;
  }

  void Put(const std::string& path, std::string_view content) {
    auto f = ws_->Create(path, 0644, false, who_);
    ASSERT_TRUE(f.ok()) << path << ": " << f.status().ToString();
    TUSK_ASSERT_OK((*f)->Truncate(0));
    auto n = (*f)->Write(0, content);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(*n, content.size());
  }

  // The merged content of a file, or "<errno N>".
  std::string Get(const std::string& path) {
    auto f = ws_->Open(path, O_RDONLY);
    if (!f.ok()) return "<errno " + std::to_string(f.status().sys_errno()) + ">";
    auto attr = (*f)->Stat();
    if (!attr.ok()) return "<stat failed>";
    auto data = (*f)->Read(0, attr->size + 10);
    if (!data.ok()) return "<read failed: " + data.status().ToString() + ">";
    return *data;
  }

  std::string ReadAll(WsFile& f) {
    auto attr = f.Stat();
    if (!attr.ok()) return "<stat failed>";
    auto data = f.Read(0, attr->size);
    return data.ok() ? *data : "<read failed: " + data.status().ToString() + ">";
  }

  Result<WsCommitResult> Commit(const std::string& message = "ws") {
    WsCommitOptions options;
    options.message = message;
    options.author = "test";
    return ws_->Commit(options);
  }

  ObjectId CommitOk(const std::string& message = "ws") {
    auto r = Commit(message);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->commit) {
      ADD_FAILURE() << "no commit made";
      return ObjectId();
    }
    return *r->commit;
  }

  Result<TreeEntry> Committed(const ObjectId& commit, const std::string& path) {
    TUSK_ASSIGN_OR_RETURN(tusk::Commit c, repo_->ReadCommit(commit));
    return LookupPath(*repo_, c.root, path);
  }

  std::string CommittedContent(const ObjectId& commit, const std::string& path) {
    auto e = Committed(commit, path);
    if (!e.ok()) return "<" + e.status().ToString() + ">";
    std::string out;
    Status st = ReadFileContent(*repo_, *e, [&](std::string_view d) {
      out.append(d);
      return Status::Ok();
    });
    return st.ok() ? out : "<" + st.ToString() + ">";
  }

  std::set<std::string> Names(const std::string& dir) {
    std::set<std::string> out;
    auto list = ws_->List(dir);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    if (list.ok())
      for (const auto& e : *list) out.insert(e.name);
    return out;
  }

  std::vector<std::string> ChangeLines() {
    std::vector<std::string> out;
    auto changes = ws_->Changes();
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    if (changes.ok())
      for (const auto& c : *changes) out.push_back(std::string(1, static_cast<char>(c.kind)) + " " + c.path);
    return out;
  }

  TempDir tmp_;
  std::string store_dir_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Workspace> ws_;
  ObjectId first_;
  std::string m_bin_;
  WsCaller who_{1000, 1000, 022};
  int next_src_ = 0;
};

// ---- the merged view and files ----

TEST_F(WorkspaceTest, ShowsTheBaseCommitUntilSomethingChanges) {
  EXPECT_EQ(ws_->base(), first_);
  EXPECT_EQ(Names(""), (std::set<std::string>{"a.txt", "dir", "m.bin"}));
  EXPECT_EQ(Get("dir/sub/c.txt"), "charlie\n");
  EXPECT_EQ(Get("m.bin"), m_bin_);
  auto attr = ws_->Stat("dir/b.txt");
  ASSERT_TRUE(attr.ok());
  EXPECT_TRUE(S_ISREG(attr->mode));
  EXPECT_EQ(attr->size, 6u);
  EXPECT_EQ(attr->nlink, 1u);
  EXPECT_EQ(attr->upper_ino, 0u) << "base-only entries have no upper identity";
  EXPECT_EQ(attr->atime, attr->mtime);
  auto dir = ws_->Stat("dir");
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(S_ISDIR(dir->mode));
  EXPECT_EQ(dir->nlink, 2u);
  auto m = ws_->Stat("m.bin");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->blocks, (m_bin_.size() + 511) / 512);
  EXPECT_TRUE(UpperEntries().empty()) << "reading copies nothing";
  auto opened = ws_->Open("a.txt", O_RDWR);
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(UpperEntries().empty()) << "opening for writing copies nothing";
}

TEST_F(WorkspaceTest, CreateWriteAndReadAfterWrite) {
  auto f = ws_->Create("new.txt", 0640, true, who_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Write(0, "hello").ok());
  ASSERT_TRUE((*f)->Write(5, " world").ok());
  EXPECT_EQ(ReadAll(**f), "hello world");
  auto part = (*f)->Read(6, 3);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, "wor");
  EXPECT_EQ(Get("new.txt"), "hello world");
  auto attr = ws_->Stat("new.txt");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->mode, S_IFREG | 0640u);
  EXPECT_EQ(attr->uid, 1000u);
  EXPECT_EQ(attr->gid, 1000u);
  EXPECT_EQ(attr->size, 11u);
  EXPECT_NE(attr->upper_ino, 0u);
  EXPECT_ERRNO(StatusOf(ws_->Create("new.txt", 0644, true, who_)), EEXIST);
  // Not exclusive: opens the existing file without truncating it.
  auto again = ws_->Create("new.txt", 0644, false, who_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ReadAll(**again), "hello world");
  // Writing to a committed file changes only what was written.
  auto a = ws_->Open("a.txt", O_RDWR);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Write(1, "LP").ok());
  EXPECT_EQ(Get("a.txt"), "aLPha\n");
  auto ro = ws_->Open("a.txt", O_RDONLY);
  ASSERT_TRUE(ro.ok());
  EXPECT_ERRNO(StatusOf((*ro)->Write(0, "x")), EBADF);
  EXPECT_ERRNO(StatusOf((*ro)->Truncate(0)), EBADF);
  TUSK_EXPECT_OK((*a)->Fsync(false));
}

TEST_F(WorkspaceTest, OpenWithTruncEmptiesACommittedFile) {
  auto f = ws_->Open("dir/b.txt", O_WRONLY | O_TRUNC);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(Get("dir/b.txt"), "");
  ASSERT_TRUE((*f)->Write(0, "B").ok());
  EXPECT_EQ(Get("dir/b.txt"), "B");
  // O_TRUNC on a read-only open truncates nothing.
  auto ro = ws_->Open("a.txt", O_RDONLY | O_TRUNC);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "dir/b.txt"), "B");
}

TEST_F(WorkspaceTest, WritesBeyondTheEndLeaveAHoleThatReadsZeros) {
  auto f = ws_->Create("sparse", 0644, true, who_);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(10, "xy").ok());
  EXPECT_EQ(ReadAll(**f), std::string(10, '\0') + "xy");
  // The same on a committed file.
  auto a = ws_->Open("a.txt", O_RDWR);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Write(100, "z").ok());
  EXPECT_EQ(Get("a.txt"), "alpha\n" + std::string(94, '\0') + "z");
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "sparse"), std::string(10, '\0') + "xy");
  EXPECT_EQ(CommittedContent(c, "a.txt"), "alpha\n" + std::string(94, '\0') + "z");
}

TEST_F(WorkspaceTest, TruncatingDownThenUpReadsZerosNotOldData) {
  Put("n.txt", "0123456789");
  WsSetAttr shrink, grow;
  shrink.size = 4;
  grow.size = 8;
  TUSK_ASSERT_OK(ws_->SetAttr("n.txt", shrink));
  EXPECT_EQ(Get("n.txt"), "0123");
  TUSK_ASSERT_OK(ws_->SetAttr("n.txt", grow));
  EXPECT_EQ(Get("n.txt"), std::string("0123") + std::string(4, '\0'));
  // A committed file: the cut chunks must not come back from the store.
  TUSK_ASSERT_OK(ws_->SetAttr("m.bin", shrink));
  TUSK_ASSERT_OK(ws_->SetAttr("m.bin", grow));
  EXPECT_EQ(Get("m.bin"), m_bin_.substr(0, 4) + std::string(4, '\0'));
  // Through an open file, across a chunk boundary in the middle.
  auto a = ws_->Open("dir/sub/c.txt", O_RDWR);
  ASSERT_TRUE(a.ok());
  TUSK_ASSERT_OK((*a)->Truncate(3));
  TUSK_ASSERT_OK((*a)->Truncate(300000));
  auto attr = (*a)->Stat();
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, 300000u);
  EXPECT_EQ(ReadAll(**a), "cha" + std::string(300000 - 3, '\0'));
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "m.bin"), m_bin_.substr(0, 4) + std::string(4, '\0'));
  EXPECT_EQ(CommittedContent(c, "dir/sub/c.txt"), "cha" + std::string(300000 - 3, '\0'));
  EXPECT_EQ(CommittedContent(c, "n.txt"), std::string("0123") + std::string(4, '\0'));
}

TEST_F(WorkspaceTest, AFileLargerThan4GiBFromSparseWrites) {
  const uint64_t at = uint64_t{5} << 30;
  auto f = ws_->Create("huge", 0644, true, who_);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(at, "end").ok());
  ASSERT_TRUE((*f)->Write(1000, "start").ok());
  auto tail = (*f)->Read(at - 2, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, std::string(2, '\0') + "end");
  auto middle = (*f)->Read(uint64_t{1} << 32, 4);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(*middle, std::string(4, '\0'));
  auto attr = ws_->Stat("huge");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, at + 3);
  EXPECT_LT(attr->blocks, 1024u) << "only the written blocks are allocated";
  auto r = Commit();
  ASSERT_TRUE(r.ok() && r->commit) << r.status().ToString();
  EXPECT_LT(r->new_stored_bytes, 1u << 20);
  auto e = Committed(*r->commit, "huge");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size, at + 3);
  uint64_t stored = 0;
  for (const auto& c : e->chunks)
    if (!c.IsHole()) stored += c.length;
  EXPECT_LT(stored, 1u << 20) << "the holes are committed as holes";
  auto again = ws_->Open("huge", O_RDONLY);
  ASSERT_TRUE(again.ok());
  auto end = (*again)->Read(at, 3);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, "end");
}

// The same fallocate(2) calls on a workspace file and on a local copy leave
// the same size and bytes, for a committed file (whose chunks the ranges
// cut and cover) and a new one; the commit records the result.
TEST_F(WorkspaceTest, FallocateInEveryModeMatchesALocalFile) {
  struct Call {
    int mode;
    uint64_t offset, length;
  };
  const int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  const std::vector<Call> calls = {
      {kPunch, 100000, 300000},                           // cuts two chunks, may cover one
      {FALLOC_FL_ZERO_RANGE, 500000, 400000},             // inside the file
      {FALLOC_FL_KEEP_SIZE, 900000, 400000},              // past the end: the size stays
      {0, 1000000, 200000},                               // past the end: the size grows
      {0, 10, 20},                                        // inside: nothing changes
      {FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 1100000, 300000},
      {FALLOC_FL_ZERO_RANGE, 1150000, 200000},            // grows again
      {kPunch, 0, 4096},
      {kPunch, 1300000, 1 << 20},                         // to past the end
  };
  for (const std::string name : {"m.bin", "new.bin"}) {
    SCOPED_TRACE(name);
    std::string local = tmp_.Sub("local-" + name);
    std::string initial = name == "m.bin" ? m_bin_ : RandomBytes(700000, 9);
    WriteFile(local, initial);
    if (name == "new.bin") Put(name, initial);
    int lfd = ::open(local.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(lfd, 0);
    auto f = ws_->Open(name, O_RDWR);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    for (const Call& c : calls) {
      SCOPED_TRACE("mode " + std::to_string(c.mode) + " at " + std::to_string(c.offset));
      ASSERT_EQ(::fallocate(lfd, c.mode, static_cast<off_t>(c.offset), static_cast<off_t>(c.length)), 0);
      TUSK_ASSERT_OK((*f)->Allocate(c.mode, c.offset, c.length));
      struct stat st;
      ASSERT_EQ(::fstat(lfd, &st), 0);
      auto attr = (*f)->Stat();
      ASSERT_TRUE(attr.ok());
      EXPECT_EQ(attr->size, static_cast<uint64_t>(st.st_size));
      EXPECT_TRUE(ReadAll(**f) == ReadFile(local)) << "the bytes differ from the local file's";
      EXPECT_TRUE(Get(name) == ReadFile(local)) << "a new open reads other bytes";
    }
    ::close(lfd);
  }
  ObjectId c = CommitOk();
  EXPECT_TRUE(CommittedContent(c, "m.bin") == ReadFile(tmp_.Sub("local-m.bin")));
  EXPECT_TRUE(CommittedContent(c, "new.bin") == ReadFile(tmp_.Sub("local-new.bin")));
}

TEST_F(WorkspaceTest, FallocateRefusesWhatALocalFileRefuses) {
  auto f = ws_->Open("a.txt", O_RDWR);
  ASSERT_TRUE(f.ok());
  EXPECT_ERRNO((*f)->Allocate(FALLOC_FL_PUNCH_HOLE, 0, 2), EOPNOTSUPP);  // needs KEEP_SIZE
  EXPECT_ERRNO((*f)->Allocate(FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
  EXPECT_ERRNO((*f)->Allocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 2), EOPNOTSUPP);
  EXPECT_ERRNO((*f)->Allocate(0, 0, 0), EINVAL);
  EXPECT_ERRNO((*f)->Allocate(0, uint64_t{1} << 63, 1), EFBIG);
  auto ro = ws_->Open("a.txt", O_RDONLY);
  ASSERT_TRUE(ro.ok());
  EXPECT_ERRNO((*ro)->Allocate(0, 0, 10), EBADF);
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  EXPECT_TRUE(ChangeLines().empty()) << "a refused fallocate changes nothing";
}

// ---- paths near PATH_MAX ----

// A directory `bytes` long below `base`, made of components of up to 250
// bytes (created one level at a time, relative to the previous one).
std::string DeepDir(const std::string& base, size_t bytes) {
  std::string path = base;
  for (int i = 0; path.size() < base.size() + bytes; i++) {
    size_t n = std::min<size_t>(250, base.size() + bytes - path.size() - 1);
    if (n == 0) break;
    std::string part(n, static_cast<char>('a' + i % 26));
    int parent = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(parent, 0) << path.size();
    EXPECT_EQ(::mkdirat(parent, part.c_str(), 0755), 0);
    ::close(parent);
    path += "/" + part;
  }
  return path;
}

// A workspace path of about `bytes` in components of 200 bytes: "" for
// its directories, the last component named `leaf`.
std::string DeepRel(size_t bytes, const std::string& leaf) {
  std::string rel;
  for (int i = 0; rel.size() + leaf.size() + 2 <= bytes; i++) {
    size_t n = std::min<size_t>(200, bytes - rel.size() - leaf.size() - 1);
    rel += std::string(n, static_cast<char>('A' + i % 26)) + "/";
  }
  return rel + leaf;
}

// The store's own path (about 3000 bytes) plus a path in the workspace
// (about 4000) is far over PATH_MAX: every operation still works, and a
// commit records the entries.
TEST(WorkspaceLongPathTest, EveryOperationWorksWhereStorePathPlusWorkspacePathPassesPathMax) {
  TempDir tmp;
  std::string store = DeepDir(tmp.path(), 3000) + "/store";
  ASSERT_GT(store.size(), 3000u);
  TUSK_ASSERT_OK(Repository::Create(store, StoreConfig{}));
  auto repo = Repository::Open(store);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  TUSK_ASSERT_OK((*repo)->CreateDataset("d"));
  std::string src = tmp.Sub("src");
  fs::create_directories(src);
  WriteFile(src + "/top.txt", "top\n");
  ImportOptions options;
  options.message = "import";
  ASSERT_TRUE(ImportDirectory(**repo, src, "d", "main", options).ok());
  WsCaller who{0, 0, 022};
  std::unique_ptr<Workspace> ws;
  {
    auto opened = Workspace::Open(repo->get(), "d", "main");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ws = std::move(opened).value();
  }
  const std::string file = DeepRel(4000, "f.txt");
  ASSERT_GT(file.size(), 3900u);
  const std::string dir = file.substr(0, file.rfind('/'));
  {
    std::string made;
    for (size_t start = 0; start < dir.size();) {
      size_t end = dir.find('/', start);
      if (end == std::string::npos) end = dir.size();
      made = dir.substr(0, end);
      TUSK_ASSERT_OK(ws->Mkdir(made, 0755, who));
      start = end + 1;
    }
  }
  // create, write, read, stat, truncate, times, mode
  {
    auto f = ws->Create(file, 0644, true, who);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(0, "deep content\n").ok());
  }
  auto st = ws->Stat(file);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->size, 13u);
  {
    auto f = ws->Open(file, O_RDWR);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(*(*f)->Read(0, 100), "deep content\n");
  }
  WsSetAttr change;
  change.mode = 0600;
  change.mtime = WsTime{1000000000, 5};
  TUSK_ASSERT_OK(ws->SetAttr(file, change));
  WsSetAttr trunc;
  trunc.size = 4;
  TUSK_ASSERT_OK(ws->SetAttr(file, trunc));
  st = ws->Stat(file);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 4u);
  EXPECT_EQ(st->mode & 07777, 0600u);
  // xattrs
  TUSK_ASSERT_OK(ws->SetXattr(file, "user.deep", "yes", 0));
  EXPECT_EQ(*ws->GetXattr(file, "user.deep"), "yes");
  EXPECT_EQ(*ws->ListXattr(file), std::vector<std::string>{"user.deep"});
  TUSK_ASSERT_OK(ws->SetXattr(dir, "user.dir", "1", 0));
  // special files, symlinks, hard links, renames, listing
  TUSK_ASSERT_OK(ws->Mknod(dir + "/fifo", S_IFIFO | 0644, 0, who));
  TUSK_ASSERT_OK(ws->Symlink("f.txt", dir + "/sym", who));
  EXPECT_EQ(*ws->ReadLink(dir + "/sym"), "f.txt");
  TUSK_ASSERT_OK(ws->Link(file, dir + "/hard"));
  EXPECT_EQ(ws->Stat(dir + "/hard")->nlink, 2u);
  TUSK_ASSERT_OK(ws->Rename(dir + "/hard", dir + "/hard2", 0));
  TUSK_ASSERT_OK(ws->Unlink(dir + "/hard2"));
  TUSK_ASSERT_OK(ws->Mkdir(dir + "/sub", 0755, who));
  TUSK_ASSERT_OK(ws->Rmdir(dir + "/sub"));
  auto list = ws->List(dir);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::set<std::string> names;
  for (const auto& e : *list) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{"f.txt", "fifo", "sym"}));
  // status and commit
  auto changes = ws->Changes();
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::set<std::string> changed;
  for (const auto& c : *changes) changed.insert(c.path);
  EXPECT_TRUE(changed.count(file)) << "Changes lists the deep file";
  WsCommitOptions commit;
  commit.message = "deep";
  auto c = ws->Commit(commit);
  ASSERT_TRUE(c.ok() && c->commit) << c.status().ToString();
  {
    auto cm = (*repo)->ReadCommit(*c->commit);
    ASSERT_TRUE(cm.ok());
    auto e = LookupPath(**repo, cm->root, file);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->size, 4u);
    EXPECT_EQ(e->mode & 07777, 0600u);
    ASSERT_EQ(e->xattrs.size(), 1u);
    EXPECT_EQ(e->xattrs[0].second, "yes");
  }
  // copy-up of the committed deep file, and of its directories by a rename
  {
    auto f = ws->Open(file, O_RDWR);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(4, " more").ok());
    EXPECT_EQ(*(*f)->Read(0, 100), "deep more");
  }
  std::string first = file.substr(0, file.find('/'));
  TUSK_ASSERT_OK(ws->Rename(first, "moved", 0));
  std::string moved_file = "moved" + file.substr(first.size());
  EXPECT_EQ(ws->Stat(moved_file)->size, 9u);
  EXPECT_EQ(*ws->ReadLink("moved" + dir.substr(first.size()) + "/sym"), "f.txt");
  TUSK_ASSERT_OK(ws->Rename("moved", first, 0));
  // reset drops it all
  TUSK_ASSERT_OK(ws->Reset());
  st = ws->Stat(file);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->size, 4u);
  TUSK_ASSERT_OK(ws->Unlink(file));
  EXPECT_ERRNO(StatusOf(ws->Stat(file)), ENOENT);
  TUSK_ASSERT_OK(ws->Reset());  // leaves nothing too deep for the clean-up of tmp
}

// A symlink in the workspace is never followed by the workspace itself:
// a path through it is not a directory, and nothing appears where it points.
TEST_F(WorkspaceTest, PathsThroughASymlinkAreNotFollowedOutOfTheWorkspace) {
  std::string outside = tmp_.Sub("outside");
  fs::create_directories(outside);
  TUSK_ASSERT_OK(ws_->Symlink(outside, "out", who_));
  TUSK_ASSERT_OK(ws_->Symlink("dir", "in", who_));
  EXPECT_ERRNO(StatusOf(ws_->Create("out/f", 0644, true, who_)), ENOTDIR);
  EXPECT_ERRNO(ws_->Mkdir("out/d", 0755, who_), ENOTDIR);
  EXPECT_ERRNO(StatusOf(ws_->Stat("in/b.txt")), ENOTDIR);
  EXPECT_TRUE(fs::is_empty(outside));
}

// ---- a full disk ----

// A store on a small tmpfs (mounting one needs root; skipped otherwise).
class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    small_ = tmp_.Sub("small");
    fs::create_directories(small_);
    if (::mount("tmpfs", small_.c_str(), "tmpfs", 0, "size=12m") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    mounted_ = true;
    TUSK_ASSERT_OK(Repository::Create(small_ + "/store", StoreConfig{}));
    auto repo = Repository::Open(small_ + "/store");
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
    TUSK_ASSERT_OK(repo_->CreateDataset("d"));
    std::string src = tmp_.Sub("src");
    fs::create_directories(src);
    old_ = RandomBytes(2 << 20, 11);
    WriteFile(src + "/old.bin", old_);
    ImportOptions options;
    options.message = "import";
    auto r = ImportDirectory(*repo_, src, "d", "main", options);
    ASSERT_TRUE(r.ok() && r->commit) << r.status().ToString();
    auto c = repo_->ReadCommit(*r->commit);
    ASSERT_TRUE(c.ok());
    auto e = LookupPath(*repo_, c->root, "old.bin");
    ASSERT_TRUE(e.ok());
    chunks_ = e->chunks;
    ASSERT_GE(chunks_.size(), 4u) << "the test needs a file of several chunks";
    auto ws = Workspace::Open(repo_.get(), "d", "main");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(ws).value();
  }
  void TearDown() override {
    ws_.reset();
    repo_.reset();
    if (mounted_) ::umount2(small_.c_str(), MNT_DETACH);
  }

  // Writes `block`s to `f` until the disk is full; returns the size written.
  uint64_t Fill(WsFile& f, const std::string& block) {
    uint64_t pos = 0;
    for (int i = 0; i < 64; i++) {
      auto n = f.Write(pos, block);
      if (!n.ok()) {
        EXPECT_EQ(n.status().sys_errno(), ENOSPC) << n.status().ToString();
        return pos;
      }
      EXPECT_GT(*n, 0u);
      EXPECT_LE(*n, block.size());
      pos += *n;
    }
    ADD_FAILURE() << "the disk never filled";
    return pos;
  }

  TempDir tmp_;
  std::string small_, old_;
  bool mounted_ = false;
  std::vector<ChunkRef> chunks_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Workspace> ws_;
  WsCaller who_{0, 0, 022};
};

TEST_F(FullDiskTest, AWriteTheDiskTakesInPartCountsWhatItWroteAndTheSizeMatches) {
  auto f = ws_->Create("fill", 0644, true, who_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  // 640 KiB does not divide the space left: the last write that gets any
  // room gets only part of it.
  std::string block = RandomBytes(640 << 10, 5);
  uint64_t size = Fill(**f, block);
  ASSERT_GT(size, 0u);
  auto st = (*f)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, size) << "the size is what the writes acknowledged";
  auto data = (*f)->Read(0, size);
  ASSERT_TRUE(data.ok());
  std::string expected;
  while (expected.size() < size) expected += block;
  expected.resize(size);
  EXPECT_TRUE(*data == expected) << "the acknowledged bytes read back";
  // A write that writes nothing fails and changes nothing.
  auto n = (*f)->Write(size, block);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().sys_errno(), ENOSPC);
  st = (*f)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, size);
}

TEST_F(FullDiskTest, FallocateBeyondTheFreeSpaceFailsAndLeavesTheFileAsItWas) {
  auto f = ws_->Create("big", 0644, true, who_);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(*(*f)->Write(0, "head"), 4u);
  EXPECT_ERRNO((*f)->Allocate(0, 0, 64 << 20), ENOSPC);
  auto st = (*f)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 4u);
  // What fits is reserved and counted.
  TUSK_ASSERT_OK((*f)->Allocate(0, 0, 1 << 20));
  st = (*f)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, uint64_t{1} << 20);
  EXPECT_GE(st->blocks * 512, uint64_t{1} << 20);
}

TEST_F(FullDiskTest, APartialOverwriteOfACommittedFileCountsOnlyWholeChunks) {
  // Copy the committed file up (no chunk copied yet) while there is room.
  TUSK_ASSERT_OK(ws_->SetXattr("old.bin", "user.x", "1", 0));
  auto fill = ws_->Create("fill", 0644, true, who_);
  ASSERT_TRUE(fill.ok());
  uint64_t filled = Fill(**fill, RandomBytes(1 << 20, 5));
  // Room for the first two chunks and half the third.
  uint64_t room = chunks_[0].length + chunks_[1].length + chunks_[2].length / 2;
  ASSERT_GT(filled, room);
  TUSK_ASSERT_OK((*fill)->Truncate(filled - room));
  auto f = ws_->Open("old.bin", O_RDWR);
  ASSERT_TRUE(f.ok());
  std::string fresh = RandomBytes(old_.size(), 6);
  auto n = (*f)->Write(0, fresh);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  // The count ends where a chunk starts: the chunk the disk filled in keeps
  // reading its committed bytes, so no byte past the count is new.
  std::set<uint64_t> starts;
  uint64_t at = 0;
  for (const auto& c : chunks_) {
    starts.insert(at);
    at += c.length;
  }
  EXPECT_GT(*n, 0u);
  EXPECT_LT(*n, fresh.size());
  EXPECT_TRUE(starts.count(*n)) << *n << " is not a chunk boundary";
  std::string expected = fresh.substr(0, *n) + old_.substr(*n);
  auto data = (*f)->Read(0, old_.size());
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(*data == expected);
  auto st = (*f)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, old_.size());
  // With room again, the commit records exactly that.
  TUSK_ASSERT_OK(ws_->Unlink("fill"));
  fill->reset();
  WsCommitOptions options;
  options.message = "after full";
  auto c = ws_->Commit(options);
  ASSERT_TRUE(c.ok() && c->commit) << c.status().ToString();
  auto commit = repo_->ReadCommit(*c->commit);
  ASSERT_TRUE(commit.ok());
  auto e = LookupPath(*repo_, commit->root, "old.bin");
  ASSERT_TRUE(e.ok());
  std::string committed;
  TUSK_ASSERT_OK(ReadFileContent(*repo_, *e, [&](std::string_view d) {
    committed.append(d);
    return Status::Ok();
  }));
  EXPECT_TRUE(committed == expected);
}

// ---- renames, links, unlink ----

TEST_F(WorkspaceTest, RenamingACommittedDirectoryTakesItsFilesAlong) {
  TUSK_ASSERT_OK(ws_->Rename("dir", "moved", 0));
  EXPECT_ERRNO(StatusOf(ws_->Stat("dir")), ENOENT);
  EXPECT_EQ(Names(""), (std::set<std::string>{"a.txt", "m.bin", "moved"}));
  EXPECT_EQ(Get("moved/b.txt"), "bravo\n");
  EXPECT_EQ(Get("moved/sub/c.txt"), "charlie\n");
  // Writing below the new path and making the old name again stay apart.
  Put("moved/sub/c.txt", "CHARLIE\n");
  TUSK_ASSERT_OK(ws_->Mkdir("dir", 0755, who_));
  EXPECT_TRUE(Names("dir").empty());
  TUSK_ASSERT_OK(ws_->Rename("a.txt", "moved/sub/a2.txt", 0));
  EXPECT_EQ(Get("moved/sub/a2.txt"), "alpha\n");
  EXPECT_ERRNO(StatusOf(ws_->Stat("a.txt")), ENOENT);
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "moved/b.txt"), "bravo\n");
  EXPECT_EQ(CommittedContent(c, "moved/sub/c.txt"), "CHARLIE\n");
  EXPECT_EQ(CommittedContent(c, "moved/sub/a2.txt"), "alpha\n");
  EXPECT_FALSE(Committed(c, "a.txt").ok());
  auto dir = Committed(c, "dir");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->size, 0u) << "the new dir is empty";
  // The original directory's mtime moved with it.
  auto before = Committed(first_, "dir");
  auto after = Committed(c, "moved");
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(after->mtime_sec, before->mtime_sec);
  EXPECT_EQ(after->mtime_nsec, before->mtime_nsec);
}

TEST_F(WorkspaceTest, RenameOverAnExistingTargetReplacesItAndNoreplaceRefuses) {
  Put("n1", "one");
  TUSK_ASSERT_OK(ws_->Rename("n1", "a.txt", 0));
  EXPECT_EQ(Get("a.txt"), "one");
  EXPECT_ERRNO(StatusOf(ws_->Stat("n1")), ENOENT);
  Put("n2", "two");
  EXPECT_ERRNO(ws_->Rename("n2", "a.txt", RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(ws_->Rename("n2", "dir/b.txt", RENAME_NOREPLACE), EEXIST);
  EXPECT_EQ(Get("n2"), "two");
  // A committed file over a committed file.
  TUSK_ASSERT_OK(ws_->Rename("dir/b.txt", "m.bin", 0));
  EXPECT_EQ(Get("m.bin"), "bravo\n");
  // Directories: over an empty one works, over a non-empty one does not.
  TUSK_ASSERT_OK(ws_->Mkdir("empty", 0755, who_));
  EXPECT_ERRNO(ws_->Rename("empty", "dir", 0), ENOTEMPTY);
  TUSK_ASSERT_OK(ws_->Rename("dir", "empty", 0));
  EXPECT_EQ(Get("empty/sub/c.txt"), "charlie\n");
  EXPECT_ERRNO(ws_->Rename("empty", "a.txt", 0), ENOTDIR);
  EXPECT_ERRNO(ws_->Rename("a.txt", "empty", 0), EISDIR);
  EXPECT_ERRNO(ws_->Rename("empty", "empty/sub/x", 0), EINVAL);
  EXPECT_ERRNO(ws_->Rename("a.txt", "b", 0x100), EINVAL);
  // RENAME_EXCHANGE swaps.
  TUSK_ASSERT_OK(ws_->Rename("a.txt", "n2", RENAME_EXCHANGE));
  EXPECT_EQ(Get("a.txt"), "two");
  EXPECT_EQ(Get("n2"), "one");
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "a.txt"), "two");
  EXPECT_EQ(CommittedContent(c, "n2"), "one");
  EXPECT_EQ(CommittedContent(c, "m.bin"), "bravo\n");
  EXPECT_EQ(CommittedContent(c, "empty/sub/c.txt"), "charlie\n");
  EXPECT_FALSE(Committed(c, "dir").ok());
}

TEST_F(WorkspaceTest, AnUnlinkedFileStaysReadableAndWritableThroughAnOpenFile) {
  auto base_file = ws_->Open("a.txt", O_RDWR);
  auto new_file = ws_->Create("n.txt", 0644, true, who_);
  ASSERT_TRUE(base_file.ok() && new_file.ok());
  ASSERT_TRUE((*new_file)->Write(0, "new").ok());
  TUSK_ASSERT_OK(ws_->Unlink("a.txt"));
  TUSK_ASSERT_OK(ws_->Unlink("n.txt"));
  EXPECT_ERRNO(StatusOf(ws_->Stat("a.txt")), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Stat("n.txt")), ENOENT);
  EXPECT_EQ(ReadAll(**base_file), "alpha\n");
  ASSERT_TRUE((*base_file)->Write(0, "A").ok());
  EXPECT_EQ(ReadAll(**base_file), "Alpha\n");
  ASSERT_TRUE((*new_file)->Write(3, "er").ok());
  EXPECT_EQ(ReadAll(**new_file), "newer");
  // A new file of the same name is another file.
  Put("a.txt", "other");
  EXPECT_EQ(ReadAll(**base_file), "Alpha\n");
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "a.txt"), "other");
  EXPECT_FALSE(Committed(c, "n.txt").ok());
  ASSERT_TRUE((*base_file)->Write(1, "L").ok());
  EXPECT_EQ(ReadAll(**base_file), "ALpha\n");
  EXPECT_EQ(Get("a.txt"), "other");
}

TEST_F(WorkspaceTest, HardLinksShareOneFileAndCommitAsALinkGroup) {
  TUSK_ASSERT_OK(ws_->Link("a.txt", "dir/a-link"));
  auto a = ws_->Stat("a.txt");
  auto l = ws_->Stat("dir/a-link");
  ASSERT_TRUE(a.ok() && l.ok());
  EXPECT_EQ(a->nlink, 2u);
  EXPECT_EQ(a->upper_ino, l->upper_ino);
  auto f = ws_->Open("dir/a-link", O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(0, "ALPHA").ok());
  EXPECT_EQ(Get("a.txt"), "ALPHA\n");
  EXPECT_ERRNO(ws_->Link("dir", "dir2"), EPERM);
  EXPECT_ERRNO(ws_->Link("a.txt", "m.bin"), EEXIST);
  EXPECT_ERRNO(ws_->Link("nope", "x"), ENOENT);
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M a.txt", "A dir/a-link"}));
  ObjectId c = CommitOk();
  EXPECT_EQ(CommittedContent(c, "a.txt"), "ALPHA\n");
  EXPECT_EQ(CommittedContent(c, "dir/a-link"), "ALPHA\n");
  auto ca = Committed(c, "a.txt");
  auto cl = Committed(c, "dir/a-link");
  ASSERT_TRUE(ca.ok() && cl.ok());
  ASSERT_TRUE(ca->link_group.has_value()) << "the two names are recorded as one file";
  EXPECT_EQ(ca->link_group, cl->link_group);
  EXPECT_EQ(ca->chunks, cl->chunks);
  // Both names of the open file stay in upper, still one inode, and the
  // workspace is exactly the commit (the group keeps its number).
  EXPECT_TRUE(ChangeLines().empty());
  ASSERT_TRUE((*f)->Write(0, "alpha").ok());
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M a.txt", "M dir/a-link"}));
  f->reset();
  // A new file linked, then its first name removed (how git stores objects).
  Put("tmp_obj", "object");
  TUSK_ASSERT_OK(ws_->Link("tmp_obj", "dir/obj"));
  TUSK_ASSERT_OK(ws_->Unlink("tmp_obj"));
  EXPECT_EQ(Get("dir/obj"), "object");
  auto obj = ws_->Stat("dir/obj");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->nlink, 1u);
  ObjectId c2 = CommitOk();
  auto committed_obj = Committed(c2, "dir/obj");
  ASSERT_TRUE(committed_obj.ok());
  EXPECT_FALSE(committed_obj->link_group.has_value()) << "one name left: no group";
}

// A mount run by an ordinary user cannot chown: upper entries stay its own,
// and the owner it could not set is recorded beside them, shown and
// committed. Run in a child process that drops root.
TEST_F(WorkspaceTest, AnUnprivilegedProcessRecordsTheOwnersItCannotSet) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to prepare a store for another user";
  std::string src = NewSource({{"shared.txt", "shared\n"}, {"team/keep", "k"}});
  ASSERT_EQ(::symlink("keep", (src + "/team/link").c_str()), 0);
  for (const char* p : {"shared.txt", "team", "team/keep", "team/link"})
    ASSERT_EQ(::lchown((src + "/" + p).c_str(), 1234, 1234), 0);
  ASSERT_EQ(::chmod((src + "/shared.txt").c_str(), 0666), 0);
  ASSERT_EQ(::chmod((src + "/team").c_str(), 0777), 0);
  ImportDir(src);
  ws_.reset();
  repo_.reset();
  for (const auto& e : fs::recursive_directory_iterator(store_dir_))
    ASSERT_EQ(::lchown(e.path().c_str(), 65534, 65534), 0) << e.path();
  ASSERT_EQ(::lchown(store_dir_.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);

  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string errors;
    auto check = [&](bool ok, const std::string& what) {
      if (!ok) errors += what + "\n";
    };
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      errors += "cannot drop root\n";
    auto repo = Repository::Open(store_dir_);
    check(repo.ok(), "open store: " + repo.status().ToString());
    std::unique_ptr<Workspace> ws;
    if (repo.ok()) {
      auto w = Workspace::Open(repo->get(), "d", "main");
      check(w.ok(), "open workspace: " + w.status().ToString());
      if (w.ok()) ws = std::move(w).value();
    }
    if (ws) {
      auto owner = [&](const std::string& p) {
        auto a = ws->Stat(p);
        return a.ok() ? std::to_string(a->uid) + ":" + std::to_string(a->gid) : a.status().ToString();
      };
      // Writing a file someone else owns (mode 0666) copies it up and keeps its owner.
      auto f = ws->Open("shared.txt", O_RDWR);
      check(f.ok() && (*f)->Write(0, "SHARED").ok(), "write shared.txt");
      f = Status::Ok();
      check(owner("shared.txt") == "1234:1234", "shared.txt shows " + owner("shared.txt"));
      // New entries for this user and, as with allow_other, for another.
      check(ws->Create("team/mine", 0644, true, WsCaller{65534, 65534, 022}).ok(), "create team/mine");
      check(ws->Create("team/theirs", 0644, true, WsCaller{4321, 4321, 022}).ok(), "create team/theirs");
      check(ws->Mkdir("team/sub", 0755, WsCaller{4321, 4321, 022}).ok(), "mkdir team/sub");
      check(owner("team/mine") == "65534:65534", "team/mine shows " + owner("team/mine"));
      check(owner("team/theirs") == "4321:4321", "team/theirs shows " + owner("team/theirs"));
      check(owner("team/sub") == "4321:4321", "team/sub shows " + owner("team/sub"));
      WsSetAttr chown;
      chown.uid = 777;
      check(ws->SetAttr("team/mine", chown).ok(), "chown team/mine");
      check(owner("team/mine") == "777:65534", "team/mine after chown shows " + owner("team/mine"));
      // A symlink cannot record an owner: one for another user is refused.
      Status l = ws->Symlink("keep", "team/their-link", WsCaller{4321, 4321, 022});
      check(l.sys_errno() == EPERM, "symlink for another user: " + l.ToString());
      check(!ws->Stat("team/their-link").ok(), "the refused symlink is gone");
      // The record is the workspace's own: not listed among the file's xattrs.
      auto names = ws->ListXattr("shared.txt");
      check(names.ok() && names->empty(), "shared.txt lists xattrs");
      // Renaming the directory copies up its committed symlink as this user's.
      check(ws->Rename("team", "team2", 0).ok(), "rename team");
      check(owner("team2/keep") == "1234:1234", "team2/keep shows " + owner("team2/keep"));
      check(owner("team2/link") == "65534:65534", "team2/link shows " + owner("team2/link"));
      WsCommitOptions options;
      options.message = "owners";
      options.author = "test";
      auto c = ws->Commit(options);
      check(c.ok() && c->commit, "commit: " + c.status().ToString());
      if (c.ok() && c->commit) {
        auto commit = (*repo)->ReadCommit(*c->commit);
        auto committed = [&](const std::string& p) {
          auto e = LookupPath(**repo, commit->root, p);
          return e.ok() ? std::to_string(e->uid) + ":" + std::to_string(e->gid) : e.status().ToString();
        };
        check(committed("shared.txt") == "1234:1234", "committed shared.txt " + committed("shared.txt"));
        check(committed("team2") == "1234:1234", "committed team2 " + committed("team2"));
        check(committed("team2/theirs") == "4321:4321", "committed team2/theirs " + committed("team2/theirs"));
        check(committed("team2/mine") == "777:65534", "committed team2/mine " + committed("team2/mine"));
        check(committed("team2/sub") == "4321:4321", "committed team2/sub " + committed("team2/sub"));
      }
    }
    (void)!::write(out[1], errors.data(), errors.size());
    ::_exit(errors.empty() ? 0 : 1);
  }
  ::close(out[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << report;
}

TEST_F(WorkspaceTest, CommittedHardLinksStayLinkedWhenOneNameIsWritten) {
  std::string src = NewSource({{"x/one", "shared\n"}, {"y/other", "o"}, {"z", "zz"}});
  ASSERT_EQ(::link((src + "/x/one").c_str(), (src + "/x/two").c_str()), 0);
  ASSERT_EQ(::link((src + "/x/one").c_str(), (src + "/y/three").c_str()), 0);
  ObjectId base = ImportDir(src);
  OpenWs();
  ASSERT_EQ(ws_->base(), base);
  auto group = Committed(base, "x/one");
  ASSERT_TRUE(group.ok() && group->link_group);
  // Unrelated changes carry the group into the next commit unchanged.
  Put("z", "changed");
  ObjectId c1 = CommitOk();
  for (std::string p : {"x/one", "x/two", "y/three"}) {
    auto e = Committed(c1, p);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->link_group, group->link_group) << p;
  }
  // Before a copy-up every name reports the group and its link count.
  for (std::string p : {"x/one", "x/two", "y/three"}) {
    auto a = ws_->Stat(p);
    ASSERT_TRUE(a.ok()) << p;
    EXPECT_EQ(a->nlink, 3u) << p;
    EXPECT_EQ(a->base_link_group, group->link_group) << p;
    EXPECT_EQ(a->upper_ino, 0u) << p;
  }
  EXPECT_FALSE(ws_->Stat("z").value().base_link_group.has_value());
  // Writing one name of the committed group changes every name.
  auto f = ws_->Open("x/two", O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(0, "SHARED").ok());
  EXPECT_EQ(Get("x/one"), "SHARED\n");
  EXPECT_EQ(Get("y/three"), "SHARED\n");
  auto one = ws_->Stat("x/one");
  auto three = ws_->Stat("y/three");
  ASSERT_TRUE(one.ok() && three.ok());
  EXPECT_EQ(one->nlink, 3u);
  EXPECT_EQ(one->upper_ino, three->upper_ino);
  EXPECT_FALSE(one->base_link_group.has_value()) << "copied up: the upper inode is its identity";
  f->reset();
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M x/one", "M x/two", "M y/three"}));
  ObjectId c2 = CommitOk();
  std::optional<uint64_t> g;
  for (std::string p : {"x/one", "x/two", "y/three"}) {
    EXPECT_EQ(CommittedContent(c2, p), "SHARED\n") << p;
    auto e = Committed(c2, p);
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(e->link_group.has_value()) << p;
    if (!g) g = e->link_group;
    EXPECT_EQ(e->link_group, g) << p;
  }
}

TEST_F(WorkspaceTest, RenamingADirectoryKeepsTheHardLinksInIt) {
  std::string src = NewSource({{"x/one", "linked"}, {"x/plain", "p"}});
  ASSERT_EQ(::link((src + "/x/one").c_str(), (src + "/x/two").c_str()), 0);
  ASSERT_EQ(::link((src + "/x/one").c_str(), (src + "/outside").c_str()), 0);
  ImportDir(src);
  OpenWs();
  TUSK_ASSERT_OK(ws_->Rename("x", "moved", 0));
  auto one = ws_->Stat("moved/one");
  auto two = ws_->Stat("moved/two");
  auto outside = ws_->Stat("outside");
  ASSERT_TRUE(one.ok() && two.ok() && outside.ok());
  EXPECT_EQ(one->upper_ino, two->upper_ino);
  EXPECT_EQ(one->upper_ino, outside->upper_ino) << "the group is copied up whole";
  ObjectId c = CommitOk();
  auto e1 = Committed(c, "moved/one");
  auto e2 = Committed(c, "moved/two");
  auto e3 = Committed(c, "outside");
  ASSERT_TRUE(e1.ok() && e2.ok() && e3.ok());
  ASSERT_TRUE(e1->link_group.has_value());
  EXPECT_EQ(e1->link_group, e2->link_group);
  EXPECT_EQ(e1->link_group, e3->link_group);
  EXPECT_FALSE(Committed(c, "moved/plain")->link_group.has_value());
}

TEST_F(WorkspaceTest, ANewGroupNeverReusesTheNumberOfAGroupStillInTheCommit) {
  std::string src = NewSource({{"a", "first group"}, {"c", "stays"}});
  ASSERT_EQ(::link((src + "/a").c_str(), (src + "/b").c_str()), 0);
  ASSERT_EQ(::link((src + "/a").c_str(), (src + "/c2").c_str()), 0);
  ObjectId base = ImportDir(src);
  OpenWs();
  auto old_group = Committed(base, "c2");
  ASSERT_TRUE(old_group.ok() && old_group->link_group);
  // a and b replaced by a new pair of links; c2 keeps the old group.
  TUSK_ASSERT_OK(ws_->Unlink("a"));
  TUSK_ASSERT_OK(ws_->Unlink("b"));
  Put("a", "second group");
  TUSK_ASSERT_OK(ws_->Link("a", "b"));
  ObjectId c = CommitOk();
  auto a = Committed(c, "a");
  auto b = Committed(c, "b");
  auto c2 = Committed(c, "c2");
  ASSERT_TRUE(a.ok() && b.ok() && c2.ok());
  EXPECT_EQ(a->link_group, b->link_group);
  EXPECT_EQ(c2->link_group, old_group->link_group);
  EXPECT_NE(a->link_group, c2->link_group) << "different content, different groups";
  EXPECT_EQ(CommittedContent(c, "c2"), "first group");
}

// ---- directories, symlinks, special files ----

TEST_F(WorkspaceTest, MkdirAndRmdirFollowPosix) {
  TUSK_ASSERT_OK(ws_->Mkdir("e", 0700, who_));
  auto e = ws_->Stat("e");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->mode, S_IFDIR | 0700u);
  EXPECT_ERRNO(ws_->Mkdir("e", 0755, who_), EEXIST);
  EXPECT_ERRNO(ws_->Mkdir("a.txt", 0755, who_), EEXIST);
  Put("e/f", "f");
  EXPECT_ERRNO(ws_->Rmdir("e"), ENOTEMPTY);
  EXPECT_ERRNO(ws_->Rmdir("dir"), ENOTEMPTY) << "a committed non-empty directory";
  EXPECT_ERRNO(ws_->Rmdir("a.txt"), ENOTDIR);
  EXPECT_ERRNO(ws_->Rmdir("nope"), ENOENT);
  TUSK_ASSERT_OK(ws_->Unlink("e/f"));
  TUSK_ASSERT_OK(ws_->Rmdir("e"));
  EXPECT_ERRNO(StatusOf(ws_->Stat("e")), ENOENT);
  // A committed directory emptied, removed and made again is empty.
  TUSK_ASSERT_OK(ws_->Unlink("dir/sub/c.txt"));
  TUSK_ASSERT_OK(ws_->Rmdir("dir/sub"));
  TUSK_ASSERT_OK(ws_->Unlink("dir/b.txt"));
  EXPECT_TRUE(Names("dir").empty());
  TUSK_ASSERT_OK(ws_->Rmdir("dir"));
  EXPECT_EQ(Names(""), (std::set<std::string>{"a.txt", "m.bin"}));
  TUSK_ASSERT_OK(ws_->Mkdir("dir", 0755, who_));
  EXPECT_TRUE(Names("dir").empty()) << "nothing of the committed directory shows through";
  EXPECT_ERRNO(StatusOf(ws_->Stat("dir/b.txt")), ENOENT);
  ObjectId c = CommitOk();
  auto dir = Committed(c, "dir");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->size, 0u);
  EXPECT_EQ(dir->uid, 1000u);
}

TEST_F(WorkspaceTest, SymlinksAreStoredAsLinks) {
  TUSK_ASSERT_OK(ws_->Symlink("a.txt", "link", who_));
  auto target = ws_->ReadLink("link");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "a.txt");
  auto attr = ws_->Stat("link");
  ASSERT_TRUE(attr.ok());
  EXPECT_TRUE(S_ISLNK(attr->mode));
  EXPECT_EQ(attr->size, 5u);
  EXPECT_ERRNO(StatusOf(ws_->Open("link", O_RDONLY)), ELOOP);
  EXPECT_ERRNO(StatusOf(ws_->ReadLink("a.txt")), EINVAL);
  EXPECT_ERRNO(ws_->Symlink("x", "link", who_), EEXIST);
  EXPECT_ERRNO(ws_->Symlink("", "empty-link", who_), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Stat("link/x")), ENOTDIR) << "symlinks are not followed";
  ObjectId c = CommitOk();
  auto e = Committed(c, "link");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EntryKind::kSymlink);
  EXPECT_EQ(e->target, "a.txt");
  // A committed symlink reads from the base; renamed, it keeps its target.
  TUSK_ASSERT_OK(ws_->Rename("link", "dir/link2", 0));
  auto moved = ws_->ReadLink("dir/link2");
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, "a.txt");
}

TEST_F(WorkspaceTest, FifosSocketsAndDevicesAreCommittedAsSpecialEntries) {
  TUSK_ASSERT_OK(ws_->Mknod("dir/pipe", S_IFIFO | 0644, 0, who_));
  auto attr = ws_->Stat("dir/pipe");
  ASSERT_TRUE(attr.ok());
  EXPECT_TRUE(S_ISFIFO(attr->mode));
  EXPECT_EQ(attr->mode & 07777, 0644u);
  EXPECT_ERRNO(ws_->Mknod("dir/wh", S_IFCHR | 0644, 0, who_), EPERM) << "0:0 is reserved for whiteouts";
  TUSK_ASSERT_OK(ws_->Mknod("sock", S_IFSOCK | 0600, 0, who_));
  const bool root = ::geteuid() == 0;  // mknod of a device needs CAP_MKNOD
  if (root) TUSK_ASSERT_OK(ws_->Mknod("null", S_IFCHR | 0666, makedev(1, 3), who_));
  Put("other", "x");
  std::vector<std::string> want = {"A dir/pipe"};
  if (root) want.push_back("A null");
  want.push_back("A other");
  want.push_back("A sock");
  EXPECT_EQ(ChangeLines(), want);
  ObjectId c = CommitOk();
  auto pipe = Committed(c, "dir/pipe");
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(pipe->kind, EntryKind::kSpecial);
  EXPECT_EQ(pipe->mode, S_IFIFO | 0644u);
  EXPECT_EQ(pipe->uid, 1000u);
  auto sock = Committed(c, "sock");
  ASSERT_TRUE(sock.ok());
  EXPECT_EQ(sock->mode, S_IFSOCK | 0600u);
  if (root) {
    auto null = Committed(c, "null");
    ASSERT_TRUE(null.ok());
    EXPECT_EQ(null->mode, S_IFCHR | 0644u) << "umask 022";
    EXPECT_EQ(null->rdev, makedev(1, 3));
  }
  EXPECT_TRUE(ChangeLines().empty());
  // Read back from the base: type, mode and device number.
  auto back = ws_->Stat("dir/pipe");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->mode, S_IFIFO | 0644u);
  EXPECT_EQ(back->upper_ino, 0u) << "base-only after the commit";
  if (root) {
    auto null = ws_->Stat("null");
    ASSERT_TRUE(null.ok());
    EXPECT_TRUE(S_ISCHR(null->mode));
    EXPECT_EQ(null->rdev, makedev(1, 3));
  }
  // A committed special file copied up by a chmod stays what it is.
  WsSetAttr chmod;
  chmod.mode = 0600;
  TUSK_ASSERT_OK(ws_->SetAttr("dir/pipe", chmod));
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"M dir/pipe"});
  ObjectId c2 = CommitOk();
  auto changed = Committed(c2, "dir/pipe");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->mode, S_IFIFO | 0600u);
  // Replaced by a regular file: a change of type.
  TUSK_ASSERT_OK(ws_->Unlink("dir/pipe"));
  Put("dir/pipe", "now a file");
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"M dir/pipe"});
}

TEST_F(WorkspaceTest, ACommittedCharacterDevice00CannotBeCopiedUp) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod of a device needs root";
  std::string src = NewSource({{"f", "x"}});
  ASSERT_EQ(::mknod((src + "/zero-zero").c_str(), S_IFCHR | 0644, makedev(0, 0)), 0);
  ImportDir(src);
  OpenWs();
  auto attr = ws_->Stat("zero-zero");
  ASSERT_TRUE(attr.ok()) << "shown: it is a real entry of the commit, not a whiteout";
  EXPECT_TRUE(S_ISCHR(attr->mode));
  WsSetAttr chmod;
  chmod.mode = 0600;
  EXPECT_ERRNO(ws_->SetAttr("zero-zero", chmod), EPERM) << "in upper it would read as a whiteout";
  TUSK_ASSERT_OK(ws_->Unlink("zero-zero"));
  EXPECT_ERRNO(StatusOf(ws_->Stat("zero-zero")), ENOENT);
}

// ---- metadata ----

TEST_F(WorkspaceTest, ChmodChownAndUtimensPersistAndAreCommitted) {
  WsSetAttr change;
  change.mode = 04751;
  change.uid = 1234;
  change.gid = 5678;
  change.mtime = WsTime{1600000000, 123456789};
  change.atime = WsTime{1500000000, 0};
  TUSK_ASSERT_OK(ws_->SetAttr("a.txt", change));
  WsSetAttr dir_change;
  dir_change.mode = 0700;
  dir_change.mtime = WsTime{1400000000, 5};
  TUSK_ASSERT_OK(ws_->SetAttr("dir/sub", dir_change));
  WsSetAttr now;
  now.mtime = WsTime{-1, 0};
  TUSK_ASSERT_OK(ws_->SetAttr("m.bin", now));
  auto check = [&](bool with_atime) {
    auto a = ws_->Stat("a.txt");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->mode, S_IFREG | 04751u);
    EXPECT_EQ(a->uid, 1234u);
    EXPECT_EQ(a->gid, 5678u);
    EXPECT_EQ(a->mtime, (WsTime{1600000000, 123456789}));
    if (with_atime) {
      EXPECT_EQ(a->atime, (WsTime{1500000000, 0}));
    }
    auto m = ws_->Stat("m.bin");
    ASSERT_TRUE(m.ok());
    EXPECT_GT(m->mtime.sec, time(nullptr) - 100);
  };
  check(true);
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  OpenWs();  // persisted in upper
  check(true);
  ObjectId c = CommitOk();
  auto e = Committed(c, "a.txt");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->mode, S_IFREG | 04751u);
  EXPECT_EQ(e->uid, 1234u);
  EXPECT_EQ(e->gid, 5678u);
  EXPECT_EQ(e->mtime_sec, 1600000000);
  EXPECT_EQ(e->mtime_nsec, 123456789u);
  auto d = Committed(c, "dir/sub");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->mode, S_IFDIR | 0700u);
  EXPECT_EQ(d->mtime_sec, 1400000000);
  EXPECT_EQ(d->mtime_nsec, 5u);
  check(false);  // the same after the commit, read from the new base (atime is not committed)
  EXPECT_ERRNO(ws_->SetAttr("nope", change), ENOENT);
  WsSetAttr size;
  size.size = 1;
  EXPECT_ERRNO(ws_->SetAttr("dir", size), EISDIR);
}

TEST_F(WorkspaceTest, ASetgidDirectoryPassesItsGroupOn) {
  TUSK_ASSERT_OK(ws_->Mkdir("g", 02775, who_));
  WsSetAttr group;
  group.gid = 4321;
  TUSK_ASSERT_OK(ws_->SetAttr("g", group));
  WsCaller other{2000, 2000, 002};
  auto f = ws_->Create("g/file", 0666, true, other);
  ASSERT_TRUE(f.ok());
  TUSK_ASSERT_OK(ws_->Mkdir("g/sub", 0777, other));
  TUSK_ASSERT_OK(ws_->Symlink("file", "g/link", other));
  auto file = ws_->Stat("g/file");
  auto sub = ws_->Stat("g/sub");
  auto link = ws_->Stat("g/link");
  ASSERT_TRUE(file.ok() && sub.ok() && link.ok());
  EXPECT_EQ(file->uid, 2000u);
  EXPECT_EQ(file->gid, 4321u);
  EXPECT_EQ(file->mode, S_IFREG | 0664u) << "umask 002";
  EXPECT_EQ(sub->gid, 4321u);
  EXPECT_EQ(sub->mode, S_IFDIR | 02775u) << "subdirectories inherit S_ISGID";
  EXPECT_EQ(link->gid, 4321u);
  // Without setgid, the caller's group.
  auto plain = ws_->Create("dir/plain", 0644, true, other);
  ASSERT_TRUE(plain.ok());
  auto p = ws_->Stat("dir/plain");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->gid, 2000u);
  ObjectId c = CommitOk();
  auto e = Committed(c, "g/sub");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->gid, 4321u);
  EXPECT_EQ(e->mode, S_IFDIR | 02775u);
}

TEST_F(WorkspaceTest, XattrsLiveInTheWorkspaceAndTheReservedOnesStayHidden) {
  TUSK_ASSERT_OK(ws_->SetXattr("a.txt", "user.color", "blue", 0));
  auto v = ws_->GetXattr("a.txt", "user.color");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "blue");
  auto names = ws_->ListXattr("a.txt");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"user.color"}) << "user.tusk.meta is not listed";
  EXPECT_ERRNO(ws_->SetXattr("a.txt", "user.tusk.meta", "x", 0), EPERM);
  EXPECT_ERRNO(StatusOf(ws_->GetXattr("a.txt", "user.tusk.meta")), ENODATA);
  EXPECT_ERRNO(StatusOf(ws_->GetXattr("dir/b.txt", "user.color")), ENODATA);
  TUSK_ASSERT_OK(ws_->RemoveXattr("a.txt", "user.color"));
  EXPECT_ERRNO(StatusOf(ws_->GetXattr("a.txt", "user.color")), ENODATA);
  EXPECT_TRUE(ChangeLines().empty()) << "set and removed again: no change";
}

TEST_F(WorkspaceTest, UserXattrsAreCommittedAndReadBackFromTheBase) {
  TUSK_ASSERT_OK(ws_->SetXattr("a.txt", "user.color", "blue", 0));
  TUSK_ASSERT_OK(ws_->SetXattr("a.txt", "user.binary", std::string("\0\1", 2), 0));
  TUSK_ASSERT_OK(ws_->SetXattr("dir", "user.kind", "folder", 0));
  Put("new.txt", "n");
  TUSK_ASSERT_OK(ws_->SetXattr("new.txt", "user.fresh", "", 0));
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M a.txt", "A new.txt"}));
  ObjectId c = CommitOk();
  auto a = Committed(c, "a.txt");
  auto dir = Committed(c, "dir");
  auto fresh = Committed(c, "new.txt");
  ASSERT_TRUE(a.ok() && dir.ok() && fresh.ok());
  using Xattrs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(a->xattrs, (Xattrs{{"user.binary", std::string("\0\1", 2)}, {"user.color", "blue"}}))
      << "sorted, and the workspace's own user.tusk.* marks are not recorded";
  EXPECT_EQ(dir->xattrs, (Xattrs{{"user.kind", "folder"}}));
  EXPECT_EQ(fresh->xattrs, (Xattrs{{"user.fresh", ""}}));
  // After the commit the entries are base-only; their xattrs come from the tree.
  ASSERT_TRUE(UpperEntries().empty());
  auto v = ws_->GetXattr("a.txt", "user.color");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "blue");
  auto names = ws_->ListXattr("a.txt");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"user.binary", "user.color"}));
  EXPECT_ERRNO(StatusOf(ws_->GetXattr("a.txt", "user.other")), ENODATA);
  EXPECT_ERRNO(StatusOf(ws_->GetXattr("a.txt", "user.tusk.meta")), ENODATA);
  auto dv = ws_->GetXattr("dir", "user.kind");
  ASSERT_TRUE(dv.ok());
  EXPECT_EQ(*dv, "folder");
  // A copy-up (here a chmod) takes the xattrs along.
  WsSetAttr chmod;
  chmod.mode = 0600;
  TUSK_ASSERT_OK(ws_->SetAttr("a.txt", chmod));
  auto copied = ws_->GetXattr("a.txt", "user.color");
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(*copied, "blue");
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"M a.txt"});
  ObjectId c2 = CommitOk();
  EXPECT_EQ(Committed(c2, "a.txt")->xattrs, a->xattrs);
  // Removing one from a base-only entry is a change; the others stay.
  EXPECT_ERRNO(ws_->RemoveXattr("a.txt", "user.nope"), ENODATA);
  TUSK_ASSERT_OK(ws_->RemoveXattr("a.txt", "user.binary"));
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"M a.txt"});
  ObjectId c3 = CommitOk();
  EXPECT_EQ(Committed(c3, "a.txt")->xattrs, (Xattrs{{"user.color", "blue"}}));
  EXPECT_EQ(CommittedContent(c3, "a.txt"), "alpha\n");
}

// ---- Changes and Commit ----

TEST_F(WorkspaceTest, ChangesListAddedModifiedAndDeletedFiles) {
  EXPECT_TRUE(ChangeLines().empty());
  Put("new.txt", "new\n");
  Put("a.txt", "changed\n");
  TUSK_ASSERT_OK(ws_->Unlink("dir/b.txt"));
  TUSK_ASSERT_OK(ws_->Mkdir("d2", 0755, who_));
  TUSK_ASSERT_OK(ws_->Rename("dir/sub", "d2/sub", 0));
  WsSetAttr chmod;
  chmod.mode = 0600;
  TUSK_ASSERT_OK(ws_->SetAttr("m.bin", chmod));
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M a.txt", "A d2/sub/c.txt", "D dir/b.txt", "D dir/sub/c.txt",
                                                     "M m.bin", "A new.txt"}));
  auto r = Commit();
  ASSERT_TRUE(r.ok() && r->commit);
  EXPECT_EQ(r->files_changed, 6u);
  EXPECT_EQ(r->parent, first_);
  auto commit = repo_->ReadCommit(*r->commit);
  ASSERT_TRUE(commit.ok());
  EXPECT_EQ(commit->parents, std::vector<ObjectId>{first_});
  EXPECT_EQ(commit->file_count, 4u);
  EXPECT_EQ(commit->total_bytes, 8u + 8u + 4u + m_bin_.size());
  EXPECT_EQ(commit->message, "ws");
  EXPECT_EQ(commit->author, "test");
  EXPECT_TRUE(ChangeLines().empty());
}

TEST_F(WorkspaceTest, WritingTheSameBytesBackIsNotAChange) {
  auto before = ws_->Stat("m.bin");
  ASSERT_TRUE(before.ok());
  auto f = ws_->Open("m.bin", O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(300000, m_bin_.substr(300000, 5000)).ok());
  WsSetAttr times;
  times.mtime = before->mtime;
  TUSK_ASSERT_OK(ws_->SetAttr("m.bin", times));
  EXPECT_TRUE(ChangeLines().empty());
  // A new file with the committed content and metadata replacing it.
  auto a = ws_->Stat("a.txt");
  ASSERT_TRUE(a.ok());
  TUSK_ASSERT_OK(ws_->Unlink("a.txt"));
  WsCaller owner{a->uid, a->gid, 0};
  auto n = ws_->Create("a.txt", a->mode & 07777, true, owner);
  ASSERT_TRUE(n.ok());
  ASSERT_TRUE((*n)->Write(0, "alpha\n").ok());
  WsSetAttr same;
  same.mtime = a->mtime;
  TUSK_ASSERT_OK(ws_->SetAttr("a.txt", same));
  EXPECT_TRUE(ChangeLines().empty());
  auto r = Commit();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->commit) << "the same tree is no commit";
  EXPECT_EQ(r->new_stored_bytes, 0u);
}

TEST_F(WorkspaceTest, CommittingWithNothingStagedMakesNoCommit) {
  auto r = Commit();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->commit);
  EXPECT_EQ(r->parent, first_);
  EXPECT_EQ(r->files_changed, 0u);
  auto head = repo_->GetBranch("d", "main");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, first_);
}

TEST_F(WorkspaceTest, TheCommitIsExactlyTheMergedView) {
  TUSK_ASSERT_OK(ws_->Mkdir("x", 0750, who_));
  TUSK_ASSERT_OK(ws_->Mkdir("x/y", 0750, who_));
  Put("x/y/z.txt", "deep\n");
  Put("dir/b.txt", "B\n");
  TUSK_ASSERT_OK(ws_->Symlink("../a.txt", "dir/sub/l", who_));
  TUSK_ASSERT_OK(ws_->Unlink("dir/sub/c.txt"));
  ObjectId c = CommitOk();
  EXPECT_EQ(ws_->base(), c);
  std::string out = tmp_.Sub("export");
  auto commit = repo_->ReadCommit(c);
  ASSERT_TRUE(commit.ok());
  auto stats = ExportTree(*repo_, commit->root, out, nullptr);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(out + "/a.txt"), "alpha\n");
  EXPECT_EQ(ReadFile(out + "/dir/b.txt"), "B\n");
  EXPECT_EQ(ReadFile(out + "/m.bin"), m_bin_);
  EXPECT_EQ(ReadFile(out + "/x/y/z.txt"), "deep\n");
  EXPECT_EQ(fs::read_symlink(out + "/dir/sub/l").string(), "../a.txt");
  EXPECT_FALSE(fs::exists(out + "/dir/sub/c.txt"));
  EXPECT_EQ(stats->files, 4u);
  EXPECT_EQ(commit->file_count, 4u);
}

TEST_F(WorkspaceTest, ChangingOneMiBOfA64MiBFileStoresAboutThatMuch) {
  const std::string big = RandomBytes(64 << 20, 11);
  ObjectId second = Import({{"big.bin", big}});
  OpenWs();
  ASSERT_EQ(ws_->base(), second);
  const std::string patch = RandomBytes(1 << 20, 12);
  const uint64_t at = 32 << 20;
  auto f = ws_->Open("big.bin", O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(at, patch).ok());
  std::string want = big;
  want.replace(at, patch.size(), patch);
  auto middle = (*f)->Read(at - 1000, patch.size() + 2000);
  ASSERT_TRUE(middle.ok());
  EXPECT_TRUE(*middle == want.substr(at - 1000, patch.size() + 2000));
  // Only the touched chunks are in the upper file.
  struct stat st;
  ASSERT_EQ(::stat((UpperDir() + "/big.bin").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), big.size());
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{4} << 20);
  auto attr = ws_->Stat("big.bin");
  ASSERT_TRUE(attr.ok());
  EXPECT_NEAR(static_cast<double>(attr->blocks) * 512, static_cast<double>(big.size()), 4 << 20)
      << "blocks count the chunks still in the store";
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"M big.bin"});
  auto r = Commit();
  ASSERT_TRUE(r.ok() && r->commit) << r.status().ToString();
  EXPECT_GE(r->new_stored_bytes, patch.size());
  EXPECT_LT(r->new_stored_bytes, uint64_t{3} << 20) << "about the changed MiB plus the chunks it touches";
  EXPECT_TRUE(CommittedContent(*r->commit, "big.bin") == want);
}

TEST_F(WorkspaceTest, AfterACommitUpperHoldsOnlyOpenFilesAndTheyKeepWorking) {
  auto kept = ws_->Open("dir/sub/c.txt", O_RDWR);
  auto kept_new = ws_->Create("dir/new.txt", 0644, true, who_);
  auto kept_big = ws_->Open("m.bin", O_RDWR);
  ASSERT_TRUE(kept.ok() && kept_new.ok() && kept_big.ok());
  ASSERT_TRUE((*kept)->Write(0, "C").ok());
  ASSERT_TRUE((*kept_new)->Write(0, "fresh").ok());
  ASSERT_TRUE((*kept_big)->Write(500000, "XYZ").ok());
  Put("other.txt", "other");
  TUSK_ASSERT_OK(ws_->Unlink("a.txt"));
  TUSK_ASSERT_OK(ws_->Mkdir("made", 0755, who_));
  ObjectId c1 = CommitOk("first");
  EXPECT_EQ(UpperEntries(), (std::set<std::string>{"dir", "dir/sub", "dir/sub/c.txt", "dir/new.txt", "m.bin"}));
  EXPECT_TRUE(ChangeLines().empty()) << "the workspace is exactly the commit";
  EXPECT_EQ(Names(""), (std::set<std::string>{"dir", "made", "m.bin", "other.txt"}));
  EXPECT_EQ(Names("dir"), (std::set<std::string>{"b.txt", "new.txt", "sub"}));
  std::string big_want = m_bin_;
  big_want.replace(500000, 3, "XYZ");
  EXPECT_TRUE(CommittedContent(c1, "m.bin") == big_want);
  // The open files go on; their writes are the next commit's changes.
  ASSERT_TRUE((*kept)->Write(1, "H").ok());
  ASSERT_TRUE((*kept_big)->Write(10, "abc").ok());
  ASSERT_TRUE((*kept_big)->Write(900000, "def").ok());
  EXPECT_EQ(ReadAll(**kept), "CHarlie\n");
  EXPECT_EQ(ReadAll(**kept_new), "fresh");
  big_want.replace(10, 3, "abc");
  big_want.replace(900000, 3, "def");
  EXPECT_TRUE(ReadAll(**kept_big) == big_want);
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M dir/sub/c.txt", "M m.bin"}));
  kept_new->reset();
  auto r = Commit("second");
  ASSERT_TRUE(r.ok() && r->commit);
  EXPECT_EQ(r->parent, c1);
  EXPECT_EQ(CommittedContent(*r->commit, "dir/sub/c.txt"), "CHarlie\n");
  EXPECT_TRUE(CommittedContent(*r->commit, "m.bin") == big_want);
  EXPECT_LT(r->new_stored_bytes, 2u * m_bin_.size());
  kept->reset();
  kept_big->reset();
  EXPECT_TRUE(Commit().ok());
  EXPECT_TRUE(ChangeLines().empty());
  OpenWs();
  EXPECT_TRUE(UpperEntries().size() <= 5u);
  EXPECT_TRUE(Get("m.bin") == big_want);
}

TEST_F(WorkspaceTest, ACommitFromOutsideWhileChangesAreStagedIsRefused) {
  Put("a.txt", "mine\n");
  EXPECT_FALSE(*ws_->Diverged());
  ObjectId theirs = Import({{"z.txt", "theirs\n"}});
  auto diverged = ws_->Diverged();
  ASSERT_TRUE(diverged.ok());
  EXPECT_TRUE(*diverged);
  auto r = Commit();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kConflict);
  EXPECT_NE(r.status().message().find("nothing was committed"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("moved"), std::string::npos) << r.status().ToString();
  auto head = repo_->GetBranch("d", "main");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, theirs);
  EXPECT_EQ(ws_->base(), first_);
  EXPECT_EQ(Get("a.txt"), "mine\n") << "nothing lost";
  EXPECT_EQ(Get("dir/b.txt"), "bravo\n");
  // Reset drops the changes and follows the branch.
  TUSK_ASSERT_OK(ws_->Reset());
  EXPECT_EQ(ws_->base(), theirs);
  EXPECT_FALSE(*ws_->Diverged());
  EXPECT_EQ(Names(""), (std::set<std::string>{"z.txt"}));
}

TEST_F(WorkspaceTest, TheBaseFollowsTheBranchWhileNothingIsStaged) {
  ObjectId theirs = Import({{"z.txt", "theirs\n"}});
  auto diverged = ws_->Diverged();
  ASSERT_TRUE(diverged.ok());
  EXPECT_FALSE(*diverged);
  EXPECT_EQ(ws_->base(), theirs);
  EXPECT_EQ(Get("z.txt"), "theirs\n");
}

TEST_F(WorkspaceTest, ResetDropsStagedChangesAndDetachesOpenFiles) {
  auto open = ws_->Open("a.txt", O_RDWR);
  ASSERT_TRUE(open.ok());
  ASSERT_TRUE((*open)->Write(0, "A").ok());
  Put("new.txt", "new");
  TUSK_ASSERT_OK(ws_->Rename("dir", "moved", 0));
  TUSK_ASSERT_OK(ws_->Reset());
  EXPECT_TRUE(ChangeLines().empty());
  EXPECT_TRUE(UpperEntries().empty());
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  EXPECT_EQ(Get("dir/b.txt"), "bravo\n");
  EXPECT_ERRNO(StatusOf(ws_->Stat("new.txt")), ENOENT);
  EXPECT_EQ(ReadAll(**open), "Alpha\n") << "the open file keeps its data";
  ASSERT_TRUE((*open)->Write(1, "L").ok());
  EXPECT_EQ(Get("a.txt"), "alpha\n") << "but is no longer part of the workspace";
  auto r = Commit();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->commit);
}

TEST_F(WorkspaceTest, ReadsAndWritesOfOpenFilesRunAlongsideCommits) {
  auto a = ws_->Open("m.bin", O_RDWR);
  auto b = ws_->Create("new.bin", 0644, true, who_);
  ASSERT_TRUE(a.ok() && b.ok());
  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  std::string want = m_bin_;
  for (int i = 0; i < 200; i++) want.replace(static_cast<size_t>(i) * 4096, 4096, std::string(4096, 'a' + i % 26));
  std::thread writer([&] {
    for (int i = 0; i < 200; i++) {
      if (!(*a)->Write(static_cast<uint64_t>(i) * 4096, std::string(4096, 'a' + i % 26)).ok()) failures++;
      if (!(*b)->Write(static_cast<uint64_t>(i) * 100, std::string(100, 'b')).ok()) failures++;
    }
  });
  std::thread reader([&] {
    while (!stop) {
      auto data = (*a)->Read(0, 1 << 20);
      if (!data.ok() || data->size() != m_bin_.size()) failures++;
      if (!ws_->Stat("m.bin").ok() || !ws_->List("dir").ok()) failures++;
    }
  });
  for (int i = 0; i < 5; i++) {
    auto r = Commit();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  writer.join();
  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  auto r = Commit();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto head = repo_->GetBranch("d", "main");
  ASSERT_TRUE(head.ok() && *head);
  EXPECT_TRUE(CommittedContent(**head, "m.bin") == want);
  EXPECT_EQ(CommittedContent(**head, "new.bin"), std::string(20000, 'b'));
  EXPECT_TRUE(ReadAll(**a) == want);
}

TEST_F(WorkspaceTest, TheUpperDirectoryUsesTheDocumentedLayout) {
  EXPECT_EQ(ReadFile(WsDir() + "/base"), first_.Hex() + "\n");
  EXPECT_TRUE(fs::exists(WsDir() + "/lock"));
  EXPECT_FALSE(fs::exists(WsDir() + "/next"));
  // A deleted committed file: a whiteout (character device 0:0).
  TUSK_ASSERT_OK(ws_->Unlink("a.txt"));
  struct stat st;
  ASSERT_EQ(::lstat((UpperDir() + "/a.txt").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  // A committed directory removed and made again: opaque.
  TUSK_ASSERT_OK(ws_->Unlink("dir/sub/c.txt"));
  // Its parent was copied up with its committed metadata (checked before
  // rmdir and mkdir in it change its mtime, as POSIX says), and is not opaque.
  char value[8] = {};
  auto dir = Committed(first_, "dir");
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::lstat((UpperDir() + "/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, dir->mode);
  EXPECT_EQ(st.st_mtim.tv_sec, dir->mtime_sec) << "copy-up keeps times";
  EXPECT_LT(::lgetxattr((UpperDir() + "/dir").c_str(), "user.tusk.opaque", value, sizeof value), 0);
  TUSK_ASSERT_OK(ws_->Rmdir("dir/sub"));
  TUSK_ASSERT_OK(ws_->Mkdir("dir/sub", 0755, who_));
  EXPECT_EQ(::lgetxattr((UpperDir() + "/dir/sub").c_str(), "user.tusk.opaque", value, sizeof value), 1);
  EXPECT_EQ(value[0], '1');
  EXPECT_LT(::lgetxattr((UpperDir() + "/dir").c_str(), "user.tusk.opaque", value, sizeof value), 0);
  // A written committed file: a sparse metacopy naming its sidecar.
  auto f = ws_->Open("m.bin", O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(10, "x").ok());
  char id[64] = {};
  ssize_t n = ::lgetxattr((UpperDir() + "/m.bin").c_str(), "user.tusk.meta", id, sizeof id - 1);
  ASSERT_GT(n, 0);
  std::string sidecar = ReadFile(WsDir() + "/meta/" + std::string(id, static_cast<size_t>(n)));
  auto m = Committed(first_, "m.bin");
  ASSERT_TRUE(m.ok());
  const size_t chunks = m->chunks.size();
  ASSERT_EQ(sidecar.size(), 16 + 41 * chunks);
  EXPECT_EQ(sidecar.substr(0, 8), "TUSKWSM1");
  EXPECT_EQ(sidecar.substr(16, 32), std::string(m->chunks[0].id.view()));
  EXPECT_EQ(sidecar[16 + 40 * chunks], 1) << "the written chunk is copied up";
  for (size_t i = 1; i < chunks; i++) EXPECT_EQ(sidecar[16 + 40 * chunks + i], 0) << i;
  // A new file has no sidecar.
  Put("plain", "p");
  EXPECT_LT(::lgetxattr((UpperDir() + "/plain").c_str(), "user.tusk.meta", id, sizeof id), 0);
}

// ---- persistence, crash recovery, locking ----

TEST_F(WorkspaceTest, AWorkspaceOpenedAgainSeesEverythingStaged) {
  Put("new.txt", "new\n");
  {
    auto f = ws_->Open("m.bin", O_RDWR);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(700000, "patch").ok());
  }
  TUSK_ASSERT_OK(ws_->Unlink("a.txt"));
  TUSK_ASSERT_OK(ws_->Rename("dir", "moved", 0));
  auto before = ChangeLines();
  ws_.reset();  // as if the process stopped
  OpenWs();
  EXPECT_EQ(ChangeLines(), before);
  EXPECT_EQ(Get("new.txt"), "new\n");
  std::string want = m_bin_;
  want.replace(700000, 5, "patch");
  EXPECT_TRUE(Get("m.bin") == want);
  EXPECT_EQ(Get("moved/sub/c.txt"), "charlie\n");
  EXPECT_ERRNO(StatusOf(ws_->Stat("a.txt")), ENOENT);
  ObjectId c = CommitOk();
  EXPECT_TRUE(CommittedContent(c, "m.bin") == want);
}

TEST_F(WorkspaceTest, OpenFinishesACommitThatReachedTheBranchBeforeACrash) {
  Put("b2.txt", "staged\n");
  ws_.reset();
  // The commit landed (here made by an import of the same tree), but the
  // process died before its cleanup: `next` still names it.
  ObjectId landed = Import({{"a.txt", "alpha\n"},
                            {"dir/b.txt", "bravo\n"},
                            {"dir/sub/c.txt", "charlie\n"},
                            {"m.bin", m_bin_},
                            {"b2.txt", "staged\n"}});
  WriteFile(WsDir() + "/next", landed.Hex() + "\n");
  OpenWs();
  EXPECT_EQ(ws_->base(), landed);
  EXPECT_FALSE(fs::exists(WsDir() + "/next"));
  EXPECT_TRUE(UpperEntries().empty());
  EXPECT_EQ(ReadFile(WsDir() + "/base"), landed.Hex() + "\n");
  EXPECT_EQ(Get("b2.txt"), "staged\n");
  EXPECT_TRUE(ChangeLines().empty());
}

TEST_F(WorkspaceTest, OpenDropsANextFileOfACommitThatNeverLanded) {
  Put("b2.txt", "staged\n");
  ws_.reset();
  WriteFile(WsDir() + "/next", std::string(64, 'a') + "\n");
  OpenWs();
  EXPECT_FALSE(fs::exists(WsDir() + "/next"));
  EXPECT_EQ(ws_->base(), first_);
  EXPECT_EQ(Get("b2.txt"), "staged\n");
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"A b2.txt"});
}

// Durability itself is specified by the power-loss test
// (workspace_power_loss_test.cc); these are the rules a reader can see.

TEST_F(WorkspaceTest, SyncDirAcceptsEveryMergedDirectoryAndRefusesWhatIsNotOne) {
  TUSK_EXPECT_OK(ws_->SyncDir(""));
  TUSK_EXPECT_OK(ws_->SyncDir("dir/sub"));  // committed: nothing staged, nothing to sync
  TUSK_ASSERT_OK(ws_->Mkdir("made", 0755, who_));
  Put("made/f", "x");
  TUSK_EXPECT_OK(ws_->SyncDir("made"));
  EXPECT_ERRNO(ws_->SyncDir("missing"), ENOENT);
  EXPECT_ERRNO(ws_->SyncDir("a.txt"), ENOTDIR);
  EXPECT_ERRNO(ws_->SyncDir("a.txt/x"), ENOTDIR);
  EXPECT_ERRNO(ws_->SyncDir("../x"), EINVAL);
}

// The sidecar files in meta/.
std::set<std::string> SidecarFiles(const std::string& ws_dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(ws_dir + "/meta")) out.insert(e.path().filename().string());
  return out;
}

TEST_F(WorkspaceTest, AMetacopysSidecarOutlivesItsLastNameUntilTheNextSweep) {
  // A sidecar goes only after the removal of every name that referred to it
  // is durable, or a power loss could bring the name back without it.
  {
    auto f = ws_->Open("m.bin", O_RDWR);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(10, "patch").ok());
  }
  std::set<std::string> sidecars = SidecarFiles(WsDir());
  ASSERT_EQ(sidecars.size(), 1u);
  TUSK_ASSERT_OK(ws_->Unlink("m.bin"));
  EXPECT_EQ(SidecarFiles(WsDir()), sidecars) << "kept as garbage for now";
  auto problems = CheckWorkspaces(repo_.get());
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty()) << "fsck ignores a sidecar no upper file names";
  // Reopening sweeps it (after syncing upper/), as commit and reset do.
  ws_.reset();
  OpenWs();
  EXPECT_TRUE(SidecarFiles(WsDir()).empty());
  EXPECT_ERRNO(StatusOf(ws_->Stat("m.bin")), ENOENT);
}

TEST_F(WorkspaceTest, CommitAndResetSweepSidecarsThatNoFileNames) {
  for (const char* op : {"commit", "reset"}) {
    {
      auto f = ws_->Open("m.bin", O_RDWR);
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE((*f)->Write(10, op).ok());
    }
    Put("replaced", "r");
    TUSK_ASSERT_OK(ws_->Rename("replaced", "m.bin", 0));  // the metacopy's last name goes
    ASSERT_EQ(SidecarFiles(WsDir()).size(), 1u) << op;
    if (std::string(op) == "commit")
      CommitOk();
    else
      TUSK_ASSERT_OK(ws_->Reset());
    EXPECT_TRUE(SidecarFiles(WsDir()).empty()) << op;
    EXPECT_FALSE(fs::exists(WsDir() + "/next")) << op;
  }
}

TEST_F(WorkspaceTest, AnInterruptedCommitsNextFileIsNotAFsckProblem) {
  // What a crash before the commit landed leaves: `next` naming a commit the
  // store never got. The next Open removes it; until then fsck says nothing.
  Put("b2.txt", "staged\n");
  ws_.reset();
  WriteFile(WsDir() + "/next", std::string(64, 'a') + "\n");
  auto problems = CheckWorkspaces(repo_.get());
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());
  WriteFile(WsDir() + "/next", "not a commit id\n");
  problems = CheckWorkspaces(repo_.get());
  ASSERT_TRUE(problems.ok());
  EXPECT_EQ(problems->size(), 1u) << "an unreadable next file is damage";
  fs::remove(WsDir() + "/next");
  OpenWs();
}

TEST_F(WorkspaceTest, OnlyOneOwnerAtATime) {
  auto held = Workspace::IsHeld(repo_.get(), "d", "main");
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(*held);
  auto second = Workspace::Open(repo_.get(), "d", "main");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kAlreadyExists);
  ws_.reset();
  held = Workspace::IsHeld(repo_.get(), "d", "main");
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(*held);
  held = Workspace::IsHeld(repo_.get(), "d", "never-opened");
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(*held);
  OpenWs();
  EXPECT_FALSE(Workspace::Open(repo_.get(), "d", "nope").ok()) << "the branch must exist";
  EXPECT_FALSE(Workspace::Open(repo_.get(), "nope", "main").ok());
}

TEST_F(WorkspaceTest, ABranchWithNoCommitsGetsItsFirstCommit) {
  TUSK_ASSERT_OK(repo_->CreateBranch("d", "empty", std::nullopt));
  auto opened = Workspace::Open(repo_.get(), "d", "empty");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& ws = **opened;
  EXPECT_FALSE(ws.base());
  auto list = ws.List("");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  auto f = ws.Create("first.txt", 0644, true, who_);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(0, "1").ok());
  auto r = ws.Commit(WsCommitOptions{"first", "me", {}, {}});
  ASSERT_TRUE(r.ok() && r->commit) << r.status().ToString();
  EXPECT_FALSE(r->parent);
  EXPECT_EQ(ws.base(), r->commit);
  EXPECT_EQ(CommittedContent(*r->commit, "first.txt"), "1");
}

// ---- bad input ----

TEST_F(WorkspaceTest, BadPathsAndMissingEntriesGiveTheirErrno) {
  for (const char* bad : {"..", "a/../b", "./a", "/a.txt", "a.txt/", "dir//b.txt"}) {
    EXPECT_ERRNO(StatusOf(ws_->Stat(bad)), EINVAL) << bad;
    EXPECT_ERRNO(StatusOf(ws_->Create(bad, 0644, true, who_)), EINVAL) << bad;
    EXPECT_ERRNO(ws_->Mkdir(bad, 0755, who_), EINVAL) << bad;
    EXPECT_ERRNO(ws_->Rename("a.txt", bad, 0), EINVAL) << bad;
  }
  EXPECT_ERRNO(StatusOf(ws_->Stat(std::string("a\0b", 3))), EINVAL);
  EXPECT_ERRNO(StatusOf(ws_->Stat(std::string(256, 'x'))), ENAMETOOLONG);
  EXPECT_ERRNO(StatusOf(ws_->Stat("missing")), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Stat("missing/x")), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Stat("a.txt/x")), ENOTDIR);
  EXPECT_ERRNO(StatusOf(ws_->List("a.txt")), ENOTDIR);
  EXPECT_ERRNO(StatusOf(ws_->Open("missing", O_RDONLY)), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Create("missing/f", 0644, true, who_)), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Create("a.txt/f", 0644, true, who_)), ENOTDIR);
  EXPECT_ERRNO(ws_->Unlink("missing"), ENOENT);
  EXPECT_ERRNO(ws_->Rename("missing", "x", 0), ENOENT);
  EXPECT_ERRNO(ws_->Rename("a.txt", "missing/x", 0), ENOENT);
  EXPECT_ERRNO(ws_->SetAttr("missing", WsSetAttr{}), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->ReadLink("missing")), ENOENT);
  EXPECT_ERRNO(StatusOf(ws_->Open("dir", O_RDWR)), EISDIR);
  EXPECT_ERRNO(StatusOf(ws_->Open("", O_RDONLY)), EISDIR);
  EXPECT_ERRNO(StatusOf(ws_->Create("dir", 0644, false, who_)), EISDIR);
  EXPECT_ERRNO(ws_->Unlink("dir"), EISDIR);
  EXPECT_ERRNO(ws_->Rmdir(""), EBUSY);
  EXPECT_ERRNO(ws_->Mkdir("", 0755, who_), EEXIST);
  EXPECT_ERRNO(ws_->Rename("", "x", 0), EBUSY);
  EXPECT_ERRNO(ws_->Rename("a.txt", "b", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  EXPECT_ERRNO(ws_->Rename("a.txt", "missing", RENAME_EXCHANGE), ENOENT);
  EXPECT_ERRNO(ws_->Mknod("dev0", S_IFDIR | 0755, 0, who_), EPERM);
  EXPECT_TRUE(UpperEntries().empty()) << "failed operations stage nothing";
  EXPECT_TRUE(ChangeLines().empty());
}

// ---- A staged merge (tusk merge --stage) ---------------------------------

class StagedMergeTest : public WorkspaceTest {
 protected:
  // A merge of d@side (imported from `theirs`) whose staged tree is `staged`
  // (the tree store/merge would have made), with `conflicts` left.
  WsMerge MakeMerge(const FileMap& theirs, const FileMap& staged, std::vector<std::string> conflicts = {}) {
    TUSK_EXPECT_OK(repo_->CreateBranch("d", "side", first_));
    ImportOptions options;
    options.message = "theirs";
    auto side = ImportDirectory(*repo_, NewSource(theirs), "d", "side", options);
    EXPECT_TRUE(side.ok() && side->commit);
    // The staged tree: imported to a scratch branch, its root reused.
    TUSK_EXPECT_OK(repo_->CreateBranch("d", "scratch", first_));
    // What the staged tree keeps of the base keeps its times too (src0 is
    // the base's source), as a merge keeps unchanged entries whole.
    std::string src = NewSource(staged);
    std::string base_src = tmp_.Sub("src0");
    std::vector<std::string> dirs;
    for (auto it = fs::recursive_directory_iterator(src); it != fs::recursive_directory_iterator(); ++it) {
      std::string rel = fs::relative(it->path(), src).string();
      if (it->is_directory()) dirs.push_back(rel);
      else if (fs::exists(base_src + "/" + rel) && ReadFile(base_src + "/" + rel) == ReadFile(it->path().string()))
        fs::last_write_time(it->path(), fs::last_write_time(base_src + "/" + rel));
    }
    for (const auto& rel : dirs)
      if (fs::is_directory(base_src + "/" + rel))
        fs::last_write_time(src + "/" + rel, fs::last_write_time(base_src + "/" + rel));
    auto tree = ImportDirectory(*repo_, src, "d", "scratch", options);
    EXPECT_TRUE(tree.ok());
    // No commit: the same tree as the base.
    auto scratch = repo_->ReadCommit(tree.ok() && tree->commit ? *tree->commit : first_);
    EXPECT_TRUE(scratch.ok());
    WsMerge m;
    m.ours = first_;
    m.theirs = *side->commit;
    m.staged = scratch->root;
    m.source = "d@side";
    m.message = "merge d@side into d@main";
    for (auto& path : conflicts) m.conflicts.push_back({"text", path, "", "1 conflicting hunk", {}, false, {}});
    return m;
  }
  FileMap Base() const {
    return {{"a.txt", "alpha\n"}, {"dir/b.txt", "bravo\n"}, {"dir/sub/c.txt", "charlie\n"}, {"m.bin", m_bin_}};
  }
};

TEST_F(StagedMergeTest, TheWorkspaceShowsTheStagedTreeAndCommitsItWithTwoParents) {
  FileMap staged = Base();
  staged["a.txt"] = "alpha, merged\n";
  staged.erase("dir/sub/c.txt");
  staged["dir/new.txt"] = "new\n";
  staged["x/y.txt"] = "deep\n";
  WsMerge merge = MakeMerge({{"a.txt", "theirs\n"}}, staged);
  TUSK_ASSERT_OK(ws_->StageMerge(merge));
  EXPECT_EQ(Get("a.txt"), "alpha, merged\n");
  EXPECT_EQ(Get("dir/new.txt"), "new\n");
  EXPECT_EQ(Get("x/y.txt"), "deep\n");
  EXPECT_TRUE(Get("m.bin") == m_bin_);
  EXPECT_ERRNO(StatusOf(ws_->Stat("dir/sub/c.txt")), ENOENT);
  EXPECT_EQ(ChangeLines(), (std::vector<std::string>{"M a.txt", "A dir/new.txt", "D dir/sub/c.txt", "A x/y.txt"}));
  // Staged files are metacopies of the staged tree's chunks: nothing copied.
  struct stat st;
  ASSERT_EQ(::stat((UpperDir() + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0);
  ASSERT_TRUE(ws_->StagedMerge().has_value());
  EXPECT_TRUE(fs::exists(WsDir() + "/merge"));

  auto r = Commit("");  // no message: the merge's own
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->commit.has_value());
  TUSK_ASSERT_OK_AND_ASSIGN(tusk::Commit c, repo_->ReadCommit(*r->commit));
  EXPECT_EQ(c.parents, (std::vector<ObjectId>{first_, merge.theirs}));
  EXPECT_EQ(c.message, "merge d@side into d@main");
  EXPECT_EQ(c.file_count, 5u);
  EXPECT_EQ(CommittedContent(*r->commit, "a.txt"), "alpha, merged\n");
  EXPECT_EQ(CommittedContent(*r->commit, "x/y.txt"), "deep\n");
  EXPECT_FALSE(ws_->StagedMerge().has_value());
  EXPECT_FALSE(fs::exists(WsDir() + "/merge"));
  EXPECT_TRUE(ChangeLines().empty());
}

TEST_F(StagedMergeTest, AMergeThatChangedNothingStillCommitsWithTwoParents) {
  WsMerge merge = MakeMerge({{"a.txt", "theirs\n"}}, Base());
  TUSK_ASSERT_OK(ws_->StageMerge(merge));
  EXPECT_TRUE(ChangeLines().empty());
  ObjectId c = CommitOk("kept ours");
  TUSK_ASSERT_OK_AND_ASSIGN(tusk::Commit commit, repo_->ReadCommit(c));
  EXPECT_EQ(commit.parents.size(), 2u);
  EXPECT_EQ(commit.root, repo_->ReadCommit(first_)->root);
}

TEST_F(StagedMergeTest, OnlyAStagedMergeMayBeCommittedWithoutAMessage) {
  Put("new.txt", "new\n");
  auto r = Commit("");
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("a commit needs a message (-m)"), std::string::npos);
  EXPECT_EQ(ChangeLines(), std::vector<std::string>{"A new.txt"});
}

TEST_F(StagedMergeTest, CommitRefusesWhileAConflictIsUnresolved) {
  FileMap staged = Base();
  staged["a.txt"] = "<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n";
  WsMerge merge = MakeMerge({{"a.txt", "y\n"}}, staged, {"a.txt", "dir/b.txt"});
  TUSK_ASSERT_OK(ws_->StageMerge(merge));
  auto refused = Commit("m");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("2 conflicting paths are unresolved ('a.txt', 'dir/b.txt')"),
            std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(ws_->MarkResolved({"a.txt", "nope"}).code(), Status::Code::kNotFound);
  EXPECT_EQ(ws_->StagedMerge()->Unresolved(), 2u);  // all or none
  TUSK_ASSERT_OK(ws_->MarkResolved({"a.txt"}));
  // Kept across a restart of the workspace's owner.
  OpenWs();
  ASSERT_TRUE(ws_->StagedMerge().has_value());
  EXPECT_EQ(ws_->StagedMerge()->Unresolved(), 1u);
  EXPECT_EQ(Get("a.txt"), staged["a.txt"]);
  ASSERT_FALSE(Commit("m").ok());
  TUSK_ASSERT_OK(ws_->MarkResolved({"dir/b.txt"}));
  CommitOk("m");
}

TEST_F(StagedMergeTest, StagingIsRefusedOverStagedWorkOrAMovedBranch) {
  WsMerge merge = MakeMerge({{"a.txt", "theirs\n"}}, {{"a.txt", "merged\n"}});
  Put("mine.txt", "mine\n");
  Status busy = ws_->StageMerge(merge);
  EXPECT_EQ(busy.code(), Status::Code::kInvalidArgument) << busy.ToString();
  EXPECT_NE(busy.message().find("has staged changes"), std::string::npos) << busy.ToString();
  TUSK_ASSERT_OK(ws_->Reset());
  WsMerge stale = merge;
  stale.ours = merge.theirs;
  EXPECT_NE(ws_->StageMerge(stale).message().find("merge again"), std::string::npos);
  TUSK_ASSERT_OK(ws_->StageMerge(merge));
  Status twice = ws_->StageMerge(merge);
  EXPECT_NE(twice.message().find("is already staged"), std::string::npos) << twice.ToString();
  // The branch moved from outside while the merge was staged: the commit
  // is refused, the merge kept.
  Import({{"other.txt", "moved\n"}});
  EXPECT_TRUE(*ws_->Diverged());
  EXPECT_EQ(Commit("m").status().code(), Status::Code::kConflict);
  EXPECT_TRUE(ws_->StagedMerge().has_value());
}

TEST_F(StagedMergeTest, ResetDropsTheMerge) {
  WsMerge merge = MakeMerge({{"a.txt", "theirs\n"}}, {{"a.txt", "merged\n"}});
  TUSK_ASSERT_OK(ws_->StageMerge(merge));
  EXPECT_EQ(Get("a.txt"), "merged\n");
  TUSK_ASSERT_OK(ws_->Reset());
  EXPECT_FALSE(ws_->StagedMerge().has_value());
  EXPECT_FALSE(fs::exists(WsDir() + "/merge"));
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  EXPECT_TRUE(ChangeLines().empty());
  EXPECT_TRUE(UpperEntries().empty());
}

TEST_F(StagedMergeTest, AStagingCutShortByACrashIsRolledBack) {
  WsMerge merge = MakeMerge({{"a.txt", "theirs\n"}}, {{"a.txt", "merged\n"}});
  // What a crash halfway through StageMerge leaves: part of the tree in
  // upper/ and the merge.staging file.
  Put("a.txt", "half-staged\n");
  ws_.reset();
  WriteFile(WsDir() + "/merge.staging", EncodeWsMerge(merge));
  OpenWs();
  EXPECT_FALSE(ws_->StagedMerge().has_value());
  EXPECT_FALSE(fs::exists(WsDir() + "/merge.staging"));
  EXPECT_TRUE(UpperEntries().empty());
  EXPECT_EQ(Get("a.txt"), "alpha\n");
}

TEST_F(StagedMergeTest, GcKeepsTheStagedTreeAndTheirs) {
  WsMerge merge = MakeMerge({{"a.txt", "theirs\n"}}, {{"a.txt", "merged\n"}});
  TUSK_ASSERT_OK(ws_->StageMerge(merge));
  TUSK_ASSERT_OK_AND_ASSIGN(auto roots, WorkspaceBases(store_dir_));
  EXPECT_NE(std::find(roots.begin(), roots.end(), merge.theirs), roots.end());
  TUSK_ASSERT_OK_AND_ASSIGN(auto trees, WorkspaceStagedTrees(store_dir_));
  EXPECT_EQ(trees, std::vector<ObjectId>{merge.staged});
  // Nothing else keeps the staged tree: gc must (the scratch branch that
  // made it goes).
  TUSK_ASSERT_OK(repo_->DeleteBranch("d", "scratch"));
  TUSK_ASSERT_OK(repo_->CollectGarbage(false, nullptr).status());
  EXPECT_EQ(Get("a.txt"), "merged\n");
  auto r = Commit("m");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(CommittedContent(*r->commit, "a.txt"), "merged\n");
}

TEST(WsMergeEncodingTest, RoundTripsAndRefusesDamage) {
  WsMerge m;
  m.ours = Sha256::Of("o", 1);
  m.theirs = Sha256::Of("t", 1);
  m.staged = Sha256::Of("s", 1);
  m.source = "d@side";
  m.message = "merge";
  m.conflicts.push_back({"table", "labels.csv", "", "1 conflict", {"cell id=1 column label: ..."}, false, {2, 9}});
  m.conflicts.push_back({"binary", "x.bin", "x.bin~theirs", "binary", {}, true, {}});
  std::string bytes = EncodeWsMerge(m);
  TUSK_ASSERT_OK_AND_ASSIGN(WsMerge back, DecodeWsMerge(bytes, "test"));
  EXPECT_EQ(EncodeWsMerge(back), bytes);
  EXPECT_EQ(back.conflicts[1].theirs_path, "x.bin~theirs");
  EXPECT_TRUE(back.conflicts[1].resolved);
  EXPECT_EQ(back.conflicts[0].marked_lines, (std::vector<uint64_t>{2, 9}));
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string bad = bytes;
    bad[i] ^= 0x40;
    EXPECT_FALSE(DecodeWsMerge(bad, "test").ok()) << "flip at " << i;
  }
  for (size_t n = 0; n < bytes.size(); n++) EXPECT_FALSE(DecodeWsMerge(bytes.substr(0, n), "test").ok()) << n;
}

}  // namespace
}  // namespace tusk
