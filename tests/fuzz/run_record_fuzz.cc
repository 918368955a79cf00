// Run records (store/lineage/lineage.h, FORMAT.md "Run records"), read from
// packs by `tusk runs`, `tusk show run:ID`, gc, fsck and the index rebuild:
// DecodeRun.
//
// Property: a record that decodes re-encodes canonically (decode, encode,
// decode gives the same record, and encoding again the same bytes). Varints
// are read leniently (an overlong one decodes), as for commits, so the
// input itself need not be canonical; a record's id is the hash of its
// stored bytes either way.
#include "store/lineage/lineage.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto run = tusk::DecodeRun(tusk::fuzz::View(data, size));
  if (!run.ok()) return 0;
  FUZZ_CHECK(run->exit_status >= -1 && run->exit_status <= tusk::kRunMaxStatus);
  std::string encoded = tusk::EncodeRun(*run);
  FUZZ_CHECK(encoded.size() <= size);
  auto again = tusk::DecodeRun(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *run);
  FUZZ_CHECK(tusk::EncodeRun(*again) == encoded);
  return 0;
}
