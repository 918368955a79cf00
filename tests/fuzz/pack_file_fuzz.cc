// A whole pack file (FORMAT.md "Pack files") through the pack reader:
// PackDirectory::ListRecords (the footer and trailer, or the scan of record
// headers of an unsealed pack), then ReadStored, ReadRecord and ReadRange of
// every record it lists (record headers, payload CRCs, range tables, zstd
// frames), and the tree and commit decoders on what they return, as fsck
// does.
//
// Input: one mode byte, then the pack's bytes. Checksums stop almost every
// mutation at the first CRC, so the mode byte lets the target repair them
// before the pack is written, to reach the checks behind them:
//   bit 0  recompute each record header's CRC (walking records by their lengths)
//   bit 1  recompute each record's payload CRC
//   bit 2  recompute the footer CRC in the trailer
//   bit 3  ReadRecord re-hashes chunks (verify_hash)
//
// Properties: nothing crashes, leaks or reads outside the file; a range read
// of a record whose whole read verified (range table included) succeeds and
// returns exactly the bytes the whole read returned (the mount's partial
// reads and export's whole reads agree).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "store/objects.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace tusk;

constexpr PackId kPack = 0x0123456789abcdefull;
constexpr size_t kMaxRecords = 64;  // bounds the work per input

uint32_t U32At(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}
void PutU32At(std::string* s, size_t at, uint32_t v) { std::memcpy(s->data() + at, &v, 4); }

// Walks the records as a writer laid them out and repairs the CRCs `mode` asks for.
void RepairRecords(std::string* pack, uint8_t mode) {
  size_t at = kPackHeaderSize;
  while (at + kRecordHeaderSize <= pack->size()) {
    uint8_t codec_byte = static_cast<uint8_t>((*pack)[at + 5]);
    uint32_t raw_len = U32At(*pack, at + 8), stored_len = U32At(*pack, at + 12);
    size_t payload = at + kRecordHeaderSize;
    if ((mode & 2) && stored_len <= pack->size() - payload)
      PutU32At(pack, at + 48, Crc32c(pack->data() + payload, stored_len));
    if (mode & 1) PutU32At(pack, at + 52, Crc32c(pack->data() + at, kRecordHeaderSize - 4));
    if (!ValidCodec(codec_byte) || stored_len > pack->size() - payload) break;
    at = payload + stored_len + RangeTableSize(static_cast<Codec>(codec_byte), stored_len, raw_len);
  }
}

void RepairFooter(std::string* pack) {
  if (pack->size() < kPackHeaderSize + kTrailerSize) return;
  size_t trailer = pack->size() - kTrailerSize;
  uint64_t footer;
  std::memcpy(&footer, pack->data() + trailer, 8);
  uint64_t count = U32At(*pack, trailer + 8);
  if (footer > trailer || (trailer - footer) != count * kFooterEntrySize) return;
  PutU32At(pack, trailer + 12, Crc32c(pack->data() + footer, trailer - footer));
}

// A fresh directory per process, removed at exit (the string is never
// destroyed, so the exit handler can still use it); a fresh PackDirectory
// per input (it caches descriptors and range tables by pack id, and every
// input reuses the id).
const std::string& PackRoot() {
  static const std::string& root = *[] {
    std::string tmpl = (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp") + std::string("/tusk-fuzz-XXXXXX");
    if (!::mkdtemp(tmpl.data())) std::abort();
    return new std::string(tmpl);
  }();
  static bool cleanup = [] { return std::atexit([] { std::filesystem::remove_all(PackRoot()); }) == 0; }();
  (void)cleanup;
  return root;
}

void WritePack(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

void CheckRecord(PackDirectory& packs, const PackRecord& r, bool verify_hash) {
  const ObjectLocation& loc = r.location;
  std::string stored, plain;
  (void)packs.ReadStored(r.id, loc, &stored);
  Status whole = packs.ReadRecord(r.id, loc, verify_hash, &plain);
  if (whole.ok()) {
    FUZZ_CHECK(plain.size() == loc.raw_len);
    if (loc.type == ObjectType::kTree) (void)DecodeTreePage(plain);
    if (loc.type == ObjectType::kCommit) (void)DecodeCommit(plain);
  }
  if (!HasRangeTable(loc.codec, loc.stored_len) || loc.raw_len == 0) return;
  // A few ranges: the start, one across a block and frame boundary, the last byte.
  uint64_t n = loc.raw_len;
  std::pair<uint64_t, size_t> ranges[] = {
      {0, static_cast<size_t>(std::min<uint64_t>(n, 100))},
      {std::min<uint64_t>(n - 1, 16380), static_cast<size_t>(std::min<uint64_t>(n - std::min<uint64_t>(n - 1, 16380), 40000))},
      {n - 1, 1}};
  for (auto [offset, len] : ranges) {
    std::string part;
    Status st = packs.ReadRange(r.id, loc, offset, len, &part);
    if (whole.ok() && verify_hash) {
      FUZZ_CHECK(st.ok());
    }
    if (whole.ok() && st.ok()) FUZZ_CHECK(part == plain.substr(offset, len));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz::View(data, size);
  uint8_t mode = fuzz::TakeByte(&in);
  std::string bytes(in);
  if (mode & 3) RepairRecords(&bytes, mode);
  if (mode & 4) RepairFooter(&bytes);

  PackDirectory packs(PackRoot());
  WritePack(packs.PathOf(kPack), bytes);
  auto records = packs.ListRecords(kPack);
  if (!records.ok()) return 0;
  for (size_t i = 0; i < records->size() && i < kMaxRecords; i++) {
    const PackRecord& r = (*records)[i];
    FUZZ_CHECK(r.location.pack == kPack);
    CheckRecord(packs, r, mode & 8);
  }
  return 0;
}
