// Rebuilding the index from the packs, and finding packs the index does not
// know. See store/FORMAT.md, "Ref records" and "Rebuilding the index".
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "store/backend/routing_pack_store.h"
#include "store/internal/file.h"
#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/ref_record.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"
#include "store/lineage/run_index.h"
#include "store/repository.h"

namespace tusk {
namespace {

// A pack with no complete record (a writer was killed between creating the
// file and writing to it) holds nothing, whatever any index says.
bool HoldsNoRecord(PackDirectory& packs, PackId id) {
  auto size = packs.SizeOf(id);
  if (size.ok() && *size < kPackHeaderSize) return true;
  auto records = packs.ListRecords(id);
  return records.ok() && records->empty();
}

std::string TimestampForName() {
  time_t now = ::time(nullptr);
  struct tm tm;
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Whether an unsealed-looking pack ends in exactly a footer and trailer for
// its records: a sealed pack whose footer or trailer was damaged, not a
// pack a writer never finished.
bool LooksSealed(PackDirectory& packs, PackId id, const std::vector<PackRecord>& records) {
  if (records.empty()) return false;
  auto size = packs.SizeOf(id);
  if (!size.ok()) return false;
  const ObjectLocation& last = records.back().location;
  uint64_t end = last.offset + kRecordHeaderSize + last.stored_len + RangeTableSize(last.codec, last.stored_len, last.raw_len);
  return *size == end + records.size() * kFooterEntrySize + kTrailerSize;
}

// A PackStore shared with the remote source, for a PackDirectory of its own.
class SharedPackStore final : public PackStore {
 public:
  explicit SharedPackStore(std::shared_ptr<PackStore> store) : store_(std::move(store)) {}
  std::string Describe(PackId id) const override { return store_->Describe(id); }
  Result<std::unique_ptr<RandomAccessFile>> Open(PackId id) override { return store_->Open(id); }
  Result<std::unique_ptr<PackSink>> Create(PackId id) override { return store_->Create(id); }
  Result<std::vector<PackId>> List() override { return store_->List(); }
  Status Remove(PackId id) override { return store_->Remove(id); }
  Result<uint64_t> Size(PackId id) override { return store_->Size(id); }

 private:
  std::shared_ptr<PackStore> store_;
};

Status RegisterRemoteForRebuild(RemotePackSource& remotes, const std::string& name,
                                std::map<ObjectId, ObjectLocation>* objects, std::map<PackId, std::string>* pack_values,
                                RebuildReport* report) {
  TUSK_ASSIGN_OR_RETURN(std::shared_ptr<PackStore> store, remotes.Open(name));
  PackDirectory packs(std::make_unique<SharedPackStore>(store));
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> ids, packs.ListPacks());
  std::sort(ids.begin(), ids.end());
  for (PackId p : ids) {
    if (pack_values->count(p)) continue;  // here too: the local copy is read
    bool sealed = false;
    auto listed = packs.ListRecords(p, &sealed);
    if (!listed.ok() || !sealed) {
      report->warnings.push_back("pack " + packs.PathOf(p) + " skipped: " +
                                 (listed.ok() ? std::string("it has no valid footer") : listed.status().message()));
      continue;
    }
    TUSK_ASSIGN_OR_RETURN(uint64_t size, packs.SizeOf(p));
    (*pack_values)[p] = tables::EncodePackValue({size, static_cast<uint32_t>(listed->size()), name});
    report->packs++;
    for (const auto& r : *listed)
      if (r.location.type != ObjectType::kRef) objects->emplace(r.id, r.location);
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<PackId>> Repository::UnknownPacks(std::vector<PackId>* garbage) {
  std::set<PackId> known;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kPacks), "", [&](std::string_view k, std::string_view) {
      known.insert(tables::PackFromKey(k));
      return true;
    }));
  }
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> on_disk, packs_->ListPacks());
  std::sort(on_disk.begin(), on_disk.end());
  std::vector<PackId> unknown;
  for (PackId p : on_disk) {
    if (known.count(p)) continue;
    if (HoldsNoRecord(*packs_, p)) {
      if (garbage) garbage->push_back(p);
    } else {
      unknown.push_back(p);
    }
  }
  return unknown;
}

Result<RebuildReport> Repository::RebuildIndex(const std::string& dir, Progress* progress, Env* files) {
  std::string config_path = JoinPath(dir, "config");
  auto text = ReadWholeFile(files, config_path);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kNotFound)
      return Status::NotFound(dir + " is not a tusk store (no config file)");
    return text.status();
  }
  TUSK_ASSIGN_OR_RETURN(StoreConfig config, StoreConfig::Parse(*text, config_path));
  if (config.format_version == 1)
    return Status::Unsupported(dir + " is a format-1 store: its branches and tags exist only in its index, so the index "
                               "cannot be rebuilt from the packs. Open it once with this tusk while the index is intact "
                               "(any command upgrades it to format 2, which records them in the packs)");
  TUSK_ASSIGN_OR_RETURN(Fd lock, OpenFile(JoinPath(dir, "lock"), O_RDWR | O_CREAT, 0644));
  int rc;
  do {
    rc = ::flock(lock.get(), LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Status::FromErrno(errno, "lock " + dir);

  RebuildReport report;
  PackDirectory packs(JoinPath(dir, "packs"), files);
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> ids, packs.ListPacks());
  std::sort(ids.begin(), ids.end());
  if (progress) progress->items_total = ids.size();

  std::map<ObjectId, ObjectLocation> objects;  // the first copy in pack-id order wins
  std::map<PackId, std::string> pack_values;   // registered (size | count) or pending (empty)
  std::vector<StoredRefRecord> records;
  std::string plain;
  for (PackId p : ids) {
    if (progress) progress->items_done++;
    auto size = packs.SizeOf(p);
    if (!size.ok()) return size.status();
    if (*size < kPackHeaderSize) continue;  // holds nothing; gc removes it
    bool sealed = false;
    auto listed = packs.ListRecords(p, &sealed);
    if (!listed.ok()) {
      report.warnings.push_back("pack " + PackName(p) + " skipped: " + listed.status().message() +
                                " (left unregistered: gc refuses to run until it is repaired or moved away)");
      continue;
    }
    if (!sealed && LooksSealed(packs, p, *listed)) {
      sealed = true;
      report.warnings.push_back("pack " + PackName(p) + ": footer or trailer damaged; its records were read one by one");
    }
    if (!sealed) {
      // Nothing is committed before its pack is sealed, so an unsealed pack
      // (a writer killed while writing it) holds only garbage.
      report.unsealed_packs++;
      pack_values[p] = "";
      continue;
    }
    report.packs++;
    Encoder e;
    e.PutFixed64(*size);
    e.PutFixed32(static_cast<uint32_t>(listed->size()));
    pack_values[p] = e.Take();
    for (const auto& r : *listed) {
      objects.emplace(r.id, r.location);
      if (r.location.type != ObjectType::kRef) continue;
      Status st = packs.ReadRecord(r.id, r.location, true, &plain);
      if (st.ok() && HashObject(ObjectType::kRef, plain) != r.id) st = Status::Corruption("does not hash to its id");
      Result<RefRecord> rec = st.ok() ? RefRecord::Decode(plain) : Result<RefRecord>(st);
      if (!rec.ok()) {
        report.warnings.push_back("ref record " + r.id.Hex() + " in pack " + PackName(p) + " ignored: " + rec.status().message());
        continue;
      }
      records.push_back({*rec, r.id});
    }
  }
  // Packs on the store's remotes: their objects where no local pack has
  // them, as a fetch registers them. Their ref records are the history of
  // the stores that pushed them, not of this one.
  if (auto remotes = NewRemotePackSource(dir, files)) {
    auto names = remotes->Names();
    if (!names.ok()) report.warnings.push_back("remotes not read: " + names.status().message());
    for (const std::string& name : names.ok() ? *names : std::vector<std::string>()) {
      Status st = RegisterRemoteForRebuild(*remotes, name, &objects, &pack_values, &report);
      if (!st.ok())
        report.warnings.push_back("remote '" + name + "' not read: " + st.message() +
                                  " (objects only it holds stay unknown until the rebuild is run again)");
    }
  }
  report.objects = objects.size();
  report.ref_records = records.size();

  // The latest record of every key, in (seq, time, id) order.
  std::map<std::string, StoredRefRecord> latest;
  uint64_t max_seq = 0;
  for (const auto& f : records) {
    max_seq = std::max(max_seq, f.record.seq);
    auto [it, inserted] = latest.emplace(f.record.Key(), f);
    if (!inserted && f.record.After(it->second.record, f.id, it->second.id)) it->second = f;
  }
  const RefState state = DeriveRefState(latest);
  const auto& datasets = state.datasets;
  const auto& refs = state.refs;
  for (const auto& [key, commit] : refs) {
    tables::RefKeyParts parts;
    if (!tables::ParseRefKey(key, &parts)) continue;
    if (parts.kind == tables::kSettingsKind) {
      report.settings++;
      continue;
    }
    (parts.kind == 'b' ? report.branches : report.tags)++;
    if (commit.size() == ObjectId::kSize && !objects.count(tables::IdFromView(commit)))
      report.warnings.push_back(EscapeForDisplay(std::string(parts.dataset) + "@" + std::string(parts.name)) +
                                " points at commit " + tables::IdFromView(commit).Hex() + " which no pack holds");
  }
  report.datasets = datasets.size();

  // Commits of existing datasets, for prefix lookups and ref checks; the
  // outputs of runs.
  std::set<std::string> commit_keys;
  std::vector<std::tuple<size_t, std::string, std::string>> run_entries;
  // (Objects read from remotes are left out: a pull keeps the commits and
  // run records of what it brings in local, and what only a remote holds
  // is reached through remote-tracking refs, which the rebuild drops.)
  auto on_remote = [&](const ObjectLocation& loc) {
    auto it = pack_values.find(loc.pack);
    return it != pack_values.end() && tables::IsRemotePack(it->second);
  };
  for (const auto& [id, loc] : objects) {
    if (loc.type != ObjectType::kCommit || on_remote(loc)) continue;
    Status st = packs.ReadRecord(id, loc, true, &plain);
    auto c = st.ok() ? DecodeCommit(plain) : Result<Commit>(st);
    if (!c.ok()) {
      report.warnings.push_back("commit " + id.Hex() + " unreadable: " + c.status().message());
      continue;
    }
    if (datasets.count(c->dataset)) commit_keys.insert(tables::DatasetPrefix(c->dataset) + std::string(id.view()));
    if (c->run) run_entries.emplace_back(tables::kRunLinks, tables::RunOutputKey(*c->run, id), "");
  }
  // Run records: every one a pack holds (they are gc roots, never garbage).
  for (const auto& [id, loc] : objects) {
    if (loc.type != ObjectType::kRun || on_remote(loc)) continue;
    Status st = packs.ReadRecord(id, loc, true, &plain);
    auto run = st.ok() ? DecodeRun(plain) : Result<RunRecord>(st);
    if (!run.ok()) {
      report.warnings.push_back("run record " + id.Hex() + " unreadable: " + run.status().message());
      continue;
    }
    for (auto& e : RunIndexEntries(id, *run)) run_entries.push_back(std::move(e));
    report.runs++;
  }
  report.commits = commit_keys.size();

  // Build the new index beside the old one, then swap the directories.
  std::string fresh = JoinPath(dir, "index.rebuild");
  std::error_code ec;
  std::filesystem::remove_all(fresh, ec);
  if (ec) return Status::FromErrno(ec.value(), "remove " + fresh);
  TUSK_RETURN_IF_ERROR(MakeDirs(fresh));
  {
    TUSK_ASSIGN_OR_RETURN(auto env, LmdbEnv::Open(fresh, tables::Names()));
    TUSK_RETURN_IF_ERROR(env->Update([&](LmdbTxn& txn) -> Status {
      for (const auto& [id, loc] : objects) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kObjects), id.view(), loc.Encode()));
      for (const auto& [p, v] : pack_values) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kPacks), tables::PackKey(p), v));
      for (const auto& [name, f] : datasets) {
        Encoder e;
        e.PutSigned(f->record.time_ns / 1000000000);
        TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kDatasets), name, e.buffer()));
      }
      for (const auto& [k, v] : refs) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kRefs), k, v));
      for (const auto& k : commit_keys) TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kCommits), k, ""));
      for (const auto& [t, k, v] : run_entries) TUSK_RETURN_IF_ERROR(txn.Put(env->db(t), k, v));
      for (const auto& [k, f] : state.current)
        TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kRefRecords), k,
                                     RefRecordPointer{f->id, f->record.seq, f->record.time_ns}.Encode()));
      Encoder seq;
      seq.PutFixed64(max_seq);
      TUSK_RETURN_IF_ERROR(txn.Put(env->db(tables::kMeta), tables::kMetaRefSeq, seq.buffer()));
      return txn.Put(env->db(tables::kMeta), tables::kMetaIndexComplete, "1");
    }));
  }
  std::string index = JoinPath(dir, "index");
  struct stat st;
  if (::stat(index.c_str(), &st) == 0) {
    std::string aside = JoinPath(dir, "index.old-" + TimestampForName());
    for (int n = 1; ::stat(aside.c_str(), &st) == 0; n++) aside = JoinPath(dir, "index.old-" + TimestampForName() + "-" + std::to_string(n));
    if (::rename(index.c_str(), aside.c_str()) != 0) return Status::FromErrno(errno, "move " + index + " aside");
    report.old_index = aside;
  }
  if (::rename(fresh.c_str(), index.c_str()) != 0) return Status::FromErrno(errno, "rename " + fresh);
  TUSK_RETURN_IF_ERROR(FsyncDir(dir));
  return report;
}

}  // namespace tusk
