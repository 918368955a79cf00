// Run records (store/lineage/lineage.h, FORMAT.md "Run records"), read from
// packs by `tusk runs`, `tusk show run:ID`, gc, fsck and the index rebuild:
// DecodeRun.
//
// Property: a record that decodes re-encodes to exactly its input (one run,
// one encoding, one id).
#include "store/lineage/lineage.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  auto run = tusk::DecodeRun(in);
  if (!run.ok()) return 0;
  FUZZ_CHECK(tusk::EncodeRun(*run) == in);
  FUZZ_CHECK(run->exit_status >= -1 && run->exit_status <= tusk::kRunMaxStatus);
  return 0;
}
