#include "store/ids.h"

#include <openssl/evp.h>

#include <cstring>
#include <stdexcept>

namespace tusk {

ObjectId ObjectId::FromBytes(const uint8_t* p) {
  ObjectId id;
  std::memcpy(id.bytes_.data(), p, kSize);
  return id;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<ObjectId> ObjectId::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) return std::nullopt;
  ObjectId id;
  for (size_t i = 0; i < kSize; i++) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

std::string ObjectId::Hex() const {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * kSize, '0');
  for (size_t i = 0; i < kSize; i++) {
    out[2 * i] = kDigits[bytes_[i] >> 4];
    out[2 * i + 1] = kDigits[bytes_[i] & 15];
  }
  return out;
}

bool ObjectId::IsZero() const {
  for (uint8_t b : bytes_)
    if (b) return false;
  return true;
}

struct Sha256::Ctx {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->ctx = EVP_MD_CTX_new();
  // Allocation failure of a few hundred bytes is not recoverable here.
  if (!ctx_->ctx || EVP_DigestInit_ex(ctx_->ctx, EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->ctx); }

void Sha256::Update(const void* data, size_t len) {
  if (EVP_DigestUpdate(ctx_->ctx, data, len) != 1) std::abort();
}

ObjectId Sha256::Finish() {
  ObjectId id;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_->ctx, id.data(), &len) != 1 || len != ObjectId::kSize) std::abort();
  if (EVP_DigestInit_ex(ctx_->ctx, EVP_sha256(), nullptr) != 1) std::abort();
  return id;
}

ObjectId Sha256::Of(const void* data, size_t len) {
  thread_local Sha256 hasher;
  hasher.Update(data, len);
  return hasher.Finish();
}

const char* ObjectTypeName(ObjectType type) {
  switch (type) {
    case ObjectType::kChunk: return "chunk";
    case ObjectType::kTree: return "tree";
    case ObjectType::kCommit: return "commit";
    case ObjectType::kRef: return "ref record";
    case ObjectType::kRun: return "run record";
    case ObjectType::kSettings: return "settings";
  }
  return "unknown";
}

ObjectId HashObject(ObjectType type, std::string_view encoding) {
  thread_local Sha256 hasher;
  const char* prefix = type == ObjectType::kTree   ? "tusk-tree"
                       : type == ObjectType::kRef  ? "tusk-ref"
                       : type == ObjectType::kRun  ? "tusk-run"
                       : type == ObjectType::kSettings ? "tusk-settings"
                                                   : "tusk-commit";
  hasher.Update(prefix, std::strlen(prefix) + 1);  // includes the NUL
  hasher.Update(encoding);
  return hasher.Finish();
}

}  // namespace tusk
