// tusk log / show: commit history with metadata and provenance.
#include <iostream>
#include <queue>
#include <unordered_map>

#include "store/settings/settings.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {


void CommitJson(Json& j, const ObjectId& id, const Commit& c) {
  j.BeginObject().Key("commit").String(id.Hex()).Key("dataset").String(c.dataset).Key("tree").String(c.root.Hex());
  j.Key("parents").BeginArray();
  for (const auto& p : c.parents) j.String(p.Hex());
  j.EndArray();
  j.Key("author").String(c.author).Key("time").Signed(c.time_sec).Key("message").String(c.message);
  j.Key("metadata").BeginObject();
  for (const auto& [k, v] : c.metadata) j.Key(k).String(v);
  j.EndObject();
  j.Key("provenance").BeginArray();
  for (const auto& p : c.provenance) j.BeginObject().Key("dataset").String(p.dataset).Key("commit").String(p.commit.Hex()).EndObject();
  j.EndArray();
  j.Key("files").Number(c.file_count).Key("bytes").Number(c.total_bytes);
  if (c.run) j.Key("run").String(c.run->Hex());
  if (c.settings) j.Key("settings").String(c.settings->Hex());
  if (c.settings || !c.checks.empty()) {
    j.Key("checks").BeginArray();
    for (const auto& r : c.checks) {
      j.BeginObject().Key("name").String(r.name).Key("outcome").String(CheckOutcomeName(r.outcome));
      j.Key("duration_ms").Number(r.duration_ms).Key("output").String(r.output_tail).EndObject();
    }
    j.EndArray();
    if (!c.checks_skipped_reason.empty())
      j.Key("checks_skipped").BeginObject().Key("by").String(c.checks_skipped_by).Key("reason").String(
          c.checks_skipped_reason).EndObject();
  }
  j.EndObject();
}

// One line for `log`: what the checks said.
std::string ChecksSummary(const Commit& c) {
  if (!c.checks_skipped_reason.empty())
    return "skipped by " + Printable(c.checks_skipped_by) + ": " + Printable(c.checks_skipped_reason);
  size_t passed = 0;
  std::string failed;
  for (const auto& r : c.checks) {
    if (r.outcome == CheckResult::Outcome::kPassed) passed++;
    else failed += (failed.empty() ? "" : ", ") + Printable(r.name) + " " + CheckOutcomeName(r.outcome);
  }
  std::string out = std::to_string(passed) + " passed";
  if (!failed.empty()) out += "; " + failed;
  return out + " (settings " + c.settings->ShortHex() + ")";
}

void SettingsText(const ObjectId& id, const DatasetSettings& s) {
  std::cout << "settings " << id.Hex() << "\n";
  std::cout << "Author: " << Printable(s.author) << "\n";
  std::cout << "Date:   " << FormatTime(s.time_sec) << "\n\n";
  std::cout << "    " << Printable(s.change) << "\n\n";
}

void CommitText(const ObjectId& id, const Commit& c, bool full) {
  std::cout << "commit " << id.Hex() << "\n";
  if (c.parents.size() > 1 || full) {
    std::cout << "Parents:";
    for (const auto& p : c.parents) std::cout << " " << p.ShortHex();
    if (c.parents.empty()) std::cout << " (none)";
    std::cout << "\n";
  }
  std::cout << "Author: " << Printable(c.author) << "\n";
  std::cout << "Date:   " << FormatTime(c.time_sec) << "\n";
  for (const auto& [k, v] : c.metadata) std::cout << "Meta:   " << Printable(k) << "=" << Printable(v) << "\n";
  for (const auto& p : c.provenance) std::cout << "From:   " << Printable(p.dataset) << "@" << p.commit.ShortHex() << "\n";
  if (c.run) std::cout << "Run:    run:" << c.run->ShortHex() << "\n";
  if (c.settings && !full) std::cout << "Checks: " << ChecksSummary(c) << "\n";
  if (c.settings && full) {
    std::cout << "Checks: against settings " << c.settings->ShortHex();
    if (!c.checks_skipped_reason.empty())
      std::cout << ", skipped by " << Printable(c.checks_skipped_by) << ": " << Printable(c.checks_skipped_reason);
    std::cout << "\n";
    for (const auto& r : c.checks) {
      std::cout << "  " << CheckOutcomeName(r.outcome) << "  " << Printable(r.name);
      if (r.outcome != CheckResult::Outcome::kSkipped) std::cout << " (" << r.duration_ms << " ms)";
      std::cout << "\n";
      if (r.outcome == CheckResult::Outcome::kFailed) {
        size_t start = 0;
        while (start < r.output_tail.size()) {
          size_t nl = r.output_tail.find('\n', start);
          std::cout << "      " << Printable(r.output_tail.substr(start, nl == std::string::npos ? std::string::npos : nl - start)) << "\n";
          if (nl == std::string::npos) break;
          start = nl + 1;
        }
      }
    }
  }
  if (full) {
    std::cout << "Tree:   " << c.root.Hex() << "\n";
    std::cout << "Files:  " << c.file_count << " (" << HumanBytes(c.total_bytes) << ")\n";
  }
  std::cout << "\n";
  size_t start = 0;
  while (start <= c.message.size()) {
    size_t nl = c.message.find('\n', start);
    std::cout << "    " << Printable(c.message.substr(start, nl == std::string::npos ? std::string::npos : nl - start))
              << "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::cout << "\n";
}

struct LogOpts {
  std::string ref;
  int64_t max_count = -1;
  bool json = false;
  bool files = false;  // show run:ID --files
  bool graph = false;
};

// Every commit reachable from `head` (all parents), children before their
// parents and otherwise newest first: the order a graph is drawn in.
Result<std::vector<std::pair<ObjectId, Commit>>> TopoOrder(Repository& repo, const ObjectId& head) {
  std::unordered_map<ObjectId, Commit, ObjectIdHash> commits;
  std::unordered_map<ObjectId, size_t, ObjectIdHash> children;
  std::vector<ObjectId> stack{head};
  while (!stack.empty()) {
    ObjectId id = stack.back();
    stack.pop_back();
    if (commits.count(id)) continue;
    TUSK_ASSIGN_OR_RETURN(Commit c, repo.ReadCommit(id));
    for (const auto& p : c.parents) {
      children[p]++;
      stack.push_back(p);
    }
    commits.emplace(id, std::move(c));
  }
  auto newer = [&](const ObjectId& a, const ObjectId& b) {
    const Commit& x = commits.at(a);
    const Commit& y = commits.at(b);
    return x.time_sec != y.time_sec ? x.time_sec < y.time_sec : b < a;
  };
  std::priority_queue<ObjectId, std::vector<ObjectId>, decltype(newer)> ready(newer);
  ready.push(head);
  std::vector<std::pair<ObjectId, Commit>> out;
  while (!ready.empty()) {
    ObjectId id = ready.top();
    ready.pop();
    const Commit& c = commits.at(id);
    for (const auto& p : c.parents)
      if (--children[p] == 0) ready.push(p);
    out.emplace_back(id, c);
  }
  return out;
}

// Branch and tag names per commit, for the graph's decorations.
std::unordered_map<ObjectId, std::string, ObjectIdHash> RefNames(Repository& repo, const std::string& dataset) {
  std::unordered_map<ObjectId, std::string, ObjectIdHash> names;
  auto add = [&](const Result<std::vector<RefInfo>>& refs, const char* prefix) {
    if (!refs.ok()) return;
    for (const auto& r : *refs) {
      if (!r.commit) continue;
      std::string& s = names[*r.commit];
      s += (s.empty() ? "" : ", ") + std::string(prefix) + Printable(r.name);
    }
  };
  add(repo.ListBranches(dataset), "");
  add(repo.ListTags(dataset), "tag ");
  return names;
}

// Draws one lane per line of history that is still open, as git log
// --graph does: `*` the commit, `|` a lane passing by, `|\` a merge opening
// a lane for its second parent, `|/` a lane joining the one to its left.
int PrintGraph(Repository& repo, const std::vector<std::pair<ObjectId, Commit>>& commits, int64_t max_count) {
  if (commits.empty()) return 0;
  auto names = RefNames(repo, commits.front().second.dataset);
  std::vector<ObjectId> lanes;
  auto bars = [&](size_t n) {
    std::string s;
    for (size_t k = 0; k < n; k++) s += "| ";
    return s;
  };
  int64_t shown = 0;
  for (const auto& [id, c] : commits) {
    if (max_count >= 0 && shown++ >= max_count) break;
    std::vector<size_t> at;
    for (size_t k = 0; k < lanes.size(); k++)
      if (lanes[k] == id) at.push_back(k);
    if (at.empty()) {
      lanes.push_back(id);
      at.push_back(lanes.size() - 1);
    }
    size_t col = at[0];
    // Lanes that waited for this commit too join its lane first.
    for (size_t n = at.size(); n-- > 1;) {
      size_t k = at[n];
      std::cout << bars(k - 1) << "|/";
      for (size_t m = k + 1; m < lanes.size(); m++) std::cout << " /";
      std::cout << "\n";
      lanes.erase(lanes.begin() + static_cast<std::ptrdiff_t>(k));
    }
    std::string line;
    for (size_t k = 0; k < lanes.size(); k++) line += k == col ? "* " : "| ";
    std::string subject = c.message.substr(0, c.message.find('\n'));
    std::cout << line << id.ShortHex();
    if (auto it = names.find(id); it != names.end()) std::cout << " (" << it->second << ")";
    std::cout << " " << Printable(subject) << "\n";
    if (c.parents.empty()) {
      lanes.erase(lanes.begin() + static_cast<std::ptrdiff_t>(col));
      continue;
    }
    lanes[col] = c.parents[0];
    for (size_t p = 1; p < c.parents.size(); p++) {
      lanes.insert(lanes.begin() + static_cast<std::ptrdiff_t>(col + p), c.parents[p]);
      std::cout << bars(col + p - 1) << "|\\";
      for (size_t m = col + p + 1; m < lanes.size(); m++) std::cout << " \\";
      std::cout << "\n";
    }
  }
  std::cout << std::flush;
  return 0;
}

int RunLog(const LogOpts& o, Cli& cli, bool show) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto id = (*repo)->Resolve(o.ref, true);
  if (!id.ok()) return Fail(id.status());
  if (o.graph) {
    auto commits = TopoOrder(**repo, *id);
    if (!commits.ok()) return Fail(commits.status());
    if (!o.json) return PrintGraph(**repo, *commits, o.max_count);
    Json j;
    j.BeginArray();
    int64_t n = 0;
    for (const auto& [cid, c] : *commits) {
      if (o.max_count >= 0 && n++ >= o.max_count) break;
      CommitJson(j, cid, c);
    }
    j.EndArray().Print();
    return 0;
  }
  Json j;
  if (!show) j.BeginArray();
  // Settings changes show where they happened among the commits (by time).
  std::vector<std::pair<ObjectId, DatasetSettings>> settings;
  if (!show && !o.json) {
    auto spec = ParseRef(o.ref, true);
    if (spec.ok()) {
      auto history = SettingsHistory(**repo, spec->dataset);
      if (!history.ok()) return Fail(history.status());
      settings = std::move(history).value();
    }
  }
  size_t next_settings = 0;
  std::optional<ObjectId> at = *id;
  for (int64_t n = 0; at && (o.max_count < 0 || n < o.max_count); n++) {
    auto c = (*repo)->ReadCommit(*at);
    if (!c.ok()) return Fail(c.status());
    // A change made in the same second as a commit is taken to precede it.
    for (; next_settings < settings.size() && settings[next_settings].second.time_sec > c->time_sec; next_settings++)
      SettingsText(settings[next_settings].first, settings[next_settings].second);
    if (o.json) CommitJson(j, *at, *c);
    else CommitText(*at, *c, show);
    if (show) break;
    at = c->parents.empty() ? std::nullopt : std::optional<ObjectId>(c->parents[0]);
  }
  // Changes older than every commit shown (made before the first one).
  if (!at) {
    for (; next_settings < settings.size(); next_settings++)
      SettingsText(settings[next_settings].first, settings[next_settings].second);
  }
  if (!show) j.EndArray();
  if (o.json) j.Print();
  return 0;
}

}  // namespace

void AddLogCommands(CLI::App& app, Cli& cli) {
  auto log = std::make_shared<LogOpts>();
  CLI::App* sub = app.add_subcommand("log", "Show the history of a branch or ref, newest first (first parents)");
  sub->add_option("ref", log->ref, "DATASET[@REF] (default branch main)")->required();
  sub->add_option("-n,--max-count", log->max_count, "Show at most N commits");
  sub->add_flag("--graph", log->graph,
                "Every commit the ref reaches (merged branches too), one line each, with the history drawn as lanes");
  AddJsonFlag(sub, &log->json);
  sub->callback([log, &cli] { cli.exit_code = RunLog(*log, cli, false); });

  auto show = std::make_shared<LogOpts>();
  CLI::App* s = app.add_subcommand("show", "Show one commit, or one run (run:ID), in full");
  s->add_option("ref", show->ref, "DATASET@REF, or run:ID")->required();
  AddJsonFlag(s, &show->json);
  s->add_flag("--files", show->files, "For a run: list every file it read, per input");
  s->callback([show, &cli] {
    if (show->ref.rfind("run:", 0) == 0) {
      cli.exit_code = ShowRun(cli, show->ref, show->json, show->files);
      return;
    }
    if (show->files) {
      cli.exit_code = Fail("--files lists what a run read: give run:ID ('tusk runs' lists them)");
      return;
    }
    cli.exit_code = RunLog(*show, cli, true);
  });
}

}  // namespace tusk::cli
