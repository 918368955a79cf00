// RunView: running a command against read-only views of commits, recording
// what it reads. Shared by `tusk run` and (later) checks, `rerun` and
// `update`.
//
// Each input commit is mounted read-only at a directory of its own, by a
// FUSE session served from threads of this process, in a private mount
// namespace that this process enters first (EnterPrivateNamespace). The
// mounts are invisible to every other process, and the kernel takes them
// down when the last process in the namespace exits: a `tusk run` killed
// with SIGKILL leaves no mount behind. The command runs in that namespace,
// so its process tree, and only it, is what each input's ReadLog records.
//
// Thread-safety: one RunView per run, driven from one thread.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "fs/read_log.h"
#include "store/repository.h"

namespace tusk::fs {

struct ViewInput {
  std::string name;        // for messages
  std::string dataset;
  ObjectId commit;
  std::string mountpoint;  // an existing empty directory
  // Serve this tree instead of `commit` (which is then ignored): a version
  // not committed yet, as checks see it.
  std::optional<ObjectId> tree;
};

// Moves this process into a new mount namespace whose mounts do not
// propagate back (needs CAP_SYS_ADMIN: root; otherwise a user namespace is
// tried). Must first be called while the process has a single thread;
// later calls do nothing.
Status EnterPrivateNamespace();

class RunView {
 public:
  // Mounts every input; on failure nothing stays mounted.
  static Result<std::unique_ptr<RunView>> Mount(Repository* repo, const std::vector<ViewInput>& inputs);
  ~RunView();  // unmounts what is still mounted

  // What the processes of this namespace opened through input `i`.
  ReadSet TakeReads(size_t i);
  // Ends every input's session and detaches its mount; a process still
  // holding a file open there (a leftover background job) gets ENOTCONN
  // from then on. The kernel's part of the unmount may go on until the
  // RunView is destroyed (which waits for it, freeing the nodes meanwhile).
  void Unmount();

 private:
  struct Session;
  RunView() = default;
  std::vector<std::unique_ptr<Session>> sessions_;
};

// The result of running a command.
struct CommandResult {
  bool started = false;  // false: it could not be executed (error says why)
  std::string error;
  int exit_status = 0;   // as a shell reports it: the exit code, or 128 + the signal that ended it
  int signal = 0;        // the signal that ended it, or 0
};

// SIGTERM, SIGHUP and SIGCHLD: RunCommand waits for them. Block them
// (BlockRunSignals) before any thread starts, so that none is delivered to
// a thread that would die of it; they stay blocked, so a SIGTERM after the
// command ended does not interrupt what the caller does next (a commit).
sigset_t RunSignals();
void BlockRunSignals();

// Where execvp would find `name`: itself when it holds a '/', else the first
// executable file of that name in $PATH. 0, or the errno execvp would give.
// (Done before fork: a child of a multi-threaded process must not allocate.)
int FindProgram(const std::string& name, std::string* path);

// Runs argv (PATH is searched) with `env` added to this process's
// environment, and waits for it. SIGINT and SIGQUIT (a Ctrl-C at the
// terminal reaches the command as well) are ignored meanwhile; SIGTERM and
// SIGHUP are passed on to it.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env);

}  // namespace tusk::fs
