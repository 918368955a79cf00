// Ref records (store/internal/ref_record.h, FORMAT.md "Ref records"), read
// from packs by the index rebuild and by fsck: RefRecord::Decode.
//
// Properties: a record that decodes has valid names and re-encodes to
// exactly its input (one change, one encoding, one id).
#include "store/internal/ref_record.h"
#include "store/refs.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  auto r = tusk::RefRecord::Decode(in);
  if (!r.ok()) return 0;
  FUZZ_CHECK(r->Encode() == in);
  FUZZ_CHECK(tusk::ValidateName("dataset", r->dataset).ok());
  FUZZ_CHECK(r->is_dataset() ? r->name.empty() : tusk::ValidateName("ref", r->name).ok());
  return 0;
}
