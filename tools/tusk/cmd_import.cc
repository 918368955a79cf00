// tusk import DIR DATASET@BRANCH -m MSG: one commit whose tree is DIR.
#include <iostream>

#include "fs/check_runner.h"
#include "store/diff.h"
#include "store/importer.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct ImportOpts {
  std::string dir, target, message, author, skip_checks;
  std::vector<std::string> meta, from;
};

int RunImport(const ImportOpts& o, Cli& cli) {
  auto spec = ParseNewRefName(o.target, "branch");
  if (!spec.ok()) return Fail(spec.status());
  auto repo_or = cli.OpenStore();
  if (!repo_or.ok()) return Fail(repo_or.status());
  Repository& repo = **repo_or;

  ImportOptions options;
  options.message = o.message;
  options.author = o.author.empty() ? DefaultAuthor() : o.author;
  auto metadata = ParseMetadataFlags(o.meta);
  if (!metadata.ok()) return Fail(metadata.status());
  options.metadata = std::move(metadata).value();
  auto provenance = ResolveFromFlags(repo, o.from);
  if (!provenance.ok()) return Fail(provenance.status());
  options.provenance = std::move(provenance).value();
  options.warn = [](const std::string& msg) { Warn(msg); };
  options.prepare_commit = fs::CheckHook(&repo, spec->dataset, o.skip_checks, options.author);
  Progress progress;
  options.progress = &progress;
  Result<ImportResult> result = Status::Ok();
  {
    ProgressDisplay display(&progress, "importing", "files");
    result = ImportDirectory(repo, o.dir, spec->dataset, spec->rev, options);
  }
  if (!result.ok()) return Fail(result.status().Annotate("nothing was committed"));
  const ImportResult& r = *result;
  std::string target = spec->dataset + "@" + spec->rev;
  if (!r.commit) {
    std::cout << "no changes: " << target << " stays at " << (r.parent ? r.parent->ShortHex() : "(none)") << std::endl;
    return 0;
  }
  std::string summary;
  if (r.parent) {
    auto old_commit = repo.ReadCommit(*r.parent);
    auto new_commit = repo.ReadCommit(*r.commit);
    if (old_commit.ok() && new_commit.ok()) {
      auto changes = DiffTrees(repo, old_commit->root, new_commit->root);
      if (changes.ok()) {
        uint64_t counts[5] = {0, 0, 0, 0, 0};
        for (const auto& c : *changes) counts[static_cast<int>(c.kind)]++;
        summary = "; " + std::to_string(counts[0]) + " added, " + std::to_string(counts[2]) + " modified, " +
                  std::to_string(counts[1]) + " deleted, " + std::to_string(counts[3]) + " renamed";
      }
    }
  }
  std::cout << "committed " << r.commit->ShortHex() << " to " << target << ": " << r.files << " files, "
            << HumanBytes(r.total_bytes) << " (" << r.files_read << " read, " << r.files_unchanged
            << " unchanged)" << summary << "; new data stored: " << HumanBytes(r.new_stored_bytes) << std::endl;
  return 0;
}

}  // namespace

void AddImportCommand(CLI::App& app, Cli& cli) {
  auto o = std::make_shared<ImportOpts>();
  CLI::App* sub = app.add_subcommand("import", "Commit a directory tree as the new state of a branch");
  sub->add_option("dir", o->dir, "Directory to import")->required();
  sub->add_option("target", o->target, "DATASET@BRANCH to commit to")->required();
  sub->add_option("-m,--message", o->message, "Commit message")->required();
  sub->add_option("--author", o->author, "Author (default $TUSK_AUTHOR, else $USER)");
  sub->add_option("--meta", o->meta, "KEY=VALUE metadata (repeatable)");
  sub->add_option("--from", o->from, "DATASET@REF this version was derived from (repeatable)");
  AddSkipChecksOption(sub, &o->skip_checks);
  sub->callback([o, &cli] { cli.exit_code = RunImport(*o, cli); });
}

}  // namespace tusk::cli
