// tusk: versioned datasets as ordinary directories. Command-line entry point.
#include <iostream>

#include "store/remote/remote.h"
#include "tools/tusk/cli_util.h"

namespace {

// Finds the subcommand named by `path` ("branch"), or null.
CLI::App* FindSubcommand(CLI::App& app, const std::vector<std::string>& path) {
  CLI::App* at = &app;
  for (const auto& name : path) {
    CLI::App* next = nullptr;
    for (CLI::App* sub : at->get_subcommands([](CLI::App*) { return true; }))
      if (sub->get_name() == name) next = sub;
    if (!next) return nullptr;
    at = next;
  }
  return at;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tusk::cli;
  Cli cli;
  CLI::App app{"tusk: versioned datasets as ordinary directories.\n"
               "Store: --store DIR, else $TUSK_STORE, else ~/.local/share/tusk. See 'man tusk'.",
               "tusk"};
  app.set_version_flag("--version", kTuskVersion);
  app.add_option("--store", cli.store_flag, "Store directory")->envname("TUSK_STORE");
  app.require_subcommand(1);
  app.fallthrough();

  AddInitCommand(app, cli);
  AddDatasetCommand(app, cli);
  AddImportCommand(app, cli);
  AddReadCommands(app, cli);
  AddLogCommands(app, cli);
  AddDiffCommand(app, cli);
  AddMergeCommand(app, cli);
  AddCheckCommands(app, cli);
  AddRefCommands(app, cli);
  AddMaintenanceCommands(app, cli);
  AddMountCommands(app, cli);
  AddWorkspaceCommands(app, cli);
  AddRunCommands(app, cli);
  AddLineageCommands(app, cli);
  AddRemoteCommands(app, cli);
  AddSyncCommands(app, cli);
  // Packs that a fetch registered are read from the remote's bucket.
  tusk::InstallRemotePackSources();

  std::vector<std::string> help_path;
  CLI::App* help = app.add_subcommand("help", "Show help for tusk or one command (tusk help import)");
  help->add_option("command", help_path, "Command (and subcommand) to describe");
  help->callback([&] {
    CLI::App* target = FindSubcommand(app, help_path);
    if (!target) {
      cli.exit_code = Fail("unknown command '" + help_path.front() + "'; run 'tusk help' for the list");
      return;
    }
    // App::help() on the parent would describe the selected subcommand
    // ('help' itself); ask the formatter for the named one directly.
    std::cout << target->get_formatter()->make_help(target, target->get_name(), CLI::AppFormatMode::Normal);
  });

  // CLI11 would only say "a subcommand is required": name the unknown word.
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--store") {
      i++;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    if (!FindSubcommand(app, {arg})) {
      std::cerr << "tusk: usage error: unknown command '" << arg << "'\nRun 'tusk help' for the list of commands."
                << std::endl;
      return 2;
    }
    // `tusk run [OPTIONS] -- CMD ARGS...` and `tusk check add D N -- CMD
    // ARGS...`: what follows -- is the command, options and all, never
    // parsed here.
    if (arg == "run" || arg == "check") {
      for (int j = i + 1; j < argc; j++) {
        if (std::string(argv[j]) != "--") continue;
        cli.command.assign(argv + j + 1, argv + argc);
        argc = j;
        break;
      }
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "tusk: usage error: " << e.what() << "\nRun 'tusk help' or 'tusk help COMMAND'." << std::endl;
    return 2;
  }
  return cli.exit_code;
}
