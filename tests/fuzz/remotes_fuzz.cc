// The store's remotes file (store/remote/remote.h, FORMAT.md "Remotes"),
// read by every `tusk remote`, push and pull: DecodeRemotes.
//
// Property: a file that decodes re-encodes to a file that decodes to the
// same remotes, whose names and URLs pass the checks a new remote must.
#include "store/remote/remote.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto remotes = tusk::DecodeRemotes(tusk::fuzz::View(data, size));
  if (!remotes.ok()) return 0;
  for (const auto& r : *remotes) FUZZ_CHECK(tusk::CheckRemoteName(r.name).ok());
  std::string encoded = tusk::EncodeRemotes(*remotes);
  auto again = tusk::DecodeRemotes(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *remotes);
  FUZZ_CHECK(tusk::EncodeRemotes(*again) == encoded);
  return 0;
}
