// Little-endian fixed-width integers and LEB128 varints for object encodings.
//
// Decoder never reads past its end: every getter returns false on truncated
// or malformed input, and the caller turns that into Corruption.
// Thread-safety: values.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace tusk {

class Encoder {
 public:
  void PutU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void PutFixed32(uint32_t v) { out_.append(reinterpret_cast<const char*>(&v), 4); }  // x86/arm64: little-endian
  void PutFixed64(uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), 8); }
  void PutVarint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void PutSigned(int64_t v) { PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void PutBytes(std::string_view s) { out_.append(s); }
  void PutString(std::string_view s) {
    PutVarint(s.size());
    out_.append(s);
  }
  std::string& buffer() { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool GetU8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool GetFixed32(uint32_t* v) { return GetRaw(v, 4); }
  bool GetFixed64(uint64_t* v) { return GetRaw(v, 8); }
  bool GetVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && !in_.empty(); shift += 7) {
      uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  template <typename T>
  bool GetVarintAs(T* v) {
    uint64_t x;
    if (!GetVarint(&x) || x > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
    *v = static_cast<T>(x);
    return true;
  }
  bool GetSigned(int64_t* v) {
    uint64_t x;
    if (!GetVarint(&x)) return false;
    *v = static_cast<int64_t>((x >> 1) ^ (~(x & 1) + 1));
    return true;
  }
  bool GetBytes(size_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool GetString(std::string_view* out) {
    uint64_t n;
    return GetVarint(&n) && n <= in_.size() && GetBytes(static_cast<size_t>(n), out);
  }
  bool empty() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

 private:
  bool GetRaw(void* v, size_t n) {
    if (in_.size() < n) return false;
    std::memcpy(v, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
};

}  // namespace tusk
