#include "fs/check_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include "fs/run_view.h"
#include "store/backend/env.h"
#include "store/checks/builtin.h"
#include "store/diff.h"

extern char** environ;

namespace tusk::fs {
namespace {

constexpr char kTrustFile[] = "trusted-checks";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Keeps the last `cap` bytes of what is appended.
class Tail {
 public:
  explicit Tail(size_t cap) : cap_(cap) {}
  void Append(std::string_view s) {
    total_ += s.size();
    buf_.append(s);
    if (buf_.size() > 2 * cap_) buf_.erase(0, buf_.size() - cap_);
  }
  std::string Take() {
    if (buf_.size() > cap_) buf_.erase(0, buf_.size() - cap_);
    if (total_ > cap_) {
      // Start at a line boundary when one is near, and say what was cut.
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos && nl < 256) buf_.erase(0, nl + 1);
      return "[... " + std::to_string(total_ - buf_.size()) + " bytes of output before this were cut]\n" + buf_;
    }
    return buf_;
  }

 private:
  size_t cap_;
  uint64_t total_ = 0;
  std::string buf_;
};

struct Captured {
  bool started = false, timed_out = false;
  int exit_status = 0;
  std::string output;
};

// Runs argv in its own process group with stdout and stderr into a pipe
// (drained as it comes, keeping the tail), killing the group after
// `timeout_sec`.
Captured RunCaptured(const std::vector<std::string>& argv, const std::vector<std::string>& env_add,
                     const std::string& cwd, uint32_t timeout_sec) {
  Captured out;
  Tail tail(kCheckOutputTail);
  std::string program;
  if (int err = FindProgram(argv[0], &program); err != 0) {
    out.output = argv[0] + ": " + (err == ENOENT ? std::string("command not found") : std::strerror(err)) + "\n";
    out.exit_status = 127;
    return out;
  }
  // The check's variables replace any of the same name (a check run from
  // inside another check's command, say): getenv finds the first.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; e++) {
    std::string_view kv = *e;
    std::string_view key = kv.substr(0, kv.find('=') + 1);
    bool replaced = false;
    for (const auto& add : env_add) replaced = replaced || add.compare(0, key.size(), key) == 0;
    if (!replaced) env_storage.emplace_back(kv);
  }
  for (const auto& kv : env_add) env_storage.push_back(kv);
  std::vector<char*> envp, args;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = argv;
  for (auto& a : argv_storage) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<char*> shell_args = {const_cast<char*>("sh"), program.data()};
  for (size_t i = 1; i < argv_storage.size(); i++) shell_args.push_back(argv_storage[i].data());
  shell_args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    out.output = std::string("pipe: ") + std::strerror(errno) + "\n";
    out.exit_status = 126;
    return out;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(fds[1], 1) < 0 || ::dup2(fds[1], 2) < 0) ::_exit(126);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(program.c_str(), args.data(), envp.data());
    if (errno == ENOEXEC) ::execve("/bin/sh", shell_args.data(), envp.data());
    ::_exit(126);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    out.output = std::string("fork: ") + std::strerror(errno) + "\n";
    out.exit_status = 126;
    return out;
  }
  out.started = true;
  ::setpgid(pid, pid);  // also here: no race with the child's own call
  int64_t deadline = NowMs() + int64_t{timeout_sec} * 1000;
  char buf[65536];
  bool open = true;
  while (open) {
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      out.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) tail.Append(std::string_view(buf, static_cast<size_t>(n)));
    else if (n == 0 || errno != EINTR) open = false;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Whatever the check left running in its group goes too.
  ::kill(-pid, SIGKILL);
  out.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  out.output = tail.Take();
  if (out.timed_out)
    out.output += "[killed after the timeout of " + std::to_string(timeout_sec) + " s]\n";
  return out;
}

struct ChangedPaths {
  std::vector<std::string> changed, deleted;
};

Status ListAllFiles(Repository& repo, const ObjectId& dir, const std::string& prefix, std::vector<std::string>* out) {
  TUSK_ASSIGN_OR_RETURN(auto entries, ReadDirectory(repo, dir));
  for (const auto& e : entries) {
    if (e.kind == EntryKind::kDirectory) TUSK_RETURN_IF_ERROR(ListAllFiles(repo, e.tree, prefix + e.name + "/", out));
    else out->push_back(prefix + e.name);
  }
  return Status::Ok();
}

Result<ChangedPaths> Changed(Repository& repo, const ObjectId& root, const std::optional<ObjectId>& parent_root) {
  ChangedPaths out;
  if (!parent_root) {
    TUSK_RETURN_IF_ERROR(ListAllFiles(repo, root, "", &out.changed));
    return out;
  }
  TUSK_ASSIGN_OR_RETURN(auto changes, DiffTrees(repo, *parent_root, root));
  for (const auto& c : changes) {
    switch (c.kind) {
      case Change::Kind::kDeleted: out.deleted.push_back(c.path); break;
      case Change::Kind::kRenamed:
        out.deleted.push_back(c.old_path);
        out.changed.push_back(c.path);
        break;
      default: out.changed.push_back(c.path); break;
    }
  }
  return out;
}

std::string Hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char ch : s) {
    out += digits[ch >> 4];
    out += digits[ch & 15];
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    auto v = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    int hi = v(s[i]), lo = v(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// Reads the results `tusk check-candidate` prints (FormatCheckResult).
Result<std::vector<CheckResult>> ParseResults(const std::string& text) {
  std::vector<CheckResult> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
      size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (f.size() != 5 || f[0] != "check") return Status::Corruption("tusk check-candidate printed an unexpected line");
    auto name = Unhex(f[1]);
    auto output = Unhex(f[4]);
    if (!name || !output || (f[2] != "passed" && f[2] != "failed"))
      return Status::Corruption("tusk check-candidate printed an unexpected line");
    CheckResult r;
    r.name = *name;
    r.outcome = f[2] == "passed" ? CheckResult::Outcome::kPassed : CheckResult::Outcome::kFailed;
    r.duration_ms = std::strtoull(f[3].c_str(), nullptr, 10);
    r.output_tail = *output;
    out.push_back(std::move(r));
  }
  return out;
}

std::string ExePath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("tusk");
}

}  // namespace

std::string FormatCheckResult(const CheckResult& r) {
  return "check\t" + Hex(r.name) + "\t" + (r.outcome == CheckResult::Outcome::kPassed ? "passed" : "failed") + "\t" +
         std::to_string(r.duration_ms) + "\t" + Hex(r.output_tail) + "\n";
}

Result<std::vector<CheckResult>> RunChecks(Repository& repo, const DatasetSettings& settings, const CheckTarget& target,
                                           const CheckRunOptions& options) {
  std::optional<ObjectId> parent_root;
  if (options.parent && !options.all_paths) {
    TUSK_ASSIGN_OR_RETURN(Commit parent, repo.ReadCommit(*options.parent));
    parent_root = parent.root;
  }
  TUSK_ASSIGN_OR_RETURN(ChangedPaths paths, Changed(repo, target.root, parent_root));
  bool all_paths = !parent_root;

  // The view and the path lists are made only when a command check needs them.
  std::unique_ptr<RunView> view;
  std::string scratch, mountpoint;
  auto cleanup = [&] {
    if (view) view->Unmount();
    view.reset();
    if (!scratch.empty()) {
      ::unlink((scratch + "/changed").c_str());
      ::unlink((scratch + "/deleted").c_str());
      ::rmdir(mountpoint.c_str());
      ::rmdir(scratch.c_str());
    }
  };
  auto prepare_view = [&]() -> Status {
    if (view) return Status::Ok();
    char tmpl[] = "/tmp/tusk-check-XXXXXX";
    if (!::mkdtemp(tmpl)) return Status::FromErrno(errno, "making a directory for the check's view");
    scratch = tmpl;
    mountpoint = scratch + "/tree";
    if (::mkdir(mountpoint.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + mountpoint);
    auto write_list = [&](const std::string& path, const std::vector<std::string>& list) -> Status {
      std::string text;
      for (const auto& p : list) text += p + "\n";
      return WriteFileAtomically(Env::Default(), path, text);
    };
    TUSK_RETURN_IF_ERROR(write_list(scratch + "/changed", paths.changed));
    TUSK_RETURN_IF_ERROR(write_list(scratch + "/deleted", paths.deleted));
    ViewInput in{"candidate", target.dataset, ObjectId(), mountpoint, target.root};
    TUSK_ASSIGN_OR_RETURN(view, RunView::Mount(&repo, {in}));
    return Status::Ok();
  };

  std::vector<CheckResult> results;
  for (const auto& def : settings.checks) {
    CheckResult r;
    r.name = def.name;
    int64_t start = NowMs();
    if (!def.builtin.empty()) {
      auto b = RunBuiltinCheck(repo, target.root, def.builtin, def.args, paths.changed, all_paths);
      if (!b.ok()) {
        r.outcome = CheckResult::Outcome::kFailed;
        r.output_tail = "the built-in check could not run: " + b.status().message() + "\n";
      } else {
        r.outcome = b->passed ? CheckResult::Outcome::kPassed : CheckResult::Outcome::kFailed;
        Tail tail(kCheckOutputTail);
        tail.Append(b->output);
        r.output_tail = tail.Take();
      }
    } else {
      if (Status st = prepare_view(); !st.ok()) {
        cleanup();
        return st.Annotate("the view for check '" + def.name + "'");
      }
      std::vector<std::string> env = {"TUSK_CHECK_TREE=" + mountpoint, "TUSK_CHECK_CHANGED=" + scratch + "/changed",
                                      "TUSK_CHECK_DELETED=" + scratch + "/deleted", "TUSK_CHECK_NAME=" + def.name,
                                      "TUSK_DATASET=" + target.dataset};
      if (target.commit) env.push_back("TUSK_CHECK_COMMIT=" + target.commit->Hex());
      Captured c = RunCaptured(def.command, env, mountpoint, def.timeout_sec);
      r.outcome = c.exit_status == 0 && !c.timed_out ? CheckResult::Outcome::kPassed : CheckResult::Outcome::kFailed;
      r.output_tail = c.output;
      if (r.outcome == CheckResult::Outcome::kFailed && !c.timed_out)
        r.output_tail += "[exit status " + std::to_string(c.exit_status) + "]\n";
    }
    r.duration_ms = static_cast<uint64_t>(NowMs() - start);
    if (options.on_result) options.on_result(r);
    results.push_back(std::move(r));
  }
  cleanup();
  return results;
}

// ---- trust ----

Result<std::set<ObjectId>> TrustedChecks(Repository& repo) {
  std::set<ObjectId> out;
  auto text = ReadWholeFile(Env::Default(), repo.dir() + "/" + kTrustFile);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kNotFound) return out;
    return text.status();
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto id = ObjectId::FromHex(line.substr(0, line.find(' ')));
    if (id) out.insert(*id);
  }
  return out;
}

Status TrustChecks(Repository& repo, const std::vector<const CheckDefinition*>& checks) {
  std::string path = repo.dir() + "/" + kTrustFile;
  auto text = ReadWholeFile(Env::Default(), path);
  std::string content = text.ok() ? *text : std::string();
  if (!text.ok() && text.status().code() != Status::Code::kNotFound) return text.status();
  TUSK_ASSIGN_OR_RETURN(auto trusted, TrustedChecks(repo));
  bool changed = false;
  for (const auto* c : checks) {
    ObjectId digest = c->Digest();
    if (trusted.count(digest)) continue;
    trusted.insert(digest);
    // The name is for people reading the file; the digest is what counts.
    content += digest.Hex() + " " + c->name + "\n";
    changed = true;
  }
  if (!changed) return Status::Ok();
  return WriteFileAtomically(Env::Default(), path, content);
}

Result<std::vector<const CheckDefinition*>> UntrustedChecks(Repository& repo, const DatasetSettings& settings) {
  TUSK_ASSIGN_OR_RETURN(auto trusted, TrustedChecks(repo));
  std::vector<const CheckDefinition*> out;
  for (const auto& c : settings.checks)
    if (!trusted.count(c.Digest())) out.push_back(&c);
  return out;
}

// ---- the hook ----

PrepareCommit CheckHook(Repository* repo, const std::string& dataset, const std::string& skip_reason,
                        const std::string& who) {
  return [repo, dataset, skip_reason, who](Commit* commit, WriteSession& session) -> Status {
    TUSK_ASSIGN_OR_RETURN(CurrentSettings cur, ReadCurrentSettings(*repo, dataset));
    if (!cur.id) return Status::Ok();  // a dataset that never had settings: commits stay as they were
    commit->settings = cur.id;
    commit->checks.clear();
    if (cur.settings.checks.empty()) return Status::Ok();
    if (!skip_reason.empty()) {
      for (const auto& c : cur.settings.checks) {
        CheckResult r;
        r.name = c.name;
        r.outcome = CheckResult::Outcome::kSkipped;
        commit->checks.push_back(std::move(r));
      }
      commit->checks_skipped_by = who;
      commit->checks_skipped_reason = skip_reason;
      return Status::Ok();
    }
    TUSK_ASSIGN_OR_RETURN(auto untrusted, UntrustedChecks(*repo, cur.settings));
    if (!untrusted.empty()) {
      std::string names;
      for (const auto* c : untrusted) names += (names.empty() ? "'" : ", '") + c->name + "'";
      return Status::InvalidArgument("dataset '" + dataset + "' has checks this machine does not trust yet: " + names +
                                     "; read them ('tusk check list " + dataset + "'), then 'tusk check trust " +
                                     dataset + "' (or --skip-checks REASON)");
    }
    // The candidate tree, durable so that the checks' process can read it
    // (no commit names it yet; if it does not land, gc reclaims it).
    TUSK_RETURN_IF_ERROR(session.Flush());
    std::vector<std::string> argv = {ExePath(), "--store", repo->dir(), "check-candidate", dataset, commit->root.Hex(),
                                     cur.id->Hex()};
    if (!commit->parents.empty()) argv.push_back(commit->parents[0].Hex());
    // The child's stderr passes through (a mount daemon logs it); stdout
    // carries the results.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      int in = ::open("/dev/null", O_RDONLY);
      if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(fds[1], 1) < 0) ::_exit(126);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    if (pid < 0) {
      ::close(fds[0]);
      return Status::FromErrno(errno, "fork");
    }
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) out.append(buf, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR) break;
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return Status::FromErrno(EIO, "the checks could not run (tusk check-candidate: " +
                             std::string(WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                           : "signal " + std::to_string(WTERMSIG(status))) +
                             ")");
    TUSK_ASSIGN_OR_RETURN(auto results, ParseResults(out));
    std::string failures;
    for (const auto& r : results) {
      if (r.outcome != CheckResult::Outcome::kFailed) continue;
      failures += "\n--- check '" + r.name + "' failed:\n" + r.output_tail;
    }
    if (!failures.empty())
      return Status::InvalidArgument("a check failed (--skip-checks REASON lands anyway)" + failures);
    commit->checks = std::move(results);
    return Status::Ok();
  };
}

}  // namespace tusk::fs
