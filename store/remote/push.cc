// Pushing a branch to a remote: find what the remote lacks, send it as
// packs, then move the remote branch by compare-and-set.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "store/internal/codec.h"
#include "store/internal/crc32c.h"
#include "store/internal/pack.h"
#include "store/merge/merge.h"
#include "store/remote/remote.h"
#include "store/settings/settings.h"

namespace tusk {
namespace {

using IdSet = std::unordered_set<ObjectId, ObjectIdHash>;

// Walks what commits reach: commits (every parent), their trees, chunks,
// settings and run records. Stops at objects in `stop` (the remote has
// them, and with a commit everything it reaches; with a tree, everything
// below it).
class Reach {
 public:
  Reach(Repository& repo, const IdSet* stop) : repo_(repo), stop_(stop) {}

  Status Commits(const ObjectId& head) {
    std::vector<ObjectId> stack{head};
    while (!stack.empty()) {
      ObjectId id = stack.back();
      stack.pop_back();
      if (!Visit(id)) continue;
      TUSK_ASSIGN_OR_RETURN(Commit c, repo_.ReadCommit(id));
      TUSK_RETURN_IF_ERROR(Tree(c.root));
      if (c.settings) TUSK_RETURN_IF_ERROR(Settings(*c.settings));
      if (c.run) TUSK_RETURN_IF_ERROR(Run(*c.run));
      for (const ObjectId& p : c.parents) stack.push_back(p);
    }
    return Status::Ok();
  }

  Status Settings(const ObjectId& head) {
    std::optional<ObjectId> at = head;
    while (at && Visit(*at)) {
      TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_.ReadObject(*at, ObjectType::kSettings));
      TUSK_ASSIGN_OR_RETURN(DatasetSettings s, DecodeSettings(bytes));
      at = s.parent;
    }
    return Status::Ok();
  }

  // The run record that made a commit travels with it, with its read sets
  // (the names, sizes and chunk ids of the files it opened) and the
  // directories it listed: the lineage of the commit. Not the inputs'
  // commits or file data: they are other datasets' (often large), which
  // travel when those datasets are pushed (FORMAT.md, "Remotes").
  Status Run(const ObjectId& id) {
    if (!Visit(id)) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(RunRecord run, repo_.ReadRun(id));
    for (const RunInput& in : run.inputs) {
      TUSK_RETURN_IF_ERROR(Tree(in.read_tree, /*with_chunks=*/false));
      if (!in.listed.IsZero()) Visit(in.listed);
    }
    return Status::Ok();
  }

  // A tree: its pages, its subdirectories' and (`with_chunks`) its files'
  // chunks; a run's read set goes without them.
  Status Tree(const ObjectId& root, bool with_chunks = true) {
    if (!Visit(root)) return Status::Ok();
    std::vector<ObjectId> subdirs;
    TUSK_RETURN_IF_ERROR(ForEachPage(repo_, root, [&](const ObjectId& page) { Visit(page); }));
    TUSK_RETURN_IF_ERROR(ForEachEntry(repo_, root, [&](const TreeEntry& e) {
      if (e.kind == EntryKind::kDirectory) subdirs.push_back(e.tree);
      if (with_chunks)
        for (const auto& c : e.chunks)
          if (!c.IsHole()) Visit(c.id);
      return true;
    }));
    for (const ObjectId& sub : subdirs) TUSK_RETURN_IF_ERROR(Tree(sub, with_chunks));
    return Status::Ok();
  }

  const IdSet& seen() const { return seen_; }
  IdSet& seen() { return seen_; }

 private:
  // False when `id` was seen or is to be stopped at.
  bool Visit(const ObjectId& id) { return !(stop_ && stop_->count(id)) && seen_.insert(id).second; }

  Repository& repo_;
  const IdSet* stop_;
  IdSet seen_;
};

struct NeededRecord {
  ObjectId id;
  ObjectLocation loc;
};

// One upload: a local pack sent whole, or needed records repacked.
struct Upload {
  PackId id = 0;
  uint64_t bytes = 0;
  bool whole = false;
  std::vector<NeededRecord> records;  // for a repack
};

// A repack's id, from the ids of what it holds: the same records make the
// same pack, so a push that resumes finds the packs it sent.
// The source packs are part of the name: two stores repacking the same
// records (in bytes that may differ) never name their packs alike.
PackId RepackId(const std::vector<NeededRecord>& records) {
  std::string ids;
  for (const auto& r : records) {
    ids += r.id.view();
    ids += PackName(r.loc.pack);
  }
  ObjectId digest = Sha256::Of(ids.data(), ids.size());
  PackId id = 0;
  for (int i = 0; i < 8; i++) id = id << 8 | static_cast<unsigned char>(digest.view()[i]);
  return id;
}

Status UploadWhole(Repository& repo, const RemoteConnection& remote, const Upload& u, const PushOptions& options,
                   Progress* progress) {
  uint64_t size = 0;
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, repo.OpenLocalPack(u.id, &size));
  s3::LargeUploadOptions large;
  large.part_size = options.part_size;
  large.parts_in_flight = 2;
  auto read_part = [&](uint64_t offset, size_t len, std::string* out) -> Status {
    out->resize(len);
    TUSK_RETURN_IF_ERROR(file->Read(offset, len, out->data()));
    if (progress) progress->bytes_done += len;
    return Status::Ok();
  };
  std::string key = remote.location.Key("packs/" + PackName(u.id) + ".pack");
  return remote.client->PutLarge(key, size, read_part, large).status();
}

Status UploadRepack(Repository& repo, PackDirectory& remote_packs, const Upload& u, int compression_level,
                    Progress* progress) {
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<PackWriter> writer, PackWriter::CreateWithId(&remote_packs, u.id));
  std::string stored, plain;
  for (const NeededRecord& r : u.records) {
    TUSK_ASSIGN_OR_RETURN(bool remote, repo.IsRemotePack(r.loc.pack));
    Codec codec = r.loc.codec;
    if (remote) {
      // From another remote: checked against its id before it is passed on
      // (its CRC proves nothing), and stored again from the checked bytes.
      TUSK_ASSIGN_OR_RETURN(plain, repo.ReadObject(r.id, r.loc.type));
      codec = Compress(plain, compression_level, r.loc.type == ObjectType::kChunk, &stored);
    } else {
      TUSK_RETURN_IF_ERROR(repo.ReadStoredRecord(r.id, r.loc, &stored));
    }
    uint32_t crc = Crc32c(stored.data(), stored.size());
    TUSK_RETURN_IF_ERROR(writer->Append(r.loc.type, r.id, codec, r.loc.raw_len, stored, crc).status());
    if (progress) progress->bytes_done += stored.size();
  }
  return writer->Seal();
}

}  // namespace

Result<PushReport> Push(Repository& repo, const RemoteConnection& remote, const std::string& dataset,
                        const std::string& branch, const PushOptions& options, Progress* progress) {
  const std::string& name = remote.remote.name;
  TUSK_RETURN_IF_ERROR(CheckRemoteIdentity(remote));
  const std::string target = dataset + "@" + branch;
  const char kind = options.tag ? 't' : 'b';
  std::optional<ObjectId> head;
  if (options.tag) {
    TUSK_ASSIGN_OR_RETURN(std::vector<RefInfo> tags, repo.ListTags(dataset));
    for (const RefInfo& t : tags)
      if (t.name == branch) head = t.commit;
    if (!head) return Status::NotFound("dataset '" + dataset + "' has no tag named '" + branch + "'");
  } else {
    TUSK_ASSIGN_OR_RETURN(head, repo.GetBranch(dataset, branch));
    if (!head) return Status::InvalidArgument(target + " has no commits: there is nothing to push");
  }
  PushReport report;
  report.new_commit = *head;
  TUSK_ASSIGN_OR_RETURN(std::optional<RemoteRefValue> current,
                        ReadRemoteRef(*remote.client, remote.location, dataset, kind, branch));
  auto track = [&]() {
    return repo.SetRemoteRefs(name, dataset, {{name, dataset, kind, branch, *head}}, false);
  };
  if (current) report.old_commit = current->commit;
  if (current && current->commit == *head) {
    TUSK_RETURN_IF_ERROR(track());
    return report;
  }
  if (options.tag && current && !options.force)
    return Status::Conflict("push of tag " + target + " refused: remote '" + name + "' has it at " +
                            current->commit.ShortHex() + ", and tags do not move; --force replaces it");
  bool fast_forward = !current;
  bool known = false;
  if (current && !options.tag) {
    TUSK_ASSIGN_OR_RETURN(auto have, repo.FindObject(current->commit));
    known = have.has_value();
    if (known) {
      TUSK_ASSIGN_OR_RETURN(fast_forward, IsAncestor(repo, current->commit, *head));
    }
    if (!fast_forward && !options.force)
      return Status::Conflict(
          "push of " + target + " refused: remote '" + name + "' has it at " + current->commit.ShortHex() + ", " +
          (known ? "which is not an ancestor of " + head->ShortHex() + " here (the two have diverged)"
                 : "a commit this store has not seen") +
          ". Fetch and merge first ('tusk pull " + name + " " + target + "', or 'tusk fetch " + name +
          "' and 'tusk merge " + dataset + "@" + name + "/" + branch + " " + target + "'), or replace it with --force");
  }
  report.outcome = !current ? PushReport::Outcome::kCreated
                   : fast_forward ? PushReport::Outcome::kFastForward
                                  : PushReport::Outcome::kForced;

  // What the remote has: everything the refs it had when we last looked
  // reach, as far as this store has them.
  Reach had(repo, nullptr);
  TUSK_ASSIGN_OR_RETURN(std::vector<RemoteRefInfo> tracked, repo.ListRemoteRefs(name, dataset));
  std::vector<ObjectId> bases;
  for (const auto& t : tracked)
    if (t.kind != 's') bases.push_back(t.commit);
  if (current && known) bases.push_back(current->commit);
  for (const ObjectId& b : bases) {
    TUSK_ASSIGN_OR_RETURN(auto have, repo.FindObject(b));
    if (have) TUSK_RETURN_IF_ERROR(had.Commits(b));
  }
  // What it lacks.
  Reach need(repo, &had.seen());
  TUSK_RETURN_IF_ERROR(need.Commits(*head));
  TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> settings_head, repo.GetSettingsHead(dataset));
  if (settings_head) TUSK_RETURN_IF_ERROR(need.Settings(*settings_head));
  had.seen().clear();

  // Group by where the records are.
  TUSK_ASSIGN_OR_RETURN(auto placed, repo.RegisteredPacks());
  std::map<PackId, std::vector<NeededRecord>> by_pack;
  for (const ObjectId& id : need.seen()) {
    TUSK_ASSIGN_OR_RETURN(std::optional<ObjectLocation> loc, repo.FindObject(id));
    if (!loc) return Status::Corruption("object " + id.Hex() + " that " + target + " reaches is missing from the store");
    auto where = placed.find(loc->pack);
    if (where != placed.end() && where->second == name) continue;  // read from this very remote
    by_pack[loc->pack].push_back({id, *loc});
    report.objects++;
  }
  auto remote_packs = std::make_unique<PackDirectory>(RemotePackStore(remote));
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> listed, remote_packs->ListPacks());
  std::set<PackId> on_remote(listed.begin(), listed.end());

  std::vector<Upload> uploads;
  std::vector<NeededRecord> partial;
  for (auto& [pack, records] : by_pack) {
    auto where = placed.find(pack);
    bool local = where != placed.end() && where->second.empty();
    if (local) {
      TUSK_ASSIGN_OR_RETURN(std::vector<PackRecord> all, repo.LocalPackRecords(pack));
      bool whole = all.size() == records.size() &&
                   std::none_of(all.begin(), all.end(), [](const PackRecord& r) { return r.location.type == ObjectType::kRef; });
      if (whole) {
        Upload u;
        u.id = pack;
        u.whole = true;
        TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, repo.OpenLocalPack(pack, &u.bytes));
        uploads.push_back(std::move(u));
        continue;
      }
    }
    for (auto& r : records) partial.push_back(std::move(r));
  }
  std::sort(partial.begin(), partial.end(), [](const NeededRecord& a, const NeededRecord& b) {
    return std::tie(a.loc.pack, a.loc.offset) < std::tie(b.loc.pack, b.loc.offset);
  });
  for (size_t i = 0; i < partial.size();) {
    Upload u;
    while (i < partial.size() && (u.records.empty() || u.bytes + partial[i].loc.stored_len <= options.repack_size)) {
      u.bytes += partial[i].loc.stored_len;
      u.records.push_back(partial[i++]);
    }
    u.id = RepackId(u.records);
    uploads.push_back(std::move(u));
  }
  // Packs an interrupted push sent already are not sent again.
  std::vector<Upload> todo;
  for (auto& u : uploads) {
    if (on_remote.count(u.id)) {
      report.packs_skipped++;
      continue;
    }
    if (progress) progress->bytes_total += u.bytes;
    todo.push_back(std::move(u));
  }

  std::atomic<size_t> next{0};
  std::mutex mu;
  Status failed;
  auto work = [&] {
    for (size_t i; (i = next++) < todo.size();) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.ok()) return;
      }
      const Upload& u = todo[i];
      Status st = u.whole ? UploadWhole(repo, remote, u, options, progress)
                          : UploadRepack(repo, *remote_packs, u, repo.config().compression_level, progress);
      std::lock_guard<std::mutex> lock(mu);
      if (!st.ok() && failed.ok()) failed = st.Annotate("uploading pack " + PackName(u.id));
      if (st.ok()) {
        (u.whole ? report.packs_uploaded : report.packs_repacked)++;
        report.bytes_uploaded += u.bytes;
      }
      if (progress) progress->items_done++;
    }
  };
  if (progress) progress->items_total = todo.size();
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, std::min<int>(options.packs_in_flight, static_cast<int>(todo.size()))); t++)
    threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (!failed.ok())
    return failed.Annotate("push of " + target + " stopped; the remote branch did not move (a new push resumes: "
                           "packs sent are not sent again)");

  // Everything is there: move the branch, if it is still where we saw it.
  auto moved = WriteRemoteRef(*remote.client, remote.location, dataset, kind, branch, *head, current);
  if (!moved.ok()) {
    if (moved.status().code() == Status::Code::kConflict)
      return Status::Conflict("push of " + target + " refused: the " + (options.tag ? "tag" : "branch") + " on remote '" + name +
                              "' moved while pushing (another push landed first); it was left as the other push set it, and nothing "
                              "changed here. "
                              "Pull, merge and push again ('tusk pull " + name + " " + target + "')");
    return moved.status().Annotate("push of " + target + ": the data was sent, the remote branch did not move");
  }
  TUSK_RETURN_IF_ERROR(track());

  // The dataset's settings follow when the remote's are an older version
  // of ours (or absent).
  if (settings_head) {
    TUSK_ASSIGN_OR_RETURN(std::optional<RemoteRefValue> remote_settings,
                          ReadRemoteRef(*remote.client, remote.location, dataset, 's', "settings"));
    bool behind = !remote_settings;
    if (remote_settings && remote_settings->commit != *settings_head) {
      std::optional<ObjectId> at = settings_head;
      while (at && !behind) {
        if (*at == remote_settings->commit) behind = true;
        auto s = ReadSettings(repo, *at);
        if (!s.ok()) break;
        at = s->parent;
      }
    }
    bool same = remote_settings && remote_settings->commit == *settings_head;
    if (same) {
      TUSK_RETURN_IF_ERROR(repo.SetRemoteRefs(name, dataset, {{name, dataset, 's', "settings", *settings_head}}, false));
    } else if (!behind) {
      report.settings_note = "the dataset's settings on remote '" + name + "' are not an older version of these: "
                             "they were left as they are";
    } else {
      auto written = WriteRemoteRef(*remote.client, remote.location, dataset, 's', "settings", *settings_head,
                                    remote_settings);
      if (written.ok())
        TUSK_RETURN_IF_ERROR(repo.SetRemoteRefs(name, dataset, {{name, dataset, 's', "settings", *settings_head}}, false));
      else
        report.settings_note = "the dataset's settings were not sent: " + written.status().message();
    }
  }
  return report;
}

}  // namespace tusk
