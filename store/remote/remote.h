// Remotes (issue 12): named S3 locations that a store shares its datasets
// through. This header is the capability's public face; push, pull and
// lazily fetched packs build on it.
//
// A store's remotes are a small text file, STORE/remotes (FORMAT.md,
// "Remotes"), beside the config: not in the index, which must stay
// rebuildable from packs, and never holding credentials, which come from
// the environment each time (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
// AWS_SESSION_TOKEN, or AWS_PROFILE in ~/.aws/credentials).
//
// On the bucket, a remote is everything under its prefix, starting with
// the object PREFIX/tusk-remote, whose first line names the remote format
// ("tusk remote 1"). Refs on a remote move only by conditional writes
// (If-Match / If-None-Match), so a server without them cannot hold a
// remote: AddRemote tries them on a scratch key first and refuses such a
// server, rather than lose a ref to a race later.
//
// Thread-safety: functions are reentrant; AddRemote and RemoveRemote
// serialize on an flock of the store directory.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend/env.h"
#include "store/backend/s3/location.h"
#include "store/backend/s3/s3_client.h"
#include "store/status.h"

namespace tusk {

struct Remote {
  std::string name;      // CheckRemoteName
  std::string url;       // s3://BUCKET[/PREFIX], as given
  std::string endpoint;  // "" for AWS, else http(s)://host[:port]
  std::string region;    // "" for AWS_REGION, AWS_DEFAULT_REGION or us-east-1
  enum class Addressing { kAuto, kPathStyle, kVirtualHost };
  Addressing addressing = Addressing::kAuto;
  bool insecure = false;  // TLS certificates not verified
  bool operator==(const Remote&) const = default;
};

const char* AddressingName(Remote::Addressing a);  // "auto", "path", "virtual-host"

// 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit.
Status CheckRemoteName(std::string_view name);

// STORE/remotes as text, and back. DecodeRemotes takes untrusted input:
// Corruption naming the line for anything malformed, Unsupported for a
// newer format.
std::string EncodeRemotes(const std::vector<Remote>& remotes);
Result<std::vector<Remote>> DecodeRemotes(std::string_view text);

// The remotes of the store in `store_dir` (none when the file is absent).
Result<std::vector<Remote>> LoadRemotes(Env* files, const std::string& store_dir);
// The one named `name`: NotFound listing the names there are.
Result<Remote> FindRemote(Env* files, const std::string& store_dir, std::string_view name);

// A client of the remote's bucket with credentials from the environment,
// and where in the bucket the remote lives.
struct RemoteConnection {
  Remote remote;
  s3::Location location;
  std::shared_ptr<s3::Client> client;
};
// `options` start from the remote's own endpoint, region, addressing and
// TLS setting (timeouts and retries may be set by the caller).
Result<RemoteConnection> Connect(const Remote& remote, s3::ClientOptions options = {});

// Checks that the bucket exists (creating it if `create_bucket`), that the
// server honours conditional writes (Unsupported, saying so, if not), and
// that PREFIX/tusk-remote names a format this version reads, writing it
// when the prefix is new; then adds the remote to the store. AlreadyExists
// when the name is taken; nothing is written to the store unless all of
// this passed.
Status AddRemote(Env* files, const std::string& store_dir, const Remote& remote, bool create_bucket);
// Forgets the remote (nothing on the bucket changes). NotFound when absent.
Status RemoveRemote(Env* files, const std::string& store_dir, std::string_view name);

// The checks of AddRemote on a connection, for callers that connect
// themselves (tests, clone): conditional writes on a scratch key under the
// prefix (removed afterwards), then the format object.
Status ProbeConditionalWrites(s3::Client& client, const s3::Location& location);
Status AdoptRemoteFormat(s3::Client& client, const s3::Location& location);

inline constexpr int kRemoteFormat = 1;

}  // namespace tusk
