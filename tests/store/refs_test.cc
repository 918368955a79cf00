// Specification of names and ref syntax (store/refs.h).

#include "store/refs.h"

#include <string>

#include <gtest/gtest.h>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

bool Valid(std::string_view name) { return ValidateName("dataset", name).ok(); }

// ---- names ----

TEST(ValidateNameTest, AcceptsOrdinaryNames) {
  for (std::string name : {"main", "a", "data-2024", "v1.0", "feature_x", "UPPER", "with space", "...", ".hidden",
                           "a.", "x-", "0123456789abcdef"})
    EXPECT_TRUE(Valid(name)) << name;
}

TEST(ValidateNameTest, AcceptsUtf8Names) {
  EXPECT_TRUE(Valid("\xc3\xa9t\xc3\xa9"));            // été
  EXPECT_TRUE(Valid("\xe6\x95\xb0\xe6\x8d\xae"));     // 数据
  EXPECT_TRUE(Valid("\xf0\x9f\x90\x98"));             // U+1F418 elephant
  EXPECT_TRUE(Valid("\xf4\x8f\xbf\xbf"));             // U+10FFFF, the last code point
  EXPECT_TRUE(Valid("\xef\xbf\xbd"));                 // U+FFFD
}

TEST(ValidateNameTest, AcceptsNamesUpTo255Bytes) { EXPECT_TRUE(Valid(std::string(255, 'n'))); }

TEST(ValidateNameTest, RejectsNamesLongerThan255Bytes) {
  Status st = ValidateName("branch", std::string(256, 'n'));
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
}

TEST(ValidateNameTest, RejectsEmptyDotAndDotDot) {
  for (std::string name : {"", ".", ".."}) {
    Status st = ValidateName("dataset", name);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << "'" << name << "'";
  }
}

TEST(ValidateNameTest, RejectsRefSyntaxCharacters) {
  for (std::string name : {"a/b", "a@b", "a~b", "a:b", "/", "@", "~", ":", "trailing/", "x@"})
    EXPECT_EQ(ValidateName("tag", name).code(), Status::Code::kInvalidArgument) << name;
}

TEST(ValidateNameTest, RejectsLeadingDash) {
  EXPECT_FALSE(Valid("-x"));
  EXPECT_FALSE(Valid("-"));
  EXPECT_TRUE(Valid("x-"));
}

TEST(ValidateNameTest, RejectsControlCharacters) {
  for (std::string name : {std::string("a\nb"), std::string("a\tb"), std::string("\x01"), std::string("a\x7f"),
                           std::string("a\0b", 3), std::string("\x1b[31m")})
    EXPECT_FALSE(Valid(name)) << EscapeForDisplay(name);
}

TEST(ValidateNameTest, RejectsInvalidUtf8) {
  EXPECT_FALSE(Valid("\xff"));
  EXPECT_FALSE(Valid("a\xfe"));
  EXPECT_FALSE(Valid("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(Valid("\xe0\x80\xaf"));      // overlong '/', three bytes
  EXPECT_FALSE(Valid("\xf0\x80\x80\xaf"));  // overlong '/', four bytes
  EXPECT_FALSE(Valid("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(Valid("\xed\xbf\xbf"));      // surrogate U+DFFF
  EXPECT_FALSE(Valid("\xf4\x90\x80\x80"));  // U+110000, past the last code point
  EXPECT_FALSE(Valid("\xc3"));              // truncated sequence
  EXPECT_FALSE(Valid("ab\xe6\x95"));        // truncated at the end
  EXPECT_FALSE(Valid("\x80"));              // lone continuation byte
  EXPECT_FALSE(Valid("\xc3\x28"));          // bad continuation byte
}

TEST(ValidateNameTest, MessageNamesWhatAndEscapesTheName) {
  Status st = ValidateName("branch", "bad\x01name");
  EXPECT_NE(st.message().find("branch"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("\\x01"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\x01'), std::string::npos) << "raw control byte in the message";
}

TEST(IsValidUtf8Test, AcceptsAsciiAndEmpty) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc2\x80"));  // U+0080, smallest two-byte form
  EXPECT_FALSE(IsValidUtf8("\xc1\xbf"));  // overlong U+007F
}

TEST(EscapeForDisplayTest, KeepsValidUtf8AndEscapesTheRest) {
  EXPECT_EQ(EscapeForDisplay("plain"), "plain");
  EXPECT_EQ(EscapeForDisplay("\xc3\xa9"), "\xc3\xa9");
  EXPECT_EQ(EscapeForDisplay("a\nb"), "a\\x0ab");
  EXPECT_EQ(EscapeForDisplay("\xff"), "\\xff");
  EXPECT_EQ(EscapeForDisplay("\xc0\xaf"), "\\xc0\\xaf");
}

// ---- refs ----

TEST(ParseRefTest, DatasetAndBranch) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d@main", false));
  EXPECT_EQ(r.dataset, "d");
  EXPECT_EQ(r.rev, "main");
  EXPECT_EQ(r.ancestors, 0u);
  EXPECT_EQ(r.text, "d@main");
}

TEST(ParseRefTest, AncestorCount) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d@main~2", false));
  EXPECT_EQ(r.rev, "main");
  EXPECT_EQ(r.ancestors, 2u);
}

TEST(ParseRefTest, BareTildeMeansOne) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d@v1~", false));
  EXPECT_EQ(r.rev, "v1");
  EXPECT_EQ(r.ancestors, 1u);
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r2, ParseRef("d@v1~~", false));
  EXPECT_EQ(r2.ancestors, 2u);
}

TEST(ParseRefTest, RepeatedTildesAddUp) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d@abcd~1~2", false));
  EXPECT_EQ(r.dataset, "d");
  EXPECT_EQ(r.rev, "abcd");
  EXPECT_EQ(r.ancestors, 3u);
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r2, ParseRef("d@abcd~~2", false));
  EXPECT_EQ(r2.ancestors, 3u);
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r3, ParseRef("d@abcd~0", false));
  EXPECT_EQ(r3.ancestors, 0u);
}

TEST(ParseRefTest, RemoteSlashBranchIsARemoteTrackingRef) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d@origin/main~1", false));
  EXPECT_EQ(r.dataset, "d");
  EXPECT_EQ(r.remote, "origin");
  EXPECT_EQ(r.rev, "main");
  EXPECT_EQ(r.ancestors, 1u);
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec local, ParseRef("d@main", false));
  EXPECT_EQ(local.remote, "");
  for (const char* bad : {"d@origin/", "d@/main", "d@a/b/c", "d@origin/ma@in"})
    EXPECT_EQ(ParseRef(bad, false).status().code(), Status::Code::kInvalidArgument) << bad;
}

TEST(ParseRefTest, BareDatasetOnlyWhenAllowed) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d", true));
  EXPECT_EQ(r.dataset, "d");
  EXPECT_EQ(r.rev, "");  // the default branch
  EXPECT_EQ(r.ancestors, 0u);
  EXPECT_EQ(ParseRef("d", false).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, BareDatasetWithAncestors) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d~3", true));
  EXPECT_EQ(r.dataset, "d");
  EXPECT_EQ(r.rev, "");
  EXPECT_EQ(r.ancestors, 3u);
}

TEST(ParseRefTest, NothingAfterAtIsAnError) {
  EXPECT_EQ(ParseRef("d@", false).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("d@", true).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("d@~1", true).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, NothingBeforeAtIsAnError) {
  EXPECT_EQ(ParseRef("@x", false).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("@x", true).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("", true).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, NonNumericAncestorIsAnError) {
  EXPECT_EQ(ParseRef("d@main~x", false).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("d@main~1x", false).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("d@main~-1", false).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, SecondAtIsAnError) {
  EXPECT_EQ(ParseRef("d@main@x", false).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, InvalidDatasetNameIsAnError) {
  EXPECT_EQ(ParseRef("-d@main", false).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("a/b@main", false).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseRef("\xff@main", false).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, HugeAncestorCountIsAnError) {
  EXPECT_EQ(ParseRef("d@main~99999999999999999999", false).status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseRefTest, AncestorCountsThatAddUpPastTheLimitAreAnError) {
  // Each step is within the per-step limit, but the sum (2^32 + 5) does not
  // fit: it must be rejected, not wrap around to ~5 and silently name a
  // recent commit.
  std::string text = "d@main";
  for (int i = 0; i < 4294; i++) text += "~1000000";
  text += "~967301";
  auto r = ParseRef(text, false);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument)
      << "parsed as " << (r.ok() ? r->ancestors : 0) << " ancestors";
}

TEST(ParseRefTest, AncestorCountsThatAddUpToTheLimitAreAccepted) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseRef("d@main~500000~500000", false));
  EXPECT_EQ(r.ancestors, 1000000u);
}

TEST(ParseNewRefNameTest, SplitsDatasetAndName) {
  TUSK_ASSERT_OK_AND_ASSIGN(RefSpec r, ParseNewRefName("d@feature", "branch"));
  EXPECT_EQ(r.dataset, "d");
  EXPECT_EQ(r.rev, "feature");
}

TEST(ParseNewRefNameTest, RejectsAncestorsAndMissingAt) {
  EXPECT_EQ(ParseNewRefName("d@feature~1", "branch").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseNewRefName("d", "tag").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseNewRefName("d@", "tag").status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace tusk
