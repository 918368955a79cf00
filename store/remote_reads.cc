// Reading ahead from remotes: which chunks a read-ahead fetches, and how a
// fetched span of records reaches the cache (store/internal/remote_reader.h
// does the queueing).
#include "store/backend/disk_chunk_cache.h"
#include "store/backend/routing_pack_store.h"
#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/remote_reader.h"
#include "store/internal/tables.h"
#include "store/repository.h"

namespace tusk {

Status Repository::NoteRemotePacks() {
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  bool any = false;
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view, std::string_view v) {
    tables::PackValue value;
    any = tables::DecodePackValue(v, &value) && !value.remote.empty();
    return !any;
  }));
  has_remote_packs_ = any;
  return Status::Ok();
}

RemoteReader& Repository::remote_reader() {
  std::call_once(remote_reader_once_, [this] {
    remote_reader_ = std::make_unique<RemoteReader>(
        [this](PackId pack, const RemoteReader::Span& span, bool read_ahead) -> Status {
          // Every chunk is checked against its id (a bucket is not trusted)
          // before it enters the cache; a chunk that cannot be kept fails
          // the span, so that prefetch reports it. Read-ahead also hands
          // the chunks to the reader about to ask for them, in memory.
          return packs_->ReadRecords(pack, span, /*verify_hash=*/true, [&](const ObjectId& id, std::string&& plain) {
            Status kept = remote_cache_->Put(id, plain);
            if (read_ahead) {
              remote_reader_->Land(id, std::move(plain));
              return Status::Ok();  // in memory for now; the cache is best effort here
            }
            return kept;
          });
        },
        remote_fetch_threads_);
    remote_reader_ready_ = true;
  });
  return *remote_reader_;
}

Status Repository::FetchRemoteChunks(const std::vector<ObjectId>& chunks, bool wait) {
  if (!has_remote_packs_ || chunks.empty()) return Status::Ok();
  std::vector<std::pair<ObjectId, ObjectLocation>> wanted;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    auto objects = env_->db(tables::kObjects);
    for (const ObjectId& id : chunks) {
      auto v = txn.Get(objects, id.view());
      if (!v.ok()) {
        if (v.status().code() == Status::Code::kNotFound) continue;  // the reader will say so
        return v.status();
      }
      TUSK_ASSIGN_OR_RETURN(ObjectLocation loc, ObjectLocation::Decode(*v));
      if (loc.type != ObjectType::kChunk) continue;
      TUSK_ASSIGN_OR_RETURN(bool remote, routing_->IsRemote(loc.pack));
      if (!remote || remote_cache_->Contains(id)) continue;
      wanted.emplace_back(id, loc);
    }
  }
  if (wanted.empty()) return Status::Ok();
  return remote_reader().Fetch(std::move(wanted), wait);
}

}  // namespace tusk
