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
  kTableCount,
};

inline std::vector<std::string> Names() {
  return {"objects", "packs", "datasets", "refs", "commits", "filestats", "refrecords", "meta", "runs", "runlinks"};
}

inline constexpr char kMetaRefSeq[] = "ref-seq";
// Written when an index is created, upgraded or rebuilt: an index without it
// (data.mdb deleted or emptied) beside pack files is missing, not empty.
inline constexpr char kMetaIndexComplete[] = "index-complete";
// `packs` values: u64 size | u32 record count for a registered pack; empty
// for a pack a writer has created but not committed (garbage once no writer
// holds the store lock).
inline bool IsPendingPack(std::string_view value) { return value.empty(); }

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
