// Helpers shared by the store tests: temporary directories, file writing and
// deterministic pseudo-random bytes. Header-only; each test binary includes it.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "store/status.h"

namespace tusk::test_util {

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/tusk-store-test-XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(std::string_view rel) const { return path_ + "/" + std::string(rel); }

 private:
  std::string path_;
};

// Deterministic bytes that do not compress.
inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; i++) out[i] = static_cast<char>(rng());
  return out;
}

inline void WriteFile(const std::string& path, std::string_view content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace tusk::test_util

namespace tusk {
// Lets gtest print codes by name in failure messages.
inline void PrintTo(Status::Code code, std::ostream* os) {
  static const char* const kNames[] = {"kOk",       "kNotFound", "kAlreadyExists", "kInvalidArgument",
                                       "kCorruption", "kIoError", "kNoSpace",       "kConflict",
                                       "kReadOnly",  "kUnsupported", "kBusy"};
  size_t i = static_cast<size_t>(code);
  *os << (i < sizeof kNames / sizeof kNames[0] ? kNames[i] : "unknown code");
}
}  // namespace tusk

// gtest helpers for Status and Result<T>.
#define TUSK_ASSERT_OK(expr)                                  \
  do {                                                        \
    const ::tusk::Status _s = (expr);                         \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.ToString();   \
  } while (0)
#define TUSK_EXPECT_OK(expr)                                  \
  do {                                                        \
    const ::tusk::Status _s = (expr);                         \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s.ToString();   \
  } while (0)

// Unwraps a Result<T> into `lhs`, failing the test (fatally) on error.
#define TUSK_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  TUSK_ASSERT_OK_AND_ASSIGN_IMPL(TUSK_CONCAT(_test_res_, __LINE__), lhs, expr)
#define TUSK_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                      \
  auto tmp = (expr);                                                        \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status().ToString();        \
  lhs = std::move(tmp).value()
