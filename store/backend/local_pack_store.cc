// Packs as files in a local directory, through the file seam.
#include <cstdio>

#include "store/backend/pack_store.h"

namespace tusk {

std::string PackName(PackId id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

bool ParsePackFileName(std::string_view name, PackId* id) {
  if (name.size() != 16 + 5 || name.substr(16) != ".pack") return false;
  PackId v = 0;
  for (char c : name.substr(0, 16)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<PackId>(d);
  }
  *id = v;
  return true;
}

namespace {

std::string ParentOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

class LocalPackSink final : public PackSink {
 public:
  LocalPackSink(Env* env, std::string packs_dir, std::unique_ptr<WritableFile> file)
      : env_(env), packs_dir_(std::move(packs_dir)), file_(std::move(file)) {}
  Status Write(uint64_t offset, std::string_view data) override { return file_->Write(offset, data); }
  Status Sync() override { return file_->Sync(); }
  Status Finish() override {
    TUSK_RETURN_IF_ERROR(file_->Sync());
    TUSK_RETURN_IF_ERROR(env_->SyncDir(ParentOf(file_->path())));
    return env_->SyncDir(packs_dir_);  // the fan-out directory may be new
  }

 private:
  Env* env_;
  std::string packs_dir_;
  std::unique_ptr<WritableFile> file_;
};

class LocalPackStore final : public PackStore {
 public:
  LocalPackStore(std::string dir, Env* env) : dir_(std::move(dir)), env_(env) {}

  std::string Describe(PackId id) const override {
    std::string name = PackName(id);
    return dir_ + "/" + name.substr(0, 2) + "/" + name + ".pack";
  }
  Result<std::unique_ptr<RandomAccessFile>> Open(PackId id) override { return env_->OpenForRead(Describe(id)); }
  Result<std::unique_ptr<PackSink>> Create(PackId id) override {
    std::string path = Describe(id);
    TUSK_RETURN_IF_ERROR(env_->MakeDirs(ParentOf(path), 0755));
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env_->CreateExclusive(path, 0444));
    return std::unique_ptr<PackSink>(new LocalPackSink(env_, dir_, std::move(file)));
  }
  Result<std::vector<PackId>> List() override {
    std::vector<PackId> out;
    TUSK_ASSIGN_OR_RETURN(std::vector<std::string> subdirs, env_->ListDir(dir_));
    for (const std::string& sub : subdirs) {
      if (sub.size() != 2) continue;
      auto names = env_->ListDir(dir_ + "/" + sub);
      if (!names.ok()) continue;  // not a directory
      for (const std::string& name : *names) {
        PackId id;
        if (ParsePackFileName(name, &id)) out.push_back(id);
      }
    }
    return out;
  }
  Status Remove(PackId id) override {
    std::string path = Describe(id);
    TUSK_RETURN_IF_ERROR(env_->Remove(path));
    // Durable before returning: gc drops the pack's index entry next, and a
    // pack a power loss brought back after that would be one the index does
    // not know (fsck reports it, gc refuses). Found by power_loss_test.
    return env_->SyncDir(ParentOf(path));
  }
  Result<uint64_t> Size(PackId id) override { return env_->FileSize(Describe(id)); }

 private:
  std::string dir_;
  Env* env_;
};

}  // namespace

std::unique_ptr<PackStore> NewLocalPackStore(std::string dir, Env* env) {
  return std::make_unique<LocalPackStore>(std::move(dir), env);
}

}  // namespace tusk
