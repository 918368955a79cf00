// Run records in the store: writing, indexing and finding them
// (store/lineage/lineage.h).
#include <algorithm>
#include <cctype>

#include "store/internal/lmdb.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"
#include "store/lineage/run_index.h"
#include "store/repository.h"

namespace tusk {

using tables::IdFromView;

std::vector<std::tuple<size_t, std::string, std::string>> RunIndexEntries(const ObjectId& id, const RunRecord& run) {
  std::vector<std::tuple<size_t, std::string, std::string>> out;
  Encoder e;
  e.PutSigned(run.start_ns);
  out.emplace_back(tables::kRuns, std::string(id.view()), e.Take());
  for (const auto& in : run.inputs) out.emplace_back(tables::kRunLinks, tables::RunInputKey(in.commit, id), "");
  return out;
}

Result<ObjectId> WriteSession::WriteRun(const RunRecord& run) {
  TUSK_ASSIGN_OR_RETURN(ObjectId id, WriteObject(ObjectType::kRun, EncodeRun(run)));
  std::lock_guard lock(mu_);
  for (auto& put : RunIndexEntries(id, run)) index_puts_.push_back(std::move(put));
  return id;
}

Status WriteSession::LocalizeRun(const ObjectId& id, std::string_view encoding) {
  TUSK_ASSIGN_OR_RETURN(RunRecord run, DecodeRun(encoding));
  TUSK_RETURN_IF_ERROR(Localize(ObjectType::kRun, id, encoding));
  std::lock_guard lock(mu_);
  for (auto& put : RunIndexEntries(id, run)) index_puts_.push_back(std::move(put));
  return Status::Ok();
}

void WriteSession::IndexRunOutput(const ObjectId& run, const ObjectId& commit) {
  std::lock_guard lock(mu_);
  index_puts_.emplace_back(tables::kRunLinks, tables::RunOutputKey(run, commit), "");
}

Result<RunRecord> Repository::ReadRun(const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(std::string bytes, ReadObject(id, ObjectType::kRun));
  auto run = DecodeRun(bytes);
  if (!run.ok()) return run.status().Annotate("run " + id.Hex());
  return run;
}

Result<ObjectId> Repository::ResolveRun(std::string_view text) {
  std::string hex(text.substr(0, 4) == "run:" ? text.substr(4) : text);
  std::transform(hex.begin(), hex.end(), hex.begin(), [](unsigned char c) { return std::tolower(c); });
  bool is_hex = !hex.empty() && hex.size() <= 64 &&
                std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!is_hex || hex.size() < 4)
    return Status::InvalidArgument("'" + EscapeForDisplay(text) +
                                   "' is not a run: write run:ID with at least 4 hex digits of the id ('tusk runs' lists them)");
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  std::vector<ObjectId> matches;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRuns), bytes, [&](std::string_view k, std::string_view) {
      if (k.size() != ObjectId::kSize) return true;
      ObjectId id = IdFromView(k);
      if (id.Hex().compare(0, hex.size(), hex) == 0) matches.push_back(id);
      return matches.size() < 20;
    }));
  }
  if (matches.empty()) return Status::NotFound("no run " + hex + " in this store ('tusk runs' lists them)");
  if (matches.size() > 1) {
    std::string list;
    for (const auto& m : matches) list += " " + m.ShortHex(16);
    return Status::InvalidArgument("run prefix '" + hex + "' is ambiguous; candidates:" + list);
  }
  return matches[0];
}

namespace {

// The ids that follow `prefix` in `runlinks` keys ("o" run: outputs; "i"
// commit: the runs that read it).
Result<std::vector<ObjectId>> LinkedIds(LmdbEnv& env, const std::string& prefix) {
  std::vector<ObjectId> out;
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env.BeginRead());
  TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env.db(tables::kRunLinks), prefix, [&](std::string_view k, std::string_view) {
    if (k.size() == prefix.size() + ObjectId::kSize) out.push_back(IdFromView(k.substr(prefix.size())));
    return true;
  }));
  return out;
}

}  // namespace

Result<std::vector<ObjectId>> Repository::RunOutputs(const ObjectId& run) {
  return LinkedIds(*env_, "o" + std::string(run.view()));
}

Result<std::vector<ObjectId>> Repository::RunsReading(const ObjectId& commit) {
  return LinkedIds(*env_, "i" + std::string(commit.view()));
}

Result<std::vector<RunSummary>> Repository::ListRuns() {
  std::vector<std::pair<int64_t, ObjectId>> ids;
  {
    TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
    TUSK_RETURN_IF_ERROR(txn.ScanPrefix(env_->db(tables::kRuns), "", [&](std::string_view k, std::string_view v) {
      int64_t start = 0;
      if (k.size() == ObjectId::kSize && Decoder(v).GetSigned(&start)) ids.emplace_back(start, IdFromView(k));
      return true;
    }));
  }
  std::sort(ids.begin(), ids.end());
  std::vector<RunSummary> out;
  for (const auto& [start, id] : ids) {
    RunSummary s;
    s.id = id;
    TUSK_ASSIGN_OR_RETURN(s.record, ReadRun(id));
    TUSK_ASSIGN_OR_RETURN(s.outputs, RunOutputs(id));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tusk
