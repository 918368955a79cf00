// Shared pieces of the tusk command-line front end: the store location,
// error reporting, human-readable sizes and times, JSON output and progress.
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fs/control_socket.h"
#include "store/repository.h"

namespace tusk::cli {

// State shared by every subcommand.
struct Cli {
  std::string store_flag;  // --store
  int exit_code = 0;
  // tusk run: the words after "--", split off before parsing.
  std::vector<std::string> command;
  std::string StoreDir() const;
  // Commands that only read open with StoreAccess::kReadOnly, so they work
  // on a store this user may read but not write.
  Result<std::unique_ptr<Repository>> OpenStore(StoreAccess access = StoreAccess::kReadWrite) const;
  // Internal subprocesses of a tusk process that has the store open and
  // verified (check-candidate): skip the walk of the whole index.
  bool index_verified = false;
};

// Prints "tusk: error: ..." and returns the exit code 1.
int Fail(const Status& status);
int Fail(const std::string& message);
void Warn(const std::string& message);

// "64K", "1M", "300" -> bytes (powers of 1024).
Result<uint64_t> ParseSize(const std::string& text);
std::string HumanBytes(uint64_t bytes);
std::string FormatTime(int64_t unix_sec);  // "2026-11-26 22:02:13 +0000"
std::string Ratio(double r);                 // "1.95x"

// Minimal JSON writer: values appended in order, commas handled.
class Json {
 public:
  Json& BeginObject();
  Json& EndObject();
  Json& BeginArray();
  Json& EndArray();
  Json& Key(const std::string& key);
  Json& String(const std::string& value);
  Json& Number(uint64_t value);
  Json& Signed(int64_t value);
  Json& Double(double value);
  Json& Bool(bool value);
  Json& Null();
  // A complete value rendered by another Json.
  Json& Raw(const std::string& value);
  const std::string& str() const { return out_; }
  void Print() const;  // to stdout with a trailing newline

 private:
  void Separate();
  void Quote(const std::string& value);
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written yet
  bool after_key_ = false;
};

// Shows a one-line progress display on stderr while alive, only when stderr
// is a terminal. `verb` is "importing", "exporting", ...
class ProgressDisplay {
 public:
  ProgressDisplay(Progress* progress, std::string verb, std::string unit);
  ~ProgressDisplay();

 private:
  void Draw(bool final);
  Progress* progress_;
  std::string verb_, unit_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t start_ns_;
};

// Adds --skip-checks REASON (land without running the dataset's checks).
inline void AddSkipChecksOption(CLI::App* sub, std::string* reason) {
  sub->add_option("--skip-checks", *reason,
                  "Land without running the dataset's checks; the commit records who skipped them and REASON")
      ->check([](const std::string& r) { return r.empty() ? std::string("the reason must not be empty") : std::string(); });
}

// Adds --json to a subcommand.
inline void AddJsonFlag(CLI::App* sub, bool* json) { sub->add_flag("--json", *json, "Print machine-readable JSON"); }

// Subcommand registration, one per file.
void AddInitCommand(CLI::App& app, Cli& cli);
void AddDatasetCommand(CLI::App& app, Cli& cli);
void AddImportCommand(CLI::App& app, Cli& cli);
void AddReadCommands(CLI::App& app, Cli& cli);  // ls, cat, export
void AddLogCommands(CLI::App& app, Cli& cli);   // log, show
void AddDiffCommand(CLI::App& app, Cli& cli);
void AddRefCommands(CLI::App& app, Cli& cli);   // branch, tag
void AddMaintenanceCommands(CLI::App& app, Cli& cli);  // gc, fsck, stats
void AddMountCommands(CLI::App& app, Cli& cli);        // mount, umount
void AddWorkspaceCommands(CLI::App& app, Cli& cli);    // status, commit, reset
void AddRunCommands(CLI::App& app, Cli& cli);          // run, runs
void AddMergeCommand(CLI::App& app, Cli& cli);
void AddCheckCommands(CLI::App& app, Cli& cli);  // check, table
void AddSyncCommands(CLI::App& app, Cli& cli);   // push, fetch, pull, clone, prefetch

inline constexpr char kTuskVersion[] = "tusk 0.1.0";

// tusk run (cmd_run.cc), also driven by rerun and update (cmd_lineage.cc).
struct RunOpts {
  std::vector<std::string> in;    // NAME=DATASET@REF
  std::vector<std::string> meta;  // KEY=VALUE
  std::vector<std::string> env;   // names of variables to record
  std::string out, message, author;
  std::string skip_checks;  // --skip-checks REASON for the output commit
  std::vector<std::string> command;
};
struct RunOutcome {
  std::optional<ObjectId> run;     // recorded
  std::optional<ObjectId> output;  // committed
};
// tusk run's own failures (bad arguments, a mount or the record failing),
// apart from any status of the command (as env(1) and timeout(1) do).
inline constexpr int kRunToolFailed = 125;
// Returns tusk run's exit status: the command's, kRunToolFailed, or 127
// (the command could not be started).
int RunRun(const RunOpts& o, Cli& cli, RunOutcome* outcome = nullptr);

// The git checkout `dir` is in, if any (and git is installed).
std::optional<CodeVersion> CodeVersionOf(const std::string& dir);
// argv as a shell would take it back ('quoted' where needed).
std::string CommandText(const std::vector<std::string>& argv);
// "ok", "exit N", "killed by signal N".
std::string StatusText(int exit_status);
void AddLineageCommands(CLI::App& app, Cli& cli);  // lineage, stale, update, rerun (cmd_lineage.cc)
void AddRemoteCommands(CLI::App& app, Cli& cli);  // remote add, list, remove (cmd_remote.cc)
// tusk diff --inputs A B: what two runs read differently (cmd_lineage.cc).
int DiffInputs(Cli& cli, const std::string& a, const std::string& b, bool json);

// `tusk show run:ID` (cmd_run.cc).
int ShowRun(Cli& cli, const std::string& run, bool json, bool files);
// How many changes are staged in the workspace of dataset@branch (0 when it
// has none), asking the mount that serves it if one does (cmd_workspace.cc).
Result<size_t> StagedChangeCount(Repository& repo, const std::string& dataset, const std::string& branch);
// Runs a workspace request in the process that serves dataset@branch (a
// mount), or here when none does (cmd_workspace.cc).
Result<WsReply> RunWorkspaceCommand(Repository& repo, const std::string& dataset, const std::string& branch,
                                    const WsRequest& request);

// Commit options shared by import and commit.
// Removes the workspaces of dataset@branch (or of the whole dataset) before
// it is deleted (RemoveWorkspaces), explaining a refusal: which mount holds
// a workspace, or how to keep or drop staged changes. `what` is "branch
// data@b" or "dataset data".
Status RemoveWorkspacesForDelete(Repository& repo, const std::string& dataset, const std::optional<std::string>& branch,
                                 bool force, const std::string& what);

// A name or path as human output shows it (--json output stays exact): one
// line, with nothing a terminal acts on. Control characters (C0, DEL and
// the C1 range U+0080-U+009F), backslashes and bytes that are not UTF-8
// become \xHH; everything else, including non-ASCII text, stays as it is.
// tusk-ls(1) documents it.
std::string Printable(std::string_view bytes);

// --key COL[,COL...] (tusk table set, tusk diff --rows): the key columns,
// none of them empty.
Result<std::vector<std::string>> ParseKeyColumns(const std::string& flag);

std::string DefaultAuthor();  // $TUSK_AUTHOR, else $USER, else the login name
// --meta KEY=VALUE flags, in order.
Result<std::vector<std::pair<std::string, std::string>>> ParseMetadataFlags(const std::vector<std::string>& flags);
// --from DATASET@REF flags, resolved to commits.
Result<std::vector<Provenance>> ResolveFromFlags(Repository& repo, const std::vector<std::string>& flags);

}  // namespace tusk::cli
