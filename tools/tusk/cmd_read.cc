// tusk ls / cat / export: read a version without mounting it.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <iostream>

#include "store/exporter.h"
#include "store/internal/file.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct Version {
  std::unique_ptr<Repository> repo;
  ObjectId commit;
  Commit data;
};

Result<Version> OpenVersion(Cli& cli, const std::string& ref) {
  TUSK_ASSIGN_OR_RETURN(RefSpec spec, ParseRef(ref, true));
  Version v;
  TUSK_ASSIGN_OR_RETURN(v.repo, cli.OpenStore(StoreAccess::kReadOnly));
  TUSK_ASSIGN_OR_RETURN(v.commit, v.repo->Resolve(spec));
  TUSK_ASSIGN_OR_RETURN(v.data, v.repo->ReadCommit(v.commit));
  return v;
}

std::string ModeString(uint32_t mode) {
  std::string s = S_ISDIR(mode)    ? "d"
                  : S_ISLNK(mode)  ? "l"
                  : S_ISFIFO(mode) ? "p"
                  : S_ISSOCK(mode) ? "s"
                  : S_ISCHR(mode)  ? "c"
                  : S_ISBLK(mode)  ? "b"
                                   : "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; i++) s += (mode & (1u << (8 - i))) ? rwx[i] : '-';
  if (mode & S_ISUID) s[3] = (mode & S_IXUSR) ? 's' : 'S';
  if (mode & S_ISGID) s[6] = (mode & S_IXGRP) ? 's' : 'S';
  if (mode & S_ISVTX) s[9] = (mode & S_IXOTH) ? 't' : 'T';
  return s;
}

const char* TypeName(const TreeEntry& e) {
  switch (e.kind) {
    case EntryKind::kFile: return "file";
    case EntryKind::kDirectory: return "dir";
    case EntryKind::kSymlink: return "symlink";
    case EntryKind::kSpecial: break;
  }
  return S_ISFIFO(e.mode) ? "fifo" : S_ISSOCK(e.mode) ? "socket" : S_ISCHR(e.mode) ? "char-device" : "block-device";
}

bool IsDevice(const TreeEntry& e) { return e.kind == EntryKind::kSpecial && (S_ISCHR(e.mode) || S_ISBLK(e.mode)); }

struct LsOpts {
  std::string ref, path;
  bool long_format = false, recursive = false, json = false;
};

int RunLs(const LsOpts& o, Cli& cli) {
  auto v = OpenVersion(cli, o.ref);
  if (!v.ok()) return Fail(v.status());
  auto start = LookupPath(*v->repo, v->data.root, o.path);
  if (!start.ok()) return Fail(start.status().Annotate(o.ref));
  Json j;
  j.BeginArray();
  auto print = [&](const TreeEntry& e, const std::string& path) {
    if (o.json) {
      j.BeginObject().Key("path").String(path).Key("type").String(TypeName(e)).Key("mode").Number(e.mode & 07777)
          .Key("uid").Number(e.uid).Key("gid").Number(e.gid).Key("size").Number(e.size).Key("mtime").Signed(e.mtime_sec);
      if (e.kind == EntryKind::kSymlink) j.Key("target").String(e.target);
      if (IsDevice(e)) j.Key("major").Number(major(e.rdev)).Key("minor").Number(minor(e.rdev));
      if (e.link_group) j.Key("link_group").Number(*e.link_group);
      if (!e.xattrs.empty()) {
        j.Key("xattrs").BeginObject();
        for (const auto& [name, value] : e.xattrs) j.Key(name).String(value);
        j.EndObject();
      }
      j.EndObject();
      return;
    }
    std::string shown = Printable(path) + (e.kind == EntryKind::kDirectory ? "/" : "");
    if (o.long_format) {
      // Devices show "major, minor" where others show their size, as ls(1) does.
      std::string size =
          IsDevice(e) ? std::to_string(major(e.rdev)) + ", " + std::to_string(minor(e.rdev)) : std::to_string(e.size);
      std::cout << ModeString(e.mode) << " " << e.uid << " " << e.gid << " " << size << "\t" << FormatTime(e.mtime_sec)
                << "  " << shown << (e.kind == EntryKind::kSymlink ? " -> " + Printable(e.target) : "") << "\n";
    } else {
      std::cout << shown << "\n";
    }
  };
  Status st;
  std::function<Status(const ObjectId&, const std::string&)> list = [&](const ObjectId& tree, const std::string& prefix) {
    std::vector<std::pair<ObjectId, std::string>> subdirs;
    Status each = ForEachEntry(*v->repo, tree, [&](const TreeEntry& e) {
      std::string path = prefix + e.name;
      print(e, path);
      if (o.recursive && e.kind == EntryKind::kDirectory) subdirs.emplace_back(e.tree, path + "/");
      return true;
    });
    if (!each.ok()) return each;
    for (const auto& [sub, path] : subdirs) TUSK_RETURN_IF_ERROR(list(sub, path));
    return Status::Ok();
  };
  if (start->kind == EntryKind::kDirectory) st = list(start->tree, "");
  else print(*start, o.path);
  if (!st.ok()) return Fail(st);
  if (o.json) j.EndArray().Print();
  return 0;
}

int RunCat(const std::string& ref, const std::string& path, Cli& cli) {
  auto v = OpenVersion(cli, ref);
  if (!v.ok()) return Fail(v.status());
  auto entry = LookupPath(*v->repo, v->data.root, path);
  if (!entry.ok()) return Fail(entry.status().Annotate(ref));
  if (entry->kind != EntryKind::kFile) return Fail(path + " in " + ref + " is not a regular file");
  Status st = ReadFileContent(*v->repo, *entry, [](std::string_view data) {
    return WriteAll(STDOUT_FILENO, data.data(), data.size(), "standard output");
  });
  if (!st.ok()) return Fail(st.Annotate(path + " in " + ref));
  return 0;
}

int RunExport(const std::string& ref, const std::string& dir, Cli& cli) {
  auto v = OpenVersion(cli, ref);
  if (!v.ok()) return Fail(v.status());
  Progress progress;
  progress.bytes_total = v->data.total_bytes;
  progress.items_total = v->data.file_count;
  Result<ExportStats> stats = Status::Ok();
  {
    ProgressDisplay display(&progress, "exporting", "files");
    stats = ExportTree(*v->repo, v->data.root, dir, &progress, [](const std::string& msg) { Warn(msg); });
  }
  if (!stats.ok()) {
    // Refusals (a non-empty or non-directory destination) wrote nothing.
    if (stats.status().code() == Status::Code::kAlreadyExists) return Fail(stats.status());
    return Fail(stats.status().Annotate("export of " + ref + " to " + dir + " is incomplete"));
  }
  std::cout << "exported " << ref << " (commit " << v->commit.ShortHex() << ") to " << dir << ": " << stats->files
            << " files, " << stats->dirs << " directories, " << stats->symlinks << " symlinks, "
            << (stats->specials ? std::to_string(stats->specials) + " special files, " : "")
            << (stats->hard_links ? std::to_string(stats->hard_links) + " hard links, " : "") << HumanBytes(stats->bytes)
            << std::endl;
  return 0;
}

}  // namespace

void AddReadCommands(CLI::App& app, Cli& cli) {
  auto ls = std::make_shared<LsOpts>();
  CLI::App* sub = app.add_subcommand("ls", "List the files of a version");
  sub->add_option("ref", ls->ref, "DATASET@REF (a bare DATASET means DATASET@main)")->required();
  sub->add_option("path", ls->path, "Directory or file inside the version (default: the root)");
  sub->add_flag("-l,--long", ls->long_format, "Show mode, owner, size and mtime");
  sub->add_flag("-r,--recursive", ls->recursive, "List subdirectories too");
  AddJsonFlag(sub, &ls->json);
  sub->callback([ls, &cli] { cli.exit_code = RunLs(*ls, cli); });

  auto cat = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* c = app.add_subcommand("cat", "Write one file of a version to standard output");
  c->add_option("ref", cat->first, "DATASET@REF")->required();
  c->add_option("path", cat->second, "File inside the version")->required();
  c->callback([cat, &cli] { cli.exit_code = RunCat(cat->first, cat->second, cli); });

  auto ex = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* e = app.add_subcommand("export", "Write a version out as a plain directory tree");
  e->add_option("ref", ex->first, "DATASET@REF")->required();
  e->add_option("dir", ex->second, "Destination (absent or empty directory)")->required();
  e->callback([ex, &cli] { cli.exit_code = RunExport(ex->first, ex->second, cli); });
}

}  // namespace tusk::cli
