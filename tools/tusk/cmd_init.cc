// tusk init: create a store.
#include <grp.h>
#include <sys/stat.h>

#include <iostream>

#include "tools/tusk/cli_util.h"

namespace tusk::cli {

void AddInitCommand(CLI::App& app, Cli& cli) {
  struct Opts {
    std::string min = "64K", avg = "256K", max = "1M";
    int level = 1;
    bool shared = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("init", "Create an empty store");
  sub->add_option("--chunk-min", o->min, "Smallest chunk (default 64K)");
  sub->add_option("--chunk-avg", o->avg, "Average chunk, a power of two (default 256K)");
  sub->add_option("--chunk-max", o->max, "Largest chunk (default 1M)");
  sub->add_option("--compression-level", o->level, "zstd level 1-19, 0 for none (default 1)");
  sub->add_flag("--shared", o->shared,
                "Let the group of the store directory read the store (read-only commands); by default it is private (0700)");
  sub->callback([o, &cli] {
    StoreConfig config;
    config.compression_level = o->level;
    config.shared = o->shared;
    for (auto [text, field] : {std::pair{&o->min, &config.chunker.min_size}, std::pair{&o->avg, &config.chunker.avg_size},
                               std::pair{&o->max, &config.chunker.max_size}}) {
      auto size = ParseSize(*text);
      if (!size.ok()) {
        cli.exit_code = Fail(size.status());
        return;
      }
      if (*size > (uint64_t{64} << 20)) {
        cli.exit_code = Fail("chunk sizes must be at most 64M, got " + *text);
        return;
      }
      *field = static_cast<uint32_t>(*size);
    }
    std::string dir = cli.StoreDir();
    Status st = Repository::Create(dir, config);
    if (!st.ok()) {
      cli.exit_code = Fail(st);
      return;
    }
    std::cout << "Initialized empty tusk store in " << dir << " (chunks " << HumanBytes(config.chunker.min_size) << " / "
              << HumanBytes(config.chunker.avg_size) << " / " << HumanBytes(config.chunker.max_size)
              << ", zstd level " << config.compression_level << ")" << std::endl;
    if (config.shared) {
      std::string group = "the group of " + dir;
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0) {
        ::group gr;
        ::group* found = nullptr;
        char buf[4096];
        if (::getgrgid_r(st.st_gid, &gr, buf, sizeof buf, &found) == 0 && found)
          group = std::string("group ") + found->gr_name;
        else
          group = "group " + std::to_string(st.st_gid);
      }
      std::cout << "Shared read-only with " << group << " (change it with 'chgrp -R GROUP " << dir << "')"
                << std::endl;
    }
  });
}

}  // namespace tusk::cli
