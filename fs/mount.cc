#include "fs/mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "fs/fuse_ops.h"
#include "store/lease.h"
#include "store/repository.h"
#include "fs/control_socket.h"

namespace tusk::fs {
namespace {

int Fail(const std::string& msg) {
  std::cerr << "tusk: error: " << msg << std::endl;
  return 1;
}

struct MountInfo {
  std::string type;   // "fuse.tusk"
  std::string devno;  // "0:52"
};

// Finds the mount at `path` in /proc/self/mountinfo, without touching the
// mounted filesystem itself (which may not be serving requests yet).
std::optional<MountInfo> FindMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountInfo> found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    // Octal escapes (\040 for a space) as the kernel writes them.
    std::string decoded;
    for (size_t i = 0; i < point.size(); i++) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded += static_cast<char>(std::strtol(point.substr(i + 1, 3).c_str(), nullptr, 8));
        i += 3;
      } else {
        decoded += point[i];
      }
    }
    if (decoded != path) continue;
    std::string token;
    while (fields >> token && token != "-") {
    }
    MountInfo info;
    info.devno = devno;
    fields >> info.type;
    found = info;  // the last one listed is the one on top
  }
  return found;
}

Status CheckMountpoint(const std::string& path, std::string* real) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) {
    if (errno == ENOENT) return Status::NotFound("mountpoint " + path + " does not exist; create it with mkdir");
    return Status::FromErrno(errno, "mountpoint " + path);
  }
  *real = buf;
  struct stat st;
  if (::stat(buf, &st) != 0) return Status::FromErrno(errno, "mountpoint " + path);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument("mountpoint " + path + " is not a directory");
  if (FindMount(*real)) return Status::Busy(path + " is already a mount point; unmount it first (tusk umount " + path + ")");
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(buf), ::closedir);
  if (!d) return Status::FromErrno(errno, "mountpoint " + path);
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..")
      return Status::Busy("mountpoint " + path + " is not empty; mount on an empty directory so nothing is hidden");
  }
  return Status::Ok();
}

// Sends the parent its verdict ("" = mounted) and closes the pipe.
void Report(int fd, const std::string& error) {
  if (fd < 0) return;
  std::string msg = error.empty() ? "OK" : error;
  (void)!::write(fd, msg.data(), msg.size());
  ::close(fd);
}

// The kernel caps a FUSE mount's readahead at 128 KiB unless its backing
// device info says otherwise; large sequential reads want more requests in
// flight. Best effort: needs root, and only affects speed.
void RaiseReadahead(const std::string& mountpoint) {
  // Never stat() the mount here: the kernel would wait for this very process
  // to answer.
  auto mount = FindMount(mountpoint);
  if (!mount) return;
  std::string path = "/sys/class/bdi/" + mount->devno + "/read_ahead_kb";
  std::ofstream out(path);
  if (out) out << 4096 << std::endl;
}

int Serve(const MountOptions& o, const std::string& mountpoint, int report_fd) {
  auto fail = [&](const std::string& msg) {
    if (report_fd >= 0) {
      Report(report_fd, msg);
      return 1;
    }
    return Fail(msg);
  };
  // Chunk buffers (64 KiB to a few MiB) come and go all the time. With
  // glibc's defaults, 16 threads each grow an arena and the adaptive mmap
  // threshold moves buffers between mmap and heap, and the resident size
  // creeps far past the cache budget. Two arenas and a fixed threshold keep
  // freed buffers reusable (no page faults per chunk) and the heap compact.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_ARENA_MAX, 2);
  bool read_only = o.ref || o.read_only;
  auto repo = Repository::Open(o.store_dir, read_only ? StoreAccess::kReadOnly : StoreAccess::kReadWrite);
  if (!repo.ok()) return fail(repo.status().message());
  // Data read through the mount is checked by CRC-32C on every read and by
  // the decompressor; the full SHA-256 re-hash is left to fsck.
  (*repo)->set_verify_chunk_hashes(false);
  if (o.remote_cache_bytes) (*repo)->set_remote_cache_size(o.remote_cache_bytes);

  std::string log_path = o.log_file.empty() ? o.store_dir + "/mount.log" : o.log_file;
  static std::mutex log_mu;
  FsOptions fs_options;
  fs_options.chunk_cache_bytes = o.cache_bytes;
  fs_options.log = [](const std::string& msg) {
    std::lock_guard lock(log_mu);
    char when[32];
    time_t now = ::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
    std::cerr << when << " tusk mount: " << msg << std::endl;
  };
  if (o.ref) {
    auto spec = ParseRef(*o.ref, true);
    if (!spec.ok()) return fail(spec.status().message());
    auto id = (*repo)->Resolve(*spec);
    if (!id.ok()) return fail(id.status().message());
    fs_options.pinned_dataset = spec->dataset;
    fs_options.pinned_commit = *id;
  }
  auto lease = ReaderLease::Acquire(o.store_dir);
  // A store this user cannot write (chmod a-w; someone else's) can still be
  // mounted read-only: nobody but its owner can gc it then, and a lease
  // could not be written anyway.
  bool no_lease = !lease.ok() && read_only && (lease.status().sys_errno() == EACCES || lease.status().sys_errno() == EROFS);
  if (!lease.ok() && !no_lease) return fail(lease.status().message());
  if (fs_options.pinned_commit && !no_lease) {
    Status added = (*lease)->Add(*fs_options.pinned_commit);
    if (!added.ok()) return fail(added.message());
  }
  ReaderLease* lease_ptr = no_lease ? nullptr : lease->get();
  fs_options.on_commit = [lease_ptr](const ObjectId& id) { return lease_ptr ? lease_ptr->Add(id) : Status::Ok(); };
  // A whole-store mount makes branch directories writable workspaces, and
  // answers `tusk status/commit/reset` for each workspace it opens.
  fs_options.workspaces = !o.ref && !o.read_only;
  std::mutex servers_mu;
  std::vector<std::unique_ptr<WorkspaceServer>> servers;
  Repository* repo_ptr = repo->get();
  fs_options.on_workspace = [&](const std::shared_ptr<Workspace>& ws) {
    auto server =
        WorkspaceServer::Start(repo_ptr, ws, "the mount on " + mountpoint + " (pid " + std::to_string(::getpid()) + ")");
    if (!server.ok()) {
      fs_options.log("workspace " + ws->dataset() + "@" + ws->branch() +
                     ": tusk commit/status/reset will not reach this mount: " + server.status().message());
      return;
    }
    std::lock_guard lock(servers_mu);
    servers.push_back(std::move(server).value());
  };
  SnapshotFs snapshot(repo->get(), fs_options);
  FuseContext ctx;
  ctx.fs = &snapshot;
  ctx.workspaces = fs_options.workspaces;
  ctx.store_dir = o.store_dir;
  ctx.after_init = [mountpoint] { RaiseReadahead(mountpoint); };

  std::string opts = std::string(fs_options.workspaces ? "rw" : "ro") +
                     ",default_permissions,fsname=tusk,subtype=tusk,max_read=1048576";
  if (o.allow_other) opts += ",allow_other";
  std::vector<std::string> argv_storage = {"tusk", "-o", opts};
  if (o.debug) argv_storage.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, &SnapshotOps(), sizeof(fuse_lowlevel_ops), &ctx);
  fuse_opt_free_args(&args);  // libfuse may have added to them
  if (!se) return fail("could not create the FUSE session (is /dev/fuse available?)");
  std::unique_ptr<fuse_session, void (*)(fuse_session*)> session(se, fuse_session_destroy);
  if (fuse_set_signal_handlers(se) != 0) return fail("could not install signal handlers");
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    return fail("mounting on " + mountpoint + " failed (see the message above; is fuse3 installed and /dev/fuse usable?)");
  }
  if (report_fd >= 0) {
    // The daemon's output goes to its log from here on.
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) log_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close(null_fd);
    ::close(log_fd);
    Report(report_fd, "");
  } else {
    std::cerr << "tusk: mounted " << (o.ref ? *o.ref : o.store_dir) << " on " << mountpoint
              << " (Ctrl-C or 'tusk umount " << mountpoint << "' to unmount)" << std::endl;
  }
  (void)!::chdir("/");
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 16);
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  // A positive result is the signal that ended the loop: a clean unmount.
  return rc >= 0 ? 0 : 1;
}

}  // namespace

int RunMount(const MountOptions& options) {
  std::string mountpoint;
  Status st = CheckMountpoint(options.mountpoint, &mountpoint);
  if (!st.ok()) return Fail(st.message());
  // The daemon leaves the working directory (chdir "/"), so a relative store
  // path must be made absolute now.
  MountOptions o = options;
  char real_store[PATH_MAX];
  if (::realpath(o.store_dir.c_str(), real_store)) o.store_dir = real_store;
  {
    // Validate the store and ref before forking, so mistakes are reported
    // here; the repository is closed again because LMDB must not cross fork.
    auto repo = Repository::Open(o.store_dir, o.ref || o.read_only ? StoreAccess::kReadOnly : StoreAccess::kReadWrite);
    if (!repo.ok()) return Fail(repo.status().message());
    if (o.ref) {
      auto id = (*repo)->Resolve(*o.ref, true);
      if (!id.ok()) return Fail(id.status().message());
    }
  }
  if (o.foreground || o.debug) return Serve(o, mountpoint, -1);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Fail(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) return Fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::setsid();
    std::_Exit(Serve(o, mountpoint, pipe_fds[1]));
  }
  ::close(pipe_fds[1]);
  std::string verdict;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) verdict.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  if (verdict == "OK") return 0;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return Fail(verdict.empty() ? "the mount daemon exited before the mount was ready" : verdict);
}

int RunUnmount(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return Fail(path + ": " + std::strerror(errno));
  auto mount = FindMount(buf);
  if (!mount) return Fail(path + " is not mounted");
  if (mount->type != "fuse.tusk") return Fail(path + " is not a tusk mount (it is " + mount->type + ")");
  pid_t pid = ::fork();
  if (pid < 0) return Fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::execlp("fusermount3", "fusermount3", "-u", buf, static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return Fail("fusermount3 not found (install fuse3)");
  return Fail("could not unmount " + path + " (is a program still using it? see 'fuser -m " + path + "')");
}

}  // namespace tusk::fs
