// tusk diff REF REF: what changed between two versions.
#include <iostream>

#include "store/diff.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {

void AddDiffCommand(CLI::App& app, Cli& cli) {
  struct Opts {
    std::string a, b;
    bool json = false;
    bool inputs = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("diff", "Show files added, deleted, modified and renamed between two versions");
  sub->add_option("old", o->a, "DATASET@REF (with --inputs: run:ID, or a version a run made)")->required();
  sub->add_option("new", o->b, "DATASET@REF (with --inputs: run:ID, or a version a run made)")->required();
  AddJsonFlag(sub, &o->json);
  sub->add_flag("--inputs", o->inputs,
                "Compare what two runs read: files read by only one, and read by both with different content");
  sub->callback([o, &cli] {
    if (o->inputs) return void(cli.exit_code = DiffInputs(cli, o->a, o->b, o->json));
    auto repo = cli.OpenStore(StoreAccess::kReadOnly);
    if (!repo.ok()) return void(cli.exit_code = Fail(repo.status()));
    std::vector<ObjectId> roots;
    for (const auto& ref : {o->a, o->b}) {
      auto id = (*repo)->Resolve(ref, true);
      if (!id.ok()) return void(cli.exit_code = Fail(id.status()));
      auto c = (*repo)->ReadCommit(*id);
      if (!c.ok()) return void(cli.exit_code = Fail(c.status()));
      roots.push_back(c->root);
    }
    auto changes = DiffTrees(**repo, roots[0], roots[1]);
    if (!changes.ok()) return void(cli.exit_code = Fail(changes.status()));
    uint64_t counts[5] = {0, 0, 0, 0, 0};
    Json j;
    j.BeginArray();
    for (const auto& c : *changes) {
      counts[static_cast<int>(c.kind)]++;
      if (o->json) {
        j.BeginObject().Key("status").String(std::string(1, ChangeLetter(c.kind))).Key("path").String(c.path);
        if (c.kind == Change::Kind::kRenamed) j.Key("old_path").String(c.old_path);
        j.Key("old_size").Number(c.old_size).Key("new_size").Number(c.new_size).EndObject();
        continue;
      }
      std::cout << ChangeLetter(c.kind) << "  ";
      switch (c.kind) {
        case Change::Kind::kAdded: std::cout << Printable(c.path) << " (" << HumanBytes(c.new_size) << ")"; break;
        case Change::Kind::kDeleted: std::cout << Printable(c.path) << " (" << HumanBytes(c.old_size) << ")"; break;
        case Change::Kind::kRenamed:
          std::cout << Printable(c.old_path) << " -> " << Printable(c.path) << " (" << HumanBytes(c.new_size) << ")";
          break;
        case Change::Kind::kModified:
          std::cout << Printable(c.path) << " (" << HumanBytes(c.old_size) << " -> " << HumanBytes(c.new_size)
                    << (c.content_changed ? "" : ", metadata only") << ")";
          break;
        case Change::Kind::kTypeChanged: std::cout << Printable(c.path); break;
      }
      std::cout << "\n";
    }
    if (o->json) return j.EndArray().Print();
    std::cout << counts[0] << " added, " << counts[1] << " deleted, " << counts[2] << " modified, " << counts[3]
              << " renamed, " << counts[4] << " type changed" << std::endl;
  });
}

}  // namespace tusk::cli
