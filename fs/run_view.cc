#include "fs/run_view.h"

#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "fs/fuse_ops.h"
#include "store/lease.h"

extern char** environ;

namespace tusk::fs {
namespace {

Status WriteProcFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return Status::FromErrno(err, "write " + path);
  return Status::Ok();
}

// The FUSE connection number of the mount at `path` (its anonymous device's
// minor number, the name under /sys/fs/fuse/connections/), or "". The
// session loop must be running: stat() is answered by it.
std::string ConnectionOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || major(st.st_dev) != 0) return "";
  return std::to_string(minor(st.st_dev));
}

}  // namespace

sigset_t RunSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  return set;
}

void BlockRunSignals() {
  sigset_t set = RunSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Status EnterPrivateNamespace() {
  static bool entered = false;  // once per process: later runs (tusk update --all) reuse it
  if (entered) return Status::Ok();
  if (::unshare(CLONE_NEWNS) != 0) {
    int err = errno;
    if (err != EPERM) return Status::FromErrno(err, "unshare(CLONE_NEWNS)");
    // Without CAP_SYS_ADMIN: a user namespace owned by this user, with
    // this user's own uid and gid mapped, grants it in the new namespace.
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
      return Status::FromErrno(errno, "tusk run needs a private mount namespace (root, or unprivileged user "
                                      "namespaces enabled): unshare");
    TUSK_RETURN_IF_ERROR(WriteProcFile("/proc/self/setgroups", "deny"));
    TUSK_RETURN_IF_ERROR(WriteProcFile("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1"));
    TUSK_RETURN_IF_ERROR(WriteProcFile("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1"));
  }
  // Mounts made here must not propagate to the parent namespace; the
  // parent's new mounts still show here.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    return Status::FromErrno(errno, "make the private mount namespace a slave");
  entered = true;
  return Status::Ok();
}

struct RunView::Session {
  // Detaching a mount makes the kernel drop every inode it holds for it
  // (seconds after a million files were read): done in a thread of its own,
  // beside the freeing of this session's nodes. First member, so it is
  // joined last.
  std::jthread unmounting;
  ViewInput input;
  std::unique_ptr<SnapshotFs> fs;
  std::unique_ptr<ReadLog> log;
  FuseContext ctx;
  fuse_session* se = nullptr;
  bool mounted = false;
  std::string connection;
  std::thread loop;
  std::future<void> loop_done;
  std::unique_ptr<ReaderLease> lease;

  // Ends the session: the loop first (it still reads the session's fd),
  // then the mount and the session. False when the loop did not end: then
  // nothing it uses may be freed (the caller leaks the session).
  bool Stop() {
    if (!se) return true;
    if (mounted) {
      fuse_session_exit(se);
      // Abort the connection, then detach the mount: a process still
      // holding a file open would keep a detached connection alive, and
      // the loop's workers would wait on it. Aborting first also spares
      // the loop one FORGET per inode the kernel drops at unmount (half a
      // million after a large run: seconds of work for nothing).
      if (!connection.empty()) (void)WriteProcFile("/sys/fs/fuse/connections/" + connection + "/abort", "1");
      unmounting = std::jthread([mountpoint = input.mountpoint] { (void)::umount2(mountpoint.c_str(), MNT_DETACH); });
    }
    if (loop.joinable()) {
      if (loop_done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
        loop.detach();
        return false;
      }
      loop.join();
    }
    if (mounted) fuse_session_unmount(se);  // closes the fd (an aborted connection is not unmounted again)
    mounted = false;
    fuse_session_destroy(se);
    se = nullptr;
    return true;
  }
  ~Session() { Stop(); }
};

Result<std::unique_ptr<RunView>> RunView::Mount(Repository* repo, const std::vector<ViewInput>& inputs) {
  std::unique_ptr<RunView> view(new RunView());
  uint64_t ns = MountNamespaceOf(::getpid());
  // As for `tusk mount` (fs/mount.cc): chunk buffers come and go all the
  // time; two arenas and a fixed mmap threshold keep the heap compact.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_ARENA_MAX, 2);
  for (const auto& in : inputs) {
    auto s = std::make_unique<Session>();
    s->input = in;
    auto lease = ReaderLease::Acquire(repo->dir());
    if (in.tree) {
      // Not a commit: the writer that made it holds the store's writer
      // lock until it lands, so gc cannot take it away meanwhile.
    } else if (lease.ok()) {
      TUSK_RETURN_IF_ERROR((*lease)->Add(in.commit));
      s->lease = std::move(lease).value();
    } else if (!repo->read_only()) {
      return lease.status();
    }
    FsOptions options;
    options.pinned_dataset = in.dataset;
    if (in.tree) options.pinned_tree = in.tree;
    else options.pinned_commit = in.commit;
    ReaderLease* lease_ptr = s->lease.get();
    options.on_commit = [lease_ptr](const ObjectId& id) { return lease_ptr ? lease_ptr->Add(id) : Status::Ok(); };
    s->fs = std::make_unique<SnapshotFs>(repo, options);
    s->log = std::make_unique<ReadLog>(ns, ::getpid());
    s->ctx.fs = s->fs.get();
    s->ctx.read_log = s->log.get();
    s->ctx.store_dir = repo->dir();
    std::string opts = "ro,default_permissions,fsname=tusk,subtype=tusk,max_read=1048576";
    std::vector<std::string> argv_storage = {"tusk", "-o", opts};
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    s->se = fuse_session_new(&args, &SnapshotOps(), sizeof(fuse_lowlevel_ops), &s->ctx);
    fuse_opt_free_args(&args);
    if (!s->se) return Status::FromErrno(ENODEV, "could not create the FUSE session (is /dev/fuse available?)");
    s->ctx.session = s->se;
    if (fuse_session_mount(s->se, in.mountpoint.c_str()) != 0)
      return Status::FromErrno(EIO, "mounting input " + in.name + " on " + in.mountpoint + " failed (see the message above)");
    s->mounted = true;
    std::promise<void> done;
    s->loop_done = done.get_future();
    fuse_session* se = s->se;
    s->loop = std::thread([se, done = std::move(done)]() mutable {
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, 16);
      fuse_loop_cfg_set_idle_threads(cfg, 4);
      (void)fuse_session_loop_mt(se, cfg);
      fuse_loop_cfg_destroy(cfg);
      done.set_value();
    });
    // Answered by the loop just started, so the kernel has processed INIT,
    // which would reset what follows. As for `tusk mount`: the kernel caps
    // a FUSE mount's readahead at 128 KiB unless told otherwise; set before
    // the command opens anything (a file's window is fixed at open).
    s->connection = ConnectionOf(in.mountpoint);
    if (!s->connection.empty())
      (void)WriteProcFile("/sys/class/bdi/0:" + s->connection + "/read_ahead_kb", "4096");
    view->sessions_.push_back(std::move(s));
  }
  return view;
}

RunView::~RunView() { Unmount(); }

ReadSet RunView::TakeReads(size_t i) { return sessions_.at(i)->log->Take(); }

void RunView::Unmount() {
  for (auto& s : sessions_) {
    // A loop that did not end still uses its session: leak it rather
    // than free what a worker thread may touch.
    if (s && !s->Stop()) (void)s.release();
  }
}

int FindProgram(const std::string& name, std::string* path) {
  if (name.empty()) return ENOENT;
  if (name.find('/') != std::string::npos) {
    *path = name;
    return ::access(name.c_str(), X_OK) == 0 ? 0 : errno;
  }
  const char* env_path = ::getenv("PATH");
  std::string search = env_path ? env_path : "/bin:/usr/bin";
  int found_err = ENOENT;
  size_t start = 0;
  for (;;) {
    size_t colon = search.find(':', start);
    std::string dir = search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) {
        *path = candidate;
        return 0;
      }
      found_err = EACCES;  // as execvp: a file without the x bit, if nothing better comes
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return found_err;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env) {
  CommandResult result;
  if (argv.empty()) {
    result.error = "no command given";
    return result;
  }
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; e++) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (const auto& [k, v] : env) replaced = replaced || k == key;
    if (!replaced) env_storage.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = argv;
  for (auto& a : argv_storage) args.push_back(a.data());
  args.push_back(nullptr);
  // The PATH search, too: execvpe may allocate, which a child of a
  // multi-threaded process must not (another thread may hold malloc's lock).
  std::string program;
  if (int err = FindProgram(argv[0], &program); err != 0) {
    result.error = argv[0] + ": " + (err == ENOENT ? std::string("command not found") : std::strerror(err));
    return result;
  }
  // A file without #! is run by the shell, as execvp does.
  std::vector<char*> shell_args = {const_cast<char*>("sh"), program.data()};
  for (size_t i = 1; i < argv_storage.size(); i++) shell_args.push_back(argv_storage[i].data());
  shell_args.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  // waitpid needs SIGCHLD's default action (SIG_IGN, inherited, would
  // reap the command before it is waited for).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, nullptr);
  struct sigaction ignore {}, old_int {}, old_quit {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &old_int);
  ::sigaction(SIGQUIT, &ignore, &old_quit);
  sigset_t waited = RunSignals();
  ::pthread_sigmask(SIG_BLOCK, &waited, nullptr);
  pid_t parent = ::getpid();
  // Orphans of the command's tree are reparented here, not to init, so that
  // they still descend from tusk run (ReadLog) however they daemonize.
  (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGQUIT, &old_quit, nullptr);
    ::pthread_sigmask(SIG_UNBLOCK, &waited, nullptr);
    // If tusk run dies (even of SIGKILL), the command is told to stop: its
    // inputs went with it.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);
    ::execve(program.c_str(), args.data(), envp.data());
    if (errno == ENOEXEC) ::execve("/bin/sh", shell_args.data(), envp.data());
    int err = errno;
    (void)!::write(pipe_fds[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  if (pid < 0) {
    result.error = std::string("fork: ") + std::strerror(errno);
    ::close(pipe_fds[0]);
  } else {
    int err = 0;
    ssize_t n = ::read(pipe_fds[0], &err, sizeof err);
    ::close(pipe_fds[0]);
    if (n == static_cast<ssize_t>(sizeof err)) {
      result.error = argv[0] + ": " + (err == ENOENT ? std::string("command not found") : std::strerror(err));
      int status;
      ::waitpid(pid, &status, 0);
    } else {
      result.started = true;
      // Wait, passing SIGTERM and SIGHUP on to the command.
      for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
          result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
          break;
        }
        if (r < 0 && errno != EINTR) {
          result.exit_status = 128 + SIGKILL;
          result.signal = SIGKILL;
          break;
        }
        timespec wait{0, 100 * 1000 * 1000};
        siginfo_t info;
        int sig = ::sigtimedwait(&waited, &info, &wait);
        if (sig == SIGTERM || sig == SIGHUP) ::kill(pid, sig);
      }
    }
  }
  // Orphans of the command's tree that ended meanwhile were reparented here
  // (the subreaper): reap them, so that a long `tusk update --all` does not
  // collect zombies.
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGQUIT, &old_quit, nullptr);
  return result;
}

}  // namespace tusk::fs
