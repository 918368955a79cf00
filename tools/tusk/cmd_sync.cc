// tusk push, fetch, pull, clone, prefetch: sharing datasets through a remote
// (store/remote/remote.h).
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "store/backend/pack_mirror.h"
#include "store/merge/merge.h"
#include "store/remote/remote.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

Result<RemoteConnection> ConnectByName(const Cli& cli, const std::string& name) {
  TUSK_ASSIGN_OR_RETURN(Remote remote, FindRemote(Env::Default(), cli.StoreDir(), name));
  return Connect(remote);
}

// DATASET[@BRANCH] naming a local branch (the default branch when bare).
Result<RefSpec> ParseBranchArg(const std::string& text) {
  TUSK_ASSIGN_OR_RETURN(RefSpec spec, ParseRef(text, true));
  if (spec.ancestors > 0 || !spec.remote.empty())
    return Status::InvalidArgument("'" + text + "' is not a branch; expected DATASET[@BRANCH], e.g. data@main");
  if (spec.rev.empty()) spec.rev = kDefaultBranch;
  return spec;
}

std::string Short(const std::optional<ObjectId>& id) { return id ? id->ShortHex() : std::string("(none)"); }

struct PushArgs {
  std::string remote, ref;
  bool force = false, all = false, tags = false;
};

// Prints one pushed ref's outcome.
void PrintPush(const std::string& remote, const std::string& target, bool tag, const PushReport& report) {
  const char* what = tag ? "tag" : "branch";
  switch (report.outcome) {
    case PushReport::Outcome::kUpToDate:
      std::cout << target << " is up to date on " << remote << " (" << report.new_commit.ShortHex() << ")\n";
      return;
    case PushReport::Outcome::kCreated:
      std::cout << "Pushed " << target << " to " << remote << ": new " << what << " at " << report.new_commit.ShortHex();
      break;
    case PushReport::Outcome::kFastForward:
      std::cout << "Pushed " << target << " to " << remote << ": " << Short(report.old_commit) << ".."
                << report.new_commit.ShortHex();
      break;
    case PushReport::Outcome::kForced:
      std::cout << "Pushed " << target << " to " << remote << ": " << Short(report.old_commit) << " replaced by "
                << report.new_commit.ShortHex() << " (forced)";
      break;
  }
  std::cout << "; " << report.objects << " object(s) the remote lacked, " << HumanBytes(report.bytes_uploaded)
            << " in " << report.packs_uploaded + report.packs_repacked << " pack(s) (" << report.packs_uploaded
            << " whole, " << report.packs_repacked << " repacked)";
  if (report.packs_skipped) std::cout << ", " << report.packs_skipped << " pack(s) already there";
  std::cout << std::endl;
  if (!report.settings_note.empty()) Warn(report.settings_note);
}

int RunPush(const Cli& cli, const PushArgs& o) {
  auto spec = ParseRef(o.ref, true);
  if (!spec.ok()) return Fail(spec.status());
  if (spec->ancestors > 0 || !spec->remote.empty())
    return Fail("'" + o.ref + "' is not a branch or tag; expected DATASET[@NAME], e.g. data@main");
  if (o.all && !spec->rev.empty()) return Fail("--all pushes every branch of a dataset: give DATASET alone");
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  if (Status st = (*repo)->CheckDataset(spec->dataset); !st.ok()) return Fail(st);
  // What to push: (name, is a tag).
  std::vector<std::pair<std::string, bool>> refs;
  auto branches = (*repo)->ListBranches(spec->dataset);
  auto tags = (*repo)->ListTags(spec->dataset);
  if (!branches.ok()) return Fail(branches.status());
  if (!tags.ok()) return Fail(tags.status());
  if (o.all) {
    for (const RefInfo& b : *branches)
      if (b.commit) refs.emplace_back(b.name, false);
  } else {
    std::string name = spec->rev.empty() ? kDefaultBranch : spec->rev;
    bool is_tag = std::none_of(branches->begin(), branches->end(), [&](const RefInfo& b) { return b.name == name; }) &&
                  std::any_of(tags->begin(), tags->end(), [&](const RefInfo& t) { return t.name == name; });
    refs.emplace_back(name, is_tag);
  }
  if (o.tags)
    for (const RefInfo& t : *tags)
      if (std::find(refs.begin(), refs.end(), std::pair{t.name, true}) == refs.end()) refs.emplace_back(t.name, true);
  if (refs.empty()) return Fail("dataset '" + spec->dataset + "' has no branch with commits: there is nothing to push");
  auto connection = ConnectByName(cli, o.remote);
  if (!connection.ok()) return Fail(connection.status());
  int exit_code = 0;
  for (const auto& [name, tag] : refs) {
    PushOptions options;
    options.force = o.force;
    options.tag = tag;
    Progress progress;
    Result<PushReport> report = Status::Ok();
    {
      ProgressDisplay display(&progress, "pushing", "bytes");
      report = Push(**repo, *connection, spec->dataset, name, options, &progress);
    }
    if (!report.ok()) {
      exit_code = Fail(report.status());
      continue;  // the others may still land
    }
    PrintPush(o.remote, spec->dataset + "@" + name, tag, *report);
  }
  return exit_code;
}

void PrintFetch(const std::string& remote, const FetchReport& report) {
  std::cout << "Fetched " << remote << ": " << report.packs_registered << " new pack(s), " << report.objects_localized
            << " commit/tree object(s) copied here (" << HumanBytes(report.bytes_localized) << ")\n";
  for (const RemoteRefValue& r : report.refs) {
    if (r.kind == 's') continue;
    std::cout << "  " << r.dataset << "@" << remote << "/" << r.name << "\t" << r.commit.ShortHex()
              << (r.kind == 't' ? "\t(tag)" : "") << "\n";
  }
  for (const std::string& w : report.warnings) Warn(w);
}

int RunFetch(const Cli& cli, const std::string& remote, const std::string& dataset) {
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  if (!dataset.empty())
    if (Status st = ValidateName("dataset", dataset); !st.ok()) return Fail(st);
  auto connection = ConnectByName(cli, remote);
  if (!connection.ok()) return Fail(connection.status());
  Progress progress;
  Result<FetchReport> report = Status::Ok();
  {
    ProgressDisplay display(&progress, "fetching", "packs");
    report = Fetch(**repo, *connection, dataset.empty() ? std::nullopt : std::optional<std::string>(dataset), &progress);
  }
  if (!report.ok()) return Fail(report.status());
  PrintFetch(remote, *report);
  return 0;
}

// Moves `branch` of `dataset` to `to` (a fetched commit): created when
// absent, fast-forwarded when behind, refused when it has diverged.
Status FastForward(Repository& repo, const std::string& remote, const std::string& dataset, const std::string& branch,
                   const ObjectId& to, std::string* what) {
  std::string target = dataset + "@" + branch;
  if (!repo.CheckDataset(dataset).ok()) {
    TUSK_RETURN_IF_ERROR(repo.CreateDataset(dataset));
  }
  TUSK_RETURN_IF_ERROR(IndexFetchedHistory(repo, dataset, to));
  auto head = repo.GetBranch(dataset, branch);
  if (!head.ok()) {
    if (head.status().code() != Status::Code::kNotFound) return head.status();
    TUSK_RETURN_IF_ERROR(repo.CreateBranch(dataset, branch, to));
    *what = "created " + target + " at " + to.ShortHex();
    return Status::Ok();
  }
  if (*head == to) {
    *what = target + " is up to date (" + to.ShortHex() + ")";
    return Status::Ok();
  }
  if (*head) {
    TUSK_ASSIGN_OR_RETURN(bool behind, IsAncestor(repo, **head, to));
    if (!behind) {
      TUSK_ASSIGN_OR_RETURN(bool ahead, IsAncestor(repo, to, **head));
      if (ahead) {
        *what = target + " is ahead of " + remote + "/" + branch + " (" + head->value().ShortHex() +
                "); nothing to pull ('tusk push " + remote + " " + target + "' shares it)";
        return Status::Ok();
      }
      return Status::Conflict(target + " (" + head->value().ShortHex() + ") and " + dataset + "@" + remote + "/" +
                              branch + " (" + to.ShortHex() + ") have diverged; nothing moved. Merge them: "
                              "'tusk merge " + dataset + "@" + remote + "/" + branch + " " + target + "'");
    }
  }
  // Staged changes in the branch's workspace would be left on a base that
  // is no longer the branch: refused, as merge does.
  WsRequest status;
  status.op = WsRequest::Op::kStatus;
  auto ws = RunWorkspaceCommand(repo, dataset, branch, status);
  if (ws.ok() && !ws->status.ok()) ws = ws->status;
  if (!ws.ok()) return ws.status().Annotate("nothing was pulled");
  if (ws->merge || !ws->changes.empty())
    return Status::Conflict("nothing was pulled: " + target + " has staged changes in its workspace; commit or reset "
                            "them first (tusk status " + target + ")");
  TUSK_ASSIGN_OR_RETURN(Commit commit, repo.ReadCommit(to));
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WriteSession> session, repo.BeginWrite());
  TUSK_ASSIGN_OR_RETURN(ObjectId landed, session->CommitToBranch(commit, branch, *head));
  if (landed != to) return Status::Corruption("commit " + to.ShortHex() + " did not encode back to itself");
  *what = target + ": " + Short(*head) + ".." + to.ShortHex() + " (fast-forward)";
  return Status::Ok();
}

int RunPull(const Cli& cli, const std::string& remote, const std::string& ref) {
  auto spec = ParseBranchArg(ref);
  if (!spec.ok()) return Fail(spec.status());
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  auto connection = ConnectByName(cli, remote);
  if (!connection.ok()) return Fail(connection.status());
  Progress progress;
  Result<FetchReport> report = Status::Ok();
  {
    ProgressDisplay display(&progress, "fetching", "packs");
    report = Fetch(**repo, *connection, spec->dataset, &progress);
  }
  if (!report.ok()) return Fail(report.status());
  for (const std::string& w : report->warnings) Warn(w);
  std::optional<ObjectId> theirs;
  for (const RemoteRefValue& r : report->refs)
    if (r.kind == 'b' && r.name == spec->rev) theirs = r.commit;
  if (!theirs)
    return Fail("remote '" + remote + "' has no branch " + spec->dataset + "@" + spec->rev + " (see 'tusk fetch " +
                remote + "')");
  std::string what;
  Status st = FastForward(**repo, remote, spec->dataset, spec->rev, *theirs, &what);
  if (!st.ok()) return Fail(st);
  std::cout << "Pulled from " << remote << ": " << what << std::endl;
  return 0;
}

struct CloneArgs {
  Remote remote;
  std::string dir;
  bool path_style = false, virtual_host = false;
};

// The last part of s3://BUCKET[/PREFIX]: the default directory of a clone.
std::string DefaultCloneDir(const std::string& url) {
  std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  return rest.substr(rest.rfind('/') == std::string::npos ? 0 : rest.rfind('/') + 1);
}

int RunClone(CloneArgs o) {
  if (o.path_style && o.virtual_host) return Fail("--path-style and --virtual-host exclude each other");
  if (o.path_style) o.remote.addressing = Remote::Addressing::kPathStyle;
  if (o.virtual_host) o.remote.addressing = Remote::Addressing::kVirtualHost;
  if (o.dir.empty()) o.dir = DefaultCloneDir(o.remote.url);
  if (o.dir.empty()) return Fail("cannot name a directory after '" + o.remote.url + "'; give one: tusk clone URL DIR");
  struct stat st;
  bool existed = ::stat(o.dir.c_str(), &st) == 0;
  // What the clone made goes again if it fails: a half-cloned store is no use.
  bool done = false;
  struct Cleanup {
    const std::string& dir;
    bool existed;
    bool& done;
    ~Cleanup() {
      if (done) return;
      std::error_code ec;
      if (existed) {
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) std::filesystem::remove_all(e.path(), ec);
      } else {
        std::filesystem::remove_all(dir, ec);
      }
    }
  };
  if (Status s = Repository::Create(o.dir, StoreConfig{}); !s.ok()) return Fail(s);
  Cleanup cleanup{o.dir, existed, done};
  if (Status s = AddRemote(Env::Default(), o.dir, o.remote, false); !s.ok()) {
    // (remote add's hint, --create-bucket, is no option of clone: there is
    // nothing to clone from a bucket that does not exist.)
    std::string message = s.message();
    if (size_t hint = message.find("; create it, or pass --create-bucket"); hint != std::string::npos)
      message.erase(hint);
    return Fail("nothing was cloned: " + message);
  }
  auto repo = Repository::Open(o.dir);
  if (!repo.ok()) return Fail(repo.status());
  auto connection = Connect(o.remote);
  if (!connection.ok()) return Fail(connection.status());
  Progress progress;
  Result<FetchReport> report = Status::Ok();
  {
    ProgressDisplay display(&progress, "fetching", "packs");
    report = Fetch(**repo, *connection, std::nullopt, &progress);
  }
  if (!report.ok()) return Fail(report.status().Annotate("nothing was cloned"));
  for (const std::string& w : report->warnings) Warn(w);
  std::map<std::string, size_t> branches;
  for (const RemoteRefValue& r : report->refs) {
    Status s;
    if (r.kind == 'b') {
      std::string what;
      s = FastForward(**repo, o.remote.name, r.dataset, r.name, r.commit, &what);
      branches[r.dataset]++;
    }
    if (!s.ok()) return Fail(s.Annotate("nothing was cloned"));
  }
  for (const RemoteRefValue& r : report->refs) {
    Status s;
    if (r.kind == 't') {
      if (!(**repo).CheckDataset(r.dataset).ok()) s = (**repo).CreateDataset(r.dataset);
      if (s.ok()) s = IndexFetchedHistory(**repo, r.dataset, r.commit);
      if (s.ok()) s = (**repo).CreateTag(r.dataset, r.name, r.commit);
    } else if (r.kind == 's') {
      if (!(**repo).CheckDataset(r.dataset).ok()) s = (**repo).CreateDataset(r.dataset);
      if (s.ok()) {
        auto session = (**repo).BeginWrite();
        s = session.ok() ? (*session)->SetSettingsHead(r.dataset, r.commit, std::nullopt) : session.status();
      }
    }
    if (!s.ok()) return Fail(s.Annotate("nothing was cloned"));
  }
  done = true;
  std::cout << "Cloned " << o.remote.url << " into " << o.dir << " (remote '" << o.remote.name << "'): ";
  if (branches.empty()) std::cout << "no datasets yet";
  bool first = true;
  for (const auto& [d, n] : branches) {
    std::cout << (first ? "" : ", ") << d << " (" << n << " branch" << (n == 1 ? "" : "es") << ")";
    first = false;
  }
  std::cout << "\nFile data stays on the remote and is read when first needed. Use the store with --store " << o.dir
            << " or TUSK_STORE=" << o.dir << std::endl;
  return 0;
}

struct PrefetchArgs {
  std::string ref;
  std::vector<std::string> paths;
  std::string cache_size;
  int jobs = 8;
};

int RunPrefetch(const Cli& cli, const PrefetchArgs& o) {
  if (o.jobs < 1 || o.jobs > 64) return Fail("--jobs must be 1 to 64");
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  if (!o.cache_size.empty()) {
    auto size = ParseSize(o.cache_size);
    if (!size.ok()) return Fail(size.status().Annotate("--remote-cache-size"));
    if (*size < (uint64_t{16} << 20)) return Fail("--remote-cache-size must be at least 16M");
    (*repo)->set_remote_cache_size(*size);
  }
  auto commit = (*repo)->Resolve(o.ref, true);
  if (!commit.ok()) return Fail(commit.status());
  Progress progress;
  Result<PrefetchReport> report = Status::Ok();
  {
    ProgressDisplay display(&progress, "prefetching", "bytes");
    report = Prefetch(**repo, *commit, o.paths, o.jobs, &progress);
  }
  if (!report.ok()) return Fail(report.status());
  std::cout << "Prefetched " << o.ref << ": " << report->files << " file(s), " << HumanBytes(report->bytes) << " in "
            << report->chunks << " chunk(s): " << report->chunks_fetched << " fetched ("
            << HumanBytes(report->bytes_fetched) << "), " << report->chunks_cached << " already cached, "
            << report->chunks_local << " in this store" << std::endl;
  uint64_t capacity = (*repo)->remote_cache().capacity();
  if (report->bytes_remote > capacity)
    Warn("the files hold " + HumanBytes(report->bytes_remote) + " of remote data but the cache keeps " +
         HumanBytes(capacity) +
         ": the first ones fetched were evicted again (give a larger --remote-cache-size)");
  return 0;
}

}  // namespace

void AddSyncCommands(CLI::App& app, Cli& cli) {
  auto prefetch = std::make_shared<PrefetchArgs>();
  CLI::App* pf = app.add_subcommand("prefetch", "Read a version's remote data into the local cache: tusk prefetch DATASET@REF [PATH...]");
  pf->add_option("ref", prefetch->ref, "DATASET@REF")->required();
  pf->add_option("paths", prefetch->paths, "Files or directories (default: all of it)");
  pf->add_option("--remote-cache-size", prefetch->cache_size, "Bound of the cache (default 8G)");
  pf->add_option("-j,--jobs", prefetch->jobs, "Requests to the remote in flight, each of several chunks (default 8)");
  pf->footer("A training job started afterwards reads the data from local disk. See man tusk-prefetch.");
  pf->callback([&cli, prefetch] { cli.exit_code = RunPrefetch(cli, *prefetch); });

  auto push = std::make_shared<PushArgs>();
  CLI::App* p = app.add_subcommand("push", "Send a branch or tag to a remote: tusk push REMOTE DATASET[@NAME]");
  p->add_option("remote", push->remote, "Remote name (tusk remote list)")->required();
  p->add_option("ref", push->ref, "DATASET[@BRANCH|@TAG] (default branch: main)")->required();
  p->add_flag("--force", push->force, "Replace the remote branch even when it is not an ancestor of this one");
  p->add_flag("--all", push->all, "Every branch of the dataset");
  p->add_flag("--tags", push->tags, "Also every tag of the dataset (tags never move on the remote without --force)");
  p->footer("Only what the remote lacks is sent; the remote branch then moves by compare-and-set, so of two\n"
            "pushes to one branch exactly one lands. See man tusk-push.");
  p->callback([&cli, push] { cli.exit_code = RunPush(cli, *push); });

  auto fetch = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* f = app.add_subcommand("fetch", "Learn a remote's branches and data: tusk fetch REMOTE [DATASET]");
  f->add_option("remote", fetch->first, "Remote name")->required();
  f->add_option("dataset", fetch->second, "Only this dataset");
  f->footer("Sets the remote-tracking refs DATASET@REMOTE/BRANCH and copies commits and trees here; file data\n"
            "stays on the remote until read. No local branch moves. See man tusk-fetch.");
  f->callback([&cli, fetch] { cli.exit_code = RunFetch(cli, fetch->first, fetch->second); });

  auto pull = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* l = app.add_subcommand("pull", "Fetch and fast-forward a branch: tusk pull REMOTE DATASET[@BRANCH]");
  l->add_option("remote", pull->first, "Remote name")->required();
  l->add_option("branch", pull->second, "DATASET[@BRANCH] (default branch: main)")->required();
  l->footer("Creates the dataset and branch when missing; refuses when the branches have diverged (merge\n"
            "DATASET@REMOTE/BRANCH then). See man tusk-pull.");
  l->callback([&cli, pull] { cli.exit_code = RunPull(cli, pull->first, pull->second); });

  auto clone = std::make_shared<CloneArgs>();
  clone->remote.name = "origin";
  CLI::App* c = app.add_subcommand("clone", "Make a new store that shares a remote: tusk clone s3://BUCKET[/PREFIX] [DIR]");
  c->add_option("url", clone->remote.url, "s3://BUCKET[/PREFIX]")->required();
  c->add_option("dir", clone->dir, "Directory of the new store (default: the last part of the URL)");
  c->add_option("--endpoint", clone->remote.endpoint, "S3 server other than AWS, e.g. http://127.0.0.1:7480");
  c->add_option("--region", clone->remote.region, "Region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)");
  c->add_option("--name", clone->remote.name, "Name of the remote in the new store (default: origin)");
  c->add_flag("--path-style", clone->path_style, "Address the bucket in the path");
  c->add_flag("--virtual-host", clone->virtual_host, "Address the bucket in the host name");
  c->add_flag("--insecure", clone->remote.insecure, "Do not verify the server's TLS certificate");
  c->footer("Every branch and tag of the remote becomes a local one; file data stays on the remote and is read\n"
            "when first needed. See man tusk-clone.");
  c->callback([&cli, clone] { cli.exit_code = RunClone(*clone); });
}

}  // namespace tusk::cli
