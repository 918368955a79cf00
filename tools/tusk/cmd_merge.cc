// tusk merge SRC_REF INTO_BRANCH: three-way merge of two versions of a
// dataset (store/merge/merge.h).
#include <iostream>

#include "fs/check_runner.h"
#include "store/merge/merge.h"
#include "store/settings/settings.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct MergeOpts {
  std::string source, into, message, author, skip_checks;
  bool no_ff = false, allow_unrelated = false, ours = false, theirs = false, json = false, stage = false;
};

void PrintConflicts(const std::vector<MergeConflict>& conflicts) {
  for (const auto& c : conflicts) {
    std::cout << "CONFLICT (" << MergeConflictKindName(c.kind) << ") " << Printable(c.path) << ": " << c.detail
              << "\n";
    for (const auto& cell : c.cells) std::cout << "    " << Printable(DescribeTableConflict(cell)) << "\n";
  }
}

void PrintJson(const BranchMergeResult& r, const char* outcome) {
  Json j;
  j.BeginObject().Key("outcome").String(outcome);
  auto id = [&](const char* key, const std::optional<ObjectId>& v) {
    j.Key(key);
    if (v) j.String(v->Hex());
    else j.Null();
  };
  id("ours", r.ours);
  id("base", r.base);
  id("commit", r.commit);
  id("staged", r.staged);
  j.Key("merged_files").BeginArray();
  for (const auto& m : r.tree.merged_files) {
    j.BeginObject().Key("path").String(m.path).Key("method").String(m.method);
    if (!m.note.empty()) j.Key("note").String(m.note);
    j.EndObject();
  }
  j.EndArray().Key("conflicts").BeginArray();
  for (const auto& c : r.tree.conflicts) {
    j.BeginObject().Key("kind").String(MergeConflictKindName(c.kind)).Key("path").String(c.path);
    j.Key("detail").String(c.detail);
    if (!c.theirs_path.empty()) j.Key("theirs_path").String(c.theirs_path);
    if (!c.cells.empty()) {
      j.Key("cells").BeginArray();
      for (const auto& cell : c.cells) {
        j.BeginObject().Key("kind").String(TableConflictKindName(cell.kind)).Key("key").String(cell.key);
        j.Key("column").String(cell.column);
        for (auto [name, value, present] : {std::tuple("base", &cell.base, cell.base_present),
                                            std::tuple("ours", &cell.ours, cell.ours_present),
                                            std::tuple("theirs", &cell.theirs, cell.theirs_present)}) {
          j.Key(name);
          if (present) j.String(*value);
          else j.Null();
        }
        j.EndObject();
      }
      j.EndArray();
    }
    j.EndObject();
  }
  j.EndArray().EndObject().Print();
}

int RunMerge(Cli& cli, const MergeOpts& o) {
  if (o.ours && o.theirs) return Fail("--ours and --theirs exclude each other");
  if (o.stage && !o.skip_checks.empty())
    return Fail("--skip-checks has no effect with --stage: checks run when the staged merge is committed, so give it "
                "to 'tusk commit'");
  auto into = ParseRef(o.into, true);
  if (!into.ok()) return Fail(into.status());
  if (into->ancestors > 0 || !into->remote.empty()) return Fail("the target must be a local branch: " + o.into);
  std::string branch = into->rev.empty() ? kDefaultBranch : into->rev;
  std::string target = into->dataset + "@" + branch;
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  Repository& r = **repo;
  if (auto head = r.GetBranch(into->dataset, branch); !head.ok()) return Fail(head.status());
  auto source_spec = ParseRef(o.source, true);
  if (!source_spec.ok()) return Fail(source_spec.status());
  std::string source_rev = source_spec->rev.empty() ? kDefaultBranch : source_spec->rev;
  if (source_spec->dataset == into->dataset && source_rev == branch && source_spec->ancestors == 0 &&
      source_spec->remote.empty())
    return Fail("cannot merge " + target + " into itself; name another branch, tag or commit to merge");
  auto source = r.Resolve(*source_spec);
  if (!source.ok()) return Fail(source.status());

  WsRequest status;
  status.op = WsRequest::Op::kStatus;
  auto ws = RunWorkspaceCommand(r, into->dataset, branch, status);
  if (ws.ok() && !ws->status.ok()) ws = ws->status;
  if (!ws.ok()) return Fail(ws.status().Annotate("nothing was merged"));
  if (ws->merge)
    return Fail("nothing was merged: a merge of " + ws->merge->source + " is staged in " + target +
                "'s workspace; finish it ('tusk resolve', 'tusk commit') or drop it ('tusk reset " + target + "') first");
  if (!ws->changes.empty())
    return Fail("nothing was merged: " + target + " has " + std::to_string(ws->changes.size()) +
                " staged change(s) in its workspace; commit or reset them first (tusk status " + target + ")");

  BranchMergeRequest request;
  request.dataset = into->dataset;
  request.branch = branch;
  request.source = *source;
  request.source_name = o.source;
  request.message = o.message;
  request.author = o.author.empty() ? DefaultAuthor() : o.author;
  request.no_ff = o.no_ff;
  request.allow_unrelated = o.allow_unrelated;
  request.stage = o.stage;
  request.tree.favor = o.ours ? MergeFavor::kOurs : o.theirs ? MergeFavor::kTheirs : MergeFavor::kNone;
  request.tree.labels.ours = target;
  request.tree.labels.theirs = o.source;
  request.prepare_commit = fs::CheckHook(&r, into->dataset, o.skip_checks, request.author);
  // Table keys declared in the dataset's settings (tusk table set).
  auto settings = ReadCurrentSettings(r, into->dataset);
  if (!settings.ok()) return Fail(settings.status().Annotate("nothing was merged"));
  auto rules = std::make_shared<DatasetSettings>(std::move(settings->settings));
  request.tree.table_key = [rules](const std::string& path) -> KeySpec { return TableKeyFor(*rules, path); };
  request.tree.file_format = [rules](const std::string& path) { return FileFormatFor(*rules, path); };
  auto result = MergeIntoBranch(r, request);
  if (!result.ok()) return Fail(result.status().Annotate("nothing was merged"));
  const BranchMergeResult& m = *result;
  using Outcome = BranchMergeResult::Outcome;
  const char* outcome = m.outcome == Outcome::kUpToDate      ? "up-to-date"
                        : m.outcome == Outcome::kFastForward ? "fast-forward"
                        : m.outcome == Outcome::kMerged      ? "merged"
                        : m.outcome == Outcome::kStaged      ? "staged"
                                                             : "conflicts";
  if (m.outcome == Outcome::kStaged) {
    WsRequest stage;
    stage.op = WsRequest::Op::kStageMerge;
    stage.merge = StagedMergeOf(request, m);
    auto staged = RunWorkspaceCommand(r, into->dataset, branch, stage);
    if (staged.ok() && !staged->status.ok()) staged = staged->status;
    if (!staged.ok()) return Fail(staged.status().Annotate("nothing was staged"));
  }
  if (o.json) {
    PrintJson(m, outcome);
    return m.outcome == Outcome::kConflicts ? 1 : 0;
  }
  for (const auto& f : m.tree.merged_files) {
    if (!f.note.empty()) std::cout << "note: " << Printable(f.path) << ": " << f.note << "\n";
    std::cout << "merged " << Printable(f.path) << " by " << f.method << "\n";
  }
  auto short_id = [](const std::optional<ObjectId>& id) { return id ? id->ShortHex() : std::string("(none)"); };
  switch (m.outcome) {
    case Outcome::kUpToDate:
      std::cout << "already up to date: " << target << " (" << short_id(m.ours) << ") contains " << o.source << std::endl;
      return 0;
    case Outcome::kFastForward:
      std::cout << "fast-forward " << target << ": " << short_id(m.ours) << " -> " << short_id(m.commit) << std::endl;
      return 0;
    case Outcome::kMerged:
      std::cout << "merged " << o.source << " into " << target << ": commit " << short_id(m.commit) << " (parents "
                << short_id(m.ours) << " " << source->ShortHex() << ", base " << short_id(m.base) << ")" << std::endl;
      return 0;
    case Outcome::kStaged: {
      size_t n = m.tree.conflicts.size();
      PrintConflicts(m.tree.conflicts);
      std::cout << "staged the merge of " << o.source << " into " << target << "'s workspace (base "
                << short_id(m.base) << "): " << n << (n == 1 ? " conflict" : " conflicts") << " to resolve\n";
      if (n > 0)
        std::cout << "fix them in the workspace (conflict markers in text, in-cell notation in tables, NAME~theirs "
                     "beside the rest), then 'tusk resolve "
                  << target << " PATH'; 'tusk status " << target << "' lists what is left\n";
      std::cout << "'tusk commit " << target << "' makes the merge commit; 'tusk reset " << target
                << "' drops the merge" << std::endl;
      return 0;
    }
    case Outcome::kConflicts: break;
  }
  PrintConflicts(m.tree.conflicts);
  size_t n = m.tree.conflicts.size();
  std::cout << std::flush;
  return Fail("nothing was merged: " + std::to_string(n) + (n == 1 ? " conflict" : " conflicts") + " between " +
              target + " and " + o.source + " (base " + short_id(m.base) +
              "); --ours or --theirs resolves every conflict for one side, --stage stages the merge in the "
              "branch's workspace to resolve by hand");
}

}  // namespace

void AddMergeCommand(CLI::App& app, Cli& cli) {
  auto o = std::make_shared<MergeOpts>();
  CLI::App* sub = app.add_subcommand("merge", "Merge a version into a branch: fast-forward, or a three-way merge commit");
  sub->add_option("source", o->source, "DATASET@REF to merge (a branch, tag or commit)")->required();
  sub->add_option("into", o->into, "DATASET@BRANCH that receives it")->required();
  sub->add_option("-m,--message", o->message, "Message of the merge commit (default: merge SOURCE into BRANCH)");
  sub->add_option("--author", o->author, "Author of the merge commit (default: $TUSK_AUTHOR, else $USER)");
  sub->add_flag("--no-ff", o->no_ff, "Make a merge commit even when the branch could fast-forward");
  sub->add_flag("--ours", o->ours, "Resolve every conflict for the target branch's side");
  sub->add_flag("--theirs", o->theirs, "Resolve every conflict for the merged version's side");
  sub->add_flag("--allow-unrelated", o->allow_unrelated, "Merge histories that share no commit (against an empty tree)");
  sub->add_flag("--stage", o->stage,
                "Stage the merge in the branch's workspace instead of committing it, conflicts written for a person "
                "to resolve; then tusk resolve and tusk commit");
  AddSkipChecksOption(sub, &o->skip_checks);
  AddJsonFlag(sub, &o->json);
  sub->footer(
      "Exit status: 0 merged (or fast-forwarded, or already up to date, or staged), 1 conflicts or an error "
      "(nothing changed), 2 usage error.\nRules: man tusk-merge.");
  sub->callback([o, &cli] { cli.exit_code = RunMerge(cli, *o); });
}

}  // namespace tusk::cli
