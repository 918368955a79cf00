// The Client's plumbing (sending with retries, messages) and its bucket and
// object operations. Multipart uploads are in multipart.cc.
#include "store/backend/s3/s3_client.h"

#include <charconv>
#include <random>
#include <thread>

#include "store/backend/s3/curl_transport.h"
#include "store/backend/s3/errors.h"
#include "store/backend/s3/etag.h"
#include "store/backend/s3/http.h"
#include "store/backend/s3/xml.h"

namespace tusk::s3 {
namespace {

// S3's limit on the length of a key, in bytes.
constexpr size_t kMaxKeyBytes = 1024;

Status CheckKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty S3 key");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("S3 key of " + std::to_string(key.size()) + " bytes (at most 1024): '" +
                                   std::string(key.substr(0, 64)) + "...'");
  }
  return Status::Ok();
}

double Jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// Whether a failed attempt may still have been carried out by the server:
// its answer was lost, or the server failed somewhere in the middle. 429 and
// 503 (SlowDown) are refusals to start.
bool MayHaveLanded(const HttpResponse& response) {
  if (response.status == 0) return response.may_have_reached_server;
  return response.status >= 500 && response.status != 503;
}

Result<uint64_t> ParseContentLength(const HttpResponse& response) {
  std::string text = response.Header("content-length");
  uint64_t value = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || err != std::errc() || end != text.data() + text.size()) {
    return Status::Corruption("answer without a valid Content-Length ('" + text + "')");
  }
  return value;
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Create(std::string bucket, ClientOptions options, Credentials credentials) {
  TUSK_ASSIGN_OR_RETURN(Endpoint endpoint,
                        Endpoint::Resolve(options.endpoint, options.region, options.addressing, bucket));
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<HttpTransport> transport,
                        NewCurlTransport(options, endpoint.region(), credentials));
  return std::unique_ptr<Client>(
      new Client(std::move(endpoint), std::move(options), std::move(credentials), std::move(transport)));
}

Result<std::unique_ptr<Client>> Client::CreateWithTransport(std::string bucket, ClientOptions options,
                                                            Credentials credentials,
                                                            std::unique_ptr<HttpTransport> transport) {
  TUSK_ASSIGN_OR_RETURN(Endpoint endpoint,
                        Endpoint::Resolve(options.endpoint, options.region, options.addressing, bucket));
  return std::unique_ptr<Client>(
      new Client(std::move(endpoint), std::move(options), std::move(credentials), std::move(transport)));
}

Client::Client(Endpoint endpoint, ClientOptions options, Credentials credentials,
               std::unique_ptr<HttpTransport> transport)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      credentials_(std::move(credentials)),
      transport_(std::move(transport)) {}

Client::~Client() = default;

std::string Client::Describe(std::string_view key) const {
  return "s3://" + bucket() + (key.empty() ? "" : "/" + std::string(key));
}

Exchange Client::Send(const HttpRequest& request) {
  Exchange exchange;
  exchange.url = request.url_for_messages;
  int max_attempts = std::max(1, options_.retry.max_attempts);
  for (int attempt = 1;; attempt++) {
    exchange.attempts = attempt;
    exchange.response = transport_->Perform(request);
    if (attempt >= max_attempts || !IsRetryable(exchange.response)) return exchange;
    exchange.earlier_attempt_may_have_landed |= MayHaveLanded(exchange.response);
    std::this_thread::sleep_for(BackoffDelay(options_.retry, attempt, Jitter()));
  }
}

HttpRequest Client::NewRequest(std::string method, std::string_view key, const Query& query) const {
  HttpRequest request;
  request.method = std::move(method);
  request.url = endpoint_.Url(key, query);
  request.url_for_messages = endpoint_.UrlForMessages(key);
  return request;
}

FailureContext Client::ContextFor(std::string operation, std::string_view key) const {
  FailureContext context;
  context.operation = std::move(operation);
  context.object = Describe(key);
  context.server = endpoint_.server();
  context.bucket = bucket();
  context.about_bucket = key.empty();
  return context;
}

Status Client::Fail(const Exchange& exchange, const FailureContext& context) const {
  return Redact(StatusFor(exchange, context), credentials_);
}

Status Client::Fail(const Exchange& exchange, std::string operation, std::string_view key) const {
  return Fail(exchange, ContextFor(std::move(operation), key));
}

// --- the bucket

Status Client::CreateBucket() {
  HttpRequest request = NewRequest("PUT", "");
  // us-east-1 is the default location and refuses to be named.
  std::string body;
  if (endpoint_.region() != "us-east-1") {
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
           endpoint_.region() + "</LocationConstraint></CreateBucketConfiguration>";
  }
  request.body = body;
  Exchange exchange = Send(request);
  return exchange.response.ok() ? Status::Ok() : Fail(exchange, "CreateBucket", "");
}

Status Client::CheckBucket() {
  Exchange exchange = Send(NewRequest("HEAD", ""));
  return exchange.response.ok() ? Status::Ok() : Fail(exchange, "HeadBucket", "");
}

Status Client::DeleteBucket() {
  Exchange exchange = Send(NewRequest("DELETE", ""));
  return exchange.response.ok() ? Status::Ok() : Fail(exchange, "DeleteBucket", "");
}

// --- objects

Result<std::string> Client::Put(std::string_view key, std::string_view bytes, const WriteCondition& condition) {
  TUSK_RETURN_IF_ERROR(CheckKey(key));
  HttpRequest request = NewRequest("PUT", key);
  request.body = bytes;
  FailureContext context = ContextFor("PUT", key);
  switch (condition.kind) {
    case WriteCondition::Kind::kNone:
      break;
    case WriteCondition::Kind::kIfNoneMatchAny:
      context.condition = "If-None-Match: *";
      break;
    case WriteCondition::Kind::kIfMatch:
      if (condition.etag.empty()) return Status::InvalidArgument("PUT " + Describe(key) + ": If-Match without an etag");
      // Bare: Ceph 16 answers 412 to the quoted form that AWS documents (s3_client.h).
      context.condition = "If-Match: " + UnquoteEtag(condition.etag);
      break;
  }
  if (!context.condition.empty()) request.headers.push_back(context.condition);

  Exchange exchange = Send(request);
  if (exchange.response.ok()) {
    std::string etag = UnquoteEtag(exchange.response.Header("etag"));
    if (etag.empty()) return Status::Corruption("PUT " + Describe(key) + ": the answer has no ETag");
    return etag;
  }
  if (exchange.response.status == 412 && exchange.earlier_attempt_may_have_landed) {
    // The 412 may answer our own earlier attempt, whose success was lost.
    Result<ObjectInfo> now = Head(key);
    if (now.ok() && now->etag == PlainEtag(bytes)) return now->etag;
  }
  return Fail(exchange, context);
}

Result<std::string> Client::Get(std::string_view key) {
  TUSK_RETURN_IF_ERROR(CheckKey(key));
  Exchange exchange = Send(NewRequest("GET", key));
  if (!exchange.response.ok()) return Fail(exchange, "GET", key);
  return std::move(exchange.response.body);
}

Result<std::string> Client::GetRange(std::string_view key, uint64_t offset, size_t length) {
  std::string out(length, '\0');
  TUSK_RETURN_IF_ERROR(ReadRange(key, offset, length, out.data()));
  return out;
}

Status Client::ReadRange(std::string_view key, uint64_t offset, size_t length, char* out) {
  TUSK_RETURN_IF_ERROR(CheckKey(key));
  if (length == 0) return Status::Ok();  // "bytes=N-(N-1)" is not a range
  std::string range = "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
  HttpRequest request = NewRequest("GET", key);
  request.headers.push_back("Range: " + range);
  request.body_out = out;
  request.body_out_capacity = length;
  Exchange exchange = Send(request);
  std::string what = "GET " + Describe(key) + " " + range;
  if (!exchange.response.ok()) return Fail(exchange, ContextFor("GET " + range + " of", key));
  const HttpResponse& response = exchange.response;
  // 200 is the whole object: right only when that is exactly the range.
  if (response.status != 206 && offset != 0) return Status::Corruption(what + ": the server ignored the range");
  if (response.body_out_size != length) {
    std::string content_range = response.Header("content-range");
    return Status::Corruption(what + ": the object ends early; got " + std::to_string(response.body_out_size) +
                              " bytes" + (content_range.empty() ? "" : " (Content-Range: " + content_range + ")"));
  }
  return Status::Ok();
}

Result<ObjectInfo> Client::Head(std::string_view key) {
  TUSK_RETURN_IF_ERROR(CheckKey(key));
  Exchange exchange = Send(NewRequest("HEAD", key));
  if (!exchange.response.ok()) return Fail(exchange, "HEAD", key);
  ObjectInfo info;
  info.key = std::string(key);
  TUSK_ASSIGN_OR_RETURN(info.size, ParseContentLength(exchange.response));
  info.etag = UnquoteEtag(exchange.response.Header("etag"));
  return info;
}

Status Client::Delete(std::string_view key) {
  TUSK_RETURN_IF_ERROR(CheckKey(key));
  Exchange exchange = Send(NewRequest("DELETE", key));
  return exchange.response.ok() ? Status::Ok() : Fail(exchange, "DELETE", key);
}

Result<std::vector<ObjectInfo>> Client::List(std::string_view prefix, int max_keys_per_page, size_t max_objects) {
  if (max_keys_per_page < 1 || max_keys_per_page > 1000) {
    return Status::InvalidArgument("ListObjectsV2: max keys per page must be 1..1000, not " +
                                   std::to_string(max_keys_per_page));
  }
  FailureContext context = ContextFor("ListObjectsV2", prefix);
  context.about_bucket = true;
  std::vector<ObjectInfo> objects;
  std::string token;
  for (;;) {
    // Keys come back %-encoded: raw XML cannot carry every byte a key may hold.
    Query query{{"list-type", "2"}, {"encoding-type", "url"}, {"max-keys", std::to_string(max_keys_per_page)}};
    if (!prefix.empty()) query["prefix"] = std::string(prefix);
    if (!token.empty()) query["continuation-token"] = token;
    Exchange exchange = Send(NewRequest("GET", "", query));
    if (!exchange.response.ok()) return Fail(exchange, context);
    Result<ListPage> page = ParseListObjectsV2(exchange.response.body);
    if (!page.ok()) return page.status().Annotate(context.operation + " " + context.object);
    for (ObjectInfo& info : page->objects) {
      if (objects.size() == max_objects) return objects;
      objects.push_back(std::move(info));
    }
    if (!page->truncated || objects.size() == max_objects) return objects;
    if (page->next_continuation_token == token) {
      return Status::Corruption(context.operation + " " + context.object +
                                ": the server returned the same continuation token twice");
    }
    token = std::move(page->next_continuation_token);
  }
}

}  // namespace tusk::s3
