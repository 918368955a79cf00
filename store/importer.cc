#include "store/importer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <thread>

#include "store/internal/chunk_pipeline.h"
#include "store/internal/file.h"
#include "store/internal/stat_entry.h"
#include "store/internal/varint.h"
#include "store/refs.h"

namespace tusk {
namespace {

// A file stat is trusted for skipping only if its ctime is older than the
// import's start by this margin: a write racing with our read within the
// same timestamp tick would otherwise go unnoticed next time.
constexpr int64_t kRacyMarginSec = 2;

struct DirNode;

struct FileTask {
  std::string path;             // absolute path to read
  std::string rel;              // path inside the dataset, for messages and the stat cache
  struct stat st;               // as seen by the scan
  TreeEntry* entry;             // filled when all its chunks are done
  std::deque<ChunkRef> chunks;  // deque: workers write elements while the reader appends
};

struct DirNode {
  std::vector<TreeEntry> entries;
  std::vector<std::unique_ptr<DirNode>> subdirs;  // aligned with entries; null for non-directories
};

// The stat-cache record for one file: what the file looked like when its
// content was last read, and a digest of the chunk list that content gave.
struct StatRecord {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_sec = 0, ctime_sec = 0;
  uint32_t mtime_nsec = 0, ctime_nsec = 0;
  std::string content_digest;

  static StatRecord Of(const struct stat& st) {
    StatRecord r;
    r.dev = st.st_dev;
    r.ino = st.st_ino;
    r.size = static_cast<uint64_t>(st.st_size);
    r.mtime_sec = st.st_mtim.tv_sec;
    r.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    r.ctime_sec = st.st_ctim.tv_sec;
    r.ctime_nsec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
    return r;
  }
  bool SameFile(const StatRecord& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_sec == o.mtime_sec && mtime_nsec == o.mtime_nsec &&
           ctime_sec == o.ctime_sec && ctime_nsec == o.ctime_nsec;
  }
  std::string Encode() const {
    Encoder e;
    for (uint64_t v : {dev, ino, size}) e.PutVarint(v);
    e.PutSigned(mtime_sec);
    e.PutVarint(mtime_nsec);
    e.PutSigned(ctime_sec);
    e.PutVarint(ctime_nsec);
    e.PutString(content_digest);
    return e.Take();
  }
  static std::optional<StatRecord> Decode(std::string_view bytes) {
    Decoder d(bytes);
    StatRecord r;
    std::string_view digest;
    if (!d.GetVarint(&r.dev) || !d.GetVarint(&r.ino) || !d.GetVarint(&r.size) || !d.GetSigned(&r.mtime_sec) ||
        !d.GetVarintAs(&r.mtime_nsec) || !d.GetSigned(&r.ctime_sec) || !d.GetVarintAs(&r.ctime_nsec) ||
        !d.GetString(&digest))
      return std::nullopt;
    r.content_digest.assign(digest);
    return r;
  }
};

std::string ContentDigest(const std::vector<ChunkRef>& chunks) {
  Sha256 h;
  for (const auto& c : chunks) {
    h.Update(c.id.data(), ObjectId::kSize);
    h.Update(&c.length, sizeof c.length);
  }
  return h.Finish().Hex().substr(0, 32);
}

std::pair<uint64_t, uint64_t> LinkKey(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

// The names of one inode met in this import (a hard-link group once it has
// two), with the stat of the first name.
struct LinkSet {
  struct stat st;
  std::vector<TreeEntry*> entries;  // in scan order; entries[0] is read, the rest copy it
  std::vector<std::string> rels;
  FileTask* task = nullptr;  // entries[0]'s, when its content is read in this import
};

class Importer {
 public:
  Importer(Repository& repo, const std::string& dataset, const ImportOptions& options)
      : repo_(repo), dataset_(dataset), options_(options), chunker_(repo.config().chunker) {}

  Result<ImportResult> Run(const std::string& source, const std::string& branch);

 private:
  Status Scan(int dir_fd, const std::string& abs, const std::string& rel, const std::optional<ObjectId>& prev_tree,
              DirNode* node);
  Status ReadFile(FileTask* task, ChunkPipeline* pipeline, std::vector<char>* buffer);
  Result<ObjectId> WriteTrees(DirNode* node, WriteSession* session);
  // The user xattrs of `abs` the entry records (others are counted for a
  // warning).
  Status ReadXattrs(const std::string& abs, TreeEntry* entry);
  // Registers a name of a multiply linked inode; true if it is not the
  // first name met (its content and metadata then come from the first).
  bool AddLink(const struct stat& st, TreeEntry* entry, const std::string& rel);
  // After the content is read: later names copy the first, and groups of two
  // or more names get their numbers.
  Status FinishLinks(WriteSession* session);
  void Warn(const std::string& msg) {
    if (options_.warn) options_.warn(msg);
  }

  Repository& repo_;
  std::string dataset_;
  const ImportOptions& options_;
  Chunker chunker_;
  std::map<std::string, std::string> stat_cache_;
  std::string stat_prefix_;
  int64_t start_sec_ = 0;
  std::deque<FileTask> tasks_;
  std::map<std::pair<uint64_t, uint64_t>, LinkSet> links_;  // by (st_dev, st_ino)
  std::vector<LinkSet*> link_order_;                        // in order of first appearance
  uint64_t unrecorded_xattr_entries_ = 0;                   // entries with xattrs outside user.*
  std::string first_unrecorded_xattr_;
  ImportResult result_;
};

Status Importer::ReadXattrs(const std::string& abs, TreeEntry* entry) {
  auto all = ReadAllXattrs(abs);
  if (!all.ok()) return all.status().Annotate("cannot import " + EscapeForDisplay(abs));
  bool unrecorded = false;
  for (auto& [name, value] : *all) {
    if (IsRecordableXattrName(name)) {
      entry->xattrs.emplace_back(std::move(name), std::move(value));
    } else if (name.rfind("user.tusk.", 0) != 0) {  // tusk's own (a copy out of a mount) are dropped quietly
      if (first_unrecorded_xattr_.empty()) first_unrecorded_xattr_ = name + " of " + EscapeForDisplay(abs);
      unrecorded = true;
    }
  }
  if (unrecorded) unrecorded_xattr_entries_++;
  return Status::Ok();
}

bool Importer::AddLink(const struct stat& st, TreeEntry* entry, const std::string& rel) {
  auto [it, inserted] = links_.try_emplace(LinkKey(st));
  LinkSet& set = it->second;
  if (inserted) {
    set.st = st;
    link_order_.push_back(&set);
  }
  set.entries.push_back(entry);
  set.rels.push_back(rel);
  return !inserted;
}

Status Importer::FinishLinks(WriteSession* session) {
  uint64_t next_group = 0;
  for (LinkSet* set : link_order_) {
    if (set->entries.size() < 2) continue;
    const TreeEntry& first = *set->entries[0];
    for (size_t i = 1; i < set->entries.size(); i++) {
      TreeEntry* e = set->entries[i];
      std::string name = std::move(e->name);
      *e = first;
      e->name = std::move(name);
      if (set->task && set->task->st.st_ctim.tv_sec < start_sec_ - kRacyMarginSec) {
        StatRecord rec = StatRecord::Of(set->task->st);
        rec.content_digest = ContentDigest(first.chunks);
        session->RememberFileStat(stat_prefix_ + set->rels[i], rec.Encode());
      }
    }
    const uint64_t group = ++next_group;
    for (TreeEntry* e : set->entries) e->link_group = group;
    result_.link_groups++;
  }
  return Status::Ok();
}

Status Importer::Scan(int dir_fd, const std::string& abs, const std::string& rel,
                      const std::optional<ObjectId>& prev_tree, DirNode* node) {
  // Names first, sorted: tree entries are kept in byte order.
  std::vector<std::string> names;
  {
    int dup_fd = ::dup(dir_fd);
    if (dup_fd < 0) return Status::FromErrno(errno, "dup");
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(dup_fd), ::closedir);
    if (!dir) {
      ::close(dup_fd);
      return Status::FromErrno(errno, "cannot read directory " + abs);
    }
    errno = 0;
    while (dirent* e = ::readdir(dir.get())) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (!IsValidUtf8(name))
        return Status::InvalidArgument("cannot import " + EscapeForDisplay(JoinPath(abs, name)) +
                                       ": the name is not valid UTF-8; rename it and import again");
      names.push_back(std::move(name));
    }
    if (errno != 0) return Status::FromErrno(errno, "cannot read directory " + abs);
  }
  std::sort(names.begin(), names.end());

  std::vector<TreeEntry> prev;
  if (prev_tree) {
    TUSK_ASSIGN_OR_RETURN(prev, ReadDirectory(repo_, *prev_tree));
  }
  auto find_prev = [&](const std::string& name) -> const TreeEntry* {
    auto it = std::lower_bound(prev.begin(), prev.end(), name, [](const TreeEntry& t, const std::string& n) { return t.name < n; });
    return it != prev.end() && it->name == name ? &*it : nullptr;
  };

  node->entries.reserve(names.size());
  for (const auto& name : names) {
    std::string child_abs = JoinPath(abs, name);
    std::string child_rel = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        return Status::Conflict("cannot import " + child_abs + ": it was removed while being imported; import again");
      }
      return Status::FromErrno(errno, "cannot import " + child_abs);
    }
    const TreeEntry* old = find_prev(name);
    // Another name of an inode met before (a hard link): checked against the
    // first name's stat, then made a copy of its entry by FinishLinks.
    auto add_link = [&](TreeEntry* entry) -> Result<bool> {
      if (S_ISDIR(st.st_mode) || st.st_nlink < 2 || !AddLink(st, entry, child_rel)) return false;
      const LinkSet& set = links_.at(LinkKey(st));
      if (!StatRecord::Of(set.st).SameFile(StatRecord::Of(st)) || set.st.st_mode != st.st_mode)
        return Status::Conflict("file " + child_abs + " changed while being imported; import again");
      return true;
    };
    if (S_ISREG(st.st_mode)) {
      node->entries.push_back(EntryFromStat(name, EntryKind::kFile, st));
      node->subdirs.emplace_back();
      TreeEntry& entry = node->entries.back();
      result_.files++;
      result_.total_bytes += entry.size;
      TUSK_ASSIGN_OR_RETURN(bool later_name, add_link(&entry));
      if (later_name) continue;
      TUSK_RETURN_IF_ERROR(ReadXattrs(child_abs, &entry));
      // Skip reading when the file is the very one whose content the branch
      // head already holds.
      if (old && old->kind == EntryKind::kFile && old->size == entry.size && old->mtime_sec == entry.mtime_sec &&
          old->mtime_nsec == entry.mtime_nsec) {
        auto cached = stat_cache_.find(child_rel);
        if (cached != stat_cache_.end()) {
          auto rec = StatRecord::Decode(cached->second);
          if (rec && rec->SameFile(StatRecord::Of(st)) && rec->content_digest == ContentDigest(old->chunks)) {
            entry.chunks = old->chunks;
            result_.files_unchanged++;
            continue;
          }
        }
      }
      tasks_.push_back(FileTask{child_abs, child_rel, st, &entry, {}});
      if (st.st_nlink > 1) links_.at(LinkKey(st)).task = &tasks_.back();
    } else if (S_ISDIR(st.st_mode)) {
      int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return Status::FromErrno(errno, "cannot import directory " + child_abs);
      Fd child_fd(fd);
      node->entries.push_back(EntryFromStat(name, EntryKind::kDirectory, st));
      TUSK_RETURN_IF_ERROR(ReadXattrs(child_abs, &node->entries.back()));
      node->subdirs.push_back(std::make_unique<DirNode>());
      std::optional<ObjectId> old_tree;
      if (old && old->kind == EntryKind::kDirectory) old_tree = old->tree;
      TUSK_RETURN_IF_ERROR(Scan(child_fd.get(), child_abs, child_rel, old_tree, node->subdirs.back().get()));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n < 0) return Status::FromErrno(errno, "cannot read symlink " + child_abs);
      if (static_cast<size_t>(n) >= target.size())
        return Status::Conflict("symlink " + child_abs + " changed while being imported; import again");
      target.resize(static_cast<size_t>(n));
      node->entries.push_back(EntryFromStat(name, EntryKind::kSymlink, st));
      node->subdirs.emplace_back();
      TreeEntry& entry = node->entries.back();
      entry.target = target;
      entry.size = target.size();
      TUSK_ASSIGN_OR_RETURN(bool later_name, add_link(&entry));
      if (!later_name) TUSK_RETURN_IF_ERROR(ReadXattrs(child_abs, &entry));
    } else {
      // Fifos, sockets, character and block devices.
      node->entries.push_back(EntryFromStat(name, EntryKind::kSpecial, st));
      node->subdirs.emplace_back();
      TreeEntry& entry = node->entries.back();
      result_.specials++;
      TUSK_ASSIGN_OR_RETURN(bool later_name, add_link(&entry));
      if (!later_name) TUSK_RETURN_IF_ERROR(ReadXattrs(child_abs, &entry));
    }
  }
  return Status::Ok();
}

Status Importer::ReadFile(FileTask* task, ChunkPipeline* pipeline, std::vector<char>* buf) {
  int raw = ::open(task->path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT || errno == ELOOP)
      return Status::Conflict("file " + task->path + " was removed or replaced while being imported; import again");
    return Status::FromErrno(errno, "cannot import " + task->path);
  }
  Fd fd(raw);
  struct stat before;
  if (::fstat(fd.get(), &before) != 0) return Status::FromErrno(errno, "stat " + task->path);
  StatRecord scanned = StatRecord::Of(task->st);
  auto changed = [&] {
    return Status::Conflict("file " + task->path + " changed while being imported; import again");
  };
  if (!StatRecord::Of(before).SameFile(scanned)) return changed();
  uint64_t size = static_cast<uint64_t>(before.st_size);
  // Sparse files: only data extents are chunked; holes become hole refs.
  bool sparse = static_cast<uint64_t>(before.st_blocks) * 512 < size;
  ChunkSourceFile file;
  file.fd = fd.get();
  file.path = task->path;
  if (options_.progress) file.on_bytes = [this](uint64_t n) { options_.progress->bytes_done += n; };
  file.on_short = [task] {
    return Status::Conflict("file " + task->path + " shrank while being imported; import again");
  };
  TUSK_RETURN_IF_ERROR(ChunkFileRange(chunker_, file, 0, size, sparse, pipeline, &task->chunks, buf));
  struct stat after;
  if (::fstat(fd.get(), &after) != 0) return Status::FromErrno(errno, "stat " + task->path);
  if (!StatRecord::Of(after).SameFile(scanned)) return changed();
  result_.files_read++;
  result_.bytes_read += size;
  if (options_.progress) options_.progress->items_done++;
  return Status::Ok();
}

Result<ObjectId> Importer::WriteTrees(DirNode* node, WriteSession* session) {
  for (size_t i = 0; i < node->entries.size(); i++) {
    if (!node->subdirs[i]) continue;
    TUSK_ASSIGN_OR_RETURN(node->entries[i].tree, WriteTrees(node->subdirs[i].get(), session));
    node->entries[i].size = node->subdirs[i]->entries.size();
  }
  return WriteDirectory(*session, node->entries);
}

Result<ImportResult> Importer::Run(const std::string& source, const std::string& branch) {
  start_sec_ = static_cast<int64_t>(::time(nullptr));
  TUSK_ASSIGN_OR_RETURN(std::optional<ObjectId> head, repo_.GetBranch(dataset_, branch));
  if (options_.expected_head && *options_.expected_head != head)
    return Status::Conflict("branch " + dataset_ + "@" + branch + " moved to " + (head ? head->ShortHex() : "(none)") +
                            " since " + (*options_.expected_head ? (*options_.expected_head)->ShortHex() : "(none)") +
                            "; nothing was committed");
  result_.parent = head;
  std::optional<ObjectId> prev_root;
  if (head) {
    TUSK_ASSIGN_OR_RETURN(Commit parent, repo_.ReadCommit(*head));
    prev_root = parent.root;
  }
  int raw = ::open(source.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOTDIR) return Status::InvalidArgument("cannot import " + source + ": not a directory");
    return Status::FromErrno(errno, "cannot import " + source);
  }
  Fd root_fd(raw);
  struct stat root_st;
  if (::fstat(root_fd.get(), &root_st) != 0) return Status::FromErrno(errno, "stat " + source);

  stat_prefix_ = dataset_ + std::string(1, '\0');
  TUSK_ASSIGN_OR_RETURN(stat_cache_, repo_.LoadFileStats(stat_prefix_));
  DirNode root;
  TUSK_RETURN_IF_ERROR(Scan(root_fd.get(), source, "", prev_root, &root));
  stat_cache_.clear();
  if (unrecorded_xattr_entries_ > 0)
    Warn("xattrs outside the user.* namespace are not recorded: " + std::to_string(unrecorded_xattr_entries_) +
         (unrecorded_xattr_entries_ == 1 ? " entry has" : " entries have") +
         " some (the first: " + first_unrecorded_xattr_ + ")");

  if (options_.progress) {
    uint64_t total = 0;
    for (const auto& t : tasks_) total += static_cast<uint64_t>(t.st.st_size);
    options_.progress->bytes_total = total;
    options_.progress->items_total = tasks_.size();
  }
  std::unique_ptr<WriteSession> owned_session;
  WriteSession* session = options_.session;
  if (!session) {
    TUSK_ASSIGN_OR_RETURN(owned_session, repo_.BeginWrite());
    session = owned_session.get();
  }
  const uint64_t objects_before = session->new_objects(), bytes_before = session->new_stored_bytes();
  unsigned threads = options_.threads ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
  {
    ChunkPipeline pipeline(session, threads);
    std::vector<char> buffer(std::max<size_t>(8 << 20, 2 * chunker_.params().max_size));
    Status st;
    for (auto& task : tasks_) {
      st = ReadFile(&task, &pipeline, &buffer);
      if (!st.ok()) break;
    }
    Status finished = pipeline.Finish();
    TUSK_RETURN_IF_ERROR(st);
    TUSK_RETURN_IF_ERROR(finished);
  }
  for (auto& task : tasks_) {
    task.entry->chunks.assign(task.chunks.begin(), task.chunks.end());
    if (task.st.st_ctim.tv_sec < start_sec_ - kRacyMarginSec) {
      StatRecord rec = StatRecord::Of(task.st);
      rec.content_digest = ContentDigest(task.entry->chunks);
      session->RememberFileStat(stat_prefix_ + task.rel, rec.Encode());
    }
  }
  TUSK_RETURN_IF_ERROR(FinishLinks(session));
  TUSK_ASSIGN_OR_RETURN(ObjectId root_tree, WriteTrees(&root, session));
  result_.new_objects = session->new_objects() - objects_before;
  result_.new_stored_bytes = session->new_stored_bytes() - bytes_before;
  if (prev_root && *prev_root == root_tree && !options_.commit_unchanged) {
    TUSK_RETURN_IF_ERROR(session->Flush());
    return result_;
  }
  Commit commit;
  commit.dataset = dataset_;
  commit.root = root_tree;
  if (head) commit.parents.push_back(*head);
  commit.author = options_.author;
  commit.time_sec = static_cast<int64_t>(::time(nullptr));
  commit.message = options_.message;
  commit.metadata = options_.metadata;
  commit.provenance = options_.provenance;
  commit.run = options_.run;
  commit.file_count = result_.files;
  commit.total_bytes = result_.total_bytes;
  if (options_.prepare_commit) TUSK_RETURN_IF_ERROR(options_.prepare_commit(&commit, *session));
  TUSK_ASSIGN_OR_RETURN(ObjectId id, session->CommitToBranch(commit, branch, head));
  result_.commit = id;
  result_.new_objects = session->new_objects() - objects_before;
  result_.new_stored_bytes = session->new_stored_bytes() - bytes_before;
  return result_;
}

}  // namespace

Result<ImportResult> ImportDirectory(Repository& repo, const std::string& source, const std::string& dataset,
                                     const std::string& branch, const ImportOptions& options) {
  TUSK_RETURN_IF_ERROR(repo.CheckDataset(dataset));
  TUSK_RETURN_IF_ERROR(ValidateName("branch", branch));
  Importer importer(repo, dataset, options);
  return importer.Run(source, branch);
}

}  // namespace tusk
