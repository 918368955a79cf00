// Pack files: append-only containers of records (chunks, trees, commits).
//
// A pack is self-describing: every record carries a header with its type,
// codec, lengths, id and checksums, so a pack can be scanned and the index
// rebuilt from it alone, and a sealed pack ends with a footer listing all its
// records so the scan is one read. Packs are immutable once sealed. See
// store/FORMAT.md for the byte layout.
//
// All pack access goes through PackDirectory, the one place that knows packs
// live in a local directory (the seam for object storage later).
//
// Thread-safety: PackDirectory is thread-safe. A PackWriter is not: its owner
// serializes calls.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/ids.h"
#include "store/internal/codec.h"
#include "store/internal/file.h"
#include "store/status.h"

namespace tusk {

using PackId = uint64_t;
std::string PackName(PackId id);  // 16 lowercase hex digits

// Where one record lives, as kept in the LMDB index.
struct ObjectLocation {
  PackId pack = 0;
  uint64_t offset = 0;  // of the record header
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
  ObjectType type = ObjectType::kChunk;
  Codec codec = Codec::kRaw;

  static constexpr size_t kEncodedSize = 26;
  std::string Encode() const;
  static Result<ObjectLocation> Decode(std::string_view bytes);
};

struct PackRecord {
  ObjectId id;
  ObjectLocation location;
};

inline constexpr size_t kPackHeaderSize = 16;
inline constexpr size_t kRecordHeaderSize = 56;

// Raw (uncompressed) records longer than one block carry, after their
// payload, a CRC-32C of every kCrcBlockSize block, so a small read can fetch
// and verify just the blocks it touches instead of the whole chunk.
inline constexpr size_t kCrcBlockSize = 16 * 1024;
inline bool HasBlockCrcs(Codec codec, size_t stored_len) { return codec == Codec::kRaw && stored_len > kCrcBlockSize; }
inline size_t BlockCrcTableSize(Codec codec, size_t stored_len) {
  return HasBlockCrcs(codec, stored_len) ? (stored_len + kCrcBlockSize - 1) / kCrcBlockSize * 4 : 0;
}
std::string BlockCrcTable(std::string_view stored);

class PackDirectory {
 public:
  explicit PackDirectory(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  std::string PathOf(PackId id) const;

  // Reads one record, checks its header against `loc` and `id`, verifies the
  // CRC-32C of the stored bytes and decompresses. With verify_hash the
  // plaintext is also re-hashed (chunks only; trees and commits are hashed
  // by their decoder's caller).
  Status ReadRecord(const ObjectId& id, const ObjectLocation& loc, bool verify_hash, std::string* plaintext);
  // Reads a record's stored (possibly compressed) bytes, checking the header
  // and the CRC only; gc copies records between packs this way.
  Status ReadStored(const ObjectId& id, const ObjectLocation& loc, std::string* stored);
  // Reads bytes [offset, offset+len) of a raw record that has block CRCs,
  // verifying the header and every block touched.
  Status ReadRawRange(const ObjectId& id, const ObjectLocation& loc, uint64_t offset, size_t len, std::string* out);

  // Lists every record in a pack: from the footer when sealed, else by
  // scanning record headers (an unsealed, crashed pack).
  Result<std::vector<PackRecord>> ListRecords(PackId id);
  Result<std::vector<PackId>> ListPacks() const;
  Status Remove(PackId id);
  Result<uint64_t> SizeOf(PackId id) const;

 private:
  Result<std::shared_ptr<Fd>> OpenForRead(PackId id);
  std::string dir_;
  std::mutex mu_;
  std::unordered_map<PackId, std::shared_ptr<Fd>> open_;  // guarded by mu_
};

// Writes one pack. After the first failed write every further call fails
// with the same status (a broken writer stays broken).
class PackWriter {
 public:
  static Result<std::unique_ptr<PackWriter>> Create(PackDirectory* packs);
  ~PackWriter();

  // Appends a record whose payload is already encoded with `codec`;
  // `stored_crc` is Crc32c(stored) and `block_crcs` BlockCrcTable(stored) when
  // the record needs one (computed here if empty), both computed by the
  // caller outside any lock where it can.
  Result<ObjectLocation> Append(ObjectType type, const ObjectId& id, Codec codec, uint32_t raw_len,
                                std::string_view stored, uint32_t stored_crc, std::string_view block_crcs = {});
  // Writes the footer and makes the whole pack durable (file and directory).
  Status Seal();

  PackId id() const { return id_; }
  uint64_t size() const { return size_; }
  bool empty() const { return records_.empty(); }
  const std::vector<PackRecord>& records() const { return records_; }

 private:
  PackWriter(PackDirectory* packs, PackId id, Fd fd) : packs_(packs), id_(id), fd_(std::move(fd)) {}
  Status FlushBuffer();
  PackDirectory* packs_;
  PackId id_;
  Fd fd_;
  std::string path_;
  uint64_t size_ = 0;  // bytes appended, including buffered ones
  std::string buffer_;
  std::vector<PackRecord> records_;
  Status broken_;
  bool sealed_ = false;
};

}  // namespace tusk
