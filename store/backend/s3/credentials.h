// S3 credentials: an access key id, its secret, and for temporary
// credentials a session token, found the way the AWS tools find them.
//
// Secrets never leave this module's callers in readable form: tusk writes
// them nowhere, and every message built from a server's answer or from
// libcurl passes through Redact first (the secret or the key id could be
// echoed back, e.g. in an InvalidAccessKeyId answer).
//
// Thread-safety: values. LoadCredentials reads the environment and is as
// thread-safe as getenv.
#pragma once

#include <string>
#include <string_view>

#include "store/status.h"

namespace tusk::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term credentials
};

// In the order the AWS CLI uses:
//  1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//  2. the profile AWS_PROFILE (default "default") of the INI file
//     AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials), keys
//     aws_access_key_id, aws_secret_access_key, aws_session_token.
// NotFound, naming every place looked at, when neither has them;
// InvalidArgument when a source is half there (a key id without a secret).
Result<Credentials> LoadCredentials();

// The profile `profile` of the text of a credentials file (`file` names it
// in messages). NotFound when the profile is absent.
Result<Credentials> ParseCredentialsFile(std::string_view text, std::string_view profile, const std::string& file);

// `text` with every occurrence of the key id, the secret and the token
// replaced by "<redacted>".
std::string Redact(std::string text, const Credentials& credentials);
Status Redact(const Status& status, const Credentials& credentials);

}  // namespace tusk::s3
