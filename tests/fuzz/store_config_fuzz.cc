// The store's config file (FORMAT.md "config"): StoreConfig::Parse.
//
// Properties: a config that parses is valid and re-encodes to text that
// parses to the same settings; and each setting is the number the text
// gives (the last occurrence of its key), never a truncation of it.
#include <map>
#include <sstream>

#include "store/repository.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(tusk::fuzz::View(data, size));
  auto config = tusk::StoreConfig::Parse(text, "config");
  if (!config.ok()) return 0;
  FUZZ_CHECK(config->Validate().ok());
  auto again = tusk::StoreConfig::Parse(config->Encode(), "config");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->Encode() == config->Encode());
  std::map<std::string, long long> last;
  std::istringstream in(text);
  std::string key;
  long long value;
  while (in >> key >> value) last[key] = value;
  for (const auto& [k, v] : last) {
    if (k == "chunk-min") FUZZ_CHECK(v == config->chunker.min_size);
    if (k == "chunk-avg") FUZZ_CHECK(v == config->chunker.avg_size);
    if (k == "chunk-max") FUZZ_CHECK(v == config->chunker.max_size);
    if (k == "compression-level") FUZZ_CHECK(v == config->compression_level);
  }
  return 0;
}
