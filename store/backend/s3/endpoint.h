// Where the requests for one bucket go, and how their URLs are spelled.
//
// Terms: *path style* puts the bucket in the path
// (http://127.0.0.1:7480/BUCKET/KEY; Ceph RGW and most self-hosted
// servers), *virtual-host style* in the host name
// (https://BUCKET.s3.REGION.amazonaws.com/KEY; what AWS prefers).
//
// The query strings built here are canonical in the SigV4 sense (names
// sorted, RFC 3986 encoding, "name=" for a name without a value) because
// libcurl 7.88 signs the query exactly as it is given.
//
// Thread-safety: values.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "store/status.h"

namespace tusk::s3 {

enum class Addressing {
  kAuto,  // virtual host for AWS (path style for bucket names with dots, which break TLS
          // there), path style for any other endpoint
  kPathStyle,
  kVirtualHost,
};

// Query parameters, name -> value; sorted by name, as SigV4 wants.
using Query = std::map<std::string, std::string>;

class Endpoint {
 public:
  // `endpoint_url`: "" for AWS (https://s3.REGION.amazonaws.com), else
  // "http://host[:port]" or "https://host[:port]" (a trailing '/' is
  // allowed, a path is not). `region`: "" for DefaultRegion().
  // InvalidArgument for a malformed URL, region or bucket name.
  static Result<Endpoint> Resolve(std::string_view endpoint_url, std::string_view region, Addressing addressing,
                                  std::string_view bucket);

  // The URL of `key` ("" for the bucket itself), with `query`.
  std::string Url(std::string_view key, const Query& query = {}) const;
  // The URL of `key` without any query: what messages show (a query can
  // hold an upload id or a continuation token, which say nothing useful).
  std::string UrlForMessages(std::string_view key) const { return Url(key); }

  const std::string& bucket() const { return bucket_; }
  const std::string& region() const { return region_; }
  bool path_style() const { return path_style_; }
  // "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com": the server, for messages.
  std::string server() const { return scheme_ + "://" + host_; }

 private:
  std::string scheme_;  // "http" or "https"
  std::string host_;    // with ":port" when one was given
  std::string bucket_;
  std::string region_;
  bool path_style_ = true;
};

// AWS_REGION, else AWS_DEFAULT_REGION, else "us-east-1".
std::string DefaultRegion();

// RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - _ . ~ (and '/'
// when `keep_slash`) becomes %XX with uppercase hex digits.
std::string UriEncode(std::string_view text, bool keep_slash);
// "a=1&b=&c=x%2Fy": the canonical form of `query`.
std::string CanonicalQuery(const Query& query);
// Undoes the encoding of `encoding-type=url` listings ('+' is a space, as
// AWS writes it; %XX a byte). Corruption for a malformed %-escape.
Result<std::string> UrlDecode(std::string_view text);

}  // namespace tusk::s3
