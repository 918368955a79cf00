// The HTTP seam under the S3 client: one request in, one answer (or the
// reason there is none) out. The real transport is libcurl
// (curl_transport.h), which also signs each request with SigV4; tests put a
// scripted one in its place to check retries and error mapping without a
// server.
//
// Thread-safety: a transport's Perform may be called from many threads at once.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tusk::s3 {

struct HttpRequest {
  std::string method;            // GET, HEAD, PUT, POST, DELETE
  std::string url;               // with its canonical query (endpoint.h)
  std::string url_for_messages;  // the same without the query
  // "Name: value" lines. The transport adds the SigV4 ones itself
  // (Authorization, x-amz-date, x-amz-content-sha256, x-amz-security-token).
  std::vector<std::string> headers;
  std::string_view body;  // for PUT and POST; not owned, must outlive Perform
  // Where a 2xx body goes: into HttpResponse::body when null, else into
  // this buffer, and a body longer than `body_out_capacity` fails the request.
  char* body_out = nullptr;
  size_t body_out_capacity = 0;
};

struct HttpResponse {
  // The HTTP status; 0 when no answer arrived, and then `transport_error` says why.
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lowercase
  std::string body;                            // every non-2xx body, and 2xx bodies when the request had no body_out
  size_t body_out_size = 0;                    // bytes written to the request's body_out

  std::string transport_error;       // e.g. "Couldn't connect to server: Connection refused"
  bool transport_retryable = false;  // a connection error or timeout, worth another attempt
  // False only when the request certainly never reached the server (could
  // not resolve or connect): then even a conditional write cannot have happened.
  bool may_have_reached_server = true;
  bool body_overflow = false;  // the server sent more than body_out_capacity bytes

  bool ok() const { return status >= 200 && status < 300; }
  // The header's value, or "" when absent.
  std::string Header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual HttpResponse Perform(const HttpRequest& request) = 0;
};

}  // namespace tusk::s3
