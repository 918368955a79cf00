#include "store/exporter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal/file.h"

namespace tusk {
namespace {

class Exporter {
 public:
  Exporter(Repository& repo, Progress* progress) : repo_(repo), progress_(progress), as_root_(::geteuid() == 0) {}

  Status ExportDir(int dir_fd, const std::string& path, const ObjectId& tree);
  ExportStats stats;

 private:
  Status ExportFile(int dir_fd, const std::string& path, const TreeEntry& e);
  Status SetOwner(int dir_fd, const std::string& name, const TreeEntry& e, const std::string& path);
  Status SetTimes(int dir_fd, const std::string& name, const TreeEntry& e, const std::string& path);

  Repository& repo_;
  Progress* progress_;
  bool as_root_;
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

Status Exporter::ExportFile(int dir_fd, const std::string& path, const TreeEntry& e) {
  int raw = ::openat(dir_fd, e.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (raw < 0) return Status::FromErrno(errno, "create " + path);
  Fd fd(raw);
  uint64_t offset = 0;
  for (const auto& c : e.chunks) {
    if (!c.IsHole()) {
      TUSK_ASSIGN_OR_RETURN(std::string data, repo_.ReadObject(c.id, ObjectType::kChunk));
      TUSK_RETURN_IF_ERROR(PwriteAll(fd.get(), data.data(), data.size(), offset, path));
    }
    offset += c.length;
    if (progress_) progress_->bytes_done += c.length;
  }
  // Trailing holes: extend without writing.
  if (::ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0) return Status::FromErrno(errno, "truncate " + path);
  TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, path));
  if (::fchmod(fd.get(), e.mode & 07777) != 0) return Status::FromErrno(errno, "chmod " + path);
  stats.files++;
  stats.bytes += e.size;
  if (progress_) progress_->items_done++;
  return SetTimes(dir_fd, e.name, e, path);
}

Status Exporter::ExportDir(int dir_fd, const std::string& path, const ObjectId& tree) {
  TUSK_ASSIGN_OR_RETURN(std::vector<TreeEntry> entries, ReadDirectory(repo_, tree));
  for (const auto& e : entries) {
    std::string child = JoinPath(path, e.name);
    switch (e.kind) {
      case EntryKind::kFile:
        TUSK_RETURN_IF_ERROR(ExportFile(dir_fd, child, e));
        break;
      case EntryKind::kSymlink:
        if (::symlinkat(e.target.c_str(), dir_fd, e.name.c_str()) != 0) return Status::FromErrno(errno, "symlink " + child);
        TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, child));
        TUSK_RETURN_IF_ERROR(SetTimes(dir_fd, e.name, e, child));
        stats.symlinks++;
        break;
      case EntryKind::kDirectory: {
        if (::mkdirat(dir_fd, e.name.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + child);
        int raw = ::openat(dir_fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (raw < 0) return Status::FromErrno(errno, "open " + child);
        Fd sub(raw);
        TUSK_RETURN_IF_ERROR(ExportDir(sub.get(), child, e.tree));
        // Mode and times last: a read-only directory must be filled first,
        // and filling it would change its mtime.
        TUSK_RETURN_IF_ERROR(SetOwner(dir_fd, e.name, e, child));
        if (::fchmod(sub.get(), e.mode & 07777) != 0) return Status::FromErrno(errno, "chmod " + child);
        TUSK_RETURN_IF_ERROR(SetTimes(dir_fd, e.name, e, child));
        stats.dirs++;
        break;
      }
    }
  }
  return Status::Ok();
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
    TUSK_RETURN_IF_ERROR(sink(data));
  }
  return Status::Ok();
}

Result<ExportStats> ExportTree(Repository& repo, const ObjectId& root_tree, const std::string& dest, Progress* progress) {
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
  Exporter exporter(repo, progress);
  TUSK_RETURN_IF_ERROR(exporter.ExportDir(fd.get(), dest, root_tree));
  return exporter.stats;
}

}  // namespace tusk
