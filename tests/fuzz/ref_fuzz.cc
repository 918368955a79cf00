// Ref text (store/refs.h), which comes from command lines, mount options and
// the mount's directory names: ParseRef and ParseNewRefName.
//
// Input: a mode byte (bit 0: allow a bare dataset; bit 1: ParseNewRefName),
// then the text. Properties: what parses has valid names, and the ref
// written back canonically ("DATASET@REV~N") parses to the same ref.
#include "store/refs.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  uint8_t mode = tusk::fuzz::TakeByte(&in);
  if (mode & 2) {
    auto spec = tusk::ParseNewRefName(in, (mode & 4) ? "tag" : "branch");
    if (!spec.ok()) return 0;
    FUZZ_CHECK(spec->dataset + "@" + spec->rev == in);
    FUZZ_CHECK(spec->ancestors == 0);
    FUZZ_CHECK(tusk::ValidateName("dataset", spec->dataset).ok());
    FUZZ_CHECK(tusk::ValidateName("branch", spec->rev).ok());
    return 0;
  }
  auto spec = tusk::ParseRef(in, mode & 1);
  if (!spec.ok()) return 0;
  FUZZ_CHECK(spec->text == in);
  FUZZ_CHECK(tusk::ValidateName("dataset", spec->dataset).ok());
  if (!spec->rev.empty()) FUZZ_CHECK(tusk::ValidateName("ref", spec->rev).ok());
  std::string canonical = spec->dataset + "@" + (spec->rev.empty() ? "main" : spec->rev);
  if (spec->ancestors) canonical += "~" + std::to_string(spec->ancestors);
  auto again = tusk::ParseRef(canonical, false);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->dataset == spec->dataset && again->ancestors == spec->ancestors);
  FUZZ_CHECK(again->rev == (spec->rev.empty() ? "main" : spec->rev));
  return 0;
}
