// End-to-end test support for the `tusk` command-line tool.
//
// Terms:
//   CliTest     a gtest fixture owning a fresh temporary directory (dir()) that
//               TearDown removes, and a store location inside it (store())
//               that every child process finds through $TUSK_STORE.
//   Run(...)    runs the tusk binary (TUSK_BINARY) with the given arguments via
//               fork/execve and returns its exit code, stdout and stderr.
//   FsEntry     one file, directory or symlink to create with MakeTree, with
//               its mode, mtime (ns) and owner.
//   TreeDiff    compares two directory trees byte for byte: kinds, full mode
//               bits, owner, sizes, mtimes (ns), symlink targets, file content
//               and empty directories. The two roots' own metadata is not
//               compared (a tusk tree stores its root as a bare listing).
//
// Thread-safety: none needed; each test runs on one thread.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace tusk::cli_test {

inline constexpr char kTuskBinary[] = TUSK_BINARY;

// ---- processes ----

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  bool signaled = false;  // WIFSIGNALED: killed by a signal (a crash, unless the test sent it)
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  auto clip = [](const std::string& s) { return s.size() > 2000 ? s.substr(0, 2000) + "...[clipped]" : s; };
  return os << "\n[exit " << r.exit_code << "]\n[stdout]\n" << clip(r.out) << "\n[stderr]\n" << clip(r.err) << "\n";
}

// Runs argv[0] (a path) with `env` as its whole environment and stdin from
// `stdin_path`; collects stdout and stderr until both close.
inline RunResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                            const std::string& stdin_path = "/dev/null") {
  RunResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  std::vector<char*> c_argv, c_env;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const auto& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    int in = ::open(stdin_path.c_str(), O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out_pipe[1], 1) < 0 || ::dup2(err_pipe[1], 2) < 0) ::_exit(126);
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return result;
  }
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  char buf[1 << 16];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        open_count--;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.signaled = WIFSIGNALED(status);
  return result;
}

// ---- small text helpers ----

inline ::testing::AssertionResult HasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << part << "\" in:\n" << text;
}

inline ::testing::AssertionResult StartsWith(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected text starting with \"" << prefix << "\", got:\n" << text;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline std::string Join(const std::vector<std::string>& parts, const std::string& sep = "\n") {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) out += (i ? sep : "") + parts[i];
  return out;
}

// The number after "KEY": in a flat JSON object (as `tusk stats --json`
// prints), or -1 when absent.
inline double JsonNumber(const std::string& json, const std::string& key) {
  std::string pattern = "\"" + key + "\":";
  size_t at = json.find(pattern);
  if (at == std::string::npos) return -1;
  return std::strtod(json.c_str() + at + pattern.size(), nullptr);
}

// Deterministic pseudo-random bytes (incompressible, undeduplicable).
inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

// ---- files and trees ----

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFileOrDie(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << "create " << path << ": " << std::strerror(errno);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    ASSERT_GT(n, 0) << "write " << path << ": " << std::strerror(errno);
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

inline void SetMtime(const std::string& path, int64_t sec, long nsec) {
  struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(sec), nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0)
      << "utimensat " << path << ": " << std::strerror(errno);
}

struct FsEntry {
  enum class Kind { kFile, kDir, kSymlink };
  Kind kind = Kind::kFile;
  std::string path;    // relative to the tree's root
  std::string data;    // file content or symlink target
  mode_t mode = 0644;  // permission bits incl. setuid/setgid/sticky (not for symlinks)
  std::optional<struct timespec> mtime;
  std::optional<std::pair<uid_t, gid_t>> owner;

  FsEntry& WithMtime(int64_t sec, long nsec) {
    mtime = timespec{static_cast<time_t>(sec), nsec};
    return *this;
  }
  FsEntry& WithOwner(uid_t uid, gid_t gid) {
    owner = {uid, gid};
    return *this;
  }
};

inline FsEntry File(std::string path, std::string content, mode_t mode = 0644) {
  return FsEntry{FsEntry::Kind::kFile, std::move(path), std::move(content), mode, {}, {}};
}
inline FsEntry Dir(std::string path, mode_t mode = 0755) {
  return FsEntry{FsEntry::Kind::kDir, std::move(path), "", mode, {}, {}};
}
inline FsEntry Symlink(std::string path, std::string target) {
  return FsEntry{FsEntry::Kind::kSymlink, std::move(path), std::move(target), 0777, {}, {}};
}

inline void MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  ASSERT_FALSE(ec) << "mkdir -p " << path << ": " << ec.message();
}

// Creates `entries` under `root` (created if missing; parents of entries are
// created 0755 as needed). Directory metadata is applied last, deepest first,
// so that filling a directory does not disturb its mtime.
inline void MakeTree(const std::string& root, const std::vector<FsEntry>& entries) {
  ASSERT_NO_FATAL_FAILURE(MakeDirs(root));
  auto apply = [&](const FsEntry& e, const std::string& p) {
    if (e.owner) {
      ASSERT_EQ(::lchown(p.c_str(), e.owner->first, e.owner->second), 0) << "chown " << p;
    }
    // chmod after chown: chown clears setuid and setgid.
    if (e.kind != FsEntry::Kind::kSymlink) {
      ASSERT_EQ(::chmod(p.c_str(), e.mode), 0) << "chmod " << p;
    }
    if (e.mtime) {
      ASSERT_NO_FATAL_FAILURE(SetMtime(p, e.mtime->tv_sec, e.mtime->tv_nsec));
    }
  };
  std::vector<const FsEntry*> dirs;
  for (const auto& e : entries) {
    std::string p = root + "/" + e.path;
    ASSERT_NO_FATAL_FAILURE(MakeDirs(std::filesystem::path(p).parent_path()));
    switch (e.kind) {
      case FsEntry::Kind::kFile:
        ASSERT_NO_FATAL_FAILURE(WriteFileOrDie(p, e.data));
        ASSERT_NO_FATAL_FAILURE(apply(e, p));
        break;
      case FsEntry::Kind::kSymlink:
        ASSERT_EQ(::symlink(e.data.c_str(), p.c_str()), 0) << "symlink " << p << ": " << std::strerror(errno);
        ASSERT_NO_FATAL_FAILURE(apply(e, p));
        break;
      case FsEntry::Kind::kDir:
        ASSERT_NO_FATAL_FAILURE(MakeDirs(p));
        dirs.push_back(&e);
        break;
    }
  }
  std::sort(dirs.begin(), dirs.end(), [](const FsEntry* a, const FsEntry* b) {
    return std::count(a->path.begin(), a->path.end(), '/') > std::count(b->path.begin(), b->path.end(), '/');
  });
  for (const FsEntry* d : dirs) ASSERT_NO_FATAL_FAILURE(apply(*d, root + "/" + d->path));
}

// What lstat says about one path, as compared by TreeDiff.
struct NodeInfo {
  mode_t mode = 0;  // st_mode: type and all permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;  // not compared for directories
  int64_t mtime_ns = 0;
  std::string target;  // symlinks
};

inline int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Every path below `root` (not `root` itself), relative, in sorted order.
inline std::map<std::string, NodeInfo> Snapshot(const std::string& root) {
  std::map<std::string, NodeInfo> out;
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string rel = pending.back();
    pending.pop_back();
    std::string abs = rel.empty() ? root : root + "/" + rel;
    DIR* d = ::opendir(abs.c_str());
    if (!d) {
      ADD_FAILURE() << "opendir " << abs << ": " << std::strerror(errno);
      continue;
    }
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      std::string child_abs = root + "/" + child_rel;
      struct stat st;
      if (::lstat(child_abs.c_str(), &st) != 0) {
        ADD_FAILURE() << "lstat " << child_abs;
        continue;
      }
      NodeInfo info{st.st_mode, st.st_uid, st.st_gid, S_ISDIR(st.st_mode) ? 0 : st.st_size, MtimeNs(st), ""};
      if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n = ::readlink(child_abs.c_str(), buf, sizeof buf);
        if (n >= 0) info.target.assign(buf, static_cast<size_t>(n));
      }
      if (S_ISDIR(st.st_mode)) pending.push_back(child_rel);
      out.emplace(child_rel, info);
    }
    ::closedir(d);
  }
  return out;
}

// True if the two regular files hold the same bytes.
inline bool SameContent(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  for (;;) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    if (fa.gcount() != fb.gcount()) return false;
    if (std::memcmp(ba.data(), bb.data(), static_cast<size_t>(fa.gcount())) != 0) return false;
    if (fa.gcount() == 0 || !fa || !fb) return fa.eof() == fb.eof();
  }
}

// Every difference between the trees below `a` and `b`, one readable line each;
// empty when they are identical.
inline std::vector<std::string> TreeDiff(const std::string& a, const std::string& b) {
  std::vector<std::string> diffs;
  auto sa = Snapshot(a), sb = Snapshot(b);
  for (const auto& [path, x] : sa) {
    auto it = sb.find(path);
    if (it == sb.end()) {
      diffs.push_back("only in " + a + ": " + path);
      continue;
    }
    const NodeInfo& y = it->second;
    if (x.mode != y.mode) {
      std::ostringstream s;
      s << path << ": st_mode " << std::oct << x.mode << " vs " << y.mode << " (octal)";
      diffs.push_back(s.str());
    }
    if (x.uid != y.uid || x.gid != y.gid)
      diffs.push_back(path + ": owner " + std::to_string(x.uid) + ":" + std::to_string(x.gid) + " vs " +
                      std::to_string(y.uid) + ":" + std::to_string(y.gid));
    if (x.size != y.size) diffs.push_back(path + ": size " + std::to_string(x.size) + " vs " + std::to_string(y.size));
    if (x.mtime_ns != y.mtime_ns)
      diffs.push_back(path + ": mtime_ns " + std::to_string(x.mtime_ns) + " vs " + std::to_string(y.mtime_ns));
    if (x.target != y.target) diffs.push_back(path + ": symlink target '" + x.target + "' vs '" + y.target + "'");
    if (S_ISREG(x.mode) && S_ISREG(y.mode) && x.size == y.size && !SameContent(a + "/" + path, b + "/" + path))
      diffs.push_back(path + ": content differs");
  }
  for (const auto& [path, y] : sb)
    if (!sa.count(path)) diffs.push_back("only in " + b + ": " + path);
  return diffs;
}

// Total size of the regular files below `dir` (what `du --apparent-size`
// says about pack files, without directory blocks).
inline uint64_t RegularFileBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& [path, info] : Snapshot(dir))
    if (S_ISREG(info.mode)) total += static_cast<uint64_t>(info.size);
  return total;
}

// "path size mtime" for every regular file below `dir`, sorted.
inline std::string FileListing(const std::string& dir) {
  std::string out;
  for (const auto& [path, info] : Snapshot(dir))
    out += path + " " + std::to_string(info.size) + " " + std::to_string(info.mtime_ns) + " " +
           std::to_string(info.mode) + "\n";
  return out;
}

// ---- the fixture ----

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tusk-cli-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    store_ = dir_ + "/store";
  }

  void TearDown() override {
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
      if (::umount(it->c_str()) != 0) ::umount2(it->c_str(), MNT_DETACH);
    }
    mounts_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    EXPECT_FALSE(ec) << "cleaning up " << dir_ << ": " << ec.message();
  }

  const std::string& dir() const { return dir_; }
  const std::string& store() const { return store_; }
  std::string Path(const std::string& rel) const { return dir_ + "/" + rel; }
  // Later Run calls use this store through $TUSK_STORE.
  void UseStore(const std::string& store) { store_ = store; }

  // Runs `tusk ARGS...` with TUSK_STORE=store().
  template <typename... Args>
  RunResult Run(const Args&... args) {
    return RunArgs({std::string(args)...});
  }

  RunResult RunArgs(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {kTuskBinary};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env;
    for (char** e = environ; *e; e++) {
      std::string kv = *e;
      if (kv.rfind("TUSK_STORE=", 0) != 0 && kv.rfind("TUSK_AUTHOR=", 0) != 0) env.push_back(kv);
    }
    env.push_back("TUSK_STORE=" + store_);
    env.push_back("TUSK_AUTHOR=cli-test");
    return RunProcess(argv, env);
  }

  // ---- steps that must succeed ----

  void InitStore() {
    RunResult r = Run("init");
    ASSERT_EQ(r.exit_code, 0) << r;
  }

  void CreateDataset(const std::string& name) {
    RunResult r = Run("dataset", "create", name);
    ASSERT_EQ(r.exit_code, 0) << r;
  }

  // Imports `src` into `target` (DATASET@BRANCH) and expects a new commit.
  template <typename... Extra>
  void Import(const std::string& src, const std::string& target, const std::string& message, const Extra&... extra) {
    RunResult r = Run("import", src, target, "-m", message, extra...);
    ASSERT_EQ(r.exit_code, 0) << r;
    ASSERT_TRUE(StartsWith(r.out, "committed ")) << r;
  }

  void Export(const std::string& ref, const std::string& dest) {
    RunResult r = Run("export", ref, dest);
    ASSERT_EQ(r.exit_code, 0) << r;
  }

  // The full commit id `ref` resolves to, or "" after a recorded failure.
  std::string CommitOf(const std::string& ref) {
    RunResult r = Run("show", ref, "--json");
    EXPECT_EQ(r.exit_code, 0) << r;
    const std::string key = "\"commit\":\"";
    size_t at = r.out.find(key);
    if (r.exit_code != 0 || at == std::string::npos || r.out.size() < at + key.size() + 64) {
      ADD_FAILURE() << "no commit id in" << r;
      return "";
    }
    return r.out.substr(at + key.size(), 64);
  }

  // Number of commits `tusk log REF` prints.
  size_t LogLength(const std::string& ref) {
    RunResult r = Run("log", ref);
    EXPECT_EQ(r.exit_code, 0) << r;
    size_t n = 0;
    for (const auto& line : Lines(r.out))
      if (line.rfind("commit ", 0) == 0) n++;
    return n;
  }

  // What every ref of the store points at: datasets with their branches and
  // tags, for "nothing changed" comparisons.
  std::string RefState() {
    RunResult datasets = Run("dataset", "list", "--json");
    EXPECT_EQ(datasets.exit_code, 0) << datasets;
    std::string state = datasets.out;
    RunResult plain = Run("dataset", "list");
    for (const auto& line : Lines(plain.out)) {
      std::string name = line.substr(0, line.find('\t'));
      state += name + " branches " + Run("branch", name, "--json").out;
      state += name + " tags " + Run("tag", name, "--json").out;
    }
    return state;
  }

  void ExpectFsckClean() {
    RunResult r = Run("fsck");
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(HasSubstr(r.out, "no problems found")) << r;
  }

  // True if `text` is one valid JSON document encoded as UTF-8 (checked by
  // python3's json module, strictly: bytes are decoded as UTF-8 first).
  ::testing::AssertionResult IsValidJson(const std::string& text) {
    std::string path = Path("json-check-input");
    WriteFileOrDie(path, text);
    RunResult r = RunProcess(
        {"/usr/bin/env", "python3", "-c", "import json,sys; json.loads(sys.stdin.buffer.read().decode('utf-8'))"},
        {"PATH=/usr/local/bin:/usr/bin:/bin"}, path);
    ::unlink(path.c_str());
    if (r.exit_code == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "not valid JSON: " << r.err << "\ninput:\n" << text.substr(0, 2000);
  }

  // Mounts a tmpfs of `size` (e.g. "4m") at `path`; TearDown unmounts it.
  // Returns false (and the caller should skip) where mounting is not allowed.
  bool MountTmpfs(const std::string& path, const std::string& size) {
    MakeDirs(path);
    std::string opts = "size=" + size;
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) != 0) return false;
    mounts_.push_back(path);
    return true;
  }

 private:
  std::string dir_;
  std::string store_;
  std::vector<std::string> mounts_;
};

}  // namespace tusk::cli_test
