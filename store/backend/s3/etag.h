// Etags as the client hands them out: without quotes (S3 sends them
// quoted in headers and listings), and for an object written in one PUT
// without SSE-KMS, the hex MD5 of its bytes. That last fact lets the client
// recognise its own write (a conditional PUT retried after a lost answer)
// and a part already uploaded (a resumed multipart upload).
//
// Thread-safety: functions of their arguments.
#pragma once

#include <string>
#include <string_view>

namespace tusk::s3 {

// Removes one pair of surrounding double quotes.
std::string UnquoteEtag(std::string_view etag);

// The etag S3 gives `bytes` written in one PUT or as one part: lowercase hex MD5.
std::string PlainEtag(std::string_view bytes);

}  // namespace tusk::s3
