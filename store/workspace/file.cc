// Open files of a workspace: sidecars, the store reader, FileNode and WsFile.
//
// A FileNode is shared by every WsFile of one file. Reads take each chunk
// from where its sidecar state says; a write first copies the touched
// chunks' plaintext into the upper file and then sets their state bytes (in
// that order, so a crash in between leaves a chunk that is read from the
// store, with the old content), except that chunks a write covers whole are
// written first and marked after.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "store/workspace/workspace_core.h"

namespace tusk {
namespace ws {

// ---- Sidecar ----

namespace {
constexpr char kSidecarMagic[] = "TUSKWSM1";
constexpr size_t kMaxCachedChunks = 8;
constexpr size_t kMaxCachedPages = 512;
}  // namespace

std::vector<uint64_t> OffsetsOf(const std::vector<ChunkRef>& chunks) {
  std::vector<uint64_t> offsets;
  offsets.reserve(chunks.size());
  uint64_t pos = 0;
  for (const auto& c : chunks) {
    offsets.push_back(pos);
    pos += c.length;
  }
  return offsets;
}

Sidecar Sidecar::Fresh(const std::vector<ChunkRef>& chunks) {
  Sidecar s;
  s.chunks = chunks;
  s.offsets = OffsetsOf(chunks);
  s.state.assign(chunks.size(), 0);
  return s;
}

std::string Sidecar::Encode() const {
  std::string out(kSidecarMagic, 8);
  uint64_t n = chunks.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  for (const auto& c : chunks) {
    out.append(c.id.view());
    out.append(reinterpret_cast<const char*>(&c.length), 8);
  }
  out.append(reinterpret_cast<const char*>(state.data()), state.size());
  return out;
}

Result<Sidecar> Sidecar::Decode(std::string_view bytes, const std::string& what) {
  auto bad = [&] { return Status::Corruption(what + ": not a valid sidecar"); };
  if (bytes.size() < 16 || bytes.substr(0, 8) != std::string_view(kSidecarMagic, 8)) return bad();
  uint64_t n;
  std::memcpy(&n, bytes.data() + 8, 8);
  if (n > (bytes.size() - 16) / 41 || bytes.size() != 16 + 41 * n) return bad();
  Sidecar s;
  s.chunks.resize(n);
  const char* p = bytes.data() + 16;
  for (uint64_t i = 0; i < n; i++, p += 40) {
    s.chunks[i].id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(p));
    std::memcpy(&s.chunks[i].length, p + 32, 8);
  }
  s.state.assign(p, p + n);
  for (auto& b : s.state)
    if (b > 1) return bad();
  s.offsets = OffsetsOf(s.chunks);
  return s;
}

size_t Sidecar::FirstEndingAfter(uint64_t offset) const {
  // offsets are sorted; the chunk containing `offset` starts at or before it.
  auto it = std::upper_bound(offsets.begin(), offsets.end(), offset);
  size_t i = it == offsets.begin() ? 0 : static_cast<size_t>(it - offsets.begin()) - 1;
  while (i < chunks.size() && End(i) <= offset) i++;
  return i;
}

void Sidecar::CutAt(uint64_t size) {
  for (size_t i = FirstEndingAfter(size); i < chunks.size(); i++) state[i] = 1;
}

uint64_t Sidecar::StoreBytes() const {
  uint64_t n = 0;
  for (size_t i = 0; i < chunks.size(); i++)
    if (state[i] == 0 && !chunks[i].IsHole()) n += chunks[i].length;
  return n;
}

// ---- StoreReader ----

Result<std::string> StoreReader::ReadObject(const ObjectId& id, ObjectType type) { return repo_->ReadObject(id, type); }

Result<std::shared_ptr<const TreePage>> StoreReader::Page(const ObjectId& id) {
  {
    std::lock_guard lock(mu_);
    auto it = page_index_.find(id);
    if (it != page_index_.end()) {
      pages_.splice(pages_.begin(), pages_, it->second);
      return pages_.front().second;
    }
  }
  TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_->ReadObject(id, ObjectType::kTree));
  auto decoded = DecodeTreePage(bytes);
  if (!decoded.ok()) return decoded.status().Annotate("tree " + id.ShortHex());
  auto page = std::make_shared<const TreePage>(std::move(decoded).value());
  std::lock_guard lock(mu_);
  if (page_index_.count(id)) return page;
  pages_.emplace_front(id, page);
  page_index_[id] = pages_.begin();
  if (pages_.size() > kMaxCachedPages) {
    page_index_.erase(pages_.back().first);
    pages_.pop_back();
  }
  return page;
}

Result<std::optional<TreeEntry>> StoreReader::Lookup(const ObjectId& root, std::string_view name) {
  ObjectId id = root;
  for (int depth = 0; depth < 64; depth++) {
    TUSK_ASSIGN_OR_RETURN(auto page, Page(id));
    if (!page->is_index) {
      auto it = std::lower_bound(page->entries.begin(), page->entries.end(), name,
                                 [](const TreeEntry& t, std::string_view n) { return t.name < n; });
      if (it != page->entries.end() && it->name == name) return std::optional<TreeEntry>(*it);
      return std::optional<TreeEntry>();
    }
    // The last child whose first name is <= name.
    auto it = std::upper_bound(page->children.begin(), page->children.end(), name,
                               [](std::string_view n, const TreePage::Child& c) { return n < c.first_name; });
    if (it == page->children.begin()) return std::optional<TreeEntry>();
    id = std::prev(it)->id;
  }
  return Status::Corruption("tree " + root.ShortHex() + " is nested too deeply");
}

Status StoreReader::ForEach(const ObjectId& root, const std::function<bool(const TreeEntry&)>& fn) {
  bool stop = false;
  std::function<Status(const ObjectId&, int)> visit = [&](const ObjectId& id, int depth) -> Status {
    if (depth > 64) return Status::Corruption("tree " + root.ShortHex() + " is nested too deeply");
    TUSK_ASSIGN_OR_RETURN(auto page, Page(id));
    if (!page->is_index) {
      for (const auto& t : page->entries)
        if (!fn(t)) {
          stop = true;
          break;
        }
      return Status::Ok();
    }
    for (const auto& c : page->children) {
      TUSK_RETURN_IF_ERROR(visit(c.id, depth + 1));
      if (stop) break;
    }
    return Status::Ok();
  };
  return visit(root, 0);
}

Result<std::shared_ptr<const std::string>> StoreReader::ReadChunk(const ObjectId& id) {
  {
    std::lock_guard lock(mu_);
    for (auto it = chunks_.begin(); it != chunks_.end(); ++it) {
      if (it->first != id) continue;
      chunks_.splice(chunks_.begin(), chunks_, it);
      return chunks_.front().second;
    }
  }
  TUSK_ASSIGN_OR_RETURN(std::string bytes, repo_->ReadObject(id, ObjectType::kChunk));
  auto data = std::make_shared<const std::string>(std::move(bytes));
  std::lock_guard lock(mu_);
  chunks_.emplace_front(id, data);
  if (chunks_.size() > kMaxCachedChunks) chunks_.pop_back();
  return data;
}

Status StoreReader::ReadChunkPart(const ChunkRef& chunk, uint64_t offset, size_t len, char* out) {
  if (chunk.IsHole()) {
    std::memset(out, 0, len);
    return Status::Ok();
  }
  if (len * 4 < chunk.length) {
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, data] : chunks_)
        if (id == chunk.id) {
          TUSK_RETURN_IF_ERROR(CheckChunkLength(chunk, data->size()));
          std::memcpy(out, data->data() + offset, len);
          return Status::Ok();
        }
    }
    // Small reads fetch only the blocks or frames they touch.
    auto part = repo_->ReadChunkRange(chunk, offset, len);
    if (part.ok()) {
      std::memcpy(out, part->data(), len);
      return Status::Ok();
    }
    if (part.status().code() != Status::Code::kUnsupported) return part.status();
  }
  TUSK_ASSIGN_OR_RETURN(auto data, ReadChunk(chunk.id));
  TUSK_RETURN_IF_ERROR(CheckChunkLength(chunk, data->size()));
  std::memcpy(out, data->data() + offset, len);
  return Status::Ok();
}

Status StoreReader::ReadChunks(const std::vector<ChunkRef>& chunks, const std::vector<uint64_t>& offsets,
                               uint64_t offset, size_t len, char* out) {
  auto it = std::upper_bound(offsets.begin(), offsets.end(), offset);
  size_t i = it == offsets.begin() ? 0 : static_cast<size_t>(it - offsets.begin()) - 1;
  uint64_t end = offset + len;
  for (; i < chunks.size() && offset < end; i++) {
    uint64_t cend = offsets[i] + chunks[i].length;
    if (cend <= offset) continue;
    size_t n = static_cast<size_t>(std::min(cend, end) - offset);
    TUSK_RETURN_IF_ERROR(ReadChunkPart(chunks[i], offset - offsets[i], n, out));
    out += n;
    offset += n;
  }
  if (offset < end) std::memset(out, 0, static_cast<size_t>(end - offset));
  return Status::Ok();
}

// ---- FileNode ----

namespace {

// Reads [offset, offset + len); what lies past the end of the file (a
// truncate racing with the read) reads as zeros.
Status ReadFilling(int fd, char* out, size_t len, uint64_t offset, const std::string& what) {
  while (len > 0) {
    ssize_t n = ::pread(fd, out, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + what);
    }
    if (n == 0) {
      std::memset(out, 0, len);
      break;
    }
    out += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Writes as much of `data` at `offset` as the file system takes; returns
// the count written and sets *err to the error that stopped it (if any).
size_t PwriteSome(int fd, std::string_view data, uint64_t offset, int* err) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (n == 0) {
      *err = ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace

Result<uint64_t> FileNode::Size() {
  if (!fd.valid()) return base.size;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat open file " + label);
  return static_cast<uint64_t>(st.st_size);
}

Status FileNode::SetState(size_t i) {
  if (side.state[i]) return Status::Ok();
  if (meta_fd.valid()) {
    uint8_t one = 1;
    TUSK_RETURN_IF_ERROR(PwriteAll(meta_fd.get(), &one, 1, side.StateOffset(i), "sidecar " + meta_id));
  }
  side.state[i] = 1;
  return Status::Ok();
}

Status FileNode::CopyChunk(size_t i) {
  if (side.state[i]) return Status::Ok();
  const ChunkRef& c = side.chunks[i];
  uint64_t at = side.offsets[i];
  if (c.IsHole()) {
    // The upper file must read zeros there; it may hold data from before a
    // commit reset the state.
    if (::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(at),
                    static_cast<off_t>(c.length)) != 0) {
      if (errno != EOPNOTSUPP) return Status::FromErrno(errno, "punch hole in " + label);
      std::string zeros(std::min<uint64_t>(c.length, 1 << 20), '\0');
      for (uint64_t done = 0; done < c.length;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), c.length - done));
        TUSK_RETURN_IF_ERROR(PwriteAll(fd.get(), zeros.data(), n, at + done, label));
        done += n;
      }
    }
  } else {
    TUSK_ASSIGN_OR_RETURN(auto data, core->store.ReadChunk(c.id));
    if (data->size() != c.length) return Status::Corruption("chunk " + c.id.Hex() + " is not as long as listed");
    TUSK_RETURN_IF_ERROR(PwriteAll(fd.get(), data->data(), data->size(), at, label));
  }
  return SetState(i);
}

Result<WsAttr> FileNode::StatLocked() {
  if (!fd.valid()) {
    Lookup l;
    l.rel = label;
    l.base = base;
    return core->AttrOf(l);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat open file " + label);
  TUSK_RETURN_IF_ERROR(core->ShowOwner(label, fd.get(), &st));
  WsAttr a = UpperAttr(st);
  if (has_meta) a.blocks += (side.StoreBytes() + 511) / 512;
  return a;
}

// ---- the node registry ----

std::vector<std::shared_ptr<FileNode>> WsCore::LiveNodes() {
  std::lock_guard lock(nodes_mu_);
  std::vector<std::shared_ptr<FileNode>> out;
  std::vector<std::weak_ptr<FileNode>> kept;
  for (auto& w : nodes_) {
    if (auto n = w.lock()) {
      out.push_back(n);
      kept.push_back(w);
    }
  }
  nodes_.swap(kept);
  return out;
}

void WsCore::RegisterNode(const std::shared_ptr<FileNode>& node) {
  std::lock_guard lock(nodes_mu_);
  nodes_.push_back(node);
}

std::shared_ptr<FileNode> WsCore::FindNodeByPath(const std::string& rel) {
  for (auto& n : LiveNodes())
    if (!n->detached && n->path == rel) return n;
  return nullptr;
}

std::shared_ptr<FileNode> WsCore::FindNodeByInode(uint64_t dev, uint64_t ino) {
  for (auto& n : LiveNodes())
    if (n->ino == ino && n->dev == dev && ino != 0) return n;
  return nullptr;
}

Status WsCore::RemoveSidecarsExcept(const std::set<std::string>& keep) {
  TUSK_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(meta_dir_fd.get(), meta_path));
  for (const auto& n : names)
    if (!keep.count(n)) ::unlinkat(meta_dir_fd.get(), n.c_str(), 0);
  return Status::Ok();
}

Result<std::string> WsCore::ReadSidecarFile(const std::string& id) {
  int raw = ::openat(meta_dir_fd.get(), id.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open sidecar " + id);
  Fd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat sidecar " + id);
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  TUSK_RETURN_IF_ERROR(PreadAll(fd.get(), bytes.data(), bytes.size(), 0, "sidecar " + id));
  return bytes;
}

Status WsCore::LoadUpper(FileNode* node, Fd fd) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + node->path);
  char buf[128];
  ssize_t n = ::fgetxattr(fd.get(), kMetaXattr, buf, sizeof buf);
  if (n < 0 && errno != ENODATA) return Status::FromErrno(errno, "read sidecar name of " + node->path);
  if (n >= 0) {
    std::string id(buf, static_cast<size_t>(n));
    int raw = ::openat(meta_dir_fd.get(), id.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (raw < 0) return Status::FromErrno(errno, "open sidecar " + id + " of " + node->path);
    Fd meta(raw);
    TUSK_ASSIGN_OR_RETURN(std::string bytes, ReadSidecarFile(id));
    TUSK_ASSIGN_OR_RETURN(Sidecar side, Sidecar::Decode(bytes, "sidecar " + id + " of " + node->path));
    node->side = std::move(side);
    node->meta_fd = std::move(meta);
    node->meta_id = id;
    node->has_meta = true;
    // A crash during a truncate may leave state-0 chunks beyond the size.
    for (size_t i = node->side.FirstEndingAfter(static_cast<uint64_t>(st.st_size)); i < node->side.chunks.size(); i++)
      TUSK_RETURN_IF_ERROR(node->SetState(i));
  }
  node->dev = st.st_dev;
  node->ino = st.st_ino;
  node->fd = std::move(fd);
  return Status::Ok();
}

Status WsCore::AttachNodes(const std::string& rel, int fd) {
  for (auto& n : LiveNodes()) {
    if (n->detached || n->path != rel) continue;
    std::lock_guard lock(n->mu);
    if (n->fd.valid()) continue;
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return Status::FromErrno(errno, "dup");
    TUSK_RETURN_IF_ERROR(LoadUpper(n.get(), Fd(dup)));
  }
  return Status::Ok();
}

Result<std::shared_ptr<FileNode>> WsCore::NodeFor(const Lookup& l) {
  if (!l.exists()) return Err(ENOENT, "open", l.rel);
  if (l.is_dir()) return Err(EISDIR, "open", l.rel);
  if (S_ISLNK(l.mode())) return Err(ELOOP, "open (a symlink)", l.rel);
  if (!S_ISREG(l.mode())) return Err(EINVAL, "open (not a regular file)", l.rel);
  if (!l.in_upper) {
    if (auto n = FindNodeByPath(l.rel)) {
      std::lock_guard lock(n->mu);
      if (!n->fd.valid()) return n;
    }
    auto node = std::make_shared<FileNode>(this);
    node->path = node->label = l.rel;
    node->base = *l.base;
    node->base_offsets = OffsetsOf(node->base.chunks);
    RegisterNode(node);
    return node;
  }
  if (auto n = FindNodeByInode(l.st.st_dev, l.st.st_ino)) {
    if (n->detached) {
      // Unlinked once, linked again (hard link): it has a name again.
      n->detached = false;
      n->path = l.rel;
    }
    return n;
  }
  TUSK_ASSIGN_OR_RETURN(UpperAt at, At(l.rel));
  int raw = ::openat(at.fd(), at.c_name(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0 && errno == EACCES) raw = ::openat(at.fd(), at.c_name(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return Err(errno, "open", l.rel);
  auto node = std::make_shared<FileNode>(this);
  node->path = node->label = l.rel;
  {
    std::lock_guard lock(node->mu);
    TUSK_RETURN_IF_ERROR(LoadUpper(node.get(), Fd(raw)));
  }
  RegisterNode(node);
  return node;
}

Status WsCore::CopyUpNode(const std::shared_ptr<FileNode>& node) {
  std::lock_guard lock(mu);
  return CopyUpNodeLocked(node);
}

Status WsCore::CopyUpNodeLocked(const std::shared_ptr<FileNode>& node) {
  {
    std::lock_guard nl(node->mu);
    if (node->fd.valid()) return Status::Ok();
    if (node->detached) {
      // No name any more: an anonymous metacopy only this node sees.
      int raw = ::openat(upper_fd.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
      if (raw < 0) return Status::FromErrno(errno, "create an anonymous file in " + upper_path);
      Fd fd(raw);
      const TreeEntry& e = node->base;
      struct timespec t = {e.mtime_sec, static_cast<long>(e.mtime_nsec)};
      struct timespec times[2] = {t, t};
      if (::ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0)
        return Status::FromErrno(errno, "prepare an anonymous copy of " + e.name);
      TUSK_RETURN_IF_ERROR(SetOwner(node->label, fd.get(), e.uid, e.gid));
      if (::fchmod(fd.get(), e.mode & 07777) != 0 || ::futimens(fd.get(), times) != 0)
        return Status::FromErrno(errno, "prepare an anonymous copy of " + e.name);
      struct stat st;
      if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat");
      node->side = Sidecar::Fresh(e.chunks);
      node->has_meta = true;
      node->dev = st.st_dev;
      node->ino = st.st_ino;
      node->fd = std::move(fd);
      return Status::Ok();
    }
  }
  TUSK_ASSIGN_OR_RETURN(Lookup l, Resolve(node->path));
  if (l.base_only()) {
    if (l.base->kind != EntryKind::kFile) return Err(EINVAL, "copy up (not a regular file)", l.rel);
    TUSK_RETURN_IF_ERROR(CopyUp(l));
  } else if (l.in_upper && S_ISREG(l.st.st_mode)) {
    TUSK_ASSIGN_OR_RETURN(UpperAt at, At(l.rel));
    int raw = ::openat(at.fd(), at.c_name(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (raw < 0) return Err(errno, "open", l.rel);
    TUSK_RETURN_IF_ERROR(AttachNodes(l.rel, raw));
    ::close(raw);
  } else {
    return Err(ENOENT, "copy up", l.rel);
  }
  std::lock_guard nl(node->mu);
  if (!node->fd.valid()) return Err(EIO, "copy up did not reach the open file", l.rel);
  return Status::Ok();
}

Status WsCore::TruncateNode(FileNode* node, uint64_t size) {
  std::lock_guard lock(node->mu);
  TUSK_ASSIGN_OR_RETURN(uint64_t old_size, node->Size());
  if (node->has_meta && size < old_size) {
    // The chunk the new end cuts keeps its head: copy it up first.
    size_t i = node->side.FirstEndingAfter(size);
    if (i < node->side.chunks.size() && node->side.offsets[i] < size) TUSK_RETURN_IF_ERROR(node->CopyChunk(i));
  }
  if (::ftruncate(node->fd.get(), static_cast<off_t>(size)) != 0)
    return Status::FromErrno(errno, "truncate " + node->label);
  if (node->has_meta) {
    for (size_t i = node->side.FirstEndingAfter(size); i < node->side.chunks.size(); i++)
      TUSK_RETURN_IF_ERROR(node->SetState(i));
  }
  return Status::Ok();
}

// ---- WsFile ----

namespace {

class WsFileImpl : public WsFile {
 public:
  WsFileImpl(std::shared_ptr<WsCore> core, std::shared_ptr<FileNode> node, bool writable)
      : core_(std::move(core)), node_(std::move(node)), writable_(writable) {}

  Result<std::string> Read(uint64_t offset, size_t len) override {
    // Chunk lists change only under an exclusive freeze (a commit), so they
    // can be read without the node's lock while the freeze is held shared.
    std::shared_lock freeze(core_->freeze);
    FileNode& n = *node_;
    std::unique_lock lock(n.mu);
    TUSK_ASSIGN_OR_RETURN(uint64_t size, n.Size());
    if (offset >= size) return std::string();
    len = static_cast<size_t>(std::min<uint64_t>(len, size - offset));
    std::string out(len, '\0');
    if (!n.fd.valid()) {
      lock.unlock();  // the base entry never changes
      TUSK_RETURN_IF_ERROR(core_->store.ReadChunks(n.base.chunks, n.base_offsets, offset, len, out.data()));
      return out;
    }
    if (!n.has_meta) {
      lock.unlock();
      TUSK_RETURN_IF_ERROR(ReadFilling(n.fd.get(), out.data(), len, offset, n.label));
      return out;
    }
    // Per chunk: from the store or from the upper file.
    struct Piece {
      uint64_t pos;
      size_t len;
      size_t chunk;  // SIZE_MAX: from the upper file
    };
    std::vector<Piece> pieces;
    uint64_t end = offset + len;
    for (size_t i = n.side.FirstEndingAfter(offset), pos = offset; pos < end; i++) {
      uint64_t piece_end = i < n.side.chunks.size() ? std::min(end, n.side.End(i)) : end;
      bool from_store = i < n.side.chunks.size() && n.side.state[i] == 0;
      pieces.push_back({pos, static_cast<size_t>(piece_end - pos), from_store ? i : SIZE_MAX});
      pos = piece_end;
    }
    lock.unlock();
    for (const auto& p : pieces) {
      char* dst = out.data() + (p.pos - offset);
      if (p.chunk != SIZE_MAX) {
        TUSK_RETURN_IF_ERROR(
            core_->store.ReadChunkPart(n.side.chunks[p.chunk], p.pos - n.side.offsets[p.chunk], p.len, dst));
      } else {
        TUSK_RETURN_IF_ERROR(ReadFilling(n.fd.get(), dst, p.len, p.pos, n.label));
      }
    }
    return out;
  }

  Result<size_t> Write(uint64_t offset, std::string_view data) override {
    if (!writable_) return Status::FromErrno(EBADF, "write to a file opened read-only");
    if (data.empty()) return size_t{0};
    TUSK_RETURN_IF_ERROR(core_->CopyUpNode(node_));
    std::shared_lock freeze(core_->freeze);
    FileNode& n = *node_;
    std::lock_guard lock(n.mu);
    uint64_t end = offset + data.size();
    std::vector<size_t> covered;  // state-0 chunks the write replaces whole
    if (n.has_meta) {
      for (size_t i = n.side.FirstEndingAfter(offset); i < n.side.chunks.size() && n.side.offsets[i] < end; i++) {
        if (n.side.state[i]) continue;
        if (n.side.offsets[i] >= offset && n.side.End(i) <= end)
          covered.push_back(i);
        else
          TUSK_RETURN_IF_ERROR(n.CopyChunk(i));
      }
    }
    int err = 0;
    size_t written = PwriteSome(n.fd.get(), data, offset, &err);
    // What a local file system does when the disk fills mid-write: a short
    // count for what was written, an error only if nothing was. A covered
    // chunk the write stopped inside still reads from the store (its state
    // is 0), so the count stops where that chunk starts. Such a chunk lies
    // within the old size, so the file did not grow past what is counted.
    uint64_t acked_end = offset + written;
    for (size_t i : covered)
      if (n.side.End(i) > acked_end) {
        acked_end = std::min(acked_end, n.side.offsets[i]);
        break;
      }
    for (size_t i : covered)
      if (n.side.End(i) <= acked_end) TUSK_RETURN_IF_ERROR(n.SetState(i));
    if (acked_end == offset && err != 0) return Status::FromErrno(err, "write " + n.label);
    return static_cast<size_t>(acked_end - offset);
  }

  Status Truncate(uint64_t size) override {
    if (!writable_) return Status::FromErrno(EBADF, "truncate a file opened read-only");
    TUSK_RETURN_IF_ERROR(core_->CopyUpNode(node_));
    std::shared_lock freeze(core_->freeze);
    return core_->TruncateNode(node_.get(), size);
  }

  Status Allocate(int mode, uint64_t offset, uint64_t length) override {
    if (!writable_) return Status::FromErrno(EBADF, "fallocate on a file opened read-only");
    const int zero_modes = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    bool known = (mode & ~(FALLOC_FL_KEEP_SIZE | zero_modes)) == 0 && (mode & zero_modes) != zero_modes &&
                 (!(mode & FALLOC_FL_PUNCH_HOLE) || (mode & FALLOC_FL_KEEP_SIZE));
    if (!known) return Status::FromErrno(EOPNOTSUPP, "fallocate mode " + std::to_string(mode));
    if (length == 0) return Status::FromErrno(EINVAL, "fallocate of length 0");
    if (offset > static_cast<uint64_t>(INT64_MAX) || length > static_cast<uint64_t>(INT64_MAX) - offset)
      return Status::FromErrno(EFBIG, "fallocate beyond the largest file size");
    TUSK_RETURN_IF_ERROR(core_->CopyUpNode(node_));
    std::shared_lock freeze(core_->freeze);
    FileNode& n = *node_;
    std::lock_guard lock(n.mu);
    // Zeroing changes content: like a write of zeros, chunks the range cuts
    // are copied up first and chunks it covers are marked after, so a crash
    // in between leaves the committed bytes. Reserving space changes none:
    // unchanged chunks still read from the store, the blocks under them
    // wait for a write.
    std::vector<size_t> covered;
    uint64_t end = offset + length;
    if (n.has_meta && (mode & zero_modes)) {
      for (size_t i = n.side.FirstEndingAfter(offset); i < n.side.chunks.size() && n.side.offsets[i] < end; i++) {
        if (n.side.state[i]) continue;
        if (n.side.offsets[i] >= offset && n.side.End(i) <= end)
          covered.push_back(i);
        else
          TUSK_RETURN_IF_ERROR(n.CopyChunk(i));
      }
    }
    if (::fallocate(n.fd.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0)
      return Status::FromErrno(errno, "fallocate " + n.label);
    for (size_t i : covered) TUSK_RETURN_IF_ERROR(n.SetState(i));
    return Status::Ok();
  }

  Status Fsync(bool data_only) override {
    std::string path;
    bool linked, name_durable;
    {
      std::lock_guard lock(node_->core->mu);
      linked = !node_->detached;
      path = node_->path;
      name_durable = linked && node_->durable_path == path;
    }
    {
      std::lock_guard lock(node_->mu);
      auto sync = [&](int fd, const std::string& what) -> Status {
        if ((data_only ? ::fdatasync(fd) : ::fsync(fd)) != 0) return Status::FromErrno(errno, "fsync " + what);
        return Status::Ok();
      };
      if (!node_->fd.valid()) return Status::Ok();  // still the committed file: nothing staged
      TUSK_RETURN_IF_ERROR(sync(node_->fd.get(), node_->label));
      if (node_->meta_fd.valid()) TUSK_RETURN_IF_ERROR(sync(node_->meta_fd.get(), "sidecar " + node_->meta_id));
    }
    // As on a local file system, a synced file is found after a power loss:
    // its name (made by a copy-up or a create) is durable too.
    if (!linked) return Status::Ok();
    if (name_durable) return node_->core->SyncNewSidecars();
    TUSK_RETURN_IF_ERROR(node_->core->SyncUpperNames(ParentOf(path)));
    std::lock_guard lock(node_->core->mu);
    if (!node_->detached && node_->path == path) node_->durable_path = path;
    return Status::Ok();
  }

  Result<WsAttr> Stat() override {
    std::lock_guard lock(node_->mu);
    return node_->StatLocked();
  }

  Status DropSetIdForWrite() override {
    if (!writable_) return Status::Ok();
    auto cleared = [](uint32_t mode) {
      mode &= ~static_cast<uint32_t>(S_ISUID);
      if (mode & S_IXGRP) mode &= ~static_cast<uint32_t>(S_ISGID);
      return mode;
    };
    FileNode& n = *node_;
    {
      std::lock_guard lock(n.mu);
      uint32_t mode = n.base.mode;
      if (n.fd.valid()) {
        struct stat st;
        if (::fstat(n.fd.get(), &st) != 0) return Status::FromErrno(errno, "stat open file " + n.label);
        mode = st.st_mode;
      }
      if (cleared(mode) == mode) return Status::Ok();
    }
    TUSK_RETURN_IF_ERROR(core_->CopyUpNode(node_));
    std::shared_lock freeze(core_->freeze);
    std::lock_guard lock(n.mu);
    struct stat st;
    if (::fstat(n.fd.get(), &st) != 0) return Status::FromErrno(errno, "stat open file " + n.label);
    if (cleared(st.st_mode) != st.st_mode && ::fchmod(n.fd.get(), cleared(st.st_mode) & 07777) != 0)
      return Status::FromErrno(errno, "clear setuid/setgid of " + n.label);
    return Status::Ok();
  }

 private:
  std::shared_ptr<WsCore> core_;  // declared first: outlives node_
  std::shared_ptr<FileNode> node_;
  bool writable_;
};

}  // namespace

Result<std::unique_ptr<WsFile>> WsCore::MakeFile(std::shared_ptr<FileNode> node, bool writable) {
  std::shared_ptr<WsCore> me = self.lock();
  if (!me) return Status::Corruption("workspace is closing");
  return std::unique_ptr<WsFile>(new WsFileImpl(std::move(me), std::move(node), writable));
}

// ---- node paths under namespace changes (need mu) ----

void WsCore::RenameNodes(const std::string& from, const std::string& to, bool exchange) {
  auto moved = [](const std::string& path, const std::string& a, const std::string& b, std::string* out) {
    if (path == a) {
      *out = b;
      return true;
    }
    if (path.size() > a.size() && path.compare(0, a.size(), a) == 0 && path[a.size()] == '/') {
      *out = b + path.substr(a.size());
      return true;
    }
    return false;
  };
  for (auto& n : LiveNodes()) {
    if (n->detached) continue;
    std::string next;
    if (moved(n->path, from, to, &next)) {
      n->path = next;
    } else if (moved(n->path, to, from, &next)) {
      if (exchange) {
        n->path = next;
      } else if (n->path == to) {
        n->detached = true;  // replaced by the rename
        n->path.clear();
      }
    }
  }
}

void WsCore::DetachNodesAt(const std::string& rel) {
  for (auto& n : LiveNodes()) {
    if (n->detached || n->path != rel) continue;
    n->detached = true;
    n->path.clear();
  }
}

void WsCore::DetachAllNodes() {
  for (auto& n : LiveNodes()) {
    n->detached = true;
    n->path.clear();
  }
}

}  // namespace ws
}  // namespace tusk
