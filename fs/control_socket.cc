#include "fs/control_socket.h"

#include "fs/check_runner.h"
#include "store/merge/merge.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "store/internal/file.h"
#include "store/internal/varint.h"

namespace tusk {
namespace {

constexpr char kRequestMagic[] = "tkwQ";
constexpr char kReplyMagic[] = "tkwR";

// The uid that owns the store directory.
Result<uid_t> StoreOwner(const std::string& store_dir) {
  struct stat st;
  if (::stat(store_dir.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + store_dir);
  return st.st_uid;
}

// STORE/run, created (0700) when `create`.
Result<Fd> OpenRunDir(const std::string& store_dir, bool create) {
  std::string path = JoinPath(store_dir, "run");
  if (create && ::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno(errno, "create " + path);
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  return Fd(fd);
}

// The address of STORE/run/NAME: the path itself when it fits in sun_path,
// else the same file reached through the directory's descriptor.
Result<sockaddr_un> SocketAddress(const std::string& store_dir, int run_dir_fd, const std::string& name,
                                  socklen_t* len) {
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  std::string path = JoinPath(store_dir, "run/" + name);
  if (path.size() >= sizeof addr.sun_path) path = "/proc/self/fd/" + std::to_string(run_dir_fd) + "/" + name;
  if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return addr;
}

Result<ucred> PeerOf(int fd) {
  ucred cred;
  socklen_t n = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) != 0) return Status::FromErrno(errno, "SO_PEERCRED");
  return cred;
}

// Checks and strips the magic and version that open every message.
Status CheckHeader(Decoder& d, const char* magic, const char* what) {
  std::string_view m;
  uint8_t version = 0;
  if (!d.GetBytes(4, &m) || m != std::string_view(magic, 4) || !d.GetU8(&version))
    return Status::Unsupported(std::string("not a tusk ") + what + " (sent by another tusk version?)");
  if (version != kWsProtocolVersion)
    return Status::Unsupported(std::string("a ") + what + " of protocol version " + std::to_string(version) +
                               "; this tusk speaks version " + std::to_string(kWsProtocolVersion));
  return Status::Ok();
}

Status WriteMessage(int fd, const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string framed(reinterpret_cast<const char*>(&n), 4);
  framed += body;
  size_t done = 0;
  while (done < framed.size()) {
    ssize_t w = ::send(fd, framed.data() + done, framed.size() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::FromErrno(errno, "workspace control socket: send");
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

Result<std::string> ReadMessage(int fd) {
  auto read_all = [fd](char* p, size_t n) -> Status {
    while (n > 0) {
      ssize_t r = ::recv(fd, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(errno, "workspace control socket: recv");
      if (r == 0) return Status::Corruption("workspace control socket: connection closed mid-message");
      p += r;
      n -= static_cast<size_t>(r);
    }
    return Status::Ok();
  };
  uint32_t n = 0;
  TUSK_RETURN_IF_ERROR(read_all(reinterpret_cast<char*>(&n), 4));
  if (n > kMaxWsMessage) return Status::Corruption("workspace control socket: message too large");
  std::string body(n, '\0');
  TUSK_RETURN_IF_ERROR(read_all(body.data(), n));
  return body;
}

void PutOptionalId(Encoder& e, const std::optional<ObjectId>& id) {
  e.PutU8(id ? 1 : 0);
  if (id) e.PutBytes(id->view());
}

bool GetOptionalId(Decoder& d, std::optional<ObjectId>* id) {
  uint8_t present = 0;
  if (!d.GetU8(&present) || present > 1) return false;
  if (!present) {
    id->reset();
    return true;
  }
  std::string_view bytes;
  if (!d.GetBytes(32, &bytes)) return false;
  *id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(bytes.data()));
  return true;
}

bool GetString(Decoder& d, std::string* out) {
  std::string_view v;
  if (!d.GetString(&v)) return false;
  out->assign(v);
  return true;
}

void PutOptionalMerge(Encoder& e, const std::optional<WsMerge>& merge) {
  e.PutU8(merge ? 1 : 0);
  if (merge) e.PutString(EncodeWsMerge(*merge));
}

Status GetOptionalMerge(Decoder& d, std::optional<WsMerge>* merge) {
  uint8_t present = 0;
  std::string_view bytes;
  if (!d.GetU8(&present) || present > 1 || (present && !d.GetString(&bytes)))
    return Status::Corruption("bad workspace message: a staged merge");
  if (!present) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(WsMerge m, DecodeWsMerge(bytes, "a staged merge in a workspace message"));
  *merge = std::move(m);
  return Status::Ok();
}

}  // namespace

std::string WorkspaceSocketName(const std::string& dataset, const std::string& branch) {
  std::string key = dataset + "\n" + branch;
  return "ws-" + Sha256::Of(key.data(), key.size()).Hex().substr(0, 32);
}

std::string EncodeWsRequest(const WsRequest& r) {
  Encoder e;
  e.PutBytes(std::string_view(kRequestMagic, 4));
  e.PutU8(kWsProtocolVersion);
  e.PutU8(static_cast<uint8_t>(r.op));
  e.PutString(r.commit.message);
  e.PutString(r.commit.author);
  e.PutVarint(r.commit.metadata.size());
  for (const auto& [k, v] : r.commit.metadata) {
    e.PutString(k);
    e.PutString(v);
  }
  e.PutVarint(r.commit.provenance.size());
  for (const auto& p : r.commit.provenance) {
    e.PutString(p.dataset);
    e.PutBytes(p.commit.view());
  }
  e.PutString(r.commit.skip_checks_reason);
  PutOptionalMerge(e, r.merge);
  e.PutVarint(r.paths.size());
  for (const auto& p : r.paths) e.PutString(p);
  return e.Take();
}

Result<WsRequest> DecodeWsRequest(std::string_view bytes) {
  Decoder d(bytes);
  WsRequest r;
  uint8_t op = 0;
  uint64_t n = 0;
  auto bad = [] { return Status::Corruption("bad workspace request"); };
  TUSK_RETURN_IF_ERROR(CheckHeader(d, kRequestMagic, "workspace request"));
  if (!d.GetU8(&op) || op < 1 || op > 5) return bad();
  r.op = static_cast<WsRequest::Op>(op);
  if (!GetString(d, &r.commit.message) || !GetString(d, &r.commit.author) || !d.GetVarint(&n) || n > bytes.size())
    return bad();
  for (uint64_t i = 0; i < n; i++) {
    std::string k, v;
    if (!GetString(d, &k) || !GetString(d, &v)) return bad();
    r.commit.metadata.emplace_back(std::move(k), std::move(v));
  }
  if (!d.GetVarint(&n) || n > bytes.size()) return bad();
  for (uint64_t i = 0; i < n; i++) {
    Provenance p;
    std::string_view id;
    if (!GetString(d, &p.dataset) || !d.GetBytes(32, &id)) return bad();
    p.commit = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
    r.commit.provenance.push_back(std::move(p));
  }
  if (!GetString(d, &r.commit.skip_checks_reason)) return bad();
  TUSK_RETURN_IF_ERROR(GetOptionalMerge(d, &r.merge));
  if (!d.GetVarint(&n) || n > bytes.size()) return bad();
  r.paths.resize(n);
  for (auto& p : r.paths)
    if (!GetString(d, &p)) return bad();
  if (!d.empty()) return bad();
  return r;
}

std::string EncodeWsReply(const WsReply& r) {
  Encoder e;
  e.PutBytes(std::string_view(kReplyMagic, 4));
  e.PutU8(kWsProtocolVersion);
  e.PutString(r.server);
  e.PutU8(static_cast<uint8_t>(r.status.code()));
  e.PutVarint(static_cast<uint64_t>(r.status.sys_errno() < 0 ? 0 : r.status.sys_errno()));
  e.PutString(r.status.message());
  PutOptionalId(e, r.base);
  e.PutU8(r.diverged ? 1 : 0);
  PutOptionalId(e, r.head);
  e.PutVarint(r.changes.size());
  for (const auto& c : r.changes) {
    e.PutU8(static_cast<uint8_t>(c.kind));
    e.PutString(c.path);
  }
  PutOptionalId(e, r.commit.commit);
  PutOptionalId(e, r.commit.parent);
  e.PutVarint(r.commit.files_changed);
  e.PutVarint(r.commit.new_objects);
  e.PutVarint(r.commit.new_stored_bytes);
  PutOptionalMerge(e, r.merge);
  return e.Take();
}

Result<WsReply> DecodeWsReply(std::string_view bytes) {
  Decoder d(bytes);
  WsReply r;
  auto bad = [] { return Status::Corruption("bad workspace reply"); };
  TUSK_RETURN_IF_ERROR(CheckHeader(d, kReplyMagic, "workspace reply"));
  uint8_t code = 0, diverged = 0;
  uint64_t err = 0, n = 0;
  std::string message;
  if (!GetString(d, &r.server) || !d.GetU8(&code) || code > static_cast<uint8_t>(Status::Code::kBusy) ||
      !d.GetVarint(&err) || err > 4095 || !GetString(d, &message))
    return bad();
  r.status = Status::Rebuild(static_cast<Status::Code>(code), static_cast<int>(err), std::move(message));
  if (!GetOptionalId(d, &r.base) || !d.GetU8(&diverged) || !GetOptionalId(d, &r.head) || !d.GetVarint(&n) ||
      n > bytes.size())
    return bad();
  r.diverged = diverged != 0;
  for (uint64_t i = 0; i < n; i++) {
    uint8_t kind = 0;
    WsChange c{WsChangeKind::kAdded, {}};
    if (!d.GetU8(&kind) || !GetString(d, &c.path)) return bad();
    if (kind != 'A' && kind != 'M' && kind != 'D') return bad();
    c.kind = static_cast<WsChangeKind>(kind);
    r.changes.push_back(std::move(c));
  }
  if (!GetOptionalId(d, &r.commit.commit) || !GetOptionalId(d, &r.commit.parent) ||
      !d.GetVarint(&r.commit.files_changed) || !d.GetVarint(&r.commit.new_objects) ||
      !d.GetVarint(&r.commit.new_stored_bytes))
    return bad();
  TUSK_RETURN_IF_ERROR(GetOptionalMerge(d, &r.merge));
  if (!d.empty()) return bad();
  return r;
}

WsReply RunWorkspaceRequest(Repository* repo, Workspace& ws, const WsRequest& request) {
  WsReply reply;
  switch (request.op) {
    case WsRequest::Op::kStatus: {
      auto changes = ws.Changes();
      if (!changes.ok()) reply.status = changes.status();
      else reply.changes = std::move(changes).value();
      auto diverged = ws.Diverged();
      if (diverged.ok()) reply.diverged = *diverged;
      reply.merge = ws.StagedMerge();
      if (reply.merge && reply.status.ok()) reply.status = FindMarkedLines(ws, &*reply.merge);
      break;
    }
    case WsRequest::Op::kStageMerge:
      reply.status = request.merge ? ws.StageMerge(*request.merge)
                                   : Status::InvalidArgument("a stage request without a merge");
      break;
    case WsRequest::Op::kResolve:
      reply.status = ResolveStagedConflicts(ws, request.paths);
      break;
    case WsRequest::Op::kCommit: {
      WsCommitOptions options = request.commit;
      options.prepare_commit = fs::CheckHook(repo, ws.dataset(), options.skip_checks_reason, options.author);
      auto result = ws.Commit(options);
      if (!result.ok()) reply.status = result.status();
      else reply.commit = *result;
      break;
    }
    case WsRequest::Op::kReset:
      reply.status = ws.Reset();
      break;
  }
  reply.base = ws.base();
  auto head = repo->GetBranch(ws.dataset(), ws.branch());
  if (head.ok()) reply.head = *head;
  return reply;
}

Result<WsReply> SendWorkspaceRequest(const std::string& store_dir, const std::string& dataset,
                                     const std::string& branch, const WsRequest& request) {
  std::string name = dataset + "@" + branch;
  auto run_dir = OpenRunDir(store_dir, false);
  if (!run_dir.ok()) {
    if (run_dir.status().sys_errno() == ENOENT) return Status::NotFound("no process serves workspace " + name);
    return run_dir.status().Annotate("reach the mount serving " + name);
  }
  socklen_t len = 0;
  TUSK_ASSIGN_OR_RETURN(sockaddr_un addr,
                        SocketAddress(store_dir, run_dir->get(), WorkspaceSocketName(dataset, branch), &len));
  int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (raw < 0) return Status::FromErrno(errno, "socket");
  Fd fd(raw);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    // ECONNREFUSED: a socket file left by a mount that crashed.
    if (errno == ECONNREFUSED || errno == ENOENT) return Status::NotFound("no process serves workspace " + name);
    return Status::FromErrno(errno, "connect to the mount serving " + name);
  }
  TUSK_ASSIGN_OR_RETURN(ucred peer, PeerOf(fd.get()));
  TUSK_ASSIGN_OR_RETURN(uid_t owner, StoreOwner(store_dir));
  if (peer.uid != 0 && peer.uid != owner)
    return Status::Rebuild(Status::Code::kIoError, EACCES,
                           "the control socket of workspace " + name + " is served by uid " + std::to_string(peer.uid) +
                               " (pid " + std::to_string(peer.pid) + "), neither root nor the store's owner (uid " +
                               std::to_string(owner) + "); refusing to talk to it");
  // A server that refuses us replies without reading the request, so a
  // failed send may still be followed by its reply.
  Status sent = WriteMessage(fd.get(), EncodeWsRequest(request));
  auto received = ReadMessage(fd.get());
  if (!received.ok()) return sent.ok() ? received.status() : sent;
  const std::string& body = *received;
  auto reply = DecodeWsReply(body);
  if (!reply.ok() && reply.status().code() == Status::Code::kUnsupported)
    return Status::Unsupported("the mount serving " + name + " runs another tusk version (" +
                               reply.status().message() + "); unmount and remount it");
  return reply;
}

Result<std::unique_ptr<WorkspaceServer>> WorkspaceServer::Start(Repository* repo, std::shared_ptr<Workspace> ws,
                                                                 std::string served_by) {
  std::string what = "listen for commands on workspace " + ws->dataset() + "@" + ws->branch();
  TUSK_ASSIGN_OR_RETURN(uid_t owner, StoreOwner(repo->dir()));
  auto run_dir = OpenRunDir(repo->dir(), true);
  if (!run_dir.ok()) return run_dir.status().Annotate(what);
  std::string name = WorkspaceSocketName(ws->dataset(), ws->branch());
  // We hold the workspace's lock, so a socket already there is a crashed
  // server's.
  if (::unlinkat(run_dir->get(), name.c_str(), 0) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, what + ": remove the stale socket");
  socklen_t len = 0;
  TUSK_ASSIGN_OR_RETURN(sockaddr_un addr, SocketAddress(repo->dir(), run_dir->get(), name, &len));
  int dir_fd = ::fcntl(run_dir->get(), F_DUPFD_CLOEXEC, 0);
  if (dir_fd < 0) return Status::FromErrno(errno, "dup");
  int listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0 || ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listen_fd, 16) != 0) {
    Status st = Status::FromErrno(errno, what);
    if (listen_fd >= 0) ::close(listen_fd);
    ::close(dir_fd);
    return st;
  }
  return std::unique_ptr<WorkspaceServer>(
      new WorkspaceServer(repo, std::move(ws), listen_fd, dir_fd, owner, std::move(served_by)));
}

WorkspaceServer::WorkspaceServer(Repository* repo, std::shared_ptr<Workspace> ws, int listen_fd, int run_dir_fd,
                                 uid_t owner, std::string served_by)
    : repo_(repo),
      ws_(std::move(ws)),
      listen_fd_(listen_fd),
      run_dir_fd_(run_dir_fd),
      store_owner_(owner),
      served_by_(std::move(served_by)) {
  if (::pipe2(wake_fds_, O_CLOEXEC) != 0) wake_fds_[0] = wake_fds_[1] = -1;
  thread_ = std::thread([this] { Loop(); });
}

WorkspaceServer::~WorkspaceServer() {
  if (wake_fds_[1] >= 0) (void)!::write(wake_fds_[1], "x", 1);
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  // Still ours: the workspace lock is held until ws_ goes.
  ::unlinkat(run_dir_fd_, WorkspaceSocketName(ws_->dataset(), ws_->branch()).c_str(), 0);
  ::close(listen_fd_);
  ::close(run_dir_fd_);
  for (int fd : wake_fds_)
    if (fd >= 0) ::close(fd);
}

void WorkspaceServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    int n = ::poll(fds, wake_fds_[0] >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN) || (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))) return;
    int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    Fd client(conn);
    Serve(conn);
  }
}

void WorkspaceServer::Serve(int conn) {
  WsReply reply;
  reply.server = served_by_;
  std::string name = ws_->dataset() + "@" + ws_->branch();
  auto peer = PeerOf(conn);
  if (!peer.ok()) return;
  if (peer->uid != 0 && peer->uid != store_owner_ && peer->uid != ::geteuid()) {
    // Nothing of the request is read, let alone run.
    reply.status = Status::Rebuild(Status::Code::kIoError, EACCES,
                                   "uid " + std::to_string(peer->uid) + " may not act on workspace " + name +
                                       ": only the store's owner (uid " + std::to_string(store_owner_) +
                                       ") and root may");
    (void)WriteMessage(conn, EncodeWsReply(reply));
    return;
  }
  // A client that stalls must not stop the mount's other work for long.
  timeval timeout{30, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  auto body = ReadMessage(conn);
  if (!body.ok()) return;
  auto request = DecodeWsRequest(*body);
  if (!request.ok()) {
    reply.status = request.status().code() == Status::Code::kUnsupported
                       ? Status::Unsupported("the mount serving " + name + " runs another tusk version (" +
                                             request.status().message() + "); unmount and remount it")
                       : request.status();
  } else {
    reply = RunWorkspaceRequest(repo_, *ws_, *request);
    reply.server = served_by_;
  }
  (void)WriteMessage(conn, EncodeWsReply(reply));
}

}  // namespace tusk
