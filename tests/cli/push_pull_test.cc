// `tusk push`, `fetch`, `pull` and `clone` as users run them (tusk-push(1),
// tusk-pull(1), tusk-fetch(1), tusk-clone(1)): stores that share datasets
// through one remote on the real S3 server that tools/test.sh starts
// (TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Each
// second store stands in for another machine. Skipped without a server.
#include <sys/mount.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <thread>

#include "tests/cli/cli_helpers.h"
#include "tests/cli/cut_proxy.h"
#include "tests/store/backend/s3_test_util.h"

namespace tusk::cli_test {
namespace {

class PushPullTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    server_ = test_util::S3ServerFromEnvironment(&why_not_);
    if (!server_) GTEST_SKIP() << why_not_;
    endpoint_ = server_->options.endpoint;
    bucket_ = test_util::RandomBucketName();
    url_ = "s3://" + bucket_ + "/team";
    InitStore();
    RunResult r = Run("remote", "add", "origin", url_, "--endpoint", endpoint_, "--create-bucket");
    ASSERT_EQ(r.exit_code, 0) << r;
    auto client = s3::Client::Create(bucket_, server_->options, server_->credentials);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
  }
  void TearDown() override {
    if (client_) {
      auto left = client_->List("");
      if (left.ok())
        for (const auto& o : *left) (void)client_->Delete(o.key);
      (void)client_->DeleteBucket();
    }
    CliTest::TearDown();
  }

  // Runs tusk on another store (another machine).
  template <typename... Args>
  RunResult RunOn(const std::string& store, const Args&... args) {
    std::string mine = this->store();
    UseStore(store);
    RunResult r = Run(args...);
    UseStore(mine);
    return r;
  }
  // A clone of the remote in Path(name), the store of another machine.
  std::string Clone(const std::string& name) {
    RunResult r = Run("clone", url_, Path(name), "--endpoint", endpoint_);
    EXPECT_EQ(r.exit_code, 0) << r;
    return Path(name);
  }
  // Bytes of the pack objects on the remote.
  uint64_t RemotePackBytes() {
    auto listed = client_->List("team/packs/");
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    uint64_t total = 0;
    for (const auto& o : listed.ok() ? *listed : std::vector<s3::ObjectInfo>()) total += o.size;
    return total;
  }
  // Dataset d with v1 on main, pushed to origin.
  void PushV1() {
    MakeV1(Path("v1"));
    CreateDataset("d");
    Import(Path("v1"), "d@main", "v1");
    RunResult r = Run("push", "origin", "d");
    ASSERT_EQ(r.exit_code, 0) << r;
  }
  void MakeV1(const std::string& dir) {
    MakeTree(dir, {File("labels.csv", "id,label\n1,cat\n2,dog\n"), File("images/a.bin", RandomBytes(3 << 20, 1)),
                   File("images/b.bin", RandomBytes(200 << 10, 2)), File("notes/readme.txt", "hello\n")});
  }

  std::optional<test_util::S3Server> server_;
  std::unique_ptr<s3::Client> client_;
  std::string why_not_, endpoint_, bucket_, url_;
};

TEST_F(PushPullTest, APushedBranchClonesElsewhereWithTheSameFilesReadFromTheRemote) {
  MakeV1(Path("v1"));
  CreateDataset("d");
  Import(Path("v1"), "d@main", "v1");
  RunResult r = Run("push", "origin", "d");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(StartsWith(r.out, "Pushed d@main to origin: new branch at ")) << r;

  std::string other = Clone("other");
  EXPECT_EQ(RunOn(other, "show", "d@main", "--json").out, Run("show", "d@main", "--json").out);
  // File data stayed on the remote: the clone holds its metadata only.
  EXPECT_LT(RegularFileBytes(other + "/packs"), 200u << 10);
  r = RunOn(other, "export", "d@main", Path("out"));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(TreeDiff(Path("v1"), Path("out")).empty()) << Join(TreeDiff(Path("v1"), Path("out")));
  // The remote-tracking ref names where the remote's branch is.
  EXPECT_EQ(RunOn(other, "show", "d@origin/main", "--json").out, RunOn(other, "show", "d@main", "--json").out);
  r = RunOn(other, "fsck");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "on remotes were not read")) << r;

  // A one-version mount of the clone serves the same bytes.
  std::string mnt = Path("mnt");
  MakeDirs(mnt);
  r = RunOn(other, "mount", "d@main", mnt);
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> differences = TreeDiff(Path("v1"), mnt);
  RunResult u = RunOn(other, "umount", mnt);
  if (u.exit_code != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_TRUE(differences.empty()) << Join(differences);
}

// GET requests for this test's pack objects so far, from the access log of
// the project's RGW (tests/s3/rgw.sh); nullopt with another server.
std::optional<size_t> PackGets(const std::string& bucket) {
  const char* dir = std::getenv("TUSK_TEST_S3_DIR");
  if (!dir) return std::nullopt;
  std::string log = std::string(dir) + "/log/client.rgw.a.log";
  std::string needle = "\"GET /" + bucket + "/team/packs/";
  // The log is written by a thread of its own: wait until it stops growing.
  std::optional<size_t> last;
  for (int i = 0; i < 40; i++) {
    int fd = ::open(log.c_str(), O_RDONLY);
    if (fd < 0) return std::nullopt;
    std::string text;
    char buf[1 << 16];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    size_t count = 0;
    for (size_t at = 0; (at = text.find(needle, at)) != std::string::npos; at += needle.size()) count++;
    if (last && *last == count) return count;
    last = count;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return last;
}

TEST_F(PushPullTest, ALazyMountReadsNeighbouringFilesAndChunksInFewRequests) {
  // 300 small files and one of 12 MiB: read one chunk at a time, that is
  // over 300 requests; read ahead in spans of neighbours, a handful.
  std::vector<FsEntry> files;
  for (int i = 0; i < 300; i++) {
    char name[32];
    std::snprintf(name, sizeof name, "small/f%03d.bin", i);
    files.push_back(File(name, RandomBytes(2048 + static_cast<size_t>(i) * 61, 100 + i)));
  }
  files.push_back(File("large/big.bin", RandomBytes(12 << 20, 7)));
  MakeTree(Path("v1"), files);
  CreateDataset("d");
  Import(Path("v1"), "d@main", "v1");
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  std::string other = Clone("other");
  std::optional<size_t> before = PackGets(bucket_);

  std::string mnt = Path("mnt");
  MakeDirs(mnt);
  RunResult r = RunOn(other, "mount", "d@main", mnt);
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> differences = TreeDiff(Path("v1"), mnt);
  RunResult u = RunOn(other, "umount", mnt);
  if (u.exit_code != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_TRUE(differences.empty()) << Join(differences);
  if (!before) GTEST_SKIP() << "request counts need the project's RGW (TUSK_TEST_S3_DIR)";
  std::optional<size_t> after = PackGets(bucket_);
  ASSERT_TRUE(after.has_value());
  size_t gets = *after - *before;
  EXPECT_GT(gets, 0u);
  EXPECT_LT(gets, 40u) << "GETs of pack objects for 301 files";

  // Any reader, not only the mount: an export of a fresh clone goes through
  // the packs in their order and has the rest of each fetched ahead.
  std::string third = Clone("third");
  before = PackGets(bucket_);
  r = RunOn(third, "export", "d@main", Path("out"));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(TreeDiff(Path("v1"), Path("out")).empty()) << Join(TreeDiff(Path("v1"), Path("out")));
  after = PackGets(bucket_);
  ASSERT_TRUE(after.has_value());
  EXPECT_LT(*after - *before, 40u) << "GETs of pack objects for an export of 301 files";
}

TEST_F(PushPullTest, TheRunThatMadeACommitTravelsWithItButNotItsInputsData) {
  MakeTree(Path("raw"), {File("labels/a.csv", "id,label\n1,cat\n"), File("labels/b.csv", "id,label\n2,dog\n"),
                         File("unused.bin", RandomBytes(100 << 10, 3))});
  CreateDataset("raw");
  CreateDataset("clean");
  Import(Path("raw"), "raw@main", "raw v1");
  RunResult r = Run("run", "--in", "raw=raw@main", "--out", "clean@main", "-m", "clean", "--", "sh", "-c",
                    "cat \"$TUSK_IN_raw\"/labels/a.csv > \"$TUSK_OUT\"/all.csv");
  ASSERT_EQ(r.exit_code, 0) << r;
  uint64_t before = RemotePackBytes();
  r = Run("push", "origin", "clean");
  ASSERT_EQ(r.exit_code, 0) << r;
  // raw's file data stayed home: the push is the small output and metadata.
  EXPECT_LT(RemotePackBytes() - before, 50u << 10);

  std::string other = Clone("other");
  // The clone knows the run: its command, its inputs, what it read.
  r = RunOn(other, "runs");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "clean")) << r;
  RunResult show = RunOn(other, "show", "clean@main", "--json");
  size_t at = show.out.find("\"run\":\"");
  ASSERT_NE(at, std::string::npos) << show;
  std::string run = show.out.substr(at + 7, 64);
  r = RunOn(other, "show", "run:" + run);
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "raw@main")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "labels/a.csv")) << r;
  EXPECT_EQ(r.out, Run("show", "run:" + run).out);
  r = RunOn(other, "lineage", "clean@main");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, run.substr(0, 12))) << r;
  EXPECT_TRUE(HasSubstr(r.out, "not in this store")) << r;
  r = RunOn(other, "lineage", "clean@main", "--json");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "\"in_store\":false")) << r;
  r = RunOn(other, "lineage", "clean@main", "--dot");
  EXPECT_EQ(r.exit_code, 0) << r;
  // gc and fsck on the clone, which lacks the run's input commit.
  r = RunOn(other, "gc");
  EXPECT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "fsck");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(RunOn(other, "cat", "clean@main", "all.csv").out, "id,label\n1,cat\n");

  // Once raw is pushed too, the clone fetches it and has the whole lineage.
  ASSERT_EQ(Run("push", "origin", "raw").exit_code, 0);
  r = RunOn(other, "pull", "origin", "raw");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "lineage", "clean@main");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, Run("lineage", "clean@main").out);
}

TEST_F(PushPullTest, AFetchKilledPartWayLeavesAStoreThatChecksAndFetchesOn) {
  // A history of 40 commits, each with its own directory: many objects to
  // copy, so that a kill lands in the middle of the copying.
  CreateDataset("d");
  for (int i = 0; i < 40; i++) {
    std::vector<FsEntry> files;
    for (int k = 0; k <= i; k++)
      files.push_back(File("dir" + std::to_string(k) + "/f" + std::to_string(k) + ".txt", "version " + std::to_string(k)));
    MakeTree(Path("v" + std::to_string(i)), files);
    Import(Path("v" + std::to_string(i)), "d@main", "commit " + std::to_string(i));
  }
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  std::string other = Path("other");
  RunResult r = RunOn(other, "init");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "remote", "add", "origin", url_, "--endpoint", endpoint_);
  ASSERT_EQ(r.exit_code, 0) << r;
  for (const char* after : {"0.05", "0.15", "0.3", "0.6"}) {
    SCOPED_TRACE(std::string("killed after ") + after + " s");
    std::string cmd = "env TUSK_STORE=" + other + " timeout -s KILL " + after + " " + kTuskBinary +
                      " fetch origin >/dev/null 2>&1";
    (void)std::system(cmd.c_str());
    // Whatever the kill interrupted, the store is whole...
    r = RunOn(other, "fsck");
    EXPECT_EQ(r.exit_code, 0) << r;
  }
  // ...and the next fetch completes it.
  r = RunOn(other, "fetch", "origin");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(RunOn(other, "log", "d@origin/main").out, Run("log", "d@main").out);
  r = RunOn(other, "fsck");
  EXPECT_EQ(r.exit_code, 0) << r;
}

TEST_F(PushPullTest, DataOnARemoteTheStoreNoLongerNamesIsAnErrorThatSaysSo) {
  PushV1();
  std::string other = Clone("other");
  // STORE/remotes edited by hand (tusk remote remove refuses while data
  // is read from the remote).
  WriteFileOrDie(other + "/remotes", "tusk remotes 1\n");
  RunResult r = RunOn(other, "cat", "d@main", "images/a.bin");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "remote 'origin'")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk remote add")) << r;
  // Metadata is local: listings still work.
  r = RunOn(other, "ls", "d@main");
  EXPECT_EQ(r.exit_code, 0) << r;
  // Through a mount: EIO (not the reader's mistake), and the log says why.
  std::string mnt = Path("mnt");
  MakeDirs(mnt);
  r = RunOn(other, "mount", "d@main", mnt);
  ASSERT_EQ(r.exit_code, 0) << r;
  int fd = ::open((mnt + "/images/a.bin").c_str(), O_RDONLY | O_CLOEXEC);
  int read_errno = 0;
  if (fd >= 0) {
    char buf[4096];
    if (::read(fd, buf, sizeof buf) < 0) read_errno = errno;
    ::close(fd);
  }
  RunResult u = RunOn(other, "umount", mnt);
  if (u.exit_code != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(read_errno, EIO);
  std::string log = ReadFileOrDie(other + "/mount.log");
  EXPECT_TRUE(HasSubstr(log, "no remote named 'origin'")) << log;
}

TEST_F(PushPullTest, APrefixEmptiedAndMadeAgainIsAnotherRemoteThatPushAndFetchRefuse) {
  PushV1();
  // Someone empties the prefix, and another store makes a remote there anew.
  auto left = client_->List("team/");
  ASSERT_TRUE(left.ok());
  for (const auto& o : *left) ASSERT_TRUE(client_->Delete(o.key).ok());
  std::string third = Path("third");
  ASSERT_EQ(RunOn(third, "init").exit_code, 0);
  RunResult r = RunOn(third, "remote", "add", "origin", url_, "--endpoint", endpoint_);
  ASSERT_EQ(r.exit_code, 0) << r;

  // This store remembers the old remote's refs: a push trusting them would
  // skip objects the new one lacks. Refused, saying what to do.
  MakeTree(Path("v2"), {File("labels.csv", "id,label\n1,cat\n2,dog\n3,owl\n"),
                        File("images/a.bin", RandomBytes(3 << 20, 1))});
  Import(Path("v2"), "d@main", "v2");
  for (const char* command : {"push", "fetch"}) {
    r = Run(command, "origin", "d");
    if (std::string(command) == "fetch") r = Run(command, "origin");
    EXPECT_EQ(r.exit_code, 1) << command << r;
    EXPECT_TRUE(HasSubstr(r.err, "is not the remote this store added")) << command << r;
    EXPECT_TRUE(HasSubstr(r.err, "tusk remote remove origin")) << command << r;
  }
  // Removed and added again, it is a new remote: the push sends all.
  ASSERT_EQ(Run("remote", "remove", "origin").exit_code, 0);
  r = Run("remote", "add", "origin", url_, "--endpoint", endpoint_);
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Run("push", "origin", "d");
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string other = Clone("other");
  r = RunOn(other, "export", "d@main", Path("out"));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(TreeDiff(Path("v2"), Path("out")).empty()) << Join(TreeDiff(Path("v2"), Path("out")));
}

// The port of the test server's endpoint (http://127.0.0.1:PORT).
int PortOf(const std::string& endpoint) { return std::stoi(endpoint.substr(endpoint.rfind(':') + 1)); }

TEST_F(PushPullTest, APushCutByTheServerStoppingResumesWithoutSendingWhatItFinished) {
  // 36 MiB in three commits: repacked into packs of at most 32 MiB, sent
  // at once. The server stops after 20 MiB, when the small pack is there
  // and the large one is not.
  CreateDataset("d");
  const size_t sizes[] = {30 << 20, 3 << 20, 3 << 20};
  for (int i = 0; i < 3; i++) {
    MakeTree(Path("v" + std::to_string(i)), {File("f" + std::to_string(i) + ".bin", RandomBytes(sizes[i], 40 + i))});
    Import(Path("v" + std::to_string(i)), "d@main", "v" + std::to_string(i));
  }
  CutProxy proxy(PortOf(endpoint_));
  RunResult r = Run("remote", "add", "flaky", url_, "--endpoint", "http://127.0.0.1:" + std::to_string(proxy.port()));
  ASSERT_EQ(r.exit_code, 0) << r;
  proxy.CutAfterUpload(20 << 20);
  auto start = std::chrono::steady_clock::now();
  r = Run("push", "flaky", "d");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(proxy.cut());
  EXPECT_TRUE(HasSubstr(r.err, "127.0.0.1:" + std::to_string(proxy.port()))) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120)) << "no hang";
  auto ref = client_->Head("team/refs/d/branches/main");
  EXPECT_EQ(ref.status().code(), Status::Code::kNotFound) << "the remote branch did not move";

  // The server is back: the push finishes, sending less than all again.
  proxy.Restore();
  uint64_t before = proxy.uploaded();
  r = Run("push", "flaky", "d");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "already there")) << r;
  EXPECT_LT(proxy.uploaded() - before, uint64_t{34} << 20) << "what the first push finished was not sent again";
  std::string other = Clone("other");
  r = RunOn(other, "export", "d@main", Path("out"));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(TreeDiff(Path("v2"), Path("out")).empty()) << Join(TreeDiff(Path("v2"), Path("out")));
}

TEST_F(PushPullTest, AServerThatStopsMidReadGivesEioNotAHang) {
  MakeTree(Path("v1"), {File("big.bin", RandomBytes(24 << 20, 5)), File("small.txt", "small\n")});
  CreateDataset("d");
  Import(Path("v1"), "d@main", "v1");
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  CutProxy proxy(PortOf(endpoint_));
  std::string other = Path("other");
  RunResult r = Run("clone", url_, other, "--endpoint", "http://127.0.0.1:" + std::to_string(proxy.port()));
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string mnt = Path("mnt");
  MakeDirs(mnt);
  r = RunOn(other, "mount", "d@main", mnt);
  ASSERT_EQ(r.exit_code, 0) << r;
  // The server stops 2 MiB into the file.
  proxy.CutAfterDownload(2 << 20);
  auto start = std::chrono::steady_clock::now();
  int fd = ::open((mnt + "/big.bin").c_str(), O_RDONLY | O_CLOEXEC);
  int read_errno = 0;
  uint64_t got = 0;
  if (fd >= 0) {
    std::vector<char> buf(1 << 20);
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) != 0;) {
      if (n < 0) {
        read_errno = errno;
        break;
      }
      got += static_cast<uint64_t>(n);
    }
    ::close(fd);
  }
  auto took = std::chrono::steady_clock::now() - start;
  struct stat st;
  bool listed = ::stat((mnt + "/small.txt").c_str(), &st) == 0;
  RunResult u = RunOn(other, "umount", mnt);
  if (u.exit_code != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  EXPECT_TRUE(proxy.cut());
  EXPECT_EQ(read_errno, EIO) << "read " << got << " bytes";
  EXPECT_LT(got, uint64_t{24} << 20);
  EXPECT_LT(took, std::chrono::seconds(120)) << "no hang";
  EXPECT_TRUE(listed) << "the file system stays usable";
  EXPECT_EQ(u.exit_code, 0) << u;
}

TEST_F(PushPullTest, APushSendsOnlyWhatTheRemoteLacks) {
  MakeV1(Path("v1"));
  CreateDataset("d");
  Import(Path("v1"), "d@main", "v1");
  ASSERT_EQ(Run("push", "origin", "d@main").exit_code, 0);
  uint64_t after_v1 = RemotePackBytes();
  EXPECT_GT(after_v1, 3u << 20);

  // v2: one label changed, one new 1 MiB file; the 3 MiB image unchanged.
  MakeV1(Path("v2"));
  WriteFileOrDie(Path("v2/labels.csv"), "id,label\n1,cat\n2,bird\n");
  WriteFileOrDie(Path("v2/images/c.bin"), RandomBytes(1 << 20, 3));
  Import(Path("v2"), "d@main", "v2");
  RunResult r = Run("push", "origin", "d@main");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "..")) << r;
  uint64_t sent = RemotePackBytes() - after_v1;
  EXPECT_GT(sent, 1u << 20);
  EXPECT_LT(sent, (1u << 20) * 11 / 10) << "v2 changed about 1 MiB";

  r = Run("push", "origin", "d@main");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "is up to date on origin")) << r;
  EXPECT_EQ(RemotePackBytes() - after_v1, sent);
}

TEST_F(PushPullTest, PullFastForwardsAndRefusesDivergedBranchesUntilMerged) {
  PushV1();
  std::string other = Clone("other");

  // Here: v2, pushed. There: pull fast-forwards to it.
  WriteFileOrDie(Path("v1/labels.csv"), "id,label\n1,cat\n2,bird\n");
  Import(Path("v1"), "d@main", "v2");
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  RunResult r = RunOn(other, "pull", "origin", "d");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "(fast-forward)")) << r;
  EXPECT_EQ(RunOn(other, "show", "d@main", "--json").out, Run("show", "d@main", "--json").out);

  // Both change it: here pushes first; there is refused, loses nothing,
  // pulls (refused: diverged), merges and pushes.
  WriteFileOrDie(Path("v1/notes/readme.txt"), "hello from here\n");
  Import(Path("v1"), "d@main", "here");
  RunOn(other, "export", "d@main", Path("there"));
  WriteFileOrDie(Path("there/labels.csv"), "id,label\n1,cat\n2,bird\n3,fish\n");
  r = RunOn(other, "import", Path("there"), "d@main", "-m", "there");
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string there_head = RunOn(other, "show", "d@main", "--json").out;
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  r = RunOn(other, "push", "origin", "d");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "refused")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk pull origin d@main")) << r;
  EXPECT_EQ(RunOn(other, "show", "d@main", "--json").out, there_head) << "nothing lost locally";
  r = RunOn(other, "pull", "origin", "d");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "have diverged")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk merge d@origin/main d@main")) << r;
  r = RunOn(other, "merge", "d@origin/main", "d@main", "-m", "merge here");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "push", "origin", "d");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Run("pull", "origin", "d");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "(fast-forward)")) << r;
  r = Run("cat", "d@main", "labels.csv");
  EXPECT_EQ(r.out, "id,label\n1,cat\n2,bird\n3,fish\n") << r;
  r = Run("cat", "d@main", "notes/readme.txt");
  EXPECT_EQ(r.out, "hello from here\n") << r;
}

TEST_F(PushPullTest, AForcedPushReplacesTheRemoteBranch) {
  PushV1();
  std::string other = Clone("other");
  WriteFileOrDie(Path("v1/labels.csv"), "id,label\n");
  Import(Path("v1"), "d@main", "v2");
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  MakeTree(Path("w"), {File("only.txt", "x\n")});
  RunResult r = RunOn(other, "import", Path("w"), "d@main", "-m", "replace");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "push", "origin", "d");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "--force")) << r;
  r = RunOn(other, "push", "origin", "d", "--force");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "(forced)")) << r;
  r = Run("fetch", "origin");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(Run("cat", "d@origin/main", "only.txt").out, "x\n");
}

TEST_F(PushPullTest, OfTwoMachinesPushingOneBranchAtOnceExactlyOneWins) {
  PushV1();
  std::string a = Clone("a"), b = Clone("b");
  for (const auto& [store, who] : {std::pair<std::string, std::string>{a, "a"}, {b, "b"}}) {
    MakeTree(Path("edit-" + who), {File("who.txt", "from " + who + "\n")});
    RunResult r = RunOn(store, "import", Path("edit-" + who), "d@main", "-m", "from " + who);
    ASSERT_EQ(r.exit_code, 0) << r;
  }
  std::string a_head = RunOn(a, "show", "d@main", "--json").out, b_head = RunOn(b, "show", "d@main", "--json").out;
  auto push_a = std::async(std::launch::async, [&] { return RunOn(a, "push", "origin", "d"); });
  RunResult from_b = RunOn(b, "push", "origin", "d");
  RunResult from_a = push_a.get();
  EXPECT_EQ((from_a.exit_code == 0) + (from_b.exit_code == 0), 1) << from_a << from_b;
  const RunResult& loser = from_a.exit_code == 0 ? from_b : from_a;
  EXPECT_TRUE(HasSubstr(loser.err, "refused")) << loser;
  EXPECT_EQ(RunOn(a, "show", "d@main", "--json").out, a_head);
  EXPECT_EQ(RunOn(b, "show", "d@main", "--json").out, b_head);
  // What the remote has is the winner's commit.
  ASSERT_EQ(Run("fetch", "origin").exit_code, 0);
  std::string who = Run("cat", "d@origin/main", "who.txt").out;
  EXPECT_EQ(who, from_a.exit_code == 0 ? "from a\n" : "from b\n");
}

TEST_F(PushPullTest, PushesToDifferentBranchesBothLand) {
  PushV1();
  std::string a = Clone("a"), b = Clone("b");
  ASSERT_EQ(RunOn(a, "branch", "d@fix-a", "d@main").exit_code, 0);
  ASSERT_EQ(RunOn(b, "branch", "d@fix-b", "d@main").exit_code, 0);
  MakeTree(Path("ea"), {File("a.txt", "a\n")});
  MakeTree(Path("eb"), {File("b.txt", "b\n")});
  ASSERT_EQ(RunOn(a, "import", Path("ea"), "d@fix-a", "-m", "a").exit_code, 0);
  ASSERT_EQ(RunOn(b, "import", Path("eb"), "d@fix-b", "-m", "b").exit_code, 0);
  auto push_a = std::async(std::launch::async, [&] { return RunOn(a, "push", "origin", "d@fix-a"); });
  RunResult from_b = RunOn(b, "push", "origin", "d@fix-b");
  RunResult from_a = push_a.get();
  EXPECT_EQ(from_a.exit_code, 0) << from_a;
  EXPECT_EQ(from_b.exit_code, 0) << from_b;
  ASSERT_EQ(Run("fetch", "origin").exit_code, 0);
  EXPECT_EQ(Run("cat", "d@origin/fix-a", "a.txt").out, "a\n");
  EXPECT_EQ(Run("cat", "d@origin/fix-b", "b.txt").out, "b\n");
}

TEST_F(PushPullTest, ChangedBytesOnTheRemoteAreNeverServed) {
  PushV1();
  std::string other = Clone("other");
  // Flip a byte in the middle of the biggest pack (inside a.bin's data).
  auto listed = client_->List("team/packs/");
  ASSERT_TRUE(listed.ok() && !listed->empty());
  const s3::ObjectInfo* biggest = &listed->front();
  for (const auto& o : *listed)
    if (o.size > biggest->size) biggest = &o;
  auto bytes = client_->Get(biggest->key);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[bytes->size() / 2] ^= 0x01;
  ASSERT_TRUE(client_->Put(biggest->key, *bytes).ok());
  RunResult r = RunOn(other, "cat", "d@main", "images/a.bin");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.size() < (3u << 20)) << "a damaged file is not served whole";
  EXPECT_TRUE(HasSubstr(r.err, "tusk: error:")) << r.err;
}

TEST_F(PushPullTest, AServerThatIsGoneIsAnErrorNamingItNeverAHang) {
  PushV1();
  std::string other = Clone("other");
  // The server goes away: the clone's remote now points at a port where
  // nothing listens.
  int port = 0;
  ::close(test_util::ListenOnLoopback(1, &port));
  std::string gone = "http://127.0.0.1:" + std::to_string(port);
  std::string remotes = ReadFileOrDie(other + "/remotes");
  remotes.replace(remotes.find(endpoint_), endpoint_.size(), gone);
  WriteFileOrDie(other + "/remotes", remotes);
  // Metadata was fetched: listings work without the server.
  RunResult r = RunOn(other, "ls", "d@main", "images");
  EXPECT_EQ(r.exit_code, 0) << r;
  auto start = std::chrono::steady_clock::now();
  r = RunOn(other, "cat", "d@main", "images/a.bin");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(HasSubstr(r.err, "127.0.0.1:" + std::to_string(port))) << r.err;
  EXPECT_TRUE(HasSubstr(r.err, ".pack")) << "names the object: " << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  // Through a mount: EIO, and the file system stays usable.
  std::string mnt = Path("mnt");
  MakeDirs(mnt);
  r = RunOn(other, "mount", "d@main", mnt);
  ASSERT_EQ(r.exit_code, 0) << r;
  int fd = ::open((mnt + "/images/a.bin").c_str(), O_RDONLY | O_CLOEXEC);
  int read_errno = 0;
  if (fd >= 0) {
    char buf[4096];
    if (::read(fd, buf, sizeof buf) < 0) read_errno = errno;
    ::close(fd);
  }
  struct stat st;
  bool listed = ::stat((mnt + "/labels.csv").c_str(), &st) == 0 && st.st_size == 21;
  RunResult u = RunOn(other, "umount", mnt);
  if (u.exit_code != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(read_errno, EIO);
  EXPECT_TRUE(listed) << "metadata is local: the tree is still there";
}

TEST_F(PushPullTest, PrefetchedDataIsReadFromTheCacheEvenWithTheServerGone) {
  PushV1();
  std::string other = Clone("other");
  RunResult r = RunOn(other, "prefetch", "d@main", "images");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "Prefetched d@main: 2 file(s), 3.2 MiB")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "0 already cached")) << r;
  r = RunOn(other, "prefetch", "d@main", "images/a.bin");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, " 0 fetched")) << r;
  r = RunOn(other, "prefetch", "d@main", "no/such/path");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "no/such/path")) << r;
  // The server goes away: what was prefetched is still read, and checked.
  int port = 0;
  ::close(test_util::ListenOnLoopback(1, &port));
  std::string remotes = ReadFileOrDie(other + "/remotes");
  remotes.replace(remotes.find(endpoint_), endpoint_.size(), "http://127.0.0.1:" + std::to_string(port));
  WriteFileOrDie(other + "/remotes", remotes);
  r = RunOn(other, "cat", "d@main", "images/a.bin");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == RandomBytes(3 << 20, 1)) << "served from the cache";
  r = RunOn(other, "cat", "d@main", "labels.csv");
  EXPECT_EQ(r.exit_code, 1) << "not prefetched: needs the server";
}

TEST_F(PushPullTest, AllBranchesAndTagsTravelAndTagsDoNotMove) {
  PushV1();
  ASSERT_EQ(Run("tag", "d@v1", "d@main").exit_code, 0);
  ASSERT_EQ(Run("branch", "d@dev", "d@main").exit_code, 0);
  MakeTree(Path("e"), {File("dev.txt", "dev\n")});
  ASSERT_EQ(Run("import", Path("e"), "d@dev", "-m", "dev").exit_code, 0);
  RunResult r = Run("push", "origin", "d", "--all", "--tags");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "Pushed d@dev to origin: new branch at")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "d@main is up to date on origin")) << r;
  EXPECT_TRUE(HasSubstr(r.out, "Pushed d@v1 to origin: new tag at")) << r;
  std::string other = Clone("other");
  EXPECT_EQ(RunOn(other, "cat", "d@dev", "dev.txt").out, "dev\n");
  EXPECT_EQ(RunOn(other, "show", "d@v1", "--json").out, Run("show", "d@v1", "--json").out);
  // A tag on the remote that names another commit stays.
  ASSERT_EQ(RunOn(other, "tag", "-d", "d@v1").exit_code, 0);
  ASSERT_EQ(RunOn(other, "tag", "d@v1", "d@dev").exit_code, 0);
  r = RunOn(other, "push", "origin", "d@v1");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tags do not move")) << r;
  r = RunOn(other, "push", "origin", "d@v1", "--force");
  EXPECT_EQ(r.exit_code, 0) << r;
}

TEST_F(PushPullTest, TheMountHelperMountsAVersionOfAClone) {
  PushV1();
  std::string other = Clone("other");
  // As mount(8) runs it at boot: no AWS variables in the environment, the
  // credentials in a file named by the options.
  std::string credentials = Path("aws.env");
  WriteFileOrDie(credentials, std::string("# for tusk\nAWS_ACCESS_KEY_ID=") + std::getenv("AWS_ACCESS_KEY_ID") +
                                  "\nAWS_SECRET_ACCESS_KEY=" + std::getenv("AWS_SECRET_ACCESS_KEY") + "\nrm -rf /\n");
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"};
  std::string helper = std::string(TUSK_SOURCE_DIR) + "/tools/mount.tusk";
  std::string mnt = Path("mnt");
  MakeDirs(mnt);
  RunResult r = RunProcess({helper, other + ":d@main", mnt, "-o",
                            "user,noatime,nosuid,nodev,noexec,nofail,_netdev,x-systemd.automount,"
                            "remote_cache_size=64M,credentials=" + credentials +
                                ",tusk=" + kTuskBinary},
                           env);
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> differences = TreeDiff(Path("v1"), mnt);
  RunResult u = RunOn(other, "umount", mnt);
  if (u.exit_code != 0) ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_TRUE(differences.empty()) << Join(differences);
  // Mistakes: exit 1 for usage, 32 for a mount that failed.
  r = RunProcess({helper, "relative:d@main", mnt}, env);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "absolute path")) << r;
  r = RunProcess({helper, other, mnt, "-o", "colour=blue"}, env);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "unknown option 'colour=blue'")) << r;
  r = RunProcess({helper, other + ":d@nope", mnt, "-o", std::string("tusk=") + kTuskBinary}, env);
  EXPECT_EQ(r.exit_code, 32) << r;
}

TEST_F(PushPullTest, GcKeepsWhatAFetchBroughtForTheTrackingRefs) {
  PushV1();
  std::string other = Clone("other");
  // Here: v2 pushed. There: fetched only (no local branch reaches it), gc.
  WriteFileOrDie(Path("v1/labels.csv"), "id,label\n1,cat\n2,bird\n");
  Import(Path("v1"), "d@main", "v2");
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  RunResult r = RunOn(other, "fetch", "origin");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "gc");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(RunOn(other, "cat", "d@origin/main", "labels.csv").out, "id,label\n1,cat\n2,bird\n");
  r = RunOn(other, "merge", "d@origin/main", "d@main");
  EXPECT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "fetch", "origin");
  EXPECT_EQ(r.exit_code, 0) << r;
  r = RunOn(other, "fsck");
  EXPECT_EQ(r.exit_code, 0) << r;
  // What is imported in a clone is stored in it, even where the remote
  // has the same data: it never depends on the bucket.
  MakeTree(Path("again"), {File("copy.bin", RandomBytes(200 << 10, 2))});  // = images/b.bin
  r = RunOn(other, "import", Path("again"), "d@main", "-m", "copy");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "new data stored: 200.")) << r;
}

TEST_F(PushPullTest, MistakesAreClearErrors) {
  CreateDataset("d");
  RunResult r = Run("push", "origin", "d");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "d@main has no commits")) << r;
  r = Run("push", "elsewhere", "d");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "no remote named 'elsewhere' (remotes: origin)")) << r;
  r = Run("push", "origin", "d@main~1");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "is not a branch")) << r;
  r = Run("pull", "origin", "d@nope");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "remote 'origin' has no branch d@nope")) << r;
  r = Run("show", "d@origin/main");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "tusk fetch origin")) << r;
  // A clone of a bucket that does not exist leaves no directory behind.
  r = Run("clone", "s3://" + test_util::RandomBucketName(), Path("nothing"), "--endpoint", endpoint_);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "does not exist")) << r;
  struct stat st;
  EXPECT_NE(::stat(Path("nothing").c_str(), &st), 0);
  // Wrong credentials: named, never shown.
  MakeV1(Path("v1"));
  Import(Path("v1"), "d@main", "v1");
  std::string secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-5678", 1);
  r = Run("push", "origin", "d");
  ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "access denied")) << r;
  EXPECT_FALSE(HasSubstr(r.err + r.out, "wrong-secret-5678")) << r;
  // A remote that data is read from is not removed.
  ASSERT_EQ(Run("push", "origin", "d").exit_code, 0);
  std::string other = Clone("other");
  r = RunOn(other, "remote", "remove", "origin");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "would become unreadable")) << r;
}

}  // namespace
}  // namespace tusk::cli_test
