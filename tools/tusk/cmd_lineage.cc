// tusk lineage / stale / update / rerun, and diff --inputs (registered by
// cmd_diff.cc): questions answered from run records (issue 10; man
// tusk-lineage, tusk-stale, tusk-update, tusk-rerun).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "store/diff.h"
#include "store/lineage/lineage.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

std::string Label(const std::string& dataset, const ObjectId& commit) {
  return Printable(dataset) + "@" + commit.ShortHex();
}

// Four spaces a level, up to 8 levels; deeper levels (a long chain of runs)
// say their depth instead, so output grows linearly with the chain.
std::string Indent(int depth) {
  if (depth <= 8) return std::string(static_cast<size_t>(depth) * 4, ' ');
  return std::string(32, ' ') + "[" + std::to_string(depth) + "] ";
}

// ---- upstream ----

// The commit, or nullopt when this store does not have it: a run that came
// from a remote names inputs of datasets this store may not have fetched.
Result<std::optional<Commit>> ReadIfHere(Repository& repo, const ObjectId& id) {
  TUSK_ASSIGN_OR_RETURN(bool here, repo.Contains(id));
  if (!here) return std::optional<Commit>();
  TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(id));
  return std::optional<Commit>(std::move(c));
}
constexpr const char* kNotHere = "  (not in this store: fetch its dataset from the remote the run came from)";

struct Upstream {
  Repository& repo;
  std::set<ObjectId> seen;  // commits already described (a DAG: say so once)

  // `known`: the commit, when the caller has read it already.
  Status Text(const ObjectId& commit, const std::string& dataset, int depth, std::optional<Commit> known = std::nullopt) {
    std::string pad = Indent(depth);
    if (!known) {
      TUSK_ASSIGN_OR_RETURN(known, repo.ReadCommit(commit));
    }
    const Commit& c = *known;
    std::cout << pad << Label(dataset, commit);
    if (!seen.insert(commit).second) {
      std::cout << "  (see above)\n";
      return Status::Ok();
    }
    if (!c.run) {
      std::cout << "  (not made by a run: imported or committed)\n";
      return Status::Ok();
    }
    TUSK_ASSIGN_OR_RETURN(RunRecord run, repo.ReadRun(*c.run));
    std::cout << "  made by run:" << c.run->ShortHex() << "  " << FormatTime(run.start_ns / 1000000000) << "  "
              << StatusText(run.exit_status) << "\n";
    std::cout << pad << "    $ " << Printable(CommandText(run.argv)) << "\n";
    for (const auto& in : run.inputs) {
      TUSK_ASSIGN_OR_RETURN(std::optional<Commit> input, ReadIfHere(repo, in.commit));
      std::cout << pad << "  input " << Printable(in.name) << " (" << Printable(in.ref) << "): " << in.files_read;
      if (input) std::cout << " of " << input->file_count;
      std::cout << " files read, " << in.dirs_listed << " director" << (in.dirs_listed == 1 ? "y" : "ies") << " listed\n";
      if (!input) {
        std::cout << Indent(depth + 1) << Label(in.dataset, in.commit) << kNotHere << "\n";
        continue;
      }
      TUSK_RETURN_IF_ERROR(Text(in.commit, in.dataset, depth + 1, std::move(input)));
    }
    return Status::Ok();
  }

  // Flat, so that any JSON reader copes with a chain of thousands of runs:
  // every commit and every run once, linked by ids.
  Status JsonOf(Json& j, const ObjectId& start, const std::string& dataset) {
    std::vector<std::pair<ObjectId, std::string>> queue{{start, dataset}};
    std::set<ObjectId> queued{start}, runs_seen;
    Json runs;
    runs.BeginArray();
    j.BeginObject().Key("root").String(start.Hex()).Key("commits").BeginArray();
    for (size_t i = 0; i < queue.size(); i++) {
      auto [commit, ds] = queue[i];
      TUSK_ASSIGN_OR_RETURN(std::optional<Commit> here, ReadIfHere(repo, commit));
      if (!here) {  // an input of a run from a remote, not fetched
        j.BeginObject().Key("commit").String(commit.Hex()).Key("dataset").String(ds).Key("in_store").Bool(false);
        j.EndObject();
        continue;
      }
      const Commit& c = *here;
      j.BeginObject().Key("commit").String(commit.Hex()).Key("dataset").String(ds).Key("files").Number(c.file_count);
      j.Key("run");
      if (c.run) j.String(c.run->Hex());
      else j.Null();
      j.EndObject();
      if (!c.run || !runs_seen.insert(*c.run).second) continue;
      TUSK_ASSIGN_OR_RETURN(RunRecord run, repo.ReadRun(*c.run));
      runs.BeginObject().Key("run").String(c.run->Hex()).Key("argv").BeginArray();
      for (const auto& arg : run.argv) runs.String(arg);
      runs.EndArray().Key("start_ns").Signed(run.start_ns).Key("exit_status").Signed(run.exit_status);
      runs.Key("output").String(commit.Hex()).Key("inputs").BeginArray();
      for (const auto& in : run.inputs) {
        runs.BeginObject().Key("name").String(in.name).Key("ref").String(in.ref).Key("dataset").String(in.dataset);
        runs.Key("commit").String(in.commit.Hex()).Key("files_read").Number(in.files_read);
        runs.Key("dirs_listed").Number(in.dirs_listed).EndObject();
        if (queued.insert(in.commit).second) queue.emplace_back(in.commit, in.dataset);
      }
      runs.EndArray().EndObject();
    }
    runs.EndArray();
    j.EndArray().Key("runs").Raw(runs.str()).EndObject();
    return Status::Ok();
  }
};

// Graphviz: commits as boxes, runs as ellipses, edges input -> run -> output.
struct Dot {
  std::set<std::string> nodes, edges;
  static std::string Quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
  }
  void Commit(const ObjectId& id, const std::string& dataset) {
    nodes.insert("  c" + id.ShortHex() + " [shape=box, label=" + Quote(dataset + "@" + id.ShortHex()) + "];");
  }
  void Run(const ObjectId& id, const RunRecord& r) {
    std::string cmd = CommandText(r.argv);
    if (cmd.size() > 40) cmd = cmd.substr(0, 37) + "...";
    nodes.insert("  r" + id.ShortHex() + " [shape=ellipse, label=" + Quote("run:" + id.ShortHex(8) + "\n" + cmd) + "];");
  }
  void Edge(const std::string& from, const std::string& to, const std::string& label = "") {
    edges.insert("  " + from + " -> " + to + (label.empty() ? "" : " [label=" + Quote(label) + "]") + ";");
  }
  void Print() const {
    std::cout << "digraph lineage {\n  rankdir=LR;\n";
    for (const auto& n : nodes) std::cout << n << "\n";
    for (const auto& e : edges) std::cout << e << "\n";
    std::cout << "}" << std::endl;
  }
};

Status UpstreamDot(Repository& repo, const ObjectId& commit, const std::string& dataset, Dot& dot,
                   std::set<ObjectId>& seen) {
  dot.Commit(commit, dataset);
  if (!seen.insert(commit).second) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(std::optional<Commit> here, ReadIfHere(repo, commit));
  if (!here) return Status::Ok();  // an input of a run from a remote, not fetched
  const Commit& c = *here;
  if (!c.run) return Status::Ok();
  TUSK_ASSIGN_OR_RETURN(RunRecord run, repo.ReadRun(*c.run));
  dot.Run(*c.run, run);
  dot.Edge("r" + c.run->ShortHex(), "c" + commit.ShortHex());
  for (const auto& in : run.inputs) {
    dot.Edge("c" + in.commit.ShortHex(), "r" + c.run->ShortHex(), std::to_string(in.files_read) + " read");
    TUSK_RETURN_IF_ERROR(UpstreamDot(repo, in.commit, in.dataset, dot, seen));
  }
  return Status::Ok();
}

// The newest commit on `start`'s first-parent line whose PATH is what
// `start` has: where the file came from.
Result<ObjectId> WhereLastChanged(Repository& repo, const ObjectId& start, const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(start));
  auto entry = LookupPath(repo, c.root, path);
  if (!entry.ok()) return entry.status().Annotate(path);
  ObjectId at = start;
  while (!c.parents.empty()) {
    TUSK_ASSIGN_OR_RETURN(Commit parent, repo.ReadCommit(c.parents.front()));
    auto before = LookupPath(repo, parent.root, path);
    if (!before.ok() || !before->SameContent(*entry)) break;
    at = c.parents.front();
    c = std::move(parent);
  }
  return at;
}

// ---- downstream ----

struct DownRun {
  ObjectId run;
  std::string input;  // the input's name
  std::vector<ObjectId> outputs;
};

// The runs that read `commit` (with `path`: that file's content at that
// path, in any commit of the dataset).
Result<std::vector<DownRun>> RunsThatRead(Repository& repo, const ObjectId& commit, const std::string& dataset,
                                          const std::string& path) {
  std::vector<DownRun> out;
  if (path.empty()) {
    TUSK_ASSIGN_OR_RETURN(std::vector<ObjectId> runs, repo.RunsReading(commit));
    for (const auto& id : runs) {
      TUSK_ASSIGN_OR_RETURN(RunRecord r, repo.ReadRun(id));
      for (const auto& in : r.inputs) {
        if (in.commit != commit) continue;
        DownRun d{id, in.name, {}};
        TUSK_ASSIGN_OR_RETURN(d.outputs, repo.RunOutputs(id));
        out.push_back(std::move(d));
        break;
      }
    }
    return out;
  }
  TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(commit));
  auto target = LookupPath(repo, c.root, path);
  if (!target.ok()) return target.status().Annotate(path);
  TUSK_ASSIGN_OR_RETURN(std::vector<RunSummary> runs, repo.ListRuns());
  for (const auto& s : runs) {
    for (const auto& in : s.record.inputs) {
      if (in.dataset != dataset) continue;
      auto read = LookupPath(repo, in.read_tree, path);
      if (!read.ok() || read->kind == EntryKind::kDirectory || !read->SameContent(*target)) continue;
      out.push_back({s.id, in.name, s.outputs});
      break;
    }
  }
  return out;
}

struct Downstream {
  Repository& repo;
  std::set<ObjectId> seen;

  Status Text(const ObjectId& commit, const std::string& dataset, const std::string& path, int depth) {
    std::string pad = Indent(depth);
    if (!seen.insert(commit).second && path.empty()) {
      std::cout << pad << "(runs that read " << Label(dataset, commit) << ": see above)\n";
      return Status::Ok();
    }
    TUSK_ASSIGN_OR_RETURN(std::vector<DownRun> runs, RunsThatRead(repo, commit, dataset, path));
    for (const auto& d : runs) {
      TUSK_ASSIGN_OR_RETURN(RunRecord r, repo.ReadRun(d.run));
      std::cout << pad << "read by run:" << d.run.ShortHex() << " (input " << Printable(d.input) << ", "
                << FormatTime(r.start_ns / 1000000000) << ", " << StatusText(r.exit_status) << ")  $ "
                << Printable(CommandText(r.argv)) << "\n";
      if (d.outputs.empty()) std::cout << pad << "    no output commit\n";
      for (const auto& o : d.outputs) {
        TUSK_ASSIGN_OR_RETURN(Commit oc, repo.ReadCommit(o));
        std::cout << pad << "    -> " << Label(oc.dataset, o) << "\n";
        TUSK_RETURN_IF_ERROR(Text(o, oc.dataset, "", depth + 2));
      }
    }
    return Status::Ok();
  }

  // Flat, like upstream: the commits reached and the runs that read them.
  Status JsonOf(Json& j, const ObjectId& start, const std::string& dataset, const std::string& path) {
    std::vector<std::pair<ObjectId, std::string>> queue{{start, dataset}};
    std::set<ObjectId> queued{start};
    Json runs;
    runs.BeginArray();
    j.BeginObject().Key("root").String(start.Hex());
    if (!path.empty()) j.Key("path").String(path);
    j.Key("commits").BeginArray();
    for (size_t i = 0; i < queue.size(); i++) {
      auto [commit, ds] = queue[i];
      j.BeginObject().Key("commit").String(commit.Hex()).Key("dataset").String(ds).EndObject();
      TUSK_ASSIGN_OR_RETURN(std::vector<DownRun> read_by, RunsThatRead(repo, commit, ds, i == 0 ? path : ""));
      for (const auto& d : read_by) {
        runs.BeginObject().Key("run").String(d.run.Hex()).Key("input").String(d.input).Key("read").String(commit.Hex());
        runs.Key("outputs").BeginArray();
        for (const auto& o : d.outputs) {
          runs.String(o.Hex());
          if (!queued.insert(o).second) continue;
          TUSK_ASSIGN_OR_RETURN(Commit oc, repo.ReadCommit(o));
          queue.emplace_back(o, oc.dataset);
        }
        runs.EndArray().EndObject();
      }
    }
    runs.EndArray();
    j.EndArray().Key("runs").Raw(runs.str()).EndObject();
    return Status::Ok();
  }

  Status DotOf(Dot& dot, const ObjectId& commit, const std::string& dataset, const std::string& path) {
    dot.Commit(commit, dataset);
    if (!seen.insert(commit).second && path.empty()) return Status::Ok();
    TUSK_ASSIGN_OR_RETURN(std::vector<DownRun> runs, RunsThatRead(repo, commit, dataset, path));
    for (const auto& d : runs) {
      TUSK_ASSIGN_OR_RETURN(RunRecord r, repo.ReadRun(d.run));
      dot.Run(d.run, r);
      dot.Edge("c" + commit.ShortHex(), "r" + d.run.ShortHex(), path.empty() ? d.input : path);
      for (const auto& o : d.outputs) {
        TUSK_ASSIGN_OR_RETURN(Commit oc, repo.ReadCommit(o));
        dot.Edge("r" + d.run.ShortHex(), "c" + o.ShortHex());
        TUSK_RETURN_IF_ERROR(DotOf(dot, o, oc.dataset, ""));
      }
    }
    return Status::Ok();
  }
};

struct LineageOpts {
  std::string ref, path;
  bool down = false, json = false, dot = false;
};

int RunLineage(const LineageOpts& o, Cli& cli) {
  if (o.json && o.dot) return Fail("--json and --dot: choose one");
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto spec = ParseRef(o.ref, true);
  if (!spec.ok()) return Fail(spec.status());
  auto commit = (*repo)->Resolve(*spec);
  if (!commit.ok()) return Fail(commit.status());
  std::string path = o.path;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  Status st;
  if (o.down) {
    Downstream down{**repo, {}};
    if (o.json) {
      Json j;
      st = down.JsonOf(j, *commit, spec->dataset, path);
      if (st.ok()) j.Print();
    } else if (o.dot) {
      Dot dot;
      st = down.DotOf(dot, *commit, spec->dataset, path);
      if (st.ok()) dot.Print();
    } else {
      std::cout << Label(spec->dataset, *commit) << (path.empty() ? "" : " " + Printable(path)) << "\n";
      st = down.Text(*commit, spec->dataset, path, 1);
      std::cout << std::flush;
    }
    return st.ok() ? 0 : Fail(st);
  }
  ObjectId start = *commit;
  if (!path.empty()) {
    auto at = WhereLastChanged(**repo, *commit, path);
    if (!at.ok()) return Fail(at.status());
    start = *at;
  }
  if (o.json) {
    Json j;
    st = Upstream{**repo, {}}.JsonOf(j, start, spec->dataset);
    if (st.ok()) j.Print();
  } else if (o.dot) {
    Dot dot;
    std::set<ObjectId> seen;
    st = UpstreamDot(**repo, start, spec->dataset, dot, seen);
    if (st.ok()) dot.Print();
  } else {
    if (!path.empty())
      std::cout << Printable(path) << " in " << Label(spec->dataset, *commit) << " was last changed by "
                << Label(spec->dataset, start) << "\n";
    Upstream up{**repo, {}};
    st = up.Text(start, spec->dataset, 0);
    std::cout << std::flush;
  }
  return st.ok() ? 0 : Fail(st);
}

// ---- stale ----

struct StaleBranch {
  std::string dataset, branch;
  ObjectId head;
  ObjectId run;
  RunRecord record;
  std::vector<InputDrift> drift;
  bool moved() const {
    for (const auto& d : drift)
      if (d.moved) return true;
    return false;
  }
  bool stale() const {
    for (const auto& d : drift)
      if (!d.changed.empty()) return true;
    return false;
  }
};

// Every branch whose head a run made, with its inputs' drift.
Result<std::vector<StaleBranch>> RunBranches(Repository& repo) {
  std::vector<StaleBranch> out;
  TUSK_ASSIGN_OR_RETURN(std::vector<DatasetInfo> datasets, repo.ListDatasets());
  for (const auto& ds : datasets) {
    TUSK_ASSIGN_OR_RETURN(std::vector<RefInfo> branches, repo.ListBranches(ds.name));
    for (const auto& b : branches) {
      if (!b.commit) continue;
      TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(*b.commit));
      if (!c.run) continue;
      StaleBranch s{ds.name, b.name, *b.commit, *c.run, {}, {}};
      TUSK_ASSIGN_OR_RETURN(s.record, repo.ReadRun(*c.run));
      TUSK_ASSIGN_OR_RETURN(s.drift, DriftOf(repo, s.record));
      out.push_back(std::move(s));
    }
  }
  return out;
}

void DescribeDrift(const StaleBranch& s) {
  std::cout << Printable(s.dataset) << "@" << Printable(s.branch) << ": " << (s.stale() ? "stale" : "not stale")
            << " (made by run:" << s.run.ShortHex() << ")\n";
  for (const auto& d : s.drift) {
    const RunInput& in = s.record.inputs[d.input];
    if (!d.problem.empty()) {
      std::cout << "    input " << Printable(in.name) << ": " << Printable(d.problem) << "\n";
      continue;
    }
    if (!d.moved) continue;
    std::cout << "    input " << Printable(in.name) << " (" << Printable(in.dataset) << "@" << Printable(d.branch)
              << ") moved " << in.commit.ShortHex() << " -> " << (d.head ? d.head->ShortHex() : "(none)") << ": ";
    if (d.changed.empty()) {
      std::cout << "none of the " << in.files_read << " files it read changed\n";
      continue;
    }
    std::cout << d.changed.size() << " of what it read changed:";
    for (size_t i = 0; i < d.changed.size() && i < 10; i++) std::cout << " " << Printable(d.changed[i]);
    if (d.changed.size() > 10) std::cout << " ...";
    std::cout << "\n";
  }
}

int RunStale(Cli& cli, bool json) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto branches = RunBranches(**repo);
  if (!branches.ok()) return Fail(branches.status());
  Json j;
  j.BeginArray();
  size_t shown = 0;
  for (const auto& s : *branches) {
    bool problem = false;
    for (const auto& d : s.drift) problem = problem || !d.problem.empty();
    if (!s.moved() && !problem) continue;
    shown++;
    if (!json) {
      DescribeDrift(s);
      continue;
    }
    j.BeginObject().Key("branch").String(s.dataset + "@" + s.branch).Key("head").String(s.head.Hex());
    j.Key("run").String(s.run.Hex()).Key("stale").Bool(s.stale()).Key("inputs").BeginArray();
    for (const auto& d : s.drift) {
      const RunInput& in = s.record.inputs[d.input];
      j.BeginObject().Key("name").String(in.name).Key("ref").String(in.ref).Key("read").String(in.commit.Hex());
      j.Key("head");
      if (d.head) j.String(d.head->Hex());
      else j.Null();
      j.Key("moved").Bool(d.moved).Key("changed").BeginArray();
      for (const auto& p : d.changed) j.String(p);
      j.EndArray();
      if (!d.problem.empty()) j.Key("problem").String(d.problem);
      j.EndObject();
    }
    j.EndArray().EndObject();
  }
  if (json) {
    j.EndArray().Print();
    return 0;
  }
  if (shown == 0) std::cout << "nothing is stale: no input of a run-made branch head has moved" << std::endl;
  std::cout << std::flush;
  return 0;
}

// ---- re-running a recorded command ----

// Warns when the code in the run's directory is not what it was.
void WarnCodeVersion(const RunRecord& r) {
  if (!r.code) return;
  auto now = CodeVersionOf(r.cwd);
  if (!now) {
    Warn("the run was made in the git checkout " + r.code->repository + ", which " + r.cwd + " no longer is");
    return;
  }
  if (now->commit != r.code->commit)
    Warn("the code differs from the recorded run: HEAD of " + now->repository + " is " + now->commit.substr(0, 12) +
         ", the run had " + (r.code->commit.empty() ? std::string("no commit") : r.code->commit.substr(0, 12)));
  if (now->dirty && (!r.code->dirty || now->diff_digest != r.code->diff_digest))
    Warn("the code differs from the recorded run: " + now->repository + " has uncommitted changes" +
         (r.code->dirty ? " other than the run's" : ""));
  else if (!now->dirty && r.code->dirty)
    Warn("the recorded run had uncommitted changes in " + r.code->repository + " that are not there now");
}

// Sets up what the recorded run had: its directory and its recorded
// environment variables (restored by LeaveRunContext). The store path is
// made absolute first: the run's directory is not ours.
struct SavedEnv {
  std::vector<std::pair<std::string, std::optional<std::string>>> vars;
};
Status EnterRunContext(Cli& cli, const RunRecord& r, RunOpts* o, SavedEnv* saved) {
  std::error_code ec;
  cli.store_flag = std::filesystem::absolute(cli.StoreDir(), ec).string();
  if (ec) return Status::FromErrno(ec.value(), "store directory " + cli.StoreDir());
  if (::chdir(r.cwd.c_str()) != 0)
    return Status::FromErrno(errno, "the run's working directory " + r.cwd + " (create it, or run from a copy)");
  for (const auto& [k, v] : r.env) {
    const char* before = std::getenv(k.c_str());
    saved->vars.emplace_back(k, before ? std::optional<std::string>(before) : std::nullopt);
    ::setenv(k.c_str(), v.c_str(), 1);
    o->env.push_back(k);
  }
  return Status::Ok();
}
void LeaveRunContext(const SavedEnv& saved) {
  for (const auto& [k, v] : saved.vars) {
    if (v) ::setenv(k.c_str(), v->c_str(), 1);
    else ::unsetenv(k.c_str());
  }
}

struct UpdateOpts {
  std::string target;
  bool all = false, force = false;
};

// The store must not be open in this process (RunRun opens it; LMDB allows
// one environment per file per process).
int UpdateOne(Cli& cli, const StaleBranch& s, bool force) {
  std::string name = s.dataset + "@" + s.branch;
  if (!s.stale() && !force) {
    std::cout << name << ": up to date (no file its run read has changed)" << std::endl;
    return 0;
  }
  for (const auto& d : s.drift)
    if (!d.problem.empty()) return Fail(name + ": cannot update: " + d.problem);
  RunOpts o;
  for (const auto& in : s.record.inputs) o.in.push_back(in.name + "=" + in.ref);
  o.out = name;
  o.message = s.record.message.empty() ? "tusk update: " + CommandText(s.record.argv) : s.record.message;
  for (const auto& [k, v] : s.record.meta) o.meta.push_back(k + "=" + v);
  o.command = s.record.argv;
  WarnCodeVersion(s.record);
  SavedEnv saved;
  if (Status st = EnterRunContext(cli, s.record, &o, &saved); !st.ok()) return Fail(st.Annotate(name));
  std::cout << name << ": updating (run:" << s.run.ShortHex() << " again on the new inputs)" << std::endl;
  int rc = RunRun(o, cli);
  LeaveRunContext(saved);
  if (rc != 0) std::cerr << "tusk: " << name << ": the update failed (status " << rc << ")" << std::endl;
  return rc;
}

int RunUpdate(const UpdateOpts& o, Cli& cli) {
  if (o.all == !o.target.empty()) return Fail("give DATASET@BRANCH, or --all for every stale branch");
  if (!o.all) {
    auto spec = ParseNewRefName(o.target, "branch");
    if (!spec.ok()) return Fail(spec.status());
    auto repo = cli.OpenStore();
    if (!repo.ok()) return Fail(repo.status());
    auto branches = RunBranches(**repo);
    if (!branches.ok()) return Fail(branches.status());
    for (const auto& s : *branches) {
      if (s.dataset != spec->dataset || s.branch != spec->rev) continue;
      StaleBranch target = s;
      repo->reset();
      return UpdateOne(cli, target, o.force);
    }
    if (Status st = (*repo)->CheckDataset(spec->dataset); !st.ok()) return Fail(st);
    auto head = (*repo)->GetBranch(spec->dataset, spec->rev);
    if (!head.ok()) return Fail(head.status());
    return Fail(o.target + ": its head was not made by tusk run, so there is no command to run again");
  }
  // --all: in dependency order, each branch looked at after those it reads
  // were updated.
  std::set<std::string> done;
  std::string cwd = std::filesystem::current_path().string();
  int failures = 0;
  for (;;) {
    auto repo = cli.OpenStore();
    if (!repo.ok()) return Fail(repo.status());
    auto branches = RunBranches(**repo);
    if (!branches.ok()) return Fail(branches.status());
    std::set<std::string> pending;
    for (const auto& s : *branches)
      if (!done.count(s.dataset + "@" + s.branch)) pending.insert(s.dataset + "@" + s.branch);
    const StaleBranch* next = nullptr;
    for (const auto& s : *branches) {
      if (done.count(s.dataset + "@" + s.branch)) continue;
      bool waits = false;
      for (const auto& d : s.drift) {
        const RunInput& in = s.record.inputs[d.input];
        if (!d.branch.empty() && in.dataset + "@" + d.branch != s.dataset + "@" + s.branch &&
            pending.count(in.dataset + "@" + d.branch))
          waits = true;
      }
      if (!waits) {
        next = &s;
        break;
      }
    }
    if (!next) {
      if (pending.empty()) break;
      std::string list;
      for (const auto& p : pending) list += " " + p;
      return Fail("these branches' runs read each other in a cycle, so no order updates them:" + list);
    }
    done.insert(next->dataset + "@" + next->branch);
    if (!next->moved() && !o.force) continue;
    StaleBranch target = *next;
    repo->reset();
    if (::chdir(cwd.c_str()) != 0) return Fail("chdir " + cwd + ": " + std::strerror(errno));
    int rc = UpdateOne(cli, target, o.force);
    if (rc != 0) failures++;
    // Ctrl-C, SIGTERM or SIGHUP ended the command: stop here.
    if (rc == 128 + SIGINT || rc == 128 + SIGTERM || rc == 128 + SIGHUP) return rc;
  }
  return failures ? 1 : 0;
}

// ---- rerun ----

// A run named by run:ID, or by an output commit that names one.
Result<ObjectId> RunOfArg(Repository& repo, const std::string& text) {
  if (text.rfind("run:", 0) == 0) return repo.ResolveRun(text);
  TUSK_ASSIGN_OR_RETURN(ObjectId commit, repo.Resolve(text, true));
  TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(commit));
  if (!c.run)
    return Status::InvalidArgument(text + " (" + commit.ShortHex() +
                                   ") was not made by tusk run; give run:ID or an output of a run");
  return *c.run;
}

int RunRerun(Cli& cli, const std::string& target) {
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  auto run_id = RunOfArg(**repo, target);
  if (!run_id.ok()) return Fail(run_id.status());
  auto r = (*repo)->ReadRun(*run_id);
  if (!r.ok()) return Fail(r.status());
  auto outputs = (*repo)->RunOutputs(*run_id);
  if (!outputs.ok()) return Fail(outputs.status());
  RunOpts o;
  for (const auto& in : r->inputs) o.in.push_back(in.name + "=" + in.dataset + "@" + in.commit.Hex());
  o.message = "tusk rerun of run:" + run_id->ShortHex();
  for (const auto& [k, v] : r->meta) o.meta.push_back(k + "=" + v);
  o.command = r->argv;
  std::string scratch;
  if (!r->out_dataset.empty()) {
    if (outputs->empty()) return Fail("run:" + run_id->ShortHex() + " committed no output (it exited with " +
                                      StatusText(r->exit_status) + "): nothing to compare a rerun with");
    for (int n = 1;; n++) {
      scratch = r->out_branch + "-rerun-" + run_id->ShortHex(8) + (n > 1 ? "-" + std::to_string(n) : "");
      auto exists = (*repo)->GetBranch(r->out_dataset, scratch);
      if (!exists.ok()) break;
    }
    Status made = (*repo)->CreateBranch(r->out_dataset, scratch, r->out_parent);
    if (!made.ok()) return Fail(made);
    o.out = r->out_dataset + "@" + scratch;
  }
  WarnCodeVersion(*r);
  SavedEnv saved;
  if (Status st = EnterRunContext(cli, *r, &o, &saved); !st.ok()) {
    if (!scratch.empty()) (void)(*repo)->DeleteBranch(r->out_dataset, scratch);
    return Fail(st);
  }
  std::cerr << "tusk: running run:" << run_id->ShortHex() << " again on its recorded inputs"
            << (scratch.empty() ? "" : ", into " + o.out) << std::endl;
  repo->reset();  // RunRun opens the store itself
  RunOutcome outcome;
  int rc = RunRun(o, cli, &outcome);
  LeaveRunContext(saved);
  auto again = cli.OpenStore();
  if (!again.ok()) return Fail(again.status());
  if (scratch.empty()) {
    std::cout << "rerun exited with " << StatusText(rc) << "; the recorded run exited with "
              << StatusText(r->exit_status) << " (it had no output to compare)" << std::endl;
    return rc == 0 ? 0 : 1;  // the command's own status could be taken for 3, "different"
  }
  if (rc != 0 || !outcome.output) {
    (void)(*again)->DeleteBranch(r->out_dataset, scratch);
    std::cout << "rerun failed (" << StatusText(rc) << "); the recorded run's output is " << outputs->front().ShortHex()
              << std::endl;
    return 1;
  }
  auto recorded = (*again)->ReadCommit(outputs->front());
  auto fresh = (*again)->ReadCommit(*outcome.output);
  if (!recorded.ok()) return Fail(recorded.status());
  if (!fresh.ok()) return Fail(fresh.status());
  auto changes = DiffTrees(**again, recorded->root, fresh->root);
  if (!changes.ok()) return Fail(changes.status());
  std::vector<const Change*> differing;
  for (const auto& c : *changes)
    if (c.kind != Change::Kind::kModified || c.content_changed) differing.push_back(&c);
  if (differing.empty()) {
    std::cout << "identical: the rerun's output equals " << Printable(r->out_dataset) << "@"
              << outputs->front().ShortHex() << " (the scratch branch " << Printable(o.out) << " was deleted)"
              << std::endl;
    (void)(*again)->DeleteBranch(r->out_dataset, scratch);
    return 0;
  }
  std::cout << "different: " << differing.size() << " file(s) differ from " << Printable(r->out_dataset) << "@"
            << outputs->front().ShortHex() << " (the rerun's output stays on " << Printable(o.out) << ")\n";
  for (const Change* c : differing)
    std::cout << ChangeLetter(c->kind) << "  "
              << Printable(c->kind == Change::Kind::kRenamed ? c->old_path + " -> " + c->path : c->path) << "\n";
  std::cout << std::flush;
  return 3;
}

}  // namespace

// ---- diff --inputs ----

int DiffInputs(Cli& cli, const std::string& a, const std::string& b, bool json) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  std::vector<RunRecord> runs;
  std::vector<ObjectId> ids;
  for (const auto& text : {a, b}) {
    auto id = RunOfArg(**repo, text);
    if (!id.ok()) return Fail(id.status());
    auto r = (*repo)->ReadRun(*id);
    if (!r.ok()) return Fail(r.status());
    ids.push_back(*id);
    runs.push_back(std::move(r).value());
  }
  // Inputs pair up by name, else by dataset.
  struct Pair {
    const RunInput* a = nullptr;
    const RunInput* b = nullptr;
  };
  std::vector<Pair> pairs;
  std::set<const RunInput*> used;
  for (const auto& ia : runs[0].inputs) {
    Pair p{&ia, nullptr};
    for (const auto& ib : runs[1].inputs)
      if (!used.count(&ib) && ib.name == ia.name) p.b = &ib;
    if (!p.b)
      for (const auto& ib : runs[1].inputs)
        if (!used.count(&ib) && ib.dataset == ia.dataset) p.b = &ib;
    if (p.b) used.insert(p.b);
    pairs.push_back(p);
  }
  for (const auto& ib : runs[1].inputs)
    if (!used.count(&ib)) pairs.push_back({nullptr, &ib});
  Json j;
  j.BeginArray();
  size_t total = 0;
  for (const auto& p : pairs) {
    std::string label = p.a ? p.a->name : p.b->name;
    if (!p.a || !p.b) {
      const RunInput* only = p.a ? p.a : p.b;
      if (json) {
        j.BeginObject().Key("input").String(label).Key("only_in").String(p.a ? "a" : "b").Key("files_read")
            .Number(only->files_read).EndObject();
      } else {
        std::cout << "input " << Printable(label) << ": only run " << (p.a ? "A" : "B") << " had it ("
                  << Label(only->dataset, only->commit) << ", " << only->files_read << " files read)\n";
      }
      continue;
    }
    auto changes = DiffTrees(**repo, p.a->read_tree, p.b->read_tree);
    if (!changes.ok()) return Fail(changes.status());
    std::vector<std::pair<char, std::string>> lines;  // '-' only A, '+' only B, 'M' both, different content
    for (const auto& c : *changes) {
      switch (c.kind) {
        case Change::Kind::kAdded: lines.emplace_back('+', c.path); break;
        case Change::Kind::kDeleted: lines.emplace_back('-', c.path); break;
        case Change::Kind::kRenamed:
          lines.emplace_back('-', c.old_path);
          lines.emplace_back('+', c.path);
          break;
        case Change::Kind::kModified:
          if (c.content_changed) lines.emplace_back('M', c.path);
          break;
        case Change::Kind::kTypeChanged: lines.emplace_back('M', c.path); break;
      }
    }
    std::sort(lines.begin(), lines.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
    total += lines.size();
    if (json) {
      j.BeginObject().Key("input").String(label).Key("a").String(p.a->commit.Hex()).Key("b").String(p.b->commit.Hex());
      j.Key("only_a").BeginArray();
      for (const auto& [k, path] : lines)
        if (k == '-') j.String(path);
      j.EndArray().Key("only_b").BeginArray();
      for (const auto& [k, path] : lines)
        if (k == '+') j.String(path);
      j.EndArray().Key("different").BeginArray();
      for (const auto& [k, path] : lines)
        if (k == 'M') j.String(path);
      j.EndArray().EndObject();
      continue;
    }
    size_t counts[3] = {0, 0, 0};
    for (const auto& [k, path] : lines) counts[k == '-' ? 0 : k == '+' ? 1 : 2]++;
    std::cout << "input " << Printable(label) << ": A read " << Label(p.a->dataset, p.a->commit) << ", B read "
              << Label(p.b->dataset, p.b->commit) << ": " << counts[0] << " read only by A, " << counts[1]
              << " only by B, " << counts[2] << " by both with different content\n";
    for (const auto& [k, path] : lines) std::cout << "  " << (k == '-' ? "A " : k == '+' ? "B " : "M ") << Printable(path) << "\n";
  }
  if (json) {
    j.EndArray().Print();
    return 0;
  }
  if (total == 0) std::cout << "the two runs read the same files with the same content" << std::endl;
  std::cout << std::flush;
  return 0;
}

void AddLineageCommands(CLI::App& app, Cli& cli) {
  auto lo = std::make_shared<LineageOpts>();
  CLI::App* lineage = app.add_subcommand("lineage", "Show the runs and inputs a version came from, or (--down) what read it");
  lineage->add_option("ref", lo->ref, "DATASET@REF")->required();
  lineage->add_option("path", lo->path, "A file of that version: where it came from, or (--down) which runs read it");
  lineage->add_flag("--down", lo->down, "Downstream: every run that read the version (or file), and what they made");
  AddJsonFlag(lineage, &lo->json);
  lineage->add_flag("--dot", lo->dot, "Print a Graphviz graph");
  lineage->callback([lo, &cli] { cli.exit_code = RunLineage(*lo, cli); });

  auto stale_json = std::make_shared<bool>(false);
  CLI::App* stale = app.add_subcommand(
      "stale", "List branches made by runs whose input branches moved since, and whether what they read changed");
  AddJsonFlag(stale, stale_json.get());
  stale->callback([stale_json, &cli] { cli.exit_code = RunStale(cli, *stale_json); });

  auto uo = std::make_shared<UpdateOpts>();
  CLI::App* update = app.add_subcommand(
      "update", "Run a branch's recorded command again on the new heads of its input branches, and commit the output");
  update->add_option("target", uo->target, "DATASET@BRANCH whose head a run made");
  update->add_flag("--all", uo->all, "Every stale branch, in dependency order");
  update->add_flag("--force", uo->force, "Run even when no file the run read has changed");
  update->callback([uo, &cli] { cli.exit_code = RunUpdate(*uo, cli); });

  auto rerun_target = std::make_shared<std::string>();
  CLI::App* rerun = app.add_subcommand(
      "rerun", "Run a recorded command again on its recorded inputs and compare its output with the recorded one");
  rerun->add_option("target", *rerun_target, "run:ID, or DATASET@REF made by a run")->required();
  rerun->footer("Exit status: 0 identical, 3 the output differs, 1 an error or the command failed.");
  rerun->callback([rerun_target, &cli] { cli.exit_code = RunRerun(cli, *rerun_target); });
}

}  // namespace tusk::cli
