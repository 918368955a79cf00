// tusk dataset create|list|delete
#include <iostream>

#include "tools/tusk/cli_util.h"

namespace tusk::cli {

void AddDatasetCommand(CLI::App& app, Cli& cli) {
  CLI::App* ds = app.add_subcommand("dataset", "Create, list and delete datasets");
  ds->require_subcommand(1);

  auto name = std::make_shared<std::string>();
  CLI::App* create = ds->add_subcommand("create", "Create a dataset with an empty branch 'main'");
  create->add_option("name", *name, "Dataset name")->required();
  create->callback([name, &cli] {
    auto repo = cli.OpenStore();
    if (!repo.ok()) return void(cli.exit_code = Fail(repo.status()));
    Status st = (*repo)->CreateDataset(*name);
    if (!st.ok()) return void(cli.exit_code = Fail(st));
    std::cout << "Created dataset " << *name << " (branch main, no commits yet)" << std::endl;
  });

  auto json = std::make_shared<bool>(false);
  CLI::App* list = ds->add_subcommand("list", "List datasets");
  AddJsonFlag(list, json.get());
  list->callback([json, &cli] {
    auto repo = cli.OpenStore(StoreAccess::kReadOnly);
    if (!repo.ok()) return void(cli.exit_code = Fail(repo.status()));
    auto all = (*repo)->ListDatasets();
    if (!all.ok()) return void(cli.exit_code = Fail(all.status()));
    if (*json) {
      Json j;
      j.BeginArray();
      for (const auto& d : *all)
        j.BeginObject().Key("name").String(d.name).Key("created").Signed(d.created_sec).Key("branches").Number(d.branch_count)
            .Key("tags").Number(d.tag_count).EndObject();
      j.EndArray().Print();
      return;
    }
    for (const auto& d : *all)
      std::cout << d.name << "\t" << d.branch_count << " branch(es), " << d.tag_count << " tag(s), created "
                << FormatTime(d.created_sec) << "\n";
  });

  auto del_name = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  CLI::App* del = ds->add_subcommand("delete", "Delete a dataset (its data is reclaimed by 'tusk gc')");
  del->add_option("name", *del_name, "Dataset name")->required();
  del->add_flag("-f,--force", *force, "Delete it even if a workspace of it has staged changes (they are lost)");
  del->callback([del_name, force, &cli] {
    auto repo = cli.OpenStore();
    if (!repo.ok()) return void(cli.exit_code = Fail(repo.status()));
    Status st = (*repo)->CheckDataset(*del_name);
    if (st.ok()) st = RemoveWorkspacesForDelete(**repo, *del_name, std::nullopt, *force, "dataset " + *del_name);
    if (!st.ok()) return void(cli.exit_code = Fail(st));
    st = (*repo)->DeleteDataset(*del_name);
    if (!st.ok()) return void(cli.exit_code = Fail(st));
    std::cout << "Deleted dataset " << *del_name << "; run 'tusk gc' to reclaim its space" << std::endl;
  });
}

}  // namespace tusk::cli
