// PackMirror: this machine's copies of the parts of remote packs it has read
// (issue 12), the disk cache behind lazy reads and `tusk prefetch`.
//
// A mirror file, DIR/xx/<16 hex digits>.pack (xx: the first two), is a
// sparse file of the remote pack's size holding the pack's header and every
// record read so far at its offset in the pack; the rest is holes. So a
// cached record is read exactly as a local one (PackDirectory over
// NewLocalPackStore(DIR): its header, CRC and range table checked, a part of
// it through its range table), and a record that is not there reads as
// zeros, which is no record header: a miss. A record torn by a crash fails
// its CRC: a miss too, written again by the next fetch.
//
// Only records whose content was checked against its id (SHA-256: a bucket
// is not trusted) are written, one by one: never the bytes between them.
//
// Bounded by the disk the files take (their allocated blocks): when the
// mirror outgrows its capacity, the least recently used files go, whole.
// Their mtime is their last use (set at most once a minute), so the order
// survives restarts. The capacity belongs to the directory: the last one
// given explicitly is kept in DIR/capacity and used by processes that give
// none (a plain `tusk cat` does not shrink what a prefetch sized).
//
// Several processes may share one mirror (a mount, prefetch, the CLI): two
// writing one record write the same bytes; a file another removed is made
// again by the next write. Each keeps its own account of the bytes, from a
// scan at first use and its own writes, so together they may hold a little
// more than the capacity for a while.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/backend/pack_store.h"
#include "store/status.h"

namespace tusk {

class PackMirror {
 public:
  // `capacity` 0: the one recorded in DIR/capacity, else `fallback`; any
  // other is recorded there. Nothing is read or made until first use.
  PackMirror(std::string dir, uint64_t capacity, uint64_t fallback)
      : dir_(std::move(dir)), capacity_(capacity), fallback_(fallback) {}

  const std::string& dir() const { return dir_; }

  struct Record {
    uint64_t offset;
    std::string_view bytes;  // the whole record: header, payload, range table
  };
  // Writes checked records of the remote pack `pack` (`pack_size` bytes,
  // beginning with `header`) into its mirror file. Returns true when the
  // file was made by this call (a reader holding an older one open must
  // open it again).
  Result<bool> Write(PackId pack, uint64_t pack_size, std::string_view header, const std::vector<Record>& records);
  // Notes a read of the pack's mirror.
  void Touch(PackId pack);

  uint64_t capacity();
  uint64_t bytes();  // as this process accounts for it

 private:
  struct Entry {
    uint64_t bytes = 0;     // allocated on disk
    int64_t used = 0;       // last use, nanoseconds of the wall clock
    int64_t touched = 0;    // when this process last set the file's mtime
  };
  std::string PathOf(PackId pack) const;
  void LoadLocked();
  // Removes the least recently used files (never `keep`) until the mirror
  // fits.
  void EvictLocked(PackId keep);

  const std::string dir_;
  std::mutex mu_;  // guards the members below
  uint64_t capacity_;
  const uint64_t fallback_;
  bool loaded_ = false;
  uint64_t bytes_ = 0;
  std::map<PackId, Entry> entries_;
  std::set<std::string> made_dirs_;
};

}  // namespace tusk
