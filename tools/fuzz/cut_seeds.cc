// Cuts a real store into seed inputs for the fuzz targets of tests/fuzz:
//
//   fuzz_cut_seeds STORE OUT
//
// writes OUT/<target>/<n> for every target: whole packs (sealed, and cut
// before the footer as a crashed writer leaves them), every tree page and
// commit, stored payloads with their raw lengths, the index's object
// locations, the workspaces' sidecars and base files, the store config,
// control-socket requests and the reply a workspace gives to `status`, and
// refs of the store's datasets. tools/fuzz/make-corpus.sh builds the store
// and minimizes the result into tests/fuzz/corpus/.
//
// Reads the store directly (packs, index) and opens its workspaces, so no
// mount may hold them.
#include <dirent.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fs/control_socket.h"
#include "store/internal/lmdb.h"
#include "store/internal/pack.h"
#include "store/internal/tables.h"
#include "store/internal/varint.h"
#include "store/repository.h"
#include "store/workspace/workspace.h"

namespace {

using namespace tusk;
namespace fs = std::filesystem;

class Seeds {
 public:
  explicit Seeds(std::string out) : out_(std::move(out)) {}
  void Add(const std::string& target, std::string_view bytes) {
    fs::create_directories(out_ + "/" + target);
    std::ofstream(out_ + "/" + target + "/" + std::to_string(count_[target]++), std::ios::binary) << bytes;
  }
  void Report() const {
    for (const auto& [t, n] : count_) std::printf("%-14s %zu seeds\n", t.c_str(), n);
  }

 private:
  std::string out_;
  std::map<std::string, size_t> count_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string WithMode(uint8_t mode, std::string_view bytes) { return std::string(1, static_cast<char>(mode)) + std::string(bytes); }

Status CutPacks(const std::string& store, Seeds& seeds) {
  PackDirectory packs(store + "/packs");
  TUSK_ASSIGN_OR_RETURN(std::vector<PackId> ids, packs.ListPacks());
  for (PackId id : ids) {
    std::string bytes = ReadFile(packs.PathOf(id));
    TUSK_ASSIGN_OR_RETURN(std::vector<PackRecord> records, packs.ListRecords(id));
    seeds.Add("pack_file", WithMode(8, bytes));
    // Unsealed: the records alone, as a killed writer leaves them (scanned by header).
    if (!records.empty()) {
      const ObjectLocation& last = records.back().location;
      uint64_t end = last.offset + kRecordHeaderSize + last.stored_len +
                     RangeTableSize(last.codec, last.stored_len, last.raw_len);
      seeds.Add("pack_file", WithMode(8, std::string_view(bytes).substr(0, end)));
    }
    for (const auto& r : records) {
      std::string stored, plain;
      TUSK_RETURN_IF_ERROR(packs.ReadStored(r.id, r.location, &stored));
      TUSK_RETURN_IF_ERROR(packs.ReadRecord(r.id, r.location, true, &plain));
      if (r.location.type == ObjectType::kTree) seeds.Add("tree_page", plain);
      if (r.location.type == ObjectType::kCommit) seeds.Add("commit", plain);
      if (r.location.type == ObjectType::kRun) seeds.Add("run_record", plain);
      Encoder e;
      e.PutU8(static_cast<uint8_t>(static_cast<uint8_t>(r.location.codec) << 1));
      e.PutVarint(r.location.raw_len);
      e.PutBytes(stored);
      seeds.Add("codec", e.Take());
      if (r.location.type == ObjectType::kChunk) seeds.Add("codec", WithMode(1, plain));
    }
  }
  return Status::Ok();
}

Status CutIndex(const std::string& store, Seeds& seeds) {
  TUSK_ASSIGN_OR_RETURN(auto env, LmdbEnv::Open(store + "/index", tables::Names()));
  TUSK_ASSIGN_OR_RETURN(LmdbTxn txn, env->BeginRead());
  return txn.ScanPrefix(env->db(tables::kObjects), "", [&](std::string_view, std::string_view v) {
    seeds.Add("index_value", v);
    return true;
  });
}

// Every workspace's files, and what its control socket would carry.
Status CutWorkspaces(const std::string& store, Seeds& seeds) {
  TUSK_ASSIGN_OR_RETURN(auto repo, Repository::Open(store));
  std::error_code ec;
  for (const auto& ds : fs::directory_iterator(store + "/workspaces", ec)) {
    for (const auto& br : fs::directory_iterator(ds.path())) {
      seeds.Add("ws_base", ReadFile(br.path() / "base"));
      for (const auto& meta : fs::directory_iterator(br.path() / "meta", ec)) seeds.Add("sidecar", ReadFile(meta.path()));
      std::string dataset = ds.path().filename(), branch = br.path().filename();
      TUSK_ASSIGN_OR_RETURN(auto ws, Workspace::Open(repo.get(), dataset, branch));
      WsRequest status;
      seeds.Add("ws_message", WithMode(0, EncodeWsRequest(status)));
      seeds.Add("ws_message", WithMode(1, EncodeWsReply(RunWorkspaceRequest(repo.get(), *ws, status))));
      WsRequest commit;
      commit.op = WsRequest::Op::kCommit;
      commit.commit.message = "fuzz seed: a commit request";
      commit.commit.author = "seed";
      commit.commit.metadata = {{"source", "make-corpus.sh"}, {"k", "v"}};
      auto head = repo->GetBranch(dataset, branch);
      if (head.ok() && *head) commit.commit.provenance.push_back({dataset, **head});
      seeds.Add("ws_message", WithMode(0, EncodeWsRequest(commit)));
      WsReply committed;
      committed.base = committed.head = committed.commit.parent = ws->base();
      committed.commit.commit = ws->base();
      committed.commit.files_changed = 3;
      committed.commit.new_objects = 7;
      committed.commit.new_stored_bytes = 123456;
      seeds.Add("ws_message", WithMode(1, EncodeWsReply(committed)));
      WsReply refused;
      refused.status = Status::Conflict("nothing was committed: the branch moved");
      seeds.Add("ws_message", WithMode(1, EncodeWsReply(refused)));
    }
  }
  return Status::Ok();
}

Status CutRefs(const std::string& store, Seeds& seeds) {
  seeds.Add("store_config", ReadFile(store + "/config"));
  TUSK_ASSIGN_OR_RETURN(auto repo, Repository::Open(store));
  TUSK_ASSIGN_OR_RETURN(auto datasets, repo->ListDatasets());
  for (const auto& d : datasets) {
    seeds.Add("ref", WithMode(1, d.name));
    TUSK_ASSIGN_OR_RETURN(auto branches, repo->ListBranches(d.name));
    TUSK_ASSIGN_OR_RETURN(auto tags, repo->ListTags(d.name));
    for (const auto& list : {branches, tags})
      for (const auto& r : list) {
        seeds.Add("ref", WithMode(0, d.name + "@" + r.name + "~2"));
        seeds.Add("ref", WithMode(2, d.name + "@" + r.name));
        if (r.commit) seeds.Add("ref", WithMode(0, d.name + "@" + r.commit->ShortHex(8) + "~~1"));
      }
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s STORE OUT\n", argv[0]);
    return 2;
  }
  Seeds seeds(argv[2]);
  for (auto step : {CutPacks, CutIndex, CutWorkspaces, CutRefs}) {
    Status st = step(argv[1], seeds);
    if (!st.ok()) {
      std::fprintf(stderr, "fuzz_cut_seeds: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  seeds.Report();
  return 0;
}
