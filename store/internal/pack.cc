#include "store/internal/pack.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <cstring>

#include "store/internal/crc32c.h"
#include "store/internal/varint.h"

namespace tusk {
namespace {

constexpr char kPackMagic[8] = {'T', 'U', 'S', 'K', 'P', 'A', 'C', 'K'};
constexpr char kTrailerMagic[8] = {'T', 'U', 'S', 'K', 'E', 'N', 'D', '1'};
constexpr uint32_t kPackVersion = 1;
constexpr uint32_t kRecordMagic = 0x31435254;  // "TRC1" little-endian
constexpr size_t kWriteBufferSize = 4 << 20;

struct RecordHeader {
  ObjectType type;
  Codec codec;
  uint8_t flags;  // kFlagRangeTable
  uint32_t raw_len;
  uint32_t stored_len;
  ObjectId id;
  uint32_t payload_crc;
};

// Whether a record's header is the record the index (or a footer) says is
// at `loc`.
bool MatchesLocation(const RecordHeader& h, const ObjectId& id, const ObjectLocation& loc) {
  return h.id == id && h.type == loc.type && h.codec == loc.codec && h.raw_len == loc.raw_len &&
         h.stored_len == loc.stored_len;
}

std::string EncodeRecordHeader(const RecordHeader& h) {
  Encoder e;
  e.PutFixed32(kRecordMagic);
  e.PutU8(static_cast<uint8_t>(h.type));
  e.PutU8(static_cast<uint8_t>(h.codec));
  e.PutU8(h.flags);
  e.PutU8(0);
  e.PutFixed32(h.raw_len);
  e.PutFixed32(h.stored_len);
  e.PutBytes(h.id.view());
  e.PutFixed32(h.payload_crc);
  e.PutFixed32(Crc32c(e.buffer().data(), e.buffer().size()));
  return e.Take();
}

constexpr uint8_t kFlagRangeTable = 1;

// 4: ref records (format 2), 5: run records (format 3), 6: settings (format 4)
bool ValidType(uint8_t t) { return t >= 1 && t <= 6; }

Result<RecordHeader> DecodeRecordHeader(std::string_view bytes, const std::string& where) {
  if (bytes.size() != kRecordHeaderSize) return Status::Corruption(where + ": short record header");
  uint32_t crc;
  std::memcpy(&crc, bytes.data() + kRecordHeaderSize - 4, 4);
  if (Crc32c(bytes.data(), kRecordHeaderSize - 4) != crc) return Status::Corruption(where + ": record header checksum mismatch");
  Decoder d(bytes);
  uint32_t magic;
  uint8_t type = 0, codec = 0, r0 = 0, r1 = 0;
  RecordHeader h;
  std::string_view id;
  if (!d.GetFixed32(&magic) || magic != kRecordMagic || !d.GetU8(&type) || !d.GetU8(&codec) || !d.GetU8(&r0) ||
      !d.GetU8(&r1) || !d.GetFixed32(&h.raw_len) || !d.GetFixed32(&h.stored_len) || !d.GetBytes(32, &id) ||
      !d.GetFixed32(&h.payload_crc) || !ValidType(type) || !ValidCodec(codec))
    return Status::Corruption(where + ": bad record header");
  h.type = static_cast<ObjectType>(type);
  h.codec = static_cast<Codec>(codec);
  h.flags = r0;
  h.id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
  // A raw payload is the plaintext: its two lengths are one.
  if (h.codec == Codec::kRaw && h.raw_len != h.stored_len) return Status::Corruption(where + ": bad record lengths");
  // The range-table flag is implied by codec and length; anything else is damage.
  if (h.flags != (HasRangeTable(h.codec, h.stored_len) ? kFlagRangeTable : 0))
    return Status::Corruption(where + ": bad record flags");
  return h;
}

std::string EncodeFooterEntry(const PackRecord& r) {
  Encoder e;
  e.PutBytes(r.id.view());
  e.PutFixed64(r.location.offset);
  e.PutFixed32(r.location.raw_len);
  e.PutFixed32(r.location.stored_len);
  e.PutU8(static_cast<uint8_t>(r.location.type));
  e.PutU8(static_cast<uint8_t>(r.location.codec));
  e.PutU8(0);
  e.PutU8(0);
  return e.Take();
}

// The 16-byte pack header. A version or flags this tusk does not know is
// Unsupported (a newer writer, or damage): never read as version 1.
Status CheckPackHeader(std::string_view header, const std::string& where) {
  uint32_t version, flags;
  std::memcpy(&version, header.data() + 8, 4);
  std::memcpy(&flags, header.data() + 12, 4);
  if (header.compare(0, 8, std::string_view(kPackMagic, 8)) != 0)
    return Status::Corruption(where + ": not a pack (bad magic in the header)");
  if (version != kPackVersion)
    return Status::Unsupported(where + ": pack format version " + std::to_string(version) +
                               " is not supported by this tusk (it reads version " + std::to_string(kPackVersion) +
                               "); written by a newer tusk, or the header is damaged");
  if (flags != 0)
    return Status::Unsupported(where + ": pack header flags " + std::to_string(flags) +
                               " are unknown to this tusk; written by a newer tusk, or the header is damaged");
  return Status::Ok();
}

// Whether a record at `loc` (header, payload, range table) lies inside a
// pack of `pack_size` bytes, after its header: offsets and lengths come from
// the index or from disk and are checked before they size any buffer.
Status CheckExtent(const ObjectLocation& loc, uint64_t pack_size, const std::string& where) {
  uint64_t len = kRecordHeaderSize + uint64_t{loc.stored_len} + RangeTableSize(loc.codec, loc.stored_len, loc.raw_len);
  if (loc.offset < kPackHeaderSize || loc.offset > pack_size || len > pack_size - loc.offset)
    return Status::Corruption(where + ": the record (" + std::to_string(len) + " bytes) does not lie within the pack (" +
                              std::to_string(pack_size) + " bytes)");
  return Status::Ok();
}

}  // namespace

std::string ObjectLocation::Encode() const {
  Encoder e;
  e.PutFixed64(pack);
  e.PutFixed64(offset);
  e.PutFixed32(stored_len);
  e.PutFixed32(raw_len);
  e.PutU8(static_cast<uint8_t>(type));
  e.PutU8(static_cast<uint8_t>(codec));
  return e.Take();
}

Result<ObjectLocation> ObjectLocation::Decode(std::string_view bytes) {
  Decoder d(bytes);
  ObjectLocation loc;
  uint8_t type = 0, codec = 0;
  if (bytes.size() != kEncodedSize || !d.GetFixed64(&loc.pack) || !d.GetFixed64(&loc.offset) ||
      !d.GetFixed32(&loc.stored_len) || !d.GetFixed32(&loc.raw_len) || !d.GetU8(&type) || !d.GetU8(&codec) ||
      !ValidType(type) || !ValidCodec(codec) || (codec == 0 && loc.stored_len != loc.raw_len))
    return Status::Corruption("bad index entry");
  loc.type = static_cast<ObjectType>(type);
  loc.codec = static_cast<Codec>(codec);
  return loc;
}

std::string PackDirectory::PathOf(PackId id) const { return store_->Describe(id); }

namespace {
std::function<void(PackId)> g_before_open_for_testing;
}  // namespace

void SetBeforePackOpenForTesting(std::function<void(PackId)> hook) { g_before_open_for_testing = std::move(hook); }

Result<std::shared_ptr<PackDirectory::OpenPack>> PackDirectory::OpenForRead(PackId id) {
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(id);
    if (it != open_.end()) return it->second;
  }
  if (g_before_open_for_testing) g_before_open_for_testing(id);
  std::string path = PathOf(id);
  auto file = store_->Open(id);
  if (!file.ok()) {
    // NotFound, not Corruption: a concurrent gc may have moved the record
    // and deleted the pack since the caller looked it up (it looks again).
    if (file.status().code() == Status::Code::kNotFound)
      return Status::NotFound("pack " + PackName(id) + " is missing (" + path + ")");
    return file.status();
  }
  auto pack = std::make_shared<OpenPack>();
  pack->file = std::move(file).value();
  pack->size = pack->file->size();
  // Checked once per open: a pack of another format is never read as ours.
  char header[kPackHeaderSize];
  if (pack->size < kPackHeaderSize) return Status::Corruption(path + ": not a pack (too short)");
  TUSK_RETURN_IF_ERROR(pack->file->Read(0, sizeof header, header));
  TUSK_RETURN_IF_ERROR(CheckPackHeader(std::string_view(header, sizeof header), path));
  pack->header.assign(header, sizeof header);
  // Bound the number of cached descriptors; any one may be dropped since
  // callers hold their own shared_ptr while reading.
  std::lock_guard lock(mu_);
  if (open_.size() >= 256) open_.erase(open_.begin());
  return open_.emplace(id, pack).first->second;  // a racing open may have won
}

Status PackDirectory::ReadStored(const ObjectId& id, const ObjectLocation& loc, std::string* stored) {
  std::string where = "pack " + PackName(loc.pack) + " offset " + std::to_string(loc.offset) + " (" +
                      ObjectTypeName(loc.type) + " " + id.Hex() + ")";
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<OpenPack> fd, OpenForRead(loc.pack));
  TUSK_RETURN_IF_ERROR(CheckExtent(loc, fd->size, where));
  // Header and payload in one system call, each into its own buffer.
  char header[kRecordHeaderSize];
  stored->resize(loc.stored_len);
  TUSK_RETURN_IF_ERROR(fd->file->Read2(loc.offset, header, sizeof header, stored->data(), stored->size()).Annotate(where));
  TUSK_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(std::string_view(header, sizeof header), where));
  if (!MatchesLocation(h, id, loc))
    return Status::Corruption(where + ": record header does not match the index");
  if (Crc32c(stored->data(), stored->size()) != h.payload_crc) return Status::Corruption(where + ": checksum mismatch");
  return Status::Ok();
}

Result<std::string> RangeTable(Codec codec, std::string_view stored, size_t raw_len) {
  Encoder e;
  if (codec == Codec::kZstdFrames) {
    std::vector<uint32_t> ends;
    TUSK_RETURN_IF_ERROR(FrameEnds(stored, raw_len, &ends));
    uint32_t start = 0;
    for (uint32_t end : ends) {
      e.PutFixed32(end);
      e.PutFixed32(Crc32c(stored.data() + start, end - start));
      start = end;
    }
  } else if (HasRangeTable(codec, stored.size())) {
    for (size_t at = 0; at < stored.size(); at += kCrcBlockSize)
      e.PutFixed32(Crc32c(stored.data() + at, std::min(kCrcBlockSize, stored.size() - at)));
  }
  return e.Take();
}

namespace {

uint32_t Fixed32At(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}

// The part of a raw record's payload (starting at file offset `payload`) that
// covers [offset, offset+len), checked against the block CRCs in `table`.
Status ReadRawBlocks(const RandomAccessFile& file, const ObjectLocation& loc, const std::string& table, uint64_t payload, uint64_t offset,
                     size_t len, const std::string& where, std::string* out) {
  uint64_t first = offset / kCrcBlockSize, last = (offset + len - 1) / kCrcBlockSize;
  uint64_t start = first * kCrcBlockSize, end = std::min<uint64_t>((last + 1) * kCrcBlockSize, loc.stored_len);
  thread_local std::string blocks;
  blocks.resize(end - start);
  TUSK_RETURN_IF_ERROR(file.Read(payload + start, blocks.size(), blocks.data()).Annotate(where));
  for (uint64_t b = first; b <= last; b++) {
    uint64_t at = (b - first) * kCrcBlockSize;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kCrcBlockSize, blocks.size() - at));
    if (Crc32c(blocks.data() + at, n) != Fixed32At(table, b * 4))
      return Status::Corruption(where + ": checksum mismatch in block " + std::to_string(b));
  }
  out->assign(blocks, offset - start, len);
  return Status::Ok();
}

// The frames of a kZstdFrames record that cover [offset, offset+len), checked
// against `table` and decompressed.
Status ReadFrames(const RandomAccessFile& file, const ObjectLocation& loc, const std::string& table, uint64_t payload, uint64_t offset,
                  size_t len, const std::string& where, std::string* out) {
  uint64_t first = offset / kFrameSize, last = (offset + len - 1) / kFrameSize;
  uint32_t start = first == 0 ? 0 : Fixed32At(table, (first - 1) * 8);
  uint32_t end = Fixed32At(table, last * 8);
  if (end < start || end > loc.stored_len) return Status::Corruption(where + ": bad frame table");
  thread_local std::string frames;
  frames.resize(end - start);
  TUSK_RETURN_IF_ERROR(file.Read(payload + start, frames.size(), frames.data()).Annotate(where));
  thread_local std::string plain;
  plain.resize((last - first + 1) * kFrameSize);
  size_t plain_len = 0;
  uint32_t at = start;
  for (uint64_t f = first; f <= last; f++) {
    uint32_t frame_end = Fixed32At(table, f * 8);
    if (frame_end < at || frame_end > end) return Status::Corruption(where + ": bad frame table");
    std::string_view frame(frames.data() + (at - start), frame_end - at);
    if (Crc32c(frame.data(), frame.size()) != Fixed32At(table, f * 8 + 4))
      return Status::Corruption(where + ": checksum mismatch in frame " + std::to_string(f));
    size_t frame_raw = std::min<uint64_t>(kFrameSize, loc.raw_len - f * kFrameSize);
    TUSK_RETURN_IF_ERROR(DecompressFrame(frame, frame_raw, plain.data() + plain_len).Annotate(where));
    plain_len += frame_raw;
    at = frame_end;
  }
  out->assign(plain, offset - first * kFrameSize, len);
  return Status::Ok();
}

constexpr size_t kMaxCachedRangeTables = 16384;  // ~4 GiB of 256 KiB chunks, ~3 MB

}  // namespace

Result<std::shared_ptr<const std::string>> PackDirectory::LoadRangeTable(const OpenPack& pack, const ObjectId& id,
                                                                         const ObjectLocation& loc,
                                                                         const std::string& where) {
  const RandomAccessFile& file = *pack.file;
  auto key = std::make_pair(loc.pack, loc.offset);
  {
    std::lock_guard lock(mu_);
    auto it = range_tables_.find(key);
    if (it != range_tables_.end()) return it->second;
  }
  TUSK_RETURN_IF_ERROR(CheckExtent(loc, pack.size, where));
  char header[kRecordHeaderSize];
  TUSK_RETURN_IF_ERROR(file.Read(loc.offset, sizeof header, header).Annotate(where));
  TUSK_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(std::string_view(header, sizeof header), where));
  if (!MatchesLocation(h, id, loc))
    return Status::Corruption(where + ": record header does not match the index");
  auto table = std::make_shared<std::string>(RangeTableSize(loc.codec, loc.stored_len, loc.raw_len), '\0');
  TUSK_RETURN_IF_ERROR(
      file.Read(loc.offset + kRecordHeaderSize + loc.stored_len, table->size(), table->data()).Annotate(where));
  std::lock_guard lock(mu_);
  if (range_tables_.size() >= kMaxCachedRangeTables) range_tables_.erase(range_tables_.begin());
  range_tables_.emplace(key, table);
  return std::shared_ptr<const std::string>(table);
}

Status PackDirectory::ReadRange(const ObjectId& id, const ObjectLocation& loc, uint64_t offset, size_t len,
                                std::string* out) {
  std::string where = "pack " + PackName(loc.pack) + " offset " + std::to_string(loc.offset) + " (chunk " + id.Hex() + ")";
  if (!HasRangeTable(loc.codec, loc.stored_len) || len == 0 || offset + len > loc.raw_len)
    return Status::InvalidArgument(where + ": no such verified range");
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<OpenPack> fd, OpenForRead(loc.pack));
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<const std::string> table, LoadRangeTable(*fd, id, loc, where));
  uint64_t payload = loc.offset + kRecordHeaderSize;
  if (loc.codec == Codec::kZstdFrames) return ReadFrames(*fd->file, loc, *table, payload, offset, len, where, out);
  return ReadRawBlocks(*fd->file, loc, *table, payload, offset, len, where, out);
}

uint64_t RecordExtent(const ObjectLocation& loc) {
  return kRecordHeaderSize + uint64_t{loc.stored_len} + RangeTableSize(loc.codec, loc.stored_len, loc.raw_len);
}

namespace {

// Decodes a record read whole (header, payload, range table): the checks of
// ReadRecord, on bytes already in memory.
Status DecodeWholeRecord(const ObjectId& id, const ObjectLocation& loc, std::string_view record, bool verify_hash,
                         std::string* plaintext) {
  std::string where = "pack " + PackName(loc.pack) + " offset " + std::to_string(loc.offset) + " (" +
                      ObjectTypeName(loc.type) + " " + id.Hex() + ")";
  if (record.size() != RecordExtent(loc)) return Status::Corruption(where + ": record cut short");
  TUSK_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(record.substr(0, kRecordHeaderSize), where));
  if (!MatchesLocation(h, id, loc))
    return Status::Corruption(where + ": record header does not match the index");
  std::string_view stored = record.substr(kRecordHeaderSize, loc.stored_len);
  if (Crc32c(stored.data(), stored.size()) != h.payload_crc) return Status::Corruption(where + ": checksum mismatch");
  if (verify_hash && HasRangeTable(loc.codec, loc.stored_len)) {
    // Full verification also covers the range table that partial reads trust.
    auto expected = RangeTable(loc.codec, stored, loc.raw_len);
    if (!expected.ok() || record.substr(kRecordHeaderSize + loc.stored_len) != *expected)
      return Status::Corruption(where + ": range table does not match the content");
  }
  if (loc.codec == Codec::kRaw) {
    plaintext->assign(stored);
  } else {
    TUSK_RETURN_IF_ERROR(Decompress(loc.codec, stored, loc.raw_len, plaintext).Annotate(where));
  }
  if (verify_hash && loc.type == ObjectType::kChunk && Sha256::Of(plaintext->data(), plaintext->size()) != id)
    return Status::Corruption(where + ": content does not hash to its id");
  return Status::Ok();
}

}  // namespace

Status PackDirectory::ReadRecord(const ObjectId& id, const ObjectLocation& loc, bool verify_hash,
                                 std::string* plaintext) {
  if (verify_hash && HasRangeTable(loc.codec, loc.stored_len)) {
    // Header, payload and range table in one read: on a remote pack, one
    // request instead of two.
    std::string where = "pack " + PackName(loc.pack) + " offset " + std::to_string(loc.offset);
    TUSK_ASSIGN_OR_RETURN(std::shared_ptr<OpenPack> fd, OpenForRead(loc.pack));
    TUSK_RETURN_IF_ERROR(CheckExtent(loc, fd->size, where));
    thread_local std::string record;
    record.resize(RecordExtent(loc));
    TUSK_RETURN_IF_ERROR(fd->file->Read(loc.offset, record.size(), record.data()).Annotate(where));
    return DecodeWholeRecord(id, loc, record, verify_hash, plaintext);
  }
  thread_local std::string stored;
  TUSK_RETURN_IF_ERROR(ReadStored(id, loc, &stored));
  if (loc.codec == Codec::kRaw) {
    plaintext->swap(stored);
  } else {
    TUSK_RETURN_IF_ERROR(Decompress(loc.codec, stored, loc.raw_len, plaintext)
                             .Annotate(std::string(ObjectTypeName(loc.type)) + " " + id.Hex()));
  }
  if (verify_hash && loc.type == ObjectType::kChunk && Sha256::Of(plaintext->data(), plaintext->size()) != id)
    return Status::Corruption(std::string("chunk ") + id.Hex() + " in pack " + PackName(loc.pack) +
                              ": content does not hash to its id");
  return Status::Ok();
}

Result<std::string> PackDirectory::PackHeader(PackId id) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<OpenPack> pack, OpenForRead(id));
  return pack->header;
}

Result<uint64_t> PackDirectory::OpenedSize(PackId id) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<OpenPack> pack, OpenForRead(id));
  return pack->size;
}

Result<bool> PackDirectory::HoldsRecord(const ObjectId& id, const ObjectLocation& loc) {
  auto pack = OpenForRead(loc.pack);
  if (!pack.ok()) {
    if (pack.status().code() == Status::Code::kNotFound || pack.status().code() == Status::Code::kCorruption)
      return false;
    return pack.status();
  }
  if (!CheckExtent(loc, (*pack)->size, "").ok()) return false;
  char header[kRecordHeaderSize];
  TUSK_RETURN_IF_ERROR((*pack)->file->Read(loc.offset, sizeof header, header));
  auto h = DecodeRecordHeader(std::string_view(header, sizeof header), "");
  return h.ok() && MatchesLocation(*h, id, loc);
}

void PackDirectory::Forget(PackId id) {
  std::lock_guard lock(mu_);
  open_.erase(id);
}

Status PackDirectory::ReadRecords(PackId pack, const std::vector<std::pair<ObjectId, ObjectLocation>>& records,
                                  bool verify_hash, const std::function<Status(const SpanRecord&)>& each) {
  if (records.empty()) return Status::Ok();
  uint64_t start = UINT64_MAX, end = 0;
  for (const auto& [id, loc] : records) {
    if (loc.pack != pack) return Status::InvalidArgument("record " + id.Hex() + " is not in pack " + PackName(pack));
    start = std::min(start, loc.offset);
    end = std::max(end, loc.offset + RecordExtent(loc));
  }
  std::string where = "pack " + PackName(pack) + " bytes " + std::to_string(start) + "-" + std::to_string(end);
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<OpenPack> fd, OpenForRead(pack));
  for (const auto& [id, loc] : records) TUSK_RETURN_IF_ERROR(CheckExtent(loc, fd->size, where));
  // Not zeroed first: the read fills it.
  std::unique_ptr<char[]> buffer(new char[end - start]);
  TUSK_RETURN_IF_ERROR(fd->file->Read(start, end - start, buffer.get()).Annotate(where));
  std::string_view span(buffer.get(), end - start);
  std::string plaintext;
  for (const auto& [id, loc] : records) {
    std::string_view record = span.substr(loc.offset - start, RecordExtent(loc));
    TUSK_RETURN_IF_ERROR(DecodeWholeRecord(id, loc, record, verify_hash, &plaintext));
    TUSK_RETURN_IF_ERROR(each(SpanRecord{id, loc, record, plaintext}));
    plaintext.clear();
  }
  return Status::Ok();
}

namespace {

constexpr size_t kMaxPackProblems = 20;  // then one line saying how many more

struct FooterEntry {
  ObjectId id;
  uint64_t offset = 0;
  uint32_t raw_len = 0, stored_len = 0;
  uint8_t type = 0, codec = 0;
  uint16_t reserved = 0;
};

FooterEntry DecodeFooterEntry(std::string_view bytes) {
  FooterEntry f;
  Decoder d(bytes);
  std::string_view id;
  uint8_t r0 = 0, r1 = 0;
  d.GetBytes(32, &id);
  d.GetFixed64(&f.offset);
  d.GetFixed32(&f.raw_len);
  d.GetFixed32(&f.stored_len);
  d.GetU8(&f.type);
  d.GetU8(&f.codec);
  d.GetU8(&r0);
  d.GetU8(&r1);
  f.id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
  f.reserved = static_cast<uint16_t>(r0 | r1 << 8);
  return f;
}

// What is wrong with a footer entry given the record found at its place.
std::string FooterMismatch(const FooterEntry& f, const PackRecord& r) {
  const ObjectLocation& l = r.location;
  if (f.id != r.id) return "lists " + f.id.Hex() + " where the record is " + r.id.Hex();
  if (f.offset != l.offset) return "gives offset " + std::to_string(f.offset);
  if (f.type != static_cast<uint8_t>(l.type) || f.codec != static_cast<uint8_t>(l.codec))
    return "gives type " + std::to_string(f.type) + " codec " + std::to_string(f.codec);
  if (f.raw_len != l.raw_len || f.stored_len != l.stored_len)
    return "gives lengths " + std::to_string(f.raw_len) + "/" + std::to_string(f.stored_len);
  if (f.reserved != 0) return "has non-zero reserved bytes";
  return "";
}


// A pack's last 24 bytes (FORMAT.md, "Pack files").
struct Trailer {
  uint64_t footer_offset = 0;
  uint32_t count = 0, crc = 0;
  bool magic_ok = false;
  // Whether the footer it describes fills the `size`-byte pack exactly from
  // after the header to the trailer (no sum that could wrap).
  bool Fits(uint64_t size) const {
    return size >= kPackHeaderSize + kTrailerSize && footer_offset >= kPackHeaderSize &&
           footer_offset <= size - kTrailerSize && size - kTrailerSize - footer_offset == uint64_t{count} * kFooterEntrySize;
  }
};

Result<Trailer> ReadTrailer(const RandomAccessFile& file) {
  char bytes[kTrailerSize];
  TUSK_RETURN_IF_ERROR(file.Read(file.size() - kTrailerSize, sizeof bytes, bytes));
  Trailer t;
  std::memcpy(&t.footer_offset, bytes, 8);
  std::memcpy(&t.count, bytes + 8, 4);
  std::memcpy(&t.crc, bytes + 12, 4);
  t.magic_ok = std::memcmp(bytes + 16, kTrailerMagic, 8) == 0;
  return t;
}

// The footer of a sealed pack: its trailer has the magic, fits the file and
// its checksum holds. Nothing when the pack has no such trailer (never
// sealed, or its end is damaged).
Result<std::optional<std::string>> ReadValidFooter(const RandomAccessFile& file) {
  if (file.size() < kPackHeaderSize + kTrailerSize) return std::optional<std::string>();
  TUSK_ASSIGN_OR_RETURN(Trailer t, ReadTrailer(file));
  if (!t.magic_ok || !t.Fits(file.size())) return std::optional<std::string>();
  std::string footer(uint64_t{t.count} * kFooterEntrySize, '\0');
  TUSK_RETURN_IF_ERROR(file.Read(t.footer_offset, footer.size(), footer.data()));
  if (Crc32c(footer.data(), footer.size()) != t.crc) return std::optional<std::string>();
  return std::optional<std::string>(std::move(footer));
}

}  // namespace

Result<std::vector<PackRecord>> PackDirectory::ListRecords(PackId id, bool* sealed) {
  if (sealed) *sealed = false;
  std::string path = PathOf(id);
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, store_->Open(id));
  uint64_t size = file->size();
  char header[kPackHeaderSize];
  if (size < kPackHeaderSize) return Status::Corruption(path + ": not a pack (too short)");
  TUSK_RETURN_IF_ERROR(file->Read(0, sizeof header, header));
  TUSK_RETURN_IF_ERROR(CheckPackHeader(std::string_view(header, sizeof header), path));
  std::vector<PackRecord> out;
  // Sealed: trust the footer if its checksum holds.
  TUSK_ASSIGN_OR_RETURN(std::optional<std::string> footer, ReadValidFooter(*file));
  if (footer) {
    for (size_t at = 0; at < footer->size(); at += kFooterEntrySize) {
      FooterEntry f = DecodeFooterEntry(std::string_view(*footer).substr(at, kFooterEntrySize));
      if (!ValidType(f.type) || !ValidCodec(f.codec)) return Status::Corruption(path + ": bad footer entry");
      out.push_back({f.id, {id, f.offset, f.stored_len, f.raw_len, static_cast<ObjectType>(f.type), static_cast<Codec>(f.codec)}});
    }
    if (sealed) *sealed = true;
    return out;
  }
  // Unsealed or damaged footer: walk the record headers until one fails.
  uint64_t offset = kPackHeaderSize;
  char hbuf[kRecordHeaderSize];
  while (offset + kRecordHeaderSize <= size) {
    if (!file->Read(offset, sizeof hbuf, hbuf).ok()) break;
    auto h = DecodeRecordHeader(std::string_view(hbuf, sizeof hbuf), path);
    uint64_t table = RangeTableSize(h.ok() ? h->codec : Codec::kRaw, h.ok() ? h->stored_len : 0, h.ok() ? h->raw_len : 0);
    if (!h.ok() || offset + kRecordHeaderSize + h->stored_len + table > size) break;
    PackRecord r;
    r.id = h->id;
    r.location = {id, offset, h->stored_len, h->raw_len, h->type, h->codec};
    out.push_back(r);
    offset += kRecordHeaderSize + h->stored_len + table;
  }
  return out;
}

Result<std::vector<std::string>> PackDirectory::CheckPack(PackId id) {
  std::string path = PathOf(id);
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, store_->Open(id));
  const uint64_t size = file->size();
  std::vector<std::string> problems;
  if (size < kPackHeaderSize + kTrailerSize) {
    problems.push_back("too short (" + std::to_string(size) + " bytes) to be a sealed pack: truncated");
    return problems;
  }
  char header[kPackHeaderSize];
  TUSK_RETURN_IF_ERROR(file->Read(0, sizeof header, header));
  Status header_ok = CheckPackHeader(std::string_view(header, sizeof header), "header");
  if (!header_ok.ok()) problems.push_back(header_ok.message());

  // The trailer says where the footer is; it must fit the file exactly.
  TUSK_ASSIGN_OR_RETURN(Trailer trailer, ReadTrailer(*file));
  const uint64_t footer_offset = trailer.footer_offset;
  const uint32_t count = trailer.count;
  if (!trailer.magic_ok) {
    problems.push_back("no trailer at the end (bad trailer magic): the pack is truncated, damaged or was never sealed");
    return problems;
  }
  const uint64_t footer_end = size - kTrailerSize;
  if (!trailer.Fits(size)) {
    problems.push_back("the trailer (footer at offset " + std::to_string(footer_offset) + ", " + std::to_string(count) +
                       " entries) does not fit the pack's " + std::to_string(size) + " bytes: truncated or damaged");
    return problems;
  }
  std::string footer(footer_end - footer_offset, '\0');
  TUSK_RETURN_IF_ERROR(file->Read(footer_offset, footer.size(), footer.data()));
  bool footer_ok = Crc32c(footer.data(), footer.size()) == trailer.crc;
  if (!footer_ok) problems.push_back("footer checksum mismatch (the footer or the trailer is damaged)");

  // The records, walked header by header, must end where the footer starts.
  std::vector<PackRecord> records;
  uint64_t offset = kPackHeaderSize;
  char hbuf[kRecordHeaderSize];
  while (offset < footer_offset) {
    std::string where = "record at offset " + std::to_string(offset);
    if (footer_offset - offset < kRecordHeaderSize) {
      problems.push_back(where + ": runs into the footer");
      break;
    }
    TUSK_RETURN_IF_ERROR(file->Read(offset, sizeof hbuf, hbuf));
    auto h = DecodeRecordHeader(std::string_view(hbuf, sizeof hbuf), where);
    if (!h.ok()) {
      problems.push_back(h.status().message());
      break;
    }
    PackRecord r{h->id, {id, offset, h->stored_len, h->raw_len, h->type, h->codec}};
    uint64_t len = kRecordHeaderSize + uint64_t{h->stored_len} + RangeTableSize(h->codec, h->stored_len, h->raw_len);
    if (len > footer_offset - offset) {
      problems.push_back(where + " (" + r.id.Hex() + "): runs into the footer");
      break;
    }
    records.push_back(r);
    offset += len;
  }
  bool walked = offset == footer_offset;
  if (!footer_ok) return problems;

  // Every footer entry describes the record at its place, and nothing more.
  size_t reported = 0;
  auto report = [&](std::string p) {
    if (reported++ < kMaxPackProblems) problems.push_back(std::move(p));
  };
  for (size_t i = 0; i < count; i++) {
    FooterEntry f = DecodeFooterEntry(std::string_view(footer).substr(i * kFooterEntrySize, kFooterEntrySize));
    std::string entry = "footer entry " + std::to_string(i) + " of " + std::to_string(count);
    if (i >= records.size()) {
      if (walked) report(entry + " (" + f.id.Hex() + " at offset " + std::to_string(f.offset) + ") has no record");
      continue;
    }
    std::string mismatch = FooterMismatch(f, records[i]);
    if (!mismatch.empty())
      report(entry + " " + mismatch + " (record at offset " + std::to_string(records[i].location.offset) + ")");
  }
  for (size_t i = count; i < records.size(); i++)
    report("record at offset " + std::to_string(records[i].location.offset) + " (" + records[i].id.Hex() +
           ") is not in the footer");
  if (reported > kMaxPackProblems)
    problems.push_back("and " + std::to_string(reported - kMaxPackProblems) + " more footer problems");
  return problems;
}

Result<std::vector<PackId>> PackDirectory::ListPacks() const { return store_->List(); }

Status PackDirectory::Remove(PackId id) {
  {
    std::lock_guard lock(mu_);
    open_.erase(id);
    auto first = range_tables_.lower_bound({id, 0});
    auto last = first;
    while (last != range_tables_.end() && last->first.first == id) ++last;
    range_tables_.erase(first, last);
  }
  Status st = store_->Remove(id);
  return st.code() == Status::Code::kNotFound ? Status::Ok() : st;
}

Result<uint64_t> PackDirectory::SizeOf(PackId id) const {
  return store_->Size(id);
}

Result<std::unique_ptr<PackWriter>> PackWriter::CreateWithId(PackDirectory* packs, PackId id) {
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<PackSink> sink, packs->store_->Create(id));
  std::unique_ptr<PackWriter> w(new PackWriter(id, std::move(sink)));
  Encoder e;
  e.PutBytes(std::string_view(kPackMagic, 8));
  e.PutFixed32(kPackVersion);
  e.PutFixed32(0);
  w->buffer_ = e.Take();
  w->size_ = kPackHeaderSize;
  return w;
}

Result<std::unique_ptr<PackWriter>> PackWriter::Create(PackDirectory* packs) {
  for (int attempt = 0; attempt < 8; attempt++) {
    PackId id;
    if (getrandom(&id, sizeof id, 0) != sizeof id) return Status::FromErrno(errno, "getrandom");
    auto w = CreateWithId(packs, id);
    if (!w.ok() && w.status().code() == Status::Code::kAlreadyExists) continue;
    return w;
  }
  return Status::AlreadyExists("could not pick an unused pack name");
}

PackWriter::~PackWriter() = default;

Status PackWriter::FlushBuffer() {
  if (buffer_.empty()) return Status::Ok();
  uint64_t at = size_ - buffer_.size();
  Status st = sink_->Write(at, buffer_);
  if (!st.ok()) broken_ = st;
  buffer_.clear();
  return st;
}

Result<ObjectLocation> PackWriter::Append(ObjectType type, const ObjectId& id, Codec codec, uint32_t raw_len,
                                          std::string_view stored, uint32_t stored_crc, std::string_view range_table) {
  if (!broken_.ok()) return broken_;
  if (sealed_) return Status::InvalidArgument("append to a sealed pack");
  bool has_table = HasRangeTable(codec, stored.size());
  std::string computed;
  if (has_table) {
    if (range_table.empty()) {
      TUSK_ASSIGN_OR_RETURN(computed, RangeTable(codec, stored, raw_len));
      range_table = computed;
    }
    if (range_table.size() != RangeTableSize(codec, stored.size(), raw_len))
      return Status::InvalidArgument("range table of the wrong size");
  }
  RecordHeader h{type, codec, static_cast<uint8_t>(has_table ? kFlagRangeTable : 0), raw_len,
                 static_cast<uint32_t>(stored.size()), id, stored_crc};
  ObjectLocation loc{id_, size_, static_cast<uint32_t>(stored.size()), raw_len, type, codec};
  buffer_ += EncodeRecordHeader(h);
  buffer_.append(stored);
  size_ += kRecordHeaderSize + stored.size();
  if (has_table) {
    buffer_.append(range_table);
    size_ += range_table.size();
  }
  records_.push_back({id, loc});
  if (buffer_.size() >= kWriteBufferSize) TUSK_RETURN_IF_ERROR(FlushBuffer());
  return loc;
}

Status PackWriter::Sync() {
  if (!broken_.ok()) return broken_;
  if (sealed_) return Status::Ok();
  TUSK_RETURN_IF_ERROR(FlushBuffer());
  Status st = sink_->Sync();
  if (!st.ok()) broken_ = st;
  return st;
}

Status PackWriter::Seal() {
  if (!broken_.ok()) return broken_;
  if (sealed_) return Status::Ok();
  std::string footer;
  footer.reserve(records_.size() * kFooterEntrySize);
  for (const auto& r : records_) footer += EncodeFooterEntry(r);
  Encoder trailer;
  trailer.PutFixed64(size_);
  trailer.PutFixed32(static_cast<uint32_t>(records_.size()));
  trailer.PutFixed32(Crc32c(footer.data(), footer.size()));
  trailer.PutBytes(std::string_view(kTrailerMagic, 8));
  buffer_ += footer;
  buffer_ += trailer.buffer();
  size_ += footer.size() + kTrailerSize;
  TUSK_RETURN_IF_ERROR(FlushBuffer());
  Status st = sink_->Finish();
  if (!st.ok()) {
    broken_ = st;
    return st;
  }
  sealed_ = true;
  sink_.reset();
  return Status::Ok();
}

Result<bool> PackDirectory::HasValidTrailer(PackId id) const {
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, store_->Open(id));
  TUSK_ASSIGN_OR_RETURN(std::optional<std::string> footer, ReadValidFooter(*file));
  return footer.has_value();
}

}  // namespace tusk
