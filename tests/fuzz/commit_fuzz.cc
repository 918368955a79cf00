// Commit objects (FORMAT.md "Commits"): DecodeCommit.
//
// Property: a commit that decodes re-encodes canonically (decode, encode,
// decode gives the same commit, and encoding again the same bytes).
#include "store/objects.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto commit = tusk::DecodeCommit(tusk::fuzz::View(data, size));
  if (!commit.ok()) return 0;
  std::string encoded = tusk::EncodeCommit(*commit);
  FUZZ_CHECK(encoded.size() <= size);
  auto again = tusk::DecodeCommit(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *commit);
  FUZZ_CHECK(tusk::EncodeCommit(*again) == encoded);
  return 0;
}
