// STORE/remotes: the store's list of remotes (FORMAT.md, "Remotes").
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>

#include "store/backend/s3/location.h"
#include "store/internal/file.h"
#include "store/refs.h"
#include "store/remote/remote.h"

namespace tusk {
namespace {

constexpr const char* kRemotesFile = "remotes";
constexpr const char* kHeader = "tusk remotes ";

// Values are single words: a URL, a host, a region.
bool IsWord(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= line.size()) {
    size_t space = line.find(' ', at);
    if (space == std::string_view::npos) space = line.size();
    out.push_back(line.substr(at, space - at));
    at = space + 1;
  }
  return out;
}

// Everything a remote must be before it is written or after it is read.
Status CheckRemote(const Remote& r) {
  TUSK_RETURN_IF_ERROR(CheckRemoteName(r.name));
  if (!IsWord(r.url) || !IsWord(r.endpoint) || !IsWord(r.region))
    return Status::InvalidArgument("remote " + r.name + ": URL, endpoint and region cannot hold spaces");
  TUSK_RETURN_IF_ERROR(s3::ParseLocation(r.url).status());
  if (!r.endpoint.empty() && r.endpoint.rfind("http://", 0) != 0 && r.endpoint.rfind("https://", 0) != 0)
    return Status::InvalidArgument("remote " + r.name + ": the endpoint must start with http:// or https://, not '" +
                                   EscapeForDisplay(r.endpoint) + "'");
  return Status::Ok();
}

std::string PathOf(const std::string& store_dir) { return JoinPath(store_dir, kRemotesFile); }

Status SaveRemotes(Env* files, const std::string& store_dir, std::vector<Remote> remotes) {
  std::sort(remotes.begin(), remotes.end(), [](const Remote& a, const Remote& b) { return a.name < b.name; });
  return WriteFileAtomically(files, PathOf(store_dir), EncodeRemotes(remotes));
}

// An exclusive flock of the store directory for a read-modify-write of the
// file (the store's own lock file is held shared by writers for long).
Result<Fd> LockRemotes(const std::string& store_dir) {
  TUSK_ASSIGN_OR_RETURN(Fd dir, OpenFile(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (::flock(dir.get(), LOCK_EX) != 0) return Status::FromErrno(errno, "lock " + store_dir);
  return dir;
}

}  // namespace

const char* AddressingName(Remote::Addressing a) {
  switch (a) {
    case Remote::Addressing::kAuto: return "auto";
    case Remote::Addressing::kPathStyle: return "path";
    case Remote::Addressing::kVirtualHost: return "virtual-host";
  }
  return "?";
}

Status CheckRemoteName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0])) &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
            });
  if (ok) return Status::Ok();
  return Status::InvalidArgument("bad remote name '" + EscapeForDisplay(name) +
                                 "': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
}

std::string EncodeRemotes(const std::vector<Remote>& remotes) {
  std::string out = std::string(kHeader) + std::to_string(kRemotesFileFormat) + "\n";
  for (const Remote& r : remotes) {
    out += "remote " + r.name + " " + r.url;
    if (!r.endpoint.empty()) out += " endpoint=" + r.endpoint;
    if (!r.region.empty()) out += " region=" + r.region;
    if (r.addressing != Remote::Addressing::kAuto) out += std::string(" addressing=") + AddressingName(r.addressing);
    if (r.insecure) out += " insecure=1";
    if (!r.id.empty()) out += " id=" + r.id;
    out += "\n";
  }
  return out;
}

Result<std::vector<Remote>> DecodeRemotes(std::string_view text) {
  if (text.empty() || text.back() != '\n') return Status::Corruption("the remotes file does not end with a newline");
  std::vector<Remote> out;
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    line_no++;
    auto bad = [&](const std::string& why) {
      return Status::Corruption("the remotes file, line " + std::to_string(line_no) + ": " + why);
    };
    if (line_no == 1) {
      if (line.rfind(kHeader, 0) != 0) return bad("not a tusk remotes file");
      std::string_view version = line.substr(std::string_view(kHeader).size());
      if (version == "1" || version == std::to_string(kRemotesFileFormat)) continue;
      if (!version.empty() && version.size() < 6 && std::all_of(version.begin(), version.end(), ::isdigit))
        return Status::Unsupported("the remotes file is of format " + std::string(version) + "; this tusk reads format " +
                                   std::to_string(kRemotesFileFormat));
      return bad("bad format number");
    }
    std::vector<std::string_view> words = SplitSpaces(line);
    if (words.size() < 3 || words[0] != "remote") return bad("expected 'remote NAME URL [KEY=VALUE...]'");
    Remote r;
    r.name = words[1];
    r.url = words[2];
    for (size_t i = 3; i < words.size(); i++) {
      size_t eq = words[i].find('=');
      if (eq == std::string_view::npos) return bad("expected KEY=VALUE, not '" + EscapeForDisplay(words[i]) + "'");
      std::string_view key = words[i].substr(0, eq), value = words[i].substr(eq + 1);
      if (key == "endpoint") {
        r.endpoint = value;
      } else if (key == "region") {
        r.region = value;
      } else if (key == "addressing" && value == "path") {
        r.addressing = Remote::Addressing::kPathStyle;
      } else if (key == "addressing" && value == "virtual-host") {
        r.addressing = Remote::Addressing::kVirtualHost;
      } else if (key == "insecure" && value == "1") {
        r.insecure = true;
      } else if (key == "id" && value.size() == 32 &&
                 std::all_of(value.begin(), value.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); })) {
        r.id = value;
      } else {
        return bad("unknown setting '" + EscapeForDisplay(words[i]) + "'");
      }
    }
    if (Status st = CheckRemote(r); !st.ok()) return bad(st.message());
    for (const Remote& other : out)
      if (other.name == r.name) return bad("remote " + r.name + " is listed twice");
    out.push_back(std::move(r));
  }
  if (line_no == 0) return Status::Corruption("the remotes file is empty");
  return out;
}

Result<std::vector<Remote>> LoadRemotes(Env* files, const std::string& store_dir) {
  auto text = ReadWholeFile(files, PathOf(store_dir));
  if (!text.ok() && text.status().code() == Status::Code::kNotFound) return std::vector<Remote>();
  if (!text.ok()) return text.status();
  auto remotes = DecodeRemotes(*text);
  if (!remotes.ok()) return remotes.status().Annotate(PathOf(store_dir));
  return remotes;
}

Result<Remote> FindRemote(Env* files, const std::string& store_dir, std::string_view name) {
  TUSK_RETURN_IF_ERROR(CheckRemoteName(name));
  TUSK_ASSIGN_OR_RETURN(std::vector<Remote> remotes, LoadRemotes(files, store_dir));
  std::string names;
  for (const Remote& r : remotes) {
    if (r.name == name) return r;
    names += (names.empty() ? "" : ", ") + r.name;
  }
  return Status::NotFound("no remote named '" + std::string(name) + "' (" +
                          (names.empty() ? "this store has none; add one with 'tusk remote add'" : "remotes: " + names) +
                          ")");
}

Status AddRemote(Env* files, const std::string& store_dir, const Remote& remote, bool create_bucket) {
  TUSK_RETURN_IF_ERROR(CheckRemote(remote));
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockRemotes(store_dir));
  TUSK_ASSIGN_OR_RETURN(std::vector<Remote> remotes, LoadRemotes(files, store_dir));
  for (const Remote& r : remotes)
    if (r.name == remote.name)
      return Status::AlreadyExists("remote '" + r.name + "' exists already (" + r.url +
                                   "); 'tusk remote remove " + r.name + "' first to change it");
  TUSK_ASSIGN_OR_RETURN(RemoteConnection c, Connect(remote));
  Status bucket = c.client->CheckBucket();
  if (bucket.code() == Status::Code::kNotFound && create_bucket) {
    bucket = c.client->CreateBucket();
  } else if (bucket.code() == Status::Code::kNotFound) {
    return Status::NotFound(bucket.message() + "; create it, or pass --create-bucket");
  }
  TUSK_RETURN_IF_ERROR(bucket);
  TUSK_ASSIGN_OR_RETURN(std::string id, AdoptRemoteFormat(*c.client, c.location));
  Remote added = remote;
  added.id = id;
  remotes.push_back(std::move(added));
  return SaveRemotes(files, store_dir, std::move(remotes));
}

Status RemoveRemote(Env* files, const std::string& store_dir, std::string_view name) {
  TUSK_RETURN_IF_ERROR(CheckRemoteName(name));
  TUSK_ASSIGN_OR_RETURN(Fd lock, LockRemotes(store_dir));
  TUSK_ASSIGN_OR_RETURN(std::vector<Remote> remotes, LoadRemotes(files, store_dir));
  auto it = std::find_if(remotes.begin(), remotes.end(), [&](const Remote& r) { return r.name == name; });
  if (it == remotes.end()) return FindRemote(files, store_dir, name).status();
  remotes.erase(it);
  return SaveRemotes(files, store_dir, std::move(remotes));
}

}  // namespace tusk
