#include "store/backend/s3/credentials.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tusk::s3 {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<Credentials> FromEnvironment() {
  Credentials c;
  c.access_key_id = Env("AWS_ACCESS_KEY_ID");
  c.secret_access_key = Env("AWS_SECRET_ACCESS_KEY");
  c.session_token = Env("AWS_SESSION_TOKEN");
  if (c.access_key_id.empty() && c.secret_access_key.empty()) return Status::NotFound("not in the environment");
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    const char* set = c.access_key_id.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID";
    const char* unset = c.access_key_id.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY";
    return Status::InvalidArgument(std::string(set) + " is set but " + unset + " is not");
  }
  return c;
}

// Where the credentials file is: "" with the reason in `why` when it cannot be named.
std::string CredentialsFilePath(std::string* why) {
  std::string path = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (!path.empty()) return path;
  std::string home = Env("HOME");
  if (home.empty()) {
    *why = "HOME is not set, so there is no ~/.aws/credentials";
    return "";
  }
  return home + "/.aws/credentials";
}

void ReplaceAll(std::string& text, const std::string& secret) {
  // Very short values would redact unrelated text and protect nothing.
  if (secret.size() < 4) return;
  static const std::string kRedacted = "<redacted>";
  for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + kRedacted.size())) {
    text.replace(pos, secret.size(), kRedacted);
  }
}

}  // namespace

Result<Credentials> ParseCredentialsFile(std::string_view text, std::string_view profile, const std::string& file) {
  Credentials c;
  bool in_profile = false, profile_seen = false;
  std::istringstream lines{std::string(text)};
  std::string raw;
  while (std::getline(lines, raw)) {
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      size_t close = line.find(']');
      std::string_view name = Trim(line.substr(1, close == std::string_view::npos ? line.size() - 1 : close - 1));
      in_profile = name == profile;
      profile_seen |= in_profile;
      continue;
    }
    size_t eq = line.find('=');
    if (!in_profile || eq == std::string_view::npos) continue;
    std::string key = Lower(Trim(line.substr(0, eq)));
    std::string value(Trim(line.substr(eq + 1)));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  std::string where = "profile '" + std::string(profile) + "' of " + file;
  if (!profile_seen) return Status::NotFound(file + " has no profile '" + std::string(profile) + "'");
  if (c.access_key_id.empty()) return Status::InvalidArgument(where + " has no aws_access_key_id");
  if (c.secret_access_key.empty()) return Status::InvalidArgument(where + " has no aws_secret_access_key");
  return c;
}

Result<Credentials> LoadCredentials() {
  Result<Credentials> from_env = FromEnvironment();
  if (from_env.ok() || from_env.status().code() != Status::Code::kNotFound) return from_env;

  std::string profile = Env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::string why_no_file;
  std::string path = CredentialsFilePath(&why_no_file);
  std::string looked = "no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set";
  if (path.empty()) return Status::NotFound(looked + ", and " + why_no_file);

  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(looked + ", and " + path + " (profile '" + profile + "') cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  Result<Credentials> from_file = ParseCredentialsFile(text.str(), profile, path);
  if (!from_file.ok() && from_file.status().code() == Status::Code::kNotFound) {
    return Status::NotFound(looked + ", and " + from_file.status().message());
  }
  return from_file;
}

std::string Redact(std::string text, const Credentials& credentials) {
  ReplaceAll(text, credentials.secret_access_key);
  ReplaceAll(text, credentials.session_token);
  ReplaceAll(text, credentials.access_key_id);
  return text;
}

Status Redact(const Status& status, const Credentials& credentials) {
  if (status.ok()) return status;
  return Status::Rebuild(status.code(), status.sys_errno(), Redact(status.message(), credentials));
}

}  // namespace tusk::s3
