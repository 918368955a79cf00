// tusk run on real mounts (issue 10): inputs pinned and served read-only,
// the read set of the command's whole process tree and of nothing else,
// the output committed only on success, and no mount left behind however
// the run ends.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/fs/fs_test_util.h"

namespace tusk::fstest {
namespace {

namespace fs = std::filesystem;

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    src_ = tmp_.Sub("src");
    work_ = tmp_.Sub("work");
    fs::create_directories(src_ + "/dir");
    fs::create_directories(src_ + "/imgs");
    fs::create_directories(work_);
    Write(src_ + "/a.txt", "alpha\n");
    Write(src_ + "/b.txt", "bravo\n");
    Write(src_ + "/dir/c.txt", "charlie\n");
    Write(src_ + "/dir/d.txt", "delta\n");
    for (int i = 0; i < 40; i++) Write(src_ + "/imgs/" + Name(i), "image " + std::to_string(i) + "\n");
    Must(Tusk(store_, {"init"}));
    Must(Tusk(store_, {"dataset", "create", "raw"}));
    Must(Tusk(store_, {"dataset", "create", "clean"}));
    Must(Tusk(store_, {"import", src_, "raw@main", "-m", "raw v1"}));
  }

  void TearDown() override {
    // A run's mounts live in its own namespace: none may ever show here.
    EXPECT_TRUE(MountsUnder(tmp_.path()).empty());
  }

  static std::string Name(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "img%03d.txt", i);
    return buf;
  }
  static void Write(const std::string& path, const std::string& content) { ASSERT_TRUE(WriteFile(path, content)); }
  static void Must(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r; }

  RunResult Run(std::vector<std::string> args, double timeout = 120) {
    args.insert(args.begin(), "run");
    return Tusk(store_, args, timeout);
  }

  // The id of the newest run, from `tusk runs --json`.
  std::string LastRunId() {
    RunResult r = Tusk(store_, {"runs", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r;
    size_t at = r.out.rfind("{\"run\":\"");
    if (at == std::string::npos) return "";
    return r.out.substr(at + 8, 64);
  }

  // The files a run read through input `name`, from `tusk show run:ID --files`.
  std::set<std::string> ReadSetOf(const std::string& run, const std::string& name) {
    RunResult r = Tusk(store_, {"show", "run:" + run, "--files"});
    EXPECT_EQ(r.exit_code, 0) << r;
    std::set<std::string> out;
    std::istringstream in(r.out);
    std::string prefix = "  " + name + ": ";
    for (std::string line; std::getline(in, line);)
      if (line.rfind(prefix, 0) == 0) out.insert(line.substr(prefix.size()));
    return out;
  }

  std::string Head(const std::string& ref) {
    RunResult r = Tusk(store_, {"show", ref, "--json"});
    if (r.exit_code != 0) return "";
    size_t at = r.out.find("\"commit\":\"");
    return at == std::string::npos ? "" : r.out.substr(at + 10, 64);
  }

  TempDir tmp_;
  std::string store_, src_, work_;
};

TEST_F(RunTest, AShellPipelineReadsItsInputAndItsOutputBecomesACommitThatNamesTheRun) {
  ::setenv("TUSK_RUN_TEST_SEED", "1234", 1);
  ::unsetenv("TUSK_RUN_TEST_UNSET");
  RunResult r = Run({"--in", "raw=raw@main", "--out", "clean@main", "-m", "upper-case", "--meta", "step=clean", "--env",
                     "TUSK_RUN_TEST_SEED", "--env", "TUSK_RUN_TEST_UNSET", "--",
                     "sh", "-c", "cat \"$TUSK_IN_raw/a.txt\" \"$TUSK_IN_raw/dir/c.txt\" | tr a-z A-Z > \"$TUSK_OUT/up.txt\""});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.err, "committed")) << r;
  RunResult cat = Tusk(store_, {"cat", "clean@main", "up.txt"});
  EXPECT_EQ(cat.out, "ALPHA\nCHARLIE\n") << cat;
  std::string run = LastRunId();
  ASSERT_EQ(run.size(), 64u);
  RunResult show = Tusk(store_, {"show", "clean@main", "--json"});
  EXPECT_TRUE(HasSubstr(show.out, "\"run\":\"" + run + "\"")) << show;
  EXPECT_TRUE(HasSubstr(show.out, "\"step\":\"clean\"")) << show;
  EXPECT_EQ(ReadSetOf(run, "raw"), (std::set<std::string>{"a.txt", "dir/c.txt"}));
  RunResult json = Tusk(store_, {"show", "run:" + run.substr(0, 8), "--json"});
  EXPECT_TRUE(HasSubstr(json.out, "\"argv\":[\"sh\",\"-c\",")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"exit_status\":0")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"commit\":\"" + Head("raw@main") + "\"")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"files_read\":2")) << json;
  EXPECT_TRUE(HasSubstr(json.out, "\"env\":{\"TUSK_RUN_TEST_SEED\":\"1234\"}")) << "an unset variable is not listed" << json;
  RunResult files_of_commit = Tusk(store_, {"show", "clean@main", "--files"});
  EXPECT_EQ(files_of_commit.exit_code, 1) << files_of_commit;
  EXPECT_TRUE(HasSubstr(files_of_commit.err, "give run:ID")) << files_of_commit;
  RunResult fsck = Tusk(store_, {"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
}

TEST_F(RunTest, AProcessOfTheRunInAMountNamespaceOfItsOwnStillCounts) {
  // unshare -m (as a container runtime does) moves the reader out of the
  // run's namespace; it is still the run's process, and a background one
  // that outlives its parent (reparented to tusk run, the subreaper) too.
  if (!HaveProgram("unshare")) GTEST_SKIP() << "unshare is not installed";
  RunResult r = Run({"--in", "raw=raw@main", "--", "sh", "-c",
                     "unshare -m cat \"$TUSK_IN_raw/a.txt\" && "
                     "(unshare -m sh -c 'sleep 0.2; cat \"$TUSK_IN_raw/b.txt\" > /dev/null' &) && sleep 1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "alpha\n") << r;
  EXPECT_EQ(ReadSetOf(LastRunId(), "raw"), (std::set<std::string>{"a.txt", "b.txt"}));
}

TEST_F(RunTest, ASymlinkFollowedIsReadWithItsTargetSoANewTargetMakesTheOutputStale) {
  fs::create_symlink("a.txt", src_ + "/link");
  Must(Tusk(store_, {"import", src_, "raw@main", "-m", "with a link"}));
  RunResult r = Run({"--in", "raw=raw@main", "--out", "clean@main", "--", "sh", "-c",
                     "cat \"$TUSK_IN_raw/link\" > \"$TUSK_OUT/copy.txt\""});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ReadSetOf(LastRunId(), "raw"), (std::set<std::string>{"a.txt", "link"}));
  // The link now leads to a file the run never read: still, its input changed.
  fs::remove(src_ + "/link");
  fs::create_symlink("b.txt", src_ + "/link");
  Must(Tusk(store_, {"import", src_, "raw@main", "-m", "link retargeted"}));
  RunResult stale = Tusk(store_, {"stale", "--json"});
  EXPECT_TRUE(HasSubstr(stale.out, "\"stale\":true")) << stale;
  EXPECT_TRUE(HasSubstr(stale.out, "\"changed\":[\"link\"]")) << stale;
}

TEST_F(RunTest, FourWorkerProcessesRecordExactlyTheFilesTheyOpenedAndTheDirectoryTheyListed) {
  if (!HaveProgram("python3")) GTEST_SKIP() << "python3 is not installed";
  std::string script = work_ + "/load.py";
  Write(script,
        "import multiprocessing as mp, os\n"
        "root = os.environ['TUSK_IN_data']\n"
        "def load(name):\n"
        "    with open(os.path.join(root, 'imgs', name), 'rb') as f:\n"
        "        return len(f.read())\n"
        "if __name__ == '__main__':\n"
        "    names = sorted(os.listdir(os.path.join(root, 'imgs')))[::3]\n"
        "    with mp.Pool(4) as pool:\n"
        "        sizes = pool.map(load, names, chunksize=1)\n"
        "    print(len(sizes), sum(sizes))\n");
  RunResult r = Run({"--in", "data=raw@main", "--", "python3", script});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::set<std::string> expected;
  for (int i = 0; i < 40; i += 3) expected.insert("imgs/" + Name(i));
  EXPECT_EQ(r.out.substr(0, 3), "14 ") << r;
  std::string run = LastRunId();
  EXPECT_EQ(ReadSetOf(run, "data"), expected);
  RunResult show = Tusk(store_, {"show", "run:" + run, "--json"});
  EXPECT_TRUE(HasSubstr(show.out, "\"dirs_listed\":1")) << show;
}

TEST_F(RunTest, AReaderOutsideTheRunIsNotRecordedEvenThroughTheRunsOwnMount) {
  std::string info = work_ + "/info", done = work_ + "/done";
  RunResult result;
  std::thread runner([&] {
    result = Run({"--in", "raw=raw@main", "--", "sh", "-c",
                  "cat \"$TUSK_IN_raw/a.txt\" >/dev/null; echo \"$$ $TUSK_IN_raw\" > " + info +
                      ".tmp; mv " + info + ".tmp " + info + "; while [ ! -e " + done + " ]; do sleep 0.02; done"});
  });
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(info); }, 60)) << "the command never started";
  std::ifstream in(info);
  std::string pid, path;
  in >> pid >> path;
  // Through the command's own root: the same mount, from another namespace.
  std::string outside = ReadOr("/proc/" + pid + "/root" + path + "/b.txt");
  Write(done, "");
  runner.join();
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(outside, "bravo\n") << "the outside reader was served";
  EXPECT_EQ(ReadSetOf(LastRunId(), "raw"), (std::set<std::string>{"a.txt"}));
}

TEST_F(RunTest, AFileReadAgainFromThePageCacheByAnotherProcessOfTheRunIsRecordedOnce) {
  RunResult r = Run({"--in", "raw=raw@main", "--", "sh", "-c",
                     "cat \"$TUSK_IN_raw/b.txt\" >/dev/null; sh -c 'cat \"$TUSK_IN_raw/b.txt\" \"$TUSK_IN_raw/dir/d.txt\"'"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "bravo\ndelta\n");
  EXPECT_EQ(ReadSetOf(LastRunId(), "raw"), (std::set<std::string>{"b.txt", "dir/d.txt"}));
}

TEST_F(RunTest, AnInputBranchThatMovesDuringTheRunDoesNotChangeWhatTheRunSees) {
  std::string v1 = Head("raw@main");
  std::string started = work_ + "/started", go = work_ + "/go";
  RunResult result;
  std::thread runner([&] {
    result = Run({"--in", "raw=raw@main", "--", "sh", "-c",
                  "touch " + started + "; while [ ! -e " + go + " ]; do sleep 0.02; done; cat \"$TUSK_IN_raw/a.txt\""});
  });
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(started); }, 60));
  Write(src_ + "/a.txt", "alpha v2\n");
  RunResult imported = Tusk(store_, {"import", src_, "raw@main", "-m", "v2"});
  Write(go, "");
  runner.join();
  ASSERT_EQ(imported.exit_code, 0) << imported;
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "alpha\n");
  RunResult show = Tusk(store_, {"show", "run:" + LastRunId(), "--json"});
  EXPECT_TRUE(HasSubstr(show.out, "\"commit\":\"" + v1 + "\"")) << show;
}

TEST_F(RunTest, AFailingCommandCommitsNothingKeepsItsOutputAndPassesOnItsStatus) {
  std::string before = Head("clean@main");
  RunResult r = Run({"--in", "raw=raw@main", "--out", "clean@main", "--", "sh", "-c",
                     "echo partial > \"$TUSK_OUT/part.txt\"; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_TRUE(HasSubstr(r.err, "nothing was committed")) << r;
  EXPECT_EQ(Head("clean@main"), before);
  size_t at = r.err.find("kept in ");
  ASSERT_NE(at, std::string::npos) << r;
  std::string kept = r.err.substr(at + 8);
  kept = kept.substr(0, kept.find('\n'));
  EXPECT_EQ(ReadOr(kept + "/part.txt"), "partial\n");
  RunResult runs = Tusk(store_, {"runs"});
  EXPECT_TRUE(HasSubstr(runs.out, "exit 3")) << runs;
  EXPECT_TRUE(HasSubstr(runs.out, "(not committed)")) << runs;
}

TEST_F(RunTest, BadInputIsRefusedWithAMessageAndNothingIsRunOrRecorded) {
  std::string marker = work_ + "/ran";
  std::vector<std::string> cmd = {"--", "sh", "-c", "touch " + marker};
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--in", "x=nosuch@main"}, "nosuch"},
      {{"--in", "x=raw@nosuchbranch"}, "nosuchbranch"},
      {{"--in", "x=raw@main", "--in", "x=raw@main"}, "used twice"},
      {{"--in", "bad-name=raw@main"}, "letters, digits"},
      {{"--in", "raw@main"}, "NAME=DATASET@REF"},
      {{"--in", "x=raw@main", "--out", "raw@main"}, "also an input"},
      {{"--in", "x=raw", "--out", "raw@main"}, "also an input"},
      {{"--out", "clean@nosuch"}, "tusk branch clean@nosuch"},
      {{"--out", "nosuch@main"}, "nosuch"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), cmd.begin(), cmd.end());
    RunResult r = Run(args);
    EXPECT_EQ(r.exit_code, 125) << r;
    EXPECT_TRUE(HasSubstr(r.err, c.message)) << "expected '" << c.message << "'" << r;
  }
  RunResult missing = Run({"--in", "x=raw@main", "--", "no-such-command-here"});
  EXPECT_EQ(missing.exit_code, 127) << missing;
  EXPECT_TRUE(HasSubstr(missing.err, "no-such-command-here: command not found")) << missing;
  RunResult none = Run({"--in", "x=raw@main"});
  EXPECT_EQ(none.exit_code, 125) << none;
  EXPECT_TRUE(HasSubstr(none.err, "after --")) << none;
  EXPECT_FALSE(fs::exists(marker)) << "a refused run ran its command";
  RunResult runs = Tusk(store_, {"runs"});
  EXPECT_TRUE(HasSubstr(runs.out, "no runs recorded")) << runs;
  RunResult unknown = Tusk(store_, {"show", "run:abcdef12"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_TRUE(HasSubstr(unknown.err, "no run abcdef12")) << unknown;
  EXPECT_FALSE(fs::exists(store_ + "/runs") && !fs::is_empty(store_ + "/runs")) << "a refused run left a directory";
}

TEST_F(RunTest, TheCommandIsFoundAsExecvpWouldFindIt) {
  // tusk run searches PATH itself (before fork): a script without #! runs
  // under /bin/sh, and a file that is not executable is refused as execvp
  // refuses it.
  std::string script = work_ + "/no-shebang.sh";
  Write(script, "cat \"$TUSK_IN_raw/a.txt\"\n");
  fs::permissions(script, fs::perms::owner_all);
  RunResult shell = Run({"--in", "raw=raw@main", "--", script});
  EXPECT_EQ(shell.exit_code, 0) << shell;
  EXPECT_EQ(shell.out, "alpha\n") << shell;
  std::string plain = work_ + "/not-executable";
  Write(plain, "true\n");
  fs::permissions(plain, fs::perms::owner_read | fs::perms::owner_write);
  RunResult refused = Run({"--in", "raw=raw@main", "--", plain});
  EXPECT_EQ(refused.exit_code, 127) << refused;
  EXPECT_TRUE(HasSubstr(refused.err, "Permission denied")) << refused;
  std::string bin = work_ + "/bin";
  fs::create_directories(bin);
  fs::copy_file(script, bin + "/from-path");
  fs::permissions(bin + "/from-path", fs::perms::owner_all);
  std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  RunResult found = Run({"--in", "raw=raw@main", "--", "from-path"});
  ::setenv("PATH", old_path.c_str(), 1);
  EXPECT_EQ(found.exit_code, 0) << found;
  EXPECT_EQ(found.out, "alpha\n") << found;
}

TEST_F(RunTest, AnOutputBranchThatMovesDuringTheRunIsNotOverwrittenAndTheRunIsStillRecorded) {
  // The command itself moves the output branch (as a colleague's commit
  // would): the compare-and-set refuses the run's output, keeps it on disk,
  // and records the run alone, leaving no commit that never landed.
  std::string other = tmp_.Sub("other");
  fs::create_directories(other);
  Write(other + "/theirs.txt", "theirs\n");
  std::string mover = std::string(kTusk) + " --store '" + store_ + "' import '" + other + "' clean@main -m theirs";
  RunResult r = Run({"--in", "raw=raw@main", "--out", "clean@main", "--", "sh", "-c",
                     mover + " && echo mine > \"$TUSK_OUT/mine.txt\""});
  EXPECT_EQ(r.exit_code, 125) << r;  // tusk run's own failure
  EXPECT_TRUE(HasSubstr(r.err, "moved")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "is recorded, but its output was not committed")) << r;
  std::string run = LastRunId();
  ASSERT_FALSE(run.empty());
  RunResult show = Tusk(store_, {"show", "run:" + run, "--json"});
  EXPECT_EQ(show.exit_code, 0) << show;
  EXPECT_TRUE(HasSubstr(show.out, "\"commit\":null")) << show;
  RunResult log = Tusk(store_, {"log", "clean@main"});
  EXPECT_TRUE(HasSubstr(log.out, "theirs")) << log;
  EXPECT_FALSE(HasSubstr(log.out, "tusk run")) << log;
  size_t kept = 0;
  for (const auto& e : fs::recursive_directory_iterator(store_ + "/runs"))
    if (e.path().filename() == "mine.txt") kept++;
  EXPECT_EQ(kept, 1u) << "the refused output is kept for inspection";
  RunResult fsck = Tusk(store_, {"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  // Rebuilt from the packs alone, the index knows the run and no output of it.
  Must(Tusk(store_, {"fsck", "--rebuild-index"}));
  RunResult again = Tusk(store_, {"show", "run:" + run, "--json"});
  EXPECT_TRUE(HasSubstr(again.out, "\"commit\":null")) << again;
}

TEST_F(RunTest, AnOutputBranchWithStagedChangesIsRefused) {
  std::string mnt = tmp_.Sub("mnt");
  fs::create_directories(mnt);
  Must(Tusk(store_, {"mount", mnt}));
  Write(mnt + "/clean/main/staged.txt", "staged\n");
  RunResult r = Run({"--in", "x=raw@main", "--out", "clean@main", "--", "true"});
  Unmount(mnt);
  EXPECT_EQ(r.exit_code, 125) << r;
  EXPECT_TRUE(HasSubstr(r.err, "staged change")) << r;
}

TEST_F(RunTest, CtrlCEndsTheCommandAndTheRunCommitsNothing) {
  std::string before = Head("clean@main");
  std::string started = work_ + "/started";
  RunResult result;
  std::thread runner([&] {
    result = Run({"--in", "x=raw@main", "--out", "clean@main", "--", "sh", "-c",
                  "echo out > \"$TUSK_OUT/o.txt\"; echo $PPID > " + started + ".tmp; mv " + started + ".tmp " + started +
                      "; exec sleep 60"});
  });
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(started); }, 60));
  pid_t tusk_pid = std::stoi(ReadOr(started));
  // A terminal's Ctrl-C: SIGINT to the whole foreground process group.
  ::kill(-::getpgid(tusk_pid), SIGINT);
  runner.join();
  EXPECT_EQ(result.exit_code, 130) << result;
  EXPECT_EQ(Head("clean@main"), before);
}

TEST_F(RunTest, ARunKilledWithSigkillLeavesNoMountAndCommitsNothing) {
  std::string before = Head("clean@main");
  std::string started = work_ + "/started";
  RunResult result;
  std::thread runner([&] {
    result = Run({"--in", "x=raw@main", "--out", "clean@main", "--", "sh", "-c",
                  "echo out > \"$TUSK_OUT/o.txt\"; echo $PPID $$ > " + started + ".tmp; mv " + started + ".tmp " +
                      started + "; exec sleep 60"});
  });
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(started); }, 60));
  std::ifstream in(started);
  pid_t tusk_pid = 0, cmd_pid = 0;
  in >> tusk_pid >> cmd_pid;
  ASSERT_EQ(::kill(tusk_pid, SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] { return !ProcessAlive(tusk_pid); }, 30));
  // Its mounts were in a namespace nobody else sees, and the command is
  // told to stop (SIGTERM) when tusk run dies.
  EXPECT_TRUE(MountsUnder(store_).empty());
  EXPECT_TRUE(WaitUntil([&] { return !ProcessAlive(cmd_pid); }, 30)) << "the command outlived tusk run";
  ::kill(cmd_pid, SIGKILL);
  runner.join();
  EXPECT_EQ(Head("clean@main"), before);
  RunResult runs = Tusk(store_, {"runs"});
  EXPECT_TRUE(HasSubstr(runs.out, "no runs recorded")) << runs;
  RunResult fsck = Tusk(store_, {"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck;
  // The next run clears the dead run's mount points and keeps what its
  // command wrote.
  ASSERT_EQ(Run({"--in", "x=raw@main", "--", "true"}).exit_code, 0);
  size_t dirs = 0;
  for (const auto& e : fs::directory_iterator(store_ + "/runs")) {
    dirs++;
    EXPECT_FALSE(fs::exists(e.path() / "in")) << e.path();
    EXPECT_EQ(ReadOr((e.path() / "out/o.txt").string()), "out\n");
  }
  EXPECT_EQ(dirs, 1u);
}

TEST_F(RunTest, ACommandKilledByASignalIsToldApartFromOneThatExitsWithTheSameNumber) {
  RunResult killed = Run({"--in", "x=raw@main", "--", "sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.exit_code, 137) << killed;
  EXPECT_TRUE(HasSubstr(killed.err, "killed by signal 9")) << killed;
  RunResult exited = Run({"--in", "x=raw@main", "--", "sh", "-c", "exit 137"});
  EXPECT_EQ(exited.exit_code, 137) << exited;
  RunResult runs = Tusk(store_, {"runs"});
  EXPECT_TRUE(HasSubstr(runs.out, "killed by signal 9")) << runs;
  EXPECT_TRUE(HasSubstr(runs.out, "exit 137")) << runs;
}

}  // namespace
}  // namespace tusk::fstest
