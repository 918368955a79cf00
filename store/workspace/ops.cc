// Namespace operations of a workspace: stat, list, open and create,
// directories, special files, symlinks, links, unlink, rename, attributes
// and xattrs. Each one holds the workspace mutex for its whole duration.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "store/workspace/workspace_core.h"

namespace tusk {

using ws::Err;
using ws::Lookup;
using ws::UpperAt;
using ws::WsCore;

namespace {

// The group a new entry in `parent` gets: a setgid directory passes its own.
Result<uint32_t> NewGid(WsCore& c, const Lookup& parent, const WsCaller& who) {
  if (!(parent.mode() & S_ISGID)) return who.gid;
  if (!parent.in_upper) return parent.base->gid;
  struct stat st = parent.st;
  TUSK_RETURN_IF_ERROR(c.ShowOwner(parent.rel, -1, &st));
  return static_cast<uint32_t>(st.st_gid);
}

Status Chmod(const UpperAt& at, const std::string& rel, uint32_t mode) {
  if (::fchmodat(at.fd(), at.c_name(), mode & 07777, 0) != 0) return Err(errno, "chmod", rel);
  return Status::Ok();
}

// A new symlink or special file: those cannot record an owner, so where
// the process may not chown, one made for its own user is fine and one for
// another user is refused (and removed).
Status OwnNewEntry(WsCore& c, const UpperAt& at, const std::string& rel, uint32_t uid, uint32_t gid) {
  Status st = c.SetOwner(rel, -1, uid, gid);
  if (!st.ok()) ::unlinkat(at.fd(), at.c_name(), 0);
  return st;
}

bool IsReservedXattr(std::string_view name) {
  return name.substr(0, ws::kReservedXattrPrefix.size()) == ws::kReservedXattrPrefix;
}

// Resolves `path` as the place for a new entry: it must not exist and its
// parent must be a merged directory, which is made to exist in upper. A
// whiteout at the name is removed (`*hid_base` says whether there was one).
Result<std::pair<Lookup, Lookup>> PrepareNew(WsCore& c, std::string_view path, bool* hid_base) {
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> parts, ws::SplitPath(path));
  if (parts.empty()) return Err(EEXIST, "create", "");
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.ResolveParts(parts));
  if (l.exists()) return Err(EEXIST, "create", l.rel);
  TUSK_ASSIGN_OR_RETURN(Lookup parent, c.ResolveParentDir(l));
  TUSK_RETURN_IF_ERROR(c.EnsureUpperDir(parent.parts));
  TUSK_ASSIGN_OR_RETURN(parent, c.ResolveParts(parent.parts));
  *hid_base = l.whiteout;
  if (l.whiteout) {
    TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
    if (::unlinkat(at.fd(), at.c_name(), 0) != 0) return Err(errno, "remove whiteout", l.rel);
  }
  return std::make_pair(std::move(l), std::move(parent));
}

Result<std::unique_ptr<WsFile>> CreateLocked(WsCore& c, std::string_view path, uint32_t mode, bool exclusive,
                                             const WsCaller& who) {
  {
    TUSK_ASSIGN_OR_RETURN(Lookup existing, c.Resolve(path));
    if (existing.exists()) {
      if (exclusive) return Err(EEXIST, "create", existing.rel);
      TUSK_ASSIGN_OR_RETURN(auto node, c.NodeFor(existing));
      return c.MakeFile(std::move(node), true);
    }
  }
  bool hid_base;
  TUSK_ASSIGN_OR_RETURN(auto prepared, PrepareNew(c, path, &hid_base));
  auto& [l, parent] = prepared;
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  int raw = ::openat(at.fd(), at.c_name(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return Err(errno, "create", l.rel);
  Fd fd(raw);
  TUSK_ASSIGN_OR_RETURN(uint32_t gid, NewGid(c, parent, who));
  TUSK_RETURN_IF_ERROR(c.SetOwner(l.rel, fd.get(), who.uid, gid));
  if (::fchmod(fd.get(), mode & ~who.umask & 07777) != 0) return Err(errno, "chmod", l.rel);
  auto node = std::make_shared<ws::FileNode>(&c);
  node->path = node->label = l.rel;
  {
    std::lock_guard lock(node->mu);
    TUSK_RETURN_IF_ERROR(c.LoadUpper(node.get(), std::move(fd)));
  }
  c.RegisterNode(node);
  return c.MakeFile(std::move(node), true);
}

// Truncates a merged regular file through its node, so open handles see it.
Status TruncatePath(WsCore& c, const Lookup& l, uint64_t size) {
  TUSK_ASSIGN_OR_RETURN(auto node, c.NodeFor(l));
  TUSK_RETURN_IF_ERROR(c.CopyUpNodeLocked(node));
  std::shared_lock freeze(c.freeze);
  return c.TruncateNode(node.get(), size);
}

}  // namespace

Result<WsAttr> Workspace::Stat(std::string_view path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "stat", l.rel);
  TUSK_ASSIGN_OR_RETURN(WsAttr a, c.AttrOf(l));
  if (l.base_only() && l.base->link_group && l.base->kind != EntryKind::kDirectory) {
    a.base_link_group = l.base->link_group;
    TUSK_ASSIGN_OR_RETURN(std::vector<Lookup> names, c.BaseNamesOfGroup(l));
    a.nlink = static_cast<uint32_t>(names.size() + 1);
  }
  return a;
}

Result<std::vector<WsDirEntry>> Workspace::List(std::string_view path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "list", l.rel);
  if (!l.is_dir()) return Err(ENOTDIR, "list", l.rel);
  TUSK_ASSIGN_OR_RETURN(auto entries, c.ListMerged(l));
  std::vector<WsDirEntry> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.push_back(WsDirEntry{e.name, e.mode()});
  return out;
}

Result<std::string> Workspace::ReadLink(std::string_view path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "readlink", l.rel);
  if (!S_ISLNK(l.mode())) return Err(EINVAL, "readlink (not a symlink)", l.rel);
  if (!l.in_upper) return l.base->target;
  std::string target(static_cast<size_t>(l.st.st_size) + 1, '\0');
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  ssize_t n = ::readlinkat(at.fd(), at.c_name(), target.data(), target.size());
  if (n < 0) return Err(errno, "readlink", l.rel);
  target.resize(std::min(static_cast<size_t>(n), target.size()));
  return target;
}

Result<std::unique_ptr<WsFile>> Workspace::Open(std::string_view path, int flags) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (l.parts.empty()) return Err(EISDIR, "open", "");
  TUSK_ASSIGN_OR_RETURN(auto node, c.NodeFor(l));
  bool writable = (flags & O_ACCMODE) != O_RDONLY;
  if (writable && (flags & O_TRUNC)) {
    TUSK_RETURN_IF_ERROR(c.CopyUpNodeLocked(node));
    std::shared_lock freeze(c.freeze);
    TUSK_RETURN_IF_ERROR(c.TruncateNode(node.get(), 0));
  }
  return c.MakeFile(std::move(node), writable);
}

Result<std::unique_ptr<WsFile>> Workspace::Create(std::string_view path, uint32_t mode, bool exclusive,
                                                  const WsCaller& who) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  return CreateLocked(c, path, mode, exclusive, who);
}

Status Workspace::Mkdir(std::string_view path, uint32_t mode, const WsCaller& who) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  bool hid_base;
  TUSK_ASSIGN_OR_RETURN(auto prepared, PrepareNew(c, path, &hid_base));
  auto& [l, parent] = prepared;
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  if (::mkdirat(at.fd(), at.c_name(), 0700) != 0) return Err(errno, "mkdir", l.rel);
  TUSK_ASSIGN_OR_RETURN(uint32_t gid, NewGid(c, parent, who));
  uint32_t perm = (mode & ~who.umask & 07777) | (parent.mode() & S_ISGID);
  TUSK_RETURN_IF_ERROR(c.SetOwner(l.rel, -1, who.uid, gid));
  TUSK_RETURN_IF_ERROR(Chmod(at, l.rel, perm));
  // Made where a base entry was deleted: nothing of the base shows inside.
  if (hid_base && ::lsetxattr(at.proc().c_str(), ws::kOpaqueXattr, "1", 1, 0) != 0)
    return Err(errno, "mark opaque", l.rel);
  return Status::Ok();
}

Status Workspace::Mknod(std::string_view path, uint32_t mode, uint64_t rdev, const WsCaller& who) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  uint32_t type = mode & S_IFMT;
  if (type == S_IFREG || type == 0) {
    TUSK_ASSIGN_OR_RETURN(auto file, CreateLocked(c, path, mode, true, who));
    return Status::Ok();
  }
  if (type == S_IFDIR) return Err(EPERM, "mknod (use mkdir)", path);
  if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO && type != S_IFSOCK) return Err(EINVAL, "mknod", path);
  if (type == S_IFCHR && rdev == 0) return Err(EPERM, "mknod (device 0:0 is reserved for whiteouts)", path);
  bool hid_base;
  TUSK_ASSIGN_OR_RETURN(auto prepared, PrepareNew(c, path, &hid_base));
  auto& [l, parent] = prepared;
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  if (::mknodat(at.fd(), at.c_name(), type | 0600, static_cast<dev_t>(rdev)) != 0) return Err(errno, "mknod", l.rel);
  TUSK_ASSIGN_OR_RETURN(uint32_t gid, NewGid(c, parent, who));
  TUSK_RETURN_IF_ERROR(OwnNewEntry(c, at, l.rel, who.uid, gid));
  return Chmod(at, l.rel, mode & ~who.umask & 07777);
}

Status Workspace::Symlink(std::string_view target, std::string_view path, const WsCaller& who) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  if (target.empty()) return Err(ENOENT, "symlink (empty target)", path);
  if (target.size() >= 4096) return Err(ENAMETOOLONG, "symlink", path);
  if (target.find('\0') != std::string_view::npos) return Err(EINVAL, "symlink (NUL in target)", path);
  bool hid_base;
  TUSK_ASSIGN_OR_RETURN(auto prepared, PrepareNew(c, path, &hid_base));
  auto& [l, parent] = prepared;
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  if (::symlinkat(std::string(target).c_str(), at.fd(), at.c_name()) != 0) return Err(errno, "symlink", l.rel);
  TUSK_ASSIGN_OR_RETURN(uint32_t gid, NewGid(c, parent, who));
  return OwnNewEntry(c, at, l.rel, who.uid, gid);
}

Status Workspace::Link(std::string_view existing, std::string_view new_path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup src, c.Resolve(existing));
  if (!src.exists()) return Err(ENOENT, "link", src.rel);
  if (src.is_dir()) return Err(EPERM, "link (a directory)", src.rel);
  {
    TUSK_ASSIGN_OR_RETURN(Lookup dst, c.Resolve(new_path));
    if (dst.parts.empty() || dst.exists()) return Err(EEXIST, "link", dst.rel);
    TUSK_RETURN_IF_ERROR(c.ResolveParentDir(dst).status());
  }
  // A committed file is linked as its metacopy: both names share it.
  TUSK_RETURN_IF_ERROR(c.CopyUp(src));
  bool hid_base;
  TUSK_ASSIGN_OR_RETURN(auto prepared, PrepareNew(c, new_path, &hid_base));
  auto& [dst, parent] = prepared;
  TUSK_ASSIGN_OR_RETURN(UpperAt from, c.At(src.rel));
  TUSK_ASSIGN_OR_RETURN(UpperAt to, c.At(dst.rel));
  if (::linkat(from.fd(), from.c_name(), to.fd(), to.c_name(), 0) != 0) return Err(errno, "link", dst.rel);
  return Status::Ok();
}

Status Workspace::Unlink(std::string_view path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (l.parts.empty()) return Err(EISDIR, "unlink", "");
  if (!l.exists()) return Err(ENOENT, "unlink", l.rel);
  if (l.is_dir()) return Err(EISDIR, "unlink", l.rel);
  TUSK_ASSIGN_OR_RETURN(Lookup parent, c.ResolveParentDir(l));
  TUSK_RETURN_IF_ERROR(c.EnsureUpperDir(parent.parts));
  if (l.in_upper) TUSK_RETURN_IF_ERROR(c.RemoveUpper(l.rel));
  c.DetachNodesAt(l.rel);
  if (l.base) TUSK_RETURN_IF_ERROR(c.MakeWhiteout(l.rel));
  return Status::Ok();
}

Status Workspace::Rmdir(std::string_view path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (l.parts.empty()) return Err(EBUSY, "rmdir", "");
  if (!l.exists()) return Err(ENOENT, "rmdir", l.rel);
  if (!l.is_dir()) return Err(ENOTDIR, "rmdir", l.rel);
  TUSK_ASSIGN_OR_RETURN(auto children, c.ListMerged(l));
  if (!children.empty()) return Err(ENOTEMPTY, "rmdir", l.rel);
  TUSK_ASSIGN_OR_RETURN(Lookup parent, c.ResolveParentDir(l));
  TUSK_RETURN_IF_ERROR(c.EnsureUpperDir(parent.parts));
  if (l.in_upper) TUSK_RETURN_IF_ERROR(c.RemoveUpper(l.rel));  // holds whiteouts at most
  if (l.base) TUSK_RETURN_IF_ERROR(c.MakeWhiteout(l.rel));
  return Status::Ok();
}

Status Workspace::SyncDir(std::string_view path) {
  WsCore& c = *impl_->core;
  std::string rel;
  {
    std::lock_guard lock(c.mu);
    TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
    if (!l.exists()) return Err(ENOENT, "fsync", l.rel);
    if (!l.is_dir()) return Err(ENOTDIR, "fsync", l.rel);
    if (!l.in_upper) return Status::Ok();
    rel = l.rel;
  }
  return c.SyncUpperNames(rel);
}

namespace {

bool IsBelow(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

}  // namespace

Status Workspace::Rename(std::string_view from, std::string_view to, unsigned flags) {
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
      (flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)) == (RENAME_NOREPLACE | RENAME_EXCHANGE))
    return Err(EINVAL, "rename (unsupported flags)", from);
  const bool exchange = flags & RENAME_EXCHANGE;
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup f, c.Resolve(from));
  TUSK_ASSIGN_OR_RETURN(Lookup t, c.Resolve(to));
  if (f.parts.empty() || t.parts.empty()) return Err(EBUSY, "rename", "");
  if (!f.exists()) return Err(ENOENT, "rename", f.rel);
  TUSK_ASSIGN_OR_RETURN(Lookup tparent, c.ResolveParentDir(t));
  if (IsBelow(t.rel, f.rel)) return Err(EINVAL, "rename (into itself)", t.rel);
  if (exchange) {
    if (!t.exists()) return Err(ENOENT, "rename", t.rel);
    if (IsBelow(f.rel, t.rel)) return Err(EINVAL, "rename (into itself)", f.rel);
  } else if (t.exists()) {
    if (flags & RENAME_NOREPLACE) return Err(EEXIST, "rename", t.rel);
    if (f.is_dir() && !t.is_dir()) return Err(ENOTDIR, "rename", t.rel);
    if (!f.is_dir() && t.is_dir()) return Err(EISDIR, "rename", t.rel);
    if (t.is_dir()) {
      TUSK_ASSIGN_OR_RETURN(auto children, c.ListMerged(t));
      if (!children.empty()) return Err(ENOTEMPTY, "rename", t.rel);
    }
    if (f.in_upper && t.in_upper && f.st.st_dev == t.st.st_dev && f.st.st_ino == t.st.st_ino)
      return Status::Ok();  // two names of one file: rename(2) does nothing
  }
  if (f.rel == t.rel) return Status::Ok();

  // Whatever moves takes everything it shows along: nothing below it may
  // depend on its old base path.
  TUSK_RETURN_IF_ERROR(c.MakeSelfContained(f.rel));
  if (exchange) TUSK_RETURN_IF_ERROR(c.MakeSelfContained(t.rel));
  TUSK_RETURN_IF_ERROR(c.EnsureUpperDir(tparent.parts));
  TUSK_ASSIGN_OR_RETURN(f, c.ResolveParts(f.parts));
  TUSK_ASSIGN_OR_RETURN(t, c.ResolveParts(t.parts));
  // A regular file the rename replaces keeps its sidecar until the next
  // sweep (see WsCore::SyncUpperNames).
  if (!exchange && (t.whiteout || (t.in_upper && S_ISDIR(t.st.st_mode))))
    TUSK_RETURN_IF_ERROR(c.RemoveUpper(t.rel));  // a whiteout, or a directory of whiteouts
  TUSK_ASSIGN_OR_RETURN(UpperAt f_at, c.At(f.rel));
  TUSK_ASSIGN_OR_RETURN(UpperAt t_at, c.At(t.rel));
  // Cached descriptors below either name would now name the wrong place.
  c.ForgetDirs(f.rel);
  c.ForgetDirs(t.rel);
  if (::renameat2(f_at.fd(), f_at.c_name(), t_at.fd(), t_at.c_name(), exchange ? RENAME_EXCHANGE : 0) != 0)
    return Err(errno, "rename", f.rel);
  if (!exchange && f.base) TUSK_RETURN_IF_ERROR(c.MakeWhiteout(f.rel));
  c.RenameNodes(f.rel, t.rel, exchange);
  return Status::Ok();
}

Status Workspace::SetAttr(std::string_view path, const WsSetAttr& change) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "setattr", l.rel);
  if (change.size) {
    if (l.is_dir()) return Err(EISDIR, "truncate", l.rel);
    if (!S_ISREG(l.mode())) return Err(EINVAL, "truncate (not a regular file)", l.rel);
  }
  if (change.mode && S_ISLNK(l.mode())) return Err(EOPNOTSUPP, "chmod (a symlink)", l.rel);
  TUSK_RETURN_IF_ERROR(c.CopyUp(l));
  TUSK_ASSIGN_OR_RETURN(l, c.ResolveParts(l.parts));
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  if (change.uid || change.gid) {
    uid_t uid = change.uid ? *change.uid : static_cast<uid_t>(-1);
    gid_t gid = change.gid ? *change.gid : static_cast<gid_t>(-1);
    TUSK_RETURN_IF_ERROR(c.SetOwner(l.rel, -1, uid, gid));
  }
  if (change.mode && ::fchmodat(at.fd(), at.c_name(), *change.mode & 07777, 0) != 0) return Err(errno, "chmod", l.rel);
  if (change.size) TUSK_RETURN_IF_ERROR(TruncatePath(c, l, *change.size));
  if (change.atime || change.mtime) {
    auto spec = [](const std::optional<WsTime>& t) {
      struct timespec ts;
      ts.tv_sec = 0;
      ts.tv_nsec = UTIME_OMIT;
      if (t && t->sec == -1 && t->nsec == 0)
        ts.tv_nsec = UTIME_NOW;
      else if (t)
        ts = {t->sec, static_cast<long>(t->nsec)};
      return ts;
    };
    struct timespec times[2] = {spec(change.atime), spec(change.mtime)};
    if (::utimensat(at.fd(), at.c_name(), times, AT_SYMLINK_NOFOLLOW) != 0) return Err(errno, "set times of", l.rel);
  }
  return Status::Ok();
}

Result<std::string> Workspace::GetXattr(std::string_view path, std::string_view name) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "getxattr", l.rel);
  if (IsReservedXattr(name)) return Err(ENODATA, "getxattr " + std::string(name), l.rel);
  if (!l.in_upper) {
    // A base-only entry: its committed xattrs (sorted by name).
    const auto& xattrs = l.base->xattrs;
    auto it = std::lower_bound(xattrs.begin(), xattrs.end(), name,
                               [](const auto& x, std::string_view n) { return x.first < n; });
    if (it != xattrs.end() && it->first == name) return it->second;
    return Err(ENODATA, "getxattr " + std::string(name), l.rel);
  }
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  std::string key(name), abs = at.proc();
  for (;;) {
    ssize_t n = ::lgetxattr(abs.c_str(), key.c_str(), nullptr, 0);
    if (n < 0) return Err(errno, "getxattr " + key, l.rel);
    std::string value(static_cast<size_t>(n), '\0');
    ssize_t m = ::lgetxattr(abs.c_str(), key.c_str(), value.data(), value.size());
    if (m < 0 && errno == ERANGE) continue;  // grew meanwhile
    if (m < 0) return Err(errno, "getxattr " + key, l.rel);
    value.resize(static_cast<size_t>(m));
    return value;
  }
}

Status Workspace::SetXattr(std::string_view path, std::string_view name, std::string_view value, int flags) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  if (IsReservedXattr(name)) return Err(EPERM, "setxattr " + std::string(name) + " (reserved)", path);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "setxattr", l.rel);
  TUSK_RETURN_IF_ERROR(c.CopyUp(l));
  std::string key(name);
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  if (::lsetxattr(at.proc().c_str(), key.c_str(), value.data(), value.size(), flags) != 0)
    return Err(errno, "setxattr " + key, l.rel);
  return Status::Ok();
}

Result<std::vector<std::string>> Workspace::ListXattr(std::string_view path) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "listxattr", l.rel);
  std::vector<std::string> names;
  if (!l.in_upper) {
    for (const auto& x : l.base->xattrs) names.push_back(x.first);
    return names;
  }
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  std::string abs = at.proc();
  std::string buf;
  for (;;) {
    ssize_t n = ::llistxattr(abs.c_str(), nullptr, 0);
    if (n < 0) return Err(errno, "listxattr", l.rel);
    buf.assign(static_cast<size_t>(n), '\0');
    ssize_t m = ::llistxattr(abs.c_str(), buf.data(), buf.size());
    if (m < 0 && errno == ERANGE) continue;
    if (m < 0) return Err(errno, "listxattr", l.rel);
    buf.resize(static_cast<size_t>(m));
    break;
  }
  for (size_t pos = 0; pos < buf.size();) {
    size_t end = buf.find('\0', pos);
    if (end == std::string::npos) end = buf.size();
    std::string n = buf.substr(pos, end - pos);
    if (!n.empty() && !IsReservedXattr(n)) names.push_back(n);
    pos = end + 1;
  }
  return names;
}

Status Workspace::RemoveXattr(std::string_view path, std::string_view name) {
  WsCore& c = *impl_->core;
  std::lock_guard lock(c.mu);
  if (IsReservedXattr(name)) return Err(EPERM, "removexattr " + std::string(name) + " (reserved)", path);
  TUSK_ASSIGN_OR_RETURN(Lookup l, c.Resolve(path));
  if (!l.exists()) return Err(ENOENT, "removexattr", l.rel);
  if (!l.in_upper) {
    const auto& xattrs = l.base->xattrs;
    bool has = std::any_of(xattrs.begin(), xattrs.end(), [&](const auto& x) { return x.first == name; });
    if (!has) return Err(ENODATA, "removexattr " + std::string(name), l.rel);
    TUSK_RETURN_IF_ERROR(c.CopyUp(l));  // brings the committed xattrs along
  }
  TUSK_ASSIGN_OR_RETURN(UpperAt at, c.At(l.rel));
  if (::lremovexattr(at.proc().c_str(), std::string(name).c_str()) != 0)
    return Err(errno, "removexattr " + std::string(name), l.rel);
  return Status::Ok();
}

}  // namespace tusk
