// An S3 client for one bucket: the object operations tusk's remotes need,
// on libcurl (which signs with SigV4) and pugixml (for listings). Works with
// AWS S3 and with S3-compatible servers (Ceph RGW, MinIO) through an
// endpoint URL.
//
// Terms:
//  * key: the full S3 key of an object. The client does not add a location's
//    prefix; callers join it (Location::Key).
//  * etag: the server's entity tag of an object or part, *without* the
//    surrounding quotes. For an object written in one PUT without SSE-KMS it
//    is the hex MD5 of the bytes.
//  * conditional write: a PUT that only happens if the object is absent
//    (If-None-Match: *) or still has a given etag (If-Match). The server
//    decides atomically, which is what makes S3 usable for refs.
//  * multipart upload: an object sent as numbered parts (each >= 5 MiB but
//    the last), which exist on the server under an upload id until the
//    upload is completed or aborted.
//
// Errors (every operation returns a Status or Result):
//  * NotFound: no such object, bucket or upload (HTTP 404).
//  * Conflict: a conditional write's precondition failed (HTTP 412), or the
//    server reported a conflicting concurrent operation (409).
//  * IoError with errno EACCES: access denied (403), naming bucket and key.
//  * Unsupported: the server cannot do conditional writes (501 to one).
//  * Corruption: an answer that does not parse, or a range read that came
//    back short.
//  * InvalidArgument: a request the server refused as malformed (400) or
//    one refused before sending (empty key, bad part size).
//  * IoError: a connection failure, timeout or server error (5xx) that
//    outlasted the retries; the message names the URL without its query.
// Messages never contain the access key id, the secret or the session
// token: they are redacted from whatever the server or libcurl says.
//
// Retries: connection failures, timeouts, 500/502/503/504, 429 and the
// server's SlowDown / RequestTimeout / InternalError codes are retried with
// exponential backoff and jitter, up to RetryPolicy::max_attempts attempts
// in all; other 4xx answers never are. A conditional PUT whose first attempt
// may have landed before its answer was lost would see its own write as a
// 412 on retry: Put checks the object's etag against the MD5 of its bytes
// in that case and reports success when they match (so two writers of
// identical bytes can both be told they won; the bytes are the same).
//
// Thread-safety: a Client is thread-safe; one Client serves many threads at
// once (FUSE readers calling ReadRange concurrently), reusing connections
// (keep-alive) through a pool of libcurl handles.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend/s3/credentials.h"
#include "store/backend/s3/endpoint.h"
#include "store/status.h"

namespace tusk::s3 {

class HttpTransport;
struct HttpRequest;
struct Exchange;        // a request's last answer after retries (errors.h)
struct FailureContext;  // what a request was, for messages (errors.h)

struct RetryPolicy {
  int max_attempts = 5;  // attempts in all, including the first; 1 turns retries off
  // The wait before retry n is a random duration between half and all of
  // min(max_delay, first_delay * 2^(n-1)): exponential backoff with jitter,
  // so that many clients slowed down together do not come back together.
  std::chrono::milliseconds first_delay{100};
  std::chrono::milliseconds max_delay{5000};
};

struct ClientOptions {
  // "" for AWS (https://s3.REGION.amazonaws.com), else e.g. "http://127.0.0.1:7480".
  std::string endpoint;
  // "" for AWS_REGION, AWS_DEFAULT_REGION or us-east-1. Part of every signature.
  std::string region;
  Addressing addressing = Addressing::kAuto;
  // Skips TLS certificate and host name verification. Only when asked for.
  bool insecure = false;
  std::chrono::milliseconds connect_timeout{10000};
  // A transfer (including the wait for an answer) that averages fewer than
  // `stall_bytes_per_second` over `stall_timeout` fails as stalled, instead
  // of hanging forever on a dead server or network.
  long stall_bytes_per_second = 1;
  std::chrono::seconds stall_timeout{60};
  RetryPolicy retry;
  // Connections kept open for reuse between requests; more than this many
  // concurrent requests still run, their connections are closed afterwards.
  int max_idle_connections = 16;
};

struct WriteCondition {
  enum class Kind {
    kNone,            // always write
    kIfNoneMatchAny,  // create only: If-None-Match: *
    kIfMatch,         // replace only the version with `etag`: If-Match
  };
  Kind kind = Kind::kNone;
  std::string etag;  // for kIfMatch, without quotes

  static WriteCondition None() { return {}; }
  static WriteCondition IfNoneMatchAny() { return {Kind::kIfNoneMatchAny, ""}; }
  static WriteCondition IfMatch(std::string etag) { return {Kind::kIfMatch, std::move(etag)}; }
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
};

struct UploadedPart {
  int number = 0;  // 1..10000
  uint64_t size = 0;
  std::string etag;
};

// Reads the `len` bytes of the object at `offset` into `*out` (resized by
// the callee). Called one call at a time, from PutLarge's worker threads.
using PartReader = std::function<Status(uint64_t offset, size_t len, std::string* out)>;

struct LargeUploadOptions {
  size_t part_size = 8 << 20;  // >= 5 MiB (the S3 minimum for all parts but the last)
  int parts_in_flight = 4;     // parts uploaded concurrently, each holding a part_size buffer
  // An upload id from an earlier PutLarge of the same key and size that
  // failed with keep_failed_upload: parts already on the server whose size
  // and MD5 match what read_part returns now are not sent again.
  std::string resume_upload_id;
  // Called once with the upload id, before any part is sent, so a caller
  // can record it and resume after a crash.
  std::function<void(const std::string& upload_id)> on_upload_id;
  // On failure, leave the upload (and its parts) on the server for a later
  // resume instead of aborting it. Unfinished uploads cost storage until
  // aborted.
  bool keep_failed_upload = false;
};

struct LargeUploadResult {
  std::string etag;
  std::string upload_id;
  int parts_sent = 0;    // uploaded by this call
  int parts_reused = 0;  // found on the server when resuming
};

class Client {
 public:
  // A client of `bucket` (which need not exist yet) on the real transport.
  // InvalidArgument for a bad bucket name, endpoint or region; IoError when
  // libcurl cannot be initialised. No request is sent.
  static Result<std::unique_ptr<Client>> Create(std::string bucket, ClientOptions options, Credentials credentials);
  // The same on another transport (tests). `credentials` are only used to
  // redact messages; signing is the transport's business.
  static Result<std::unique_ptr<Client>> CreateWithTransport(std::string bucket, ClientOptions options,
                                                             Credentials credentials,
                                                             std::unique_ptr<HttpTransport> transport);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& bucket() const { return endpoint_.bucket(); }
  const Endpoint& endpoint() const { return endpoint_; }
  // "s3://bucket/key", for messages.
  std::string Describe(std::string_view key) const;

  // --- the bucket
  // Creates the bucket (in the client's region). When it exists already:
  // AlreadyExists where the server says so (another owner's bucket; AWS
  // outside us-east-1), Ok where it does not (your own, on us-east-1 and Ceph).
  Status CreateBucket();
  // Ok when the bucket exists and is reachable with these credentials;
  // NotFound ("bucket 'x' does not exist at <server>") when it does not.
  Status CheckBucket();
  // Deletes the bucket; Conflict when it is not empty.
  Status DeleteBucket();

  // --- objects
  // Writes `bytes` as `key` in one request and returns the new etag.
  // Conflict when `condition` does not hold; Unsupported when the server
  // cannot do conditional writes. If-Match is sent with the bare
  // (unquoted) etag: Ceph 16 answers 412 to the quoted form that AWS
  // documents. (Not checked against AWS itself here; if AWS refused the
  // bare form, a quoted retry after a 412 would be the place to add it.)
  Result<std::string> Put(std::string_view key, std::string_view bytes,
                          const WriteCondition& condition = WriteCondition::None());
  // The whole object.
  Result<std::string> Get(std::string_view key);
  // `length` bytes at `offset`; Corruption when the object ends first (the
  // RandomAccessFile contract: a truncated file is damage).
  Result<std::string> GetRange(std::string_view key, uint64_t offset, size_t length);
  // The same into `out`, which has room for `length` bytes: no copy. On
  // failure `out` holds unspecified bytes.
  Status ReadRange(std::string_view key, uint64_t offset, size_t length, char* out);
  // Size and etag; NotFound when absent.
  Result<ObjectInfo> Head(std::string_view key);
  // Ok also when the key is absent: S3 does not tell (Head first if it matters).
  Status Delete(std::string_view key);
  // Every object whose key starts with `prefix`, in key order, page by page
  // (ListObjectsV2, `max_keys_per_page` at a time, 1..1000), or only the
  // first `max_objects` of them.
  Result<std::vector<ObjectInfo>> List(std::string_view prefix, int max_keys_per_page = 1000,
                                       size_t max_objects = SIZE_MAX);

  // --- multipart uploads, one step at a time
  // Returns the new upload id.
  Result<std::string> CreateMultipartUpload(std::string_view key);
  // Sends part `part_number` (1..10000) and returns its etag.
  Result<std::string> UploadPart(std::string_view key, const std::string& upload_id, int part_number,
                                 std::string_view bytes);
  // The parts on the server so far, by number; NotFound when the upload
  // is gone (completed or aborted).
  Result<std::vector<UploadedPart>> ListParts(std::string_view key, const std::string& upload_id);
  // Joins `parts` (ascending numbers) into the object; returns its etag.
  Result<std::string> CompleteMultipartUpload(std::string_view key, const std::string& upload_id,
                                              const std::vector<UploadedPart>& parts);
  // Ok also when the upload is already gone.
  Status AbortMultipartUpload(std::string_view key, const std::string& upload_id);

  // --- multipart uploads, all steps
  // Writes a `size`-byte object, read through `read_part`, as a multipart
  // upload with several parts in flight (or in one Put when it fits in one
  // part). On failure the upload is aborted unless options say otherwise.
  // InvalidArgument when part_size is under 5 MiB or would need more than
  // 10000 parts; NotFound when the upload to resume no longer exists (start
  // a new one). Like Put, it overwrites: there is no conditional form.
  Result<LargeUploadResult> PutLarge(std::string_view key, uint64_t size, const PartReader& read_part,
                                     const LargeUploadOptions& options = {});

 private:
  Client(Endpoint endpoint, ClientOptions options, Credentials credentials, std::unique_ptr<HttpTransport> transport);

  // Sends `request`, retrying per the policy, and returns the last answer.
  Exchange Send(const HttpRequest& request);
  // A request for `key` ("" for the bucket) with `query`.
  HttpRequest NewRequest(std::string method, std::string_view key, const Query& query = {}) const;
  // What `operation` on `key` ("" for the bucket) was, for messages.
  FailureContext ContextFor(std::string operation, std::string_view key) const;
  // The redacted Status for an answer that is not the expected success.
  Status Fail(const Exchange& exchange, const FailureContext& context) const;
  Status Fail(const Exchange& exchange, std::string operation, std::string_view key) const;

  Endpoint endpoint_;
  ClientOptions options_;
  Credentials credentials_;  // for redacting messages only
  std::unique_ptr<HttpTransport> transport_;
};

}  // namespace tusk::s3
