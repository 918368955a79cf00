// Crash test for the tusk CLI: kills `tusk import` and `tusk gc` with SIGKILL
// at random points and checks that nothing committed earlier is ever lost.
//
// One store, one dataset. A base tree (~40 files, 1 KiB - 2 MiB, some
// compressible, a few subdirectories, a symlink) is imported as the first
// version. Then, in a seeded random order, 35 runs kill `tusk import` (after
// mutating the source tree, sometimes adding an 8-40 MiB file so the import
// runs long enough to be hit midway) and 15 runs kill `tusk gc` (after making
// garbage: a branch with its own data, part of which main then adopts, so gc
// has to copy live records out of a pack before deleting it). Each kill
// happens after a random delay drawn from [0, ~1.15 x the expected duration of
// the command); the expectation is calibrated from unkilled runs.
//
// After every kill:
//   * `tusk fsck` exits 0 and reports no problems;
//   * main points at the old head, or at a complete new commit whose parent is
//     the old head and whose export is exactly the imported directory;
//   * recorded versions export byte-identical (the latest two every run, all
//     of them every 10 runs); every version is tagged so gc keeps it;
//   * a normal `tusk import` afterwards succeeds and exports correctly.
// At the end `tusk gc` and `tusk fsck` must be clean, every tag must still
// name its version and export byte-identical, and no pack file may remain on
// disk that the index does not know (crash leftovers are reclaimed).
//
// Environment:
//   TUSK_CRASH_SEED=N     reproduce a run (the seed is printed and is part of
//                         every failure message). Trees and delays are
//                         reproduced; where exactly a killed process stood
//                         also depends on timing.
//   TUSK_CRASH_RUNS=N     number of kill runs (default 50, 16 under ASan;
//                         70% import, 30% gc)
//   TUSK_CRASH_VERBOSE=1  print one line per run
//   TUSK_CRASH_KEEP=1     keep the temporary directory (path is printed)
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/sanitizer_scale.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;
constexpr double kCommandTimeoutMs = 120000;  // an unkilled command that takes longer has hung
constexpr const char* kDataset = "data";

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Any failure ends the scenario: later checks would only be noise.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void Fail(const std::string& msg) { throw Failure(msg); }

std::string Truncated(const std::string& s, size_t max = 4000) {
  return s.size() <= max ? s : s.substr(0, max) + "\n...(" + std::to_string(s.size() - max) + " more bytes)";
}

const char* EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// ---------------------------------------------------------------- random data

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t Next() { return gen_(); }
  uint64_t Uniform(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(gen_); }
  double Real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  bool Chance(double p) { return Real(0, 1) < p; }
  uint64_t LogUniform(uint64_t lo, uint64_t hi) {
    return static_cast<uint64_t>(std::exp(Real(std::log(static_cast<double>(lo)), std::log(static_cast<double>(hi)))));
  }
  // Incompressible bytes: a splitmix64 stream seeded from the generator.
  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    uint64_t x = Next();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      std::memcpy(&s[i], &z, 8);
    }
    for (; i < n; i++) s[i] = static_cast<char>(Next());
    return s;
  }
  // Compressible text (CSV-like rows over a small vocabulary).
  std::string Text(size_t n) {
    static const char* kWords[] = {"alpha", "beta", "gamma", "delta", "sensor", "reading", "ok", "warn",
                                   "north", "south", "east", "west", "temp", "humidity", "id", "label"};
    std::string s;
    s.reserve(n + 64);
    uint64_t row = Uniform(0, 1000000);
    while (s.size() < n) {
      s += std::to_string(row++);
      for (int w = 0; w < 4; w++) {
        s += ',';
        s += kWords[Next() % 16];
      }
      s += ',' + std::to_string(Next() % 1000) + "\n";
    }
    s.resize(n);
    return s;
  }

 private:
  std::mt19937_64 gen_;
};

// ---------------------------------------------------------------- files

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) Fail("open " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      Fail("write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

void PwriteFile(const std::string& path, const std::string& data, uint64_t offset) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) Fail("open " + path + ": " + std::strerror(errno));
  ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) Fail("pwrite " + path + ": " + std::strerror(errno));
}

std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string Sha256OfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail("open " + path + ": " + std::strerror(errno));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  static std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      EVP_MD_CTX_free(ctx);
      Fail("read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; i++) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

// What a tree holds, as compared between a source directory and an export.
struct Entry {
  char kind = '?';      // 'f' regular file, 'd' directory, 'l' symlink
  uint32_t mode = 0;    // permission bits of files
  uint64_t size = 0;    // files
  std::string content;  // files: sha256 of the bytes; symlinks: the target
  bool operator==(const Entry&) const = default;
};
using Manifest = std::map<std::string, Entry>;

std::string Describe(const Entry& e) {
  std::ostringstream o;
  if (e.kind == 'f') o << "file mode " << std::oct << e.mode << std::dec << " size " << e.size << " sha256 " << e.content.substr(0, 16);
  else if (e.kind == 'l') o << "symlink -> " << e.content;
  else if (e.kind == 'd') o << "directory";
  else o << "special file";
  return o.str();
}

// Only to predict how much an import has to read.
struct StatKey {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const StatKey&) const = default;
};
using StatMap = std::map<std::string, StatKey>;

StatKey KeyOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
          st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec, st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec};
}

// Hashes of source files, reused while their stat does not change.
using HashCache = std::map<std::string, std::pair<StatKey, std::string>>;

void ScanInto(const std::string& root, const std::string& rel, Manifest* out, StatMap* stats, HashCache* cache) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) Fail("opendir " + dir + ": " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& name : names) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    std::string p = root + "/" + r;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) Fail("lstat " + p + ": " + std::strerror(errno));
    Entry e;
    if (S_ISDIR(st.st_mode)) {
      e.kind = 'd';
      (*out)[r] = e;
      ScanInto(root, r, out, stats, cache);
      continue;
    }
    if (S_ISREG(st.st_mode)) {
      e.kind = 'f';
      e.mode = st.st_mode & 07777;
      e.size = static_cast<uint64_t>(st.st_size);
      StatKey key = KeyOf(st);
      if (cache) {
        auto it = cache->find(r);
        if (it != cache->end() && it->second.first == key) {
          e.content = it->second.second;
        } else {
          e.content = Sha256OfFile(p);
          (*cache)[r] = {key, e.content};
        }
      } else {
        e.content = Sha256OfFile(p);
      }
      if (stats) (*stats)[r] = key;
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = 'l';
      char buf[4096];
      ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
      if (n < 0) Fail("readlink " + p + ": " + std::strerror(errno));
      e.content.assign(buf, static_cast<size_t>(n));
    }
    (*out)[r] = e;
  }
}

Manifest ScanTree(const std::string& root, StatMap* stats = nullptr, HashCache* cache = nullptr) {
  Manifest m;
  ScanInto(root, "", &m, stats, cache);
  return m;
}

// Empty when equal; otherwise the first differences, one per line.
std::string DiffManifests(const Manifest& want, const Manifest& got) {
  std::vector<std::string> lines;
  for (const auto& [path, e] : want) {
    auto it = got.find(path);
    if (it == got.end()) lines.push_back("missing " + path + " (want " + Describe(e) + ")");
    else if (!(it->second == e)) lines.push_back("differs " + path + ": want " + Describe(e) + ", got " + Describe(it->second));
  }
  for (const auto& [path, e] : got)
    if (!want.count(path)) lines.push_back("unexpected " + path + " (" + Describe(e) + ")");
  std::string out;
  for (size_t i = 0; i < lines.size() && i < 20; i++) out += "    " + lines[i] + "\n";
  if (lines.size() > 20) out += "    ... " + std::to_string(lines.size() - 20) + " more\n";
  return out;
}

// ---------------------------------------------------------------- processes

struct Child {
  pid_t pid = -1;
  int pidfd = -1;
  Clock::time_point start;
  bool reaped = false;
  int status = 0;
  double exit_ms = -1;  // when it was seen to exit, ms after spawn
  bool Killed() const { return reaped && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  bool ExitedOk() const { return reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string StatusText() const {
    if (!reaped) return "running";
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
  }
};

// Every child is spawned in its own process group and tracked until reaped,
// so that a failing test never leaves one running.
class Processes {
 public:
  Child Spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || err < 0) Fail("cannot open redirections for " + argv[0]);
    Child c;
    c.start = Clock::now();
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) Fail(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test even if the test is killed
      if (::getppid() != parent) _exit(126);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      ::execv(args[0], args.data());
      static const char kMsg[] = "crash_test: exec failed\n";
      (void)!::write(2, kMsg, sizeof kMsg - 1);
      _exit(127);
    }
    ::setpgid(pid, pid);  // also here, so the group exists whenever we kill it
    ::close(in);
    ::close(out);
    ::close(err);
    c.pid = pid;
    live_.insert(pid);
#ifdef SYS_pidfd_open
    c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
    return c;
  }

  bool TryReap(Child& c) {
    if (c.reaped) return true;
    int st = 0;
    pid_t r;
    do {
      r = ::waitpid(c.pid, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != c.pid) return false;
    Reaped(c, st);
    return true;
  }

  // Waits up to timeout_ms for the child to exit; true if it did (reaped).
  bool WaitFor(Child& c, double timeout_ms) {
    auto deadline = c.start + std::chrono::microseconds(static_cast<int64_t>(timeout_ms * 1000));
    for (;;) {
      if (TryReap(c)) return true;
      auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      if (c.pidfd >= 0) {
        struct pollfd p{c.pidfd, POLLIN, 0};
        struct timespec ts{static_cast<time_t>(left / 1000000), static_cast<long>(left % 1000000) * 1000};
        ::ppoll(&p, 1, &ts, nullptr);
      } else {
        ::usleep(static_cast<useconds_t>(std::min<int64_t>(left, 200)));
      }
    }
  }

  void KillAndReap(Child& c) {
    if (c.reaped) return;
    ::kill(-c.pid, SIGKILL);
    ::kill(c.pid, SIGKILL);
    int st = 0;
    pid_t r;
    do {
      r = ::waitpid(c.pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    Reaped(c, st);
  }

  // For TearDown: whatever is still running is killed and reaped.
  void KillAll() {
    for (pid_t pid : live_) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      int st;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
    live_.clear();
  }

 private:
  void Reaped(Child& c, int st) {
    c.reaped = true;
    c.status = st;
    c.exit_ms = MsSince(c.start);
    if (c.pidfd >= 0) ::close(c.pidfd);
    c.pidfd = -1;
    live_.erase(c.pid);
  }
  std::set<pid_t> live_;
};

struct CmdResult {
  int code = -1;  // exit code, or -1 if killed by a signal
  std::string out, err;
  double ms = 0;
};

// ---------------------------------------------------------------- the test

struct Version {
  std::string id;   // full commit id
  std::string tag;  // keeps it reachable through gc
  Manifest manifest;
  std::string how;  // which step made it
};

struct Counters {
  int import_runs = 0, import_killed = 0, import_killed_after_commit = 0, import_finished = 0;
  int gc_runs = 0, gc_killed = 0, gc_finished = 0;
  int gc_killed_after_switch = 0;  // the index already pointed at the new packs
  int gc_killed_mid_copy = 0;      // it had written new packs that the index never learnt about
  int versions_verified = 0;
  std::vector<double> import_kill_fraction;  // delay / later measured duration of the same import
  std::vector<double> gc_kill_fraction;      // delay / duration of the complete gc run right after
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = EnvOr("TMPDIR", "/tmp");
    std::string tmpl = base + "/tusk-crash-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    ASSERT_NE(::mkdtemp(buf.data()), nullptr) << "mkdtemp in " << base << ": " << std::strerror(errno);
    root_ = buf.data();
    store_ = root_ + "/store";
    src_ = root_ + "/src";
    gsrc_ = root_ + "/garbage-src";
    scratch_ = root_ + "/scratch";
    fs::create_directories(src_);
    fs::create_directories(scratch_);
    // Run a private copy of the binary: a concurrent rebuild of build/tusk
    // must not make exec fail in the middle of the scenario.
    tusk_ = root_ + "/tusk";
    std::error_code ec;
    fs::copy_file(TUSK_BINARY, tusk_, fs::copy_options::overwrite_existing, ec);
    ASSERT_FALSE(ec) << "copying " << TUSK_BINARY << ": " << ec.message();
    fs::permissions(tusk_, fs::perms::owner_all, fs::perm_options::add);
  }

  void TearDown() override {
    procs_.KillAll();
    if (std::getenv("TUSK_CRASH_KEEP")) {
      std::cout << "[crash] kept " << root_ << std::endl;
    } else if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  // ---- running tusk

  std::vector<std::string> TuskArgv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{tusk_, "--store", store_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  static std::string Join(const std::vector<std::string>& args) {
    std::string s = "tusk";
    for (const auto& a : args) s += " " + a;
    return s;
  }

  CmdResult Tusk(const std::vector<std::string>& args) {
    std::string out = root_ + "/cmd.out", err = root_ + "/cmd.err";
    Child c = procs_.Spawn(TuskArgv(args), out, err);
    if (!procs_.WaitFor(c, kCommandTimeoutMs)) {
      procs_.KillAndReap(c);
      Fail(Join(args) + " did not finish within " + std::to_string(kCommandTimeoutMs / 1000) + " s (killed)");
    }
    CmdResult r;
    auto& t = command_ms_[args.empty() ? "" : args[0]];
    t.first++;
    t.second += c.exit_ms;
    r.code = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    r.ms = c.exit_ms;
    return r;
  }

  CmdResult TuskOk(const std::vector<std::string>& args, const std::string& why) {
    CmdResult r = Tusk(args);
    if (r.code != 0)
      Fail(why + ": `" + Join(args) + "` failed (exit " + std::to_string(r.code) + ")\nstdout:\n" + Truncated(r.out) +
           "\nstderr:\n" + Truncated(r.err));
    return r;
  }

  // ---- reading the store

  std::string Head() {
    CmdResult r = TuskOk({"branch", kDataset, "--json"}, "listing branches");
    static const std::regex re(R"re("name":"main","commit":("([0-9a-f]{64})"|null))re");
    std::smatch m;
    if (!std::regex_search(r.out, m, re)) Fail("cannot find main in `tusk branch --json` output:\n" + Truncated(r.out));
    return m[2].matched ? m[2].str() : "";
  }

  std::vector<std::string> Parents(const std::string& id) {
    CmdResult r = TuskOk({"log", std::string(kDataset) + "@" + id, "-n", "1", "--json"}, "reading commit " + id);
    static const std::regex re(R"re("parents":\[([^\]]*)\])re");
    std::smatch m;
    if (!std::regex_search(r.out, m, re)) Fail("no parents in `tusk log --json` output:\n" + Truncated(r.out));
    std::vector<std::string> out;
    static const std::regex hex("[0-9a-f]{64}");
    std::string list = m[1].str();
    for (std::sregex_iterator it(list.begin(), list.end(), hex), end; it != end; ++it) out.push_back(it->str());
    return out;
  }

  std::map<std::string, std::string> Tags() {
    CmdResult r = TuskOk({"tag", kDataset, "--json"}, "listing tags");
    static const std::regex re(R"re("name":"([^"]*)","commit":"([0-9a-f]{64})")re");
    std::map<std::string, std::string> out;
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), re), end; it != end; ++it) out[(*it)[1]] = (*it)[2];
    return out;
  }

  void Fsck(const std::string& when) {
    CmdResult r = Tusk({"fsck"});
    if (r.code != 0 || r.out.find("no problems found") == std::string::npos)
      Fail("tusk fsck " + when + " is not clean (exit " + std::to_string(r.code) + ")\nstdout:\n" + Truncated(r.out) +
           "\nstderr:\n" + Truncated(r.err));
  }

  void VerifyExport(const std::string& ref, const Manifest& want, const std::string& what) {
    std::string dest = scratch_ + "/export";
    std::error_code ec;
    fs::remove_all(dest, ec);
    TuskOk({"export", ref, dest}, "exporting " + what);
    Manifest got = ScanTree(dest);
    fs::remove_all(dest, ec);
    std::string diff = DiffManifests(want, got);
    if (!diff.empty()) Fail("export of " + ref + " (" + what + ") is not byte-identical to what was committed:\n" + diff);
    counters_.versions_verified++;
  }

  void VerifyVersion(const Version& v, bool by_tag = false) {
    VerifyExport(std::string(kDataset) + "@" + (by_tag ? v.tag : v.id), v.manifest, v.tag + " (" + v.how + ")");
  }
  void VerifyAll(bool by_tag = false) {
    for (const auto& v : versions_) VerifyVersion(v, by_tag);
  }
  // The latest n versions among the first `count` (versions made during the
  // current run were verified right after the kill already).
  void VerifyLatest(size_t n, size_t count) {
    for (size_t i = count > n ? count - n : 0; i < count; i++) VerifyVersion(versions_[i]);
  }

  // ---- versions

  // `id` appeared on main after an import of `manifest` on top of head_:
  // checks it is complete (parent, content), tags it and records it.
  void AddVersion(const std::string& id, const Manifest& manifest, const StatMap& stats, time_t import_start,
                  const std::string& how) {
    std::vector<std::string> parents = Parents(id);
    std::vector<std::string> want;
    if (!head_.empty()) want.push_back(head_);
    if (parents != want)
      Fail("new head " + id + " (" + how + ") has parents [" + (parents.empty() ? "" : parents[0]) + "], expected [" +
           head_ + "]");
    Version v{id, "v" + std::to_string(versions_.size() + 1), manifest, how};
    VerifyVersion(v);
    TuskOk({"tag", std::string(kDataset) + "@" + v.tag, std::string(kDataset) + "@" + id}, "tagging " + id);
    versions_.push_back(std::move(v));
    head_ = id;
    // What the import recorded in its stat cache (for predicting later reads).
    std::map<std::string, std::pair<StatKey, bool>> next;
    for (const auto& [path, key] : stats) {
      auto old = committed_stats_.find(path);
      bool recorded = (old != committed_stats_.end() && old->second.first == key && old->second.second) ||
                      key.ctime_ns / 1000000000ll < static_cast<int64_t>(import_start) - 2;
      next[path] = {key, recorded};
    }
    committed_stats_ = std::move(next);
    Log("  version " + versions_.back().tag + " = " + id.substr(0, 12) + " (" + how + ")");
  }

  // Bytes the next import of the source will read (files it cannot skip).
  uint64_t PredictReadBytes(const StatMap& stats) const {
    uint64_t bytes = 0;
    for (const auto& [path, key] : stats) {
      auto it = committed_stats_.find(path);
      if (it == committed_stats_.end() || !(it->second.first == key) || !it->second.second) bytes += key.size;
    }
    return bytes;
  }
  double PredictImportMs(uint64_t bytes) const {
    return import_overhead_ms_ + static_cast<double>(bytes) / kMiB * import_ms_per_mib_;
  }
  void LearnImport(uint64_t bytes, double ms) {
    if (bytes < 4 * kMiB) return;
    double per_mib = std::max(0.2, (ms - import_overhead_ms_) / (static_cast<double>(bytes) / kMiB));
    import_ms_per_mib_ = 0.7 * import_ms_per_mib_ + 0.3 * per_mib;
  }

  struct SourceState {
    Manifest manifest;
    StatMap stats;
  };
  SourceState ScanSource() {
    SourceState s;
    s.manifest = ScanTree(src_, &s.stats, &src_hashes_);
    return s;
  }

  // An unkilled import of the source onto main; must commit.
  void NormalImport(const std::string& how, double* kill_fraction_delay = nullptr) {
    SourceState s = ScanSource();
    uint64_t bytes = PredictReadBytes(s.stats);
    time_t start = ::time(nullptr);
    CmdResult r = TuskOk({"import", src_, std::string(kDataset) + "@main", "-m", how, "--author", "crash-test"},
                         "normal import (" + how + ")");
    LearnImport(bytes, r.ms);
    if (kill_fraction_delay && r.ms > 0) counters_.import_kill_fraction.push_back(*kill_fraction_delay / r.ms);
    std::string id = Head();
    if (id == head_) Fail("import (" + how + ") exited 0 but main did not move:\n" + Truncated(r.out));
    AddVersion(id, s.manifest, s.stats, start, how);
  }

  // ---- the source tree

  std::string NewFileName(const std::string& dir, bool text) {
    return dir + "/f" + std::to_string(next_file_++) + (text ? ".csv" : ".bin");
  }

  void AddSmallFile(const std::string& dir) {
    fs::create_directories(src_ + "/" + dir);
    bool text = rng_->Chance(0.35);
    std::string rel = NewFileName(dir, text);
    uint64_t size = rng_->LogUniform(1 * kKiB, 2 * kMiB);
    WriteFile(src_ + "/" + rel, text ? rng_->Text(size) : rng_->Bytes(size));
    small_files_.push_back(rel);
  }

  void GenerateBaseTree() {
    for (int i = 0; i < 40; i++) AddSmallFile(kDirs[rng_->Uniform(0, std::size(kDirs) - 1)]);
    fs::create_directories(src_ + "/links");
    if (::symlink(("../" + small_files_[0]).c_str(), (src_ + "/links/first").c_str()) != 0)
      Fail(std::string("symlink: ") + std::strerror(errno));
    big_pool_ = rng_->Bytes(40 * kMiB);
  }

  void ModifySmallFile() {
    const std::string& rel = small_files_[rng_->Uniform(0, small_files_.size() - 1)];
    std::string path = src_ + "/" + rel;
    uint64_t size = fs::file_size(path);
    switch (rng_->Uniform(0, 3)) {
      case 0: {  // overwrite a range in place
        uint64_t len = std::min<uint64_t>(std::max<uint64_t>(size, 1), rng_->Uniform(1, 64 * kKiB));
        PwriteFile(path, rng_->Bytes(len), size > len ? rng_->Uniform(0, size - len) : 0);
        break;
      }
      case 1:  // append
        PwriteFile(path, rng_->Bytes(rng_->Uniform(1, 256 * kKiB)), size);
        break;
      case 2:  // rewrite with a new size
        WriteFile(path, rng_->Chance(0.5) ? rng_->Text(rng_->LogUniform(kKiB, 2 * kMiB)) : rng_->Bytes(rng_->LogUniform(kKiB, 2 * kMiB)));
        break;
      default:  // permissions and content
        PwriteFile(path, rng_->Bytes(16), 0);
        ::chmod(path.c_str(), rng_->Chance(0.5) ? 0600 : 0755);
        break;
    }
  }

  void DeleteSmallFile() {
    size_t i = rng_->Uniform(1, small_files_.size() - 1);  // [0] is the symlink's target
    fs::remove(src_ + "/" + small_files_[i]);
    small_files_.erase(small_files_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  // Writes or replaces big.bin: fresh random data, or the pool with patches
  // (mostly deduplicated, but still read and hashed in full by the import).
  void WriteBigFile() {
    uint64_t size = rng_->Uniform(8 * kMiB, 40 * kMiB);
    std::string data;
    if (rng_->Chance(0.5)) {
      data = rng_->Bytes(size);
    } else {
      data = big_pool_.substr(0, size);
      for (int p = static_cast<int>(rng_->Uniform(2, 12)); p > 0; p--) {
        std::string patch = rng_->Bytes(4 * kKiB);
        data.replace(rng_->Uniform(0, size - patch.size()), patch.size(), patch);
      }
    }
    WriteFile(src_ + "/big.bin", data);
    have_big_ = true;
  }

  // A few random changes; always at least one file changes content.
  std::string MutateSource() {
    std::string what;
    int ops = static_cast<int>(rng_->Uniform(1, 4));
    ModifySmallFile();
    what += "M";
    for (int i = 1; i < ops; i++) {
      double r = rng_->Real(0, 1);
      if (r < 0.45) {
        ModifySmallFile();
        what += "M";
      } else if (r < 0.75 || small_files_.size() <= 25) {
        AddSmallFile(kDirs[rng_->Uniform(0, std::size(kDirs) - 1)]);
        what += "A";
      } else {
        DeleteSmallFile();
        what += "D";
      }
    }
    if (rng_->Chance(0.45)) {
      WriteBigFile();
      what += "+big";
    } else if (have_big_ && rng_->Chance(0.6)) {
      fs::remove(src_ + "/big.bin");
      have_big_ = false;
      what += "-big";
    }
    while (kept_files_.size() > 1) {
      fs::remove(src_ + "/" + kept_files_.front());
      kept_files_.pop_front();
      what += "-kept";
    }
    return what;
  }

  // Garbage for gc: a branch whose import stores new data, part of which main
  // then adopts (so gc must copy live records out of that pack), then the
  // branch is deleted.
  void MakeGarbage(int run) {
    std::string branch = std::string(kDataset) + "@g" + std::to_string(run);
    std::error_code ec;
    fs::remove_all(gsrc_, ec);
    fs::create_directories(gsrc_ + "/junk");
    for (int i = static_cast<int>(rng_->Uniform(2, 4)); i > 0; i--)
      WriteFile(gsrc_ + "/junk/j" + std::to_string(i) + ".bin", rng_->Bytes(rng_->Uniform(1 * kMiB, 6 * kMiB)));
    std::string keep = rng_->Bytes(rng_->Uniform(4 * kMiB, 16 * kMiB));
    WriteFile(gsrc_ + "/keep.bin", keep);
    TuskOk({"branch", branch}, "creating garbage branch");
    TuskOk({"import", gsrc_, branch, "-m", "garbage", "--author", "crash-test"}, "importing onto the garbage branch");
    if (rng_->Chance(0.7)) {
      fs::create_directories(src_ + "/kept");
      std::string rel = "kept/k" + std::to_string(run) + ".bin";
      WriteFile(src_ + "/" + rel, keep);
      kept_files_.push_back(rel);
      NormalImport("adopt data of " + branch);
    }
    TuskOk({"branch", "-d", branch}, "deleting the garbage branch");
  }

  void Log(const std::string& line) {
    log_.push_back(line);
    if (log_.size() > 40) log_.pop_front();
    if (verbose_) std::cout << "[crash] " << line << std::endl;
  }

  // ---- one run each

  // Uniform over the expected run time, with extra weight on its last part,
  // where commands make their changes visible (commit, index switch, unlink).
  double KillDelay(double expected_ms) {
    return expected_ms * (rng_->Chance(0.3) ? rng_->Real(0.75, 1.1) : rng_->Real(0, 1.15));
  }

  void ImportRun(int run) {
    counters_.import_runs++;
    std::string what = MutateSource();
    SourceState s = ScanSource();
    uint64_t bytes = PredictReadBytes(s.stats);
    double est = PredictImportMs(bytes);
    double delay = KillDelay(est);
    std::string old_head = head_;
    time_t start = ::time(nullptr);
    std::vector<std::string> args{"import", src_, std::string(kDataset) + "@main", "-m", "run " + std::to_string(run),
                                  "--author", "crash-test"};
    Child c = procs_.Spawn(TuskArgv(args), "/dev/null", root_ + "/killed.err");
    if (!procs_.WaitFor(c, delay)) procs_.KillAndReap(c);
    char line[256];
    std::snprintf(line, sizeof line, "run %d: import [%s] ~%.1f MiB to read, est %.0f ms, kill at %.1f ms: %s%s", run,
                  what.c_str(), static_cast<double>(bytes) / kMiB, est, delay, c.StatusText().c_str(),
                  c.Killed() ? "" : (" after " + std::to_string(static_cast<int>(c.exit_ms)) + " ms").c_str());
    Log(line);
    if (c.Killed()) {
      counters_.import_killed++;
    } else {
      counters_.import_finished++;
      if (!c.ExitedOk()) Fail("import (not killed) failed: " + c.StatusText() + "\nstderr:\n" + Truncated(ReadFile(root_ + "/killed.err")));
      LearnImport(bytes, c.exit_ms);
    }
    Fsck("after run " + std::to_string(run) + " (" + std::string(c.Killed() ? "killed" : "finished") + " import)");
    std::string now = Head();
    if (now != old_head) {
      if (c.Killed()) counters_.import_killed_after_commit++;
      AddVersion(now, s.manifest, s.stats, start, std::string(c.Killed() ? "killed after commit, " : "") + "run " + std::to_string(run));
    } else {
      if (!c.Killed()) Fail("import exited 0 but main did not move (run " + std::to_string(run) + ")");
      // The store must still work: the same import, unkilled, commits.
      NormalImport("redo of run " + std::to_string(run), &delay);
    }
  }

  void GcRun(int run) {
    counters_.gc_runs++;
    MakeGarbage(run);
    std::string old_head = head_;
    size_t registered_before = RegisteredPacks();
    std::set<std::string> files_before = PackFiles();
    double delay = KillDelay(gc_est_ms_);
    Child c = procs_.Spawn(TuskArgv({"gc"}), "/dev/null", root_ + "/killed.err");
    if (!procs_.WaitFor(c, delay)) procs_.KillAndReap(c);
    char line[256];
    std::snprintf(line, sizeof line, "run %d: gc, est %.0f ms, kill at %.1f ms: %s%s", run, gc_est_ms_, delay,
                  c.StatusText().c_str(),
                  c.Killed() ? "" : (" after " + std::to_string(static_cast<int>(c.exit_ms)) + " ms").c_str());
    Log(line);
    if (c.Killed()) {
      counters_.gc_killed++;
      // Where did it die? The index switch changes the registered pack count
      // (gc always rewrites or deletes at least the garbage branch's pack).
      size_t registered_after = RegisteredPacks();
      std::set<std::string> files_after = PackFiles();
      if (registered_after != registered_before) counters_.gc_killed_after_switch++;
      size_t created = 0, removed = 0;
      for (const auto& f : files_after) created += !files_before.count(f);
      for (const auto& f : files_before) removed += !files_after.count(f);
      if (registered_after == registered_before && created > 0) counters_.gc_killed_mid_copy++;
      Log("  killed gc: registered packs " + std::to_string(registered_before) + " -> " + std::to_string(registered_after) +
          ", pack files created " + std::to_string(created) + ", removed " + std::to_string(removed));
    } else {
      counters_.gc_finished++;
      if (!c.ExitedOk()) Fail("gc (not killed) failed: " + c.StatusText() + "\nstderr:\n" + Truncated(ReadFile(root_ + "/killed.err")));
      gc_est_ms_ = 0.6 * gc_est_ms_ + 0.4 * c.exit_ms;
    }
    Fsck("after run " + std::to_string(run) + " (" + std::string(c.Killed() ? "killed" : "finished") + " gc)");
    std::string now = Head();
    if (now != old_head) Fail("gc moved main from " + old_head + " to " + now);
    // The store must still work: an import on top of whatever the gc left...
    ModifySmallFile();
    AddSmallFile("after-gc");
    NormalImport("import after gc run " + std::to_string(run));
    // ...and a complete gc that cleans up after the interrupted one.
    if (c.Killed()) {
      CmdResult redo = TuskOk({"gc"}, "gc after the killed gc of run " + std::to_string(run));
      counters_.gc_kill_fraction.push_back(delay / std::max(1.0, redo.ms));
      gc_est_ms_ = 0.6 * gc_est_ms_ + 0.4 * redo.ms;
      Fsck("after the gc that followed the killed gc of run " + std::to_string(run));
    }
  }

  std::set<std::string> PackFiles() {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(store_ + "/packs"))
      if (e.is_regular_file() && e.path().extension() == ".pack") out.insert(e.path().filename().string());
    return out;
  }

  size_t RegisteredPacks() {
    CmdResult stats = TuskOk({"stats", "--json"}, "stats");
    static const std::regex packs_re(R"re("packs":([0-9]+))re");
    std::smatch m;
    if (!std::regex_search(stats.out, m, packs_re)) Fail("no pack count in `tusk stats --json`:\n" + stats.out);
    return std::stoul(m[1].str());
  }

  void Scenario() {
    auto started = Clock::now();
    TuskOk({"init"}, "init");
    TuskOk({"dataset", "create", kDataset}, "dataset create");
    GenerateBaseTree();

    // Calibration: the base import (throughput), a no-change import (fixed
    // cost) and one gc with garbage to collect.
    {
      SourceState s = ScanSource();
      uint64_t bytes = 0;
      for (const auto& [p, k] : s.stats) bytes += k.size;
      time_t start = ::time(nullptr);
      CmdResult r = TuskOk({"import", src_, std::string(kDataset) + "@main", "-m", "base", "--author", "crash-test"}, "base import");
      std::string id = Head();
      if (id.empty()) Fail("base import did not create a commit:\n" + r.out);
      AddVersion(id, s.manifest, s.stats, start, "base");
      CmdResult again = TuskOk({"import", src_, std::string(kDataset) + "@main", "-m", "nothing"}, "no-change import");
      if (again.out.find("no changes") == std::string::npos || Head() != head_)
        Fail("importing an unchanged tree made a commit:\n" + again.out);
      import_overhead_ms_ = std::max(2.0, again.ms);
      import_ms_per_mib_ = std::max(0.2, (r.ms - import_overhead_ms_) / (static_cast<double>(bytes) / kMiB));
      MakeGarbage(0);
      CmdResult gc = TuskOk({"gc"}, "calibration gc");
      gc_est_ms_ = std::max(5.0, gc.ms);
      Fsck("after the calibration gc");
      VerifyAll();
      char line[256];
      std::snprintf(line, sizeof line,
                    "calibrated: import %.1f ms + %.2f ms/MiB (base %.1f MiB in %.0f ms), gc %.0f ms", import_overhead_ms_,
                    import_ms_per_mib_, static_cast<double>(bytes) / kMiB, r.ms, gc_est_ms_);
      Log(line);
    }

    // Fewer runs in a sanitizer build (tests/sanitizer_scale.h).
    constexpr const char* kDefaultRuns = tusk::test_scale::ForThisBuild("50", "8");
    int runs = std::max(1, std::atoi(EnvOr("TUSK_CRASH_RUNS", kDefaultRuns)));
    int gc_runs = runs * 3 / 10;
    std::vector<char> plan(static_cast<size_t>(runs), 'I');
    std::fill(plan.begin(), plan.begin() + gc_runs, 'G');
    std::shuffle(plan.begin(), plan.end(), std::mt19937_64(rng_->Next()));
    for (int run = 1; run <= runs; run++) {
      size_t versions_before = versions_.size();
      if (plan[static_cast<size_t>(run - 1)] == 'I') ImportRun(run);
      else GcRun(run);
      if (run == runs) break;  // everything is verified after the final gc
      if (run % 10 == 0) VerifyAll();
      else VerifyLatest(2, versions_before);
    }

    // Finally: a full gc must reclaim every crash leftover and keep every
    // tagged version intact.
    CmdResult gc = TuskOk({"gc"}, "final gc");
    Log("final gc: " + gc.out.substr(0, gc.out.find('\n')));
    Fsck("after the final gc");
    if (Head() != head_) Fail("final gc moved main");
    auto tags = Tags();
    for (const auto& v : versions_) {
      auto it = tags.find(v.tag);
      if (it == tags.end() || it->second != v.id)
        Fail("tag " + v.tag + " should name " + v.id + ", found " + (it == tags.end() ? "nothing" : it->second));
    }
    VerifyAll(/*by_tag=*/true);
    size_t registered = RegisteredPacks(), on_disk = PackFiles().size();
    if (registered != on_disk)
      Fail("after the final gc the store has " + std::to_string(on_disk) + " pack files on disk but the index knows " +
           std::to_string(registered) + ": crash leftovers were not reclaimed");

    double secs = MsSince(started) / 1000;
    auto spread = [](std::vector<double> f) {
      if (f.empty()) return std::string("-");
      std::sort(f.begin(), f.end());
      return std::to_string(static_cast<int>(100 * f.front())) + "%.." + std::to_string(static_cast<int>(100 * f[f.size() / 2])) +
             "%.." + std::to_string(static_cast<int>(100 * f.back())) + "%";
    };
    std::ostringstream summary;
    summary << "seed " << seed_ << ": " << runs << " runs in " << static_cast<int>(secs) << " s; import: "
            << counters_.import_runs << " runs, " << counters_.import_killed << " killed mid-command ("
            << counters_.import_killed_after_commit << " of them after the commit was durable), "
            << counters_.import_finished << " finished before the kill; gc: " << counters_.gc_runs << " runs, "
            << counters_.gc_killed << " killed mid-command (" << counters_.gc_killed_after_switch
            << " after the index switch, " << counters_.gc_killed_mid_copy << " while copying live records), "
            << counters_.gc_finished << " finished before the kill; "
            << versions_.size() << " versions, " << counters_.versions_verified << " exports verified";
    summary << "; kill time as a share of a full run (min/median/max): imports " << spread(counters_.import_kill_fraction)
            << ", gc " << spread(counters_.gc_kill_fraction);
    std::cout << "[crash] " << summary.str() << std::endl;
    if (verbose_) {
      std::cout << "[crash] time in unkilled commands:";
      for (const auto& [cmd, t] : command_ms_) std::cout << " " << cmd << " " << t.first << "x " << static_cast<int>(t.second / 1000) << "s;";
      std::cout << std::endl;
    }
    RecordProperty("crash_summary", summary.str());
  }

  static constexpr const char* kDirs[] = {"a", "a/deep", "b", "c/with space", "c"};

  std::string root_, store_, src_, gsrc_, scratch_, tusk_;
  Processes procs_;
  uint64_t seed_ = 0;
  std::optional<Rng> rng_;
  bool verbose_ = false;
  std::vector<std::string> small_files_;
  std::deque<std::string> kept_files_;
  bool have_big_ = false;
  std::string big_pool_;
  int next_file_ = 0;
  HashCache src_hashes_;
  std::map<std::string, std::pair<StatKey, bool>> committed_stats_;  // path -> (stat, in tusk's stat cache)
  std::string head_;
  std::vector<Version> versions_;
  double import_overhead_ms_ = 10, import_ms_per_mib_ = 4, gc_est_ms_ = 50;
  Counters counters_;
  std::map<std::string, std::pair<int, double>> command_ms_;  // command -> (count, total ms), unkilled runs
  std::deque<std::string> log_;
};

TEST_F(CrashTest, KillImportAndGcAtRandomPointsLosesNothing) {
  if (const char* s = std::getenv("TUSK_CRASH_SEED"); s && *s) seed_ = std::strtoull(s, nullptr, 0);
  else seed_ = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  rng_.emplace(seed_);
  verbose_ = std::getenv("TUSK_CRASH_VERBOSE") != nullptr;
  std::cout << "[crash] seed " << seed_ << " (reproduce with TUSK_CRASH_SEED=" << seed_ << "), store " << store_ << std::endl;
  RecordProperty("seed", std::to_string(seed_));
  try {
    Scenario();
  } catch (const std::exception& e) {
    std::string recent;
    for (const auto& l : log_) recent += "    " + l + "\n";
    FAIL() << "crash test failed (seed " << seed_ << ", reproduce with TUSK_CRASH_SEED=" << seed_ << "):\n"
           << e.what() << "\nrecent steps:\n"
           << recent;
  }
}

}  // namespace
