#include "store/merge/content_merge.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "store/chunker.h"
#include "store/repository.h"

namespace tusk {
namespace {

// Content this large is read and stored on several threads: decompressing
// and re-hashing the three versions of a large table, and compressing and
// hashing the result, is most of such a merge's time on one core. Smaller
// content is not worth starting threads for.
constexpr uint64_t kParallelBytes = 4 << 20;
constexpr unsigned kMaxThreads = 4;

unsigned Threads(size_t jobs) {
  size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(std::min<size_t>({jobs, kMaxThreads, cores}));
}

// Starts up to `n` threads running `work` (fewer if the system refuses
// more: the caller's own thread runs `work` too, so none is needed).
void StartWorkers(unsigned n, const std::function<void()>& work, std::vector<std::thread>* workers) {
  try {
    for (unsigned i = 0; i < n; i++) workers->emplace_back(work);
  } catch (const std::system_error&) {
  }
}

// A file's content in one buffer of exactly its size, filled in place (no
// string growing by appends, no copy of the whole). Mapped with huge pages
// advised: first touches of fresh 4 KiB pages cost a large merge more than
// its reading (three 40 MB versions: some 30,000 page faults).
class Content {
 public:
  Content() = default;
  Content(const Content&) = delete;
  Content& operator=(const Content&) = delete;
  Content(Content&& o) noexcept : map_(std::exchange(o.map_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  ~Content() {
    if (map_) ::munmap(map_, size_);
  }
  Status Allocate(size_t size) {
    if (size == 0) return Status::Ok();
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::FromErrno(errno, "cannot map " + std::to_string(size) + " bytes");
    map_ = p;
    size_ = size;
    (void)::madvise(p, size, MADV_HUGEPAGE);  // advice: without it (or THP) merely slower
    return Status::Ok();
  }
  char* data() { return static_cast<char*>(map_); }
  std::string_view view() const { return {static_cast<const char*>(map_), size_}; }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
};

struct ChunkRead {
  const ChunkRef* ref;
  char* at;
};

// Reads the files' contents (null entries stay empty), chunks on up to
// kMaxThreads threads at once. Errors: those of ReadObject (Corruption for
// a damaged or short chunk), InvalidArgument for an entry that is not a
// regular file.
Status ReadContents(Repository& repo, const std::vector<const TreeEntry*>& entries, std::vector<Content>* out) {
  out->clear();
  out->resize(entries.size());
  std::vector<ChunkRead> reads;
  uint64_t total = 0;
  for (size_t i = 0; i < entries.size(); i++) {
    const TreeEntry* e = entries[i];
    if (!e) continue;
    if (e->kind != EntryKind::kFile) return Status::InvalidArgument(e->name + " is not a regular file");
    Content& c = (*out)[i];
    TUSK_RETURN_IF_ERROR(c.Allocate(e->size));
    uint64_t at = 0;
    for (const auto& ref : e->chunks) {
      // Tree decoding checks that the lengths add up to the size; a buffer
      // overrun must not depend on that.
      if (ref.length > e->size - at) {
        return Status::Corruption("tree entry " + e->name + ": chunks longer than its size");
      }
      if (!ref.IsHole()) reads.push_back({&ref, c.data() + at});  // a hole: the mapping's zeros
      at += ref.length;
    }
    if (at != e->size) return Status::Corruption("tree entry " + e->name + ": chunks shorter than its size");
    total += e->size;
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < reads.size();) {
      const ChunkRef& ref = *reads[k].ref;
      auto data = repo.ReadObject(ref.id, ObjectType::kChunk);
      Status st = data.ok() ? CheckChunkLength(ref, data->size()) : data.status();
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok()) first_error = st;
        next = reads.size();  // the others stop too
        return;
      }
      std::memcpy(reads[k].at, data->data(), data->size());
    }
  };
  std::vector<std::thread> workers;
  if (total >= kParallelBytes) StartWorkers(Threads(reads.size()) - 1, work, &workers);
  work();
  for (auto& w : workers) w.join();
  return first_error;
}

std::string TooLargeDetail(const TreeEntry* b, const TreeEntry& o, const TreeEntry& t) {
  uint64_t largest = std::max({b ? b->size : 0, o.size, t.size});
  return "changed on both sides; " + std::to_string(largest) + " bytes is above the " +
         std::to_string(kMaxLineMergeBytes >> 20) + " MiB limit of a line or table merge";
}

}  // namespace

Result<std::vector<ChunkRef>> StoreContent(Repository& repo, WriteSession& session, std::string_view content) {
  Chunker chunker(repo.config().chunker);
  const auto* p = reinterpret_cast<const uint8_t*>(content.data());
  if (content.size() < kParallelBytes) {
    std::vector<ChunkRef> chunks;
    for (size_t at = 0; at < content.size();) {
      size_t len = chunker.NextCut(p + at, content.size() - at, true);
      std::string_view piece = content.substr(at, len);
      ObjectId id = Sha256::Of(piece.data(), piece.size());
      TUSK_RETURN_IF_ERROR(session.PutChunk(id, piece).status());
      chunks.push_back({id, len});
      at += len;
    }
    return chunks;
  }
  // Cut here; each chunk hashed and stored (compressed) on a worker as soon
  // as it is cut. The chunks are views of `content`: no copies.
  struct Cut {
    std::string_view piece;
    ChunkRef* ref;
  };
  std::deque<ChunkRef> chunks;  // the workers fill in ids: elements must stay put
  std::vector<Cut> cuts;
  size_t taken = 0;
  bool cutting = true;
  Status error;
  std::mutex mu;
  std::condition_variable ready;
  auto work = [&] {
    for (;;) {
      Cut cut;
      {
        std::unique_lock lock(mu);
        ready.wait(lock, [&] { return taken < cuts.size() || !cutting || !error.ok(); });
        if (taken == cuts.size() || !error.ok()) return;
        cut = cuts[taken++];
      }
      cut.ref->id = Sha256::Of(cut.piece.data(), cut.piece.size());
      Status st = session.PutChunk(cut.ref->id, cut.piece).status();
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (error.ok()) error = st;
        ready.notify_all();
        return;
      }
    }
  };
  std::vector<std::thread> workers;
  StartWorkers(Threads(kMaxThreads) - 1, work, &workers);
  for (size_t at = 0; at < content.size();) {
    size_t len = chunker.NextCut(p + at, content.size() - at, true);
    std::lock_guard lock(mu);
    if (!error.ok()) break;
    chunks.push_back({ObjectId(), len});
    cuts.push_back({content.substr(at, len), &chunks.back()});
    ready.notify_one();
    at += len;
  }
  {
    std::lock_guard lock(mu);
    cutting = false;
    ready.notify_all();
  }
  work();
  for (auto& w : workers) w.join();
  if (!error.ok()) return error;
  return std::vector<ChunkRef>(chunks.begin(), chunks.end());
}

Result<ContentMergeOutput> MergeFileContent(Repository& repo, WriteSession& session, const ContentMergeInput& in,
                                            const TreeMergeOptions& options) {
  ContentMergeOutput out;
  const TreeEntry& o = *in.ours;
  const TreeEntry& t = *in.theirs;
  const TreeEntry& favoured = options.favor == MergeFavor::kTheirs ? t : o;
  auto keep_favoured = [&]() {
    out.chunks = favoured.chunks;
    out.size = favoured.size;
  };
  const FileFormat declared = options.file_format ? options.file_format(in.path) : FileFormat::kDetect;
  if (declared == FileFormat::kBinary) {
    out.conflict = MergeConflict{MergeConflict::Kind::kBinary, "",
                                 "changed on both sides; declared binary (tusk table set --format binary)", {}};
    keep_favoured();
    return out;
  }
  uint64_t largest = std::max({in.base ? in.base->size : 0, o.size, t.size});
  if (largest > kMaxLineMergeBytes) {
    out.conflict = MergeConflict{MergeConflict::Kind::kBinary, "", TooLargeDetail(in.base, o, t), {}};
    keep_favoured();
    return out;
  }
  std::vector<Content> contents;
  TUSK_RETURN_IF_ERROR(ReadContents(repo, {in.base, in.ours, in.theirs}, &contents));
  const std::string_view base = contents[0].view(), ours = contents[1].view(), theirs = contents[2].view();

  if (auto format = TableFormatFor(declared, in.path)) {
    KeySpec key = options.table_key ? options.table_key(in.path) : std::nullopt;
    TableFavor favor = options.favor == MergeFavor::kOurs     ? TableFavor::kOurs
                       : options.favor == MergeFavor::kTheirs ? TableFavor::kTheirs
                                                              : TableFavor::kNone;
    auto merged = MergeTables(base, ours, theirs, *format, key, favor);
    if (merged.ok()) {
      out.method = std::string("table, ") + merged->key.Describe();
      if (merged->clean || options.favor != MergeFavor::kNone) {
        if (!merged->clean) {
          // Only schema conflicts remain (MergeTables resolved the rest):
          // the favoured side's whole file.
          out.note = "columns changed differently on both sides: took " +
                     std::string(options.favor == MergeFavor::kOurs ? "ours" : "theirs") + " whole";
          keep_favoured();
          return out;
        }
        TUSK_ASSIGN_OR_RETURN(out.chunks, StoreContent(repo, session, merged->merged));
        out.size = merged->merged.size();
        return out;
      }
      size_t n = merged->conflicts.size();
      out.conflict = MergeConflict{MergeConflict::Kind::kTable, "",
                                   std::to_string(n) + (n == 1 ? " conflict" : " conflicts") + " (" +
                                       merged->key.Describe() + ")",
                                   std::move(merged->conflicts)};
      out.marked = std::move(merged->merged);
      keep_favoured();
      return out;
    }
    out.note = std::string("not merged as a ") + TableFormatName(*format) + " table: " + merged.status().message();
  }

  if (!LooksLikeText(base) || !LooksLikeText(ours) || !LooksLikeText(theirs)) {
    out.method.clear();
    out.conflict = MergeConflict{MergeConflict::Kind::kBinary, "", "binary content changed on both sides", {}};
    keep_favoured();
    return out;
  }
  LineMergeLabels labels = options.labels;
  labels.favor = options.favor == MergeFavor::kOurs     ? LineMergeLabels::Favor::kOurs
                 : options.favor == MergeFavor::kTheirs ? LineMergeLabels::Favor::kTheirs
                                                        : LineMergeLabels::Favor::kNone;
  TUSK_ASSIGN_OR_RETURN(LineMergeResult lines, MergeLines(base, ours, theirs, labels));
  out.method = "lines";
  if (lines.clean) {
    TUSK_ASSIGN_OR_RETURN(out.chunks, StoreContent(repo, session, lines.merged));
    out.size = lines.merged.size();
    return out;
  }
  if (options.favor != MergeFavor::kNone)
    return Status::Corruption("a line merge favouring one side left conflicts in " + in.path);
  out.conflict = MergeConflict{MergeConflict::Kind::kText, "",
                               std::to_string(lines.conflicts) + (lines.conflicts == 1 ? " conflicting hunk" : " conflicting hunks"),
                               {}};
  out.marked = std::move(lines.merged);
  keep_favoured();
  return out;
}

}  // namespace tusk
