// A merge staged in a workspace (STORE/workspaces/D/B/merge, and inside
// workspace control-socket messages: store/workspace/workspace.h), read
// back by the mount, status, resolve and commit.
//
// Properties: the encoding is canonical (what decodes encodes back to the
// input), and the unresolved count is never more than the conflicts.
#include "store/workspace/workspace.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  auto merge = tusk::DecodeWsMerge(in, "fuzz");
  if (!merge.ok()) return 0;
  FUZZ_CHECK(tusk::EncodeWsMerge(*merge) == in);
  FUZZ_CHECK(merge->Unresolved() <= merge->conflicts.size());
  return 0;
}
