// What an S3 answer means: the Status it becomes, and whether it is worth
// another attempt. One table for every operation, so that a 404 or a 403
// reads the same wherever it happens.
//
// Thread-safety: functions of their arguments.
#pragma once

#include <cerrno>
#include <chrono>
#include <string>

#include "store/backend/s3/http.h"
#include "store/backend/s3/s3_client.h"
#include "store/status.h"

namespace tusk::s3 {

// A request's last answer, after the retries.
struct Exchange {
  HttpResponse response;
  std::string url;  // without its query, for messages
  int attempts = 1;
  // An attempt before the last one failed in a way that leaves open
  // whether the server carried it out (its answer was lost, or a 5xx).
  bool earlier_attempt_may_have_landed = false;
};

// What the request was, for messages.
struct FailureContext {
  std::string operation;  // "PUT", "GET", "ListObjectsV2", ...
  std::string object;     // "s3://bucket/key", or "s3://bucket" for the bucket
  std::string server;     // "http://127.0.0.1:7480"
  std::string bucket;
  bool about_bucket = false;  // a bucket operation: a 404 means the bucket is missing
  std::string condition;      // "If-None-Match: *", "If-Match: <etag>", or "" for none
};

// An IoError carrying `err` (EIO unless the cause has a better errno).
Status IoError(std::string message, int err = EIO);

// The Status for an answer that is not the success the caller expected
// (see s3_client.h for the table). Not redacted: the caller does that.
Status StatusFor(const Exchange& exchange, const FailureContext& context);

// Connection failures and timeouts the transport marked retryable; HTTP
// 500, 502, 503, 504 and 429; and the S3 codes SlowDown, RequestTimeout
// (a 400 that AWS sends when a connection was idle too long) and
// InternalError. Never other 4xx: a 403, 404 or 412 will not change.
bool IsRetryable(const HttpResponse& response);

// The wait before retry number `retry` (1 for the first retry):
// min(max_delay, first_delay * 2^(retry-1)) scaled by 0.5 + jitter/2,
// where `jitter` is uniform in [0, 1].
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry, double jitter);

}  // namespace tusk::s3
