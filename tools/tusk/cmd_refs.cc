// tusk branch / tag: create, list and delete named refs.
#include <iostream>

#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct RefOpts {
  std::string target, from;
  bool del = false, list = false, json = false, force = false;
};

int RunRef(const RefOpts& o, Cli& cli, bool branch) {
  const char* what = branch ? "branch" : "tag";
  bool listing = o.list || o.target.find('@') == std::string::npos;
  auto repo_or = cli.OpenStore(listing ? StoreAccess::kReadOnly : StoreAccess::kReadWrite);
  if (!repo_or.ok()) return Fail(repo_or.status());
  Repository& repo = **repo_or;
  if (listing) {
    if (o.del) return Fail(std::string("-d needs DATASET@") + (branch ? "BRANCH" : "TAG"));
    auto refs = branch ? repo.ListBranches(o.target) : repo.ListTags(o.target);
    if (!refs.ok()) return Fail(refs.status());
    Json j;
    j.BeginArray();
    for (const auto& r : *refs) {
      if (o.json) {
        j.BeginObject().Key("name").String(r.name).Key("commit");
        if (r.commit) j.String(r.commit->Hex());
        else j.Null();
        j.EndObject();
      } else {
        std::cout << r.name << "\t" << (r.commit ? r.commit->ShortHex() : "(no commits)") << "\n";
      }
    }
    if (o.json) j.EndArray().Print();
    return 0;
  }
  auto spec = ParseNewRefName(o.target, what);
  if (!spec.ok()) return Fail(spec.status());
  if (o.del) {
    if (branch) {
      // The workspace goes first, so a crash in between leaves a branch
      // without staged changes, never staged changes without their branch.
      auto head = repo.GetBranch(spec->dataset, spec->rev);
      if (!head.ok()) return Fail(head.status());
      Status ws = RemoveWorkspacesForDelete(repo, spec->dataset, spec->rev, o.force, "branch " + o.target);
      if (!ws.ok()) return Fail(ws);
    }
    Status st = branch ? repo.DeleteBranch(spec->dataset, spec->rev) : repo.DeleteTag(spec->dataset, spec->rev);
    if (!st.ok()) return Fail(st);
    std::cout << "Deleted " << what << " " << o.target << std::endl;
    return 0;
  }
  // FROM may be a full ref or a ref name of the same dataset.
  std::string from = o.from.empty() ? spec->dataset + "@" + kDefaultBranch
                     : o.from.find('@') == std::string::npos ? spec->dataset + "@" + o.from
                                                              : o.from;
  auto parsed = ParseRef(from, false);
  if (!parsed.ok()) return Fail(parsed.status());
  if (parsed->dataset != spec->dataset)
    return Fail(std::string("a ") + what + " of dataset '" + spec->dataset + "' must point at a commit of that dataset, not of '" +
                parsed->dataset + "'");
  std::optional<ObjectId> at;
  auto id = repo.Resolve(*parsed);
  if (id.ok()) {
    at = *id;
  } else if (!(branch && o.from.empty())) {
    return Fail(id.status());
  }
  // A branch of a dataset with no commits yet starts empty, like 'main'.
  Status st = branch ? repo.CreateBranch(spec->dataset, spec->rev, at)
              : repo.CreateTag(spec->dataset, spec->rev, *at);
  if (!st.ok()) return Fail(st);
  std::cout << "Created " << what << " " << o.target << " at " << (at ? at->ShortHex() : "(no commits)") << std::endl;
  return 0;
}

void AddRefCommand(CLI::App& app, Cli& cli, bool branch) {
  auto o = std::make_shared<RefOpts>();
  const char* name = branch ? "branch" : "tag";
  CLI::App* sub = app.add_subcommand(
      name, branch ? "List (DATASET), create (DATASET@NAME [FROM]) or delete (-d DATASET@NAME) branches"
                   : "List (DATASET), create (DATASET@NAME [REF]) or delete (-d DATASET@NAME) tags");
  sub->add_option("target", o->target, "DATASET to list, or DATASET@NAME to create or delete")->required();
  sub->add_option("from", o->from, branch ? "Where the branch starts (default DATASET@main)" : "What the tag names (default DATASET@main)");
  sub->add_flag("-d,--delete", o->del, std::string("Delete the ") + name);
  if (branch)
    sub->add_flag("-f,--force", o->force, "With -d: delete the branch even if its workspace has staged changes (they are lost)");
  sub->add_flag("--list", o->list, std::string("List the ") + (branch ? "branches" : "tags") + " of DATASET");
  AddJsonFlag(sub, &o->json);
  sub->callback([o, &cli, branch] { cli.exit_code = RunRef(*o, cli, branch); });
}

}  // namespace

void AddRefCommands(CLI::App& app, Cli& cli) {
  AddRefCommand(app, cli, true);
  AddRefCommand(app, cli, false);
}

}  // namespace tusk::cli
