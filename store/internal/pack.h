// Pack files: append-only containers of records (chunks, trees, commits).
//
// A pack is self-describing: every record carries a header with its type,
// codec, lengths, id and checksums, so a pack can be scanned and the index
// rebuilt from it alone, and a sealed pack ends with a footer listing all its
// records so the scan is one read. Packs are immutable once sealed. See
// store/FORMAT.md for the byte layout.
//
// All pack access goes through PackDirectory, which reads and writes pack
// bytes only through a PackStore (store/backend/pack_store.h, the pack
// seam): local files on the file seam of store/backend/env.h by default.
//
// Thread-safety: PackDirectory is thread-safe. A PackWriter is not: its owner
// serializes calls.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/backend/env.h"
#include "store/backend/pack_store.h"
#include "store/ids.h"
#include "store/internal/codec.h"
#include "store/internal/file.h"
#include "store/status.h"

namespace tusk {

// Tests only: runs `hook` before every pack is opened for reading, to make
// something happen between an index lookup and the open (a gc).
void SetBeforePackOpenForTesting(std::function<void(PackId)> hook);

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
// Footer entry: id 32, offset 8, raw_len 4, stored_len 4, type 1, codec 1,
// two zero bytes. Trailer: footer offset 8, count 4, footer CRC 4, magic 8.
inline constexpr size_t kFooterEntrySize = 52;
inline constexpr size_t kTrailerSize = 24;

// Records a small read can fetch part of carry a range table after their
// payload, so the read touches and verifies only what it needs:
// - raw records longer than one block: a CRC-32C of every kCrcBlockSize block;
// - kZstdFrames records: for every frame, its end offset in the payload and
//   the CRC-32C of its compressed bytes.
inline constexpr size_t kCrcBlockSize = 16 * 1024;
inline bool HasRangeTable(Codec codec, size_t stored_len) {
  return (codec == Codec::kRaw && stored_len > kCrcBlockSize) || codec == Codec::kZstdFrames;
}
// Bytes of a record in its pack: header, payload and range table.
uint64_t RecordExtent(const ObjectLocation& loc);
inline size_t RangeTableSize(Codec codec, size_t stored_len, size_t raw_len) {
  if (codec == Codec::kZstdFrames) return FrameCount(raw_len) * 8;
  return HasRangeTable(codec, stored_len) ? (stored_len + kCrcBlockSize - 1) / kCrcBlockSize * 4 : 0;
}
// The range table of a payload (empty when the record has none); Corruption
// when a kZstdFrames payload is not made of the frames it should be.
Result<std::string> RangeTable(Codec codec, std::string_view stored, size_t raw_len);

class PackDirectory {
 public:
  // Packs as local files in `dir` (NewLocalPackStore), through `env`.
  explicit PackDirectory(std::string dir, Env* env = Env::Default()) : store_(NewLocalPackStore(std::move(dir), env)) {}
  explicit PackDirectory(std::unique_ptr<PackStore> store) : store_(std::move(store)) {}
  // Where the pack is, for messages and tests (a path, for local packs).
  std::string PathOf(PackId id) const;

  // Reads one record, checks its header against `loc` and `id`, verifies the
  // CRC-32C of the stored bytes and decompresses. With verify_hash the
  // plaintext is also re-hashed (chunks only; trees and commits are hashed
  // by their decoder's caller). Reads return NotFound when the pack does not
  // exist (gc may have moved the record since the caller looked it up).
  Status ReadRecord(const ObjectId& id, const ObjectLocation& loc, bool verify_hash, std::string* plaintext);
  // Reads the records of one pack (`records`: ids and their locations) with
  // one read of the bytes from the first to the end of the last, gaps
  // included, and hands each, checked as ReadRecord checks it, to `each`
  // (in the order given), stopping at the first error. For remote packs:
  // neighbouring records in one ranged request.
  // `each` gets the record's bytes in the pack (header, payload, range
  // table) beside its plaintext.
  struct SpanRecord {
    const ObjectId& id;
    const ObjectLocation& loc;
    std::string_view record;  // checked
    std::string& plaintext;   // may be moved from
  };
  Status ReadRecords(PackId pack, const std::vector<std::pair<ObjectId, ObjectLocation>>& records, bool verify_hash,
                     const std::function<Status(const SpanRecord&)>& each);
  // The header of a pack (kPackHeaderSize bytes, checked), and its size,
  // as read when it was opened.
  Result<std::string> PackHeader(PackId id);
  Result<uint64_t> OpenedSize(PackId id);
  // Whether the pack holds the record `loc` says, judged by its header
  // alone (a cheap test for a sparse copy of a pack: a hole reads as zeros
  // and is no header); false when the pack does not exist.
  Result<bool> HoldsRecord(const ObjectId& id, const ObjectLocation& loc);
  // Drops what is cached of an open pack, so that the next read opens the
  // file again (it was replaced).
  void Forget(PackId id);
  // Reads a record's stored (possibly compressed) bytes, checking the header
  // and the CRC only; gc copies records between packs this way.
  Status ReadStored(const ObjectId& id, const ObjectLocation& loc, std::string* stored);
  // Reads plaintext bytes [offset, offset+len) of a record with a range
  // table, verifying every block or frame touched. The record's header is
  // checked and its table loaded on the first range read of the record; both
  // are then kept (bounded), so later small reads of it cost one pread.
  Status ReadRange(const ObjectId& id, const ObjectLocation& loc, uint64_t offset, size_t len, std::string* out);

  // Lists every record in a pack: from the footer when sealed, else by
  // scanning record headers (an unsealed, crashed pack). `sealed`, when
  // given, tells which of the two it was.
  Result<std::vector<PackRecord>> ListRecords(PackId id, bool* sealed = nullptr);
  // Checks the structure of a sealed pack, as fsck does: the header (magic,
  // version, flags), the trailer (magic, footer offset and count consistent
  // with the file size, footer CRC), every record header walked from the
  // start, and that the footer lists exactly those records (same ids,
  // offsets, types, codecs and lengths, in file order), the last ending
  // where the footer begins. Payloads are not read (record reads check
  // those). Returns one sentence per problem found, none when the pack is
  // sound; a Status only when the pack cannot be read at all (NotFound when
  // it does not exist).
  Result<std::vector<std::string>> CheckPack(PackId id);
  Result<std::vector<PackId>> ListPacks() const;
  Status Remove(PackId id);
  Result<uint64_t> SizeOf(PackId id) const;
  // Whether the pack ends with a valid trailer: magic, a footer that fits
  // the file and whose checksum holds. A pack without one was never sealed
  // (its writer died or failed), or its end is damaged.
  Result<bool> HasValidTrailer(PackId id) const;

 private:
  // A pack opened for reading, its header checked; `size` bounds every
  // offset and length taken from the index or a record header.
  struct OpenPack {
    std::unique_ptr<RandomAccessFile> file;
    uint64_t size = 0;
    std::string header;  // kPackHeaderSize bytes, checked
  };
  Result<std::shared_ptr<OpenPack>> OpenForRead(PackId id);
  Result<std::shared_ptr<const std::string>> LoadRangeTable(const OpenPack& pack, const ObjectId& id,
                                                            const ObjectLocation& loc, const std::string& where);
  friend class PackWriter;
  std::unique_ptr<PackStore> store_;
  std::mutex mu_;
  std::unordered_map<PackId, std::shared_ptr<OpenPack>> open_;  // guarded by mu_
  // Range tables of records read in part, by (pack, offset); guarded by mu_.
  std::map<std::pair<PackId, uint64_t>, std::shared_ptr<const std::string>> range_tables_;
};

// Writes one pack. After the first failed write every further call fails
// with the same status (a broken writer stays broken).
class PackWriter {
 public:
  static Result<std::unique_ptr<PackWriter>> Create(PackDirectory* packs);
  // A pack with the given id (AlreadyExists when taken): a push names the
  // packs it repacks after their contents, so a resumed push finds them.
  static Result<std::unique_ptr<PackWriter>> CreateWithId(PackDirectory* packs, PackId id);
  ~PackWriter();

  // Appends a record whose payload is already encoded with `codec`;
  // `stored_crc` is Crc32c(stored) and `range_table` RangeTable(...) when the
  // record needs one (computed here if empty), both computed by the caller
  // outside any lock where it can.
  Result<ObjectLocation> Append(ObjectType type, const ObjectId& id, Codec codec, uint32_t raw_len,
                                std::string_view stored, uint32_t stored_crc, std::string_view range_table = {});
  // Writes the footer and makes the whole pack durable (file and directory).
  Status Seal();
  // Makes the records appended so far durable without sealing, so that a
  // later Seal (under the index's write lock) has little left to sync.
  Status Sync();

  PackId id() const { return id_; }
  uint64_t size() const { return size_; }
  bool empty() const { return records_.empty(); }
  const std::vector<PackRecord>& records() const { return records_; }

 private:
  PackWriter(PackId id, std::unique_ptr<PackSink> sink) : id_(id), sink_(std::move(sink)) {}
  Status FlushBuffer();
  PackId id_;
  std::unique_ptr<PackSink> sink_;  // reset once sealed
  uint64_t size_ = 0;  // bytes appended, including buffered ones
  std::string buffer_;
  std::vector<PackRecord> records_;
  Status broken_;
  bool sealed_ = false;
};

}  // namespace tusk
