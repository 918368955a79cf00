// Mounting a store (or one version of a dataset) with FUSE, and unmounting.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace tusk::fs {

struct MountOptions {
  std::string store_dir;
  std::string mountpoint;
  std::optional<std::string> ref;  // "dataset@ref": mount that one commit
  bool foreground = false;
  bool allow_other = false;
  bool read_only = false;  // whole-store mounts: no writable branch workspaces
  bool debug = false;  // libfuse request tracing (implies foreground)
  size_t cache_bytes = size_t{128} << 20;
  // Disk for chunks read from remotes (STORE/cache/chunks); 0: the default.
  uint64_t remote_cache_bytes = 0;
  std::string log_file;  // background daemon's log; default STORE/mount.log
};

// Mounts and serves until the filesystem is unmounted or the process gets
// SIGINT/SIGTERM/SIGHUP (which unmount cleanly). In the background mode the
// calling process returns as soon as the mount is usable (0) or has failed
// (1, with the reason on stderr); the daemon goes on in a child. Returns the
// process exit status.
int RunMount(const MountOptions& options);

// Unmounts a tusk mount; a clear error if `mountpoint` is not one.
int RunUnmount(const std::string& mountpoint);

}  // namespace tusk::fs
