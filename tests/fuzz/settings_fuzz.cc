// Dataset settings records (store/settings/settings.h, FORMAT.md
// "Settings"), read from packs by `tusk check`, `tusk table`, merges, every
// commit's checks, `tusk log`, gc and fsck: DecodeSettings.
//
// Property: a record that decodes re-encodes canonically (decode, encode,
// decode gives the same settings, and encoding again the same bytes; a
// format-1 record comes back in format 2); its
// check names are valid and sorted; a table rule has a pattern.
#include "store/settings/settings.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = tusk::DecodeSettings(tusk::fuzz::View(data, size));
  if (!s.ok()) return 0;
  for (size_t i = 0; i < s->checks.size(); i++) {
    FUZZ_CHECK(tusk::ValidateCheckName(s->checks[i].name).ok());
    FUZZ_CHECK(i == 0 || s->checks[i - 1].name < s->checks[i].name);
    FUZZ_CHECK(s->checks[i].builtin.empty() != s->checks[i].command.empty());
    (void)s->checks[i].Describe();
  }
  for (const auto& t : s->tables) {
    FUZZ_CHECK(!t.pattern.empty());
    (void)tusk::TableKeyFor(*s, t.pattern);
  }
  std::string encoded = tusk::EncodeSettings(*s);
  // A format-1 record is written back as format 2: two more bytes a rule
  // (its file format and key flag).
  FUZZ_CHECK(encoded.size() <= size + 2 * s->tables.size());
  auto again = tusk::DecodeSettings(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *s);
  FUZZ_CHECK(tusk::EncodeSettings(*again) == encoded);
  return 0;
}
