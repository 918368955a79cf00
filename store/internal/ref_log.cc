#include "store/internal/ref_log.h"

#include <signal.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <map>

#include "store/internal/crc32c.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"

namespace tusk {

Status StageRefBatch(LmdbEnv& env, LmdbTxn& txn, RefBatch* batch, PackWriter* pack) {
  uint64_t seq = 0;
  auto v = txn.Get(env.db(tables::kMeta), tables::kMetaRefSeq);
  if (v.ok()) {
    if (v->size() != 8) return Status::Corruption("bad ref sequence number in the index");
    std::memcpy(&seq, v->data(), 8);
  } else if (v.status().code() != Status::Code::kNotFound) {
    return v.status();
  }
  // Records of one batch on one key chain to each other.
  std::map<std::string, ObjectId> prev_in_batch;
  std::vector<ObjectId> ids;
  std::vector<std::string> encodings;
  for (RefRecord r : batch->records) {
    r.seq = ++seq;
    std::string key = r.Key();
    auto in_batch = prev_in_batch.find(key);
    if (in_batch != prev_in_batch.end()) {
      r.prev = in_batch->second;
    } else {
      auto cur = txn.Get(env.db(tables::kRefRecords), key);
      if (cur.ok()) {
        TUSK_ASSIGN_OR_RETURN(RefRecordPointer p, RefRecordPointer::Decode(*cur));
        r.prev = p.id;
      } else if (cur.status().code() != Status::Code::kNotFound) {
        return cur.status();
      }
    }
    std::string enc = r.Encode();
    ObjectId id = HashObject(ObjectType::kRef, enc);
    prev_in_batch[key] = id;
    ids.push_back(id);
    encodings.push_back(std::move(enc));
    TUSK_RETURN_IF_ERROR(txn.Put(env.db(tables::kRefRecords), key, RefRecordPointer{id, r.seq, r.time_ns}.Encode()));
  }
  if (batch->staged) {
    // A retried transaction: the pack already holds the records it wrote.
    if (ids != batch->ids)
      return Status::Conflict("the index changed while this change was being recorded; nothing was changed, run the command again");
  } else {
    for (size_t i = 0; i < encodings.size(); i++) {
      const std::string& enc = encodings[i];
      TUSK_RETURN_IF_ERROR(pack->Append(ObjectType::kRef, ids[i], Codec::kRaw, static_cast<uint32_t>(enc.size()), enc,
                                        Crc32c(enc.data(), enc.size()))
                               .status());
    }
    batch->ids = ids;
    batch->staged = true;
  }
  Encoder e;
  e.PutFixed64(seq);
  return txn.Put(env.db(tables::kMeta), tables::kMetaRefSeq, e.buffer());
}

Status RegisterPack(LmdbEnv& env, LmdbTxn& txn, const PackWriter& pack) {
  auto objects = env.db(tables::kObjects);
  for (const auto& r : pack.records()) TUSK_RETURN_IF_ERROR(txn.Put(objects, r.id.view(), r.location.Encode()));
  Encoder e;
  e.PutFixed64(pack.size());
  e.PutFixed32(static_cast<uint32_t>(pack.records().size()));
  return txn.Put(env.db(tables::kPacks), tables::PackKey(pack.id()), e.buffer());
}

Result<std::unique_ptr<PackWriter>> CreatePendingPack(LmdbEnv& env, PackDirectory* packs) {
  TUSK_ASSIGN_OR_RETURN(auto w, PackWriter::Create(packs));
  Status st = env.Update([&](LmdbTxn& txn) { return txn.Put(env.db(tables::kPacks), tables::PackKey(w->id()), ""); });
  if (!st.ok()) {
    // Nothing was written to it yet: an empty file that gc can prove is garbage.
    (void)packs->Remove(w->id());
    return st;
  }
  return w;
}

Status DropPendingPack(LmdbEnv& env, PackDirectory* packs, PackId id) {
  TUSK_RETURN_IF_ERROR(packs->Remove(id));
  return env.Update([&](LmdbTxn& txn) -> Status {
    auto v = txn.Get(env.db(tables::kPacks), tables::PackKey(id));
    if (v.ok() && tables::IsPendingPack(*v)) return txn.Delete(env.db(tables::kPacks), tables::PackKey(id));
    return Status::Ok();
  });
}

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void KillPointForTests(const char* point) {
  static const char* at = std::getenv("TUSK_TEST_KILL_AT");
  if (at && std::strcmp(at, point) == 0) ::raise(SIGKILL);
}

}  // namespace tusk
