// tusk check add|list|remove|run|trust and tusk table set|list|remove: a
// dataset's settings (store/settings/settings.h), and running its checks
// (fs/check_runner.h).
#include <iostream>

#include "fs/check_runner.h"
#include "fs/run_view.h"
#include "store/checks/builtin.h"
#include "store/settings/settings.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

std::string Indented(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    out += "    " + Printable(line) + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

struct AddOpts {
  std::string dataset, name;
  bool builtin = false;
  uint32_t timeout = CheckDefinition::kDefaultTimeoutSec;
};

int RunAdd(Cli& cli, const AddOpts& o) {
  if (Status st = ValidateCheckName(o.name); !st.ok()) return Fail(st);
  if (cli.command.empty())
    return Fail("give the check after '--': tusk check add " + o.dataset + " " + o.name +
                " -- COMMAND [ARGS...], or --builtin -- NAME [ARGS...] (tusk help check add)");
  CheckDefinition def;
  def.name = o.name;
  def.timeout_sec = o.timeout;
  if (o.timeout == 0) return Fail("--timeout must be at least 1 second");
  if (o.builtin) {
    def.builtin = cli.command[0];
    def.args.assign(cli.command.begin() + 1, cli.command.end());
    if (Status st = ValidateBuiltinCheck(def.builtin, def.args); !st.ok()) return Fail(st);
  } else {
    def.command = cli.command;
  }
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  if (Status st = (*repo)->CheckDataset(o.dataset); !st.ok()) return Fail(st);
  bool replaced = false;
  auto id = UpdateSettings(**repo, o.dataset, DefaultAuthor(), "check add " + o.name + " " + def.Describe(),
                           [&](DatasetSettings* s) {
                             for (auto& c : s->checks) {
                               if (c.name != o.name) continue;
                               c = def;
                               replaced = true;
                               return Status::Ok();
                             }
                             s->checks.push_back(def);
                             return Status::Ok();
                           });
  if (!id.ok()) return Fail(id.status());
  // Added here, by this user: trusted here.
  if (Status st = fs::TrustChecks(**repo, {&def}); !st.ok()) return Fail(st);
  std::cout << (replaced ? "changed" : "added") << " check " << o.name << " of " << o.dataset << " ("
            << Printable(def.Describe()) << "); settings " << id->ShortHex() << std::endl;
  return 0;
}

int RunRemove(Cli& cli, const std::string& dataset, const std::string& name) {
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  if (Status st = (*repo)->CheckDataset(dataset); !st.ok()) return Fail(st);
  auto id = UpdateSettings(**repo, dataset, DefaultAuthor(), "check remove " + name, [&](DatasetSettings* s) {
    for (auto it = s->checks.begin(); it != s->checks.end(); ++it) {
      if (it->name != name) continue;
      s->checks.erase(it);
      return Status::Ok();
    }
    return Status::NotFound("dataset '" + dataset + "' has no check named '" + name + "' (tusk check list " + dataset +
                            ")");
  });
  if (!id.ok()) return Fail(id.status());
  std::cout << "removed check " << name << " of " << dataset << "; settings " << id->ShortHex() << std::endl;
  return 0;
}

int RunList(Cli& cli, const std::string& dataset, bool json) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto cur = ReadCurrentSettings(**repo, dataset);
  if (!cur.ok()) return Fail(cur.status());
  auto trusted = fs::TrustedChecks(**repo);
  if (!trusted.ok()) return Fail(trusted.status());
  const auto& checks = cur->settings.checks;
  if (json) {
    Json j;
    j.BeginArray();
    for (const auto& c : checks) {
      j.BeginObject().Key("name").String(c.name);
      if (c.builtin.empty()) {
        j.Key("command").BeginArray();
        for (const auto& w : c.command) j.String(w);
        j.EndArray();
      } else {
        j.Key("builtin").String(c.builtin).Key("args").BeginArray();
        for (const auto& w : c.args) j.String(w);
        j.EndArray();
      }
      j.Key("timeout").Number(c.timeout_sec).Key("trusted").Bool(trusted->count(c.Digest()) > 0).EndObject();
    }
    j.EndArray().Print();
    return 0;
  }
  if (checks.empty()) {
    std::cout << "dataset " << dataset << " has no checks (tusk check add " << dataset << " NAME -- COMMAND)"
              << std::endl;
    return 0;
  }
  for (const auto& c : checks) {
    std::cout << c.name << "  " << Printable(c.Describe()) << "  (timeout " << c.timeout_sec << " s"
              << (trusted->count(c.Digest()) ? "" : ", NOT TRUSTED on this machine: tusk check trust " + dataset)
              << ")\n";
  }
  std::cout << std::flush;
  return 0;
}

int RunTrust(Cli& cli, const std::string& dataset, const std::vector<std::string>& names) {
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  auto cur = ReadCurrentSettings(**repo, dataset);
  if (!cur.ok()) return Fail(cur.status());
  std::vector<const CheckDefinition*> chosen;
  for (const auto& c : cur->settings.checks)
    if (names.empty() || std::find(names.begin(), names.end(), c.name) != names.end()) chosen.push_back(&c);
  for (const auto& n : names)
    if (!cur->settings.FindCheck(n)) return Fail("dataset '" + dataset + "' has no check named '" + n + "'");
  if (Status st = fs::TrustChecks(**repo, chosen); !st.ok()) return Fail(st);
  for (const auto* c : chosen) std::cout << "trusted " << c->name << "  " << Printable(c->Describe()) << "\n";
  std::cout << std::flush;
  return 0;
}

struct RunOpts2 {
  std::string ref;
  bool all = false, json = false, all_paths = false;
};

// tusk check run: the current checks on past commits, changing nothing.
int RunCheckRun(Cli& cli, const RunOpts2& o) {
  // Command checks need a private mount namespace, entered while this
  // process still has one thread.
  if (Status st = fs::EnterPrivateNamespace(); !st.ok()) return Fail(st);
  auto spec = ParseRef(o.ref, true);
  if (!spec.ok()) return Fail(spec.status());
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto head = (*repo)->Resolve(*spec);
  if (!head.ok()) return Fail(head.status());
  auto cur = ReadCurrentSettings(**repo, spec->dataset);
  if (!cur.ok()) return Fail(cur.status());
  if (cur->settings.checks.empty()) {
    std::cout << "dataset " << spec->dataset << " has no checks" << std::endl;
    return 0;
  }
  auto untrusted = fs::UntrustedChecks(**repo, cur->settings);
  if (!untrusted.ok()) return Fail(untrusted.status());
  if (!untrusted->empty())
    return Fail("dataset '" + spec->dataset + "' has checks this machine does not trust yet (first: '" +
                untrusted->front()->name + "'); see 'tusk check list " + spec->dataset + "' and 'tusk check trust'");
  std::vector<ObjectId> commits{*head};
  if (o.all) {
    for (std::optional<ObjectId> at = *head; at;) {
      auto c = (*repo)->ReadCommit(*at);
      if (!c.ok()) return Fail(c.status());
      if (*at != *head) commits.push_back(*at);
      at = c->parents.empty() ? std::nullopt : std::optional<ObjectId>(c->parents[0]);
    }
  }
  Json j;
  j.BeginArray();
  int failed_commits = 0;
  for (const auto& id : commits) {
    auto c = (*repo)->ReadCommit(id);
    if (!c.ok()) return Fail(c.status());
    fs::CheckRunOptions options;
    if (!c->parents.empty()) options.parent = c->parents[0];
    options.all_paths = o.all_paths;
    if (!o.json) std::cout << "commit " << id.ShortHex() << " " << Printable(c->message.substr(0, c->message.find('\n'))) << "\n";
    options.on_result = [&](const CheckResult& r) {
      if (o.json) return;
      std::cout << "  " << CheckOutcomeName(r.outcome) << "  " << r.name << " (" << r.duration_ms << " ms)\n";
      if (r.outcome == CheckResult::Outcome::kFailed) std::cout << Indented(r.output_tail);
      std::cout << std::flush;
    };
    auto results = fs::RunChecks(**repo, cur->settings, {spec->dataset, c->root, id}, options);
    if (!results.ok()) return Fail(results.status());
    bool failed = false;
    if (o.json) {
      j.BeginObject().Key("commit").String(id.Hex()).Key("checks").BeginArray();
      for (const auto& r : *results) {
        j.BeginObject().Key("name").String(r.name).Key("outcome").String(CheckOutcomeName(r.outcome));
        j.Key("duration_ms").Number(r.duration_ms).Key("output").String(r.output_tail).EndObject();
      }
      j.EndArray().EndObject();
    }
    for (const auto& r : *results) failed = failed || r.outcome == CheckResult::Outcome::kFailed;
    failed_commits += failed;
  }
  if (o.json) j.EndArray().Print();
  else if (failed_commits) std::cout << failed_commits << " of " << commits.size() << " commit(s) failed a check" << std::endl;
  return failed_commits ? 1 : 0;
}

// tusk check-candidate DATASET TREE SETTINGS [PARENT]: CheckHook's worker.
int RunCandidate(Cli& cli, const std::vector<std::string>& args) {
  if (args.size() < 3 || args.size() > 4) return Fail("check-candidate: DATASET TREE SETTINGS [PARENT]");
  if (Status st = fs::EnterPrivateNamespace(); !st.ok()) return Fail(st);
  auto tree = ObjectId::FromHex(args[1]);
  auto settings_id = ObjectId::FromHex(args[2]);
  std::optional<ObjectId> parent;
  if (args.size() == 4) parent = ObjectId::FromHex(args[3]);
  if (!tree || !settings_id || (args.size() == 4 && !parent)) return Fail("check-candidate: bad id");
  // Run by a tusk process that holds the store open and verified its index
  // (fs/check_runner.h): walking it again would cost every commit ~0.35 s
  // per million files.
  cli.index_verified = true;
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto settings = ReadSettings(**repo, *settings_id);
  if (!settings.ok()) return Fail(settings.status());
  fs::CheckRunOptions options;
  options.parent = parent;
  options.on_result = [](const CheckResult& r) { std::cout << fs::FormatCheckResult(r) << std::flush; };
  auto results = fs::RunChecks(**repo, *settings, {args[0], *tree, std::nullopt}, options);
  if (!results.ok()) return Fail(results.status());
  return 0;
}

// ---- tables ----

// "key id", "keyless", "format csv, key id", "format text", ...
std::string DescribeRule(const TableRule& t) {
  std::string out;
  if (t.format != FileFormat::kDetect) out = std::string("format ") + FileFormatName(t.format);
  if (t.key) {
    std::string key;
    for (const auto& k : *t.key) key += (key.empty() ? "" : ",") + k;
    out += (out.empty() ? "" : ", ") + (t.key->empty() ? std::string("keyless") : "key " + key);
  }
  return out;
}

int RunTableSet(Cli& cli, const std::string& dataset, const std::string& pattern, const std::string& key, bool keyless,
                const std::string& format) {
  if (!key.empty() && keyless) return Fail("--key and --keyless exclude each other");
  if (key.empty() && !keyless && format.empty()) return Fail("give --key COLUMN[,COLUMN...], --keyless or --format");
  if (pattern.empty()) return Fail("the path pattern is empty");
  TableRule rule;
  rule.pattern = pattern;
  if (!format.empty()) {
    auto f = ParseFileFormat(format);
    if (!f) return Fail("unknown --format '" + format + "': use csv, tsv, jsonl, text, binary or detect");
    rule.format = *f;
  }
  bool not_a_table = rule.format == FileFormat::kText || rule.format == FileFormat::kBinary;
  if (not_a_table && (keyless || !key.empty()))
    return Fail(std::string("--format ") + FileFormatName(rule.format) + " files are not tables: they have no key");
  if (keyless) rule.key.emplace();
  if (!key.empty()) {
    auto cols = ParseKeyColumns(key);
    if (!cols.ok()) return Fail(cols.status());
    rule.key = std::move(cols).value();
  }
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  if (Status st = (*repo)->CheckDataset(dataset); !st.ok()) return Fail(st);
  std::string what = DescribeRule(rule);
  auto id = UpdateSettings(**repo, dataset, DefaultAuthor(), "table set " + pattern + " " + what, [&](DatasetSettings* s) {
    for (auto& t : s->tables) {
      if (t.pattern != pattern) continue;
      t = rule;
      return Status::Ok();
    }
    s->tables.push_back(rule);
    return Status::Ok();
  });
  if (!id.ok()) return Fail(id.status());
  std::cout << "files matching '" << Printable(pattern) << "' in " << dataset << " are merged and compared ";
  if (rule.format == FileFormat::kText) std::cout << "as text, by line";
  else if (rule.format == FileFormat::kBinary) std::cout << "as binary (changed on both sides: a conflict)";
  else {
    if (rule.format != FileFormat::kDetect) std::cout << "as " << FileFormatName(rule.format) << " tables, ";
    std::cout << "by " << (!rule.key ? std::string("a detected key") : rule.key->empty() ? std::string("whole rows (keyless)") : "key " + Printable(key));
  }
  std::cout << "; settings " << id->ShortHex() << std::endl;
  return 0;
}

int RunTableRemove(Cli& cli, const std::string& dataset, const std::string& pattern) {
  auto repo = cli.OpenStore();
  if (!repo.ok()) return Fail(repo.status());
  if (Status st = (*repo)->CheckDataset(dataset); !st.ok()) return Fail(st);
  auto id = UpdateSettings(**repo, dataset, DefaultAuthor(), "table remove " + pattern, [&](DatasetSettings* s) {
    for (auto it = s->tables.begin(); it != s->tables.end(); ++it) {
      if (it->pattern != pattern) continue;
      s->tables.erase(it);
      return Status::Ok();
    }
    return Status::NotFound("dataset '" + dataset + "' has no table rule for '" + pattern + "' (tusk table list " +
                            dataset + ")");
  });
  if (!id.ok()) return Fail(id.status());
  std::cout << "removed the table rule for '" << Printable(pattern) << "' of " << dataset << std::endl;
  return 0;
}

int RunTableList(Cli& cli, const std::string& dataset, bool json) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto cur = ReadCurrentSettings(**repo, dataset);
  if (!cur.ok()) return Fail(cur.status());
  Json j;
  j.BeginArray();
  for (const auto& t : cur->settings.tables) {
    if (json) {
      j.BeginObject().Key("pattern").String(t.pattern).Key("format").String(FileFormatName(t.format)).Key("key");
      if (!t.key) {
        j.Null();
      } else {
        j.BeginArray();
        for (const auto& k : *t.key) j.String(k);
        j.EndArray();
      }
      j.EndObject();
      continue;
    }
    std::cout << Printable(t.pattern) << "  " << Printable(DescribeRule(t)) << "\n";
  }
  if (json) j.EndArray().Print();
  else if (cur->settings.tables.empty())
    std::cout << "dataset " << dataset << " has no table rules: keys are detected (man tusk-merge)\n";
  std::cout << std::flush;
  return 0;
}

}  // namespace

void AddCheckCommands(CLI::App& app, Cli& cli) {
  CLI::App* check = app.add_subcommand("check", "Data checks that every new version of a dataset must pass");
  check->require_subcommand(1);
  check->footer("Built-in checks (--builtin -- NAME ARGS):\n" + BuiltinCheckUsage() + "\nSee man tusk-check.");

  auto add = std::make_shared<AddOpts>();
  CLI::App* a = check->add_subcommand("add", "Add (or change) a check: tusk check add DATASET NAME -- COMMAND [ARGS...]");
  a->add_option("dataset", add->dataset, "DATASET")->required();
  a->add_option("name", add->name, "Name of the check")->required();
  a->add_flag("--builtin", add->builtin, "The words after -- name a built-in check and its arguments");
  a->add_option("--timeout", add->timeout, "Seconds before the check is killed and fails (default 600)");
  a->callback([add, &cli] { cli.exit_code = RunAdd(cli, *add); });

  auto remove = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* r = check->add_subcommand("remove", "Remove a check");
  r->add_option("dataset", remove->first, "DATASET")->required();
  r->add_option("name", remove->second, "Name of the check")->required();
  r->callback([remove, &cli] { cli.exit_code = RunRemove(cli, remove->first, remove->second); });

  auto list = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* l = check->add_subcommand("list", "List a dataset's checks, and whether this machine trusts them");
  l->add_option("dataset", list->first, "DATASET")->required();
  AddJsonFlag(l, &list->second);
  l->callback([list, &cli] { cli.exit_code = RunList(cli, list->first, list->second); });

  auto run = std::make_shared<RunOpts2>();
  CLI::App* rn = check->add_subcommand("run", "Run the current checks on a past version, changing nothing");
  rn->add_option("ref", run->ref, "DATASET[@REF]")->required();
  rn->add_flag("--all", run->all, "Every commit of the ref's history (first parents), newest first");
  rn->add_flag("--all-paths", run->all_paths, "Every file counts as changed (not only those changed against the parent)");
  AddJsonFlag(rn, &run->json);
  rn->callback([run, &cli] { cli.exit_code = RunCheckRun(cli, *run); });

  auto trust = std::make_shared<std::pair<std::string, std::vector<std::string>>>();
  CLI::App* t = check->add_subcommand("trust", "Let this machine run a dataset's checks (all, or the named ones)");
  t->add_option("dataset", trust->first, "DATASET")->required();
  t->add_option("names", trust->second, "Names of checks (default: every check)");
  t->callback([trust, &cli] { cli.exit_code = RunTrust(cli, trust->first, trust->second); });

  auto candidate = std::make_shared<std::vector<std::string>>();
  CLI::App* cand = app.add_subcommand("check-candidate", "");  // internal: fs/check_runner.h
  cand->group("");
  cand->add_option("args", *candidate)->required();
  cand->callback([candidate, &cli] { cli.exit_code = RunCandidate(cli, *candidate); });

  CLI::App* table = app.add_subcommand(
      "table", "How files of a dataset are read by merge and diff: tables (CSV, TSV, JSONL) and their keys, text, binary");
  table->require_subcommand(1);
  struct SetOpts {
    std::string dataset, pattern, key, format;
    bool keyless = false;
  };
  auto set = std::make_shared<SetOpts>();
  CLI::App* s = table->add_subcommand("set", "Declare the format and key of the files matching a path pattern");
  s->add_option("dataset", set->dataset, "DATASET")->required();
  s->add_option("pattern", set->pattern, "Path pattern ('labels/*.csv', '*.jsonl', 'labels/**')")->required();
  s->add_option("--key", set->key, "Key column(s), comma-separated");
  s->add_flag("--keyless", set->keyless, "No key: rows are matched by their whole content");
  s->add_option("--format", set->format,
                "csv, tsv or jsonl (a table whatever its name), text (merged by line, never as a table), binary "
                "(never merged or diffed by line), detect (by name and content: the default)");
  s->callback([set, &cli] {
    cli.exit_code = RunTableSet(cli, set->dataset, set->pattern, set->key, set->keyless, set->format);
  });
  auto tl = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* tls = table->add_subcommand("list", "List the table rules of a dataset");
  tls->add_option("dataset", tl->first, "DATASET")->required();
  AddJsonFlag(tls, &tl->second);
  tls->callback([tl, &cli] { cli.exit_code = RunTableList(cli, tl->first, tl->second); });
  auto tr = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* trm = table->add_subcommand("remove", "Remove the table rule of a path pattern");
  trm->add_option("dataset", tr->first, "DATASET")->required();
  trm->add_option("pattern", tr->second, "The pattern, as given to tusk table set")->required();
  trm->callback([tr, &cli] { cli.exit_code = RunTableRemove(cli, tr->first, tr->second); });
}

}  // namespace tusk::cli
