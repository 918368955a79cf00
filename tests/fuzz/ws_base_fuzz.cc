// A workspace's `base` (and `next`) file, store/workspace/workspace.h:
// ws::ParseIdFile.
//
// Property: what parses is "none" or a commit id, and writing it back the
// way the workspace does ("<hex>\n" or "none\n") parses to the same value.
#include "store/workspace/workspace_core.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto id = tusk::ws::ParseIdFile(tusk::fuzz::View(data, size), "base");
  if (!id.ok()) return 0;
  std::string written = (*id ? (*id)->Hex() : std::string("none")) + "\n";
  auto again = tusk::ws::ParseIdFile(written, "base");
  FUZZ_CHECK(again.ok() && *again == *id);
  return 0;
}
