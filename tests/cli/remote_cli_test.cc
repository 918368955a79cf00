// `tusk remote add|list|remove` as a user runs them (tusk-remote(1)),
// against the real S3 server that tools/test.sh starts
// (TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); the
// server tests are skipped without one.
#include <cstdlib>
#include <optional>

#include "tests/cli/cli_helpers.h"
#include "tests/store/backend/s3_test_util.h"

namespace tusk::cli_test {
namespace {

class RemoteCliTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    InitStore();
    server_ = test_util::S3ServerFromEnvironment(&why_not_);
    if (server_) endpoint_ = server_->options.endpoint;
    bucket_ = test_util::RandomBucketName();
  }
  std::optional<test_util::S3Server> server_;
  std::string why_not_, endpoint_, bucket_;
};

#define NEEDS_SERVER() \
  if (!server_) GTEST_SKIP() << why_not_

TEST_F(RemoteCliTest, AddListAndRemoveARemote) {
  NEEDS_SERVER();
  RunResult r = Run("remote", "add", "origin", "s3://" + bucket_ + "/team", "--endpoint", endpoint_);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "does not exist")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "--create-bucket")) << r;

  r = Run("remote", "add", "origin", "s3://" + bucket_ + "/team", "--endpoint", endpoint_, "--create-bucket");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "Added remote origin: s3://" + bucket_ + "/team at " + endpoint_ + "\n");
  r = Run("remote", "add", "lab", "s3://" + bucket_ + "/lab", "--endpoint", endpoint_, "--path-style");
  ASSERT_EQ(r.exit_code, 0) << r;

  r = Run("remote", "list");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "lab\ts3://" + bucket_ + "/lab\t" + endpoint_ + "\tpath addressing\norigin\ts3://" + bucket_ +
                       "/team\t" + endpoint_ + "\n");
  r = Run("remote", "list", "--json");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(HasSubstr(r.out, "{\"name\":\"origin\",\"url\":\"s3://" + bucket_ + "/team\",\"endpoint\":\"" +
                                   endpoint_ + "\",\"region\":\"\",\"addressing\":\"auto\",\"insecure\":false}"))
      << r;

  r = Run("remote", "add", "origin", "s3://" + bucket_ + "/other", "--endpoint", endpoint_);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "exists already")) << r;

  r = Run("remote", "remove", "lab");
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Run("remote", "remove", "lab");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "no remote named 'lab' (remotes: origin)")) << r;
  r = Run("remote", "list");
  EXPECT_EQ(r.out, "origin\ts3://" + bucket_ + "/team\t" + endpoint_ + "\n") << r;
  // The store never holds credentials.
  std::string remotes = ReadFileOrDie(store() + "/remotes");
  EXPECT_FALSE(HasSubstr(remotes, std::getenv("AWS_ACCESS_KEY_ID")));
  EXPECT_FALSE(HasSubstr(remotes, std::getenv("AWS_SECRET_ACCESS_KEY")));
}

TEST_F(RemoteCliTest, RefusedCredentialsAreNamedButNeverShown) {
  NEEDS_SERVER();
  std::string secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-1234", 1);
  RunResult r =
      Run("remote", "add", "origin", "s3://" + bucket_, "--endpoint", endpoint_, "--create-bucket");
  ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "access denied")) << r;
  EXPECT_FALSE(HasSubstr(r.err + r.out, "wrong-secret-1234")) << r;
  EXPECT_FALSE(HasSubstr(r.err + r.out, std::getenv("AWS_ACCESS_KEY_ID"))) << r;
  EXPECT_EQ(Run("remote", "list").out, "");
}

TEST_F(RemoteCliTest, NoServerAnsweringIsAnErrorNotAHang) {
  // A closed port on this machine: refused at once, tried again, then an error.
  RunResult r = Run("remote", "add", "origin", "s3://bucket-1", "--endpoint", "http://127.0.0.1:9");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "127.0.0.1:9")) << r;
  EXPECT_EQ(Run("remote", "list").out, "");
}

TEST_F(RemoteCliTest, BadInputIsRefusedBeforeAnyRequest) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"remote", "add", "-bad", "s3://bucket-1"}, ""},
           {{"remote", "add", "a/b", "s3://bucket-1"}, "bad remote name"},
           {{"remote", "add", "origin", "http://bucket-1"}, "s3://"},
           {{"remote", "add", "origin", "s3://Bad_Bucket"}, "bucket"},
           {{"remote", "add", "origin", "s3://bucket-1", "--endpoint", "ftp://x"}, "http:// or https://"},
           {{"remote", "add", "origin", "s3://bucket-1", "--path-style", "--virtual-host"}, "exclude each other"},
           {{"remote", "remove", "nope"}, "this store has none"},
       }) {
    RunResult r = RunArgs(c.args);
    EXPECT_NE(r.exit_code, 0) << r;
    EXPECT_TRUE(HasSubstr(r.err, c.message)) << r;
  }
  EXPECT_EQ(Run("remote", "list").out, "");
}

TEST_F(RemoteCliTest, MissingCredentialsSayWhereTheyWereLookedFor) {
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_PROFILE");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", (dir() + "/no-such-file").c_str(), 1);
  RunResult r = Run("remote", "add", "origin", "s3://bucket-1", "--endpoint", "http://127.0.0.1:9");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(HasSubstr(r.err, "no S3 credentials")) << r;
  EXPECT_TRUE(HasSubstr(r.err, "AWS_ACCESS_KEY_ID")) << r;
}

}  // namespace
}  // namespace tusk::cli_test
