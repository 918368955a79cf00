// WorkspaceBases: the gc roots that workspaces add (see workspace.h for the
// directory layout).
#include <dirent.h>

#include <fstream>
#include <memory>

#include "store/workspace/workspace_core.h"

namespace tusk {
namespace {

std::vector<std::string> Subdirectories(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)) out.push_back(dir + "/" + n);
  }
  return out;
}

}  // namespace

Result<std::vector<ObjectId>> WorkspaceBases(const std::string& store_dir) {
  std::vector<ObjectId> out;
  for (const auto& dataset : Subdirectories(store_dir + "/workspaces")) {
    for (const auto& ws : Subdirectories(dataset)) {
      for (const char* file : {"/base", "/next"}) {
        std::ifstream in(ws + file);
        std::string hex;
        if (!(in >> hex) || hex == "none") continue;
        auto id = ObjectId::FromHex(hex);
        if (!id) return Status::Corruption(ws + file + ": not a commit id: " + hex);
        out.push_back(*id);
      }
      // A staged merge's theirs (its tree: WorkspaceStagedTrees).
      for (const char* file : {ws::kMergeFile, ws::kMergeStagingFile}) {
        auto merge = ws::ReadMergeFile(Env::Default(), ws, file);
        if (!merge.ok()) return merge.status();
        if (*merge) out.push_back((*merge)->theirs);
      }
    }
  }
  return out;
}

Result<std::vector<ObjectId>> WorkspaceStagedTrees(const std::string& store_dir) {
  std::vector<ObjectId> out;
  for (const auto& dataset : Subdirectories(store_dir + "/workspaces")) {
    for (const auto& ws : Subdirectories(dataset)) {
      for (const char* file : {ws::kMergeFile, ws::kMergeStagingFile}) {
        auto merge = ws::ReadMergeFile(Env::Default(), ws, file);
        if (!merge.ok()) return merge.status();
        if (*merge) out.push_back((*merge)->staged);
      }
    }
  }
  return out;
}

}  // namespace tusk
