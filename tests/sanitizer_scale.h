// How much of a randomized or exhaustive campaign a test runs by default.
//
// A sanitizer build runs every command several times slower (ASan + UBSan,
// ThreadSanitizer), and its pass of the suite looks for memory and thread
// errors, which every kind of input reaches in fewer trials. The normal
// build's pass runs each campaign in full; every campaign's size can still be
// set by its environment variable (see each test), and `tools/test.sh --long`
// runs the big ones far past these defaults.
#pragma once

#include <cstdint>
#include <cstdlib>

namespace tusk::test_scale {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

// `normal` in the normal build, `sanitized` in a sanitizer build.
template <typename T>
constexpr T ForThisBuild(T normal, T sanitized) {
  return kSanitizerBuild ? sanitized : normal;
}

// The decimal number in the environment variable `name` (a campaign's size
// or seed), or `fallback` when it is unset or empty.
inline uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace tusk::test_scale
