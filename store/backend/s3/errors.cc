#include "store/backend/s3/errors.h"

#include <algorithm>
#include <cmath>

#include "store/backend/s3/xml.h"

namespace tusk::s3 {
namespace {

// "HTTP 403 AccessDenied: Access Denied", or "HTTP 403" for a bodiless answer.
std::string ServerSays(const HttpResponse& response) {
  std::string out = "HTTP " + std::to_string(response.status);
  ErrorBody error = ParseErrorBody(response.body);
  if (!error.code.empty()) out += " " + error.code;
  if (!error.message.empty()) out += ": " + error.message;
  return out;
}

std::string Attempts(const Exchange& exchange) {
  return exchange.attempts > 1 ? " (after " + std::to_string(exchange.attempts) + " attempts)" : "";
}

}  // namespace

Status IoError(std::string message, int err) {
  return Status::Rebuild(Status::Code::kIoError, err, std::move(message));
}

Status StatusFor(const Exchange& exchange, const FailureContext& context) {
  const HttpResponse& response = exchange.response;
  std::string what = context.operation + " " + context.object;
  if (response.status == 0) {
    if (response.body_overflow) return Status::Corruption(what + ": the server sent more bytes than were asked for");
    return IoError(what + ": " + exchange.url + ": " + response.transport_error + Attempts(exchange));
  }
  std::string says = ServerSays(response);
  std::string code = ParseErrorBody(response.body).code;
  switch (response.status) {
    case 404:
      if (code == "NoSuchBucket" || (context.about_bucket && code.empty())) {
        return Status::NotFound("bucket '" + context.bucket + "' does not exist at " + context.server + " (" + what +
                                ")");
      }
      if (code == "NoSuchUpload") {
        return Status::NotFound(what + ": no such multipart upload (it was completed or aborted)");
      }
      return Status::NotFound(what + ": no such object");
    case 412:
      return Status::Conflict(what + ": precondition failed" +
                              (context.condition.empty() ? "" : " (" + context.condition + ")"));
    case 409:
      if (code == "BucketAlreadyExists" || code == "BucketAlreadyOwnedByYou") {
        return Status::AlreadyExists(what + ": the bucket already exists (" + says + ")");
      }
      return Status::Conflict(what + ": conflict (" + says + ")");
    case 403:
      return IoError(what + ": access denied (" + says + "); check the credentials, the region and the bucket's policy",
                     EACCES);
    case 501:
      if (!context.condition.empty()) {
        return Status::Unsupported(what + ": the server at " + context.server + " cannot do conditional writes (" +
                                   context.condition + "; " + says + ")");
      }
      return Status::Unsupported(what + ": not implemented by the server at " + context.server + " (" + says + ")");
    case 416:
      return Status::Corruption(what + ": the range lies beyond the end of the object (" + says + ")");
    case 301:
    case 307:
      return Status::InvalidArgument(what + ": the server redirects elsewhere (" + says +
                                     "); the bucket may be in another region than the one configured");
    case 400:
      return Status::InvalidArgument(what + ": the server refused the request (" + says + ")" + Attempts(exchange));
    default:
      if (response.status >= 500) return IoError(what + ": server error (" + says + ")" + Attempts(exchange));
      return IoError(what + ": unexpected answer (" + says + ")" + Attempts(exchange));
  }
}

bool IsRetryable(const HttpResponse& response) {
  if (response.status == 0) return response.transport_retryable;
  switch (response.status) {
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return true;
    default:
      break;
  }
  if (response.ok()) return false;
  std::string code = ParseErrorBody(response.body).code;
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError";
}

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry, double jitter) {
  double ceiling = static_cast<double>(policy.first_delay.count()) * std::ldexp(1.0, std::clamp(retry - 1, 0, 30));
  ceiling = std::min(ceiling, static_cast<double>(policy.max_delay.count()));
  double scaled = ceiling * (0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<int64_t>(scaled));
}

}  // namespace tusk::s3
