// tusk status / commit / reset: the staged changes of a branch workspace.
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

// Runs the request in the process that holds the workspace, or here.
Result<WsReply> Run(Repository& repo, const std::string& dataset, const std::string& branch, const WsRequest& request) {
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
Result<WsReply> Run(Target& t, const WsRequest& request) { return Run(*t.repo, t.spec.dataset, t.spec.rev, request); }

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
    j.EndArray().EndObject().Print();
    return 0;
  }
  std::cout << "workspace " << name << ", based on " << Short(reply->base) << std::endl;
  if (reply->diverged)
    std::cout << "warning: the branch is now at " << Short(reply->head) << ": " << kDivergedHelp << std::endl;
  if (reply->changes.empty()) {
    std::cout << "nothing staged" << std::endl;
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
  struct stat st;
  if (::stat((repo.dir() + "/workspaces/" + dataset + "/" + branch).c_str(), &st) != 0) return size_t{0};
  WsRequest request;
  request.op = WsRequest::Op::kStatus;
  auto reply = Run(repo, dataset, branch, request);
  if (!reply.ok()) return reply.status();
  if (!reply->status.ok()) return reply->status;
  return reply->changes.size();
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
  commit->add_option("-m,--message", o->message, "Commit message")->required();
  commit->add_option("--author", o->author, "Author (default $TUSK_AUTHOR, else $USER)");
  commit->add_option("--meta", o->meta, "KEY=VALUE metadata (repeatable)");
  commit->add_option("--from", o->from, "DATASET@REF this version was derived from (repeatable)");
  AddSkipChecksOption(commit, &o->skip_checks);
  commit->callback([o, &cli] { cli.exit_code = RunCommit(cli, *o); });

  auto reset_target = std::make_shared<std::string>();
  CLI::App* reset = app.add_subcommand("reset", "Drop every change staged in a branch workspace");
  reset->add_option("target", *reset_target, "DATASET@BRANCH")->required();
  reset->callback([reset_target, &cli] { cli.exit_code = RunReset(cli, *reset_target); });
}

}  // namespace tusk::cli
