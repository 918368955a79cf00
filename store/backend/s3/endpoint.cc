#include "store/backend/s3/endpoint.h"

#include <cstdlib>

#include "store/backend/s3/location.h"

namespace tusk::s3 {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A region goes into curl's "aws:amz:REGION:s3" signing parameter, so a ':'
// in it would silently change what is signed.
Status ValidateRegion(std::string_view region) {
  for (char c : region) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return Status::InvalidArgument("bad S3 region '" + std::string(region) +
                                     "': only lowercase letters, digits and '-' are allowed");
    }
  }
  if (region.empty()) return Status::InvalidArgument("empty S3 region");
  return Status::Ok();
}

}  // namespace

std::string DefaultRegion() {
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
  }
  return "us-east-1";
}

Result<Endpoint> Endpoint::Resolve(std::string_view endpoint_url, std::string_view region, Addressing addressing,
                                   std::string_view bucket) {
  TUSK_RETURN_IF_ERROR(ValidateBucketName(bucket));
  Endpoint e;
  e.bucket_ = std::string(bucket);
  e.region_ = region.empty() ? DefaultRegion() : std::string(region);
  TUSK_RETURN_IF_ERROR(ValidateRegion(e.region_));

  bool is_aws = endpoint_url.empty();
  if (is_aws) {
    e.scheme_ = "https";
    e.host_ = "s3." + e.region_ + ".amazonaws.com";
  } else {
    size_t sep = endpoint_url.find("://");
    std::string_view scheme = sep == std::string_view::npos ? "" : endpoint_url.substr(0, sep);
    if (scheme != "http" && scheme != "https") {
      return Status::InvalidArgument("bad S3 endpoint '" + std::string(endpoint_url) +
                                     "': expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    std::string_view host = endpoint_url.substr(sep + 3);
    if (host.ends_with('/')) host.remove_suffix(1);
    if (host.empty() || host.find_first_of("/?#@ ") != std::string_view::npos) {
      return Status::InvalidArgument("bad S3 endpoint '" + std::string(endpoint_url) +
                                     "': expected a host and optional port, without a path, query or user");
    }
    e.scheme_ = std::string(scheme);
    e.host_ = std::string(host);
  }
  switch (addressing) {
    case Addressing::kPathStyle:
      e.path_style_ = true;
      break;
    case Addressing::kVirtualHost:
      e.path_style_ = false;
      break;
    case Addressing::kAuto:
      e.path_style_ = !is_aws || bucket.find('.') != std::string_view::npos;
      break;
  }
  return e;
}

std::string Endpoint::Url(std::string_view key, const Query& query) const {
  std::string url = scheme_ + "://";
  if (path_style_) {
    url += host_ + "/" + bucket_;
    if (!key.empty()) url += "/";
  } else {
    url += bucket_ + "." + host_ + "/";
  }
  url += UriEncode(key, /*keep_slash=*/true);
  if (!query.empty()) url += "?" + CanonicalQuery(query);
  return url;
}

std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string CanonicalQuery(const Query& query) {
  std::string out;
  for (const auto& [name, value] : query) {
    if (!out.empty()) out += '&';
    out += UriEncode(name, false) + "=" + UriEncode(value, false);
  }
  return out;
}

Result<std::string> UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
      if (lo < 0) return Status::Corruption("malformed %-escape in URL-encoded text '" + std::string(text) + "'");
      out += static_cast<char>(hi << 4 | lo);
      i += 2;
    }
  }
  return out;
}

}  // namespace tusk::s3
