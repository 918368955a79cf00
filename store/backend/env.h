// The file seam (DECISIONS.md, "Storage: two seams"): every file of the
// store's own format that tusk writes or reads (packs, the config) goes
// through an Env, in the shape of LevelDB's. The default Env is POSIX on the
// local disk. Tests substitute one that fails on demand and, on a simulated
// power loss, drops every write not yet made durable
// (tests/store/fault_env.h): that is how the durability protocol of
// store/FORMAT.md is tested, which kill -9 cannot do (the page cache
// survives a killed process).
//
// Workspaces write their own files (base, next) and make every name they
// need durable through it (SyncDir); the staged entries themselves are made
// with *at() calls relative to directory descriptors, so that paths of any
// depth work (store/FORMAT.md, "Workspace durability"). LMDB does its own
// I/O and is outside the seam.
//
// Durability contract, as POSIX gives it: a write is durable once its file
// is synced (WritableFile::Sync); a new name, a rename or a removal once its
// directory is synced (Env::SyncDir).
//
// Thread-safety: Env and RandomAccessFile are thread-safe; a WritableFile is
// its owner's to serialize.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace tusk {

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads exactly `len` bytes at `offset`; a file that ends first is
  // Corruption (a truncated file is damage).
  virtual Status Read(uint64_t offset, size_t len, void* out) const = 0;
  // Reads `a_len` then `b_len` bytes from `offset`, in one call where the
  // implementation can.
  virtual Status Read2(uint64_t offset, void* a, size_t a_len, void* b, size_t b_len) const;
  // The size when the file was opened.
  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at `offset`. A failed write leaves the file's
  // content beyond `offset` unspecified.
  virtual Status Write(uint64_t offset, std::string_view data) = 0;
  // Makes every byte written so far durable.
  virtual Status Sync() = 0;
  virtual const std::string& path() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // The POSIX Env; never destroyed.
  static Env* Default();

  // NotFound when the file does not exist.
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) = 0;
  // Creates a new file; AlreadyExists when the name is taken.
  virtual Result<std::unique_ptr<WritableFile>> CreateExclusive(const std::string& path, mode_t mode) = 0;
  // Creates the file, or empties the one there.
  virtual Result<std::unique_ptr<WritableFile>> CreateOrTruncate(const std::string& path, mode_t mode) = 0;
  // Makes the names in `dir` durable: files created, renamed or removed in it.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Replaces `to` atomically.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // NotFound when there is nothing to remove.
  virtual Status Remove(const std::string& path) = 0;
  // The names in `dir` but "." and ".."; NotFound when it does not exist.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Creates `path` and any missing parent; Ok when it exists.
  virtual Status MakeDirs(const std::string& path, mode_t mode) = 0;
};

// The whole file.
Result<std::string> ReadWholeFile(Env* env, const std::string& path);
// Writes via a temporary file, sync, rename and directory sync, so readers
// see either the old or the new content, never a torn one, and a power loss
// leaves one of the two.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view content);

}  // namespace tusk
