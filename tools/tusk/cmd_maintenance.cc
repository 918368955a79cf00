// tusk gc / fsck / stats.
#include <iostream>

#include "store/workspace/workspace.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

int RunGc(bool dry_run, Cli& cli) {
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  Progress progress;
  Result<GcReport> r = Status::Ok();
  {
    ProgressDisplay display(&progress, "collecting garbage", "commits");
    r = (*repo)->CollectGarbage(dry_run, &progress);
  }
  if (!r.ok()) return Fail(r.status());
  std::cout << (dry_run ? "would remove " : "removed ") << r->objects_removed << " unreachable objects ("
            << HumanBytes(r->bytes_removed) << " stored), " << (dry_run ? "rewrite " : "rewrote ") << r->packs_rewritten
            << " packs, " << (dry_run ? "delete " : "deleted ") << r->packs_deleted << " packs; kept "
            << r->objects_kept << " objects" << std::endl;
  return 0;
}

int RunRebuildIndex(Cli& cli) {
  Progress progress;
  Result<RebuildReport> r = Status::Ok();
  {
    ProgressDisplay display(&progress, "rebuilding the index", "packs");
    r = Repository::RebuildIndex(cli.StoreDir(), &progress);
  }
  if (!r.ok()) return Fail(r.status());
  for (const auto& w : r->warnings) std::cerr << "tusk: warning: " << w << "\n";
  std::cout << "rebuilt the index from " << r->packs << " packs: " << r->objects << " objects, " << r->commits
            << " commits, " << r->datasets << " datasets, " << r->branches << " branches, " << r->tags << " tags ("
            << r->ref_records << " ref records read)";
  if (r->runs) std::cout << ", " << r->runs << " run records";
  if (r->unsealed_packs) std::cout << "; " << r->unsealed_packs << " unsealed pack(s) of interrupted writers left for 'tusk gc'";
  std::cout << "\n";
  if (!r->old_index.empty()) std::cout << "the previous index was moved to " << r->old_index << "\n";
  std::cout << "file stats were dropped: the next import of each dataset reads every file once" << std::endl;
  return 0;
}

int RunFsck(bool json, Cli& cli) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  Progress progress;
  Result<FsckReport> r = Status::Ok();
  {
    ProgressDisplay display(&progress, "checking", "objects");
    r = (*repo)->Check(&progress);
  }
  if (!r.ok()) return Fail(r.status());
  auto workspaces = CheckWorkspaces(repo->get());
  if (workspaces.ok()) r->problems.insert(r->problems.end(), workspaces->begin(), workspaces->end());
  else Warn("workspaces not checked: " + workspaces.status().message());
  if (json) {
    Json j;
    j.BeginObject().Key("objects_checked").Number(r->objects_checked).Key("bytes_checked").Number(r->bytes_checked)
        .Key("commits_checked").Number(r->commits_checked).Key("problems").BeginArray();
    for (const auto& p : r->problems) {
      j.BeginObject().Key("object").String(p.object).Key("error").String(p.error).Key("affected").BeginArray();
      for (const auto& a : p.affected) j.String(a);
      j.EndArray().EndObject();
    }
    j.EndArray().Key("notes").BeginArray();
    for (const auto& n : r->notes) j.String(n);
    j.EndArray().EndObject().Print();
  } else {
    for (const auto& n : r->notes) std::cout << "note: " << n << "\n";
    for (const auto& p : r->problems) {
      std::cout << "BAD " << p.object << ": " << p.error << "\n";
      for (const auto& a : p.affected) std::cout << "    breaks " << a << "\n";
    }
    std::cout << "checked " << r->objects_checked << " objects (" << HumanBytes(r->bytes_checked) << ") and "
              << r->commits_checked << " commits: "
              << (r->problems.empty() ? "no problems found" : std::to_string(r->problems.size()) + " problem(s) found")
              << std::endl;
  }
  return r->problems.empty() ? 0 : 1;
}

int RunStats(const std::string& dataset, bool json, Cli& cli) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto s = (*repo)->Stats(dataset.empty() ? std::nullopt : std::optional<std::string>(dataset));
  if (!s.ok()) return Fail(s.status());
  double dedup = s->unique_bytes ? static_cast<double>(s->logical_bytes) / static_cast<double>(s->unique_bytes) : 1.0;
  double compression = s->stored_bytes ? static_cast<double>(s->unique_bytes) / static_cast<double>(s->stored_bytes) : 1.0;
  if (json) {
    Json j;
    j.BeginObject().Key("datasets").Number(s->datasets).Key("commits").Number(s->commits)
        .Key("logical_bytes").Number(s->logical_bytes).Key("unique_bytes").Number(s->unique_bytes)
        .Key("stored_bytes").Number(s->stored_bytes).Key("dedup_ratio").Double(dedup)
        .Key("compression_ratio").Double(compression).Key("chunks").Number(s->chunks).Key("trees").Number(s->trees)
        .Key("packs").Number(s->packs).Key("pack_bytes").Number(s->pack_bytes).Key("index_bytes").Number(s->index_bytes)
        .EndObject().Print();
    return 0;
  }
  std::cout << "datasets:          " << s->datasets << "\n"
            << "commits:           " << s->commits << "\n"
            << "logical bytes:     " << HumanBytes(s->logical_bytes) << " (file sizes summed over every commit)\n"
            << "unique bytes:      " << HumanBytes(s->unique_bytes) << " (" << s->chunks << " distinct chunks)\n"
            << "stored bytes:      " << HumanBytes(s->stored_bytes) << " (those chunks compressed)\n"
            << "dedup ratio:       " << Ratio(dedup) << "\n"
            << "compression ratio: " << Ratio(compression) << "\n"
            << "trees:             " << s->trees << "\n"
            << "store on disk:     " << HumanBytes(s->pack_bytes) << " in " << s->packs << " packs (whole store), "
            << HumanBytes(s->index_bytes) << " index" << std::endl;
  return 0;
}

}  // namespace

void AddMaintenanceCommands(CLI::App& app, Cli& cli) {
  auto dry = std::make_shared<bool>(false);
  CLI::App* gc = app.add_subcommand("gc", "Remove data no branch or tag reaches");
  gc->add_flag("--dry-run", *dry, "Report what would be removed; change nothing");
  gc->callback([dry, &cli] { cli.exit_code = RunGc(*dry, cli); });

  auto fsck_json = std::make_shared<bool>(false);
  auto rebuild = std::make_shared<bool>(false);
  CLI::App* fsck = app.add_subcommand("fsck", "Re-read and re-hash everything; report damage and what it breaks");
  AddJsonFlag(fsck, fsck_json.get());
  fsck->add_flag("--rebuild-index", *rebuild,
                 "Rebuild the index from the packs (datasets, branches, tags, commits, objects); the old one is moved aside");
  fsck->callback([fsck_json, rebuild, &cli] {
    cli.exit_code = *rebuild ? RunRebuildIndex(cli) : RunFsck(*fsck_json, cli);
  });

  struct StatsOpts {
    std::string dataset;
    bool json = false;
  };
  auto so = std::make_shared<StatsOpts>();
  CLI::App* stats = app.add_subcommand("stats", "Logical vs stored bytes, dedup and compression ratios");
  stats->add_option("dataset", so->dataset, "Only this dataset");
  AddJsonFlag(stats, &so->json);
  stats->callback([so, &cli] { cli.exit_code = RunStats(so->dataset, so->json, cli); });
}

}  // namespace tusk::cli
