// Structural checks of an LMDB data file (data.mdb), made with pread and
// never through LMDB's memory map, so that a damaged index is an error the
// user sees and not a signal that kills tusk.
//
// LMDB keeps no checksums and trusts every byte it maps: a page number past
// the end of a truncated file is SIGBUS, a node offset past the end of its
// page is SIGSEGV inside mdb_cursor_get. What these checks accept is what
// LMDB relies on when it reads a snapshot and what it maintains when it
// writes one, so a snapshot that passes can be read through LMDB safely:
//
// - the meta pages: page flags, magic, format version, page size, the two
//   transaction ids (transaction N writes meta page N % 2, and the two are
//   consecutive), the last page number, the roots of the free-page and main
//   trees, and a file long enough to hold every page up to the last one;
// - every page reachable from the newest meta page (the free-page tree, the
//   main tree, and the tree of every named database it lists): page type,
//   page number equal to its position, free-space bounds inside the page,
//   every node inside the page and the nodes tiling the node area, keys in
//   strictly increasing order and within the bounds their parents set,
//   children and overflow pages inside the file and visited once, every leaf
//   at the tree's depth, and the counts the database record claims;
// - the free-page lists: sorted, inside the file, and disjoint from every
//   page in use (LMDB hands out free pages to later writes, so a damaged
//   list would overwrite live pages).
//
// Only the table shapes tusk uses are accepted: named databases with no
// flags (lexicographic keys, no duplicates), as store/FORMAT.md says.
//
// Thread-safety: functions of values; the caller keeps `fd` open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/status.h"

namespace tusk::lmdb_verify {

// One tree's record (LMDB's MDB_db), as stored in a meta page or a leaf.
struct TreeRecord {
  uint32_t pad = 0;
  uint16_t flags = 0;
  uint16_t depth = 0;
  uint64_t branch_pages = 0;
  uint64_t leaf_pages = 0;
  uint64_t overflow_pages = 0;
  uint64_t entries = 0;
  uint64_t root = 0;
};

// A meta page (LMDB's MDB_meta), decoded.
struct Meta {
  uint64_t map_size = 0;
  TreeRecord free_tree;  // free_tree.pad is the page size
  TreeRecord main_tree;
  uint64_t last_page = 0;
  uint64_t txnid = 0;
  uint32_t page_size() const { return free_tree.pad; }
};

// Both meta pages as read from the file, raw and decoded.
struct MetaPages {
  std::string raw[2];
  Meta meta[2];
  uint64_t file_size = 0;
  // The meta page LMDB reads from: the one with the larger transaction id.
  const Meta& newest() const { return meta[meta[1].txnid > meta[0].txnid ? 1 : 0]; }
};

// Reads the two meta pages of the data file open as `fd` and the file's
// size. An empty file (LMDB creates the meta pages on first open) is
// NotFound; any read failure is an IoError.
Result<MetaPages> ReadMetaPages(int fd);

// Checks the meta pages against each other and the file's size: the
// newest fully (it is what LMDB will use), the older one as far as it can
// still matter. Corruption, with what is wrong, when a check fails.
Status CheckMetaPages(const MetaPages& pages);

struct VerifyStats {
  uint64_t pages = 0;       // tree pages read, overflow runs counted once
  uint64_t free_pages = 0;  // pages on the free lists
  uint64_t tables = 0;      // named databases
  // Per page of the snapshot: kPageUnused, kPageInUse or kPageFree.
  std::vector<uint8_t> page_state;
};
inline constexpr uint8_t kPageUnused = 0, kPageInUse = 1, kPageFree = 2;

// Walks every page reachable from `meta` (which CheckMetaPages accepted)
// and checks it as the header comment says. The caller must make sure no
// writer can reuse the snapshot's pages meanwhile (a read transaction on
// that snapshot). Corruption, naming the page, when a check fails.
Result<VerifyStats> VerifySnapshot(int fd, const Meta& meta);

}  // namespace tusk::lmdb_verify
