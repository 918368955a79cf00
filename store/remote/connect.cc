// Reaching a remote: the client, the probe of conditional writes, and the
// format object PREFIX/tusk-remote.
#include <openssl/rand.h>

#include <chrono>
#include <cstdio>

#include "store/backend/s3/location.h"
#include "store/refs.h"
#include "store/remote/remote.h"

namespace tusk {
namespace {

constexpr const char* kFormatObject = "tusk-remote";
constexpr const char* kFormatLine = "tusk remote ";

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // Only a name for a scratch key: the time will do if OpenSSL cannot.
    raw = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::string out;
  char buf[3];
  for (unsigned char c : raw) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

// Checks the format object's text; Ok for a format this version reads.
Status CheckFormatText(std::string_view text, const std::string& where) {
  std::string_view first = text.substr(0, text.find('\n'));
  if (first.rfind(kFormatLine, 0) != 0)
    return Status::Corruption(where + " is not a tusk remote's format object (it starts '" +
                              EscapeForDisplay(first.substr(0, 40)) + "')");
  std::string_view number = first.substr(std::string_view(kFormatLine).size());
  if (number == std::to_string(kRemoteFormat)) return Status::Ok();
  return Status::Unsupported(where + " says the remote is of format '" + EscapeForDisplay(number.substr(0, 20)) +
                             "'; this tusk reads format " + std::to_string(kRemoteFormat) + " (upgrade tusk)");
}

// The id line of a format object ("id <32 hex>"), "" when it has none.
std::string IdOf(std::string_view text) {
  for (size_t at = text.find('\n'); at != std::string_view::npos && at + 1 < text.size(); at = text.find('\n', at + 1)) {
    std::string_view line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
    if (line.rfind("id ", 0) == 0) return std::string(line.substr(3));
  }
  return "";
}

Status NoConditionalWrites(const s3::Client& client, const std::string& what) {
  return Status::Unsupported("the server at " + client.endpoint().server() + " " + what +
                             ": refs on a remote move only by conditional writes (If-None-Match, If-Match), "
                             "without which two machines pushing at once could lose a commit, so tusk cannot "
                             "use this server as a remote");
}

}  // namespace

Result<RemoteConnection> Connect(const Remote& remote, s3::ClientOptions options) {
  RemoteConnection c;
  c.remote = remote;
  TUSK_ASSIGN_OR_RETURN(c.location, s3::ParseLocation(remote.url));
  options.endpoint = remote.endpoint;
  options.region = remote.region;
  options.insecure = remote.insecure;
  options.addressing = remote.addressing == Remote::Addressing::kPathStyle     ? s3::Addressing::kPathStyle
                       : remote.addressing == Remote::Addressing::kVirtualHost ? s3::Addressing::kVirtualHost
                                                                               : s3::Addressing::kAuto;
  auto credentials = s3::LoadCredentials();
  if (!credentials.ok()) return credentials.status().Annotate("remote " + remote.name);
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<s3::Client> client,
                        s3::Client::Create(c.location.bucket, std::move(options), std::move(*credentials)));
  c.client = std::move(client);
  return c;
}

Status ProbeConditionalWrites(s3::Client& client, const s3::Location& location) {
  std::string key = location.Key("tusk-probe/" + RandomHex(12));
  auto first = client.Put(key, "probe 1\n", s3::WriteCondition::IfNoneMatchAny());
  if (first.status().code() == Status::Code::kUnsupported) return NoConditionalWrites(client, "refused If-None-Match");
  TUSK_RETURN_IF_ERROR(first.status());
  // From here on the scratch object exists: removed whatever the outcome.
  Status verdict = [&]() -> Status {
    auto again = client.Put(key, "probe 2\n", s3::WriteCondition::IfNoneMatchAny());
    if (again.ok()) return NoConditionalWrites(client, "ignored If-None-Match (it overwrote an existing object)");
    if (again.status().code() == Status::Code::kUnsupported)
      return NoConditionalWrites(client, "refused If-None-Match");
    if (again.status().code() != Status::Code::kConflict) return again.status();
    auto wrong = client.Put(key, "probe 3\n", s3::WriteCondition::IfMatch("0123456789abcdef0123456789abcdef"));
    if (wrong.ok()) return NoConditionalWrites(client, "ignored If-Match (it replaced an object of another etag)");
    if (wrong.status().code() == Status::Code::kUnsupported) return NoConditionalWrites(client, "refused If-Match");
    if (wrong.status().code() != Status::Code::kConflict) return wrong.status();
    auto right = client.Put(key, "probe 4\n", s3::WriteCondition::IfMatch(*first));
    if (right.status().code() == Status::Code::kConflict)
      return NoConditionalWrites(client, "refused If-Match with the object's own etag");
    return right.status();
  }();
  Status removed = client.Delete(key);
  TUSK_RETURN_IF_ERROR(verdict);
  return removed;
}

Result<std::string> AdoptRemoteFormat(s3::Client& client, const s3::Location& location) {
  std::string key = location.Key(kFormatObject);
  std::string where = client.Describe(key);
  auto existing = client.Get(key);
  if (existing.ok()) {
    TUSK_RETURN_IF_ERROR(CheckFormatText(*existing, where));
    TUSK_RETURN_IF_ERROR(ProbeConditionalWrites(client, location));
    return IdOf(*existing);
  }
  if (existing.status().code() != Status::Code::kNotFound) return existing.status();
  // A new remote: only where nothing else lives, so that tusk never mixes
  // its objects with someone else's.
  // (A probe key left by an interrupted probe does not count.)
  TUSK_ASSIGN_OR_RETURN(std::vector<s3::ObjectInfo> there, client.List(location.prefix, 10, 10));
  std::erase_if(there, [&](const s3::ObjectInfo& o) { return o.key.rfind(location.Key("tusk-probe/"), 0) == 0; });
  if (!there.empty())
    return Status::InvalidArgument(location.ToString() + " holds objects (" + client.Describe(there.front().key) +
                                   ") but is not a tusk remote (no " + kFormatObject +
                                   "); give a prefix of its own, e.g. " + location.ToString() + "tusk/");
  TUSK_RETURN_IF_ERROR(ProbeConditionalWrites(client, location));
  std::string id = RandomHex(16);
  std::string text = std::string(kFormatLine) + std::to_string(kRemoteFormat) + "\nid " + id + "\n";
  auto made = client.Put(key, text, s3::WriteCondition::IfNoneMatchAny());
  if (made.status().code() == Status::Code::kConflict) {
    // Another machine made the remote meanwhile: fine if it is the same format.
    TUSK_ASSIGN_OR_RETURN(std::string theirs, client.Get(key));
    TUSK_RETURN_IF_ERROR(CheckFormatText(theirs, where));
    return IdOf(theirs);
  }
  TUSK_RETURN_IF_ERROR(made.status());
  return id;
}

Status CheckRemoteIdentity(const RemoteConnection& c) {
  if (c.remote.id.empty()) return Status::Ok();
  std::string key = c.location.Key(kFormatObject);
  auto text = c.client->Get(key);
  std::string now;
  if (text.ok()) now = IdOf(*text);
  else if (text.status().code() != Status::Code::kNotFound) return text.status();
  if (now == c.remote.id) return Status::Ok();
  return Status::Conflict(
      "remote '" + c.remote.name + "' (" + c.location.ToString() + ") is not the remote this store added: " +
      (text.ok() ? "its id is now " + (now.empty() ? std::string("none") : now) + ", was " + c.remote.id
                 : c.client->Describe(key) + " is gone (the prefix was emptied)") +
      ". What this store remembers of it (its remote-tracking refs) belongs to the old one; to use the new one, run "
      "'tusk remote remove " + c.remote.name + "' and 'tusk remote add " + c.remote.name + " " + c.remote.url +
      " ...' again");
}

}  // namespace tusk
