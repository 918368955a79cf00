// ReadLog: what the processes of one run opened through a read-only view of
// an input (tusk run; fs/run_view.h).
//
// The view's FUSE layer calls Accepts with the pid of each open(2) and
// opendir(2) it serves (the kernel sends every open to a view: it has no
// zero-message opens, while the page cache may keep file data), and then
// SnapshotFs::NoteOpen. A run's command runs in a private mount namespace
// that only it and its descendants share, so "the command's process tree"
// is "the processes in that namespace": workers, subprocesses and threads
// count; a process outside (another reader of the same data, through any
// path) does not. A process of the run that made a mount namespace of its
// own (unshare -m, a container runtime) is in another namespace but still
// descends from tusk run (which is the subreaper of its tree, so orphans
// stay below it): it counts too.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/lineage/lineage.h"
#include "store/objects.h"

namespace tusk::fs {

class ReadLog {
 public:
  // Records the opens of processes whose mount namespace has inode
  // `mount_ns` (see MountNamespaceOf), or that descend from `ancestor`
  // (when not 0); mount_ns 0 records every open.
  explicit ReadLog(uint64_t mount_ns, pid_t ancestor = 0) : mount_ns_(mount_ns), ancestor_(ancestor) {}

  bool Accepts(pid_t pid) const;
  // `path` is relative to the input's root ("" is the root itself).
  void NoteFile(std::string path, const TreeEntry& entry);
  void NoteDir(std::string path);
  // What was recorded so far; the log is empty afterwards.
  ReadSet Take();

 private:
  const uint64_t mount_ns_;
  const pid_t ancestor_;
  // Verdicts of Accepts by pid: the few processes of a run open many files
  // each, and reading /proc for every open cost measurably. A pid reused by
  // an unrelated process during one run would inherit a verdict; outside the
  // run's namespace nobody sees the view but through /proc/PID/root.
  mutable std::mutex pids_mu_;
  mutable std::unordered_map<pid_t, bool> pids_;
  std::mutex mu_;
  ReadSet reads_;
};

// The inode of /proc/PID/ns/mnt (0 when it cannot be read: the process is
// gone, or /proc is not mounted).
uint64_t MountNamespaceOf(pid_t pid);
// Whether `pid` (a process or thread) is `ancestor` or below it in the
// process tree, from /proc/PID/stat.
bool DescendsFrom(pid_t pid, pid_t ancestor);

}  // namespace tusk::fs
