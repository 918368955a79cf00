// Helpers shared by the fs tests: temporary directories, deterministic data,
// tree building and comparison, running programs, and mounting with cleanup.
//
// Terms:
//   TempDir       a fresh /tmp/tusk-fs-XXXXXX directory, removed on destruction
//                 (unless something is still mounted inside it).
//   RunProgram(...) runs a program (fork/exec, optional cwd and timeout); stdout
//                 and stderr are collected through memfds, so large outputs
//                 cannot block the child.
//   MountGuard    owns every mount a test makes. StartForeground() runs
//                 `tusk mount -f ...` as a child with its output in a log
//                 file and waits until the mount point shows up in
//                 /proc/self/mountinfo; Track() registers a mount point made
//                 some other way (background `tusk mount`). CleanupAll()
//                 (called from TearDown, and idempotent) unmounts with
//                 fusermount3 -u, falls back to umount -l, then stops and
//                 reaps foreground children (SIGTERM, SIGKILL after 5 s) and
//                 kills background daemons found by their exact mount point
//                 argument. If the test process crashes, a signal handler
//                 still detaches the registered mounts and kills the children.
//   CompareTrees  walks a source tree and reports every difference from a
//                 copy (kinds, modes, owners, sizes, mtimes, symlink targets,
//                 content, directory listings); files larger than a limit are
//                 compared on their data extents plus sampled holes.
//
// Thread-safety: none; each test runs on one thread except where noted.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/ids.h"
#include "store/internal/file.h"

namespace tusk::fstest {

inline constexpr char kTusk[] = TUSK_BINARY;

// ---------------------------------------------------------------- basics

inline std::string Errno(int err = errno) { return std::strerror(err); }

// Decoded mount points of /proc/self/mountinfo (with their fs types).
inline std::map<std::string, std::string> MountPoints() {
  std::map<std::string, std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point, tok, type;
    fields >> id >> parent >> devno >> root >> point;
    std::string decoded;
    for (size_t i = 0; i < point.size(); i++) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded += static_cast<char>(std::strtol(point.substr(i + 1, 3).c_str(), nullptr, 8));
        i += 3;
      } else {
        decoded += point[i];
      }
    }
    while (fields >> tok && tok != "-") {
    }
    fields >> type;
    out[decoded] = type;  // the last (topmost) mount wins
  }
  return out;
}

inline bool IsMountPoint(const std::string& path) { return MountPoints().count(path) > 0; }

inline std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [p, type] : MountPoints())
    if (p == dir || p.rfind(dir + "/", 0) == 0) out.push_back(p);
  return out;
}

// Where generated source trees go. Creating a file on this machine's /tmp
// (ext4 on a virtual disk) costs ~0.8 ms, so trees of many files are built
// on tmpfs (/dev/shm) when it is available; stores and mount points stay
// under /tmp.
inline std::string ScratchBase() {
  struct statfs sf;
  if (::statfs("/dev/shm", &sf) == 0 && sf.f_type == 0x01021994 /* TMPFS_MAGIC */ &&
      ::access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  return "/tmp";
}

class TempDir {
 public:
  explicit TempDir(const std::string& base = "/tmp") {
    std::string tmpl = base + "/tusk-fs-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    // Never walk into a live mount (it may hang or be read-only).
    if (!MountsUnder(path_).empty()) {
      std::fprintf(stderr, "warning: %s still has mounts; not removing it\n", path_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

// Readable, compressible, but not repetitive text.
inline std::string TextBytes(size_t n, uint64_t seed) {
  static const char* const kWords[] = {"alpha", "beta", "gamma", "delta", "tusk", "chunk", "tree", "commit",
                                       "river", "stone", "42",   "0.5",   "\n",    ",",     "data", "fuse"};
  std::mt19937_64 rng(seed);
  std::string out;
  out.reserve(n + 16);
  while (out.size() < n) {
    out += kWords[rng() % 16];
    out += ' ';
  }
  out.resize(n);
  return out;
}

inline ::testing::AssertionResult WriteFile(const std::string& path, std::string_view content, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ::testing::AssertionFailure() << "create " << path << ": " << Errno();
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return ::testing::AssertionFailure() << "write " << path << ": " << Errno();
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::chmod(path.c_str(), mode) != 0) return ::testing::AssertionFailure() << "chmod " << path << ": " << Errno();
  return ::testing::AssertionSuccess();
}

// Reads a whole file; nullopt (and *err set) on failure.
inline std::optional<std::string> ReadAll(const std::string& path, int* err = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return std::nullopt;
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) *err = errno;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (err) *err = 0;
  return out;
}

inline std::string ReadOr(const std::string& path, const std::string& fallback = "<unreadable>") {
  auto r = ReadAll(path);
  return r ? *r : fallback;
}

// pread of exactly [off, off+len) (short only at EOF); nullopt on error.
inline std::optional<std::string> PreadRange(int fd, uint64_t off, size_t len, int* err = nullptr) {
  std::string out(len, '\0');
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out.data() + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) *err = errno;
      return std::nullopt;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

inline std::string Sha256Hex(std::string_view data) { return Sha256::Of(data.data(), data.size()).Hex(); }

inline std::optional<std::string> Sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  Sha256 h;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return h.Finish().Hex();
}

inline ::testing::AssertionResult SetMtime(const std::string& path, int64_t sec, long nsec) {
  struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(sec), nsec}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return ::testing::AssertionFailure() << "utimensat " << path << ": " << Errno();
  return ::testing::AssertionSuccess();
}

inline bool HasSubstr(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

inline std::string Clip(const std::string& s, size_t n = 3000) {
  return s.size() > n ? s.substr(0, n) + "...[clipped]" : s;
}

// ---------------------------------------------------------------- processes

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N; -2 on timeout
  std::string out;
  std::string err;
  bool timed_out = false;
};

inline std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  return os << "\n[exit " << r.exit_code << (r.timed_out ? " (timed out)" : "") << "]\n[stdout]\n"
            << Clip(r.out) << "\n[stderr]\n"
            << Clip(r.err) << "\n";
}

struct RunOptions {
  std::string cwd;           // empty: inherit
  double timeout_sec = 120;  // then SIGKILL to the child's process group
};

inline std::string SlurpFd(int fd) {
  std::string out;
  char buf[1 << 16];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return out;
}

// Runs argv (argv[0] found through PATH unless it contains '/').
inline RunResult RunProgram(const std::vector<std::string>& argv, const RunOptions& opts = {}) {
  RunResult r;
  int out_fd = ::memfd_create("out", MFD_CLOEXEC);
  int err_fd = ::memfd_create("err", MFD_CLOEXEC);
  if (out_fd < 0 || err_fd < 0) {
    ADD_FAILURE() << "memfd_create: " << Errno();
    return r;
  }
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(126);
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) ::_exit(126);
    ::execvp(c_argv[0], c_argv.data());
    ::_exit(127);
  }
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << Errno();
    ::close(out_fd);
    ::close(err_fd);
    return r;
  }
  ::setpgid(pid, pid);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opts.timeout_sec);
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.exit_code = r.timed_out ? -2 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = SlurpFd(out_fd);
  r.err = SlurpFd(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return r;
}

inline RunResult Sh(const std::string& script, const std::string& cwd = "", double timeout = 120) {
  return RunProgram({"/bin/sh", "-c", script}, RunOptions{cwd, timeout});
}

inline bool HaveProgram(const std::string& name) {
  return Sh("command -v " + name + " >/dev/null 2>&1").exit_code == 0;
}

inline RunResult Tusk(const std::string& store, std::vector<std::string> args, double timeout = 120) {
  std::vector<std::string> argv = {kTusk, "--store", store};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, RunOptions{"", timeout});
}

// ---------------------------------------------------------------- mounts

// The content of a /proc file, or "" if it cannot be read: a process may exit
// between the open and the read, which then fails with ESRCH (through an
// ifstream that was an exception, seen in CI's ASan pass).
inline std::string ReadProcFile(const std::string& path) {
  Result<std::string> content = ReadWholeFile(path);
  return content.ok() ? std::move(content).value() : std::string();
}

inline bool ProcessAlive(pid_t pid) {
  // A zombie (not reaped by its adopter) counts as gone.
  std::string line = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  return line[close + 2] != 'Z';
}

// tusk processes (not this one) whose command line has `mountpoint` as an
// argument: the daemons serving it.
inline std::vector<pid_t> DaemonsServing(const std::string& mountpoint) {
  std::vector<pid_t> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir("/proc"), ::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == ::getpid()) continue;
    std::string cmd = ReadProcFile("/proc/" + std::string(e->d_name) + "/cmdline");
    std::vector<std::string> args;
    size_t start = 0;
    while (start < cmd.size()) {
      size_t z = cmd.find('\0', start);
      if (z == std::string::npos) z = cmd.size();
      args.push_back(cmd.substr(start, z - start));
      start = z + 1;
    }
    if (args.empty() || args[0] != kTusk) continue;
    if (std::find(args.begin(), args.end(), "mount") == args.end()) continue;
    if (std::find(args.begin(), args.end(), mountpoint) == args.end()) continue;
    out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

inline bool WaitUntil(const std::function<bool()>& cond, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Unmounts `mountpoint` if mounted: fusermount3 -u, then umount -l.
inline void Unmount(const std::string& mountpoint) {
  if (!IsMountPoint(mountpoint)) return;
  RunResult r = RunProgram({"fusermount3", "-u", mountpoint}, RunOptions{"", 15});
  if (IsMountPoint(mountpoint)) {
    std::fprintf(stderr, "note: fusermount3 -u %s failed (%s); trying umount -l\n", mountpoint.c_str(),
                 r.err.c_str());
    RunProgram({"umount", "-l", mountpoint}, RunOptions{"", 15});
  }
  if (IsMountPoint(mountpoint)) ADD_FAILURE() << "could not unmount " << mountpoint;
}

inline void StopPid(pid_t pid, bool is_child) {
  auto gone = [&] {
    if (is_child) {
      int status;
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      return w == pid || (w < 0 && errno == ECHILD);
    }
    return !ProcessAlive(pid);
  };
  if (gone()) return;
  ::kill(pid, SIGTERM);
  if (WaitUntil(gone, 5)) return;
  std::fprintf(stderr, "note: tusk daemon %d ignored SIGTERM for 5 s; sending SIGKILL\n", pid);
  ::kill(pid, SIGKILL);
  if (is_child) {
    int status;
    ::waitpid(pid, &status, 0);
  } else {
    WaitUntil(gone, 5);
  }
}

// Last-resort cleanup when a test process crashes (e.g. SIGBUS from an mmap
// of a file whose read fails): lazily detach every mount still registered
// and kill foreground daemons, then let the signal take its course. Only
// async-signal-safe calls (umount2, kill, sigaction) run in the handler.
namespace crash_cleanup {
struct Slot {
  char path[1024];
  pid_t pid;  // 0: a mount point without a known child
  volatile sig_atomic_t used;
};
inline Slot g_slots[128];
inline struct sigaction g_old[65];

inline void Handler(int sig) {
  for (auto& s : g_slots) {
    if (!s.used) continue;
    ::umount2(s.path, MNT_DETACH);
    if (s.pid > 0) ::kill(s.pid, SIGKILL);
  }
  // Hand the signal to the previous action (default, or a sanitizer's).
  ::sigaction(sig, &g_old[sig], nullptr);
  ::raise(sig);
}

inline void InstallOnce() {
  static bool installed = [] {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) {
      struct sigaction sa;
      std::memset(&sa, 0, sizeof sa);
      sa.sa_handler = Handler;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, &g_old[sig]);
    }
    return true;
  }();
  (void)installed;
}

inline void Add(const std::string& path, pid_t pid) {
  InstallOnce();
  for (auto& s : g_slots) {
    if (s.used) continue;
    std::snprintf(s.path, sizeof s.path, "%s", path.c_str());
    s.pid = pid;
    s.used = 1;
    return;
  }
}

// A reaped child's pid may be reused: never signal it again.
inline void ClearPid(pid_t pid) {
  for (auto& s : g_slots)
    if (s.used && s.pid == pid) s.pid = 0;
}

inline void Remove(const std::string& path) {
  for (auto& s : g_slots)
    if (s.used && path == s.path) s.used = 0;
}
}  // namespace crash_cleanup

class MountGuard {
 public:
  struct Child {
    pid_t pid = -1;
    std::string mountpoint;
    std::string log;
    bool reaped = false;
    int status = 0;
  };

  MountGuard() = default;
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  ~MountGuard() { CleanupAll(); }

  // Starts `tusk --store STORE mount -f ARGS... MOUNTPOINT` (ARGS may hold a
  // ref and options) with stdout/stderr in `log`, and waits for the mount.
  ::testing::AssertionResult StartForeground(const std::string& store, const std::vector<std::string>& args,
                                             const std::string& mountpoint, const std::string& log,
                                             const std::string& cwd = "") {
    Track(mountpoint);
    std::vector<std::string> argv = {kTusk, "--store", store, "mount", "-f"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(mountpoint);
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return ::testing::AssertionFailure() << "open " << log << ": " << Errno();
    pid_t pid = ::fork();
    if (pid == 0) {
      // Signals ignored by whoever ran the tests (SIGINT for background
      // jobs of a shell) would stay ignored in the daemon; start it clean.
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      int in = ::open("/dev/null", O_RDONLY);
      if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) ::_exit(126);
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
      ::execv(c_argv[0], c_argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    if (pid < 0) return ::testing::AssertionFailure() << "fork: " << Errno();
    children_.push_back({pid, mountpoint, log});
    crash_cleanup::Add(mountpoint, pid);
    Child& child = children_.back();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      if (IsMountPoint(mountpoint)) return Probe(mountpoint, log);
      pid_t w = ::waitpid(pid, &child.status, WNOHANG);
      if (w == pid) {
        child.reaped = true;
        crash_cleanup::ClearPid(pid);
        return ::testing::AssertionFailure() << "tusk mount -f exited (status " << child.status
                                             << ") before mounting " << mountpoint << "; log:\n"
                                             << ReadOr(log);
      }
      if (std::chrono::steady_clock::now() > deadline)
        return ::testing::AssertionFailure() << "timed out (10 s) waiting for " << mountpoint
                                             << " to be mounted; log:\n"
                                             << ReadOr(log);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Checks that the daemon answers, from a child process that can be
  // killed: a wedged daemon must fail the test, not hang this process.
  static ::testing::AssertionResult Probe(const std::string& mountpoint, const std::string& log) {
    RunResult r = RunProgram({"stat", "-c", "%F", mountpoint}, RunOptions{"", 10});
    if (r.exit_code == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << mountpoint << " is mounted but does not answer (stat: exit "
                                         << r.exit_code << (r.timed_out ? ", timed out after 10 s" : "") << " "
                                         << r.err << "); log:\n"
                                         << ReadOr(log);
  }

  // A mount point made by other means (e.g. background `tusk mount`).
  void Track(const std::string& mountpoint) {
    if (std::find(tracked_.begin(), tracked_.end(), mountpoint) != tracked_.end()) return;
    tracked_.push_back(mountpoint);
    crash_cleanup::Add(mountpoint, 0);
  }

  Child* FindChild(const std::string& mountpoint) {
    for (auto& c : children_)
      if (c.mountpoint == mountpoint) return &c;
    return nullptr;
  }

  // Waits for a foreground child to exit by itself; returns its wait status.
  std::optional<int> WaitChild(const std::string& mountpoint, double seconds) {
    Child* c = FindChild(mountpoint);
    if (!c) return std::nullopt;
    if (!c->reaped) {
      bool done = WaitUntil(
          [&] {
            pid_t w = ::waitpid(c->pid, &c->status, WNOHANG);
            return w == c->pid;
          },
          seconds);
      if (!done) return std::nullopt;
      c->reaped = true;
      crash_cleanup::ClearPid(c->pid);
    }
    return c->status;
  }

  void CleanupAll() {
    for (const auto& m : tracked_) {
      std::vector<pid_t> daemons = DaemonsServing(m);
      Unmount(m);
      for (pid_t pid : daemons) {
        bool is_child = false;
        for (auto& c : children_)
          if (c.pid == pid) is_child = true;
        if (!is_child) StopPid(pid, false);
      }
    }
    for (auto& c : children_) {
      if (!c.reaped) StopPid(c.pid, true);
      c.reaped = true;
      crash_cleanup::ClearPid(c.pid);
    }
    for (const auto& m : tracked_) crash_cleanup::Remove(m);
    children_.clear();
    tracked_.clear();
  }

 private:
  std::vector<Child> children_;  // std::vector: pointers into it are only used transiently
  std::vector<std::string> tracked_;
};

// ---------------------------------------------------------------- trees

struct CompareOptions {
  bool mtime_nsec = true;   // false: seconds only (tar)
  bool owner = true;
  bool dir_mtime = true;
  uint64_t full_compare_limit = uint64_t{64} << 20;  // larger files: data extents + sampled holes
  size_t* entries_compared = nullptr;  // optional: counts entries present on both sides
};

inline std::string ModeStr(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%07o", static_cast<unsigned>(m));
  return buf;
}

// Compares the content of two regular files; appends problems to `diffs`.
inline void CompareContent(const std::string& a, const std::string& b, uint64_t size, const CompareOptions& o,
                           const std::string& rel, std::vector<std::string>* diffs) {
  int fa = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
  int fb = ::open(b.c_str(), O_RDONLY | O_CLOEXEC);
  if (fa < 0 || fb < 0) {
    diffs->push_back(rel + ": cannot open (" + Errno() + ")");
    if (fa >= 0) ::close(fa);
    if (fb >= 0) ::close(fb);
    return;
  }
  auto compare_range = [&](uint64_t off, size_t len, bool expect_zero) {
    int err = 0;
    auto x = PreadRange(fa, off, len);
    auto y = PreadRange(fb, off, len, &err);
    if (!x || !y) {
      diffs->push_back(rel + ": read error at " + std::to_string(off) + " (" + Errno(err) + ")");
      return false;
    }
    if (*x != *y) {
      size_t at = 0;
      while (at < std::min(x->size(), y->size()) && (*x)[at] == (*y)[at]) at++;
      diffs->push_back(rel + ": content differs at byte " + std::to_string(off + at) + " (lengths " +
                       std::to_string(x->size()) + "/" + std::to_string(y->size()) + ")");
      return false;
    }
    if (expect_zero && y->find_first_not_of('\0') != std::string::npos) {
      diffs->push_back(rel + ": hole at " + std::to_string(off) + " does not read as zeros");
      return false;
    }
    return true;
  };
  if (size <= o.full_compare_limit) {
    for (uint64_t off = 0; off < size + 1; off += 1 << 20)
      if (!compare_range(off, 1 << 20, false)) break;
  } else {
    // Data extents of the source in full, and a few holes.
    std::vector<std::pair<uint64_t, uint64_t>> holes;
    uint64_t pos = 0;
    while (pos < size) {
      off_t d = ::lseek(fa, static_cast<off_t>(pos), SEEK_DATA);
      if (d < 0) {
        holes.push_back({pos, size});
        break;
      }
      if (static_cast<uint64_t>(d) > pos) holes.push_back({pos, static_cast<uint64_t>(d)});
      off_t h = ::lseek(fa, d, SEEK_HOLE);
      uint64_t end = h < 0 ? size : static_cast<uint64_t>(h);
      for (uint64_t off = static_cast<uint64_t>(d); off < end; off += 1 << 20)
        if (!compare_range(off, static_cast<size_t>(std::min<uint64_t>(1 << 20, end - off)), false)) break;
      pos = end;
    }
    for (const auto& [from, to] : holes) {
      uint64_t len = to - from;
      for (uint64_t at : {from, from + len / 2, to > (1 << 16) ? to - (1 << 16) : from})
        compare_range(at, static_cast<size_t>(std::min<uint64_t>(1 << 16, to - at)), true);
    }
    // Past the end.
    auto tail = PreadRange(fb, size, 4096);
    if (!tail || !tail->empty()) diffs->push_back(rel + ": reading at EOF does not return 0 bytes");
  }
  ::close(fa);
  ::close(fb);
}

inline std::set<std::string> ListNames(const std::string& dir, int* err = nullptr) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (err) *err = errno;
    return names;
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.insert(n);
  }
  ::closedir(d);
  if (err) *err = 0;
  return names;
}

inline void CompareTreesRec(const std::string& src, const std::string& dst, const std::string& rel,
                            const CompareOptions& o, std::vector<std::string>* diffs) {
  int err = 0;
  std::set<std::string> a = ListNames(src + rel, &err);
  std::set<std::string> b = ListNames(dst + rel, &err);
  if (err) {
    diffs->push_back((rel.empty() ? "/" : rel) + ": cannot list copy (" + Errno(err) + ")");
    return;
  }
  for (const auto& n : a)
    if (!b.count(n)) diffs->push_back(rel + "/" + n + ": missing from copy");
  for (const auto& n : b)
    if (!a.count(n)) diffs->push_back(rel + "/" + n + ": extra in copy");
  for (const auto& n : a) {
    if (!b.count(n)) continue;
    std::string r = rel + "/" + n;
    if (o.entries_compared) ++*o.entries_compared;
    struct stat sa, sb;
    if (::lstat((src + r).c_str(), &sa) != 0) {
      diffs->push_back(r + ": lstat source: " + Errno());
      continue;
    }
    if (::lstat((dst + r).c_str(), &sb) != 0) {
      diffs->push_back(r + ": lstat copy: " + Errno());
      continue;
    }
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
      diffs->push_back(r + ": type " + ModeStr(sa.st_mode) + " vs " + ModeStr(sb.st_mode));
      continue;
    }
    if (!S_ISLNK(sa.st_mode) && sa.st_mode != sb.st_mode)
      diffs->push_back(r + ": mode " + ModeStr(sa.st_mode) + " vs " + ModeStr(sb.st_mode));
    if (o.owner && (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid))
      diffs->push_back(r + ": owner " + std::to_string(sa.st_uid) + ":" + std::to_string(sa.st_gid) + " vs " +
                       std::to_string(sb.st_uid) + ":" + std::to_string(sb.st_gid));
    bool check_mtime = !S_ISLNK(sa.st_mode) && (o.dir_mtime || !S_ISDIR(sa.st_mode));
    if (check_mtime && (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
                        (o.mtime_nsec && sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)))
      diffs->push_back(r + ": mtime " + std::to_string(sa.st_mtim.tv_sec) + "." + std::to_string(sa.st_mtim.tv_nsec) +
                       " vs " + std::to_string(sb.st_mtim.tv_sec) + "." + std::to_string(sb.st_mtim.tv_nsec));
    if (S_ISREG(sa.st_mode)) {
      if (sa.st_size != sb.st_size) {
        diffs->push_back(r + ": size " + std::to_string(sa.st_size) + " vs " + std::to_string(sb.st_size));
        continue;
      }
      CompareContent(src + r, dst + r, static_cast<uint64_t>(sa.st_size), o, r, diffs);
    } else if (S_ISLNK(sa.st_mode)) {
      char ta[4096], tb[4096];
      ssize_t na = ::readlink((src + r).c_str(), ta, sizeof ta);
      ssize_t nb = ::readlink((dst + r).c_str(), tb, sizeof tb);
      if (nb < 0) diffs->push_back(r + ": readlink copy: " + Errno());
      else if (na != nb || std::memcmp(ta, tb, static_cast<size_t>(na)) != 0)
        diffs->push_back(r + ": symlink target '" + std::string(ta, static_cast<size_t>(std::max<ssize_t>(na, 0))) +
                         "' vs '" + std::string(tb, static_cast<size_t>(nb)) + "'");
      else if (sa.st_size != sb.st_size)
        diffs->push_back(r + ": symlink size " + std::to_string(sa.st_size) + " vs " + std::to_string(sb.st_size));
    } else if (S_ISDIR(sa.st_mode)) {
      CompareTreesRec(src, dst, r, o, diffs);
    }
  }
}

// Every difference between the tree at `src` and its copy at `dst` (the two
// roots' own metadata is not compared).
inline std::vector<std::string> CompareTrees(const std::string& src, const std::string& dst,
                                             const CompareOptions& o = {}) {
  std::vector<std::string> diffs;
  CompareTreesRec(src, dst, "", o, &diffs);
  return diffs;
}

inline std::string JoinFirst(const std::vector<std::string>& v, size_t n = 30) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < n; i++) out += "  " + v[i] + "\n";
  if (v.size() > n) out += "  ... and " + std::to_string(v.size() - n) + " more\n";
  return out;
}

// Regular files under `root` (relative paths, sorted), symlinks not followed.
inline std::vector<std::string> ListFilesRec(const std::string& root) {
  std::vector<std::string> out;
  for (auto it = std::filesystem::recursive_directory_iterator(root); it != std::filesystem::recursive_directory_iterator();
       ++it) {
    if (it->is_regular_file() && !it->is_symlink()) out.push_back(std::filesystem::relative(it->path(), root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline size_t CountMounts(const std::string& path) {
  size_t n = 0;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == path) n++;  // test paths have no characters that need escaping
  }
  return n;
}

struct RichTreeInfo {
  std::vector<std::string> files;  // relative paths of regular files
  std::string needle;              // a string found in exactly one file
  std::string needle_file;
  uint64_t sparse_size = 0;        // 0: no big sparse file
  std::vector<std::pair<uint64_t, std::string>> sparse_data;  // offset, bytes
};

inline ::testing::AssertionResult MkDir(const std::string& p, mode_t mode = 0755) {
  if (::mkdir(p.c_str(), 0700) != 0) return ::testing::AssertionFailure() << "mkdir " << p << ": " << Errno();
  if (::chmod(p.c_str(), mode) != 0) return ::testing::AssertionFailure() << "chmod " << p << ": " << Errno();
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult MkLink(const std::string& target, const std::string& p) {
  if (::symlink(target.c_str(), p.c_str()) != 0)
    return ::testing::AssertionFailure() << "symlink " << p << ": " << Errno();
  return ::testing::AssertionSuccess();
}

// A tree with every kind of entry the importer stores: nested and empty
// directories, empty files, modes incl. setuid/setgid/sticky, another owner,
// odd names, symlinks (relative, absolute, dangling, to a directory, long),
// old/new/negative mtimes with nanoseconds, a random file of a few MiB, text,
// and (with `sparse_size`) a large sparse file with a little data.
inline void BuildRichTree(const std::string& root, uint64_t sparse_size, RichTreeInfo* info) {
  auto file = [&](const std::string& rel, std::string_view content, mode_t mode = 0644) {
    ASSERT_TRUE(WriteFile(root + "/" + rel, content, mode));
    info->files.push_back(rel);
  };
  ASSERT_TRUE(MkDir(root));
  file("README.md", "# tusk test tree\n\nSome text for grep.\n");
  ASSERT_TRUE(MkDir(root + "/data"));
  std::string deep = "data";
  for (const char* part : {"a", "b", "c", "d", "e"}) {
    deep += std::string("/") + part;
    ASSERT_TRUE(MkDir(root + "/" + deep));
  }
  file(deep + "/deep.txt", "deep down\n");
  file("data/random.bin", RandomBytes((3 << 20) + 5, 11));
  file("data/text.csv", TextBytes(1 << 20, 12));
  file("data/small.bin", RandomBytes(70000, 13));
  info->needle = "NEEDLE-7f3a9c-tusk";
  info->needle_file = "data/a/b/needle.txt";
  file(info->needle_file, "line one\nhere is the " + info->needle + " in a haystack\n");
  file("empty.txt", "");
  file("data/a/empty2", "");
  ASSERT_TRUE(MkDir(root + "/emptydir"));
  ASSERT_TRUE(MkDir(root + "/data/emptysub", 0700));
  ASSERT_TRUE(MkDir(root + "/modes"));
  file("modes/private.txt", "private\n", 0600);
  file("modes/exec.sh", "#!/bin/sh\necho hi\n", 0755);
  file("modes/readonly.txt", "ro\n", 0444);
  file("modes/setuid", "su\n", 04755);
  file("modes/setgid", "sg\n", 02750);
  file("modes/nothing", "no permissions\n", 0000);
  ASSERT_TRUE(MkDir(root + "/modes/sticky", 01777));
  ASSERT_TRUE(MkDir(root + "/modes/closed", 0700));
  file("modes/closed/inside.txt", "inside\n", 0640);
  file("owned.txt", "owned by someone else\n", 0640);
  if (::chown((root + "/owned.txt").c_str(), 1234, 5678) != 0) ADD_FAILURE() << "chown: " << Errno();
  ASSERT_TRUE(MkDir(root + "/links"));
  ASSERT_TRUE(MkLink("../README.md", root + "/links/rel"));
  ASSERT_TRUE(MkLink("/etc/hostname", root + "/links/abs"));
  ASSERT_TRUE(MkLink("does/not/exist", root + "/links/dangling"));
  ASSERT_TRUE(MkLink("../data", root + "/links/dirlink"));
  ASSERT_TRUE(MkLink(std::string(1000, 'x') + "/target", root + "/links/long"));
  ASSERT_TRUE(MkDir(root + "/names"));
  file("names/with space.txt", "space\n");
  file("names/\xc3\xbc" "n\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9.txt", "unicode\n");
  file("names/" + std::string(255, 'n'), "long name\n");
  file("names/-dash", "dash\n");
  file("names/.hidden", "hidden\n");
  file("names/tab\there", "tab\n");
  // Mtimes: nanoseconds, before 1970, far future.
  ASSERT_TRUE(SetMtime(root + "/README.md", 1600000000, 123456789));
  ASSERT_TRUE(SetMtime(root + "/modes/private.txt", -1000, 500));
  ASSERT_TRUE(SetMtime(root + "/modes/exec.sh", 4102444800, 999999999));
  ASSERT_TRUE(SetMtime(root + "/empty.txt", 0, 0));
  if (sparse_size) {
    std::string p = root + "/sparse.bin";
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << Errno();
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(sparse_size)), 0) << Errno();
    info->sparse_size = sparse_size;
    info->sparse_data = {{0, RandomBytes(64 * 1024, 21)},
                         {(uint64_t{1} << 30) + 12345, RandomBytes(100 * 1024, 22)},
                         {sparse_size - 10 * 1024, RandomBytes(10 * 1024, 23)}};
    for (const auto& [off, bytes] : info->sparse_data)
      ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off)), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    info->files.push_back("sparse.bin");
  }
  std::sort(info->files.begin(), info->files.end());
}

// The value of "commit":"..." in the first object of `tusk log --json`.
inline std::string FirstCommitFromJson(const std::string& json) {
  std::string key = "\"commit\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos) {
    key = "\"commit\": \"";
    at = json.find(key);
  }
  if (at == std::string::npos) return "";
  size_t start = at + key.size();
  size_t end = json.find('"', start);
  return json.substr(start, end - start);
}

}  // namespace tusk::fstest
