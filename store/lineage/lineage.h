// Lineage: run records, the read sets they carry, and the index that finds
// them (issue 10; `tusk run`, `tusk runs`, `tusk show run:ID`).
//
// A run record says what one `tusk run` executed (argv, working directory,
// times, exit status, user, host, the code version when the directory is a
// git checkout) on which data: every input is a commit, resolved when the
// run started, and carries its *read set*, what the command's processes
// opened through the input's read-only view:
//
// - the files opened, as a tree: the input's tree cut down to those files.
//   Entries keep the input's metadata and chunk lists (the content id of
//   what was read), so a directory read whole gives the very pages of the
//   input (stored once), and two read sets compare with the tree diff;
// - the directories listed, as one chunk: their paths, sorted, each ended
//   by a NUL.
//
// Run records are objects of type kRun in packs. They are roots for gc
// (they keep their read sets and their input commits, so a run can be
// reproduced) and an index rebuild finds them. An output commit names its
// run (Commit::run).
//
// The index keeps `runs` (run id -> start time) and `runlinks`
// (`i` input commit run -> "": which runs read a commit; `o` run output
// commit -> "": what a run produced), both rebuilt from the objects.
//
// Thread-safety: values and pure functions; WriteReadSet uses the session
// as WriteSession allows.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/ids.h"
#include "store/objects.h"
#include "store/status.h"

namespace tusk {

class Repository;
class WriteSession;

struct RunInput {
  std::string name;     // NAME of --in NAME=DATASET@REF
  std::string dataset;
  std::string ref;      // as the user wrote it, e.g. "raw@main"
  ObjectId commit;      // what the ref was when the run started
  ObjectId read_tree;   // the files opened (see above)
  ObjectId listed;      // chunk: the directories listed; zero when none was
  uint64_t files_read = 0;
  uint64_t dirs_listed = 0;
  bool operator==(const RunInput&) const = default;
};

// The git checkout the command ran in, when there was one.
struct CodeVersion {
  std::string repository;  // its top-level directory
  std::string commit;      // HEAD, hex; empty when it has no commit yet
  std::string branch;      // empty: detached HEAD
  bool dirty = false;      // uncommitted changes to tracked files
  std::string diff_digest; // SHA-256 (hex) of `git diff HEAD` when dirty
  bool operator==(const CodeVersion&) const = default;
};

struct RunRecord {
  std::vector<std::string> argv;  // exactly as given
  std::string cwd;
  int64_t start_ns = 0;  // wall clock, nanoseconds since the epoch
  int64_t end_ns = 0;
  // The exit code (0-255), or 256 + the number of the signal that ended
  // the command (so that "exit 137" and "killed by SIGKILL" stay apart);
  // -1: the command could not be started.
  int exit_status = 0;
  std::string user;
  std::string host;
  std::string tusk_version;
  std::string message;
  std::vector<RunInput> inputs;                              // in the order given
  std::vector<std::pair<std::string, std::string>> env;      // --env NAME (absent ones are not listed)
  std::vector<std::pair<std::string, std::string>> meta;     // --meta K=V, in the order given
  std::optional<CodeVersion> code;
  // --out DATASET@BRANCH (empty when none) and its head when the run
  // started: the parent of the output commit.
  std::string out_dataset;
  std::string out_branch;
  std::optional<ObjectId> out_parent;
  bool operator==(const RunRecord&) const = default;
};

inline constexpr int kRunSignalBase = 256;
inline constexpr int kRunMaxStatus = kRunSignalBase + 64;

std::string EncodeRun(const RunRecord& run);
Result<RunRecord> DecodeRun(std::string_view bytes);

// What a command opened through one input's view: files (path relative to
// the input's root, with the tree entry it opened) and listed directories
// ("" is the root).
struct ReadSet {
  std::map<std::string, TreeEntry> files;
  std::set<std::string> dirs;
};

// Stores a read set of the input tree `input_root`: fills read_tree,
// listed, files_read and dirs_listed of `input`.
Status WriteReadSet(Repository& repo, WriteSession& session, const ObjectId& input_root, const ReadSet& reads,
                    RunInput* input);

// Calls fn for every file of a read set (path, entry), in path order.
Status ForEachReadFile(Repository& repo, const ObjectId& read_tree,
                       const std::function<Status(const std::string& path, const TreeEntry&)>& fn);
// The directories a run listed through one input.
Result<std::vector<std::string>> ReadListedDirs(Repository& repo, const RunInput& input);

// How one input of a run stands against its branch now (tusk stale,
// tusk update): whether the branch moved since the run read it, and which
// of what the run read changed.
struct InputDrift {
  size_t input = 0;             // index into RunRecord::inputs
  std::string branch;           // the branch the input named; empty: a tag or commit (it cannot move)
  std::optional<ObjectId> head; // the branch head now
  bool moved = false;           // head differs from the commit the run read
  // Paths of files the run read that the head changed (content, type) or no
  // longer has; and, written "DIR/" ("/" for the root), directories the run
  // listed whose names changed or that are gone, and directories it read
  // files in that are no longer directories. Sorted. Empty: the run would
  // read the same bytes from the head.
  std::vector<std::string> changed;
  std::string problem;          // e.g. the branch was deleted; then nothing else is known
};
Result<std::vector<InputDrift>> DriftOf(Repository& repo, const RunRecord& run);

// A run as the index lists it.
struct RunSummary {
  ObjectId id;
  RunRecord record;
  std::vector<ObjectId> outputs;  // output commits (one, or none)
};

}  // namespace tusk
