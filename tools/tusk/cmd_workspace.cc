// tusk status / commit / reset / resolve: the staged changes of a branch
// workspace, and a merge staged in it (tusk merge --stage).
//
// The mount that serves a workspace owns it; these commands then ask it
// (fs/control_socket.h). With no mount holding it they open it themselves.
#include <sys/stat.h>

#include <iostream>

#include "fs/control_socket.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct Target {
  std::unique_ptr<Repository> repo;
  RefSpec spec;
};

Result<Target> OpenTarget(Cli& cli, const std::string& text) {
  Target t;
  TUSK_ASSIGN_OR_RETURN(t.spec, ParseNewRefName(text, "branch"));
  TUSK_ASSIGN_OR_RETURN(t.repo, cli.OpenStore());
  TUSK_RETURN_IF_ERROR(t.repo->CheckDataset(t.spec.dataset));
  auto head = t.repo->GetBranch(t.spec.dataset, t.spec.rev);
  if (!head.ok()) return head.status();
  return t;
}

}  // namespace

// Runs the request in the process that holds the workspace, or here.
Result<WsReply> RunWorkspaceCommand(Repository& repo, const std::string& dataset, const std::string& branch,
                                    const WsRequest& request) {
  struct stat st;
  if (request.op == WsRequest::Op::kStatus &&
      ::stat((repo.dir() + "/workspaces/" + dataset + "/" + branch).c_str(), &st) != 0) {
    // Never opened (nothing was ever staged): the status is known without
    // making the workspace, which costs directory syncs.
    WsReply reply;
    TUSK_ASSIGN_OR_RETURN(reply.head, repo.GetBranch(dataset, branch));
    reply.base = reply.head;
    return reply;
  }
  auto sent = SendWorkspaceRequest(repo.dir(), dataset, branch, request);
  if (sent.ok() || sent.status().code() != Status::Code::kNotFound) return sent;
  auto ws = Workspace::Open(&repo, dataset, branch);
  if (!ws.ok()) {
    if (ws.status().code() == Status::Code::kAlreadyExists)
      return Status::Busy("workspace " + dataset + "@" + branch +
                          " is in use by another tusk process (a mount starting up, or another commit); try again");
    return ws.status();
  }
  return RunWorkspaceRequest(&repo, **ws, request);
}

namespace {

Result<WsReply> Run(Target& t, const WsRequest& request) {
  return RunWorkspaceCommand(*t.repo, t.spec.dataset, t.spec.rev, request);
}

std::string Lines(const std::vector<uint64_t>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < 10; i++) out += (i ? ", " : "") + std::to_string(lines[i]);
  if (lines.size() > 10) out += ", ... (" + std::to_string(lines.size()) + " in all)";
  return out;
}

void PrintMerge(const WsMerge& m, const std::string& name) {
  size_t left = m.Unresolved();
  std::cout << "merging " << Printable(m.source) << " (" << m.theirs.ShortHex() << ") into " << name << ": ";
  if (left == 0) {
    std::cout << "every conflict resolved; 'tusk commit " << name << "' makes the merge commit" << std::endl;
  } else {
    std::cout << left << " unresolved conflict" << (left == 1 ? "" : "s")
              << "; fix each, then 'tusk resolve " << name << " PATH' ('tusk reset " << name
              << "' drops the merge)" << std::endl;
  }
  for (const auto& c : m.conflicts) {
    std::cout << (c.resolved ? "  resolved   " : "  UNRESOLVED ") << "(" << c.kind << ") " << Printable(c.path);
    if (!c.resolved) std::cout << ": " << c.detail;
    std::cout << "\n";
    if (c.resolved) continue;
    if (!c.theirs_path.empty()) std::cout << "      theirs' version: " << Printable(c.theirs_path) << "\n";
    for (const auto& cell : c.cells) std::cout << "      " << Printable(cell) << "\n";
    if (!c.marked_lines.empty())
      std::cout << "      " << (c.kind == "table" ? "notation" : "markers") << " left on line"
                << (c.marked_lines.size() == 1 ? " " : "s ") << Lines(c.marked_lines) << "\n";
  }
}

void MergeJson(Json& j, const WsMerge& m) {
  j.BeginObject().Key("source").String(m.source).Key("theirs").String(m.theirs.Hex());
  j.Key("unresolved").Number(m.Unresolved()).Key("conflicts").BeginArray();
  for (const auto& c : m.conflicts) {
    j.BeginObject().Key("kind").String(c.kind).Key("path").String(c.path).Key("resolved").Bool(c.resolved);
    j.Key("detail").String(c.detail);
    if (!c.theirs_path.empty()) j.Key("theirs_path").String(c.theirs_path);
    j.Key("cells").BeginArray();
    for (const auto& cell : c.cells) j.String(cell);
    j.EndArray().Key("marked_lines").BeginArray();
    for (uint64_t line : c.marked_lines) j.Number(line);
    j.EndArray().EndObject();
  }
  j.EndArray().EndObject();
}

std::string Short(const std::optional<ObjectId>& id) { return id ? id->ShortHex() : std::string("(no commits)"); }

const char kDivergedHelp[] =
    "the branch was committed to from outside the workspace (e.g. 'tusk import') while changes were staged; "
    "'tusk commit' refuses to mix the two trees. Copy out what you need from the mount, then 'tusk reset' "
    "to start again from the new head";

int RunStatus(Cli& cli, const std::string& target, bool json) {
  auto t = OpenTarget(cli, target);
  if (!t.ok()) return Fail(t.status());
  WsRequest request;
  request.op = WsRequest::Op::kStatus;
  auto reply = Run(*t, request);
  if (!reply.ok()) return Fail(reply.status());
  if (!reply->status.ok()) return Fail(reply->status);
  std::string name = t->spec.dataset + "@" + t->spec.rev;
  if (json) {
    Json j;
    j.BeginObject().Key("workspace").String(name).Key("base");
    if (reply->base) j.String(reply->base->Hex());
    else j.Null();
    j.Key("head");
    if (reply->head) j.String(reply->head->Hex());
    else j.Null();
    j.Key("diverged").Bool(reply->diverged).Key("changes").BeginArray();
    for (const auto& c : reply->changes)
      j.BeginObject().Key("status").String(std::string(1, static_cast<char>(c.kind))).Key("path").String(c.path).EndObject();
    j.EndArray().Key("merge");
    if (reply->merge) MergeJson(j, *reply->merge);
    else j.Null();
    j.EndObject().Print();
    return 0;
  }
  std::cout << "workspace " << name << ", based on " << Short(reply->base) << std::endl;
  if (reply->diverged)
    std::cout << "warning: the branch is now at " << Short(reply->head) << ": " << kDivergedHelp << std::endl;
  if (reply->merge) PrintMerge(*reply->merge, name);
  if (reply->changes.empty()) {
    std::cout << (reply->merge ? "no changes against the base: the merge commit will have ours' tree"
                               : "nothing staged")
              << std::endl;
    return 0;
  }
  for (const auto& c : reply->changes) std::cout << static_cast<char>(c.kind) << "  " << Printable(c.path) << std::endl;
  return 0;
}

struct CommitOpts {
  std::string target, message, author, skip_checks;
  std::vector<std::string> meta, from;
};

int RunCommit(Cli& cli, const CommitOpts& o) {
  auto t = OpenTarget(cli, o.target);
  if (!t.ok()) return Fail(t.status());
  WsRequest request;
  request.op = WsRequest::Op::kCommit;
  request.commit.message = o.message;
  request.commit.author = o.author.empty() ? DefaultAuthor() : o.author;
  request.commit.skip_checks_reason = o.skip_checks;
  auto metadata = ParseMetadataFlags(o.meta);
  if (!metadata.ok()) return Fail(metadata.status());
  request.commit.metadata = std::move(metadata).value();
  auto provenance = ResolveFromFlags(*t->repo, o.from);
  if (!provenance.ok()) return Fail(provenance.status());
  request.commit.provenance = std::move(provenance).value();
  auto reply = Run(*t, request);
  if (!reply.ok()) return Fail(reply.status().Annotate("nothing was committed"));
  std::string name = t->spec.dataset + "@" + t->spec.rev;
  if (!reply->status.ok()) {
    if (reply->status.code() == Status::Code::kConflict)
      return Fail("nothing was committed: " + name + " moved to " + Short(reply->head) + " since the workspace's base " +
                  Short(reply->base) + ": " + kDivergedHelp);
    return Fail(reply->status.Annotate("nothing was committed"));
  }
  const WsCommitResult& r = reply->commit;
  if (!r.commit) {
    std::cout << "nothing to commit: " << name << " stays at " << Short(reply->base) << std::endl;
    return 0;
  }
  std::cout << "committed " << r.commit->ShortHex() << " to " << name << ": " << r.files_changed
            << " changed; new data stored: " << HumanBytes(r.new_stored_bytes) << std::endl;
  return 0;
}

int RunResolve(Cli& cli, const std::string& target, const std::vector<std::string>& paths) {
  auto t = OpenTarget(cli, target);
  if (!t.ok()) return Fail(t.status());
  WsRequest request;
  request.op = WsRequest::Op::kResolve;
  for (std::string p : paths) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (p.rfind("./", 0) == 0) p = p.substr(2);
    request.paths.push_back(p);
  }
  auto reply = Run(*t, request);
  if (!reply.ok()) return Fail(reply.status());
  if (!reply->status.ok()) return Fail(reply->status.Annotate("nothing was marked resolved"));
  std::string name = t->spec.dataset + "@" + t->spec.rev;
  for (const auto& p : request.paths) std::cout << "resolved " << Printable(p) << "\n";
  WsRequest status;
  status.op = WsRequest::Op::kStatus;
  auto after = Run(*t, status);
  if (after.ok() && after->status.ok() && after->merge) {
    size_t left = after->merge->Unresolved();
    if (left == 0) std::cout << "every conflict resolved: 'tusk commit " << name << "' makes the merge commit\n";
    else std::cout << left << " conflict" << (left == 1 ? "" : "s") << " left ('tusk status " << name << "')\n";
  }
  std::cout << std::flush;
  return 0;
}

int RunReset(Cli& cli, const std::string& target) {
  auto t = OpenTarget(cli, target);
  if (!t.ok()) return Fail(t.status());
  WsRequest request;
  request.op = WsRequest::Op::kReset;
  auto reply = Run(*t, request);
  if (!reply.ok()) return Fail(reply.status());
  if (!reply->status.ok()) return Fail(reply->status);
  std::cout << "workspace " << t->spec.dataset << "@" << t->spec.rev << " reset to " << Short(reply->base)
            << "; staged changes dropped" << std::endl;
  return 0;
}

}  // namespace

Result<size_t> StagedChangeCount(Repository& repo, const std::string& dataset, const std::string& branch) {
  WsRequest request;
  request.op = WsRequest::Op::kStatus;
  auto reply = RunWorkspaceCommand(repo, dataset, branch, request);
  if (!reply.ok()) return reply.status();
  if (!reply->status.ok()) return reply->status;
  // A staged merge is staged work even when it changed nothing.
  return std::max<size_t>(reply->changes.size(), reply->merge ? 1 : 0);
}

void AddWorkspaceCommands(CLI::App& app, Cli& cli) {
  auto status_target = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* status = app.add_subcommand("status", "List the changes staged in a branch workspace (A added, M modified, D deleted)");
  status->add_option("target", *status_target, "DATASET@BRANCH")->required();
  AddJsonFlag(status, json.get());
  status->callback([status_target, json, &cli] { cli.exit_code = RunStatus(cli, *status_target, *json); });

  auto o = std::make_shared<CommitOpts>();
  CLI::App* commit = app.add_subcommand("commit", "Commit a branch workspace's staged changes as the branch's new head");
  commit->add_option("target", o->target, "DATASET@BRANCH")->required();
  commit->add_option("-m,--message", o->message,
                     "Commit message (required, except for a staged merge: default the one given to tusk merge -m, "
                     "else 'merge SOURCE into DATASET@BRANCH')");
  commit->add_option("--author", o->author, "Author (default $TUSK_AUTHOR, else $USER)");
  commit->add_option("--meta", o->meta, "KEY=VALUE metadata (repeatable)");
  commit->add_option("--from", o->from, "DATASET@REF this version was derived from (repeatable)");
  AddSkipChecksOption(commit, &o->skip_checks);
  commit->callback([o, &cli] { cli.exit_code = RunCommit(cli, *o); });

  auto resolve_target = std::make_shared<std::string>();
  auto resolve_paths = std::make_shared<std::vector<std::string>>();
  CLI::App* resolve = app.add_subcommand(
      "resolve", "Mark conflicting paths of a staged merge (tusk merge --stage) resolved, once fixed in the workspace");
  resolve->add_option("target", *resolve_target, "DATASET@BRANCH")->required();
  resolve->add_option("paths", *resolve_paths, "PATH in the workspace, as 'tusk status' lists it")->required();
  resolve->footer(
      "Refused while a text file still holds conflict markers, a table the in-cell notation, or theirs' version "
      "still sits beside the path (PATH~theirs). man tusk-resolve.");
  resolve->callback([resolve_target, resolve_paths, &cli] {
    cli.exit_code = RunResolve(cli, *resolve_target, *resolve_paths);
  });

  auto reset_target = std::make_shared<std::string>();
  CLI::App* reset = app.add_subcommand("reset", "Drop every change staged in a branch workspace (and a staged merge)");
  reset->add_option("target", *reset_target, "DATASET@BRANCH")->required();
  reset->callback([reset_target, &cli] { cli.exit_code = RunReset(cli, *reset_target); });
}

}  // namespace tusk::cli
