// Shared by the fuzz targets: a check that aborts (so libFuzzer and the
// replay driver both report the input), and views of the input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// A property every input must have, whatever its bytes; a failure is a bug
// in tusk (or in the target), never in the input.
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace tusk::fuzz {

inline std::string_view View(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits off the first byte (a target's mode switches), "" when empty.
inline uint8_t TakeByte(std::string_view* in) {
  if (in->empty()) return 0;
  uint8_t b = static_cast<uint8_t>((*in)[0]);
  in->remove_prefix(1);
  return b;
}

}  // namespace tusk::fuzz
