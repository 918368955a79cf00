// Running a dataset's checks (store/settings/settings.h) against a tree
// before it lands, and the trust that lets a check run on this machine.
//
// How a check runs. A command check runs with its working directory at a
// read-only view of the candidate tree (fs/run_view.h: a private mount that
// no other process sees), with these variables set:
//   TUSK_CHECK_TREE     the view's root (also the working directory)
//   TUSK_CHECK_CHANGED  a file listing the paths added or changed against
//                       the parent, one per line (every file when there is
//                       no parent, or for `tusk check run --all-paths`)
//   TUSK_CHECK_DELETED  a file listing the paths deleted, one per line
//   TUSK_CHECK_NAME, TUSK_DATASET
//   TUSK_CHECK_COMMIT   the commit checked (`tusk check run`); unset for a
//                       version about to land (it has no commit yet)
// It passes when it exits 0. Its standard output and error are merged; the
// last kCheckOutputTail bytes are kept (it may print megabytes). A check
// still running after its timeout is killed (its whole process group) and
// fails. Built-in checks (store/checks/builtin.h) run inside tusk.
//
// Where. A mount namespace can only be entered by a single-threaded
// process, and commits happen in busy ones (an import's workers, a mount
// daemon), so CheckHook runs the checks in a fresh `tusk check-candidate`
// process and reads its results back.
//
// Trust. A definition runs only when this machine trusts it: its digest
// (CheckDefinition::Digest) is listed in STORE/trusted-checks (FORMAT.md).
// `tusk check add` trusts what it adds; a definition that arrives otherwise
// (pull, clone, a store copied from elsewhere) needs `tusk check trust`.
//
// Thread-safety: CheckHook's function may run on any thread; RunChecks
// needs a process that entered a private mount namespace.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/settings/settings.h"

namespace tusk::fs {

// The PrepareCommit hook that checks a commit of `dataset` before it lands.
// With no checks defined it only records the settings version (if any).
// With `skip_reason` it runs nothing and records the checks as skipped by
// `who`. Otherwise: untrusted definitions refuse the commit (naming them);
// the session is made durable (so the candidate tree can be read by the
// checks' process; no commit object is written before the checks pass,
// and what does not land is garbage for gc), the tree is checked, and a
// failing check refuses with its output; else the results go into the
// commit.
PrepareCommit CheckHook(Repository* repo, const std::string& dataset, const std::string& skip_reason,
                        const std::string& who);

// What the checks run on: a tree of `dataset`, the commit it is (if it is
// one yet), and the commit it follows.
struct CheckTarget {
  std::string dataset;
  ObjectId root;
  std::optional<ObjectId> commit;
};

struct CheckRunOptions {
  std::optional<ObjectId> parent;  // changed paths are against its tree; none: every file counts as changed
  bool all_paths = false;          // every file counts as changed, whatever the parent
  // Called as each check ends (progress for `tusk check run`).
  std::function<void(const CheckResult&)> on_result;
};

// Runs every check of `settings` on `target`, in name order, in this process (which must have entered a private mount
// namespace: EnterPrivateNamespace). Errors only for what keeps checks
// from running at all; a check that cannot start fails with the reason as
// its output.
Result<std::vector<CheckResult>> RunChecks(Repository& repo, const DatasetSettings& settings, const CheckTarget& target,
                                           const CheckRunOptions& options);

// One result as `tusk check-candidate` prints it for CheckHook (one line).
std::string FormatCheckResult(const CheckResult& result);

// The digests this store trusts, and adding to them (atomically).
Result<std::set<ObjectId>> TrustedChecks(Repository& repo);
Status TrustChecks(Repository& repo, const std::vector<const CheckDefinition*>& checks);
// The definitions of `settings` this store does not trust.
Result<std::vector<const CheckDefinition*>> UntrustedChecks(Repository& repo, const DatasetSettings& settings);

}  // namespace tusk::fs
