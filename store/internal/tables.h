// The LMDB tables of a store and their key layouts (see store/FORMAT.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/ids.h"

namespace tusk::tables {

enum Table : size_t {
  kObjects = 0,  // object id (32 bytes) -> ObjectLocation (26 bytes)
  kPacks,        // pack id (8 bytes, big-endian) -> size u64 | record count u32
  kDatasets,     // dataset name -> created_sec (signed varint)
  kRefs,         // dataset \0 kind name -> commit id (32 bytes) or empty; kind 'b' branch, 't' tag
  kCommits,      // dataset \0 commit id (32 bytes) -> empty
  kFileStats,    // opaque importer key -> opaque stat record
  kRefRecords,   // dataset \0 kind name (kind 'd': the dataset) -> RefRecordPointer (current record)
  kMeta,         // kMetaRefSeq -> u64 last ref-record seq; kMetaIndexComplete -> "1"
  kRuns,         // run id (32 bytes) -> svarint start time (ns)                       (format 3)
  kRunLinks,     // 'i' input commit (32) run (32) -> ""; 'o' run (32) output commit (32) -> ""  (format 3)
  kRemoteRefs,   // remote \0 dataset \0 kind name -> commit id (32 bytes)                       (format 6)
  kTableCount,
};

inline std::vector<std::string> Names() {
  return {"objects", "packs", "datasets", "refs", "commits", "filestats", "refrecords", "meta", "runs", "runlinks", "remoterefs"};
}

inline constexpr char kMetaRefSeq[] = "ref-seq";
// Written when an index is created, upgraded or rebuilt: an index without it
// (data.mdb deleted or emptied) beside pack files is missing, not empty.
inline constexpr char kMetaIndexComplete[] = "index-complete";
// `packs` values: u64 size | u32 record count for a registered pack; empty
// for a pack a writer has created but not committed (garbage once no writer
// holds the store lock).
inline bool IsPendingPack(std::string_view value) { return value.empty(); }
// A registered pack's value. `remote` names the remote whose bucket holds
// the pack (format 6: fetched from a remote, read lazily); empty for a pack
// in STORE/packs. Encoded as u64 size | u32 count [| remote name].
struct PackValue {
  uint64_t size = 0;
  uint32_t records = 0;
  std::string remote;
};
inline std::string EncodePackValue(const PackValue& v) {
  std::string out(12, '\0');
  for (int i = 0; i < 8; i++) out[i] = static_cast<char>(v.size >> (8 * i));
  for (int i = 0; i < 4; i++) out[8 + i] = static_cast<char>(v.records >> (8 * i));
  return out + v.remote;
}
// False for a value too short to be one (damage, or a pending pack).
inline bool DecodePackValue(std::string_view bytes, PackValue* out) {
  if (bytes.size() < 12) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  out->size = 0;
  out->records = 0;
  for (int i = 7; i >= 0; i--) out->size = out->size << 8 | b[i];
  for (int i = 3; i >= 0; i--) out->records = out->records << 8 | b[8 + i];
  out->remote.assign(bytes.substr(12));
  return true;
}
inline bool IsRemotePack(std::string_view value) { return value.size() > 12; }
inline std::string RemoteRefKey(std::string_view remote, std::string_view dataset, char kind, std::string_view name) {
  std::string k(remote);
  k += '\0';
  k += dataset;
  k += '\0';
  k += kind;
  k += name;
  return k;
}

inline std::string RefKey(std::string_view dataset, char kind, std::string_view name) {
  std::string k(dataset);
  k += '\0';
  k += kind;
  k += name;
  return k;
}
// The parts of a `refs` / `refrecords` key; false for a key without the
// NUL and kind byte (damage).
// The kind of the refs-table entry (and ref record) that holds a dataset's
// settings head (store/settings/settings.h); its name is always "settings".
inline constexpr char kSettingsKind = 's';
inline constexpr char kSettingsRefName[] = "settings";
struct RefKeyParts {
  std::string_view dataset;
  char kind = 0;
  std::string_view name;
};
inline bool ParseRefKey(std::string_view key, RefKeyParts* out) {
  size_t nul = key.find('\0');
  if (nul == std::string_view::npos || nul + 1 >= key.size()) return false;
  *out = {key.substr(0, nul), key[nul + 1], key.substr(nul + 2)};
  return true;
}
// Pack ids are big-endian keys so that packs list in id order.
inline std::string PackKey(uint64_t id) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; i++) k[i] = static_cast<char>(id >> (56 - 8 * i));
  return k;
}
inline uint64_t PackFromKey(std::string_view k) {
  uint64_t id = 0;
  for (unsigned char c : k) id = id << 8 | c;
  return id;
}
inline std::string RunInputKey(const ObjectId& input_commit, const ObjectId& run) {
  return "i" + std::string(input_commit.view()) + std::string(run.view());
}
inline std::string RunOutputKey(const ObjectId& run, const ObjectId& output_commit) {
  return "o" + std::string(run.view()) + std::string(output_commit.view());
}
inline ObjectId IdFromView(std::string_view v) { return ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(v.data())); }

inline std::string DatasetPrefix(std::string_view dataset) {
  std::string k(dataset);
  k += '\0';
  return k;
}

}  // namespace tusk::tables
