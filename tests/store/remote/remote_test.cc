// Specification of remotes (store/remote/remote.h): the STORE/remotes file,
// the probe that refuses servers without conditional writes, and adding a
// remote to a store. The first part needs no server (an in-memory S3 stands
// in for one); RemoteServerTest runs against the real S3 server that
// tools/test.sh starts (TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY) and is skipped without one.
#include "store/remote/remote.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>

#include "store/backend/s3/http.h"
#include "store/internal/file.h"
#include "tests/store/backend/s3_test_util.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;

// ---------------------------------------------------------------- the remotes file

Remote Sample(std::string name) {
  Remote r;
  r.name = std::move(name);
  r.url = "s3://bucket-1/team/datasets";
  return r;
}

TEST(RemotesFileTest, EveryFieldRoundTrips) {
  Remote full = Sample("origin");
  full.endpoint = "https://minio.example.com:9000";
  full.region = "eu-west-3";
  full.addressing = Remote::Addressing::kVirtualHost;
  full.insecure = true;
  full.id = "0123456789abcdef0123456789abcdef";
  Remote path = Sample("lab.2");
  path.addressing = Remote::Addressing::kPathStyle;
  std::vector<Remote> remotes = {full, path, Sample("plain")};
  std::string text = EncodeRemotes(remotes);
  EXPECT_EQ(text.substr(0, text.find('\n')), "tusk remotes 2");
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<Remote> back, DecodeRemotes(text));
  EXPECT_EQ(back, remotes);
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<Remote> none, DecodeRemotes(EncodeRemotes({})));
  EXPECT_TRUE(none.empty());
  // A file of format 1 (no ids) is read as it is.
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<Remote> old, DecodeRemotes("tusk remotes 1\nremote origin s3://bucket-1/team/datasets\n"));
  EXPECT_EQ(old, std::vector<Remote>{Sample("origin")});
}

TEST(RemotesFileTest, MalformedFilesAreCorruptionNamingTheLine) {
  const std::string header = "tusk remotes 1\n";
  for (std::string bad : {std::string(), std::string("tusk remotes 1"), std::string("garbage\n"),
                          header + "remote origin\n", header + "origin s3://b\n",
                          header + "remote origin http://b\n", header + "remote -x s3://bucket\n",
                          header + "remote origin s3://bucket colour=blue\n",
                          header + "remote origin s3://bucket endpoint=ftp://x\n",
                          header + "remote origin s3://bucket addressing=sideways\n",
                          header + "remote origin s3://bucket\nremote origin s3://other\n",
                          header + "remote origin s3://bucket  region=x\n", std::string("tusk remotes x\n"),
                          header + "remote origin s3://bucket id=0123\n",
                          header + "remote origin s3://bucket id=0123456789ABCDEF0123456789ABCDEF\n"}) {
    auto decoded = DecodeRemotes(bad);
    EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption) << "'" << bad << "'";
  }
  auto duplicate = DecodeRemotes(header + "remote a s3://bucket\nremote a s3://bucket\n");
  EXPECT_NE(duplicate.status().message().find("line 3"), std::string::npos) << duplicate.status().message();
  EXPECT_EQ(DecodeRemotes("tusk remotes 3\n").status().code(), Status::Code::kUnsupported);
}

TEST(RemotesFileTest, NamesAreShortWordsOfSafeCharacters) {
  for (std::string good : std::vector<std::string>{"origin", "a", "lab-2", "x.y_z", std::string(64, 'n')})
    TUSK_EXPECT_OK(CheckRemoteName(good));
  for (std::string bad : std::vector<std::string>{"", "-x", ".hidden", "a b", "a/b", "é", std::string(65, 'n')})
    EXPECT_EQ(CheckRemoteName(bad).code(), Status::Code::kInvalidArgument) << bad;
}

TEST(RemotesFileTest, AStoreWithoutTheFileHasNoRemotesAndSaysHowToAddOne) {
  TempDir dir;
  TUSK_ASSERT_OK_AND_ASSIGN(std::vector<Remote> remotes, LoadRemotes(Env::Default(), dir.path()));
  EXPECT_TRUE(remotes.empty());
  auto missing = FindRemote(Env::Default(), dir.path(), "origin");
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("tusk remote add"), std::string::npos) << missing.status().message();
  EXPECT_EQ(RemoveRemote(Env::Default(), dir.path(), "origin").code(), Status::Code::kNotFound);
}

TEST(RemotesFileTest, ADamagedFileIsAnErrorNamingIt) {
  TempDir dir;
  TUSK_ASSERT_OK(WriteFileAtomically(dir.path() + "/remotes", "tusk remotes 1\nremote\n"));
  auto remotes = LoadRemotes(Env::Default(), dir.path());
  EXPECT_EQ(remotes.status().code(), Status::Code::kCorruption);
  EXPECT_NE(remotes.status().message().find(dir.path() + "/remotes"), std::string::npos);
}

// ---------------------------------------------------------------- the probe, on an in-memory S3

// Just enough of S3 for the probe and the format object: PUT (with or
// without honouring its conditions), GET, DELETE, ListObjectsV2.
class FakeS3 : public s3::HttpTransport {
 public:
  enum class Conditions { kHonoured, kIgnored, kNotImplemented };
  explicit FakeS3(Conditions conditions) : conditions_(conditions) {}

  s3::HttpResponse Perform(const s3::HttpRequest& request) override {
    std::lock_guard lock(mu_);
    s3::HttpResponse r;
    std::string path = request.url.substr(request.url.find('/', std::string("http://").size()));
    std::string query;
    if (size_t q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    std::string key = path.substr(std::string("/bucket").size());
    if (!key.empty()) key = key.substr(1);
    std::string if_none_match, if_match;
    for (const std::string& h : request.headers) {
      if (h.rfind("If-None-Match: ", 0) == 0) if_none_match = h.substr(15);
      if (h.rfind("If-Match: ", 0) == 0) if_match = h.substr(10);
    }
    auto it = objects_.find(key);
    if (request.method == "PUT") {
      bool conditional = !if_none_match.empty() || !if_match.empty();
      if (conditional && conditions_ == Conditions::kNotImplemented) return (r.status = 501, r);
      if (conditional && conditions_ == Conditions::kHonoured) {
        if ((!if_none_match.empty() && it != objects_.end()) ||
            (!if_match.empty() && (it == objects_.end() || Etag(it->second) != if_match)))
          return (r.status = 412, r);
      }
      objects_[key] = std::string(request.body);
      r.status = 200;
      r.headers["etag"] = "\"" + Etag(objects_[key]) + "\"";
      return r;
    }
    if (request.method == "GET" && key.empty()) {  // ListObjectsV2 of everything
      r.status = 200;
      r.body = "<ListBucketResult><IsTruncated>false</IsTruncated>";
      for (const auto& [k, v] : objects_)
        r.body += "<Contents><Key>" + k + "</Key><Size>" + std::to_string(v.size()) + "</Size><ETag>\"" + Etag(v) +
                  "\"</ETag></Contents>";
      r.body += "</ListBucketResult>";
      return r;
    }
    if (request.method == "GET" || request.method == "HEAD") {
      if (it == objects_.end()) return (r.status = 404, r);
      r.status = 200;
      r.headers["etag"] = "\"" + Etag(it->second) + "\"";
      r.headers["content-length"] = std::to_string(it->second.size());
      if (request.method == "GET") r.body = it->second;
      return r;
    }
    if (request.method == "DELETE") {
      objects_.erase(key);
      return (r.status = 204, r);
    }
    return (r.status = 400, r);
  }

  std::map<std::string, std::string> objects() {
    std::lock_guard lock(mu_);
    return objects_;
  }

 private:
  // Not MD5, but a function of the bytes, which is all an etag must be here.
  static std::string Etag(const std::string& bytes) { return std::to_string(std::hash<std::string>()(bytes)); }
  std::mutex mu_;
  Conditions conditions_;
  std::map<std::string, std::string> objects_;
};

struct FakeRemote {
  FakeS3* server = nullptr;
  std::unique_ptr<s3::Client> client;
  s3::Location location{"bucket", "team/"};
};

FakeRemote OnFake(FakeS3::Conditions conditions) {
  FakeRemote f;
  auto server = std::make_unique<FakeS3>(conditions);
  f.server = server.get();
  s3::ClientOptions options;
  options.endpoint = "http://fake";
  options.retry.max_attempts = 1;
  auto client = s3::Client::CreateWithTransport("bucket", options, {}, std::move(server));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  f.client = std::move(*client);
  return f;
}

TEST(ProbeTest, AServerThatHonoursConditionalWritesPassesAndKeepsNothing) {
  FakeRemote f = OnFake(FakeS3::Conditions::kHonoured);
  TUSK_ASSERT_OK(ProbeConditionalWrites(*f.client, f.location));
  EXPECT_TRUE(f.server->objects().empty()) << "the scratch key is removed";
}

TEST(ProbeTest, AServerThatIgnoresConditionsIsRefusedAndKeepsNothing) {
  FakeRemote f = OnFake(FakeS3::Conditions::kIgnored);
  Status st = ProbeConditionalWrites(*f.client, f.location);
  EXPECT_EQ(st.code(), Status::Code::kUnsupported);
  EXPECT_NE(st.message().find("ignored If-None-Match"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cannot use this server as a remote"), std::string::npos) << st.message();
  EXPECT_TRUE(f.server->objects().empty());
}

TEST(ProbeTest, AServerWithoutConditionalWritesIsRefused) {
  FakeRemote f = OnFake(FakeS3::Conditions::kNotImplemented);
  Status st = ProbeConditionalWrites(*f.client, f.location);
  EXPECT_EQ(st.code(), Status::Code::kUnsupported) << st.ToString();
  EXPECT_TRUE(f.server->objects().empty());
}

TEST(ProbeTest, ANewPrefixGetsTheFormatObjectAndAnExistingOneIsAdopted) {
  FakeRemote f = OnFake(FakeS3::Conditions::kHonoured);
  TUSK_ASSERT_OK_AND_ASSIGN(std::string id, AdoptRemoteFormat(*f.client, f.location));
  EXPECT_EQ(id.size(), 32u) << "a new remote gets an id";
  TUSK_ASSERT_OK_AND_ASSIGN(std::string again, AdoptRemoteFormat(*f.client, f.location));
  EXPECT_EQ(again, id) << "and keeps it";
  EXPECT_EQ(f.server->objects(),
            (std::map<std::string, std::string>{{"team/tusk-remote", "tusk remote 1\nid " + id + "\n"}}));
  TUSK_EXPECT_OK(AdoptRemoteFormat(*f.client, f.location).status());  // a second machine adopts it
}

TEST(ProbeTest, ForeignObjectsOrAnotherFormatAreRefused) {
  FakeRemote f = OnFake(FakeS3::Conditions::kHonoured);
  TUSK_ASSERT_OK(f.client->Put("team/photo.jpg", "jpeg").status());
  Status foreign = AdoptRemoteFormat(*f.client, f.location).status();
  EXPECT_EQ(foreign.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(foreign.message().find("not a tusk remote"), std::string::npos) << foreign.message();
  EXPECT_EQ(f.server->objects().size(), 1u) << "nothing written beside someone else's data";

  FakeRemote g = OnFake(FakeS3::Conditions::kHonoured);
  TUSK_ASSERT_OK(g.client->Put("team/tusk-remote", "tusk remote 7\n").status());
  EXPECT_EQ(AdoptRemoteFormat(*g.client, g.location).status().code(), Status::Code::kUnsupported);
  TUSK_ASSERT_OK(g.client->Put("team/tusk-remote", "hello\n").status());
  EXPECT_EQ(AdoptRemoteFormat(*g.client, g.location).status().code(), Status::Code::kCorruption);
}

TEST(ProbeTest, AProbeKeyLeftByAnInterruptedProbeIsNotForeignData) {
  FakeRemote f = OnFake(FakeS3::Conditions::kHonoured);
  TUSK_ASSERT_OK(f.client->Put("team/tusk-probe/0123", "probe 1\n").status());
  TUSK_EXPECT_OK(AdoptRemoteFormat(*f.client, f.location).status());
}

// ---------------------------------------------------------------- against a real S3 server

class RemoteServerTest : public ::testing::Test {
 protected:
  // The bucket is left to AddRemote to create: the tests start without one.
  void SetUp() override {
    std::string why_not;
    std::optional<test_util::S3Server> server = test_util::S3ServerFromEnvironment(&why_not);
    if (!server) GTEST_SKIP() << why_not;
    endpoint_ = server->options.endpoint;
    bucket_ = test_util::RandomBucketName();
  }
  void TearDown() override {
    if (endpoint_.empty()) return;
    auto c = Connect(At("s3://" + bucket_));
    if (!c.ok()) return;
    auto left = c->client->List("");
    if (left.ok())
      for (const auto& o : *left) (void)c->client->Delete(o.key);
    (void)c->client->DeleteBucket();
  }
  Remote At(std::string url, std::string name = "origin") {
    Remote r;
    r.name = std::move(name);
    r.url = std::move(url);
    r.endpoint = endpoint_;
    return r;
  }
  std::string endpoint_, bucket_;
  TempDir store_;
};

TEST_F(RemoteServerTest, AddingARemoteChecksTheServerAndRecordsItInTheStore) {
  Remote origin = At("s3://" + bucket_ + "/team");
  Status missing = AddRemote(Env::Default(), store_.path(), origin, false);
  EXPECT_EQ(missing.code(), Status::Code::kNotFound);
  EXPECT_NE(missing.message().find("--create-bucket"), std::string::npos) << missing.message();
  TUSK_ASSERT_OK(LoadRemotes(Env::Default(), store_.path()).status());
  EXPECT_TRUE(LoadRemotes(Env::Default(), store_.path())->empty()) << "nothing recorded after a failure";

  TUSK_ASSERT_OK(AddRemote(Env::Default(), store_.path(), origin, true));
  TUSK_ASSERT_OK_AND_ASSIGN(Remote found, FindRemote(Env::Default(), store_.path(), "origin"));
  EXPECT_EQ(found.id.size(), 32u) << "the remote's identity is recorded";
  Remote with_id = origin;
  with_id.id = found.id;
  EXPECT_EQ(found, with_id);
  TUSK_ASSERT_OK_AND_ASSIGN(RemoteConnection c, Connect(found));
  TUSK_ASSERT_OK_AND_ASSIGN(std::string format, c.client->Get("team/tusk-remote"));
  EXPECT_EQ(format, "tusk remote 1\nid " + found.id + "\n");
  TUSK_EXPECT_OK(CheckRemoteIdentity(c));
  TUSK_ASSERT_OK_AND_ASSIGN(auto objects, c.client->List("team/"));
  EXPECT_EQ(objects.size(), 1u) << "the probe's scratch key is gone";

  EXPECT_EQ(AddRemote(Env::Default(), store_.path(), origin, false).code(), Status::Code::kAlreadyExists);
  // Another store (another machine) adopts the same remote.
  TempDir other;
  TUSK_EXPECT_OK(AddRemote(Env::Default(), other.path(), At(origin.url, "shared"), false));
  TUSK_ASSERT_OK_AND_ASSIGN(Remote shared, FindRemote(Env::Default(), other.path(), "shared"));
  EXPECT_EQ(shared.id, found.id) << "one remote, one identity";
  // Recorded with another id (the prefix was made again): push and fetch
  // would trust what this store remembers of another remote.
  RemoteConnection stale = std::move(c);
  stale.remote.id = std::string(32, '0');
  Status refused = CheckRemoteIdentity(stale);
  EXPECT_EQ(refused.code(), Status::Code::kConflict) << refused.ToString();
  EXPECT_NE(refused.message().find("tusk remote remove origin"), std::string::npos) << refused.message();
  c = std::move(stale);
  TUSK_ASSERT_OK(RemoveRemote(Env::Default(), store_.path(), "origin"));
  EXPECT_TRUE(LoadRemotes(Env::Default(), store_.path())->empty());
  TUSK_EXPECT_OK(c.client->Head("team/tusk-remote").status());  // removing a remote leaves the bucket alone
}

TEST_F(RemoteServerTest, APrefixHoldingOtherDataIsRefused) {
  TUSK_ASSERT_OK(AddRemote(Env::Default(), store_.path(), At("s3://" + bucket_ + "/mine"), true));
  TUSK_ASSERT_OK_AND_ASSIGN(RemoteConnection c, Connect(At("s3://" + bucket_)));
  TUSK_ASSERT_OK(c.client->Put("photos/cat.jpg", "jpeg").status());
  Status st = AddRemote(Env::Default(), store_.path(), At("s3://" + bucket_ + "/photos", "photos"), false);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_EQ(c.client->Head("photos/tusk-remote").status().code(), Status::Code::kNotFound);
}

TEST_F(RemoteServerTest, WrongCredentialsFailWithoutShowingThem) {
  TUSK_ASSERT_OK(AddRemote(Env::Default(), store_.path(), At("s3://" + bucket_), true));
  std::string secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  std::string key_id = std::getenv("AWS_ACCESS_KEY_ID");
  ::setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-at-all", 1);
  Status st = AddRemote(Env::Default(), store_.path(), At("s3://" + bucket_ + "/x", "other"), false);
  ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message().find("not-the-secret-at-all"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(key_id), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("access denied"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace tusk
