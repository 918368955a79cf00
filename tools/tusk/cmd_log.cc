// tusk log / show: commit history with metadata and provenance.
#include <iostream>

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
  j.EndObject();
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
};

int RunLog(const LogOpts& o, Cli& cli, bool show) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto id = (*repo)->Resolve(o.ref, true);
  if (!id.ok()) return Fail(id.status());
  Json j;
  if (!show) j.BeginArray();
  std::optional<ObjectId> at = *id;
  for (int64_t n = 0; at && (o.max_count < 0 || n < o.max_count); n++) {
    auto c = (*repo)->ReadCommit(*at);
    if (!c.ok()) return Fail(c.status());
    if (o.json) CommitJson(j, *at, *c);
    else CommitText(*at, *c, show);
    if (show) break;
    at = c->parents.empty() ? std::nullopt : std::optional<ObjectId>(c->parents[0]);
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
