#include "store/exporter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "store/internal/file.h"

namespace tusk {
namespace {

// Xattr warnings name each entry up to this many; then one summary line.
constexpr uint64_t kMaxXattrWarnings = 10;

class Exporter {
 public:
  Exporter(Repository& repo, Progress* progress, const std::function<void(const std::string&)>& warn)
      : repo_(repo), progress_(progress), warn_(warn), as_root_(::geteuid() == 0) {}

  Status ExportDir(int dir_fd, const std::string& path, const ObjectId& tree);
  void Finish();
  ExportStats stats;

 private:
  Status ExportFile(int dir_fd, const std::string& path, const TreeEntry& e);
  Status ExportSymlink(int dir_fd, const std::string& path, const TreeEntry& e);
  Status ExportSpecial(int dir_fd, const std::string& path, const TreeEntry& e);
  Status ExportSubdir(int dir_fd, const std::string& path, const TreeEntry& e);
  // Makes `e` a link to its group's first exported name; false if it is the
  // first (or has no group, or linking failed and it must be written anew).
  bool LinkToGroup(int dir_fd, const std::string& path, const TreeEntry& e);
  void Count(const TreeEntry& e);
  // `fd`: the entry opened, or -1 to set them by path (symlinks, specials).
  void RestoreXattrs(int fd, const std::string& path, const TreeEntry& e);
  Status SetOwner(int dir_fd, const std::string& name, const TreeEntry& e, const std::string& path);
  Status SetTimes(int dir_fd, const std::string& name, const TreeEntry& e, const std::string& path);
  void Warn(const std::string& msg) {
    if (warn_) warn_(msg);
  }

  Repository& repo_;
  Progress* progress_;
  const std::function<void(const std::string&)>& warn_;
  bool as_root_;
  // Hard-link group -> its first exported name (a path usable from the
  // current directory) and entry.
  std::map<uint64_t, std::pair<std::string, TreeEntry>> groups_;
};

Status Exporter::SetOwner(int dir_fd, const std::string& name, const TreeEntry& e, const std::string& path) {
  if (!as_root_) return Status::Ok();
  if (::fchownat(dir_fd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Status::FromErrno(errno, "chown " + path);
  return Status::Ok();
}

Status Exporter::SetTimes(int dir_fd, const std::string& name, const TreeEntry& e, const std::string& path) {
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = e.mtime_sec;
  times[1].tv_nsec = e.mtime_nsec;
  if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return Status::FromErrno(errno, "set times of " + path);
  return Status::Ok();
}

void Exporter::RestoreXattrs(int fd, const std::string& path, const TreeEntry& e) {
  bool refused = false;
  for (const auto& [name, value] : e.xattrs) {
    int rc = fd >= 0 ? ::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0)
                     : ::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0);
    if (rc == 0) continue;
    int err = errno;
    if (!refused && stats.xattrs_not_restored < kMaxXattrWarnings)
      Warn("cannot restore xattr " + name + " of " + path + ": " + std::strerror(err) +
           " (the destination refused it; the export goes on without it)");
    refused = true;
  }
  if (refused) stats.xattrs_not_restored++;
}

void Exporter::Count(const TreeEntry& e) {
  switch (e.kind) {
    case EntryKind::kFile:
      stats.files++;
      stats.bytes += e.size;
      if (progress_) progress_->items_done++;
      break;
    case EntryKind::kSymlink: stats.symlinks++; break;
    case EntryKind::kSpecial: stats.specials++; break;
    case EntryKind::kDirectory: stats.dirs++; break;
  }
}

bool Exporter::LinkToGroup(int dir_fd, const std::string& path, const TreeEntry& e) {
  if (!e.link_group) return false;
  auto it = groups_.find(*e.link_group);
  if (it == groups_.end()) {
    groups_.emplace(*e.link_group, std::make_pair(path, e));
    return false;
  }
  const auto& [first_path, first] = it->second;
  bool same = first.kind == e.kind && first.SameContent(e) && first.mode == e.mode && first.uid == e.uid &&
              first.gid == e.gid && first.mtime_sec == e.mtime_sec && first.mtime_nsec == e.mtime_nsec &&
              first.xattrs == e.xattrs;
  if (!same) {
    Warn(path + " is in the hard-link group of " + first_path + " but differs from it; written as a separate copy");
    return false;
  }
  if (::linkat(AT_FDCWD, first_path.c_str(), dir_fd, e.name.c_str(), 0) != 0) {
    Warn("cannot hard-link " + path + " to " + first_path + ": " + std::strerror(errno) +
         "; written as a separate copy");
    return false;
  }
  stats.hard_links++;
  Count(e);
  if (progress_ && e.kind == EntryKind::kFile) progress_->bytes_done += e.size;
  return true;
}

Status Exporter::ExportFile(int dir_fd, const std::string& path, const TreeEntry& e) {
  int raw = ::openat(dir_fd, e.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (raw < 0) return Status::FromErrno(errno, "create " + path);
  Fd fd(raw);
  uint64_t offset = 0;
  for (const auto& c : e.chunks) {
    if (!c.IsHole()) {
      TUSK_ASSIGN_OR_RETURN(std::string data, repo_.ReadObject(c.id, ObjectType::kChunk));
      TUSK_RETURN_IF_ERROR(CheckChunkLength(c, data.size()).Annotate(path));
      TUSK_RETURN_IF_ERROR(PwriteAll(fd.get(), data.data(), data.size(), offset, path));
    }
    offset += c.length;
    if (progress_) progress_->bytes_done += c.length;
  }
  // Trailing holes: extend without writing.
  if (::ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0) return Status::FromErrno(errno, "truncate " + path);
  // Xattrs while the file is still writable by its creator.
  RestoreXattrs(fd.get(), path, e);
  TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, path));
  if (::fchmod(fd.get(), e.mode & 07777) != 0) return Status::FromErrno(errno, "chmod " + path);
  Count(e);
  return SetTimes(dir_fd, e.name, e, path);
}

Status Exporter::ExportSymlink(int dir_fd, const std::string& path, const TreeEntry& e) {
  if (::symlinkat(e.target.c_str(), dir_fd, e.name.c_str()) != 0) return Status::FromErrno(errno, "symlink " + path);
  RestoreXattrs(-1, path, e);
  TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, path));
  Count(e);
  return SetTimes(dir_fd, e.name, e, path);
}

Status Exporter::ExportSpecial(int dir_fd, const std::string& path, const TreeEntry& e) {
  const mode_t type = e.mode & S_IFMT;
  const bool device = type == S_IFCHR || type == S_IFBLK;
  if (::mknodat(dir_fd, e.name.c_str(), type | 0600, static_cast<dev_t>(e.rdev)) != 0) {
    int err = errno;
    if (device && err == EPERM)
      return Status::FromErrno(err, "create device " + path + " (" + (type == S_IFCHR ? "character" : "block") +
                                        " device " + std::to_string(major(e.rdev)) + ":" +
                                        std::to_string(minor(e.rdev)) +
                                        "): only root (CAP_MKNOD) can create device nodes; export as root");
    return Status::FromErrno(err, "mknod " + path);
  }
  RestoreXattrs(-1, path, e);
  TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, path));
  if (::fchmodat(dir_fd, e.name.c_str(), e.mode & 07777, 0) != 0) return Status::FromErrno(errno, "chmod " + path);
  Count(e);
  return SetTimes(dir_fd, e.name, e, path);
}

Status Exporter::ExportSubdir(int dir_fd, const std::string& path, const TreeEntry& e) {
  if (::mkdirat(dir_fd, e.name.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + path);
  int raw = ::openat(dir_fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open " + path);
  Fd sub(raw);
  TUSK_RETURN_IF_ERROR(ExportDir(sub.get(), path, e.tree));
  // Xattrs, mode and times last: a read-only directory must be filled first,
  // and filling it would change its mtime.
  RestoreXattrs(sub.get(), path, e);
  TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, path));
  if (::fchmod(sub.get(), e.mode & 07777) != 0) return Status::FromErrno(errno, "chmod " + path);
  Count(e);
  return SetTimes(dir_fd, e.name, e, path);
}

Status Exporter::ExportDir(int dir_fd, const std::string& path, const ObjectId& tree) {
  TUSK_ASSIGN_OR_RETURN(std::vector<TreeEntry> entries, ReadDirectory(repo_, tree));
  for (const auto& e : entries) {
    std::string child = JoinPath(path, e.name);
    if (LinkToGroup(dir_fd, child, e)) continue;
    switch (e.kind) {
      case EntryKind::kFile: TUSK_RETURN_IF_ERROR(ExportFile(dir_fd, child, e)); break;
      case EntryKind::kSymlink: TUSK_RETURN_IF_ERROR(ExportSymlink(dir_fd, child, e)); break;
      case EntryKind::kSpecial: TUSK_RETURN_IF_ERROR(ExportSpecial(dir_fd, child, e)); break;
      case EntryKind::kDirectory: TUSK_RETURN_IF_ERROR(ExportSubdir(dir_fd, child, e)); break;
    }
  }
  return Status::Ok();
}

void Exporter::Finish() {
  if (stats.xattrs_not_restored > kMaxXattrWarnings)
    Warn("in all, the xattrs of " + std::to_string(stats.xattrs_not_restored) + " entries could not be restored");
}

}  // namespace

Status ReadFileContent(ObjectSource& source, const TreeEntry& file, const std::function<Status(std::string_view)>& sink) {
  if (file.kind != EntryKind::kFile) return Status::InvalidArgument(file.name + " is not a regular file");
  static const std::string kZeros(1 << 20, '\0');
  for (const auto& c : file.chunks) {
    if (c.IsHole()) {
      for (uint64_t left = c.length; left > 0;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, kZeros.size()));
        TUSK_RETURN_IF_ERROR(sink(std::string_view(kZeros).substr(0, n)));
        left -= n;
      }
      continue;
    }
    TUSK_ASSIGN_OR_RETURN(std::string data, source.ReadObject(c.id, ObjectType::kChunk));
    TUSK_RETURN_IF_ERROR(CheckChunkLength(c, data.size()));
    TUSK_RETURN_IF_ERROR(sink(data));
  }
  return Status::Ok();
}

Result<ExportStats> ExportTree(Repository& repo, const ObjectId& root_tree, const std::string& dest, Progress* progress,
                               const std::function<void(const std::string&)>& warn) {
  struct stat st;
  if (::stat(dest.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status::AlreadyExists("cannot export to " + dest + ": it exists and is not a directory");
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dest.c_str()), ::closedir);
    if (!d) return Status::FromErrno(errno, "open " + dest);
    while (dirent* e = ::readdir(d.get())) {
      std::string n = e->d_name;
      if (n != "." && n != "..") return Status::AlreadyExists("cannot export to " + dest + ": the directory is not empty");
    }
  } else if (errno == ENOENT) {
    if (::mkdir(dest.c_str(), 0755) != 0) return Status::FromErrno(errno, "cannot export to " + dest);
  } else {
    return Status::FromErrno(errno, "cannot export to " + dest);
  }
  TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(dest, O_RDONLY | O_DIRECTORY));
  Exporter exporter(repo, progress, warn);
  TUSK_RETURN_IF_ERROR(exporter.ExportDir(fd.get(), dest, root_tree));
  exporter.Finish();
  return exporter.stats;
}

}  // namespace tusk
