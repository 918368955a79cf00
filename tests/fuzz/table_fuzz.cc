// Tables (store/merge/table.h) as read from any file: DiffTables and
// MergeTables over CSV, TSV and JSONL.
//
// Input: a mode byte (format, and whether to declare the key `id`), then
// base, ours and theirs separated by the byte 0x1E (record separator).
// Properties: nothing crashes; a clean merge's output is a table again;
// every conflicting merge's output is a table and holds the notation; a
// table merged with itself on both sides is itself, byte for byte; diffing
// a table with itself shows nothing.
#include "store/merge/table.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = tusk::fuzz::View(data, size);
  uint8_t mode = tusk::fuzz::TakeByte(&in);
  const tusk::TableFormat format = static_cast<tusk::TableFormat>(mode % 3);
  tusk::KeySpec key;
  if (mode & 4) key = std::vector<std::string>{"id"};
  std::string_view part[3];
  for (int i = 0; i < 3; i++) {
    size_t cut = in.find('\x1e');
    part[i] = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view() : in.substr(cut + 1);
  }
  auto self = tusk::DiffTables(part[0], part[0], format, key);
  if (self.ok()) {
    FUZZ_CHECK(self->rows.empty() && !self->reordered);
    auto same = tusk::MergeTables(part[0], part[0], part[0], format, key);
    FUZZ_CHECK(same.ok() && same->clean && same->merged == part[0]);
  }
  (void)tusk::DiffTables(part[0], part[1], format, key);
  auto m = tusk::MergeTables(part[0], part[1], part[2], format, key);
  if (!m.ok()) return 0;
  // The output is a table of the merged columns whatever happened (with no
  // key declared: a merge may leave repeated keys, e.g. a row inserted on
  // one side under a key the other side gave an existing row).
  FUZZ_CHECK(tusk::DiffTables(m->merged, m->merged, format, std::nullopt).ok());
  if (!m->clean) FUZZ_CHECK(tusk::HasConflictNotation(m->merged) || m->conflicts.empty());
  return 0;
}
