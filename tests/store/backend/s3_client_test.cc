// Specification of the S3 client (store/backend/s3/s3_client.h) and its
// parts: credentials, locations, URLs, XML answers, error mapping, retries.
//
// The first half needs no server: a scripted transport stands in for
// libcurl, and two real sockets stand in for a dead and a stalled server.
// The second half (S3ServerTest) runs against a real S3 server when
//   TUSK_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:7480),
//   AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
// are set, and is skipped otherwise. Each of those tests works in a fresh
// bucket of its own, deleted afterwards.

#include "store/backend/s3/s3_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/backend/s3/credentials.h"
#include "store/backend/s3/endpoint.h"
#include "store/backend/s3/errors.h"
#include "store/backend/s3/etag.h"
#include "store/backend/s3/http.h"
#include "store/backend/s3/location.h"
#include "store/backend/s3/xml.h"
#include "tests/store/backend/s3_test_util.h"
#include "tests/store/test_util.h"

namespace tusk::s3 {
namespace {

using Code = Status::Code;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test_util::FastFailingOptions;
using test_util::RandomBucketName;
using test_util::RandomBytes;
using test_util::TempDir;
using test_util::WriteFile;

// Sets (or with nullopt unsets) environment variables, and puts them back
// as they were when it goes.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// No credentials in the environment, no profile chosen, a HOME without ~/.aws.
ScopedEnv NoAwsEnvironment(const std::string& home) {
  return ScopedEnv({{"AWS_ACCESS_KEY_ID", std::nullopt},
                    {"AWS_SECRET_ACCESS_KEY", std::nullopt},
                    {"AWS_SESSION_TOKEN", std::nullopt},
                    {"AWS_PROFILE", std::nullopt},
                    {"AWS_SHARED_CREDENTIALS_FILE", std::nullopt},
                    {"HOME", home}});
}

constexpr char kKeyId[] = "AKIDSPECIMENKEY12345";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";

Credentials SpecimenCredentials() { return {kKeyId, kSecret, "SPECIMENSESSIONTOKEN"}; }

void ExpectNoSecrets(const std::string& message) {
  EXPECT_EQ(message.find(kKeyId), std::string::npos) << message;
  EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
  EXPECT_EQ(message.find("SPECIMENSESSIONTOKEN"), std::string::npos) << message;
}

// ---------------------------------------------------------------- credentials

TEST(S3Credentials, ComeFromTheEnvironmentFirst) {
  TempDir home;
  ScopedEnv clean = NoAwsEnvironment(home.path());
  WriteFile(home.Sub(".aws/credentials"),
            "[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = filesecret\n");
  ScopedEnv env(
      {{"AWS_ACCESS_KEY_ID", "FROMENV"}, {"AWS_SECRET_ACCESS_KEY", "envsecret"}, {"AWS_SESSION_TOKEN", "tok"}});
  Result<Credentials> c = LoadCredentials();
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->access_key_id, "FROMENV");
  EXPECT_EQ(c->secret_access_key, "envsecret");
  EXPECT_EQ(c->session_token, "tok");
}

TEST(S3Credentials, AKeyIdWithoutASecretIsAnError) {
  TempDir home;
  ScopedEnv clean = NoAwsEnvironment(home.path());
  ScopedEnv env({{"AWS_ACCESS_KEY_ID", kKeyId}});
  Result<Credentials> c = LoadCredentials();
  ASSERT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  ExpectNoSecrets(c.status().message());
}

TEST(S3Credentials, ComeFromTheDefaultProfileOfHomeAwsCredentials) {
  TempDir home;
  ScopedEnv clean = NoAwsEnvironment(home.path());
  WriteFile(home.Sub(".aws/credentials"),
            "# a comment\n[other]\naws_access_key_id=OTHER\naws_secret_access_key=othersecret\n\n"
            "[default]\n  aws_access_key_id = DEFAULTKEY  \n; another comment\naws_secret_access_key=defsecret\n");
  Result<Credentials> c = LoadCredentials();
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->access_key_id, "DEFAULTKEY");
  EXPECT_EQ(c->secret_access_key, "defsecret");
  EXPECT_EQ(c->session_token, "");
}

TEST(S3Credentials, ComeFromTheProfileAwsProfileNamesInTheFileAwsSharedCredentialsFileNames) {
  TempDir dir;
  ScopedEnv clean = NoAwsEnvironment(dir.path());
  WriteFile(dir.Sub("creds.ini"),
            "[default]\naws_access_key_id=DEF\naws_secret_access_key=defsecret\n"
            "[ci]\naws_access_key_id=CIKEY\naws_secret_access_key=cisecret\naws_session_token=citoken\n");
  ScopedEnv env({{"AWS_SHARED_CREDENTIALS_FILE", dir.Sub("creds.ini")}, {"AWS_PROFILE", "ci"}});
  Result<Credentials> c = LoadCredentials();
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->access_key_id, "CIKEY");
  EXPECT_EQ(c->secret_access_key, "cisecret");
  EXPECT_EQ(c->session_token, "citoken");
}

TEST(S3Credentials, MissingEverywhereIsNotFoundSayingWhereItLooked) {
  TempDir home;
  ScopedEnv clean = NoAwsEnvironment(home.path());
  Result<Credentials> c = LoadCredentials();
  ASSERT_EQ(c.status().code(), Code::kNotFound);
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("AWS_ACCESS_KEY_ID"), std::string::npos) << m;
  EXPECT_NE(m.find(home.Sub(".aws/credentials")), std::string::npos) << m;
  EXPECT_NE(m.find("'default'"), std::string::npos) << m;
}

TEST(S3Credentials, AProfileTheFileLacksIsNotFoundNamingFileAndProfile) {
  TempDir dir;
  ScopedEnv clean = NoAwsEnvironment(dir.path());
  WriteFile(dir.Sub("creds"), "[default]\naws_access_key_id=DEF\naws_secret_access_key=defsecret\n");
  ScopedEnv env({{"AWS_SHARED_CREDENTIALS_FILE", dir.Sub("creds")}, {"AWS_PROFILE", "prod"}});
  Result<Credentials> c = LoadCredentials();
  ASSERT_EQ(c.status().code(), Code::kNotFound);
  EXPECT_NE(c.status().message().find(dir.Sub("creds")), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("'prod'"), std::string::npos) << c.status().message();
}

TEST(S3Credentials, AProfileWithoutItsSecretIsInvalidAndTheKeyIdIsNotShown) {
  Result<Credentials> c = ParseCredentialsFile("[default]\naws_access_key_id = AKIDSPECIMENKEY12345\n", "default", "f");
  ASSERT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("aws_secret_access_key"), std::string::npos);
  ExpectNoSecrets(c.status().message());
}

TEST(S3Credentials, RedactReplacesEveryOccurrenceOfEverySecret) {
  std::string text = std::string("key ") + kKeyId + " secret " + kSecret + " again " + kKeyId + " SPECIMENSESSIONTOKEN";
  std::string redacted = Redact(text, SpecimenCredentials());
  ExpectNoSecrets(redacted);
  EXPECT_EQ(redacted, "key <redacted> secret <redacted> again <redacted> <redacted>");
}

// ---------------------------------------------------------------- locations

TEST(S3Location, SplitsBucketAndPrefixAndEndsThePrefixWithASlash) {
  struct Case {
    const char* url;
    const char* bucket;
    const char* prefix;
  } cases[] = {
      {"s3://my-bucket", "my-bucket", ""},
      {"s3://my-bucket/", "my-bucket", ""},
      {"s3://my-bucket/team/data", "my-bucket", "team/data/"},
      {"s3://my.bucket.example/team/data/", "my.bucket.example", "team/data/"},
  };
  for (const Case& c : cases) {
    Result<Location> location = ParseLocation(c.url);
    ASSERT_TRUE(location.ok()) << c.url << ": " << location.status().message();
    EXPECT_EQ(location->bucket, c.bucket) << c.url;
    EXPECT_EQ(location->prefix, c.prefix) << c.url;
  }
  EXPECT_EQ(ParseLocation("s3://b12/x").value().Key("packs/00"), "x/packs/00");
  EXPECT_EQ(ParseLocation("s3://b12/x").value().ToString(), "s3://b12/x/");
}

TEST(S3Location, RefusesWhatIsNotAnS3LocationSayingWhy) {
  struct Case {
    const char* url;
    const char* why;
  } cases[] = {
      {"https://bucket/x", "expected s3://"},
      {"s3://", "names no bucket"},
      {"s3:///prefix", "names no bucket"},
      {"s3://ab/x", "3 to 63"},
      {"s3://My-Bucket/x", "lowercase"},
      {"s3://my_bucket", "lowercase"},
      {"s3://-bucket", "start and end"},
      {"s3://bucket-", "start and end"},
      {"s3://my..bucket", "\"..\""},
      {"s3://192.168.1.10", "IP address"},
      {"s3://xn--bucket", "xn--"},
      {"s3://bucket/a//b", "empty path segment"},
      {"s3://bucket//a", "empty path segment"},
  };
  for (const Case& c : cases) {
    Result<Location> location = ParseLocation(c.url);
    ASSERT_EQ(location.status().code(), Code::kInvalidArgument) << c.url;
    EXPECT_NE(location.status().message().find(c.why), std::string::npos)
        << c.url << ": " << location.status().message();
  }
  EXPECT_TRUE(ValidateBucketName(std::string(63, 'a')).ok());
  EXPECT_FALSE(ValidateBucketName(std::string(64, 'a')).ok());
}

// ---------------------------------------------------------------- URLs

TEST(S3Endpoint, AGivenEndpointIsAddressedPathStyle) {
  Result<Endpoint> e = Endpoint::Resolve("http://127.0.0.1:7480/", "us-east-1", Addressing::kAuto, "bkt");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_TRUE(e->path_style());
  EXPECT_EQ(e->Url(""), "http://127.0.0.1:7480/bkt");
  EXPECT_EQ(e->Url("dir/a b+c.txt"), "http://127.0.0.1:7480/bkt/dir/a%20b%2Bc.txt");
  EXPECT_EQ(e->Url("k", {{"uploadId", "2~a/b="}, {"partNumber", "3"}}),
            "http://127.0.0.1:7480/bkt/k?partNumber=3&uploadId=2~a%2Fb%3D");
  EXPECT_EQ(e->UrlForMessages("k"), "http://127.0.0.1:7480/bkt/k");
  EXPECT_EQ(e->server(), "http://127.0.0.1:7480");
}

TEST(S3Endpoint, AwsIsAddressedVirtualHostStyleInItsRegion) {
  Result<Endpoint> e = Endpoint::Resolve("", "eu-west-1", Addressing::kAuto, "bkt");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_FALSE(e->path_style());
  EXPECT_EQ(e->Url("dir/\xc3\xa9t\xc3\xa9"), "https://bkt.s3.eu-west-1.amazonaws.com/dir/%C3%A9t%C3%A9");
  EXPECT_EQ(e->Url("", {{"list-type", "2"}, {"prefix", "a/"}, {"encoding-type", "url"}}),
            "https://bkt.s3.eu-west-1.amazonaws.com/?encoding-type=url&list-type=2&prefix=a%2F");
}

TEST(S3Endpoint, ABucketWithDotsOnAwsIsAddressedPathStyleBecauseItsTlsNameWouldNotMatch) {
  Result<Endpoint> e = Endpoint::Resolve("", "us-east-1", Addressing::kAuto, "my.bucket");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->Url("k"), "https://s3.us-east-1.amazonaws.com/my.bucket/k");
}

TEST(S3Endpoint, AddressingCanBeForcedEitherWay) {
  EXPECT_EQ(Endpoint::Resolve("https://minio.local:9000", "us-east-1", Addressing::kVirtualHost, "bkt")->Url("k"),
            "https://bkt.minio.local:9000/k");
  EXPECT_EQ(Endpoint::Resolve("", "us-east-1", Addressing::kPathStyle, "bkt")->Url("k"),
            "https://s3.us-east-1.amazonaws.com/bkt/k");
}

TEST(S3Endpoint, TheRegionDefaultsToAwsRegionThenAwsDefaultRegionThenUsEast1) {
  {
    ScopedEnv env({{"AWS_REGION", "ap-south-1"}, {"AWS_DEFAULT_REGION", "eu-north-1"}});
    EXPECT_EQ(Endpoint::Resolve("", "", Addressing::kAuto, "bkt")->region(), "ap-south-1");
  }
  {
    ScopedEnv env({{"AWS_REGION", std::nullopt}, {"AWS_DEFAULT_REGION", "eu-north-1"}});
    EXPECT_EQ(Endpoint::Resolve("", "", Addressing::kAuto, "bkt")->region(), "eu-north-1");
  }
  {
    ScopedEnv env({{"AWS_REGION", std::nullopt}, {"AWS_DEFAULT_REGION", std::nullopt}});
    EXPECT_EQ(Endpoint::Resolve("", "", Addressing::kAuto, "bkt")->region(), "us-east-1");
  }
}

TEST(S3Endpoint, RefusesMalformedEndpointsAndRegions) {
  for (const char* url : {"127.0.0.1:7480", "ftp://host", "http://", "http://host/path", "http://u:p@host"}) {
    EXPECT_EQ(Endpoint::Resolve(url, "us-east-1", Addressing::kAuto, "bkt").status().code(), Code::kInvalidArgument)
        << url;
  }
  EXPECT_EQ(Endpoint::Resolve("", "us-east-1:evil", Addressing::kAuto, "bkt").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Endpoint::Resolve("", "us-east-1", Addressing::kAuto, "Bad_Bucket").status().code(),
            Code::kInvalidArgument);
}

TEST(S3Endpoint, CanonicalQueriesAreSortedEncodedAndKeepEmptyValues) {
  EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQuery({{"b", "x y"}, {"a", "1"}, {"continuation-token", "1/ab+c=="}}),
            "a=1&b=x%20y&continuation-token=1%2Fab%2Bc%3D%3D");
  EXPECT_EQ(UriEncode("a-Z_0.~/ %", false), "a-Z_0.~%2F%20%25");
}

TEST(S3Endpoint, UrlDecodingTakesPlusForSpaceAndRefusesBrokenEscapes) {
  EXPECT_EQ(UrlDecode("dir%2Fa+b%2Bc%C3%A9").value(), "dir/a b+c\xc3\xa9");
  EXPECT_EQ(UrlDecode("50%").status().code(), Code::kCorruption);
  EXPECT_EQ(UrlDecode("%zz").status().code(), Code::kCorruption);
}

// ---------------------------------------------------------------- XML answers

TEST(S3Xml, AListingPageGivesKeysSizesAndUnquotedEtags) {
  Result<ListPage> page = ParseListObjectsV2(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bkt</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>p/a</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>p/big</Key><ETag>"d41d8cd98f00b204e9800998ecf8427e-3"</ETag><Size>17179869184</Size></Contents>
</ListBucketResult>)");
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/a");
  EXPECT_EQ(page->objects[0].size, 1u);
  EXPECT_EQ(page->objects[0].etag, "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(page->objects[1].size, 17179869184u);
  EXPECT_EQ(page->objects[1].etag, "d41d8cd98f00b204e9800998ecf8427e-3");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, AUrlEncodedListingIsDecoded) {
  Result<ListPage> page = ParseListObjectsV2(
      "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
      "<Contents><Key>dir/a+b%2Bc%26%3C%C3%A9%0A</Key><Size>0</Size><ETag>\"e\"</ETag></Contents>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "dir/a b+c&<\xc3\xa9\n");
  EXPECT_FALSE(page->truncated);
}

TEST(S3Xml, AListingThatCannotBeReadIsCorruption) {
  struct Case {
    const char* xml;
    const char* why;
  } cases[] = {
      {"<ListBucketResult><Contents><Key>a</Key>", "malformed ListObjectsV2"},
      {"not xml at all", "malformed ListObjectsV2"},
      {"", "malformed ListObjectsV2"},
      {"<Error><Code>InternalError</Code></Error>", "root element <Error>"},
      {"<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents></ListBucketResult>", "bad <Size>"},
      {"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", "without a <Key>"},
      {"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", "without a <NextContinuationToken>"},
  };
  for (const Case& c : cases) {
    Result<ListPage> page = ParseListObjectsV2(c.xml);
    ASSERT_EQ(page.status().code(), Code::kCorruption) << c.xml;
    EXPECT_NE(page.status().message().find(c.why), std::string::npos) << page.status().message();
  }
}

TEST(S3Xml, ListPartsGivesNumbersSizesEtagsAndTheNextMarker) {
  Result<PartsPage> page = ParseListParts(
      "<ListPartsResult><UploadId>u</UploadId><IsTruncated>true</IsTruncated>"
      "<NextPartNumberMarker>2</NextPartNumberMarker>"
      "<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag><Size>5242880</Size></Part>"
      "<Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag><Size>7</Size></Part></ListPartsResult>");
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->parts.size(), 2u);
  EXPECT_EQ(page->parts[0].number, 1);
  EXPECT_EQ(page->parts[0].size, 5242880u);
  EXPECT_EQ(page->parts[1].etag, "bb");
  EXPECT_EQ(page->next_part_number_marker, 2);
  EXPECT_EQ(ParseListParts("<ListPartsResult><Part><PartNumber>0</PartNumber><Size>1</Size></Part></ListPartsResult>")
                .status()
                .code(),
            Code::kCorruption);
}

TEST(S3Xml, MultipartAnswersAndTheCompletionBody) {
  EXPECT_EQ(ParseInitiateMultipartUpload(
                "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>2~xyz</UploadId>"
                "</InitiateMultipartUploadResult>")
                .value(),
            "2~xyz");
  EXPECT_EQ(ParseInitiateMultipartUpload("<InitiateMultipartUploadResult/>").status().code(), Code::kCorruption);
  EXPECT_EQ(ParseCompleteMultipartUpload(
                "<CompleteMultipartUploadResult><ETag>\"abc-2\"</ETag></CompleteMultipartUploadResult>")
                .value(),
            "abc-2");
  // S3 may answer 200 OK with an error as the body.
  Result<std::string> failed = ParseCompleteMultipartUpload(
      "<Error><Code>InvalidPart</Code><Message>One or more of the specified parts could not be found.</Message>"
      "</Error>");
  ASSERT_EQ(failed.status().code(), Code::kIoError);
  EXPECT_NE(failed.status().message().find("InvalidPart"), std::string::npos);

  std::string body = CompleteMultipartUploadBody({{1, 5, "aa"}, {2, 3, "bb-x"}});
  EXPECT_EQ(body,
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>\"bb-x\"</ETag></Part></CompleteMultipartUpload>");
}

TEST(S3Xml, ErrorBodiesGiveOnlyCodeAndMessage) {
  ErrorBody error = ParseErrorBody(
      "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no match</Message>"
      "<AWSAccessKeyId>AKIDSPECIMENKEY12345</AWSAccessKeyId><StringToSign>x</StringToSign></Error>");
  EXPECT_EQ(error.code, "SignatureDoesNotMatch");
  EXPECT_EQ(error.message, "no match");
  EXPECT_EQ(ParseErrorBody("").code, "");
  EXPECT_EQ(ParseErrorBody("<ListBucketResult/>").code, "");
}

TEST(S3Etag, IsTheUnquotedHexMd5ForAPlainPut) {
  EXPECT_EQ(UnquoteEtag("\"abc\""), "abc");
  EXPECT_EQ(UnquoteEtag("abc"), "abc");
  EXPECT_EQ(PlainEtag(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(PlainEtag("a"), "0cc175b9c0f1b6a831c399e269772661");
}

// ---------------------------------------------------------------- error mapping and retries

HttpResponse Answer(long status, std::string body = "", std::map<std::string, std::string> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

HttpResponse TransportFailure(std::string what, bool retryable = true, bool may_have_reached_server = true) {
  HttpResponse r;
  r.transport_error = std::move(what);
  r.transport_retryable = retryable;
  r.may_have_reached_server = may_have_reached_server;
  return r;
}

std::string S3Error(const std::string& code, const std::string& message = "msg") {
  return "<Error><Code>" + code + "</Code><Message>" + message + "</Message></Error>";
}

Status Map(HttpResponse response, bool about_bucket = false, std::string condition = "") {
  Exchange exchange;
  exchange.response = std::move(response);
  exchange.url = "http://s3.test:7480/bkt/dir/k";
  FailureContext context;
  context.operation = "PUT";
  context.object = about_bucket ? "s3://bkt" : "s3://bkt/dir/k";
  context.server = "http://s3.test:7480";
  context.bucket = "bkt";
  context.about_bucket = about_bucket;
  context.condition = std::move(condition);
  return StatusFor(exchange, context);
}

TEST(S3Errors, EachAnswerMapsToAStatusThatSaysWhatHappened) {
  struct Case {
    Status status;
    Code code;
    const char* says;
  } cases[] = {
      {Map(Answer(404, S3Error("NoSuchKey"))), Code::kNotFound, "PUT s3://bkt/dir/k: no such object"},
      {Map(Answer(404)), Code::kNotFound, "no such object"},
      {Map(Answer(404, S3Error("NoSuchBucket"))), Code::kNotFound,
       "bucket 'bkt' does not exist at http://s3.test:7480"},
      {Map(Answer(404), /*about_bucket=*/true), Code::kNotFound, "bucket 'bkt' does not exist"},
      {Map(Answer(404, S3Error("NoSuchUpload"))), Code::kNotFound, "no such multipart upload"},
      {Map(Answer(412), false, "If-None-Match: *"), Code::kConflict, "precondition failed (If-None-Match: *)"},
      {Map(Answer(409, S3Error("BucketAlreadyOwnedByYou")), true), Code::kAlreadyExists, "already exists"},
      {Map(Answer(409, S3Error("BucketNotEmpty")), true), Code::kConflict, "BucketNotEmpty"},
      {Map(Answer(403, S3Error("AccessDenied", "Access Denied"))), Code::kIoError,
       "PUT s3://bkt/dir/k: access denied (HTTP 403 AccessDenied: Access Denied)"},
      {Map(Answer(501, S3Error("NotImplemented")), false, "If-None-Match: *"), Code::kUnsupported,
       "cannot do conditional writes"},
      {Map(Answer(416, S3Error("InvalidRange"))), Code::kCorruption, "beyond the end"},
      {Map(Answer(301, S3Error("PermanentRedirect"))), Code::kInvalidArgument, "another region"},
      {Map(Answer(400, S3Error("EntityTooSmall"))), Code::kInvalidArgument, "EntityTooSmall"},
      {Map(Answer(503, S3Error("SlowDown"))), Code::kIoError, "server error (HTTP 503 SlowDown: msg)"},
      {Map(TransportFailure("Couldn't connect to server")), Code::kIoError,
       "PUT s3://bkt/dir/k: http://s3.test:7480/bkt/dir/k: Couldn't connect to server"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.status.message();
    EXPECT_NE(c.status.message().find(c.says), std::string::npos) << c.status.message() << "\n  lacks: " << c.says;
  }
  EXPECT_EQ(Map(Answer(403)).sys_errno(), EACCES);
}

TEST(S3Errors, OnlyTransientFailuresAreRetried) {
  for (long status : {500, 502, 503, 504, 429}) EXPECT_TRUE(IsRetryable(Answer(status))) << status;
  EXPECT_TRUE(IsRetryable(Answer(400, S3Error("RequestTimeout"))));
  EXPECT_TRUE(IsRetryable(TransportFailure("timeout", /*retryable=*/true)));
  for (long status : {200, 204, 206, 301, 400, 403, 404, 409, 412, 416, 501}) {
    EXPECT_FALSE(IsRetryable(Answer(status, S3Error("Whatever")))) << status;
  }
  EXPECT_FALSE(IsRetryable(TransportFailure("bad certificate", /*retryable=*/false)));
}

TEST(S3Errors, BackoffGrowsExponentiallyWithJitterUpToTheCap) {
  RetryPolicy policy;
  policy.first_delay = milliseconds(100);
  policy.max_delay = milliseconds(1000);
  EXPECT_EQ(BackoffDelay(policy, 1, 0.0), milliseconds(50));
  EXPECT_EQ(BackoffDelay(policy, 1, 1.0), milliseconds(100));
  EXPECT_EQ(BackoffDelay(policy, 3, 1.0), milliseconds(400));
  EXPECT_EQ(BackoffDelay(policy, 10, 1.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(policy, 10, 0.0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(policy, 1000, 0.5), milliseconds(750));
}

// ---------------------------------------------------------------- the client on a scripted transport

// Answers requests from a script, in order, and records them.
class ScriptedTransport : public HttpTransport {
 public:
  struct Seen {
    std::string method, url, url_for_messages, body;
    std::vector<std::string> headers;
    bool Has(const std::string& header) const {
      return std::find(headers.begin(), headers.end(), header) != headers.end();
    }
  };
  explicit ScriptedTransport(std::deque<HttpResponse> script) : script_(std::move(script)) {}

  HttpResponse Perform(const HttpRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(
        {request.method, request.url, request.url_for_messages, std::string(request.body), request.headers});
    if (script_.empty()) return TransportFailure("script exhausted", false);
    HttpResponse response = std::move(script_.front());
    script_.pop_front();
    if (response.ok() && request.body_out != nullptr) {
      // What the real transport does with a buffer to fill.
      if (response.body.size() > request.body_out_capacity) {
        HttpResponse overflow = TransportFailure("write error", false);
        overflow.body_overflow = true;
        return overflow;
      }
      std::copy(response.body.begin(), response.body.end(), request.body_out);
      response.body_out_size = response.body.size();
      response.body.clear();
    }
    return response;
  }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::deque<HttpResponse> script_;
  std::vector<Seen> seen_;
};

class ScriptedClientTest : public ::testing::Test {
 protected:
  // A client of bucket "bkt" whose transport answers with `script`.
  Client& With(std::deque<HttpResponse> script, int max_attempts = 3) {
    auto transport = std::make_unique<ScriptedTransport>(std::move(script));
    transport_ = transport.get();
    ClientOptions options;
    options.endpoint = "http://s3.test:7480";
    options.region = "us-east-1";
    options.retry.max_attempts = max_attempts;
    options.retry.first_delay = milliseconds(1);
    options.retry.max_delay = milliseconds(2);
    auto client = Client::CreateWithTransport("bkt", options, SpecimenCredentials(), std::move(transport));
    EXPECT_TRUE(client.ok()) << client.status().message();
    client_ = std::move(client).value();
    return *client_;
  }
  std::vector<ScriptedTransport::Seen> Seen() { return transport_->seen(); }

  std::unique_ptr<Client> client_;
  ScriptedTransport* transport_ = nullptr;
};

TEST_F(ScriptedClientTest, ServerErrorsAreRetriedUntilOneSucceeds) {
  Client& client = With({Answer(503, S3Error("SlowDown")), Answer(500), Answer(200, "", {{"etag", "\"e1\""}})});
  Result<std::string> etag = client.Put("k", "bytes");
  ASSERT_TRUE(etag.ok()) << etag.status().message();
  EXPECT_EQ(*etag, "e1");
  ASSERT_EQ(Seen().size(), 3u);
  for (const auto& seen : Seen()) EXPECT_EQ(seen.body, "bytes");
}

TEST_F(ScriptedClientTest, ClientErrorsAreNeverRetried) {
  for (long status : {403L, 404L, 412L}) {
    Client& client = With({Answer(status), Answer(200, "", {{"etag", "\"e\""}})});
    EXPECT_FALSE(client.Put("k", "x", WriteCondition::IfNoneMatchAny()).ok());
    EXPECT_EQ(Seen().size(), 1u) << status;
  }
}

TEST_F(ScriptedClientTest, RetriesAreBoundedAndTheErrorNamesTheUrlWithoutItsQuery) {
  Client& client = With({TransportFailure("Connection reset"), TransportFailure("Connection reset"),
                         TransportFailure("Connection reset"), Answer(200)});
  Result<std::string> etag = client.UploadPart("dir/k", "upload-id-123", 2, "part");
  ASSERT_EQ(etag.status().code(), Code::kIoError);
  EXPECT_EQ(Seen().size(), 3u);
  const std::string& m = etag.status().message();
  EXPECT_NE(m.find("http://s3.test:7480/bkt/dir/k: Connection reset (after 3 attempts)"), std::string::npos) << m;
  EXPECT_EQ(m.find("upload-id-123"), std::string::npos) << m;
  EXPECT_NE(Seen()[0].url.find("?partNumber=2&uploadId=upload-id-123"), std::string::npos);
}

TEST_F(ScriptedClientTest, SecretsNeverAppearInMessagesWhateverTheServerOrNetworkSays) {
  std::string echo = std::string("key ") + kKeyId + " secret " + kSecret + " token SPECIMENSESSIONTOKEN";
  Client& client = With({Answer(403, S3Error("InvalidAccessKeyId", echo)), TransportFailure(echo, false),
                         Answer(400, S3Error("SignatureDoesNotMatch", echo)), Answer(500, S3Error("X", echo)),
                         Answer(500, S3Error("X", echo)), Answer(500, S3Error("X", echo))});
  std::vector<Status> failures = {client.Put("k", "x").status(), client.Get("k").status(), client.Head("k").status(),
                                  client.Delete("k")};
  for (const Status& s : failures) {
    ASSERT_FALSE(s.ok());
    ExpectNoSecrets(s.message());
  }
  EXPECT_NE(failures[0].message().find("access denied"), std::string::npos) << failures[0].message();
}

TEST_F(ScriptedClientTest, ACreateOnlyPutWhoseAnswerWasLostRecognisesItsOwnWrite) {
  // Attempt 1 reaches the server and writes; its answer is lost. Attempt 2
  // finds the object there (412). The object's etag is our bytes' MD5.
  Client& client = With({TransportFailure("Recv failure"), Answer(412),
                         Answer(200, "", {{"etag", "\"" + PlainEtag("mine") + "\""}, {"content-length", "4"}})});
  Result<std::string> etag = client.Put("ref", "mine", WriteCondition::IfNoneMatchAny());
  ASSERT_TRUE(etag.ok()) << etag.status().message();
  EXPECT_EQ(*etag, PlainEtag("mine"));
  EXPECT_EQ(Seen()[2].method, "HEAD");
}

TEST_F(ScriptedClientTest, ACreateOnlyPutThatLostToAnotherWriterAfterARetryIsAConflict) {
  Client& client = With({TransportFailure("Recv failure"), Answer(412),
                         Answer(200, "", {{"etag", "\"" + PlainEtag("theirs") + "\""}, {"content-length", "6"}})});
  Result<std::string> etag = client.Put("ref", "mine", WriteCondition::IfNoneMatchAny());
  EXPECT_EQ(etag.status().code(), Code::kConflict) << etag.status().message();
}

TEST_F(ScriptedClientTest, AFailedConnectDoesNotMakeA412Ambiguous) {
  Client& client = With({TransportFailure("Connection refused", true, /*may_have_reached_server=*/false), Answer(412)});
  EXPECT_EQ(client.Put("ref", "mine", WriteCondition::IfNoneMatchAny()).status().code(), Code::kConflict);
  EXPECT_EQ(Seen().size(), 2u);  // no HEAD
}

TEST_F(ScriptedClientTest, ConditionalPutsSendTheirPreconditionAndIfMatchSendsTheBareEtag) {
  Client& client = With({Answer(200, "", {{"etag", "\"a\""}}), Answer(200, "", {{"etag", "\"b\""}}),
                         Answer(501, S3Error("NotImplemented"))});
  ASSERT_TRUE(client.Put("k", "1", WriteCondition::IfNoneMatchAny()).ok());
  ASSERT_TRUE(client.Put("k", "2", WriteCondition::IfMatch("\"a\"")).ok());
  EXPECT_TRUE(Seen()[0].Has("If-None-Match: *"));
  EXPECT_TRUE(Seen()[1].Has("If-Match: a"));
  Status unsupported = client.Put("k", "3", WriteCondition::IfMatch("b")).status();
  EXPECT_EQ(unsupported.code(), Code::kUnsupported);
  EXPECT_NE(unsupported.message().find("cannot do conditional writes"), std::string::npos);
}

TEST_F(ScriptedClientTest, ListFollowsContinuationTokensAcrossPages) {
  Client& client = With({
      Answer(200,
             "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t/1=</NextContinuationToken>"
             "<Contents><Key>p/a</Key><Size>1</Size></Contents></ListBucketResult>"),
      Answer(200,
             "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t2</NextContinuationToken>"
             "<Contents><Key>p/b</Key><Size>2</Size></Contents></ListBucketResult>"),
      Answer(200,
             "<ListBucketResult><IsTruncated>false</IsTruncated>"
             "<Contents><Key>p/c</Key><Size>3</Size></Contents></ListBucketResult>"),
  });
  Result<std::vector<ObjectInfo>> objects = client.List("p/", 1);
  ASSERT_TRUE(objects.ok()) << objects.status().message();
  ASSERT_EQ(objects->size(), 3u);
  EXPECT_EQ((*objects)[2].key, "p/c");
  std::vector<ScriptedTransport::Seen> seen = Seen();
  EXPECT_EQ(seen[0].url, "http://s3.test:7480/bkt?encoding-type=url&list-type=2&max-keys=1&prefix=p%2F");
  EXPECT_EQ(seen[1].url,
            "http://s3.test:7480/bkt?continuation-token=t%2F1%3D&encoding-type=url&list-type=2&max-keys=1&prefix=p%2F");
  EXPECT_NE(seen[2].url.find("continuation-token=t2&"), std::string::npos);
}

TEST_F(ScriptedClientTest, AListingThatRepeatsItsTokenIsCorruptionNotAnEndlessLoop) {
  std::string page =
      "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>"
      "</ListBucketResult>";
  Client& client = With({Answer(200, page), Answer(200, page), Answer(200, page)});
  EXPECT_EQ(client.List("").status().code(), Code::kCorruption);
}

TEST_F(ScriptedClientTest, ARangeReadAsksForTheRangeAndAShortAnswerIsCorruption) {
  Client& client = With({Answer(206, "cdef"), Answer(206, "cd"), Answer(200, "abcdef")});
  Result<std::string> range = client.GetRange("k", 2, 4);
  ASSERT_TRUE(range.ok()) << range.status().message();
  EXPECT_EQ(*range, "cdef");
  EXPECT_TRUE(Seen()[0].Has("Range: bytes=2-5"));
  EXPECT_EQ(client.GetRange("k", 2, 4).status().code(), Code::kCorruption);
  // A server that ignores the range and sends the whole object.
  EXPECT_EQ(client.GetRange("k", 2, 4).status().code(), Code::kCorruption);
}

TEST_F(ScriptedClientTest, ACompletionThatFailsInsideA200IsRetriedWhenTransient) {
  Client& client =
      With({Answer(200, S3Error("InternalError")),
            Answer(200, "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>"),
            Answer(200, S3Error("InvalidPart"))});
  Result<std::string> etag = client.CompleteMultipartUpload("k", "u", {{1, 5, "a"}, {2, 1, "b"}});
  ASSERT_TRUE(etag.ok()) << etag.status().message();
  EXPECT_EQ(*etag, "x-2");
  Result<std::string> failed = client.CompleteMultipartUpload("k", "u", {{1, 5, "a"}});
  EXPECT_EQ(failed.status().code(), Code::kIoError);
  EXPECT_NE(failed.status().message().find("InvalidPart"), std::string::npos);
}

TEST_F(ScriptedClientTest, ACompletionWithAnEmptyEtagTakesTheEtagFromTheObject) {
  // Ceph 16 answers <ETag></ETag>.
  Client& client = With({Answer(200, "<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>"),
                         Answer(200, "", {{"etag", "\"abc-2\""}, {"content-length", "10"}})});
  Result<std::string> etag = client.CompleteMultipartUpload("k", "u", {{1, 5, "a"}, {2, 5, "b"}});
  ASSERT_TRUE(etag.ok()) << etag.status().message();
  EXPECT_EQ(*etag, "abc-2");
  EXPECT_EQ(Seen()[1].method, "HEAD");
}

TEST_F(ScriptedClientTest, PutLargeRefusesPartsUnderFiveMiBAndMoreThanTenThousandParts) {
  Client& client = With({});
  PartReader never = [](uint64_t, size_t, std::string*) { return Status::Ok(); };
  LargeUploadOptions small;
  small.part_size = 1 << 20;
  EXPECT_EQ(client.PutLarge("k", 100 << 20, never, small).status().code(), Code::kInvalidArgument);
  LargeUploadOptions five;
  five.part_size = 5 << 20;
  EXPECT_EQ(client.PutLarge("k", uint64_t{5 << 20} * 10001, never, five).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Seen().empty());
}

TEST_F(ScriptedClientTest, KeysMustBeNonEmptyAndAtMost1024Bytes) {
  Client& client = With({});
  EXPECT_EQ(client.Put("", "x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client.Get(std::string(1025, 'k')).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Seen().empty());
}

// ---------------------------------------------------------------- real sockets, no server

// A listening TCP socket on 127.0.0.1 that never accepts: the kernel
// completes connections and takes the request, and no answer ever comes.
class SilentServer {
 public:
  SilentServer() {
    fd_ = test_util::ListenOnLoopback(16, &port_);
  }
  ~SilentServer() { Close(); }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(S3ClientNetwork, AnUnreachableServerIsAnIoErrorWithinBoundedTime) {
  SilentServer server;
  int port = server.port();
  server.Close();  // nothing listens there now: connections are refused
  auto client = Client::Create("bkt", FastFailingOptions(port), SpecimenCredentials());
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto start = steady_clock::now();
  Result<std::string> got = (*client)->Get("dir/k");
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(got.status().code(), Code::kIoError);
  const std::string& m = got.status().message();
  EXPECT_NE(m.find("http://127.0.0.1:" + std::to_string(port) + "/bkt/dir/k"), std::string::npos) << m;
  EXPECT_NE(m.find("after 3 attempts"), std::string::npos) << m;
  ExpectNoSecrets(m);
}

TEST(S3ClientNetwork, AServerThatNeverAnswersFailsAsStalledInsteadOfHanging) {
  SilentServer server;
  auto client = Client::Create("bkt", FastFailingOptions(server.port()), SpecimenCredentials());
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto start = steady_clock::now();
  Result<std::string> got = (*client)->Get("k");
  auto took = steady_clock::now() - start;
  ASSERT_EQ(got.status().code(), Code::kIoError);
  // Three attempts of about one second each, plus short waits between them.
  EXPECT_GE(took, std::chrono::seconds(2));
  EXPECT_LT(took, std::chrono::seconds(10));
  ExpectNoSecrets(got.status().message());
}

// ---------------------------------------------------------------- against a real S3 server

// A fresh bucket on the server of TUSK_TEST_S3_ENDPOINT for each test,
// emptied and deleted afterwards.
class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* endpoint = std::getenv("TUSK_TEST_S3_ENDPOINT");
    if (endpoint == nullptr || std::getenv("AWS_ACCESS_KEY_ID") == nullptr ||
        std::getenv("AWS_SECRET_ACCESS_KEY") == nullptr) {
      GTEST_SKIP() << "needs an S3 server: set TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
    }
    options_.endpoint = endpoint;
    Result<Credentials> credentials = LoadCredentials();
    ASSERT_TRUE(credentials.ok()) << credentials.status().message();
    credentials_ = *credentials;
    bucket_ = RandomBucketName();
    client_ = NewClient(bucket_, options_, credentials_);
    Status created = client_->CreateBucket();
    ASSERT_TRUE(created.ok()) << created.message();
  }

  void TearDown() override {
    if (client_ == nullptr) return;
    Result<std::vector<ObjectInfo>> left = client_->List("");
    if (left.ok()) {
      for (const ObjectInfo& object : *left) EXPECT_TRUE(client_->Delete(object.key).ok());
    }
    Status deleted = client_->DeleteBucket();
    EXPECT_TRUE(deleted.ok()) << deleted.message();
  }

  static std::unique_ptr<Client> NewClient(const std::string& bucket, const ClientOptions& options,
                                           const Credentials& credentials) {
    auto client = Client::Create(bucket, options, credentials);
    EXPECT_TRUE(client.ok()) << client.status().message();
    return client.ok() ? std::move(client).value() : nullptr;
  }
  // Puts `count` small objects "PREFIX%05d" from 8 threads.
  void PutMany(const std::string& prefix, int count) {
    std::atomic<int> next{0};
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; t++) {
      threads.emplace_back([&] {
        for (int i = next++; i < count; i = next++) {
          char key[64];
          std::snprintf(key, sizeof key, "%s%05d", prefix.c_str(), i);
          EXPECT_TRUE(client_->Put(key, std::to_string(i)).ok());
        }
      });
    }
  }

  ClientOptions options_;
  Credentials credentials_;
  std::string bucket_;
  std::unique_ptr<Client> client_;
};

TEST_F(S3ServerTest, PutThenGetHeadAndDelete) {
  std::string bytes = RandomBytes(100000, 1);
  Result<std::string> etag = client_->Put("dir/obj", bytes);
  ASSERT_TRUE(etag.ok()) << etag.status().message();
  EXPECT_EQ(*etag, PlainEtag(bytes));

  Result<std::string> got = client_->Get("dir/obj");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(*got == bytes);

  Result<ObjectInfo> head = client_->Head("dir/obj");
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->size, bytes.size());
  EXPECT_EQ(head->etag, *etag);

  ASSERT_TRUE(client_->Put("empty", "").ok());
  EXPECT_EQ(client_->Get("empty").value(), "");
  EXPECT_EQ(client_->Head("empty")->size, 0u);

  ASSERT_TRUE(client_->Delete("dir/obj").ok());
  EXPECT_EQ(client_->Get("dir/obj").status().code(), Code::kNotFound);
  EXPECT_EQ(client_->Head("dir/obj").status().code(), Code::kNotFound);
  EXPECT_TRUE(client_->Delete("dir/obj").ok()) << "deleting what is absent is not an error in S3";
}

TEST_F(S3ServerTest, RangeReadsReturnExactlyTheRangeAndAShortObjectIsCorruption) {
  std::string bytes = RandomBytes(1 << 20, 2);
  ASSERT_TRUE(client_->Put("pack", bytes).ok());
  EXPECT_TRUE(client_->GetRange("pack", 12345, 6789).value() == bytes.substr(12345, 6789));
  EXPECT_TRUE(client_->GetRange("pack", 0, bytes.size()).value() == bytes);
  EXPECT_TRUE(client_->GetRange("pack", bytes.size() - 10, 10).value() == bytes.substr(bytes.size() - 10));
  EXPECT_EQ(client_->GetRange("pack", bytes.size() - 10, 11).status().code(), Code::kCorruption);
  EXPECT_EQ(client_->GetRange("pack", bytes.size() + 5, 1).status().code(), Code::kCorruption);
  EXPECT_EQ(client_->GetRange("absent", 0, 1).status().code(), Code::kNotFound);
}

TEST_F(S3ServerTest, OneClientServesConcurrentRangeReadersFromManyThreads) {
  std::string bytes = RandomBytes(4 << 20, 3);
  ASSERT_TRUE(client_->Put("pack", bytes).ok());
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> readers;
    for (int t = 0; t < 8; t++) {
      readers.emplace_back([&, t] {
        std::mt19937_64 rng(t);
        for (int i = 0; i < 25; i++) {
          size_t offset = rng() % bytes.size();
          size_t length = 1 + rng() % std::min<size_t>(bytes.size() - offset, 256 << 10);
          std::string out(length, '\0');
          Status s = client_->ReadRange("pack", offset, length, out.data());
          if (!s.ok() || out != bytes.substr(offset, length)) wrong++;
        }
      });
    }
  }
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(S3ServerTest, ListingFollowsContinuationTokensOverSmallPages) {
  PutMany("p/", 50);
  ASSERT_TRUE(client_->Put("q/outside", "x").ok());
  Result<std::vector<ObjectInfo>> listed = client_->List("p/", 7);
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  ASSERT_EQ(listed->size(), 50u);
  for (int i = 0; i < 50; i++) {
    char key[16];
    std::snprintf(key, sizeof key, "p/%05d", i);
    EXPECT_EQ((*listed)[i].key, key);
    EXPECT_EQ((*listed)[i].size, std::to_string(i).size());
    EXPECT_EQ((*listed)[i].etag, PlainEtag(std::to_string(i)));
  }
}

TEST_F(S3ServerTest, ListingMoreThanAThousandKeysTakesSeveralPages) {
  PutMany("many/", 1100);
  Result<std::vector<ObjectInfo>> listed = client_->List("many/");
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  EXPECT_EQ(listed->size(), 1100u);
  EXPECT_EQ(listed->back().key, "many/01099");
}

TEST_F(S3ServerTest, KeysWithAnyCharactersRoundTripThroughPutGetAndList) {
  std::vector<std::string> keys = {"odd/a b",     "odd/plus+sign",         "odd/percent%41", "odd/amp&lt;",
                                   "odd/<angle>", "odd/\xc3\xa9t\xc3\xa9", "odd/q?x=1#frag", "odd/tab\tand~tilde",
                                   "odd/dot/./x", "odd/star*=;:,@$!'()"};
  for (const std::string& key : keys) {
    Result<std::string> put = client_->Put(key, key);
    ASSERT_TRUE(put.ok()) << key << ": " << put.status().message();
    EXPECT_EQ(client_->Get(key).value(), key);
  }
  Result<std::vector<ObjectInfo>> listed = client_->List("odd/");
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  std::set<std::string> got, want(keys.begin(), keys.end());
  for (const ObjectInfo& object : *listed) got.insert(object.key);
  EXPECT_EQ(got, want);
}

TEST_F(S3ServerTest, ACreateOnlyPutFailsWithConflictWhenTheObjectExists) {
  ASSERT_TRUE(client_->Put("ref", "first", WriteCondition::IfNoneMatchAny()).ok());
  Result<std::string> second = client_->Put("ref", "second", WriteCondition::IfNoneMatchAny());
  ASSERT_EQ(second.status().code(), Code::kConflict) << second.status().message();
  EXPECT_NE(second.status().message().find("If-None-Match"), std::string::npos);
  EXPECT_EQ(client_->Get("ref").value(), "first");
}

TEST_F(S3ServerTest, AnIfMatchPutReplacesOnlyTheVersionItNames) {
  std::string v1 = client_->Put("ref", "v1").value();
  Result<std::string> v2 = client_->Put("ref", "v2", WriteCondition::IfMatch(v1));
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  Result<std::string> stale = client_->Put("ref", "v3", WriteCondition::IfMatch(v1));
  EXPECT_EQ(stale.status().code(), Code::kConflict) << stale.status().message();
  EXPECT_EQ(client_->Get("ref").value(), "v2");
}

TEST_F(S3ServerTest, OfEightRacingCreateOnlyPutsExactlyOneWins) {
  for (int round = 0; round < 3; round++) {
    std::string key = "race/" + std::to_string(round);
    std::atomic<int> wins{0}, conflicts{0}, winner{-1};
    {
      std::vector<std::jthread> racers;
      for (int t = 0; t < 8; t++) {
        racers.emplace_back([&, t] {
          Result<std::string> put = client_->Put(key, "writer " + std::to_string(t), WriteCondition::IfNoneMatchAny());
          if (put.ok()) {
            wins++;
            winner = t;
          } else if (put.status().code() == Code::kConflict) {
            conflicts++;
          } else {
            ADD_FAILURE() << put.status().message();
          }
        });
      }
    }
    EXPECT_EQ(wins.load(), 1) << "round " << round;
    EXPECT_EQ(conflicts.load(), 7) << "round " << round;
    EXPECT_EQ(client_->Get(key).value(), "writer " + std::to_string(winner.load()));
  }
}

// A PartReader over `bytes` that counts its calls.
PartReader ReaderOf(const std::string& bytes, std::atomic<int>* calls = nullptr) {
  return [&bytes, calls](uint64_t offset, size_t len, std::string* out) {
    if (calls != nullptr) (*calls)++;
    out->assign(bytes, offset, len);
    return Status::Ok();
  };
}

TEST_F(S3ServerTest, AMultipartUploadSendsPartsInFlightAndJoinsThem) {
  std::string bytes = RandomBytes((20 << 20) + 12345, 4);  // four full 5 MiB parts and a short fifth
  LargeUploadOptions options;
  options.part_size = 5 << 20;
  options.parts_in_flight = 4;
  Result<LargeUploadResult> put = client_->PutLarge("big", bytes.size(), ReaderOf(bytes), options);
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->parts_sent, 5);
  EXPECT_TRUE(put->etag.ends_with("-5")) << put->etag;
  EXPECT_EQ(client_->Head("big")->size, bytes.size());
  EXPECT_TRUE(client_->Get("big").value() == bytes);
  EXPECT_EQ(client_->ListParts("big", put->upload_id).status().code(), Code::kNotFound) << "completed";
}

TEST_F(S3ServerTest, ASmallObjectGoesInOnePut) {
  std::string bytes = RandomBytes(1000, 5);
  Result<LargeUploadResult> put = client_->PutLarge("small", bytes.size(), ReaderOf(bytes));
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->etag, PlainEtag(bytes));
  EXPECT_TRUE(put->upload_id.empty());
}

TEST_F(S3ServerTest, AFailedUploadCanBeResumedSendingOnlyTheMissingParts) {
  std::string bytes = RandomBytes(4 * (5 << 20), 6);
  LargeUploadOptions options;
  options.part_size = 5 << 20;
  options.parts_in_flight = 1;  // parts go in order, so parts 1 and 2 are there when part 3 fails
  options.keep_failed_upload = true;
  std::string recorded_id;
  options.on_upload_id = [&](const std::string& id) { recorded_id = id; };
  PartReader failing_at_part_3 = [&](uint64_t offset, size_t len, std::string* out) {
    if (offset >= 2 * (5u << 20)) return Status::FromErrno(EIO, "reading the source");
    out->assign(bytes, offset, len);
    return Status::Ok();
  };
  Result<LargeUploadResult> failed = client_->PutLarge("big", bytes.size(), failing_at_part_3, options);
  ASSERT_EQ(failed.status().code(), Code::kIoError);
  ASSERT_FALSE(recorded_id.empty());

  Result<std::vector<UploadedPart>> there = client_->ListParts("big", recorded_id);
  ASSERT_TRUE(there.ok()) << there.status().message();
  ASSERT_EQ(there->size(), 2u);
  EXPECT_EQ((*there)[0].number, 1);
  EXPECT_EQ((*there)[1].size, 5u << 20);

  options.resume_upload_id = recorded_id;
  options.parts_in_flight = 4;
  Result<LargeUploadResult> resumed = client_->PutLarge("big", bytes.size(), ReaderOf(bytes), options);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(resumed->parts_reused, 2);
  EXPECT_EQ(resumed->parts_sent, 2);
  EXPECT_TRUE(client_->Get("big").value() == bytes);
}

TEST_F(S3ServerTest, AResumedPartWhoseBytesChangedIsSentAgain) {
  std::string old_bytes = RandomBytes(2 * (5 << 20), 7);
  std::string new_bytes = RandomBytes(2 * (5 << 20), 8);
  std::string upload_id = client_->CreateMultipartUpload("big").value();
  ASSERT_TRUE(client_->UploadPart("big", upload_id, 1, std::string_view(old_bytes).substr(0, 5 << 20)).ok());
  LargeUploadOptions options;
  options.part_size = 5 << 20;
  options.resume_upload_id = upload_id;
  Result<LargeUploadResult> resumed = client_->PutLarge("big", new_bytes.size(), ReaderOf(new_bytes), options);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(resumed->parts_reused, 0);
  EXPECT_TRUE(client_->Get("big").value() == new_bytes);
}

TEST_F(S3ServerTest, AFailedUploadIsAbortedUnlessAskedToKeepIt) {
  std::string bytes = RandomBytes(3 * (5 << 20), 9);
  LargeUploadOptions options;
  options.part_size = 5 << 20;
  std::string recorded_id;
  options.on_upload_id = [&](const std::string& id) { recorded_id = id; };
  PartReader failing = [&](uint64_t offset, size_t len, std::string* out) {
    if (offset > 0) return Status::Corruption("source changed");
    out->assign(bytes, offset, len);
    return Status::Ok();
  };
  Result<LargeUploadResult> failed = client_->PutLarge("big", bytes.size(), failing, options);
  ASSERT_EQ(failed.status().code(), Code::kCorruption);
  EXPECT_NE(failed.status().message().find("source changed"), std::string::npos);
  EXPECT_EQ(client_->ListParts("big", recorded_id).status().code(), Code::kNotFound);
  EXPECT_EQ(client_->Head("big").status().code(), Code::kNotFound);
}

TEST_F(S3ServerTest, AnAbortedUploadIsGone) {
  std::string upload_id = client_->CreateMultipartUpload("big").value();
  ASSERT_TRUE(client_->UploadPart("big", upload_id, 1, RandomBytes(5 << 20, 10)).ok());
  ASSERT_EQ(client_->ListParts("big", upload_id)->size(), 1u);
  ASSERT_TRUE(client_->AbortMultipartUpload("big", upload_id).ok());
  EXPECT_EQ(client_->ListParts("big", upload_id).status().code(), Code::kNotFound);
  EXPECT_TRUE(client_->AbortMultipartUpload("big", upload_id).ok()) << "aborting twice is harmless";
}

TEST_F(S3ServerTest, WrongCredentialsAreAccessDeniedAndNeverShown) {
  Credentials wrong_secret = credentials_;
  wrong_secret.secret_access_key = "wrongsecretwrongsecretwrongsecret0000000";
  Credentials unknown_key{"AKIDUNKNOWNKEY000000", "unknownsecretunknownsecretunknown0000000", ""};
  for (const Credentials& credentials : {wrong_secret, unknown_key}) {
    std::unique_ptr<Client> client = NewClient(bucket_, options_, credentials);
    ASSERT_NE(client, nullptr);
    std::vector<Status> failures = {client->Put("k", "x").status(), client->Get("k").status(),
                                    client->Head("k").status(), client->List("").status(), client->CheckBucket()};
    for (const Status& s : failures) {
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.sys_errno(), EACCES) << s.message();
      EXPECT_EQ(s.message().find(credentials.secret_access_key), std::string::npos) << s.message();
      EXPECT_EQ(s.message().find(credentials.access_key_id), std::string::npos) << s.message();
    }
    EXPECT_NE(failures[0].message().find("access denied"), std::string::npos) << failures[0].message();
    EXPECT_NE(failures[0].message().find("s3://" + bucket_ + "/k"), std::string::npos) << failures[0].message();
  }
}

TEST_F(S3ServerTest, AMissingBucketIsNotFoundSayingSo) {
  std::unique_ptr<Client> client = NewClient(RandomBucketName(), options_, credentials_);
  ASSERT_NE(client, nullptr);
  Status check = client->CheckBucket();
  ASSERT_EQ(check.code(), Code::kNotFound) << check.message();
  EXPECT_NE(check.message().find("bucket '" + client->bucket() + "' does not exist"), std::string::npos)
      << check.message();
  Result<std::string> get = client->Get("k");
  ASSERT_EQ(get.status().code(), Code::kNotFound);
  EXPECT_NE(get.status().message().find("does not exist"), std::string::npos) << get.status().message();
  EXPECT_EQ(client->List("").status().code(), Code::kNotFound);
  EXPECT_TRUE(client_->CheckBucket().ok());
}

TEST_F(S3ServerTest, CreatingTheBucketAgainIsAtMostAlreadyExists) {
  Status again = client_->CreateBucket();
  EXPECT_TRUE(again.ok() || again.code() == Code::kAlreadyExists) << again.message();
  EXPECT_TRUE(client_->CheckBucket().ok());
}

TEST_F(S3ServerTest, ABucketThatIsNotEmptyCannotBeDeleted) {
  ASSERT_TRUE(client_->Put("k", "x").ok());
  EXPECT_EQ(client_->DeleteBucket().code(), Code::kConflict);
}

}  // namespace
}  // namespace tusk::s3
