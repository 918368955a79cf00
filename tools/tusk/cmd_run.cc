// tusk run / runs / show run:ID: run a command on pinned inputs, record what
// it read, and commit what it wrote (issue 10; man tusk-run).
//
// The inputs are served by fs/run_view.h in a private mount namespace; the
// output is a plain directory that becomes one commit when the command
// exits 0. Everything tusk itself says goes to stderr, so the command's
// standard output stays the command's.
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "fs/check_runner.h"
#include "fs/run_view.h"
#include "store/importer.h"
#include "store/lineage/lineage.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {


int64_t NowNs() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Feeds the stdout of argv run in `dir` to `sink` as it comes; true when
// the command exits 0 (stderr is dropped).
bool CaptureTo(const std::vector<std::string>& argv, const std::string& dir,
               const std::function<void(const char*, size_t)>& sink) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDERR_FILENO);
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    std::vector<char*> args;
    std::vector<std::string> storage = argv;
    for (auto& a : storage) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return false;
  }
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) sink(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// stdout of argv run in `dir`, when it exits 0.
std::optional<std::string> Capture(const std::vector<std::string>& argv, const std::string& dir) {
  std::string out;
  if (!CaptureTo(argv, dir, [&](const char* data, size_t len) { out.append(data, len); })) return std::nullopt;
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::optional<CodeVersion> CodeVersionOf(const std::string& dir) {
  auto top = Capture({"git", "rev-parse", "--show-toplevel"}, dir);
  if (!top) return std::nullopt;
  CodeVersion c;
  c.repository = Trim(*top);
  if (auto head = Capture({"git", "rev-parse", "--verify", "-q", "HEAD"}, dir)) c.commit = Trim(*head);
  if (auto branch = Capture({"git", "symbolic-ref", "--short", "-q", "HEAD"}, dir)) c.branch = Trim(*branch);
  if (!c.commit.empty()) {
    auto status = Capture({"git", "status", "--porcelain", "--untracked-files=no"}, dir);
    c.dirty = status && !status->empty();
    if (c.dirty) {
      // Hashed as it streams: a diff may be larger than memory allows.
      Sha256 digest;
      if (CaptureTo({"git", "diff", "--no-ext-diff", "--binary", "HEAD"}, dir,
                    [&](const char* data, size_t len) { digest.Update(data, len); }))
        c.diff_digest = digest.Finish().Hex();
    }
  }
  return c;
}

namespace {

std::string RandomHex(size_t n) {
  std::random_device rd;
  std::string out;
  const char* digits = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) out += digits[rd() % 16];
  return out;
}

bool IsInputName(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

}  // namespace

std::string CommandText(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](unsigned char c) {
      return std::isalnum(c) || std::strchr("-_./=:,+@%", c);
    });
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

namespace {

int RunRunImpl(const RunOpts& o, Cli& cli, RunOutcome* outcome);

}  // namespace

int RunRun(const RunOpts& o, Cli& cli, RunOutcome* outcome) {
  RunOutcome ignored;
  if (!outcome) outcome = &ignored;
  return RunRunImpl(o, cli, outcome);
}

namespace {

struct PlannedInput {
  RunInput record;
  ObjectId root;  // of the input commit's tree
};

// Runs that ended without cleaning up (tusk run killed) leave
// STORE/runs/<key>/ behind with a lock nobody holds: their mount points are
// removed, and the directory too unless the command left output in out/.
void SweepDeadRuns(const std::string& runs_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(runs_dir, ec)) {
    std::string dir = entry.path().string();
    int fd = ::open((dir + "/lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    // The lock stays held while the directory goes: a run that is just
    // creating it (lock file made, not yet locked) waits, then sees its
    // lock file unlinked and starts over.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      std::error_code ignored;
      std::filesystem::remove_all(dir + "/in", ignored);
      if (std::filesystem::is_empty(dir + "/out", ignored) || !std::filesystem::exists(dir + "/out", ignored))
        std::filesystem::remove_all(dir, ignored);
    }
    ::close(fd);
  }
}

// tusk run's own failure: the message, and a status no command's is taken for.
int RunFail(const Status& status) {
  Fail(status);
  return kRunToolFailed;
}
int RunFail(const std::string& message) {
  Fail(message);
  return kRunToolFailed;
}

int RunRunImpl(const RunOpts& o, Cli& cli, RunOutcome* outcome) {
  // Before any thread exists: the private mount namespace (unshare refuses
  // a multi-threaded process) and the signals the wait takes over.
  if (o.command.empty()) return RunFail("tusk run: give the command after --, e.g. tusk run --in data=ds@main -- ./train.sh");
  fs::BlockRunSignals();

  RunRecord run;
  run.argv = o.command;
  run.message = o.message;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return RunFail(std::string("getcwd: ") + std::strerror(errno));
  run.cwd = cwd;
  auto meta = ParseMetadataFlags(o.meta);
  if (!meta.ok()) return RunFail(meta.status());
  run.meta = std::move(meta).value();
  for (const auto& name : o.env) {
    if (name.empty() || name.find('=') != std::string::npos)
      return RunFail("--env takes the name of an environment variable, got '" + name + "'");
    if (const char* v = std::getenv(name.c_str())) run.env.emplace_back(name, v);
  }

  auto repo_or = cli.OpenStore();
  if (!repo_or.ok()) return RunFail(repo_or.status());
  Repository& repo = **repo_or;

  // Inputs, resolved now: a branch that moves later does not change them.
  std::vector<PlannedInput> inputs;
  std::set<std::string> names;
  for (const auto& spec : o.in) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) return RunFail("--in takes NAME=DATASET@REF, got '" + spec + "'");
    std::string name = spec.substr(0, eq);
    if (!IsInputName(name))
      return RunFail("input name '" + name + "' must be letters, digits and '_' (it names the variable TUSK_IN_" + name + ")");
    if (!names.insert(name).second) return RunFail("input name '" + name + "' is used twice");
    auto ref = ParseRef(spec.substr(eq + 1), true);
    if (!ref.ok()) return RunFail(ref.status().Annotate("--in " + name));
    auto commit_id = repo.Resolve(*ref);
    if (!commit_id.ok()) return RunFail(commit_id.status().Annotate("--in " + name));
    auto commit = repo.ReadCommit(*commit_id);
    if (!commit.ok()) return RunFail(commit.status().Annotate("--in " + name));
    PlannedInput in;
    in.record.name = name;
    in.record.dataset = ref->dataset;
    in.record.ref = spec.substr(eq + 1);
    in.record.commit = *commit_id;
    in.root = commit->root;
    inputs.push_back(std::move(in));
  }

  // The output branch: it must exist, must not be an input, and must have
  // nothing staged (its commit would leave those changes on an old base).
  std::optional<RefSpec> out;
  if (!o.out.empty()) {
    auto spec = ParseNewRefName(o.out, "branch");
    if (!spec.ok()) return RunFail(spec.status().Annotate("--out"));
    if (Status st = repo.CheckDataset(spec->dataset); !st.ok()) return RunFail(st.Annotate("--out"));
    auto head = repo.GetBranch(spec->dataset, spec->rev);
    if (!head.ok()) {
      if (head.status().code() == Status::Code::kNotFound)
        return RunFail("--out " + o.out + ": no branch '" + spec->rev + "' in dataset '" + spec->dataset +
                    "'; create it first (tusk branch " + o.out + ")");
      return RunFail(head.status().Annotate("--out"));
    }
    for (const auto& in : inputs) {
      auto ref = ParseRef(in.record.ref, true);
      std::string rev = ref.ok() && !ref->rev.empty() ? ref->rev : std::string(kDefaultBranch);
      if (in.record.dataset == spec->dataset && rev == spec->rev && ref.ok() && ref->ancestors == 0)
        return RunFail("--out " + o.out + " is also an input (" + in.record.name + "); a run cannot write the branch it reads");
    }
    auto staged = StagedChangeCount(repo, spec->dataset, spec->rev);
    if (!staged.ok()) return RunFail(staged.status().Annotate("--out " + o.out));
    if (*staged > 0)
      return RunFail("--out " + o.out + " has " + std::to_string(*staged) +
                  " staged change(s) in its workspace; commit or reset them first (tusk status " + o.out + ")");
    run.out_dataset = spec->dataset;
    run.out_branch = spec->rev;
    run.out_parent = *head;
    out = *spec;
  }

  run.code = CodeVersionOf(run.cwd);
  run.user = DefaultAuthor();
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) run.host = host;
  run.tusk_version = kTuskVersion;

  // STORE/runs/<key>/in/<NAME>: mount points (mounted only in this run's
  // namespace); STORE/runs/<key>/out: what the command writes.
  std::error_code ec;
  std::string store_dir = std::filesystem::absolute(repo.dir(), ec).lexically_normal().string();
  if (ec) return RunFail("store directory " + repo.dir() + ": " + ec.message());
  SweepDeadRuns(store_dir + "/runs");
  std::string run_dir;
  int lock_fd = -1;
  for (int attempt = 0;; attempt++) {
    run_dir = store_dir + "/runs/" + RandomHex(16);
    std::filesystem::create_directories(run_dir + "/in", ec);
    if (ec) return RunFail("create " + run_dir + ": " + ec.message());
    ::chmod((store_dir + "/runs").c_str(), 0700);
    // Held until this process exits: a later run sees the directory is live.
    lock_fd = ::open((run_dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX) != 0) return RunFail("lock " + run_dir + "/lock: " + std::strerror(errno));
    struct stat st;
    if (::fstat(lock_fd, &st) == 0 && st.st_nlink > 0) break;
    ::close(lock_fd);  // another run swept it before it was locked
    if (attempt == 10) return RunFail("could not set up a run directory in " + store_dir + "/runs");
  }
  std::unique_ptr<int, void (*)(int*)> lock_guard(&lock_fd, [](int* fd) { ::close(*fd); });
  // Unmounting a view evicts every inode the kernel holds for it (seconds
  // after a million files were read), and freeing its nodes takes about as
  // long: once the command is done, both go on in this thread while the run
  // is recorded and its output committed. The mount points go only after.
  std::jthread teardown;
  auto remove_inputs = [&] {
    if (teardown.joinable()) teardown.join();
    std::filesystem::remove_all(run_dir + "/in", ec);
  };
  auto remove_run_dir = [&] {
    if (teardown.joinable()) teardown.join();
    std::filesystem::remove_all(run_dir, ec);
  };
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<fs::ViewInput> views;
  for (const auto& in : inputs) {
    std::string mnt = run_dir + "/in/" + in.record.name;
    if (::mkdir(mnt.c_str(), 0700) != 0) {
      remove_run_dir();
      return RunFail("create " + mnt + ": " + std::strerror(errno));
    }
    views.push_back({in.record.name, in.record.dataset, in.record.commit, mnt});
    env.emplace_back("TUSK_IN_" + in.record.name, mnt);
  }
  std::string out_dir = run_dir + "/out";
  if (out) {
    if (::mkdir(out_dir.c_str(), 0755) != 0) {
      remove_run_dir();
      return RunFail("create " + out_dir + ": " + std::strerror(errno));
    }
    env.emplace_back("TUSK_OUT", out_dir);
  }

  if (Status st = fs::EnterPrivateNamespace(); !st.ok()) {
    remove_run_dir();
    return RunFail(st);
  }
  // As tusk mount: the views' reads check each record's CRC32C, and
  // re-hashing every chunk (SHA-256) is left to fsck (it cost a third of a
  // large read). This process reads no chunk for anything else.
  repo.set_verify_chunk_hashes(false);
  auto view = fs::RunView::Mount(&repo, views);
  if (!view.ok()) {
    remove_run_dir();
    return RunFail(view.status().Annotate("nothing was run"));
  }

  run.start_ns = NowNs();
  fs::CommandResult result = fs::RunCommand(o.command, env);
  run.end_ns = NowNs();
  std::vector<ReadSet> reads;
  for (size_t i = 0; i < inputs.size(); i++) reads.push_back((*view)->TakeReads(i));
  teardown = std::jthread([view = std::move(view).value()]() mutable { view.reset(); });  // ~RunView unmounts
  // Once recorded for good, the read sets are freed beside the rest (a
  // million paths take a second).
  std::jthread reads_free;
  auto free_reads = [&] { reads_free = std::jthread([r = std::move(reads)]() mutable { r.clear(); }); };
  if (!result.started) {
    remove_run_dir();
    std::cerr << "tusk: error: " << result.error << "; nothing was run or recorded" << std::endl;
    return 127;
  }
  run.exit_status = result.signal ? kRunSignalBase + result.signal : result.exit_status;

  // The run record, with the read set of every input. When the output is
  // committed, the record goes into the commit's session: one pack and one
  // transaction per run, so lineage reads one pack per step.
  auto record = [&](WriteSession& session) -> Result<ObjectId> {
    run.inputs.clear();
    for (size_t i = 0; i < inputs.size(); i++) {
      Status st = WriteReadSet(repo, session, inputs[i].root, reads[i], &inputs[i].record);
      if (!st.ok()) return st.Annotate("recording what input " + inputs[i].record.name + " read");
      run.inputs.push_back(inputs[i].record);
    }
    return session.WriteRun(run);
  };
  // A session holding the run record alone, flushed.
  auto record_alone = [&]() -> Result<ObjectId> {
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WriteSession> session, repo.BeginWrite());
    TUSK_ASSIGN_OR_RETURN(ObjectId id, record(*session));
    TUSK_RETURN_IF_ERROR(session->Flush());
    return id;
  };
  const bool commit_output = out && result.exit_status == 0;
  std::unique_ptr<WriteSession> commit_session;
  ObjectId run_id;
  if (commit_output) {
    auto session = repo.BeginWrite();
    if (!session.ok()) return RunFail(session.status().Annotate("the run was not recorded"));
    commit_session = std::move(session).value();
    auto id = record(*commit_session);
    if (!id.ok()) return RunFail(id.status().Annotate("the run was not recorded"));
    run_id = *id;
  } else {
    auto id = record_alone();
    if (!id.ok()) return RunFail(id.status().Annotate("the run was not recorded"));
    run_id = *id;
  }
  outcome->run = run_id;
  if (!commit_output) free_reads();
  for (const auto& in : run.inputs)
    std::cerr << "tusk: input " << in.name << " = " << Printable(in.dataset) << "@" << in.commit.ShortHex() << ": "
              << in.files_read << " file(s) read, " << in.dirs_listed << " director" << (in.dirs_listed == 1 ? "y" : "ies")
              << " listed" << std::endl;

  if (result.exit_status != 0) {
    std::cerr << "tusk: run:" << run_id.ShortHex() << " recorded; the command "
              << (result.signal ? "was killed by signal " + std::to_string(result.signal)
                                : "exited with status " + std::to_string(result.exit_status));
    if (out) {
      std::cerr << "; nothing was committed to " << o.out << "; its output is kept in " << out_dir;
      remove_inputs();
    } else {
      remove_run_dir();
    }
    std::cerr << std::endl;
    return result.exit_status;
  }
  if (!out) {
    std::cerr << "tusk: run:" << run_id.ShortHex() << " recorded (exit status 0)" << std::endl;
    remove_run_dir();
    return 0;
  }

  ImportOptions options;
  options.message = o.message.empty() ? "tusk run: " + CommandText(o.command) : o.message;
  options.author = o.author.empty() ? DefaultAuthor() : o.author;
  options.metadata = run.meta;
  for (const auto& in : run.inputs) options.provenance.push_back({in.dataset, in.commit});
  options.expected_head = run.out_parent;
  options.commit_unchanged = true;
  options.run = run_id;
  options.warn = [](const std::string& msg) { Warn(msg); };
  options.session = commit_session.get();
  options.prepare_commit = fs::CheckHook(&repo, run.out_dataset, o.skip_checks, options.author);
  auto imported = ImportDirectory(repo, out_dir, out->dataset, out->rev, options);
  if (!imported.ok()) {
    remove_inputs();
    // The shared session is dropped with everything in it (no commit that
    // never landed may reach a pack); the run is recorded on its own.
    commit_session.reset();
    auto alone = record_alone();
    if (!alone.ok())
      return RunFail(imported.status().Annotate("the output was not committed (kept in " + out_dir +
                                             "), and the run was not recorded either: " + alone.status().ToString()));
    return RunFail(imported.status().Annotate("run:" + run_id.ShortHex() + " is recorded, but its output was not committed (kept in " +
                                           out_dir + ")"));
  }
  outcome->output = imported->commit;
  free_reads();
  std::cerr << "tusk: run:" << run_id.ShortHex() << " committed " << imported->commit->ShortHex() << " to " << o.out << ": "
            << imported->files << " file(s), " << HumanBytes(imported->total_bytes) << std::endl;
  remove_run_dir();
  return 0;
}

// ---- runs, show run:ID ----

}  // namespace

std::string StatusText(int exit_status) {
  if (exit_status == 0) return "ok";
  if (exit_status < 0) return "not started";
  if (exit_status >= kRunSignalBase) return "killed by signal " + std::to_string(exit_status - kRunSignalBase);
  return "exit " + std::to_string(exit_status);
}

namespace {

// Per input, the files read (with --files), in path order.
using ReadLists = std::vector<std::vector<std::string>>;

Result<ReadLists> ReadFilesOf(Repository& repo, const RunRecord& r) {
  ReadLists out;
  for (const auto& in : r.inputs) {
    out.emplace_back();
    TUSK_RETURN_IF_ERROR(ForEachReadFile(repo, in.read_tree, [&](const std::string& path, const TreeEntry&) {
      out.back().push_back(path);
      return Status::Ok();
    }));
  }
  return out;
}

void RunJson(Json& j, const ObjectId& id, const RunRecord& r, const std::vector<ObjectId>& outputs,
             const ReadLists* files = nullptr) {
  j.BeginObject().Key("run").String(id.Hex());
  j.Key("argv").BeginArray();
  for (const auto& a : r.argv) j.String(a);
  j.EndArray();
  j.Key("cwd").String(r.cwd).Key("start_ns").Signed(r.start_ns).Key("end_ns").Signed(r.end_ns);
  j.Key("exit_status").Signed(r.exit_status).Key("user").String(r.user).Key("host").String(r.host);
  j.Key("tusk_version").String(r.tusk_version).Key("message").String(r.message);
  j.Key("inputs").BeginArray();
  for (size_t i = 0; i < r.inputs.size(); i++) {
    const RunInput& in = r.inputs[i];
    j.BeginObject().Key("name").String(in.name).Key("dataset").String(in.dataset).Key("ref").String(in.ref);
    j.Key("commit").String(in.commit.Hex()).Key("read_tree").String(in.read_tree.Hex());
    j.Key("files_read").Number(in.files_read).Key("dirs_listed").Number(in.dirs_listed);
    if (files) {
      j.Key("files").BeginArray();
      for (const auto& p : (*files)[i]) j.String(p);
      j.EndArray();
    }
    j.EndObject();
  }
  j.EndArray();
  j.Key("env").BeginObject();
  for (const auto& [k, v] : r.env) j.Key(k).String(v);
  j.EndObject().Key("metadata").BeginObject();
  for (const auto& [k, v] : r.meta) j.Key(k).String(v);
  j.EndObject().Key("code");
  if (r.code) {
    j.BeginObject().Key("repository").String(r.code->repository).Key("commit").String(r.code->commit);
    j.Key("branch").String(r.code->branch).Key("dirty").Bool(r.code->dirty).Key("diff_sha256").String(r.code->diff_digest);
    j.EndObject();
  } else {
    j.Null();
  }
  j.Key("output");
  if (!r.out_dataset.empty()) {
    j.BeginObject().Key("dataset").String(r.out_dataset).Key("branch").String(r.out_branch).Key("parent");
    if (r.out_parent) j.String(r.out_parent->Hex());
    else j.Null();
    j.Key("commit");
    if (!outputs.empty()) j.String(outputs.front().Hex());
    else j.Null();
    j.EndObject();
  } else {
    j.Null();
  }
  j.EndObject();
}

int RunRuns(Cli& cli, bool json) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto runs = (*repo)->ListRuns();
  if (!runs.ok()) return Fail(runs.status());
  if (json) {
    Json j;
    j.BeginArray();
    for (const auto& s : *runs) RunJson(j, s.id, s.record, s.outputs);
    j.EndArray().Print();
    return 0;
  }
  if (runs->empty()) {
    std::cout << "no runs recorded (tusk run records one)" << std::endl;
    return 0;
  }
  for (const auto& s : *runs) {
    const RunRecord& r = s.record;
    std::cout << "run:" << s.id.ShortHex() << "  " << FormatTime(r.start_ns / 1000000000) << "  " << StatusText(r.exit_status);
    for (const auto& in : r.inputs)
      std::cout << "  " << Printable(in.name) << "=" << Printable(in.dataset) << "@" << in.commit.ShortHex(8) << " ("
                << in.files_read << " read)";
    if (!r.out_dataset.empty())
      std::cout << "  -> " << Printable(r.out_dataset) << "@"
                << (s.outputs.empty() ? Printable(r.out_branch) + " (not committed)" : s.outputs.front().ShortHex(8));
    std::cout << "\n    " << Printable(CommandText(r.argv)) << "\n";
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace

int ShowRun(Cli& cli, const std::string& text, bool json, bool with_files) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto id = (*repo)->ResolveRun(text);
  if (!id.ok()) return Fail(id.status());
  auto r = (*repo)->ReadRun(*id);
  if (!r.ok()) return Fail(r.status());
  auto outputs = (*repo)->RunOutputs(*id);
  if (!outputs.ok()) return Fail(outputs.status());
  ReadLists files;
  if (with_files) {
    auto read = ReadFilesOf(**repo, *r);
    if (!read.ok()) return Fail(read.status());
    files = std::move(read).value();
  }
  if (json) {
    Json j;
    RunJson(j, *id, *r, *outputs, with_files ? &files : nullptr);
    j.Print();
    return 0;
  }
  std::cout << "run " << id->Hex() << "\n";
  std::cout << "Command: " << Printable(CommandText(r->argv)) << "\n";
  std::cout << "Dir:     " << Printable(r->cwd) << "\n";
  std::cout << "Started: " << FormatTime(r->start_ns / 1000000000) << " (" << (r->end_ns - r->start_ns) / 1000000
            << " ms)\n";
  std::cout << "Status:  " << StatusText(r->exit_status) << "\n";
  std::cout << "By:      " << Printable(r->user) << " on " << Printable(r->host) << " (" << Printable(r->tusk_version) << ")\n";
  if (r->code) {
    std::cout << "Code:    " << Printable(r->code->repository) << " at "
              << (r->code->commit.empty() ? std::string("(no commit)") : r->code->commit.substr(0, 12))
              << (r->code->branch.empty() ? std::string() : " (" + Printable(r->code->branch) + ")")
              << (r->code->dirty ? ", dirty (diff sha256 " + r->code->diff_digest.substr(0, 12) + ")" : std::string())
              << "\n";
  }
  for (const auto& in : r->inputs)
    std::cout << "Input:   " << Printable(in.name) << " = " << Printable(in.ref) << " -> " << Printable(in.dataset) << "@"
              << in.commit.ShortHex() << ": " << in.files_read << " file(s) read, " << in.dirs_listed << " listed\n";
  if (!r->out_dataset.empty()) {
    std::cout << "Output:  " << Printable(r->out_dataset) << "@" << Printable(r->out_branch) << ": "
              << (outputs->empty() ? std::string("not committed") : "committed " + outputs->front().ShortHex()) << "\n";
  }
  for (const auto& [k, v] : r->env) std::cout << "Env:     " << Printable(k) << "=" << Printable(v) << "\n";
  for (const auto& [k, v] : r->meta) std::cout << "Meta:    " << Printable(k) << "=" << Printable(v) << "\n";
  if (!r->message.empty()) std::cout << "\n    " << Printable(r->message) << "\n";
  if (with_files) {
    std::cout << "\nFiles read:\n";
    for (size_t i = 0; i < r->inputs.size(); i++)
      for (const auto& p : files[i]) std::cout << "  " << Printable(r->inputs[i].name) << ": " << Printable(p) << "\n";
  }
  std::cout << std::flush;
  return 0;
}

void AddRunCommands(CLI::App& app, Cli& cli) {
  auto o = std::make_shared<RunOpts>();
  CLI::App* run = app.add_subcommand(
      "run", "Run a command on pinned dataset versions, record what it read, and commit what it wrote (tusk run [OPTIONS] -- CMD ARGS)");
  run->add_option("--in", o->in, "NAME=DATASET@REF: an input, served read-only at $TUSK_IN_NAME (repeatable)");
  run->add_option("--out", o->out, "DATASET@BRANCH: commit what the command writes to $TUSK_OUT when it exits 0");
  run->add_option("-m,--message", o->message, "Message of the run and of its output commit");
  run->add_option("--author", o->author, "Author of the output commit (default $TUSK_AUTHOR, else $USER)");
  run->add_option("--meta", o->meta, "KEY=VALUE metadata of the run and its output commit (repeatable)");
  run->add_option("--env", o->env, "NAME: record this environment variable's value (repeatable)");
  AddSkipChecksOption(run, &o->skip_checks);
  // main() splits off everything after "--": the command, options and all.
  run->footer(
      "The command and its arguments follow --: tusk run --in data=ds@main -- python3 train.py --lr 0.1\n"
      "Exit status: the command's; 127 when it cannot be executed; 125 when tusk run itself fails.");
  run->callback([o, &cli] {
    o->command = cli.command;
    cli.exit_code = RunRun(*o, cli);
  });

  auto runs_json = std::make_shared<bool>(false);
  CLI::App* runs = app.add_subcommand("runs", "List recorded runs, oldest first");
  AddJsonFlag(runs, runs_json.get());
  runs->callback([runs_json, &cli] { cli.exit_code = RunRuns(cli, *runs_json); });
}

}  // namespace tusk::cli
