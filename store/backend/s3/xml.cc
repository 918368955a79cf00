#include "store/backend/s3/xml.h"

#include <charconv>
#include <cstring>
#include <pugixml.hpp>

#include "store/backend/s3/endpoint.h"
#include "store/backend/s3/errors.h"
#include "store/backend/s3/etag.h"

namespace tusk::s3 {
namespace {

// The document root element named `root`, or Corruption.
Result<pugi::xml_node> ParseRoot(pugi::xml_document& doc, std::string_view xml, const char* root, const char* what) {
  pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return Status::Corruption(std::string("malformed ") + what + " answer: " + parsed.description() + " at byte " +
                              std::to_string(parsed.offset));
  }
  pugi::xml_node node = doc.document_element();
  if (std::strcmp(node.name(), root) != 0) {
    return Status::Corruption(std::string("unexpected ") + what + " answer: root element <" + node.name() +
                              ">, expected <" + root + ">");
  }
  return node;
}

Result<uint64_t> ParseNumber(const pugi::xml_node& parent, const char* child, const char* what) {
  std::string_view text = parent.child(child).text().get();
  uint64_t value = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || err != std::errc() || end != text.data() + text.size()) {
    return Status::Corruption(std::string("bad <") + child + "> '" + std::string(text) + "' in " + what + " answer");
  }
  return value;
}

bool ParseBool(const pugi::xml_node& parent, const char* child) {
  return std::string_view(parent.child(child).text().get()) == "true";
}

}  // namespace

Result<ListPage> ParseListObjectsV2(std::string_view xml) {
  static constexpr const char* kWhat = "ListObjectsV2";
  pugi::xml_document doc;
  TUSK_ASSIGN_OR_RETURN(pugi::xml_node root, ParseRoot(doc, xml, "ListBucketResult", kWhat));
  bool url_encoded = std::string_view(root.child("EncodingType").text().get()) == "url";
  ListPage page;
  for (pugi::xml_node contents : root.children("Contents")) {
    ObjectInfo info;
    std::string_view key = contents.child("Key").text().get();
    if (key.empty()) return Status::Corruption("a <Contents> without a <Key> in ListObjectsV2 answer");
    if (url_encoded) {
      TUSK_ASSIGN_OR_RETURN(info.key, UrlDecode(key));
    } else {
      info.key = std::string(key);
    }
    TUSK_ASSIGN_OR_RETURN(info.size, ParseNumber(contents, "Size", kWhat));
    info.etag = UnquoteEtag(contents.child("ETag").text().get());
    page.objects.push_back(std::move(info));
  }
  page.truncated = ParseBool(root, "IsTruncated");
  page.next_continuation_token = root.child("NextContinuationToken").text().get();
  if (page.truncated && page.next_continuation_token.empty()) {
    // Asking again without a token would start over and never end.
    return Status::Corruption("truncated ListObjectsV2 answer without a <NextContinuationToken>");
  }
  return page;
}

Result<PartsPage> ParseListParts(std::string_view xml) {
  static constexpr const char* kWhat = "ListParts";
  pugi::xml_document doc;
  TUSK_ASSIGN_OR_RETURN(pugi::xml_node root, ParseRoot(doc, xml, "ListPartsResult", kWhat));
  PartsPage page;
  for (pugi::xml_node part : root.children("Part")) {
    UploadedPart p;
    TUSK_ASSIGN_OR_RETURN(uint64_t number, ParseNumber(part, "PartNumber", kWhat));
    if (number < 1 || number > 10000) {
      return Status::Corruption("part number " + std::to_string(number) + " out of range in ListParts answer");
    }
    p.number = static_cast<int>(number);
    TUSK_ASSIGN_OR_RETURN(p.size, ParseNumber(part, "Size", kWhat));
    p.etag = UnquoteEtag(part.child("ETag").text().get());
    page.parts.push_back(std::move(p));
  }
  page.truncated = ParseBool(root, "IsTruncated");
  if (page.truncated) {
    TUSK_ASSIGN_OR_RETURN(uint64_t marker, ParseNumber(root, "NextPartNumberMarker", kWhat));
    if (marker < 1 || marker > 10000) return Status::Corruption("bad <NextPartNumberMarker> in ListParts answer");
    page.next_part_number_marker = static_cast<int>(marker);
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view xml) {
  pugi::xml_document doc;
  TUSK_ASSIGN_OR_RETURN(pugi::xml_node root,
                        ParseRoot(doc, xml, "InitiateMultipartUploadResult", "CreateMultipartUpload"));
  std::string upload_id = root.child("UploadId").text().get();
  if (upload_id.empty()) return Status::Corruption("CreateMultipartUpload answer without an <UploadId>");
  return upload_id;
}

Result<std::string> ParseCompleteMultipartUpload(std::string_view xml) {
  ErrorBody error = ParseErrorBody(xml);
  if (!error.code.empty()) return IoError(error.code + ": " + error.message);
  pugi::xml_document doc;
  TUSK_ASSIGN_OR_RETURN(pugi::xml_node root,
                        ParseRoot(doc, xml, "CompleteMultipartUploadResult", "CompleteMultipartUpload"));
  return UnquoteEtag(root.child("ETag").text().get());
}

ErrorBody ParseErrorBody(std::string_view xml) {
  pugi::xml_document doc;
  if (xml.empty() || !doc.load_buffer(xml.data(), xml.size())) return {};
  pugi::xml_node root = doc.document_element();
  if (std::strcmp(root.name(), "Error") != 0) return {};
  return {root.child("Code").text().get(), root.child("Message").text().get()};
}

std::string CompleteMultipartUploadBody(const std::vector<UploadedPart>& parts) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  for (const UploadedPart& part : parts) {
    pugi::xml_node p = root.append_child("Part");
    p.append_child("PartNumber").text().set(part.number);
    // Quoted, as S3 hands etags out and documents them here.
    p.append_child("ETag").text().set(("\"" + part.etag + "\"").c_str());
  }
  struct StringWriter : pugi::xml_writer {
    std::string out;
    void write(const void* data, size_t size) override { out.append(static_cast<const char*>(data), size); }
  } writer;
  doc.save(writer, "", pugi::format_raw | pugi::format_no_declaration);
  return writer.out;
}

}  // namespace tusk::s3
