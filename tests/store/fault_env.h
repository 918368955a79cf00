// FaultEnv: a file Env (store/backend/env.h) that simulates a power loss, so
// that tests can check the durability protocol of store/FORMAT.md, which
// kill -9 cannot (the page cache survives a killed process). The shape is
// LevelDB's fault_injection_test. Header-only.
//
// The model is the durability contract env.h states, taken at its word:
// - Data. A file written through the env keeps, after the loss, the length
//   its last WritableFile::Sync made durable (nothing if it was never
//   synced). The length is kept per inode, so it follows a file through
//   renames. Files are assumed to be written front to back (packs) or once
//   (WriteFileAtomically's temporary files), so cutting a file at that
//   length is exactly "the unsynced writes are lost".
// - Names. Every directory the env changes (a file created, renamed into or
//   out of, or removed in it, a directory made in it) keeps, after the loss,
//   the entries it had at its last SyncDir, or when the env first touched it
//   if it was never synced. The inode of each such entry is pinned by a hard
//   link in a shadow directory, so a durable name that was later removed or
//   renamed over can be put back.
// - The loss. SetFailAfter(n): after n more mutating calls (Write, Sync,
//   SyncDir, Create*, Rename, Remove, MakeDirs) the power is lost: that call
//   and every later call of any kind, reads included, fail with EIO and do
//   nothing, so the code under test stops wherever it was.
//
// Not modelled: directories removed or renamed (an Env has no such call), a
// file rewritten in place or truncated by CreateOrTruncate while its old
// content was durable (the old bytes are lost too), torn or reordered writes
// within a synced prefix, and anything done outside the env (LMDB does its
// own I/O: the power-loss test models its index separately).
//
// Thread-safety: every call is thread-safe. Mutating calls run one at a time
// under one mutex, so that recording a directory's durable state and
// changing it are one step. DropUnsyncedData needs the env idle: call it
// once everything that used the env is destroyed.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/backend/env.h"
#include "store/status.h"

namespace tusk::test_util {

class FaultEnv final : public Env {
 public:
  // `shadow_dir` must not exist; it is made here and removed with the env.
  // It must be on the same filesystem as every directory written through
  // the env (it holds hard links to their files), and outside them.
  explicit FaultEnv(std::string shadow_dir, Env* base = Env::Default())
      : shadow_dir_(std::move(shadow_dir)), base_(base) {
    if (::mkdir(shadow_dir_.c_str(), 0700) != 0) broken_ = Status::FromErrno(errno, "mkdir " + shadow_dir_);
  }
  ~FaultEnv() override {
    std::error_code ec;
    std::filesystem::remove_all(shadow_dir_, ec);
  }
  FaultEnv(const FaultEnv&) = delete;
  FaultEnv& operator=(const FaultEnv&) = delete;

  // `n` more mutating calls go through; the next one loses the power.
  void SetFailAfter(uint64_t n) {
    std::lock_guard lock(mu_);
    fail_at_ = calls_ + n;
  }
  bool power_lost() const { return lost_; }
  // Mutating calls that went through (a failed one is not counted): what a
  // dry run measures to choose where to fail.
  uint64_t mutating_calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

  // Makes the directories this env touched look as the power loss would
  // leave them: names that were not durable removed (directories with all
  // they hold), durable names that were removed or replaced put back, and
  // files written through the env cut to their durable length. Then the env
  // is dead (every call fails); the store can be opened with Env::Default().
  // An error means the model could not be applied (a bookkeeping failure,
  // or a durable directory that vanished), not a finding about the store.
  Status DropUnsyncedData() {
    std::lock_guard lock(mu_);
    lost_ = true;
    TUSK_RETURN_IF_ERROR(broken_);
    // std::map orders a directory before everything under it, so a name
    // removed with its parent is never visited.
    for (const auto& [dir, durable] : dirs_) {
      if (!Exists(dir)) continue;  // under a directory that was not durable
      TUSK_RETURN_IF_ERROR(RestoreNames(dir, durable));
    }
    for (const auto& [dir, durable] : dirs_) {
      if (!Exists(dir)) continue;
      TUSK_RETURN_IF_ERROR(CutToDurableLength(dir));
    }
    return Status::Ok();
  }

  // ---- Env ----
  Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override {
    TUSK_RETURN_IF_ERROR(CheckPower("open " + path));
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, base_->OpenForRead(path));
    return std::unique_ptr<RandomAccessFile>(new Reader(this, std::move(file)));
  }
  Result<std::unique_ptr<WritableFile>> CreateExclusive(const std::string& path, mode_t mode) override {
    return Create(path, mode, true);
  }
  Result<std::unique_ptr<WritableFile>> CreateOrTruncate(const std::string& path, mode_t mode) override {
    return Create(path, mode, false);
  }
  Status SyncDir(const std::string& dir) override {
    std::lock_guard lock(mu_);
    TUSK_RETURN_IF_ERROR(BeginMutationLocked("sync directory " + dir));
    TUSK_RETURN_IF_ERROR(base_->SyncDir(dir));
    auto it = dirs_.find(dir);
    Result<DirEntries> now = Snapshot(dir, it == dirs_.end() ? nullptr : &it->second);
    if (!now.ok())
      Break(now.status());
    else
      dirs_[dir] = std::move(now).value();
    return Status::Ok();
  }
  Status Rename(const std::string& from, const std::string& to) override {
    std::lock_guard lock(mu_);
    TUSK_RETURN_IF_ERROR(BeginMutationLocked("rename " + from + " to " + to));
    TouchLocked(ParentOf(from));
    TouchLocked(ParentOf(to));
    return base_->Rename(from, to);
  }
  Status Remove(const std::string& path) override {
    std::lock_guard lock(mu_);
    TUSK_RETURN_IF_ERROR(BeginMutationLocked("remove " + path));
    TouchLocked(ParentOf(path));
    return base_->Remove(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    TUSK_RETURN_IF_ERROR(CheckPower("list " + dir));
    return base_->ListDir(dir);
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    TUSK_RETURN_IF_ERROR(CheckPower("stat " + path));
    return base_->FileSize(path);
  }
  Status MakeDirs(const std::string& path, mode_t mode) override {
    std::lock_guard lock(mu_);
    TUSK_RETURN_IF_ERROR(BeginMutationLocked("make directories " + path));
    std::vector<std::string> missing;  // deepest first
    for (std::string p = path; p != "/" && p != "." && !Exists(p); p = ParentOf(p)) missing.push_back(p);
    if (!missing.empty()) TouchLocked(ParentOf(missing.back()));
    Status st = base_->MakeDirs(path, mode);
    // A directory made now holds no durable name yet.
    for (const std::string& made : missing)
      if (Exists(made)) dirs_[made] = DirEntries();
    return st;
  }

 private:
  using Inode = std::pair<dev_t, ino_t>;
  struct DurableEntry {
    bool is_dir = false;
    Inode inode;
    std::string shadow;  // the hard link that keeps a file's inode; empty for a directory
  };
  using DirEntries = std::map<std::string, DurableEntry>;  // by name

  class Reader final : public RandomAccessFile {
   public:
    Reader(FaultEnv* env, std::unique_ptr<RandomAccessFile> base) : env_(env), base_(std::move(base)) {}
    Status Read(uint64_t offset, size_t len, void* out) const override {
      TUSK_RETURN_IF_ERROR(env_->CheckPower("read " + path()));
      return base_->Read(offset, len, out);
    }
    Status Read2(uint64_t offset, void* a, size_t a_len, void* b, size_t b_len) const override {
      TUSK_RETURN_IF_ERROR(env_->CheckPower("read " + path()));
      return base_->Read2(offset, a, a_len, b, b_len);
    }
    uint64_t size() const override { return base_->size(); }
    const std::string& path() const override { return base_->path(); }

   private:
    FaultEnv* env_;
    std::unique_ptr<RandomAccessFile> base_;
  };

  class Writer final : public WritableFile {
   public:
    Writer(FaultEnv* env, std::unique_ptr<WritableFile> base, Inode inode)
        : env_(env), base_(std::move(base)), inode_(inode) {}
    Status Write(uint64_t offset, std::string_view data) override {
      std::lock_guard lock(env_->mu_);
      TUSK_RETURN_IF_ERROR(env_->BeginMutationLocked("write " + path()));
      TUSK_RETURN_IF_ERROR(base_->Write(offset, data));
      end_ = std::max<uint64_t>(end_, offset + data.size());
      return Status::Ok();
    }
    Status Sync() override {
      std::lock_guard lock(env_->mu_);
      TUSK_RETURN_IF_ERROR(env_->BeginMutationLocked("sync " + path()));
      TUSK_RETURN_IF_ERROR(base_->Sync());
      env_->durable_len_[inode_] = end_;
      return Status::Ok();
    }
    const std::string& path() const override { return base_->path(); }

   private:
    FaultEnv* env_;
    std::unique_ptr<WritableFile> base_;
    Inode inode_;
    uint64_t end_ = 0;  // of the furthest write
  };

  static std::string ParentOf(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  }
  static bool Exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
  static Status PowerLost(const std::string& what) { return Status::FromErrno(EIO, "simulated power loss: " + what); }

  Status CheckPower(const std::string& what) const { return lost_ ? PowerLost(what) : Status::Ok(); }

  // Counts a mutating call, or fails it (and the power) when its turn has
  // come. Needs mu_.
  Status BeginMutationLocked(const std::string& what) {
    if (lost_) return PowerLost(what);
    if (fail_at_ && calls_ >= *fail_at_) {
      lost_ = true;
      return PowerLost(what);
    }
    calls_++;
    return Status::Ok();
  }

  // A bookkeeping failure makes the model wrong: DropUnsyncedData reports it.
  void Break(const Status& st) {
    if (broken_.ok()) broken_ = st.Annotate("FaultEnv bookkeeping");
  }

  Result<std::unique_ptr<WritableFile>> Create(const std::string& path, mode_t mode, bool exclusive) {
    std::lock_guard lock(mu_);
    TUSK_RETURN_IF_ERROR(BeginMutationLocked("create " + path));
    TouchLocked(ParentOf(path));
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                          exclusive ? base_->CreateExclusive(path, mode) : base_->CreateOrTruncate(path, mode));
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      Break(Status::FromErrno(errno, "stat " + path));
      return std::unique_ptr<WritableFile>(std::move(file));
    }
    Inode inode{st.st_dev, st.st_ino};
    durable_len_[inode] = 0;
    // Pinned for the env's lifetime: a tracked inode number is never reused
    // by a file the env knows nothing of.
    if (Result<std::string> pin = Pin(path); !pin.ok()) Break(pin.status());
    return std::unique_ptr<WritableFile>(new Writer(this, std::move(file), inode));
  }

  // Records `dir`'s entries as its durable state, the first time the env is
  // about to change it. Needs mu_.
  void TouchLocked(const std::string& dir) {
    if (dirs_.count(dir) || !Exists(dir)) return;
    Result<DirEntries> now = Snapshot(dir, nullptr);
    if (!now.ok())
      Break(now.status());
    else
      dirs_[dir] = std::move(now).value();
  }

  // The entries of `dir` now, each file pinned (reusing the pin `previous`
  // holds for the same inode).
  Result<DirEntries> Snapshot(const std::string& dir, const DirEntries* previous) {
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, base_->ListDir(dir));
    DirEntries out;
    for (const std::string& name : names) {
      std::string path = dir + "/" + name;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
      DurableEntry e;
      e.is_dir = S_ISDIR(st.st_mode);
      e.inode = {st.st_dev, st.st_ino};
      if (previous) {
        auto it = previous->find(name);
        if (it != previous->end() && it->second.inode == e.inode && it->second.is_dir == e.is_dir) {
          out[name] = it->second;
          continue;
        }
      }
      if (!e.is_dir) {
        TUSK_ASSIGN_OR_RETURN(e.shadow, Pin(path));
      }
      out[name] = std::move(e);
    }
    return out;
  }

  Result<std::string> Pin(const std::string& path) {
    std::string shadow = shadow_dir_ + "/" + std::to_string(next_pin_++);
    if (::link(path.c_str(), shadow.c_str()) != 0) return Status::FromErrno(errno, "link " + path + " to " + shadow);
    return shadow;
  }

  Status RestoreNames(const std::string& dir, const DirEntries& durable) {
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, base_->ListDir(dir));
    for (const std::string& name : names) {
      if (durable.count(name)) continue;
      std::error_code ec;
      std::filesystem::remove_all(dir + "/" + name, ec);
      if (ec) return Status::FromErrno(ec.value(), "remove " + dir + "/" + name);
    }
    for (const auto& [name, entry] : durable) {
      std::string path = dir + "/" + name;
      struct stat st;
      bool present = ::lstat(path.c_str(), &st) == 0;
      if (present && Inode{st.st_dev, st.st_ino} == entry.inode) continue;
      if (entry.is_dir)
        return Status::Corruption("FaultEnv cannot restore the durable directory " + path +
                                  ": it was removed or replaced");
      if (present) {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
        if (ec) return Status::FromErrno(ec.value(), "remove " + path);
      }
      if (::link(entry.shadow.c_str(), path.c_str()) != 0)
        return Status::FromErrno(errno, "restore " + path + " from " + entry.shadow);
    }
    return Status::Ok();
  }

  Status CutToDurableLength(const std::string& dir) {
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, base_->ListDir(dir));
    for (const std::string& name : names) {
      std::string path = dir + "/" + name;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
      if (!S_ISREG(st.st_mode)) continue;
      auto it = durable_len_.find({st.st_dev, st.st_ino});
      if (it == durable_len_.end() || static_cast<uint64_t>(st.st_size) <= it->second) continue;
      // Packs are read-only (0444): lend the owner write permission.
      bool lend = (st.st_mode & S_IWUSR) == 0;
      if (lend && ::chmod(path.c_str(), st.st_mode | S_IWUSR) != 0) return Status::FromErrno(errno, "chmod " + path);
      int rc = ::truncate(path.c_str(), static_cast<off_t>(it->second));
      int err = errno;
      if (lend) (void)::chmod(path.c_str(), st.st_mode & 07777);
      if (rc != 0) return Status::FromErrno(err, "truncate " + path);
    }
    return Status::Ok();
  }

  const std::string shadow_dir_;
  Env* const base_;
  std::atomic<bool> lost_{false};  // read without mu_ by every call
  mutable std::mutex mu_;          // guards everything below
  uint64_t calls_ = 0;
  std::optional<uint64_t> fail_at_;
  uint64_t next_pin_ = 0;
  std::map<Inode, uint64_t> durable_len_;   // files written through the env
  std::map<std::string, DirEntries> dirs_;  // directories touched, by path
  Status broken_;
};

// A fresh directory for a run on a FaultEnv (its store and the env's
// shadow directory), removed (recursively) on destruction. On tmpfs when
// /dev/shm has 1 GiB free and takes user xattrs (workspaces keep sidecar
// names in them): FaultEnv models durability itself, and on a disk the real
// fsyncs (LMDB's too) would take most of the time. Else under /tmp.
class ScratchDir {
 public:
  ScratchDir() {
    for (const char* root : {"/dev/shm", "/tmp"}) {
      struct statvfs vfs;
      if (::statvfs(root, &vfs) != 0 || uint64_t{vfs.f_bavail} * vfs.f_frsize < (1ull << 30)) continue;
      std::string tmpl = std::string(root) + "/tusk-power-loss-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) continue;
      if (::setxattr(tmpl.c_str(), "user.tusk.probe", "1", 1, 0) != 0) {
        std::error_code ec;
        std::filesystem::remove_all(tmpl, ec);
        continue;
      }
      path_ = tmpl;
      return;
    }
    std::abort();
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string Sub(std::string_view rel) const { return path_ + "/" + std::string(rel); }

 private:
  std::string path_;
};

}  // namespace tusk::test_util
