// Reading from remotes: a chunk's way from a bucket to a reader (handed over
// by a read-ahead, from the mirror, or fetched now), and which chunks a
// read-ahead fetches (store/internal/remote_reader.h does the queueing).
#include "store/backend/pack_mirror.h"
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
        [this](PackId pack, const RemoteReader::Span& span, bool read_ahead) {
          return FetchRemoteSpan(pack, span, read_ahead, nullptr);
        },
        remote_fetch_threads_);
    remote_reader_ready_ = true;
  });
  return *remote_reader_;
}

namespace {
constexpr uint64_t kPackReadAhead = uint64_t{32} << 20;
// A read within this of where the last one ended goes on in pack order.
constexpr uint64_t kSequentialSlack = uint64_t{1} << 20;
constexpr size_t kMaxFootersKept = 1024;
constexpr uint32_t kMaxReadAheadRecord = uint32_t{64} << 20;
constexpr uint64_t kMaxReadAheadPack = uint64_t{256} << 20;
}  // namespace

void Repository::ReadAheadInPack(const ObjectLocation& loc) {
  uint64_t from, to;
  std::shared_ptr<const std::vector<PackRecord>> records;
  {
    std::lock_guard lock(pack_reading_mu_);
    PackReading& r = pack_reading_[loc.pack];
    bool sequential = r.last_end != 0 && loc.offset + kSequentialSlack >= r.last_end &&
                      loc.offset <= r.last_end + kSequentialSlack;
    r.last_end = loc.offset + RecordExtent(loc);
    // Random readers get what they read, no more; sequential ones are asked
    // for again once past half of what was asked, so requests stay large.
    if (!sequential || r.asked_until > loc.offset + kPackReadAhead / 2) return;
    from = std::max(r.asked_until, r.last_end);
    to = loc.offset + kPackReadAhead;
    r.asked_until = to;
    auto it = remote_footers_.find(loc.pack);
    if (it != remote_footers_.end()) records = it->second;
  }
  if (!records) {
    // The pack's table of contents, read once (two small requests), from a
    // pack no larger than any tusk writes (a bucket is not trusted).
    auto size = packs_->OpenedSize(loc.pack);
    if (!size.ok() || *size > kMaxReadAheadPack) return;
    auto listed = packs_->ListRecords(loc.pack);
    if (!listed.ok()) return;  // read-ahead only: the reader will say what is wrong
    auto sorted = std::make_shared<std::vector<PackRecord>>(std::move(listed).value());
    std::sort(sorted->begin(), sorted->end(),
              [](const PackRecord& a, const PackRecord& b) { return a.location.offset < b.location.offset; });
    records = sorted;
    std::lock_guard lock(pack_reading_mu_);
    if (remote_footers_.size() >= kMaxFootersKept) remote_footers_.clear();
    remote_footers_[loc.pack] = records;
  }
  std::vector<std::pair<ObjectId, ObjectLocation>> wanted;
  auto first = std::lower_bound(records->begin(), records->end(), from,
                                [](const PackRecord& r, uint64_t at) { return r.location.offset < at; });
  for (auto it = first; it != records->end() && it->location.offset < to; ++it) {
    // (A bucket is not trusted: no record larger than any tusk writes.)
    if (it->location.type != ObjectType::kChunk || it->location.stored_len > kMaxReadAheadRecord ||
        it->location.raw_len > kMaxReadAheadRecord)
      continue;
    wanted.emplace_back(it->id, it->location);  // those mirrored already are left out on the pool
  }
  if (!wanted.empty()) (void)remote_reader().Fetch(std::move(wanted), /*wait=*/false);
}

Status Repository::ReadRemoteChunk(const ObjectId& id, const ObjectLocation& loc, std::string* out) {
  ReadAheadInPack(loc);
  // The mirror's records are read as local ones: header, CRC (and the hash
  // when the reader asks for it). A hole, a torn or a damaged record is a
  // miss, fetched again.
  auto from_mirror = [&] {
    if (!mirror_packs_->ReadRecord(id, loc, verify_chunk_hashes_, out).ok()) return false;
    mirror_->Touch(loc.pack);
    return true;
  };
  // Fetched ahead and handed over in memory (checked when fetched).
  std::optional<std::string> landed;
  if (remote_reader_ready_ && (landed = remote_reader_->Take(id))) {
    *out = std::move(*landed);
    return Status::Ok();
  }
  if (from_mirror()) return Status::Ok();
  // Being fetched ahead now: wait for it rather than ask the bucket again.
  if (remote_reader_ready_ && remote_reader_->WaitFor(id)) {
    if ((landed = remote_reader_->Take(id))) {
      *out = std::move(*landed);
      return Status::Ok();
    }
    if (from_mirror()) return Status::Ok();
  }
  return FetchRemoteSpan(loc.pack, {{id, loc}}, /*read_ahead=*/false, out);
}

Status Repository::FetchRemoteSpan(uint64_t pack, const std::vector<std::pair<ObjectId, ObjectLocation>>& asked,
                                   bool read_ahead, std::string* want) {
  // What the mirror holds already is not fetched again. Checked here, on
  // the pool, not by the reader that asked: on a cold page cache each check
  // is a disk read.
  std::vector<std::pair<ObjectId, ObjectLocation>> span;
  for (const auto& r : asked) {
    auto held = want ? Result<bool>(false) : mirror_packs_->HoldsRecord(r.first, r.second);
    if (!held.ok() || !*held) span.push_back(r);
  }
  if (span.empty()) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(std::string header, packs_->PackHeader(pack));
  TUSK_ASSIGN_OR_RETURN(uint64_t pack_size, packs_->OpenedSize(pack));
  std::vector<std::string> bytes;
  std::vector<PackMirror::Record> records;
  bytes.reserve(span.size());
  // Every record is checked against its id (a bucket is not trusted: its
  // CRCs could be made to match) before anything else sees it.
  TUSK_RETURN_IF_ERROR(
      packs_->ReadRecords(pack, span, /*verify_hash=*/true, [&](const PackDirectory::SpanRecord& r) -> Status {
        bytes.emplace_back(r.record);
        records.push_back({r.loc.offset, bytes.back()});
        if (want && r.id == span.front().first) *want = std::move(r.plaintext);
        else if (read_ahead) remote_reader_->Land(r.id, std::move(r.plaintext));
        return Status::Ok();
      }));
  auto written = mirror_->Write(pack, pack_size, header, records);
  // Readers holding the mirror file open may hold one another process
  // removed: they open it again.
  mirror_packs_->Forget(pack);
  // A fetch whose only job is the mirror (a prefetch's) fails without it; a
  // reader's costs a fetch next time (a full disk, a store this user may
  // only read).
  if (!written.ok() && !read_ahead && !want) return written.status();
  return Status::Ok();
}

Result<bool> Repository::RemoteChunkCached(const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(std::optional<ObjectLocation> loc, FindObject(id));
  if (!loc) return false;
  return mirror_packs_->HoldsRecord(id, *loc);
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
      if (!remote) continue;
      wanted.emplace_back(id, loc);  // those mirrored already are left out on the pool
    }
  }
  if (wanted.empty()) return Status::Ok();
  return remote_reader().Fetch(std::move(wanted), wait);
}

}  // namespace tusk
