// A tree entry's metadata from lstat(2): what the importer and workspace
// commits record for every file, directory, symlink and special file.
#pragma once

#include <sys/stat.h>

#include <string>

#include "store/objects.h"

namespace tusk {

inline TreeEntry EntryFromStat(const std::string& name, EntryKind kind, const struct stat& st) {
  TreeEntry e;
  e.name = name;
  e.kind = kind;
  e.mode = st.st_mode;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_sec = st.st_mtim.tv_sec;
  e.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  if (kind == EntryKind::kFile) e.size = static_cast<uint64_t>(st.st_size);
  if (kind == EntryKind::kSpecial && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) e.rdev = st.st_rdev;
  return e;
}

}  // namespace tusk
