// The FUSE low-level operation table for SnapshotFs. This and mount.cc are
// the only files that include <fuse_lowlevel.h>; every handler answers
// exactly once, maps Status to errno, and never lets an exception escape
// into libfuse's C frames.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <functional>
#include <string>
#include <mutex>

#include "fs/snapshot_fs.h"

namespace tusk::fs {

struct FuseContext {
  SnapshotFs* fs = nullptr;
  bool no_open = false;  // the kernel skips open/release for us (zero-message opens)
  // Branch directories are workspaces: the mount is read-write, and opens
  // must reach us (no zero-message opens).
  bool workspaces = false;
  // A run's input view (fs/run_view.h): every open reaches us, and those of
  // the run's processes are recorded here.
  ReadLog* read_log = nullptr;
  // The session, for notifications (set by whoever creates it).
  fuse_session* session = nullptr;
  // Where staged data goes (statfs reports its free space when writable).
  std::string store_dir;
  // Runs once, on the first lookup, open or read: tuning that must wait
  // until the kernel has processed our INIT reply (which would otherwise
  // override it), and must come before the first file is opened.
  std::function<void()> after_init;
  std::once_flag after_init_once;
};

const fuse_lowlevel_ops& SnapshotOps();

// The errno a failed Status stands for at the FUSE boundary.
int ErrnoOf(const Status& status);

}  // namespace tusk::fs
