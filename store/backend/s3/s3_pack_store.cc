// Packs as S3 objects: the store, its sinks (spooling to a nameless local
// file until Finish uploads it) and its files (ranged GETs).
#include "store/backend/s3/s3_pack_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "store/internal/file.h"

namespace tusk {
namespace {

// Sizes this process knows of packs (from Finish and List), so that
// opening a pack costs no HEAD. Bounded by forgetting everything when full:
// a forgotten size is one HEAD away.
constexpr size_t kMaxKnownSizes = 1 << 16;

// What the store, its sinks and its files share: the client, the keys, and
// what this process knows of the packs. Sinks and files hold it by
// shared_ptr, so they may outlive the store. Thread-safe.
class PackObjects {
 public:
  PackObjects(std::shared_ptr<s3::Client> client, std::string prefix, S3PackStoreOptions options)
      : client_(std::move(client)), prefix_(std::move(prefix)), options_(std::move(options)) {}

  s3::Client& client() const { return *client_; }
  const S3PackStoreOptions& options() const { return options_; }
  std::string Dir() const { return prefix_ + "packs/"; }
  std::string Key(PackId id) const { return Dir() + PackName(id) + ".pack"; }
  std::string Describe(PackId id) const { return client_->Describe(Key(id)); }

  std::optional<uint64_t> KnownSize(PackId id) const {
    std::lock_guard lock(mu_);
    auto it = known_sizes_.find(id);
    if (it == known_sizes_.end()) return std::nullopt;
    return it->second;
  }
  void RememberSize(PackId id, uint64_t size) {
    std::lock_guard lock(mu_);
    if (known_sizes_.size() >= kMaxKnownSizes) known_sizes_.clear();
    known_sizes_[id] = size;
  }
  void ForgetSize(PackId id) {
    std::lock_guard lock(mu_);
    known_sizes_.erase(id);
  }

  // Claims `id` for one sink of this store; false when another holds it.
  bool BeginWriting(PackId id) {
    std::lock_guard lock(mu_);
    return being_written_.insert(id).second;
  }
  void EndWriting(PackId id) {
    std::lock_guard lock(mu_);
    being_written_.erase(id);
  }

 private:
  const std::shared_ptr<s3::Client> client_;
  const std::string prefix_;
  const S3PackStoreOptions options_;
  mutable std::mutex mu_;                   // a leaf lock: nothing is called while holding it
  std::map<PackId, uint64_t> known_sizes_;  // guarded by mu_
  std::set<PackId> being_written_;          // guarded by mu_
};

// A sink's claim on its id (PackObjects::BeginWriting), released when the
// sink goes, finished or not.
class WriteClaim {
 public:
  WriteClaim(std::shared_ptr<PackObjects> objects, PackId id) : objects_(std::move(objects)), id_(id) {}
  ~WriteClaim() { objects_->EndWriting(id_); }
  WriteClaim(const WriteClaim&) = delete;
  WriteClaim& operator=(const WriteClaim&) = delete;

 private:
  std::shared_ptr<PackObjects> objects_;
  PackId id_;
};

// A local file without a name that holds a pack until it is uploaded. It
// is unlinked the moment it is made: closing the descriptor frees it, and
// a process that dies leaves nothing in the scratch directory.
class SpoolFile {
 public:
  static Result<SpoolFile> Create(const std::string& dir) {
    TUSK_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    std::string name = dir + "/tusk-pack-XXXXXX";
    int fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "create a spool file in " + dir);
    Fd owned(fd);
    if (::unlink(name.c_str()) != 0) return Status::FromErrno(errno, "unlink " + name);
    return SpoolFile(std::move(owned), "spool file in " + dir);
  }

  uint64_t size() const { return size_; }
  Status Append(std::string_view data) {
    TUSK_RETURN_IF_ERROR(PwriteAll(fd_.get(), data.data(), data.size(), size_, what_));
    size_ += data.size();
    return Status::Ok();
  }
  Status Read(uint64_t offset, size_t len, std::string* out) const {
    out->resize(len);
    return PreadAll(fd_.get(), out->data(), len, offset, what_);
  }

 private:
  SpoolFile(Fd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  Fd fd_;
  std::string what_;  // for messages
  uint64_t size_ = 0;
};

class S3PackSink final : public PackSink {
 public:
  S3PackSink(std::shared_ptr<PackObjects> objects, PackId id, std::unique_ptr<WriteClaim> claim, SpoolFile spool)
      : objects_(std::move(objects)), id_(id), claim_(std::move(claim)), spool_(std::move(spool)) {}

  Status Write(uint64_t offset, std::string_view data) override {
    if (!broken_.ok()) return broken_;
    if (finished_) return Status::InvalidArgument("write to " + objects_->Describe(id_) + " after it was finished");
    if (offset != spool_.size()) {
      return Status::InvalidArgument("write at " + std::to_string(offset) + " to " + objects_->Describe(id_) +
                                     ", which has " + std::to_string(spool_.size()) + " bytes: packs are appended");
    }
    return Keep(spool_.Append(data).Annotate("writing " + objects_->Describe(id_)));
  }

  // Nothing to do: an object appears whole or not at all, so until Finish
  // there is no partial state on the server to make durable, and the spool
  // file is worth nothing after a crash (it has no name to be found by).
  Status Sync() override { return broken_; }

  Status Finish() override {
    if (!broken_.ok() || finished_) return broken_;
    TUSK_RETURN_IF_ERROR(Keep(Upload()));
    finished_ = true;
    objects_->RememberSize(id_, spool_.size());
    return Status::Ok();
  }

 private:
  // A broken writer stays broken: the first error answers every later call.
  Status Keep(Status status) {
    if (!status.ok()) broken_ = status;
    return status;
  }

  Status Upload() {
    s3::Client& client = objects_->client();
    const S3PackStoreOptions& options = objects_->options();
    std::string key = objects_->Key(id_);
    uint64_t size = spool_.size();
    if (size <= options.part_size) {
      std::string bytes;
      TUSK_RETURN_IF_ERROR(
          spool_.Read(0, static_cast<size_t>(size), &bytes).Annotate("finishing " + objects_->Describe(id_)));
      Result<std::string> put = client.Put(key, bytes, s3::WriteCondition::IfNoneMatchAny());
      if (put.status().code() == Status::Code::kConflict) {
        return Status::AlreadyExists(objects_->Describe(id_) + " was created by another writer meanwhile");
      }
      return put.status();
    }
    s3::LargeUploadOptions large;
    large.part_size = options.part_size;
    large.parts_in_flight = options.parts_in_flight;
    s3::PartReader read_part = [this](uint64_t offset, size_t len, std::string* out) {
      return spool_.Read(offset, len, out);
    };
    return client.PutLarge(key, size, read_part, large).status();
  }

  std::shared_ptr<PackObjects> objects_;
  PackId id_;
  std::unique_ptr<WriteClaim> claim_;
  SpoolFile spool_;
  Status broken_;
  bool finished_ = false;
};

class S3PackFile final : public RandomAccessFile {
 public:
  S3PackFile(std::shared_ptr<PackObjects> objects, PackId id, uint64_t size)
      : objects_(std::move(objects)), key_(objects_->Key(id)), path_(objects_->Describe(id)), size_(size) {}

  Status Read(uint64_t offset, size_t len, void* out) const override {
    // Checked here, not left to the server: a range past the end would be
    // a 416 or a short answer, and this costs no request.
    if (offset > size_ || len > size_ - offset) {
      return Status::Corruption(path_ + ": " + std::to_string(len) + " bytes at " + std::to_string(offset) +
                                " go past its end at " + std::to_string(size_));
    }
    return objects_->client().ReadRange(key_, offset, len, static_cast<char*>(out));
  }
  // One request for both: a round trip costs far more than a copy.
  Status Read2(uint64_t offset, void* a, size_t a_len, void* b, size_t b_len) const override {
    if (b_len == 0) return Read(offset, a_len, a);
    std::string both(a_len + b_len, '\0');
    TUSK_RETURN_IF_ERROR(Read(offset, both.size(), both.data()));
    std::memcpy(a, both.data(), a_len);
    std::memcpy(b, both.data() + a_len, b_len);
    return Status::Ok();
  }
  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::shared_ptr<PackObjects> objects_;
  std::string key_;
  std::string path_;
  uint64_t size_;
};

class S3PackStore final : public PackStore {
 public:
  explicit S3PackStore(std::shared_ptr<PackObjects> objects) : objects_(std::move(objects)) {}

  std::string Describe(PackId id) const override { return objects_->Describe(id); }

  Result<std::unique_ptr<RandomAccessFile>> Open(PackId id) override {
    TUSK_ASSIGN_OR_RETURN(uint64_t size, Size(id));
    return std::unique_ptr<RandomAccessFile>(new S3PackFile(objects_, id, size));
  }

  Result<std::unique_ptr<PackSink>> Create(PackId id) override {
    if (!objects_->BeginWriting(id)) {
      return Status::AlreadyExists(Describe(id) + " is being written by another sink of this store");
    }
    auto claim = std::make_unique<WriteClaim>(objects_, id);
    Result<s3::ObjectInfo> head = objects_->client().Head(objects_->Key(id));
    if (head.ok()) return Status::AlreadyExists(Describe(id) + " exists");
    if (head.status().code() != Status::Code::kNotFound) return head.status();
    TUSK_ASSIGN_OR_RETURN(SpoolFile spool, SpoolFile::Create(objects_->options().scratch_dir));
    return std::unique_ptr<PackSink>(new S3PackSink(objects_, id, std::move(claim), std::move(spool)));
  }

  Result<std::vector<PackId>> List() override {
    std::string dir = objects_->Dir();
    TUSK_ASSIGN_OR_RETURN(std::vector<s3::ObjectInfo> objects, objects_->client().List(dir));
    std::vector<PackId> ids;
    for (const s3::ObjectInfo& object : objects) {
      PackId id;
      if (!ParsePackFileName(std::string_view(object.key).substr(dir.size()), &id)) continue;
      ids.push_back(id);
      objects_->RememberSize(id, object.size);
    }
    return ids;
  }

  Status Remove(PackId id) override {
    objects_->ForgetSize(id);
    std::string key = objects_->Key(id);
    // S3 deletes an absent key without a word; the contract wants NotFound.
    TUSK_RETURN_IF_ERROR(objects_->client().Head(key).status());
    return objects_->client().Delete(key);
  }

  Result<uint64_t> Size(PackId id) override {
    if (std::optional<uint64_t> known = objects_->KnownSize(id)) return *known;
    TUSK_ASSIGN_OR_RETURN(s3::ObjectInfo info, objects_->client().Head(objects_->Key(id)));
    objects_->RememberSize(id, info.size);
    return info.size;
  }

 private:
  std::shared_ptr<PackObjects> objects_;
};

std::string DefaultScratchDir() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
}

}  // namespace

std::unique_ptr<PackStore> NewS3PackStore(std::shared_ptr<s3::Client> client, std::string prefix,
                                          S3PackStoreOptions options) {
  if (!prefix.empty() && !prefix.ends_with('/')) prefix += '/';
  if (options.scratch_dir.empty()) options.scratch_dir = DefaultScratchDir();
  return std::make_unique<S3PackStore>(
      std::make_shared<PackObjects>(std::move(client), std::move(prefix), std::move(options)));
}

}  // namespace tusk
