// Tree pages (FORMAT.md "Tree pages") as read from a pack: DecodeTreePage.
//
// Properties: a page that decodes re-encodes to a page that decodes to the
// same value, and encoding is idempotent (the encoder is canonical; the
// decoder also accepts over-long varints, so the bytes need not match the
// input); every entry the decoder accepts passes CheckEntry (what a reader
// accepts a writer may write back) and a file's chunk lengths add up to its
// size without wrapping.
#include "store/objects.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using tusk::TreePage;

bool SamePage(const TreePage& a, const TreePage& b) {
  if (a.is_index != b.is_index || a.entries != b.entries || a.children.size() != b.children.size()) return false;
  for (size_t i = 0; i < a.children.size(); i++) {
    const auto &x = a.children[i], &y = b.children[i];
    if (x.first_name != y.first_name || x.id != y.id || x.entry_count != y.entry_count) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto page = tusk::DecodeTreePage(tusk::fuzz::View(data, size));
  if (!page.ok()) return 0;
  for (const auto& e : page->entries) {
    FUZZ_CHECK(tusk::CheckEntry(e).ok());
    if (e.kind != tusk::EntryKind::kFile) continue;
    uint64_t total = 0;
    bool wrapped = false;
    for (const auto& c : e.chunks) wrapped |= __builtin_add_overflow(total, c.length, &total);
    FUZZ_CHECK(!wrapped && total == e.size);
  }
  std::string encoded = tusk::EncodeTreePage(*page);
  FUZZ_CHECK(encoded.size() <= size);
  auto again = tusk::DecodeTreePage(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SamePage(*page, *again));
  FUZZ_CHECK(tusk::EncodeTreePage(*again) == encoded);
  return 0;
}
