#include "store/backend/s3/curl_transport.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "store/backend/s3/curl_handles.h"
#include "store/backend/s3/errors.h"

namespace tusk::s3 {
namespace {

// Non-2xx bodies are short XML documents; more than this is not one.
constexpr size_t kMaxErrorBody = 64 << 10;

// libcurl wants one curl_global_init per process before any other call,
// and it is not thread-safe with other libcurl calls: once, here.
CURLcode GlobalInitOnce() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

// The DNS cache and TLS sessions, shared by every handle of one transport
// so a new handle does not resolve and handshake from scratch. Connections
// themselves stay with their easy handle (EasyPool), which is simpler than
// sharing the connection cache and keeps a connection on one thread at a time.
class SharedCaches {
 public:
  // Null when libcurl cannot make a share handle.
  static std::unique_ptr<SharedCaches> Create() {
    auto caches = std::unique_ptr<SharedCaches>(new SharedCaches);
    caches->share_.reset(curl_share_init());
    CURLSH* share = caches->share_.get();
    if (share == nullptr) return nullptr;
    if (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &SharedCaches::Lock) != CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &SharedCaches::Unlock) != CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_USERDATA, caches.get()) != CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
      return nullptr;
    }
    return caches;
  }
  CURLSH* get() const { return share_.get(); }

 private:
  SharedCaches() = default;
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<SharedCaches*>(self)->MutexFor(data).lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<SharedCaches*>(self)->MutexFor(data).unlock();
  }
  std::mutex& MutexFor(curl_lock_data data) {
    size_t i = static_cast<size_t>(data);
    return mutexes_[i < mutexes_.size() ? i : 0];
  }

  // Declared before share_: curl_share_cleanup still takes these locks.
  std::array<std::mutex, CURL_LOCK_DATA_LAST> mutexes_;
  CurlShare share_;
};

// Easy handles not in use, each keeping its connections alive for the next
// request. A request takes one (or a new one) and gives it back.
class EasyPool {
 public:
  explicit EasyPool(size_t max_idle) : max_idle_(max_idle) {}

  // Null when libcurl cannot make a handle.
  CurlEasy Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CurlEasy easy = std::move(idle_.back());
        idle_.pop_back();
        return easy;
      }
    }
    return CurlEasy(curl_easy_init());
  }
  // Keeps `easy` for reuse, or closes it when enough are idle.
  void Give(CurlEasy easy) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(easy));
  }

 private:
  std::mutex mu_;
  std::vector<CurlEasy> idle_;  // guarded by mu_
  const size_t max_idle_;
};

// The request body, fed to libcurl as it asks.
struct UploadState {
  std::string_view body;
  size_t sent = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t count, void* userp) {
  auto* upload = static_cast<UploadState*>(userp);
  size_t n = std::min(size * count, upload->body.size() - upload->sent);
  std::memcpy(buffer, upload->body.data() + upload->sent, n);
  upload->sent += n;
  return n;
}

// libcurl rewinds the body when it must send it again on the same attempt
// (e.g. after a reused connection turned out to be closed).
int SeekBody(void* userp, curl_off_t offset, int origin) {
  auto* upload = static_cast<UploadState*>(userp);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > upload->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  upload->sent = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// Where the answer goes while it arrives.
struct DownloadState {
  const HttpRequest* request;
  HttpResponse* response;
};

std::string_view TrimLine(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

size_t OnHeader(char* buffer, size_t size, size_t count, void* userp) {
  auto* state = static_cast<DownloadState*>(userp);
  HttpResponse& response = *state->response;
  std::string_view line(buffer, size * count);
  if (line.starts_with("HTTP/")) {
    // A new status line: an interim answer (100 Continue) ends, the real one starts.
    response.headers.clear();
    size_t space = line.find(' ');
    response.status = space == std::string_view::npos ? 0 : std::atol(std::string(line.substr(space + 1, 3)).c_str());
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string name(TrimLine(line.substr(0, colon)));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string value(TrimLine(line.substr(colon + 1)));
  if (name == "content-length" && response.ok() && state->request->body_out == nullptr) {
    response.body.reserve(std::min<size_t>(std::strtoull(value.c_str(), nullptr, 10), size_t{1} << 30));
  }
  response.headers[name] = std::move(value);
  return size * count;
}

size_t OnBody(char* buffer, size_t size, size_t count, void* userp) {
  auto* state = static_cast<DownloadState*>(userp);
  const HttpRequest& request = *state->request;
  HttpResponse& response = *state->response;
  size_t n = size * count;
  if (!response.ok()) {
    response.body.append(buffer, std::min(n, kMaxErrorBody - std::min(kMaxErrorBody, response.body.size())));
  } else if (request.body_out == nullptr) {
    response.body.append(buffer, n);
  } else {
    if (n > request.body_out_capacity - response.body_out_size) {
      response.body_overflow = true;
      return 0;  // stops the transfer with CURLE_WRITE_ERROR
    }
    std::memcpy(request.body_out + response.body_out_size, buffer, n);
    response.body_out_size += n;
  }
  return n;
}

bool IsRetryableCurlError(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// Failures before the request could be sent.
bool CertainlyNotSent(CURLcode code) {
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_COULDNT_CONNECT ||
         code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION;
}

class CurlTransport final : public HttpTransport {
 public:
  CurlTransport(const ClientOptions& options, std::string region, Credentials credentials,
                std::unique_ptr<SharedCaches> caches)
      : options_(options),
        sigv4_("aws:amz:" + region + ":s3"),
        credentials_(std::move(credentials)),
        caches_(std::move(caches)),
        pool_(static_cast<size_t>(std::max(0, options.max_idle_connections))) {}

  HttpResponse Perform(const HttpRequest& request) override {
    HttpResponse response;
    CurlEasy easy = pool_.Take();
    if (!easy) {
      response.transport_error = "libcurl cannot create a handle";
      return response;
    }
    curl_easy_reset(easy.get());  // options go; connections and caches stay
    CurlHeaderList headers;
    UploadState upload{request.body};
    DownloadState download{&request, &response};
    char error[CURL_ERROR_SIZE] = "";
    CURLcode rc = Configure(easy.get(), request, &headers, &upload, &download, error);
    if (rc == CURLE_OK) rc = curl_easy_perform(easy.get());
    if (rc != CURLE_OK) {
      response.status = 0;
      response.transport_error = error[0] != '\0' ? error : curl_easy_strerror(rc);
      response.transport_retryable = !response.body_overflow && IsRetryableCurlError(rc);
      response.may_have_reached_server = !CertainlyNotSent(rc);
    } else {
      long status = 0;
      curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
      response.status = status;
    }
    pool_.Give(std::move(easy));
    return response;
  }

 private:
  CURLcode Configure(CURL* easy, const HttpRequest& request, CurlHeaderList* headers, UploadState* upload,
                     DownloadState* download, char* error) const {
    bool headers_ok = headers->Append("x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (!credentials_.session_token.empty()) {
      headers_ok &= headers->Append(("x-amz-security-token: " + credentials_.session_token).c_str());
    }
    for (const std::string& line : request.headers) headers_ok &= headers->Append(line.c_str());
    if (!headers_ok) return CURLE_OUT_OF_MEMORY;

    // curl_easy_setopt fails only for an unknown option or no memory; the
    // first failure is the one reported.
    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption option, auto value) {
      CURLcode r = curl_easy_setopt(easy, option, value);
      if (rc == CURLE_OK) rc = r;
    };
    set(CURLOPT_ERRORBUFFER, error);
    set(CURLOPT_URL, request.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    // Keys may contain "." and ".." segments: send the path as built.
    set(CURLOPT_PATH_AS_IS, 1L);
    // Signals are not for multi-threaded programs; timeouts still work.
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    set(CURLOPT_AWS_SIGV4, sigv4_.c_str());
    set(CURLOPT_USERNAME, credentials_.access_key_id.c_str());
    set(CURLOPT_PASSWORD, credentials_.secret_access_key.c_str());
    set(CURLOPT_HTTPHEADER, headers->get());
    set(CURLOPT_SHARE, caches_->get());
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    set(CURLOPT_LOW_SPEED_LIMIT, options_.stall_bytes_per_second);
    set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
    set(CURLOPT_SSL_VERIFYPEER, options_.insecure ? 0L : 1L);
    set(CURLOPT_SSL_VERIFYHOST, options_.insecure ? 0L : 2L);
    set(CURLOPT_HEADERFUNCTION, &OnHeader);
    set(CURLOPT_HEADERDATA, download);
    set(CURLOPT_WRITEFUNCTION, &OnBody);
    set(CURLOPT_WRITEDATA, download);

    if (request.method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else if (request.method == "PUT") {
      set(CURLOPT_UPLOAD, 1L);
      set(CURLOPT_READFUNCTION, &ReadBody);
      set(CURLOPT_READDATA, upload);
      set(CURLOPT_SEEKFUNCTION, &SeekBody);
      set(CURLOPT_SEEKDATA, upload);
      set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    } else if (request.method == "POST") {
      set(CURLOPT_POST, 1L);
      set(CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    } else {
      set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    return rc;
  }

  const ClientOptions options_;
  const std::string sigv4_;  // "aws:amz:REGION:s3"
  const Credentials credentials_;
  // caches_ before pool_: the pool's handles use the share, so they go first.
  std::unique_ptr<SharedCaches> caches_;
  EasyPool pool_;
};

}  // namespace

Result<std::unique_ptr<HttpTransport>> NewCurlTransport(const ClientOptions& options, const std::string& region,
                                                        Credentials credentials) {
  CURLcode init = GlobalInitOnce();
  if (init != CURLE_OK) return IoError(std::string("libcurl does not initialise: ") + curl_easy_strerror(init));
  std::unique_ptr<SharedCaches> caches = SharedCaches::Create();
  if (caches == nullptr) return IoError("libcurl cannot create a share handle");
  return std::unique_ptr<HttpTransport>(new CurlTransport(options, region, std::move(credentials), std::move(caches)));
}

}  // namespace tusk::s3
