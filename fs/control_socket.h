// Asking the process that holds a workspace to act on it.
//
// Only one process at a time owns a workspace (Workspace::Open takes its
// lock): normally the mount that serves it. `tusk status`, `tusk commit` and
// `tusk reset` run in other processes, so the owner serves their requests on
// a Unix socket in the abstract namespace, named after the workspace
// directory (no file to clean up after a crash, no path-length limit). When
// nothing holds the workspace, the command opens it itself; both paths run
// the same RunWorkspaceRequest, so a command means the same either way.
//
// Messages are one request and one reply per connection, each a u32 length
// and an encoding of the fields below.
//
// Thread-safety: WorkspaceServer runs one thread that answers requests one
// at a time; the free functions are reentrant.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/workspace/workspace.h"

namespace tusk {

struct WsRequest {
  enum class Op : uint8_t { kStatus = 1, kCommit = 2, kReset = 3 };
  Op op = Op::kStatus;
  WsCommitOptions commit;  // kCommit
};

struct WsReply {
  Status status;  // the operation's own result
  std::optional<ObjectId> base;
  bool diverged = false;            // kStatus: the branch moved away from the base
  std::optional<ObjectId> head;     // the branch head now
  std::vector<WsChange> changes;    // kStatus
  WsCommitResult commit;            // kCommit
};

// Runs a request against an open workspace.
WsReply RunWorkspaceRequest(Repository* repo, Workspace& ws, const WsRequest& request);

// The request, sent to the process that holds the workspace. NotFound when no
// process is listening for it (nobody holds it, or the holder does not serve).
Result<WsReply> SendWorkspaceRequest(const std::string& store_dir, const std::string& dataset,
                                     const std::string& branch, const WsRequest& request);

// Serves requests for one workspace while alive.
class WorkspaceServer {
 public:
  static Result<std::unique_ptr<WorkspaceServer>> Start(Repository* repo, std::shared_ptr<Workspace> ws);
  ~WorkspaceServer();

 private:
  WorkspaceServer(Repository* repo, std::shared_ptr<Workspace> ws, int listen_fd);
  void Loop();
  Repository* repo_;
  std::shared_ptr<Workspace> ws_;
  int listen_fd_;
  int wake_fds_[2] = {-1, -1};  // written on shutdown to stop Loop
  std::thread thread_;
};

// Encodings, exposed for tests.
std::string EncodeWsRequest(const WsRequest& r);
Result<WsRequest> DecodeWsRequest(std::string_view bytes);
std::string EncodeWsReply(const WsReply& r);
Result<WsReply> DecodeWsReply(std::string_view bytes);

}  // namespace tusk
