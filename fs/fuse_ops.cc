#include "fs/fuse_ops.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include <cstring>
#include <new>

namespace tusk::fs {
namespace {

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }

// Called by the requests a reader sends before its first read (a file's
// readahead window is fixed when it is opened, so raising it at the first
// read would leave the first files with the kernel's default).
void AfterInit(FuseContext* ctx) {
  if (ctx->after_init) std::call_once(ctx->after_init_once, ctx->after_init);
}

// Runs a handler; anything thrown becomes an error reply. Handlers reply as
// their last action, so a throw means no reply has been sent yet.
template <typename F>
void Guard(fuse_req_t req, F&& handler) {
  try {
    handler();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (...) {
    fuse_reply_err(req, EIO);
  }
}

// Forget has no error reply: the request is answered with fuse_reply_none
// whatever happens, and nothing may unwind through libfuse.
template <typename F>
void GuardNoReply(fuse_req_t req, F&& handler) {
  try {
    handler();
  } catch (...) {
  }
  fuse_reply_none(req);
}

struct stat ToStat(const Attr& a) {
  struct stat st;
  std::memset(&st, 0, sizeof st);
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_blksize = 128 * 1024;
  st.st_rdev = static_cast<dev_t>(a.rdev);
  st.st_mtim.tv_sec = a.mtime_sec;
  st.st_mtim.tv_nsec = a.mtime_nsec;
  st.st_ctim = st.st_mtim;
  st.st_atim = st.st_mtim;
  if (a.atime) st.st_atim = {a.atime->sec, a.atime->nsec};
  if (a.ctime) st.st_ctim = {a.ctime->sec, a.ctime->nsec};
  return st;
}

fuse_entry_param ToEntry(const EntryReply& r) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = r.attr.ino;
  e.generation = 1;
  e.attr = ToStat(r.attr);
  e.attr_timeout = r.attr_timeout;
  e.entry_timeout = r.entry_timeout;
  return e;
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  // Committed files never change: zero-message opens keep the page cache
  // and save two round trips per file.
  // A run's view must see every open (the page cache may still keep data).
  if ((conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) && !ctx->workspaces && !ctx->read_log) ctx->no_open = true;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_AUTO_INVAL_DATA);  // nothing changes under the kernel
  // No writeback cache for workspaces: with it the kernel keeps its own
  // mtimes and never sends them (measured: what programs see and what gets
  // committed differed by microseconds), and it did not speed up 1 MiB
  // sequential writes here (670 vs 555 MB/s, within the noise).
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  conn->max_read = 1 << 20;  // must match the max_read mount option
  // libfuse derives the largest request (max_pages) from max_write: without
  // this, reads are cut into 128 KiB pieces.
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] {
    AfterInit(Ctx(req));
    auto r = Ctx(req)->fs->Lookup(parent, name);
    if (r.ok()) {
      fuse_entry_param e = ToEntry(*r);
      fuse_reply_entry(req, &e);
      return;
    }
    if (r.status().code() == Status::Code::kNotFound && Ctx(req)->fs->IsImmutableDir(parent)) {
      // A name missing from a commit stays missing: let the kernel cache that.
      fuse_entry_param e;
      std::memset(&e, 0, sizeof e);
      e.entry_timeout = kImmutableTimeout;
      fuse_reply_entry(req, &e);
      return;
    }
    fuse_reply_err(req, ErrnoOf(r.status()));
  });
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  GuardNoReply(req, [&] { Ctx(req)->fs->Forget(ino, nlookup); });
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  GuardNoReply(req, [&] {
    for (size_t i = 0; i < count; i++) Ctx(req)->fs->Forget(forgets[i].ino, forgets[i].nlookup);
  });
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] {
    auto r = Ctx(req)->fs->GetAttr(ino, fi ? fi->fh : 0);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    struct stat st = ToStat(r->attr);
    fuse_reply_attr(req, &st, r->attr_timeout);
  });
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, [&] {
    FuseContext* ctx = Ctx(req);
    auto r = ctx->fs->ReadLink(ino);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    if (ctx->read_log && ctx->read_log->Accepts(fuse_req_ctx(req)->pid)) ctx->fs->NoteOpen(ino, *ctx->read_log);
    fuse_reply_readlink(req, r->c_str());
  });
}

// In a run's view every open is a round trip that the plain mount avoids.
// For a small file, the open also stores the file's content in the kernel's
// page cache, so the read that follows needs none: one round trip per file,
// as on the plain mount. Larger files are read as usual (a reader may want
// only part of them).
constexpr uint64_t kPushAtOpenLimit = 256 << 10;

void PushSmallFile(FuseContext* ctx, fuse_ino_t ino, uint64_t size) {
  if (!ctx->session || !ctx->fs->ClaimPush(ino, kPushAtOpenLimit)) return;
  auto slices = ctx->fs->Read(ino, 0, size);
  if (!slices.ok() || slices->empty()) return;  // the read reports the error
  size_t n = slices->size();
  std::vector<unsigned char> storage(sizeof(fuse_bufvec) + (n - 1) * sizeof(fuse_buf));
  auto* bufv = reinterpret_cast<fuse_bufvec*>(storage.data());
  *bufv = FUSE_BUFVEC_INIT(0);
  bufv->count = n;
  for (size_t i = 0; i < n; i++) {
    bufv->buf[i] = fuse_buf{};
    bufv->buf[i].size = (*slices)[i].len;
    bufv->buf[i].mem = const_cast<char*>((*slices)[i].data);
    bufv->buf[i].fd = -1;
  }
  // A failure only costs the round trip this saves: the read still works.
  (void)fuse_lowlevel_notify_store(ctx->session, ino, 0, bufv, static_cast<fuse_buf_copy_flags>(0));
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] {
    FuseContext* ctx = Ctx(req);
    AfterInit(ctx);
    bool writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
    if (writing && !ctx->workspaces) return void(fuse_reply_err(req, EROFS));
    if (ctx->no_open) return void(fuse_reply_err(req, ENOSYS));
    auto r = ctx->fs->GetAttr(ino);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    if (S_ISDIR(r->attr.mode)) return void(fuse_reply_err(req, EISDIR));
    auto opened = ctx->fs->OpenFile(ino, fi->flags);
    if (!opened.ok()) return void(fuse_reply_err(req, ErrnoOf(opened.status())));
    if (ctx->read_log && ctx->read_log->Accepts(fuse_req_ctx(req)->pid)) ctx->fs->NoteOpen(ino, *ctx->read_log);
    if (ctx->read_log && opened->fh == 0 && opened->keep_cache) PushSmallFile(ctx, ino, r->attr.size);
    fi->fh = opened->fh;
    fi->keep_cache = opened->keep_cache;
    fi->noflush = 1;  // writes reach the workspace as they happen: nothing to flush on close
    if ((fi->flags & O_ACCMODE) == O_WRONLY) fi->direct_io = 1;
    if (fuse_reply_open(req, fi) != 0) ctx->fs->ReleaseFile(opened->fh);
  });
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, [&] {
    FuseContext* ctx = Ctx(req);
    AfterInit(ctx);
    auto r = Ctx(req)->fs->Read(ino, static_cast<uint64_t>(off), size, fi ? fi->fh : 0);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    std::vector<iovec> iov;
    iov.reserve(r->size());
    for (const auto& s : *r) iov.push_back({const_cast<char*>(s.data), s.len});
    // The slices keep their chunks alive until this returns; libfuse has
    // copied the data to the kernel by then.
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  });
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] {
    bool immutable = false;
    FuseContext* ctx = Ctx(req);
    AfterInit(ctx);
    auto h = ctx->fs->OpenDir(ino, &immutable);
    if (!h.ok()) return void(fuse_reply_err(req, ErrnoOf(h.status())));
    if (ctx->read_log && ctx->read_log->Accepts(fuse_req_ctx(req)->pid)) ctx->fs->NoteOpen(ino, *ctx->read_log);
    fi->fh = *h;
    if (immutable) {
      fi->cache_readdir = 1;  // the kernel may keep the listing of a commit directory
      fi->keep_cache = 1;
    }
    if (fuse_reply_open(req, fi) != 0) Ctx(req)->fs->ReleaseDir(*h);
  });
}

void ReadDirCommon(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Guard(req, [&] {
    std::string buf(size, '\0');
    size_t used = 0;
    Status st = Ctx(req)->fs->ReadDir(fi->fh, static_cast<uint64_t>(off), plus,
                                      [&](const DirItem& item, const EntryReply* reply) {
                                        size_t n;
                                        if (plus && reply) {
                                          fuse_entry_param e = ToEntry(*reply);
                                          n = fuse_add_direntry_plus(req, buf.data() + used, size - used, item.name.c_str(),
                                                                     &e, static_cast<off_t>(item.next_offset));
                                        } else if (plus) {
                                          fuse_entry_param e;
                                          std::memset(&e, 0, sizeof e);  // "." and "..": no lookup counted
                                          e.attr.st_ino = item.ino;
                                          e.attr.st_mode = item.mode;
                                          n = fuse_add_direntry_plus(req, buf.data() + used, size - used, item.name.c_str(),
                                                                     &e, static_cast<off_t>(item.next_offset));
                                        } else {
                                          struct stat st;
                                          std::memset(&st, 0, sizeof st);
                                          st.st_ino = item.ino;
                                          st.st_mode = item.mode;
                                          n = fuse_add_direntry(req, buf.data() + used, size - used, item.name.c_str(), &st,
                                                                static_cast<off_t>(item.next_offset));
                                        }
                                        if (n > size - used) return false;
                                        used += n;
                                        return true;
                                      });
    if (!st.ok() && used == 0) return void(fuse_reply_err(req, ErrnoOf(st)));
    fuse_reply_buf(req, buf.data(), used);
  });
}

void OpReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, size, off, fi, false);
}
void OpReaddirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, size, off, fi, true);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guard(req, [&] {
    Ctx(req)->fs->ReleaseDir(fi->fh);
    fuse_reply_err(req, 0);
  });
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  Guard(req, [&] {
    struct statvfs sv;
    std::memset(&sv, 0, sizeof sv);
    FuseContext* ctx = Ctx(req);
    // Writable mounts report the space left where staged data goes, so
    // df and programs that check for room before writing see the truth.
    if (!ctx->workspaces || ::statvfs(ctx->store_dir.c_str(), &sv) != 0) {
      std::memset(&sv, 0, sizeof sv);
      sv.f_bsize = 4096;
      sv.f_frsize = 4096;
      sv.f_files = ctx->fs->node_count();
    }
    sv.f_namemax = 255;
    sv.f_flag = ctx->workspaces ? 0 : ST_RDONLY;
    fuse_reply_statfs(req, &sv);
  });
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guard(req, [&] {
    auto r = Ctx(req)->fs->GetXattr(ino, name);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    if (size == 0) return void(fuse_reply_xattr(req, r->size()));
    if (size < r->size()) return void(fuse_reply_err(req, ERANGE));
    fuse_reply_buf(req, r->data(), r->size());
  });
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, [&] {
    auto r = Ctx(req)->fs->ListXattr(ino);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    std::string names;
    for (const auto& n : *r) names.append(n).push_back('\0');
    if (size == 0) return void(fuse_reply_xattr(req, names.size()));
    if (size < names.size()) return void(fuse_reply_err(req, ERANGE));
    fuse_reply_buf(req, names.data(), names.size());
  });
}

WsCaller CallerOf(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  WsCaller who;
  who.uid = c->uid;
  who.gid = c->gid;
  who.umask = 0;  // the kernel has applied it to the modes it sends
  return who;
}

void ReplyEntry(fuse_req_t req, const Result<EntryReply>& r) {
  if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
  fuse_entry_param e = ToEntry(*r);
  fuse_reply_entry(req, &e);
}

void ReplyStatus(fuse_req_t req, const Status& st) { fuse_reply_err(req, st.ok() ? 0 : ErrnoOf(st)); }

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Guard(req, [&] {
    FuseContext* ctx = Ctx(req);
    auto r = ctx->fs->CreateFile(parent, name, mode, fi->flags, CallerOf(req));
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    fuse_entry_param e = ToEntry(r->first);
    fi->fh = r->second.fh;
    fi->noflush = 1;
    if ((fi->flags & O_ACCMODE) == O_WRONLY) fi->direct_io = 1;
    if (fuse_reply_create(req, &e, fi) != 0) ctx->fs->ReleaseFile(fi->fh);
  });
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Guard(req, [&] { ReplyEntry(req, Ctx(req)->fs->Mknod(parent, name, mode, rdev, CallerOf(req))); });
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Guard(req, [&] { ReplyEntry(req, Ctx(req)->fs->Mkdir(parent, name, mode, CallerOf(req))); });
}

void OpSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { ReplyEntry(req, Ctx(req)->fs->Symlink(target, parent, name, CallerOf(req))); });
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  Guard(req, [&] { ReplyEntry(req, Ctx(req)->fs->Link(ino, new_parent, new_name)); });
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->Unlink(parent, name)); });
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->Rmdir(parent, name)); });
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
              unsigned int flags) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->Rename(parent, name, new_parent, new_name, flags)); });
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Guard(req, [&] {
    WsSetAttr change;
    if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) change.size = static_cast<uint64_t>(attr->st_size);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) change.atime = WsTime{-1, 0};
    else if (to_set & FUSE_SET_ATTR_ATIME) change.atime = WsTime{attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) change.mtime = WsTime{-1, 0};
    else if (to_set & FUSE_SET_ATTR_MTIME) change.mtime = WsTime{attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
    auto r = Ctx(req)->fs->SetAttr(ino, change, fi ? fi->fh : 0);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    struct stat st = ToStat(r->attr);
    fuse_reply_attr(req, &st, r->attr_timeout);
  });
}

void OpWrite(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, [&] {
    bool may_keep_set_id = fuse_req_ctx(req)->uid == 0;
    auto r = Ctx(req)->fs->Write(fi->fh, static_cast<uint64_t>(off), std::string_view(buf, size), may_keep_set_id);
    if (!r.ok()) return void(fuse_reply_err(req, ErrnoOf(r.status())));
    fuse_reply_write(req, *r);
  });
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guard(req, [&] {
    Ctx(req)->fs->ReleaseFile(fi->fh);
    fuse_reply_err(req, 0);
  });
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->FsyncDir(ino)); });
}

void OpFsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->Fsync(fi->fh, datasync != 0)); });
}

void OpFallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  Guard(req, [&] {
    if (offset < 0 || length <= 0) return void(fuse_reply_err(req, EINVAL));
    ReplyStatus(req, Ctx(req)->fs->Allocate(fi->fh, mode, static_cast<uint64_t>(offset), static_cast<uint64_t>(length)));
  });
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->SetXattr(ino, name, std::string_view(value, size), flags)); });
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Guard(req, [&] { ReplyStatus(req, Ctx(req)->fs->RemoveXattr(ino, name)); });
}

}  // namespace

int ErrnoOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk: return 0;
    case Status::Code::kNotFound: return ENOENT;
    case Status::Code::kCorruption: return EIO;
    case Status::Code::kReadOnly: return EROFS;
    case Status::Code::kNoSpace: return status.sys_errno() == EDQUOT ? EDQUOT : ENOSPC;
    default: return status.sys_errno() > 0 ? status.sys_errno() : EIO;
  }
}

const fuse_lowlevel_ops& SnapshotOps() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o;
    std::memset(&o, 0, sizeof o);
    o.init = OpInit;
    o.lookup = OpLookup;
    o.forget = OpForget;
    o.forget_multi = OpForgetMulti;
    o.getattr = OpGetattr;
    o.readlink = OpReadlink;
    o.open = OpOpen;
    o.read = OpRead;
    o.opendir = OpOpendir;
    o.readdir = OpReaddir;
    o.readdirplus = OpReaddirplus;
    o.releasedir = OpReleasedir;
    o.fsyncdir = OpFsyncdir;
    o.statfs = OpStatfs;
    o.getxattr = OpGetxattr;
    o.listxattr = OpListxattr;
    // Writing: workspaces only (SnapshotFs answers EROFS everywhere else).
    o.create = OpCreate;
    o.mknod = OpMknod;
    o.mkdir = OpMkdir;
    o.symlink = OpSymlink;
    o.link = OpLink;
    o.unlink = OpUnlink;
    o.rmdir = OpRmdir;
    o.rename = OpRename;
    o.setattr = OpSetattr;
    o.write = OpWrite;
    o.flush = OpFlush;
    o.release = OpRelease;
    o.fsync = OpFsync;
    o.fallocate = OpFallocate;
    o.setxattr = OpSetxattr;
    o.removexattr = OpRemovexattr;
    return o;
  }();
  return ops;
}

}  // namespace tusk::fs
