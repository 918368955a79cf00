// tusk mount / umount: serve versions as directories (branches writable).
#include "fs/mount.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {

void AddMountCommands(CLI::App& app, Cli& cli) {
  struct Opts {
    std::vector<std::string> args;
    bool foreground = false, allow_other = false, debug = false, read_only = false;
    std::string cache = "128M", log, remote_cache;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* mount = app.add_subcommand(
      "mount",
      "Mount the whole store (MOUNTPOINT/<dataset>/<branch>/ writable workspaces, @<tag>/ and @<commit>/ read-only) "
      "or one version read-only (DATASET@REF MOUNTPOINT)");
  mount->add_option("args", o->args, "[DATASET@REF] MOUNTPOINT")->required()->expected(1, 2);
  mount->add_flag("-f,--foreground", o->foreground, "Stay in the foreground (Ctrl-C unmounts)");
  mount->add_flag("--read-only", o->read_only, "Whole-store mount with read-only branch directories (no workspaces)");
  mount->add_flag("--allow-other", o->allow_other, "Let other users read the mount (needs user_allow_other for non-root)");
  mount->add_option("--cache-size", o->cache, "Memory for decompressed chunks (default 128M)");
  mount->add_option("--remote-cache-size", o->remote_cache,
                    "Disk for file data read from remotes, kept across mounts (default 8G)");
  mount->add_option("--log", o->log, "Daemon log file (default STORE/mount.log)");
  mount->add_flag("-d,--debug", o->debug, "Trace every FUSE request (implies --foreground)");
  mount->callback([o, &cli] {
    fs::MountOptions m;
    m.store_dir = cli.StoreDir();
    m.mountpoint = o->args.back();
    if (o->args.size() == 2) m.ref = o->args.front();
    m.foreground = o->foreground;
    m.allow_other = o->allow_other;
    m.read_only = o->read_only;
    m.debug = o->debug;
    m.log_file = o->log;
    auto cache = ParseSize(o->cache);
    if (!cache.ok()) return void(cli.exit_code = Fail(cache.status().Annotate("--cache-size")));
    if (*cache < (uint64_t{4} << 20)) return void(cli.exit_code = Fail("--cache-size must be at least 4M"));
    m.cache_bytes = *cache;
    if (!o->remote_cache.empty()) {
      auto remote_cache = ParseSize(o->remote_cache);
      if (!remote_cache.ok()) return void(cli.exit_code = Fail(remote_cache.status().Annotate("--remote-cache-size")));
      if (*remote_cache < (uint64_t{16} << 20)) return void(cli.exit_code = Fail("--remote-cache-size must be at least 16M"));
      m.remote_cache_bytes = *remote_cache;
    }
    cli.exit_code = fs::RunMount(m);
  });

  auto target = std::make_shared<std::string>();
  CLI::App* umount = app.add_subcommand("umount", "Unmount a tusk mount");
  umount->add_option("mountpoint", *target, "Where it is mounted")->required();
  umount->callback([target, &cli] { cli.exit_code = fs::RunUnmount(*target); });
}

}  // namespace tusk::cli
