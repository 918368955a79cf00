// Multipart uploads: the single steps, and PutLarge, which runs them with
// several parts in flight and can resume an upload that failed.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/backend/s3/errors.h"
#include "store/backend/s3/etag.h"
#include "store/backend/s3/http.h"
#include "store/backend/s3/s3_client.h"
#include "store/backend/s3/xml.h"

namespace tusk::s3 {
namespace {

constexpr size_t kMinPartSize = 5 << 20;  // S3's minimum for every part but the last
constexpr uint64_t kMaxParts = 10000;

// The parts of one PutLarge, shared by its worker threads.
class PartQueue {
 public:
  PartQueue(uint64_t size, size_t part_size, std::map<int, UploadedPart> on_server)
      : size_(size),
        part_size_(part_size),
        on_server_(std::move(on_server)),
        done_(static_cast<size_t>(PartCount(size, part_size))) {}

  static uint64_t PartCount(uint64_t size, size_t part_size) {
    return size == 0 ? 1 : (size + part_size - 1) / part_size;
  }
  int count() const { return static_cast<int>(done_.size()); }
  uint64_t Offset(int number) const { return static_cast<uint64_t>(number - 1) * part_size_; }
  size_t Length(int number) const {
    return static_cast<size_t>(std::min<uint64_t>(part_size_, size_ - Offset(number)));
  }

  // The next part to send, or 0 when there is none left or a part failed.
  int Next() {
    if (failed_.load()) return 0;
    int number = next_.fetch_add(1);
    return number <= count() ? number : 0;
  }
  // The part as the server has it from an earlier attempt, or null.
  const UploadedPart* OnServer(int number) const {
    auto it = on_server_.find(number);
    return it == on_server_.end() ? nullptr : &it->second;
  }
  void Done(UploadedPart part, bool reused) {
    (reused ? reused_ : sent_).fetch_add(1);
    done_[static_cast<size_t>(part.number - 1)] = std::move(part);  // each slot has one writer
  }
  // Records the first failure; the other workers stop taking parts.
  void Fail(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_failure_.ok()) first_failure_ = std::move(status);
    failed_.store(true);
  }

  // After the workers are joined:
  Status first_failure() const { return first_failure_; }
  std::vector<UploadedPart>& done() { return done_; }
  int sent() const { return sent_.load(); }
  int reused() const { return reused_.load(); }

  // read_part is called one call at a time (s3_client.h).
  std::mutex read_mu;

 private:
  const uint64_t size_;
  const size_t part_size_;
  const std::map<int, UploadedPart> on_server_;
  std::vector<UploadedPart> done_;
  std::atomic<int> next_{1};
  std::atomic<bool> failed_{false};
  std::atomic<int> sent_{0}, reused_{0};
  std::mutex mu_;
  Status first_failure_;  // guarded by mu_
};

}  // namespace

Result<std::string> Client::CreateMultipartUpload(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty S3 key");
  HttpRequest request = NewRequest("POST", key, {{"uploads", ""}});
  // The initiating request's Content-Type becomes the object's; without one
  // libcurl would send a form type for a POST.
  request.headers.push_back("Content-Type: application/octet-stream");
  Exchange exchange = Send(request);
  if (!exchange.response.ok()) return Fail(exchange, "CreateMultipartUpload", key);
  Result<std::string> upload_id = ParseInitiateMultipartUpload(exchange.response.body);
  if (!upload_id.ok()) return upload_id.status().Annotate("CreateMultipartUpload " + Describe(key));
  return upload_id;
}

Result<std::string> Client::UploadPart(std::string_view key, const std::string& upload_id, int part_number,
                                       std::string_view bytes) {
  if (part_number < 1 || part_number > static_cast<int>(kMaxParts)) {
    return Status::InvalidArgument("UploadPart " + Describe(key) + ": part number " + std::to_string(part_number) +
                                   " is not in 1..10000");
  }
  HttpRequest request = NewRequest("PUT", key, {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}});
  request.body = bytes;
  Exchange exchange = Send(request);
  std::string operation = "UploadPart " + std::to_string(part_number) + " of";
  if (!exchange.response.ok()) return Fail(exchange, operation, key);
  std::string etag = UnquoteEtag(exchange.response.Header("etag"));
  if (etag.empty()) return Status::Corruption(operation + " " + Describe(key) + ": the answer has no ETag");
  return etag;
}

Result<std::vector<UploadedPart>> Client::ListParts(std::string_view key, const std::string& upload_id) {
  std::vector<UploadedPart> parts;
  int marker = 0;
  for (;;) {
    Query query{{"uploadId", upload_id}};
    if (marker > 0) query["part-number-marker"] = std::to_string(marker);
    Exchange exchange = Send(NewRequest("GET", key, query));
    if (!exchange.response.ok()) return Fail(exchange, "ListParts", key);
    Result<PartsPage> page = ParseListParts(exchange.response.body);
    if (!page.ok()) return page.status().Annotate("ListParts " + Describe(key));
    for (UploadedPart& part : page->parts) parts.push_back(std::move(part));
    if (!page->truncated) return parts;
    if (page->next_part_number_marker <= marker) {
      return Status::Corruption("ListParts " + Describe(key) + ": the part number marker does not advance");
    }
    marker = page->next_part_number_marker;
  }
}

Result<std::string> Client::CompleteMultipartUpload(std::string_view key, const std::string& upload_id,
                                                    const std::vector<UploadedPart>& parts) {
  std::string body = CompleteMultipartUploadBody(parts);
  HttpRequest request = NewRequest("POST", key, {{"uploadId", upload_id}});
  request.headers.push_back("Content-Type: application/xml");
  request.body = body;
  std::string what = "CompleteMultipartUpload " + Describe(key);
  int max_attempts = std::max(1, options_.retry.max_attempts);
  bool may_have_landed = false;
  for (int attempt = 1;; attempt++) {
    Exchange exchange = Send(request);
    may_have_landed |= exchange.earlier_attempt_may_have_landed;
    if (!exchange.response.ok()) {
      if (exchange.response.status == 404 && may_have_landed) {
        // An attempt whose answer was lost may have completed the upload,
        // which then no longer exists: the object says whether it did.
        Result<ObjectInfo> now = Head(key);
        if (now.ok() && now->etag.ends_with("-" + std::to_string(parts.size()))) return now->etag;
      }
      return Fail(exchange, "CompleteMultipartUpload", key);
    }
    // S3 may answer 200 and report an error in the body, sometimes one
    // worth another attempt (InternalError, SlowDown).
    ErrorBody error = ParseErrorBody(exchange.response.body);
    if (error.code.empty()) {
      Result<std::string> etag = ParseCompleteMultipartUpload(exchange.response.body);
      if (!etag.ok()) return etag.status().Annotate(what);
      if (!etag->empty()) return etag;
      // Ceph 16 completes with an empty <ETag>: ask the object. (A writer
      // replacing it in between would lend us its etag; callers that race on
      // one key use conditional Puts, not multipart uploads.)
      TUSK_ASSIGN_OR_RETURN(ObjectInfo now, Head(key));
      return now.etag;
    }
    if ((error.code != "InternalError" && error.code != "SlowDown") || attempt >= max_attempts) {
      return Redact(IoError(what + ": " + error.code + ": " + error.message), credentials_);
    }
    may_have_landed = true;
  }
}

Status Client::AbortMultipartUpload(std::string_view key, const std::string& upload_id) {
  Exchange exchange = Send(NewRequest("DELETE", key, {{"uploadId", upload_id}}));
  if (exchange.response.ok() || exchange.response.status == 404) return Status::Ok();
  return Fail(exchange, "AbortMultipartUpload", key);
}

Result<LargeUploadResult> Client::PutLarge(std::string_view key, uint64_t size, const PartReader& read_part,
                                           const LargeUploadOptions& options) {
  std::string what = "PutLarge " + Describe(key);
  if (key.empty()) return Status::InvalidArgument("empty S3 key");
  if (options.part_size < kMinPartSize) {
    return Status::InvalidArgument(what + ": part size " + std::to_string(options.part_size) +
                                   " is under the S3 minimum of 5 MiB");
  }
  if (options.parts_in_flight < 1) return Status::InvalidArgument(what + ": parts_in_flight must be at least 1");
  uint64_t part_count = PartQueue::PartCount(size, options.part_size);
  if (part_count > kMaxParts) {
    return Status::InvalidArgument(what + ": " + std::to_string(size) + " bytes need " + std::to_string(part_count) +
                                   " parts of " + std::to_string(options.part_size) +
                                   " bytes, over the S3 limit of 10000; use larger parts");
  }

  LargeUploadResult result;
  if (part_count == 1 && options.resume_upload_id.empty()) {
    std::string bytes;
    TUSK_RETURN_IF_ERROR(read_part(0, static_cast<size_t>(size), &bytes));
    if (bytes.size() != size) return Status::InvalidArgument(what + ": read_part returned a short part");
    TUSK_ASSIGN_OR_RETURN(result.etag, Put(key, bytes));
    result.parts_sent = 1;
    return result;
  }

  std::map<int, UploadedPart> on_server;
  if (options.resume_upload_id.empty()) {
    TUSK_ASSIGN_OR_RETURN(result.upload_id, CreateMultipartUpload(key));
  } else {
    result.upload_id = options.resume_upload_id;
    TUSK_ASSIGN_OR_RETURN(std::vector<UploadedPart> parts, ListParts(key, result.upload_id));
    for (UploadedPart& part : parts) on_server[part.number] = std::move(part);
  }
  if (options.on_upload_id) options.on_upload_id(result.upload_id);

  PartQueue queue(size, options.part_size, std::move(on_server));
  auto worker = [&] {
    std::string bytes;  // one part's buffer per worker, reused
    for (int number = queue.Next(); number != 0; number = queue.Next()) {
      size_t length = queue.Length(number);
      Status read;
      {
        std::lock_guard<std::mutex> lock(queue.read_mu);
        read = read_part(queue.Offset(number), length, &bytes);
      }
      if (read.ok() && bytes.size() != length) {
        read = Status::InvalidArgument("read_part returned " + std::to_string(bytes.size()) + " bytes for part " +
                                       std::to_string(number) + ", expected " + std::to_string(length));
      }
      if (!read.ok()) return queue.Fail(read.Annotate(what));
      // A part from an earlier attempt counts only if it holds these bytes.
      const UploadedPart* there = queue.OnServer(number);
      if (there != nullptr && there->size == length && there->etag == PlainEtag(bytes)) {
        queue.Done(*there, /*reused=*/true);
        continue;
      }
      Result<std::string> etag = UploadPart(key, result.upload_id, number, bytes);
      if (!etag.ok()) return queue.Fail(etag.status());
      queue.Done({number, length, std::move(etag).value()}, /*reused=*/false);
    }
  };
  {
    std::vector<std::jthread> workers;
    int threads = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(options.parts_in_flight), part_count));
    for (int i = 0; i < threads; i++) workers.emplace_back(worker);
  }  // joined here

  Status failure = queue.first_failure();
  if (failure.ok()) {
    Result<std::string> etag = CompleteMultipartUpload(key, result.upload_id, queue.done());
    if (etag.ok()) {
      result.etag = std::move(etag).value();
      result.parts_sent = queue.sent();
      result.parts_reused = queue.reused();
      return result;
    }
    failure = etag.status();
  }
  if (options.keep_failed_upload) return failure;
  Status aborted = AbortMultipartUpload(key, result.upload_id);
  if (!aborted.ok()) {
    return Status::Rebuild(failure.code(), failure.sys_errno(),
                           failure.message() + " (and aborting the upload failed too: " + aborted.message() + ")");
  }
  return failure;
}

}  // namespace tusk::s3
