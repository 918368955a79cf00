#include "store/internal/lmdb_verify.h"

#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace tusk::lmdb_verify {
namespace {

static_assert(sizeof(size_t) == 8, "the layout below is LMDB's on 64-bit hosts");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "LMDB writes host byte order; this reads little-endian");

// The on-disk layout of LMDB 0.9 (data version 1), from its mdb.c.
constexpr uint32_t kMagic = 0xBEEFC0DE;
constexpr uint32_t kDataVersion = 1;
constexpr size_t kPageHeader = 16;  // pgno u64 | pad u16 | flags u16 | lower u16 | upper u16 (overflow: pages u32)
constexpr size_t kNodeHeader = 8;   // lo u16 | hi u16 | flags u16 | key size u16, then key and data
constexpr size_t kTreeRecordSize = 48;
constexpr size_t kMetaSize = 136;  // magic, version, address, map size, two tree records, last page, txnid
constexpr uint16_t kBranchPage = 0x01, kLeafPage = 0x02, kOverflowPage = 0x04, kMetaPage = 0x08;
constexpr uint16_t kBigData = 0x01, kSubData = 0x02;
constexpr uint64_t kNoRoot = ~uint64_t{0};
constexpr unsigned kMaxDepth = 32;            // LMDB's cursor stack holds this many levels
constexpr uint64_t kMaxMapSize = uint64_t{1} << 50;
constexpr uint64_t kMaxPages = uint64_t{1} << 40;

uint16_t U16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint32_t U32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t U64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

TreeRecord DecodeTree(const char* p) {
  TreeRecord t;
  t.pad = U32(p);
  t.flags = U16(p + 4);
  t.depth = U16(p + 6);
  t.branch_pages = U64(p + 8);
  t.leaf_pages = U64(p + 16);
  t.overflow_pages = U64(p + 24);
  t.entries = U64(p + 32);
  t.root = U64(p + 40);
  return t;
}

// The fields of a meta page's header and record that CheckMetaPages needs.
struct MetaHeader {
  uint64_t pgno;
  uint16_t flags;
  uint32_t magic;
  uint32_t version;
  uint64_t address;
};

MetaHeader DecodeHeader(const std::string& raw) {
  const char* p = raw.data();
  return {U64(p), U16(p + 10), U32(p + kPageHeader), U32(p + kPageHeader + 4), U64(p + kPageHeader + 8)};
}

Meta DecodeMeta(const std::string& raw) {
  const char* m = raw.data() + kPageHeader;
  Meta meta;
  meta.map_size = U64(m + 16);
  meta.free_tree = DecodeTree(m + 24);
  meta.main_tree = DecodeTree(m + 24 + kTreeRecordSize);
  meta.last_page = U64(m + 120);
  meta.txnid = U64(m + 128);
  return meta;
}

bool ValidPageSize(uint32_t size) { return size >= 512 && size <= 32768 && (size & (size - 1)) == 0; }

Status Damaged(const std::string& what) { return Status::Corruption(what); }

std::string MetaName(int slot) { return "meta page " + std::to_string(slot); }

// A tree record's own consistency, before its pages are read.
Status CheckTreeShape(const TreeRecord& t, uint64_t last_page, const std::string& name) {
  if (t.root == kNoRoot) {
    if (t.depth != 0 || t.branch_pages != 0 || t.leaf_pages != 0 || t.overflow_pages != 0 || t.entries != 0)
      return Damaged(name + " is empty but records pages or entries");
    return Status::Ok();
  }
  if (t.root < 2 || t.root > last_page)
    return Damaged(name + ": root page " + std::to_string(t.root) + " is outside pages 2.." + std::to_string(last_page));
  if (t.depth < 1 || t.depth > kMaxDepth) return Damaged(name + ": depth " + std::to_string(t.depth) + " is impossible");
  return Status::Ok();
}

int CompareKeys(std::string_view a, std::string_view b, bool integer_keys) {
  if (integer_keys) {
    uint64_t x = U64(a.data()), y = U64(b.data());
    return x < y ? -1 : x > y;
  }
  return a.compare(b);  // unsigned bytes, shorter first: LMDB's default order
}

// The kinds of tree tusk's index holds.
enum class TreeKind {
  kFree,   // txnid (8 bytes) -> list of free page numbers
  kMain,   // table name -> its tree record
  kTable,  // tusk's tables: plain keys and values
};

class Walker {
 public:
  Walker(int fd, const Meta& meta)
      : fd_(fd), meta_(meta), psize_(meta.page_size()), state_(meta.last_page + 1, 0), scratch_(kMaxDepth + 2) {
    // Pages are read through a read-only map of the snapshot's extent when
    // the file holds all of it (pread of each 4 KiB page was a quarter of
    // the walk: ~0.06 s of 0.26 s at a million files), with the kernel asked
    // to read it all ahead (a cold walk in tree order is otherwise random
    // I/O). LMDB never shrinks its file, so the map stays backed; anything
    // else falls back to pread.
    struct stat st;
    uint64_t extent = (meta.last_page + 1) * uint64_t{psize_};
    if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) >= extent && extent > 0) {
      void* m = ::mmap(nullptr, extent, PROT_READ, MAP_SHARED, fd, 0);
      if (m != MAP_FAILED) {
        map_ = static_cast<const char*>(m);
        map_len_ = extent;
        (void)::madvise(m, extent, MADV_WILLNEED);
      }
    }
  }
  ~Walker() {
    if (map_) ::munmap(const_cast<char*>(map_), map_len_);
  }
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  Result<VerifyStats> Run() {
    TUSK_RETURN_IF_ERROR(WalkTree(meta_.free_tree, TreeKind::kFree, "the free-page tree"));
    TUSK_RETURN_IF_ERROR(WalkTree(meta_.main_tree, TreeKind::kMain, "the table directory"));
    for (const auto& [name, record] : tables_) {
      std::string what = "table '" + name + "'";
      if (record.pad != 0 || record.flags != 0)
        return Damaged(what + ": flags " + std::to_string(record.flags) + " that tusk never sets");
      TUSK_RETURN_IF_ERROR(CheckTreeShape(record, meta_.last_page, what));
      TUSK_RETURN_IF_ERROR(WalkTree(record, TreeKind::kTable, what));
    }
    stats_.tables = tables_.size();
    // LMDB gives free pages to later writes: one that is also in use would
    // be overwritten.
    for (uint64_t pgno : free_list_) {
      if (state_[pgno] == kInUse) return Damaged("page " + std::to_string(pgno) + " is in use and also on the free list");
      if (state_[pgno] == kFree) return Damaged("page " + std::to_string(pgno) + " is on the free list twice");
      state_[pgno] = kFree;
    }
    stats_.free_pages = free_list_.size();
    stats_.page_state = std::move(state_);
    return stats_;
  }

 private:
  static constexpr uint8_t kInUse = kPageInUse, kFree = kPageFree;

  struct Counts {
    uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0;
  };
  struct Bound {
    bool set = false;
    std::string_view key;
  };

  Status ReadAt(uint64_t offset, size_t len, char* out) {
    if (map_ && offset <= map_len_ && len <= map_len_ - offset) {
      std::memcpy(out, map_ + offset, len);
      return Status::Ok();
    }
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pread(fd_, out + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "read index page");
      if (n == 0) return Damaged("the file ends inside page " + std::to_string(offset / psize_));
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status MarkInUse(uint64_t pgno, uint64_t count, const std::string& what) {
    if (pgno < 2 || count > meta_.last_page || pgno > meta_.last_page + 1 - count)
      return Damaged(what + ": page " + std::to_string(pgno) + " is outside pages 2.." + std::to_string(meta_.last_page));
    for (uint64_t p = pgno; p < pgno + count; p++) {
      if (state_[p]) return Damaged(what + ": page " + std::to_string(p) + " is reached twice");
      state_[p] = kInUse;
    }
    return Status::Ok();
  }

  Status WalkTree(const TreeRecord& tree, TreeKind kind, const std::string& what) {
    if (tree.root == kNoRoot) return Status::Ok();
    kind_ = kind;
    what_ = what;
    depth_ = tree.depth;
    Counts counts;
    TUSK_RETURN_IF_ERROR(WalkPage(tree.root, 1, Bound{}, Bound{}, &counts));
    if (counts.branch != tree.branch_pages || counts.leaf != tree.leaf_pages || counts.overflow != tree.overflow_pages ||
        counts.entries != tree.entries)
      return Damaged(what + ": its record counts " + std::to_string(tree.branch_pages) + "/" +
                     std::to_string(tree.leaf_pages) + "/" + std::to_string(tree.overflow_pages) + " pages and " +
                     std::to_string(tree.entries) + " entries, the tree holds " + std::to_string(counts.branch) + "/" +
                     std::to_string(counts.leaf) + "/" + std::to_string(counts.overflow) + " and " +
                     std::to_string(counts.entries));
    return Status::Ok();
  }

  struct Node {
    size_t offset, size;
  };
  // What one level of the walk reuses from page to page.
  struct Scratch {
    std::string page;  // the page when it is not read through the map
    const char* data = nullptr;  // the page being checked at this level
    std::vector<Node> nodes, sorted;
    std::vector<std::string_view> keys;
  };

  // Checks one branch or leaf page and, for a branch, its subtrees. Keys
  // in the subtree lie in [low, high). Messages are built only on failure:
  // a large index has hundreds of thousands of nodes.
  Status WalkPage(uint64_t pgno, unsigned level, Bound low, Bound high, Counts* counts) {
    auto where = [&] { return what_ + ", page " + std::to_string(pgno); };
    auto node_at = [&](size_t i) { return where() + ", node " + std::to_string(i); };
    TUSK_RETURN_IF_ERROR(MarkInUse(pgno, 1, what_));
    stats_.pages++;
    Scratch& s = scratch_[level];
    uint64_t offset = pgno * psize_;
    if (map_ && offset <= map_len_ && psize_ <= map_len_ - offset) {
      s.data = map_ + offset;
    } else {
      s.page.resize(psize_);
      TUSK_RETURN_IF_ERROR(ReadAt(offset, psize_, s.page.data()));
      s.data = s.page.data();
    }
    const char* p = s.data;
    if (U64(p) != pgno) return Damaged(where() + ": its header says page " + std::to_string(U64(p)));
    uint16_t flags = U16(p + 10), lower = U16(p + 12), upper = U16(p + 14);
    bool leaf = level == depth_;
    if (flags != (leaf ? kLeafPage : kBranchPage))
      return Damaged(where() + ": flags " + std::to_string(flags) + ", expected a " + (leaf ? "leaf" : "branch") +
                     " page at depth " + std::to_string(level) + " of " + std::to_string(depth_));
    if (lower < kPageHeader + 2 || (lower - kPageHeader) % 2 != 0 || lower > upper || upper > psize_)
      return Damaged(where() + ": free space bounds " + std::to_string(lower) + ".." + std::to_string(upper) +
                     " do not fit the page");
    size_t n = (lower - kPageHeader) / 2;
    s.nodes.resize(n);
    s.keys.resize(n);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
      size_t off = U16(p + kPageHeader + 2 * i);
      if (off < upper || off % 2 != 0 || off + kNodeHeader > psize_)
        return Damaged(node_at(i) + ": offset " + std::to_string(off) + " is outside the node area");
      const char* node = p + off;
      size_t ksize = U16(node + 6);
      size_t size = kNodeHeader + ksize;
      if (leaf) size += (U16(node + 4) & kBigData) ? 8 : (U16(node) | size_t{U16(node + 2)} << 16);
      if (off + size > psize_) return Damaged(node_at(i) + ": runs past the end of the page");
      s.nodes[i] = {off, size + (size & 1)};
      used += s.nodes[i].size;
      s.keys[i] = std::string_view(node + kNodeHeader, ksize);
    }
    // LMDB packs nodes without gaps from the end of the page down to `upper`.
    s.sorted.assign(s.nodes.begin(), s.nodes.end());
    std::sort(s.sorted.begin(), s.sorted.end(), [](const Node& a, const Node& b) { return a.offset < b.offset; });
    for (size_t i = 1; i < n; i++)
      if (s.sorted[i - 1].offset + s.sorted[i - 1].size > s.sorted[i].offset)
        return Damaged(where() + ": nodes overlap at offset " + std::to_string(s.sorted[i].offset));
    if (used != psize_ - upper) return Damaged(where() + ": nodes do not fill the node area");
    // Keys: strictly increasing, inside [low, high). A branch's first key is
    // never compared by LMDB and is not checked.
    bool integer_keys = kind_ == TreeKind::kFree;
    Bound prev = low;
    bool prev_strict = false;  // low is inclusive, earlier keys exclusive
    for (size_t i = leaf ? 0 : 1; i < n; i++) {
      std::string_view key = s.keys[i];
      if (integer_keys && key.size() != 8)
        return Damaged(node_at(i) + ": a key of " + std::to_string(key.size()) + " bytes, not 8");
      if (prev.set) {
        int c = CompareKeys(key, prev.key, integer_keys);
        if (c < 0 || (c == 0 && prev_strict)) return Damaged(node_at(i) + ": its key is out of order");
      }
      if (high.set && CompareKeys(key, high.key, integer_keys) >= 0)
        return Damaged(node_at(i) + ": its key is beyond its parent's bound");
      prev = Bound{true, key};
      prev_strict = true;
    }
    if (!leaf) {
      counts->branch++;
      for (size_t i = 0; i < n; i++) {
        const Scratch& here = scratch_[level];
        const char* node = here.data + here.nodes[i].offset;
        uint64_t child = U16(node) | uint64_t{U16(node + 2)} << 16 | uint64_t{U16(node + 4)} << 32;
        Bound child_low = i == 0 ? low : Bound{true, here.keys[i]};
        Bound child_high = i + 1 < n ? Bound{true, here.keys[i + 1]} : high;
        TUSK_RETURN_IF_ERROR(WalkPage(child, level + 1, child_low, child_high, counts));
      }
      return Status::Ok();
    }
    counts->leaf++;
    for (size_t i = 0; i < n; i++) {
      TUSK_RETURN_IF_ERROR(CheckLeafNode(p + s.nodes[i].offset, s.keys[i], node_at, i, counts));
      counts->entries++;
    }
    return Status::Ok();
  }

  template <typename NodeAt>
  Status CheckLeafNode(const char* node, std::string_view key, const NodeAt& node_at, size_t i, Counts* counts) {
    uint16_t nflags = U16(node + 4);
    size_t dsize = U16(node) | size_t{U16(node + 2)} << 16;
    const char* data = node + kNodeHeader + key.size();
    uint16_t allowed = kind_ == TreeKind::kMain ? kSubData : kBigData;
    if ((nflags & ~allowed) != 0 || (kind_ == TreeKind::kMain && nflags != kSubData))
      return Damaged(node_at(i) + ": node flags " + std::to_string(nflags) + " are not used in this tree");
    std::string value;
    if (nflags & kBigData) {
      uint64_t first = U64(data);
      TUSK_RETURN_IF_ERROR(CheckOverflow(first, dsize, node_at(i), counts));
      if (kind_ == TreeKind::kFree) {
        value.resize(dsize);
        TUSK_RETURN_IF_ERROR(ReadAt(first * psize_ + kPageHeader, dsize, value.data()));
        data = value.data();
      }
    }
    if (kind_ == TreeKind::kMain) {
      if (dsize != kTreeRecordSize) return Damaged(node_at(i) + ": a table record of " + std::to_string(dsize) + " bytes");
      tables_.emplace_back(std::string(key), DecodeTree(data));
    } else if (kind_ == TreeKind::kFree) {
      uint64_t txnid = U64(key.data());
      if (txnid < 1 || txnid > meta_.txnid)
        return Damaged(node_at(i) + ": free list of transaction " + std::to_string(txnid) + ", after the last one");
      TUSK_RETURN_IF_ERROR(CheckFreeList(data, dsize, node_at(i)));
    }
    return Status::Ok();
  }

  Status CheckOverflow(uint64_t first, size_t dsize, const std::string& where, Counts* counts) {
    std::string what = where + ": overflow page " + std::to_string(first);
    if (first < 2 || first > meta_.last_page) return Damaged(what + " is outside the file");
    char header[kPageHeader];
    TUSK_RETURN_IF_ERROR(ReadAt(first * psize_, kPageHeader, header));
    uint32_t pages = U32(header + 12);
    if (U64(header) != first || U16(header + 10) != kOverflowPage || pages == 0)
      return Damaged(what + " is not an overflow page");
    if (uint64_t{pages} * psize_ - kPageHeader < dsize)
      return Damaged(what + ": " + std::to_string(pages) + " pages cannot hold " + std::to_string(dsize) + " bytes");
    TUSK_RETURN_IF_ERROR(MarkInUse(first, pages, what));
    counts->overflow += pages;
    stats_.pages++;
    return Status::Ok();
  }

  // A free list is LMDB's IDL: a count, then that many page numbers in
  // decreasing order (a record reserved but not filled has spare room).
  Status CheckFreeList(const char* data, size_t dsize, const std::string& where) {
    if (dsize < 8 || dsize % 8 != 0) return Damaged(where + ": a free list of " + std::to_string(dsize) + " bytes");
    uint64_t count = U64(data);
    if (count > dsize / 8 - 1)
      return Damaged(where + ": a free list of " + std::to_string(count) + " pages in " + std::to_string(dsize) + " bytes");
    uint64_t prev = kNoRoot;
    for (uint64_t i = 1; i <= count; i++) {
      uint64_t pgno = U64(data + 8 * i);
      if (pgno < 2 || pgno > meta_.last_page || pgno >= prev)
        return Damaged(where + ": free page " + std::to_string(pgno) + " is out of order or outside the file");
      free_list_.push_back(pgno);
      prev = pgno;
    }
    return Status::Ok();
  }

  int fd_;
  const char* map_ = nullptr;  // the file's first map_len_ bytes, read-only
  uint64_t map_len_ = 0;
  const Meta& meta_;
  uint32_t psize_;
  std::vector<uint8_t> state_;  // per page: 0, kInUse or kFree
  std::vector<uint64_t> free_list_;
  std::vector<std::pair<std::string, TreeRecord>> tables_;
  VerifyStats stats_;
  // The tree being walked.
  TreeKind kind_ = TreeKind::kTable;
  std::string what_;
  unsigned depth_ = 0;
  std::vector<Scratch> scratch_;  // by level, sized once: deeper levels never move shallower ones
};

}  // namespace

Result<MetaPages> ReadMetaPages(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat index");
  MetaPages pages;
  pages.file_size = static_cast<uint64_t>(st.st_size);
  if (pages.file_size == 0) return Status::NotFound("the index file is empty");
  uint64_t offset = 0;
  for (int slot = 0; slot < 2; slot++) {
    std::string& raw = pages.raw[slot];
    raw.assign(kPageHeader + kMetaSize, '\0');
    size_t done = 0;
    while (done < raw.size()) {
      ssize_t n = ::pread(fd, raw.data() + done, raw.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "read index meta page");
      if (n == 0)
        return Damaged("the file is " + std::to_string(pages.file_size) + " bytes long, too short for its meta pages");
      done += static_cast<size_t>(n);
    }
    pages.meta[slot] = DecodeMeta(raw);
    // Like LMDB, find the second meta page by the first one's page size.
    if (slot == 0) {
      if (!ValidPageSize(pages.meta[0].page_size()))
        return Damaged(MetaName(0) + ": page size " + std::to_string(pages.meta[0].page_size()) + " is not valid");
      offset = pages.meta[0].page_size();
    }
  }
  return pages;
}

Status CheckMetaPages(const MetaPages& pages) {
  for (int slot = 0; slot < 2; slot++) {
    MetaHeader h = DecodeHeader(pages.raw[slot]);
    const Meta& m = pages.meta[slot];
    std::string name = MetaName(slot);
    if (h.flags != kMetaPage || h.pgno != static_cast<uint64_t>(slot)) return Damaged(name + ": not marked as a meta page");
    if (h.magic != kMagic) return Damaged(name + ": wrong magic number");
    if (h.version != kDataVersion) return Damaged(name + ": LMDB data format " + std::to_string(h.version) + ", not 1");
    if (h.address != 0) return Damaged(name + ": a fixed map address, which tusk never uses");
    if (m.page_size() != pages.meta[0].page_size())
      return Damaged(name + ": page size " + std::to_string(m.page_size()) + " differs from meta page 0's");
    if (m.free_tree.flags != MDB_INTEGERKEY || m.main_tree.pad != 0 || m.main_tree.flags != 0)
      return Damaged(name + ": environment or table flags tusk never sets");
    // Transaction N writes meta page N % 2; a new file has 0 in both.
    if (m.txnid % 2 != static_cast<uint64_t>(slot) && m.txnid != 0)
      return Damaged(name + ": transaction " + std::to_string(m.txnid) + " cannot be in this meta page");
  }
  int newest = pages.meta[1].txnid > pages.meta[0].txnid ? 1 : 0;
  const Meta& n = pages.meta[newest];
  const Meta& o = pages.meta[1 - newest];
  if (n.txnid != o.txnid + 1 && !(n.txnid == 0 && o.txnid == 0))
    return Damaged("the meta pages hold transactions " + std::to_string(pages.meta[0].txnid) + " and " +
                   std::to_string(pages.meta[1].txnid) + ", which are not consecutive");
  std::string name = MetaName(newest);
  uint64_t psize = n.page_size();
  if (n.last_page < 1 || n.last_page >= kMaxPages)
    return Damaged(name + ": last page " + std::to_string(n.last_page) + " is impossible");
  if (n.map_size > kMaxMapSize) return Damaged(name + ": map size " + std::to_string(n.map_size) + " is impossible");
  uint64_t needed = (n.last_page + 1) * psize;
  if (pages.file_size < needed)
    return Damaged("the file is " + std::to_string(pages.file_size) + " bytes long but its pages reach " +
                   std::to_string(needed) + " (truncated?)");
  TUSK_RETURN_IF_ERROR(CheckTreeShape(n.free_tree, n.last_page, name + ", the free-page tree"));
  TUSK_RETURN_IF_ERROR(CheckTreeShape(n.main_tree, n.last_page, name + ", the table directory"));
  // The older snapshot is not read, but the file only grows.
  if (o.last_page > n.last_page)
    return Damaged(MetaName(1 - newest) + ": last page " + std::to_string(o.last_page) + " is beyond the newer snapshot's");
  return Status::Ok();
}

Result<VerifyStats> VerifySnapshot(int fd, const Meta& meta) { return Walker(fd, meta).Run(); }

}  // namespace tusk::lmdb_verify
