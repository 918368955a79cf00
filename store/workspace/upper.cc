// The upper directory of a workspace: descriptors of its directories,
// resolving merged paths, merged listings, whiteouts, opaque directories and
// copy-up. Every call names one component relative to a directory
// descriptor (UpperAt): upper paths are walked component by component from
// the O_PATH descriptor of upper/, never as one string, so no symlink inside
// upper is followed and no path is too long however deep the entry.
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "store/workspace/workspace_core.h"
#include "store/refs.h"

namespace tusk {
namespace ws {

Status Err(int err, const std::string& what, std::string_view path) {
  return Status::FromErrno(err, what + " " + QuotedRel(path));
}

std::string QuotedRel(std::string_view rel) { return "'" + EscapeForDisplay(rel) + "'"; }

std::string JoinRel(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out = dir;
  out += '/';
  out += name;
  return out;
}

std::string ParentOf(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

std::string NameOf(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

Result<std::vector<std::string>> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  if (path.empty()) return parts;
  if (path.find('\0') != std::string_view::npos) return Err(EINVAL, "invalid path (NUL byte)", path);
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return Err(EINVAL, "invalid path (empty name; no leading, trailing or double '/')", path);
    if (part == "." || part == "..") return Err(EINVAL, "invalid path ('.' and '..' are not allowed)", path);
    if (part.size() > 255) return Err(ENAMETOOLONG, "invalid path", path);
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

WsTime TimeOf(const struct timespec& ts) { return WsTime{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)}; }

WsAttr UpperAttr(const struct stat& st) {
  WsAttr a;
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.rdev = st.st_rdev;
  a.atime = TimeOf(st.st_atim);
  a.mtime = TimeOf(st.st_mtim);
  a.ctime = TimeOf(st.st_ctim);
  a.upper_dev = st.st_dev;
  a.upper_ino = st.st_ino;
  return a;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();  // getrandom cannot fail for small requests on Linux >= 3.17
    }
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

namespace {
// Enough for the directories a burst of operations works in; past it the
// cache starts over (an O_PATH descriptor each).
constexpr size_t kMaxCachedDirs = 128;
}  // namespace

Result<std::shared_ptr<const Fd>> WsCore::UpperDir(const std::string& rel) {
  // upper_fd outlives every user of the cache: a non-owning pointer.
  std::shared_ptr<const Fd> dir(std::shared_ptr<const Fd>(), &upper_fd);
  if (rel.empty()) return dir;
  size_t done = 0;  // bytes of rel resolved so far
  {
    std::lock_guard lock(dirs_mu_);
    auto it = dirs_.find(rel);
    if (it != dirs_.end()) return it->second;
    // Start from the deepest cached ancestor.
    for (size_t slash = rel.rfind('/'); slash != std::string::npos && slash > 0; slash = rel.rfind('/', slash - 1)) {
      auto p = dirs_.find(rel.substr(0, slash));
      if (p != dirs_.end()) {
        dir = p->second;
        done = slash + 1;
        break;
      }
    }
  }
  while (done < rel.size()) {
    size_t end = rel.find('/', done);
    if (end == std::string::npos) end = rel.size();
    std::string name = rel.substr(done, end - done);
    int raw = ::openat(dir->get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (raw < 0) return Err(errno, "open directory", rel.substr(0, end));
    dir = std::make_shared<const Fd>(raw);
    std::lock_guard lock(dirs_mu_);
    if (dirs_.size() >= kMaxCachedDirs) dirs_.clear();
    dirs_.insert_or_assign(rel.substr(0, end), dir);
    done = end + 1;
  }
  return dir;
}

Result<UpperAt> WsCore::At(const std::string& rel) {
  if (rel.empty()) {
    TUSK_ASSIGN_OR_RETURN(auto root, UpperDir(""));
    return UpperAt{std::move(root), "."};
  }
  size_t slash = rel.rfind('/');
  TUSK_ASSIGN_OR_RETURN(auto dir, UpperDir(slash == std::string::npos ? std::string() : rel.substr(0, slash)));
  return UpperAt{std::move(dir), slash == std::string::npos ? rel : rel.substr(slash + 1)};
}

void WsCore::ForgetDirs(const std::string& rel) {
  std::lock_guard lock(dirs_mu_);
  if (rel.empty()) {
    dirs_.clear();
    return;
  }
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    const std::string& k = it->first;
    bool below = k.size() >= rel.size() && k.compare(0, rel.size(), rel) == 0 &&
                 (k.size() == rel.size() || k[rel.size()] == '/');
    it = below ? dirs_.erase(it) : std::next(it);
  }
}

std::optional<ObjectId> Lookup::base_below() const {
  if (in_upper) {
    if (!S_ISDIR(st.st_mode) || opaque || !base || base->kind != EntryKind::kDirectory) return std::nullopt;
    return base->tree;
  }
  if (whiteout || !base || base->kind != EntryKind::kDirectory) return std::nullopt;
  return base->tree;
}

Result<Lookup> WsCore::Resolve(std::string_view path) {
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path));
  return ResolveParts(parts);
}

Result<Lookup> WsCore::ResolveParts(const std::vector<std::string>& parts) {
  Lookup l;
  l.parts = parts;
  if (parts.empty()) {
    l.parent_in_upper = true;
    l.in_upper = true;
    if (::fstat(upper_fd.get(), &l.st) != 0) return Err(errno, "stat", "");
    if (base_root) {
      TreeEntry root;
      root.kind = EntryKind::kDirectory;
      root.mode = S_IFDIR | 0755;
      root.tree = *base_root;
      l.base = root;
    }
    return l;
  }
  bool cur_upper = true;
  std::optional<ObjectId> cur_base = base_root;
  std::string rel;
  for (size_t i = 0; i < parts.size(); i++) {
    std::string parent = rel;
    rel = JoinRel(rel, parts[i]);
    bool in_upper = false, whiteout = false;
    struct stat st {};
    if (cur_upper) {
      TUSK_ASSIGN_OR_RETURN(auto dir, UpperDir(parent));
      if (::fstatat(dir->get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (IsWhiteout(st))
          whiteout = true;
        else
          in_upper = true;
      } else if (errno != ENOENT) {
        return Err(errno, "stat", rel);
      }
    }
    std::optional<TreeEntry> base;
    if (cur_base) {
      TUSK_ASSIGN_OR_RETURN(base, store.Lookup(*cur_base, parts[i]));
    }
    if (i + 1 == parts.size()) {
      l.rel = rel;
      l.parent_in_upper = cur_upper;
      l.in_upper = in_upper;
      l.whiteout = whiteout;
      l.st = st;
      l.base = std::move(base);
      if (in_upper && S_ISDIR(st.st_mode) && base && base->kind == EntryKind::kDirectory) {
        TUSK_ASSIGN_OR_RETURN(l.opaque, IsOpaque(rel));
      }
      return l;
    }
    if (in_upper) {
      if (!S_ISDIR(st.st_mode)) return Err(ENOTDIR, "resolve", rel);
      // The opaque mark only matters over a base directory; reading it
      // costs a path walk from /, once per component of every lookup.
      cur_base = std::nullopt;
      if (base && base->kind == EntryKind::kDirectory) {
        TUSK_ASSIGN_OR_RETURN(bool opaque, IsOpaque(rel));
        if (!opaque) cur_base = base->tree;
      }
    } else if (!whiteout && base) {
      if (base->kind != EntryKind::kDirectory) return Err(ENOTDIR, "resolve", rel);
      cur_upper = false;
      cur_base = base->tree;
    } else {
      return Err(ENOENT, "resolve", rel);
    }
  }
  return l;  // not reached
}

Result<Lookup> WsCore::ResolveParentDir(const Lookup& l) {
  if (l.parts.empty()) return Err(EBUSY, "the root has no parent:", "");
  std::vector<std::string> parent(l.parts.begin(), l.parts.end() - 1);
  TUSK_ASSIGN_OR_RETURN(Lookup p, ResolveParts(parent));
  if (!p.exists()) return Err(ENOENT, "no such directory", p.rel);
  if (!p.is_dir()) return Err(ENOTDIR, "not a directory", p.rel);
  return p;
}

Result<bool> WsCore::IsOpaque(const std::string& rel) {
  char buf[4];
  TUSK_ASSIGN_OR_RETURN(UpperAt at, At(rel));
  ssize_t n = ::lgetxattr(at.proc().c_str(), kOpaqueXattr, buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA || errno == ERANGE) return false;
    return Err(errno, "read opaque mark of", rel);
  }
  return n == 1 && buf[0] == '1';
}

Result<std::vector<MergedEntry>> WsCore::ListMerged(const Lookup& dir) {
  std::map<std::string, MergedEntry> out;
  std::set<std::string> whiteouts;
  if (dir.in_upper) {
    TUSK_ASSIGN_OR_RETURN(auto dfd, UpperDir(dir.rel));
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dfd->get(), QuotedRel(dir.rel)));
    for (auto& name : names) {
      MergedEntry m;
      m.in_upper = true;
      if (::fstatat(dfd->get(), name.c_str(), &m.st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return Err(errno, "stat", JoinRel(dir.rel, name));
      }
      if (IsWhiteout(m.st)) {
        whiteouts.insert(std::move(name));
        continue;
      }
      m.name = name;
      out.emplace(std::move(name), std::move(m));
    }
  }
  if (auto below = dir.base_below()) {
    TUSK_RETURN_IF_ERROR(store.ForEach(*below, [&](const TreeEntry& e) {
      if (whiteouts.count(e.name)) return true;
      auto it = out.find(e.name);
      if (it != out.end()) {
        it->second.base = e;
      } else {
        MergedEntry m;
        m.name = e.name;
        m.base = e;
        out.emplace(e.name, std::move(m));
      }
      return true;
    }));
  }
  std::vector<MergedEntry> list;
  list.reserve(out.size());
  for (auto& [name, m] : out) list.push_back(std::move(m));
  return list;
}

Status WsCore::RestoreTimes(const std::string& rel, const struct stat& st) {
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  TUSK_ASSIGN_OR_RETURN(UpperAt at, At(rel));
  if (::utimensat(at.fd(), at.c_name(), times, AT_SYMLINK_NOFOLLOW) != 0) return Err(errno, "set times of", rel);
  return Status::Ok();
}

Status StatAt(WsCore* core, const std::string& rel, struct stat* st) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  if (::fstatat(at.fd(), at.c_name(), st, AT_SYMLINK_NOFOLLOW) != 0) return Err(errno, "stat", rel);
  return Status::Ok();
}

// Xattrs, owner, mode and mtime of a base entry onto the upper entry at
// `rel` (xattrs first, while the entry is still writable by its creator).
Status ApplyBaseMeta(WsCore* core, const std::string& rel, const TreeEntry& e) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  for (const auto& [name, value] : e.xattrs)
    if (::lsetxattr(at.proc().c_str(), name.c_str(), value.data(), value.size(), 0) != 0)
      return Err(errno, "set xattr " + name + " of", rel);
  Status owned = core->SetOwner(rel, -1, e.uid, e.gid);
  // An unprivileged process cannot record another owner on a symlink or
  // special file; copying one up (say, to rename its directory) must not
  // fail for that, so it then becomes the process's own (documented).
  bool own_instead = core->unprivileged && owned.sys_errno() == EPERM &&
                     (e.kind == EntryKind::kSymlink || e.kind == EntryKind::kSpecial);
  if (!owned.ok() && !own_instead) return owned;
  if (e.kind != EntryKind::kSymlink && ::fchmodat(at.fd(), at.c_name(), e.mode & 07777, 0) != 0)
    return Err(errno, "chmod", rel);
  struct timespec t = {e.mtime_sec, static_cast<long>(e.mtime_nsec)};
  struct timespec times[2] = {t, t};
  if (::utimensat(at.fd(), at.c_name(), times, AT_SYMLINK_NOFOLLOW) != 0) return Err(errno, "set times of", rel);
  return Status::Ok();
}

Status MakeUpperDir(WsCore* core, const std::string& rel, const TreeEntry& e) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  if (::mkdirat(at.fd(), at.c_name(), 0700) != 0) return Err(errno, "mkdir", rel);
  return ApplyBaseMeta(core, rel, e);
}

Status MakeUpperSymlink(WsCore* core, const std::string& rel, const TreeEntry& e) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  if (::symlinkat(e.target.c_str(), at.fd(), at.c_name()) != 0) return Err(errno, "symlink", rel);
  return ApplyBaseMeta(core, rel, e);
}

Status MakeUpperSpecial(WsCore* core, const std::string& rel, const TreeEntry& e) {
  if (S_ISCHR(e.mode) && e.rdev == 0)
    return Err(EPERM, "copy up (a character device 0:0 cannot be staged: in a workspace it marks a deletion)", rel);
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
  if (::mknodat(at.fd(), at.c_name(), (e.mode & S_IFMT) | 0600, static_cast<dev_t>(e.rdev)) != 0)
    return Err(errno, "mknod", rel);
  return ApplyBaseMeta(core, rel, e);
}

Status WsCore::EnsureUpperDir(const std::vector<std::string>& parts) {
  std::string rel;
  std::optional<ObjectId> cur_base = base_root;
  for (const auto& name : parts) {
    std::string parent = rel;
    rel = JoinRel(rel, name);
    struct stat st;
    TUSK_ASSIGN_OR_RETURN(auto dir, UpperDir(parent));
    if (::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (!S_ISDIR(st.st_mode)) return Err(IsWhiteout(st) ? ENOENT : ENOTDIR, "directory", rel);
      std::optional<TreeEntry> e;
      if (cur_base) {
        TUSK_ASSIGN_OR_RETURN(e, store.Lookup(*cur_base, name));
      }
      if (e && e->kind == EntryKind::kDirectory) {
        TUSK_ASSIGN_OR_RETURN(bool opaque, IsOpaque(rel));
        if (opaque) e.reset();
      }
      cur_base = e && e->kind == EntryKind::kDirectory ? std::optional<ObjectId>(e->tree) : std::nullopt;
      continue;
    }
    if (errno != ENOENT) return Err(errno, "stat", rel);
    std::optional<TreeEntry> e;
    if (cur_base) {
      TUSK_ASSIGN_OR_RETURN(e, store.Lookup(*cur_base, name));
    }
    if (!e) return Err(ENOENT, "directory", rel);
    if (e->kind != EntryKind::kDirectory) return Err(ENOTDIR, "directory", rel);
    // Copy-up is not a change of the parent: keep its times.
    struct stat pst;
    TUSK_RETURN_IF_ERROR(StatAt(this, parent, &pst));
    TUSK_RETURN_IF_ERROR(MakeUpperDir(this, rel, *e));
    TUSK_RETURN_IF_ERROR(RestoreTimes(parent, pst));
    cur_base = e->tree;
  }
  return Status::Ok();
}

Result<std::string> WsCore::CreateSidecar(const Sidecar& side, Fd* out) {
  std::string id = RandomHex(16);
  int raw = ::openat(meta_dir_fd.get(), id.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (raw < 0) return Status::FromErrno(errno, "create sidecar " + meta_path + "/" + id);
  Fd fd(raw);
  std::string bytes = side.Encode();
  Status st = PwriteAll(fd.get(), bytes.data(), bytes.size(), 0, meta_path + "/" + id);
  if (!st.ok()) {
    ::unlinkat(meta_dir_fd.get(), id.c_str(), 0);
    return st;
  }
  *out = std::move(fd);
  NoteNewSidecar(id);
  return id;
}

// A metacopy of the base file `e` at `rel` (whose parent is an upper
// directory): a sparse upper file of the same size and metadata, named
// only once complete, so a crash never leaves a half-made one.
Result<Fd> MakeMetacopy(WsCore* core, const std::string& rel, const TreeEntry& e, std::string* meta_id) {
  Fd side_fd;
  TUSK_ASSIGN_OR_RETURN(std::string id, core->CreateSidecar(Sidecar::Fresh(e.chunks), &side_fd));
  auto fail = [&](Status st) {
    ::unlinkat(core->meta_dir_fd.get(), id.c_str(), 0);
    return st;
  };
  std::string parent = ParentOf(rel);
  auto at = core->At(rel);
  if (!at.ok()) return fail(at.status());
  int raw = ::openat(at->fd(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (raw < 0) return fail(Err(errno, "create a file in", parent));
  Fd fd(raw);
  struct timespec t = {e.mtime_sec, static_cast<long>(e.mtime_nsec)};
  struct timespec times[2] = {t, t};
  if (::ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0) return fail(Err(errno, "truncate", rel));
  if (::fsetxattr(fd.get(), kMetaXattr, id.data(), id.size(), 0) != 0) return fail(Err(errno, "set xattr of", rel));
  for (const auto& [name, value] : e.xattrs)
    if (::fsetxattr(fd.get(), name.c_str(), value.data(), value.size(), 0) != 0)
      return fail(Err(errno, "set xattr " + name + " of", rel));
  if (Status st = core->SetOwner(rel, fd.get(), e.uid, e.gid); !st.ok()) return fail(st);
  if (::fchmod(fd.get(), e.mode & 07777) != 0) return fail(Err(errno, "chmod", rel));
  if (::futimens(fd.get(), times) != 0) return fail(Err(errno, "set times of", rel));
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (::linkat(AT_FDCWD, proc.c_str(), at->fd(), at->c_name(), AT_SYMLINK_FOLLOW) != 0)
    return fail(Err(errno, "link", rel));
  *meta_id = id;
  return fd;
}

Status WsCore::CopyUp(const Lookup& l) {
  if (!l.base_only()) return Status::Ok();
  if (l.base->link_group && l.base->kind != EntryKind::kDirectory) return CopyUpGroup(l);
  return CopyUpAlone(l);
}

Status WsCore::CopyUpAlone(const Lookup& l) {
  if (!l.base_only()) return Status::Ok();
  std::vector<std::string> parent_parts(l.parts.begin(), l.parts.end() - 1);
  TUSK_RETURN_IF_ERROR(EnsureUpperDir(parent_parts));
  if (l.base->kind == EntryKind::kDirectory) return EnsureUpperDir(l.parts);
  std::string parent = ParentOf(l.rel);
  struct stat pst;
  TUSK_RETURN_IF_ERROR(StatAt(this, parent, &pst));
  if (l.base->kind == EntryKind::kSymlink) {
    TUSK_RETURN_IF_ERROR(MakeUpperSymlink(this, l.rel, *l.base));
    return RestoreTimes(parent, pst);
  }
  if (l.base->kind == EntryKind::kSpecial) {
    TUSK_RETURN_IF_ERROR(MakeUpperSpecial(this, l.rel, *l.base));
    return RestoreTimes(parent, pst);
  }
  std::string id;
  TUSK_ASSIGN_OR_RETURN(Fd fd, MakeMetacopy(this, l.rel, *l.base, &id));
  TUSK_RETURN_IF_ERROR(RestoreTimes(parent, pst));
  return AttachNodes(l.rel, fd.get());
}

Result<std::vector<Lookup>> WsCore::BaseNamesOfGroup(const Lookup& l) {
  const uint64_t group = *l.base->link_group;
  TUSK_ASSIGN_OR_RETURN(const BaseLinks* links, LinksOfBase());
  // Base-only entries stay at their base paths (whatever moves is copied up
  // first), so the group's base paths are the only candidates.
  std::vector<Lookup> others;
  auto members = links->paths.find(group);
  if (members == links->paths.end()) return others;
  for (const auto& path : members->second) {
    if (path == l.rel) continue;
    auto m = Resolve(path);
    if (!m.ok()) {
      int err = m.status().sys_errno();
      if (err == ENOENT || err == ENOTDIR) continue;  // a parent was deleted or replaced
      return m.status();
    }
    if (m->base_only() && m->base->link_group == group && m->base->kind == l.base->kind)
      others.push_back(std::move(m).value());
  }
  return others;
}

Status WsCore::CopyUpGroup(const Lookup& l) {
  TUSK_ASSIGN_OR_RETURN(std::vector<Lookup> others, BaseNamesOfGroup(l));
  TUSK_RETURN_IF_ERROR(CopyUpAlone(l));
  for (const auto& m : others) {
    std::vector<std::string> parent_parts(m.parts.begin(), m.parts.end() - 1);
    TUSK_RETURN_IF_ERROR(EnsureUpperDir(parent_parts));
    std::string parent = ParentOf(m.rel);
    struct stat pst;
    TUSK_RETURN_IF_ERROR(StatAt(this, parent, &pst));
    // Files open by this name keep reading the committed content (as if it
    // had been replaced): an upper inode has one node, the one at l.rel.
    DetachNodesAt(m.rel);
    TUSK_ASSIGN_OR_RETURN(UpperAt src, At(l.rel));
    TUSK_ASSIGN_OR_RETURN(UpperAt dst, At(m.rel));
    if (::linkat(src.fd(), src.c_name(), dst.fd(), dst.c_name(), 0) != 0) return Err(errno, "link", m.rel);
    TUSK_RETURN_IF_ERROR(RestoreTimes(parent, pst));
  }
  return Status::Ok();
}

Result<const BaseLinks*> WsCore::LinksOfBase() {
  if (base_links && base_links->first == base_root) return &base_links->second;
  BaseLinks links;
  if (base_root) {
    std::function<Status(const ObjectId&, const std::string&)> walk = [&](const ObjectId& tree,
                                                                          const std::string& prefix) -> Status {
      std::vector<std::pair<ObjectId, std::string>> dirs;
      TUSK_RETURN_IF_ERROR(store.ForEach(tree, [&](const TreeEntry& e) {
        std::string path = JoinRel(prefix, e.name);
        if (e.kind == EntryKind::kDirectory) {
          dirs.emplace_back(e.tree, std::move(path));
        } else if (e.link_group) {
          links.max_group = std::max(links.max_group, *e.link_group);
          links.paths[*e.link_group].push_back(std::move(path));
        }
        return true;
      }));
      for (const auto& [sub, path] : dirs) TUSK_RETURN_IF_ERROR(walk(sub, path));
      return Status::Ok();
    };
    TUSK_RETURN_IF_ERROR(walk(*base_root, ""));
  }
  base_links.emplace(base_root, std::move(links));
  return &base_links->second;
}

namespace {

Status RemoveWhiteoutsIn(WsCore* core, const std::string& rel) {
  TUSK_ASSIGN_OR_RETURN(auto dir, core->UpperDir(rel));
  std::vector<std::string> names;
  TUSK_RETURN_IF_ERROR(ForEachDirectoryEntry(dir->get(), QuotedRel(rel), [&](const char* name, unsigned char type) {
    struct stat st;
    if ((type == DT_CHR || type == DT_UNKNOWN) && ::fstatat(dir->get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        IsWhiteout(st))
      names.emplace_back(name);
    return true;
  }));
  for (const auto& n : names)
    if (::unlinkat(dir->get(), n.c_str(), 0) != 0) return Err(errno, "remove whiteout", JoinRel(rel, n));
  return Status::Ok();
}

}  // namespace

// `dir` is an upper directory. Afterwards nothing below it is read from the
// base: base-only children are copied up (files as metacopies), it is
// opaque, and its times are what they were.
static Status SelfContainDir(WsCore* core, const Lookup& dir) {
  struct stat self;
  TUSK_RETURN_IF_ERROR(StatAt(core, dir.rel, &self));
  TUSK_ASSIGN_OR_RETURN(std::vector<MergedEntry> children, core->ListMerged(dir));
  for (const auto& c : children) {
    std::string rel = JoinRel(dir.rel, c.name);
    Lookup child;
    child.rel = rel;
    child.parts = dir.parts;
    child.parts.push_back(c.name);
    child.parent_in_upper = true;
    child.base = c.base;
    bool in_upper = c.in_upper;
    child.st = c.st;
    if (!in_upper) {
      // Copied up meanwhile, with an earlier name of its hard-link group?
      TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(rel));
      if (::fstatat(at.fd(), at.c_name(), &child.st, AT_SYMLINK_NOFOLLOW) == 0)
        in_upper = true;
      else if (errno != ENOENT)
        return Err(errno, "stat", rel);
    }
    if (in_upper) {
      if (!S_ISDIR(child.st.st_mode)) continue;
      child.in_upper = true;
      TUSK_ASSIGN_OR_RETURN(child.opaque, core->IsOpaque(rel));
      TUSK_RETURN_IF_ERROR(SelfContainDir(core, child));
      continue;
    }
    if (c.base->link_group && c.base->kind != EntryKind::kDirectory) {
      TUSK_RETURN_IF_ERROR(core->CopyUpGroup(child));
      continue;
    }
    switch (c.base->kind) {
      case EntryKind::kFile: {
        std::string id;
        TUSK_ASSIGN_OR_RETURN(Fd fd, MakeMetacopy(core, rel, *c.base, &id));
        TUSK_RETURN_IF_ERROR(core->AttachNodes(rel, fd.get()));
        break;
      }
      case EntryKind::kSymlink:
        TUSK_RETURN_IF_ERROR(MakeUpperSymlink(core, rel, *c.base));
        break;
      case EntryKind::kSpecial:
        TUSK_RETURN_IF_ERROR(MakeUpperSpecial(core, rel, *c.base));
        break;
      case EntryKind::kDirectory:
        TUSK_RETURN_IF_ERROR(MakeUpperDir(core, rel, *c.base));
        child.in_upper = true;
        TUSK_RETURN_IF_ERROR(StatAt(core, rel, &child.st));
        TUSK_RETURN_IF_ERROR(SelfContainDir(core, child));
        break;
    }
  }
  TUSK_RETURN_IF_ERROR(RemoveWhiteoutsIn(core, dir.rel));
  TUSK_ASSIGN_OR_RETURN(UpperAt at, core->At(dir.rel));
  if (!dir.opaque && ::lsetxattr(at.proc().c_str(), kOpaqueXattr, "1", 1, 0) != 0)
    return Err(errno, "mark opaque", dir.rel);
  return core->RestoreTimes(dir.rel, self);
}

Status WsCore::MakeSelfContained(const std::string& rel) {
  TUSK_ASSIGN_OR_RETURN(Lookup l, Resolve(rel));
  if (!l.exists()) return Err(ENOENT, "no such file or directory", rel);
  if (!l.is_dir()) return CopyUp(l);
  if (l.base_only()) {
    TUSK_RETURN_IF_ERROR(EnsureUpperDir(l.parts));
    TUSK_ASSIGN_OR_RETURN(l, ResolveParts(l.parts));
  }
  return SelfContainDir(this, l);
}

Status WsCore::MakeWhiteout(const std::string& rel) {
  TUSK_ASSIGN_OR_RETURN(UpperAt at, At(rel));
  if (::mknodat(at.fd(), at.c_name(), S_IFCHR | 0000, makedev(0, 0)) != 0) return Err(errno, "whiteout", rel);
  return Status::Ok();
}

Status WsCore::SetOwner(const std::string& rel, int fd, uint32_t uid, uint32_t gid) {
  const uid_t keep = static_cast<uid_t>(-1);
  std::optional<UpperAt> at;
  if (fd < 0) {
    TUSK_ASSIGN_OR_RETURN(at, At(rel));
  }
  int rc = fd >= 0 ? ::fchown(fd, uid, gid) : ::fchownat(at->fd(), at->c_name(), uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc == 0) {
    // The real owner is right now; drop a recorded one (owner changes that
    // only unprivileged processes record).
    if (unprivileged) {
      int r = fd >= 0 ? ::fremovexattr(fd, kOwnerXattr) : ::lremovexattr(at->proc().c_str(), kOwnerXattr);
      if (r != 0 && errno != ENODATA && errno != EPERM && errno != ENOTSUP) return Err(errno, "clear the owner of", rel);
    }
    return Status::Ok();
  }
  if (errno != EPERM || !unprivileged) return Err(errno, "chown", rel);
  struct stat st;
  if ((fd >= 0 ? ::fstat(fd, &st) : ::fstatat(at->fd(), at->c_name(), &st, AT_SYMLINK_NOFOLLOW)) != 0)
    return Err(errno, "stat", rel);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
    return Err(EPERM, "chown (a mount run by an ordinary user cannot give a symlink or special file another owner)",
               rel);
  TUSK_RETURN_IF_ERROR(ShowOwner(rel, fd, &st));
  std::string owner = std::to_string(uid == keep ? st.st_uid : uid) + ":" + std::to_string(gid == keep ? st.st_gid : gid);
  rc = fd >= 0 ? ::fsetxattr(fd, kOwnerXattr, owner.data(), owner.size(), 0)
               : ::lsetxattr(at->proc().c_str(), kOwnerXattr, owner.data(), owner.size(), 0);
  if (rc != 0) return Err(errno, "record the owner of", rel);
  return Status::Ok();
}

Status WsCore::ShowOwner(const std::string& rel, int fd, struct stat* st) {
  if (!unprivileged || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) return Status::Ok();
  char buf[64];
  ssize_t n;
  if (fd >= 0) {
    n = ::fgetxattr(fd, kOwnerXattr, buf, sizeof buf - 1);
  } else {
    TUSK_ASSIGN_OR_RETURN(UpperAt at, At(rel));
    n = ::lgetxattr(at.proc().c_str(), kOwnerXattr, buf, sizeof buf - 1);
  }
  if (n < 0) {
    if (errno == ENODATA) return Status::Ok();
    return Err(errno, "read the owner of", rel);
  }
  buf[n] = '\0';
  unsigned long uid = 0, gid = 0;
  if (std::sscanf(buf, "%lu:%lu", &uid, &gid) != 2) return Status::Corruption("bad owner record '" + std::string(buf) + "' on " + rel);
  st->st_uid = static_cast<uid_t>(uid);
  st->st_gid = static_cast<gid_t>(gid);
  return Status::Ok();
}

Result<std::string> WsCore::MetaIdOf(const std::string& rel) {
  char buf[128];
  TUSK_ASSIGN_OR_RETURN(UpperAt at, At(rel));
  ssize_t n = ::lgetxattr(at.proc().c_str(), kMetaXattr, buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA) return std::string();
    return Err(errno, "read sidecar name of", rel);
  }
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::vector<std::string>> WsCore::UpperNames(const std::string& rel) {
  TUSK_ASSIGN_OR_RETURN(auto dir, UpperDir(rel));
  return ListDirectory(dir->get(), QuotedRel(rel));
}

Status WsCore::RemoveUpper(const std::string& rel) {
  struct stat st;
  TUSK_ASSIGN_OR_RETURN(UpperAt at, At(rel));
  if (::fstatat(at.fd(), at.c_name(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Err(errno, "stat", rel);
  }
  if (S_ISDIR(st.st_mode)) {
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, UpperNames(rel));
    for (const auto& n : names) TUSK_RETURN_IF_ERROR(RemoveUpper(JoinRel(rel, n)));
    ForgetDirs(rel);
    if (::unlinkat(at.fd(), at.c_name(), AT_REMOVEDIR) != 0) return Err(errno, "remove directory", rel);
    return Status::Ok();
  }
  // A metacopy's sidecar stays until the next sweep (see SyncUpperNames).
  if (::unlinkat(at.fd(), at.c_name(), 0) != 0) return Err(errno, "remove", rel);
  return Status::Ok();
}

Result<WsAttr> WsCore::AttrOf(const Lookup& l) {
  WsAttr a;
  if (l.in_upper) {
    struct stat st = l.st;
    TUSK_RETURN_IF_ERROR(ShowOwner(l.rel, -1, &st));
    a = UpperAttr(st);
    if (S_ISREG(st.st_mode)) {
      // A metacopy's unchanged chunks count where they are: in the store.
      if (auto node = FindNodeByInode(st.st_dev, st.st_ino)) {
        std::lock_guard lock(node->mu);
        if (node->has_meta) a.blocks += (node->side.StoreBytes() + 511) / 512;
      } else {
        TUSK_ASSIGN_OR_RETURN(std::string id, MetaIdOf(l.rel));
        if (!id.empty()) {
          TUSK_ASSIGN_OR_RETURN(std::string bytes, ReadSidecarFile(id));
          TUSK_ASSIGN_OR_RETURN(Sidecar side, Sidecar::Decode(bytes, "sidecar of " + l.rel));
          side.CutAt(a.size);
          a.blocks += (side.StoreBytes() + 511) / 512;
        }
      }
    }
    return a;
  }
  if (!l.exists()) return Err(ENOENT, "stat", l.rel);
  const TreeEntry& e = *l.base;
  a.mode = e.mode;
  a.uid = e.uid;
  a.gid = e.gid;
  a.mtime = WsTime{e.mtime_sec, e.mtime_nsec};
  a.atime = a.ctime = a.mtime;
  switch (e.kind) {
    case EntryKind::kDirectory:
      a.nlink = 2;
      a.size = 4096;
      a.blocks = 8;
      break;
    case EntryKind::kFile: {
      a.size = e.size;
      uint64_t stored = 0;
      for (const auto& c : e.chunks)
        if (!c.IsHole()) stored += c.length;
      a.blocks = (stored + 511) / 512;
      break;
    }
    case EntryKind::kSymlink:
      a.size = e.target.size();
      break;
    case EntryKind::kSpecial:
      a.rdev = e.rdev;
      break;
  }
  return a;
}

}  // namespace ws
}  // namespace tusk
