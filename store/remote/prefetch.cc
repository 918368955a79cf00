// Warming the cache of remote data before a job reads it.
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "store/internal/pack.h"
#include "store/remote/remote.h"

namespace tusk {
namespace {

// The distinct chunks of every file under `root` (a directory) or of the
// file `entry`.
Status CollectChunks(Repository& repo, const TreeEntry& entry, std::unordered_set<ObjectId, ObjectIdHash>* seen,
                     std::vector<ChunkRef>* chunks, uint64_t* files) {
  if (entry.kind == EntryKind::kDirectory) {
    std::vector<TreeEntry> subdirs;
    TUSK_RETURN_IF_ERROR(ForEachEntry(repo, entry.tree, [&](const TreeEntry& e) {
      if (e.kind == EntryKind::kDirectory) {
        subdirs.push_back(e);
        return true;
      }
      if (e.kind == EntryKind::kFile) (*files)++;
      for (const ChunkRef& c : e.chunks)
        if (!c.IsHole() && seen->insert(c.id).second) chunks->push_back(c);
      return true;
    }));
    for (const TreeEntry& sub : subdirs) TUSK_RETURN_IF_ERROR(CollectChunks(repo, sub, seen, chunks, files));
    return Status::Ok();
  }
  if (entry.kind == EntryKind::kFile) (*files)++;
  for (const ChunkRef& c : entry.chunks)
    if (!c.IsHole() && seen->insert(c.id).second) chunks->push_back(c);
  return Status::Ok();
}

}  // namespace

Result<PrefetchReport> Prefetch(Repository& repo, const ObjectId& commit, const std::vector<std::string>& paths,
                                int threads, Progress* progress) {
  TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(commit));
  PrefetchReport report;
  std::unordered_set<ObjectId, ObjectIdHash> seen;
  std::vector<ChunkRef> chunks;
  std::vector<std::string> roots = paths.empty() ? std::vector<std::string>{""} : paths;
  for (const std::string& path : roots) {
    auto entry = LookupPath(repo, c.root, path);
    if (!entry.ok()) return entry.status().Annotate("prefetch " + path);
    TUSK_RETURN_IF_ERROR(CollectChunks(repo, *entry, &seen, &chunks, &report.files));
  }
  std::vector<ChunkRef> wanted;
  for (const ChunkRef& chunk : chunks) {
    report.chunks++;
    report.bytes += chunk.length;
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectLocation> loc, repo.FindObject(chunk.id));
    if (!loc) return Status::Corruption("chunk " + chunk.id.Hex() + " is missing from the store");
    TUSK_ASSIGN_OR_RETURN(bool remote, repo.IsRemotePack(loc->pack));
    if (!remote) {
      report.chunks_local++;
      continue;
    }
    report.bytes_remote += chunk.length;
    TUSK_ASSIGN_OR_RETURN(bool cached, repo.RemoteChunkCached(chunk.id));
    if (cached) report.chunks_cached++;
    else wanted.push_back(chunk);
  }
  if (progress) {
    progress->items_total = wanted.size();
    for (const ChunkRef& chunk : wanted) progress->bytes_total += chunk.length;
  }
  // Batches of neighbouring chunks (tree order is mostly pack order), each
  // fetched in ranged requests of several chunks (Repository::
  // FetchRemoteChunks); two batches at a time keep the requests flowing
  // while one batch waits for its last span.
  constexpr uint64_t kBatchBytes = uint64_t{64} << 20;
  std::vector<std::pair<size_t, size_t>> batches;  // [begin, end) of wanted
  for (size_t begin = 0, at = 0; at < wanted.size(); begin = at) {
    uint64_t bytes = 0;
    while (at < wanted.size() && (at == begin || bytes + wanted[at].length <= kBatchBytes)) bytes += wanted[at++].length;
    batches.emplace_back(begin, at);
  }
  repo.set_remote_fetch_threads(static_cast<unsigned>(std::max(1, threads)));
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status failed;
  auto work = [&] {
    for (size_t b; (b = next++) < batches.size();) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.ok()) return;
      }
      std::vector<ObjectId> ids;
      for (size_t i = batches[b].first; i < batches[b].second; i++) ids.push_back(wanted[i].id);
      // Fetched chunks go to the cache; one that cannot be kept fails the
      // batch: a prefetch that could not cache has failed at its one job.
      Status st = repo.FetchRemoteChunks(ids, /*wait=*/true);
      std::lock_guard<std::mutex> lock(mu);
      if (!st.ok()) {
        if (failed.ok()) failed = st;
        return;
      }
      for (size_t i = batches[b].first; i < batches[b].second; i++) {
        report.chunks_fetched++;
        report.bytes_fetched += wanted[i].length;
        if (progress) {
          progress->items_done++;
          progress->bytes_done += wanted[i].length;
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < std::min<size_t>(2, batches.size()); t++) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  TUSK_RETURN_IF_ERROR(failed);
  return report;
}

}  // namespace tusk
