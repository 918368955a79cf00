// Built-in data quality checks: the one-line checks a dataset's settings can
// name instead of a command (`tusk check add DATASET NAME --builtin -- csv
// '*.csv'`).
//
// Terms.
// - The *tree* is the candidate version being checked: a tree id of the
//   repository. Paths are relative to its root, '/'-separated.
// - A *file* is a regular file of the tree; symlinks, directories and
//   special files are never matched, counted or read.
// - A *glob* selects files as GlobMatch (store/settings/settings.h) does:
//   `*` and `?` within one path component, `**` across components; a glob
//   without '/' matches the last component anywhere ("*.csv"), one with '/'
//   the whole path ("labels/**/*.csv"). A glob may not start or end with '/'.
// - The *changed* files are those added or modified against the parent
//   commit. A *per-file* built-in (csv, jsonl, nonempty, max-size) judges
//   only the changed files unless asked for all paths (a first commit, or
//   `tusk check run` on a past commit), so a version is not blamed for what
//   it did not touch. A *whole-tree* built-in (unique, count) always judges
//   the whole tree, from tree metadata alone (it never reads file data).
// - A *problem* is one line of output, "path:line: message" where a line
//   is meant, "path: message" for a whole file, and a bare message for the
//   whole tree. The check passes when there is none. Examples:
//     labels/b.csv:1: header differs from labels/a.csv's: 2 columns, not 3; lacks "score"
//     labels/a.csv:17: column "score": "n/a" is not a number
//     labels/a.csv:40: row has 4 fields, the header 3
//     events.jsonl:12: invalid JSON: column 9: syntax error while parsing value - ...
//     images/x.png: same content as images/y.png
//     3 files match *.png, fewer than the minimum of 5
//
// The built-ins (BuiltinCheckUsage prints the same list):
//   csv GLOB [--numeric COL[,COL...]] [--allow-empty]
//       Every matching file parses as a table (tusk::TableFormatForPath: a
//       .csv, .tsv or .tab file, as `tusk diff --rows` and merge read it:
//       RFC 4180 quoting, a header of unique non-empty names, every row
//       with the header's field count) and has the header of the first
//       matching file in path order (byte order of the whole path): the
//       same names in the same order. A changed file is compared with that
//       first file even when the first file itself is unchanged (only its
//       header is read); when the first file is changed, it is compared
//       with the first unchanged one, which stands for the rest. Each value
//       of a --numeric column is a finite decimal number ("12", "-0.5",
//       "+1e-3"; spaces around it allowed; not "nan", "inf" or hex); an
//       empty cell is a problem unless --allow-empty. --numeric may be
//       repeated. A file's first structural fault (a ragged row, a quote
//       that never ends, ...) is reported at its line and the rest of that
//       file is not read; the rows before it are judged. A matching file of
//       another extension is a problem. Files of any size are checked: they
//       are read in blocks of whole records, never whole
//       (BuiltinCheckLimits).
//   jsonl GLOB [--allow-blank]
//       Every line of every matching .jsonl or .ndjson file is one JSON
//       value (any value, not only objects; a CR before the LF is allowed).
//       A blank line (empty or only whitespace) is a problem unless
//       --allow-blank: JSON Lines forbids them and tusk's row diff and merge
//       refuse such files. A final line ending is optional. Files are read
//       line by line, never whole. A matching file of another extension is
//       a problem.
//   nonempty [GLOB]
//       No matching file is empty (default GLOB "*": every file).
//   unique [GLOB]
//       No two matching files of the whole tree have the same content,
//       decided by their chunk lists (content-defined chunking gives equal
//       content equal chunks under one chunker configuration). Empty files
//       are never duplicates of each other. Names of one hard-link group are
//       duplicates like any others. Each group of identical files is one
//       problem.
//   count GLOB [--min N] [--max N]
//       The number of matching files in the whole tree is at least N and at
//       most N (at least one bound; --min <= --max).
//   max-size SIZE [GLOB]
//       No matching file is larger than SIZE bytes; SIZE is a whole number
//       with an optional suffix K, M, G or T (powers of 1024; "KiB", "MiB",
//       ... and lowercase are accepted; "MB" is refused as ambiguous).
// Options take their value as the next argument or after '=' ("--min=3").
//
// Thread-safety: reentrant; concurrent calls may share a Repository as far
// as the Repository itself allows concurrent reads.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "store/ids.h"
#include "store/repository.h"
#include "store/status.h"

namespace tusk {

struct BuiltinCheckResult {
  bool passed = false;
  // For a person: the problems, one a line (at most
  // BuiltinCheckLimits::max_problems, then "... and N more problems"), and
  // a last line summing up what was checked ("3 CSV/TSV files checked, 2
  // problems"), whether the check passed or not.
  std::string output;
};

// Bounds on memory and output. The defaults suit `tusk check`; tests lower
// them to exercise the block-wise reading of large tables.
struct BuiltinCheckLimits {
  size_t max_problems = 200;
  // csv reads a file in blocks of whole records of about this many bytes.
  size_t table_block_bytes = size_t{64} << 20;
  // A CSV record or JSONL line longer than this is a problem and the rest
  // of its file is not checked (holding it would need that much memory).
  size_t max_record_bytes = size_t{256} << 20;
};

// Runs built-in `name` with `args` on the tree `root` of `repo`.
// `changed`: the changed files (relative paths, files only; paths that are
// not files of the tree are ignored). `all_paths`: judge every file, not
// only the changed ones. A failing check is a result with passed false;
// an error Status means the check could not run: InvalidArgument for an
// unknown name or bad arguments (as ValidateBuiltinCheck), or the error of
// reading the tree (NotFound, Corruption, IoError).
Result<BuiltinCheckResult> RunBuiltinCheck(Repository& repo, const ObjectId& root, const std::string& name,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& changed, bool all_paths);
Result<BuiltinCheckResult> RunBuiltinCheck(Repository& repo, const ObjectId& root, const std::string& name,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& changed, bool all_paths,
                                           const BuiltinCheckLimits& limits);

// Ok, or InvalidArgument saying what is wrong (an unknown built-in, a
// missing or extra argument, an unknown option, a bad glob, size or bound)
// followed by the built-in's usage. `tusk check add` refuses a definition
// with it before saving.
Status ValidateBuiltinCheck(const std::string& name, const std::vector<std::string>& args);

// One line per built-in, "NAME ARGS  what it checks", for `tusk help check`
// and the man page; ends with a newline.
std::string BuiltinCheckUsage();

}  // namespace tusk
