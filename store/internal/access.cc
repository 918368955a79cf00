// Store permissions: private by default, shared read-only with a group on
// request (store/internal/access.h).
#include "store/internal/access.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/internal/file.h"

namespace tusk {
namespace {

// access(2) for the effective uid, as open(2) will check.
bool Can(const std::string& path, int mode) { return ::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS) == 0; }

Status Chmod(const std::string& path, mode_t mode) {
  if (::chmod(path.c_str(), mode) != 0) return Status::FromErrno(errno, "chmod " + path);
  return Status::Ok();
}

constexpr char kReadCommands[] = "ls, cat, export, log, diff, fsck, mount --read-only";

}  // namespace

std::string DescribeUser(uid_t uid) {
  passwd pw;
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
    return std::string(found->pw_name) + " (uid " + std::to_string(uid) + ")";
  return "uid " + std::to_string(uid);
}

Status CheckStoreAccess(const std::string& dir, StoreAccess access, LmdbAccess* lmdb) {
  *lmdb = access == StoreAccess::kReadWrite ? LmdbAccess::kReadWrite : LmdbAccess::kReadOnly;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();  // reading the config says "not a tusk store"
    return Status::FromErrno(errno, "cannot reach store " + dir);
  }
  uid_t me = ::geteuid();
  std::string config = JoinPath(dir, "config");
  if (me != 0 && me != st.st_uid) {
    std::string owner = DescribeUser(st.st_uid);
    if (!Can(dir, R_OK | X_OK) || !Can(config, R_OK))
      return Status::Rebuild(Status::Code::kIoError, EACCES,
                             "store " + dir + " is private to " + owner +
                                 ": only they can use it (a store shared with a group is made with 'tusk init --shared')");
    if (access == StoreAccess::kReadWrite)
      return Status::Rebuild(Status::Code::kReadOnly, EACCES,
                             "store " + dir + " belongs to " + owner + ": only they can change it; read-only commands (" +
                                 kReadCommands + ") work for you");
  }
  std::string index = JoinPath(dir, "index");
  if (access == StoreAccess::kReadWrite) {
    for (const std::string& path : {index, JoinPath(index, "data.mdb")}) {
      if (Can(path, W_OK) || errno == ENOENT) continue;
      return Status::Rebuild(Status::Code::kReadOnly, errno,
                             "store " + dir + " is not writable (" + path + ": " + std::strerror(errno) +
                                 "); read-only commands (" + kReadCommands + ") still work");
    }
    return Status::Ok();
  }
  // A reader that could write the index opens it as a writer does: a
  // lost data.mdb is then recreated empty and refused as incomplete (naming
  // the rebuild), and a format-1 store is upgraded by the first command.
  // Only a reader that cannot write reads the index as it is.
  auto writable = [](const std::string& path) { return Can(path, W_OK) || errno == ENOENT; };
  if (writable(index) && writable(JoinPath(index, "data.mdb")) && writable(JoinPath(index, "lock.mdb"))) {
    *lmdb = LmdbAccess::kReadWrite;
    return Status::Ok();
  }
  // A reader registers in lock.mdb when it can. When it cannot, nobody but
  // the owner or root can write the store either (tusk makes lock.mdb
  // writable for exactly the users who may read a store: the owner, and the
  // group of a shared one), so reading without the lock risks only a
  // concurrent change by them, and a store that is chmod a-w has no writer.
  if (!Can(JoinPath(index, "lock.mdb"), R_OK | W_OK)) *lmdb = LmdbAccess::kReadOnlyNoLock;
  return Status::Ok();
}

Status SetUpStoreModes(const std::string& dir, bool shared) {
  if (!shared) return Chmod(dir, 0700);
  TUSK_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "leases")));
  TUSK_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "workspaces")));
  TUSK_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "run")));
  for (const char* sub : {"", "packs", "index"}) TUSK_RETURN_IF_ERROR(Chmod(JoinPath(dir, sub), 02750));
  TUSK_RETURN_IF_ERROR(Chmod(JoinPath(dir, "index/data.mdb"), 0640));
  TUSK_RETURN_IF_ERROR(Chmod(JoinPath(dir, "index/lock.mdb"), 0660));
  TUSK_RETURN_IF_ERROR(Chmod(JoinPath(dir, "leases"), 02770));
  TUSK_RETURN_IF_ERROR(Chmod(JoinPath(dir, "workspaces"), 0700));
  return Chmod(JoinPath(dir, "run"), 0700);
}

void SetUpSharedWriter(const std::string& dir) {
  mode_t old = ::umask(0);
  ::umask(old & ~mode_t{0750});
  std::string lock = JoinPath(dir, "index/lock.mdb");
  struct stat st;
  if (::stat(lock.c_str(), &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & 0660) != 0660)
    (void)::chmod(lock.c_str(), (st.st_mode & 07777) | 0660);
}

}  // namespace tusk
