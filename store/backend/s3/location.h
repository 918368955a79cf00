// Where a remote lives: `s3://BUCKET/PREFIX`. Every key tusk writes there
// is PREFIX followed by a name.
//
// Thread-safety: values.
#pragma once

#include <string>
#include <string_view>

#include "store/status.h"

namespace tusk::s3 {

struct Location {
  std::string bucket;
  // Empty (the whole bucket) or ends with '/', so a key is `prefix + name`.
  std::string prefix;

  std::string Key(std::string_view name) const { return prefix + std::string(name); }
  std::string ToString() const { return "s3://" + bucket + "/" + prefix; }
};

// Parses "s3://BUCKET", "s3://BUCKET/" or "s3://BUCKET/PRE/FIX[/]".
// InvalidArgument, saying what is wrong, for another scheme, a bad bucket
// name, or a prefix with an empty segment ("a//b").
Result<Location> ParseLocation(std::string_view url);

// The rules of S3 bucket names (AWS "general purpose bucket naming rules"):
// 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a
// letter or digit, no "..", not shaped like an IP address, no "xn--"
// prefix and no "-s3alias" / "--ol-s3" suffix. Uppercase and '_', which
// old us-east-1 buckets and Ceph allow, are refused: such buckets cannot
// be addressed virtual-host style.
Status ValidateBucketName(std::string_view bucket);

}  // namespace tusk::s3
