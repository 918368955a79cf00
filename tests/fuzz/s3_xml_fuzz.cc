// What an S3 server answers (store/backend/s3/xml.h): listings, multipart
// answers and error documents are untrusted bytes from the network, parsed
// by ParseListObjectsV2, ParseListParts, ParseInitiateMultipartUpload,
// ParseCompleteMultipartUpload and ParseErrorBody.
//
// Property: no crash, no hang; a listing that parses says truncated only
// with a continuation token, and parts parse with numbers in 1..10000.
#include "store/backend/s3/xml.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view xml = tusk::fuzz::View(data, size);
  auto list = tusk::s3::ParseListObjectsV2(xml);
  if (list.ok() && list->truncated) FUZZ_CHECK(!list->next_continuation_token.empty());
  auto parts = tusk::s3::ParseListParts(xml);
  if (parts.ok())
    for (const auto& p : parts->parts) FUZZ_CHECK(p.number >= 1 && p.number <= 10000);
  (void)tusk::s3::ParseInitiateMultipartUpload(xml);
  (void)tusk::s3::ParseCompleteMultipartUpload(xml);
  (void)tusk::s3::ParseErrorBody(xml);
  return 0;
}
