#include "store/backend/s3/location.h"

namespace tusk::s3 {
namespace {

bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Four dot-separated runs of digits, e.g. 192.168.5.4.
bool LooksLikeIpAddress(std::string_view name) {
  int dots = 0;
  bool digits_in_run = false;
  for (char c : name) {
    if (c == '.') {
      if (!digits_in_run) return false;
      dots++;
      digits_in_run = false;
    } else if (c >= '0' && c <= '9') {
      digits_in_run = true;
    } else {
      return false;
    }
  }
  return dots == 3 && digits_in_run;
}

}  // namespace

Status ValidateBucketName(std::string_view bucket) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bad S3 bucket name '" + std::string(bucket) + "': " + why);
  };
  if (bucket.size() < 3 || bucket.size() > 63) return bad("it must be 3 to 63 characters long");
  for (char c : bucket) {
    if (!IsLowerOrDigit(c) && c != '.' && c != '-') {
      return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
  }
  if (!IsLowerOrDigit(bucket.front()) || !IsLowerOrDigit(bucket.back())) {
    return bad("it must start and end with a letter or a digit");
  }
  if (bucket.find("..") != std::string_view::npos) return bad("it must not contain \"..\"");
  if (LooksLikeIpAddress(bucket)) return bad("it must not look like an IP address");
  if (bucket.starts_with("xn--")) return bad("the prefix \"xn--\" is reserved");
  if (bucket.ends_with("-s3alias") || bucket.ends_with("--ol-s3")) return bad("the suffix is reserved");
  return Status::Ok();
}

Result<Location> ParseLocation(std::string_view url) {
  static constexpr std::string_view kScheme = "s3://";
  if (!url.starts_with(kScheme)) {
    return Status::InvalidArgument("'" + std::string(url) + "' is not an S3 location: expected s3://BUCKET/PREFIX");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  Location location;
  location.bucket = std::string(rest.substr(0, slash));
  if (location.bucket.empty()) {
    return Status::InvalidArgument("'" + std::string(url) + "' names no bucket: expected s3://BUCKET/PREFIX");
  }
  TUSK_RETURN_IF_ERROR(ValidateBucketName(location.bucket).Annotate(std::string(url)));
  if (slash == std::string_view::npos) return location;

  std::string_view prefix = rest.substr(slash + 1);
  if (prefix.empty()) return location;
  // An empty segment is legal in a key but is almost always a typo, and
  // "s3://b/x//" would otherwise name a different place from "s3://b/x/".
  std::string_view body = prefix.ends_with('/') ? prefix.substr(0, prefix.size() - 1) : prefix;
  if (body.empty() || body.starts_with('/') || body.find("//") != std::string_view::npos) {
    return Status::InvalidArgument("'" + std::string(url) + "': the prefix has an empty path segment");
  }
  location.prefix = std::string(body) + "/";
  return location;
}

}  // namespace tusk::s3
