// Asking the process that holds a workspace to act on it.
//
// Only one process at a time owns a workspace (Workspace::Open takes its
// lock): normally the mount that serves it. `tusk status`, `tusk commit` and
// `tusk reset` run in other processes, so the owner serves their requests on
// a Unix socket file, STORE/run/ws-<32 hex digits of SHA-256("DATASET\nBRANCH")>.
// When nothing holds the workspace, the command opens it itself; both paths
// run the same RunWorkspaceRequest, so a command means the same either way.
//
// Who may talk to whom. The socket sits in the store's private directory
// (STORE/run, 0700, in a store that is itself 0700 or, shared, group
// read-only), so the file system already keeps other users out; both ends
// check SO_PEERCRED as well:
// - the server answers only root, the store's owner and its own uid (every
//   other uid gets a refusal and nothing is done);
// - the client talks only to a server running as root or as the store's
//   owner, so a socket bound by someone else cannot answer with fake replies.
// A socket left by a crashed mount is replaced by the next server (which
// holds the workspace lock, so no live server can own it) and refuses
// connections meanwhile, which clients read as "nobody serves it".
// The path is bound and connected through STORE/run's descriptor
// (/proc/self/fd/N/NAME) when it is longer than sun_path's 108 bytes.
//
// Messages are one request and one reply per connection, each a u32 length
// (at most kMaxWsMessage) and a body that starts with a magic ("tkwQ" for a
// request, "tkwR" for a reply) and the protocol version (kWsProtocolVersion,
// one byte), then the fields below. A body of another version or without the
// magic is refused as Unsupported ("... runs another tusk version").
//
// Thread-safety: WorkspaceServer runs one thread that answers requests one
// at a time; the free functions are reentrant.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/workspace/workspace.h"

namespace tusk {

struct WsRequest {
  enum class Op : uint8_t {
    kStatus = 1,
    kCommit = 2,
    kReset = 3,
    kStageMerge = 4,  // tusk merge --stage: Workspace::StageMerge(merge)
    kResolve = 5,     // tusk resolve: ResolveStagedConflicts(paths)
  };
  Op op = Op::kStatus;
  WsCommitOptions commit;           // kCommit
  std::optional<WsMerge> merge;     // kStageMerge
  std::vector<std::string> paths;   // kResolve
};

// 2: a commit request carries --skip-checks' reason.
// 3: staged merges (kStageMerge, kResolve, WsReply::merge).
inline constexpr uint8_t kWsProtocolVersion = 3;
inline constexpr uint32_t kMaxWsMessage = 64u << 20;

struct WsReply {
  Status status;  // the operation's own result
  std::string server;  // who answered, e.g. "the mount on /mnt/x (pid 42)"; empty when run in-process
  std::optional<ObjectId> base;
  bool diverged = false;            // kStatus: the branch moved away from the base
  std::optional<ObjectId> head;     // the branch head now
  std::vector<WsChange> changes;    // kStatus
  // kStatus: the merge staged, if any, with the lines of each unresolved
  // text or table conflict that still hold markers (FindMarkedLines).
  std::optional<WsMerge> merge;
  WsCommitResult commit;            // kCommit
};

// Runs a request against an open workspace.
WsReply RunWorkspaceRequest(Repository* repo, Workspace& ws, const WsRequest& request);

// The request, sent to the process that holds the workspace. NotFound when no
// process is listening for it (nobody holds it, or the holder does not serve).
Result<WsReply> SendWorkspaceRequest(const std::string& store_dir, const std::string& dataset,
                                     const std::string& branch, const WsRequest& request);

// The socket's file name inside STORE/run.
std::string WorkspaceSocketName(const std::string& dataset, const std::string& branch);

// Serves requests for one workspace while alive. `ws` must be open (so this
// process holds its lock); `served_by` is what replies say about the server
// (WsReply::server).
class WorkspaceServer {
 public:
  static Result<std::unique_ptr<WorkspaceServer>> Start(Repository* repo, std::shared_ptr<Workspace> ws,
                                                        std::string served_by = "");
  ~WorkspaceServer();

 private:
  WorkspaceServer(Repository* repo, std::shared_ptr<Workspace> ws, int listen_fd, int run_dir_fd, uid_t owner,
                  std::string served_by);
  void Loop();
  void Serve(int conn);
  Repository* repo_;
  std::shared_ptr<Workspace> ws_;
  int listen_fd_;
  int run_dir_fd_;  // STORE/run, to remove the socket file on shutdown
  uid_t store_owner_;
  std::string served_by_;
  int wake_fds_[2] = {-1, -1};  // written on shutdown to stop Loop
  std::thread thread_;
};

// Encodings, exposed for tests and fuzzing. The decoders take untrusted
// bytes: every count and length is checked against what is left.
std::string EncodeWsRequest(const WsRequest& r);
Result<WsRequest> DecodeWsRequest(std::string_view bytes);
std::string EncodeWsReply(const WsReply& r);
Result<WsReply> DecodeWsReply(std::string_view bytes);

}  // namespace tusk
