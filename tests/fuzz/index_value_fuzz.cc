// Values of the LMDB index (FORMAT.md "LMDB index"): the `objects` table's
// locations, ObjectLocation::Decode.
//
// Property: the encoding is fixed-size and canonical, so whatever decodes
// encodes back to exactly the input.
#include "store/internal/pack.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  auto loc = tusk::ObjectLocation::Decode(in);
  if (!loc.ok()) return 0;
  FUZZ_CHECK(size == tusk::ObjectLocation::kEncodedSize);
  FUZZ_CHECK(loc->Encode() == in);
  return 0;
}
