// Workspace sidecars (meta/<id>, store/workspace/workspace_core.h): the
// chunk list and state bytes of a partially copied-up file, read back from
// the store's workspace directory by the mount, status and commit.
//
// Properties: the encoding is canonical (what decodes encodes back to the
// input); the offsets the decoder derives are those of the chunk list; and
// the queries the read and truncate paths make on it stay in bounds.
#include "store/workspace/workspace_core.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  auto side = tusk::ws::Sidecar::Decode(in, "fuzz");
  if (!side.ok()) return 0;
  FUZZ_CHECK(side->Encode() == in);
  size_t n = side->chunks.size();
  FUZZ_CHECK(side->offsets.size() == n && side->state.size() == n);
  uint64_t pos = 0;
  for (size_t i = 0; i < n; i++) {
    FUZZ_CHECK(side->offsets[i] == pos);
    FUZZ_CHECK(side->state[i] <= 1);
    pos += side->chunks[i].length;
  }
  for (uint64_t at : {uint64_t{0}, uint64_t{1}, pos / 2, pos, pos + 1}) FUZZ_CHECK(side->FirstEndingAfter(at) <= n);
  (void)side->StoreBytes();
  side->CutAt(pos / 2);
  return 0;
}
