// The XML of S3: parsing the answers the client reads (listings, multipart
// answers, error bodies) and writing the one body it sends
// (CompleteMultipartUpload). Parsed with pugixml; element names are matched
// without their namespace.
//
// Every parser returns Corruption, naming what it parsed, for a document
// that is not well-formed or lacks what the answer must have: an answer we
// cannot read is damage to report, never a reason to guess.
//
// Thread-safety: functions of their arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/backend/s3/s3_client.h"
#include "store/status.h"

namespace tusk::s3 {

// One page of ListObjectsV2.
struct ListPage {
  std::vector<ObjectInfo> objects;  // keys decoded when the answer says EncodingType url
  bool truncated = false;
  std::string next_continuation_token;  // set when truncated
};
Result<ListPage> ParseListObjectsV2(std::string_view xml);

// One page of ListParts.
struct PartsPage {
  std::vector<UploadedPart> parts;
  bool truncated = false;
  int next_part_number_marker = 0;  // set when truncated
};
Result<PartsPage> ParseListParts(std::string_view xml);

// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> ParseInitiateMultipartUpload(std::string_view xml);

// The ETag of a CompleteMultipartUploadResult, which can be empty (Ceph 16
// sends <ETag></ETag>). S3 can answer 200 OK and
// still fail the completion, with an <Error> document as the body: that is
// returned as an IoError carrying the error's code (see ParseErrorBody).
Result<std::string> ParseCompleteMultipartUpload(std::string_view xml);

// The <Code> and <Message> of an S3 <Error> document; both empty when the
// body is not one (HEAD answers have no body). Nothing else is taken from
// it: other fields can echo request details such as the access key id.
struct ErrorBody {
  std::string code;     // e.g. "NoSuchKey", "SlowDown"
  std::string message;  // the server's sentence
};
ErrorBody ParseErrorBody(std::string_view xml);

// <CompleteMultipartUpload> listing `parts` in the given order.
std::string CompleteMultipartUploadBody(const std::vector<UploadedPart>& parts);

}  // namespace tusk::s3
