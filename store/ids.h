// Object ids and hashing.
//
// An ObjectId is a 32-byte SHA-256 digest. Chunk ids are the SHA-256 of the
// chunk's plaintext. Tree and commit ids are the SHA-256 of a type prefix
// ("tusk-tree\0" or "tusk-commit\0") followed by the object's encoding, so a
// chunk can never be mistaken for a tree with the same bytes.
//
// Thread-safety: ObjectId is a value. A Sha256 instance is single-threaded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tusk {

class ObjectId {
 public:
  static constexpr size_t kSize = 32;
  ObjectId() { bytes_.fill(0); }
  static ObjectId FromBytes(const uint8_t* p);
  // Parses exactly 64 hex digits.
  static std::optional<ObjectId> FromHex(std::string_view hex);

  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* data() { return bytes_.data(); }
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes_.data()), kSize}; }
  std::string Hex() const;
  std::string ShortHex(size_t n = 12) const { return Hex().substr(0, n); }
  bool IsZero() const;

  auto operator<=>(const ObjectId&) const = default;

 private:
  std::array<uint8_t, kSize> bytes_;
};

struct ObjectIdHash {
  size_t operator()(const ObjectId& id) const {
    size_t h;
    static_assert(sizeof(h) <= ObjectId::kSize);
    __builtin_memcpy(&h, id.data(), sizeof(h));  // already uniformly distributed
    return h;
  }
};

// Incremental SHA-256 over OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  ObjectId Finish();  // the instance may be reused after Finish

  static ObjectId Of(const void* data, size_t len);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// kRef: a ref-update record (store/internal/ref_record.h), format 2 on.
// kRun: a run record (store/lineage/lineage.h), format 3 on.
// kSettings: a version of a dataset's settings (store/settings/settings.h),
// format 4 on.
enum class ObjectType : uint8_t { kChunk = 1, kTree = 2, kCommit = 3, kRef = 4, kRun = 5, kSettings = 6 };
const char* ObjectTypeName(ObjectType type);

// The id of a tree or commit: SHA-256 of its domain prefix and its encoding.
ObjectId HashObject(ObjectType type, std::string_view encoding);

}  // namespace tusk
