// The POSIX Env, on the wrappers of store/internal/file.h.
#include "store/backend/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "store/internal/file.h"

namespace tusk {

Status RandomAccessFile::Read2(uint64_t offset, void* a, size_t a_len, void* b, size_t b_len) const {
  TUSK_RETURN_IF_ERROR(Read(offset, a_len, a));
  return Read(offset + a_len, b_len, b);
}

namespace {

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, Fd fd, uint64_t size) : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}
  Status Read(uint64_t offset, size_t len, void* out) const override {
    return PreadAll(fd_.get(), out, len, offset, path_);
  }
  Status Read2(uint64_t offset, void* a, size_t a_len, void* b, size_t b_len) const override {
    return PreadvAll(fd_.get(), a, a_len, b, b_len, offset, path_);
  }
  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  Fd fd_;
  uint64_t size_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Status Write(uint64_t offset, std::string_view data) override {
    return PwriteAll(fd_.get(), data.data(), data.size(), offset, path_);
  }
  Status Sync() override { return Fsync(fd_.get(), path_); }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  Fd fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override {
    TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    return std::unique_ptr<RandomAccessFile>(
        new PosixRandomAccessFile(path, std::move(fd), static_cast<uint64_t>(st.st_size)));
  }
  Result<std::unique_ptr<WritableFile>> CreateExclusive(const std::string& path, mode_t mode) override {
    TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_WRONLY | O_CREAT | O_EXCL, mode));
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, std::move(fd)));
  }
  Result<std::unique_ptr<WritableFile>> CreateOrTruncate(const std::string& path, mode_t mode) override {
    TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, mode));
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, std::move(fd)));
  }
  Status SyncDir(const std::string& dir) override { return FsyncDir(dir); }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Status::FromErrno(errno, "rename " + from + " to " + to);
    return Status::Ok();
  }
  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "remove " + path);
    return Status::Ok();
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    TUSK_ASSIGN_OR_RETURN(Fd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
    return ListDirectory(fd.get(), dir);
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    return static_cast<uint64_t>(st.st_size);
  }
  Status MakeDirs(const std::string& path, mode_t mode) override { return tusk::MakeDirs(path, mode); }
};

std::string ParentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

Env* Env::Default() {
  static Env* env = new PosixEnv();
  return env;
}

Result<std::string> ReadWholeFile(Env* env, const std::string& path) {
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env->OpenForRead(path));
  std::string out(file->size(), '\0');
  TUSK_RETURN_IF_ERROR(file->Read(0, out.size(), out.data()));
  return out;
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env->CreateOrTruncate(tmp, 0644));
    Status st = file->Write(0, content);
    if (st.ok()) st = file->Sync();
    if (!st.ok()) {
      (void)env->Remove(tmp);
      return st;
    }
  }
  Status st = env->Rename(tmp, path);
  if (!st.ok()) {
    (void)env->Remove(tmp);
    return st;
  }
  return env->SyncDir(ParentOf(path));
}

}  // namespace tusk
