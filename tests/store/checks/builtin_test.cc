// The built-in checks (store/checks/builtin.h) over trees imported into a
// fresh store: each built-in passing and failing, with the paths and lines
// it reports, what `changed` spares, and the definitions Validate refuses.
#include "store/checks/builtin.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/importer.h"
#include "store/repository.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using test_util::TempDir;
using Files = std::map<std::string, std::string>;
using Args = std::vector<std::string>;

class BuiltinCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TUSK_ASSERT_OK(Repository::Create(dir_.Sub("store"), StoreConfig{}));
    TUSK_ASSERT_OK_AND_ASSIGN(repo_, Repository::Open(dir_.Sub("store")));
    TUSK_ASSERT_OK(repo_->CreateDataset("d"));
  }

  // Imports exactly `files` as the tree of d@main and returns its root.
  ObjectId Tree(const Files& files) {
    std::string src = dir_.Sub("src" + std::to_string(imports_++));
    std::filesystem::create_directories(src);
    for (const auto& [path, content] : files) test_util::WriteFile(src + "/" + path, content);
    auto r = ImportDirectory(*repo_, src, "d", "main", ImportOptions{});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->commit) return ObjectId();
    auto commit = repo_->ReadCommit(*r->commit);
    EXPECT_TRUE(commit.ok()) << commit.status().ToString();
    return commit.ok() ? commit->root : ObjectId();
  }

  // Runs a built-in over every file of `files`.
  BuiltinCheckResult RunAll(const Files& files, const std::string& name, const Args& args,
                            const BuiltinCheckLimits& limits = {}) {
    return Run(Tree(files), name, args, {}, true, limits);
  }

  // Runs a built-in over the files of `files` named in `changed`.
  BuiltinCheckResult RunChanged(const Files& files, const std::string& name, const Args& args,
                                const std::vector<std::string>& changed) {
    return Run(Tree(files), name, args, changed, false, {});
  }

  BuiltinCheckResult Run(const ObjectId& root, const std::string& name, const Args& args,
                         const std::vector<std::string>& changed, bool all_paths, const BuiltinCheckLimits& limits) {
    auto r = RunBuiltinCheck(*repo_, root, name, args, changed, all_paths, limits);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : BuiltinCheckResult{false, "(error)"};
  }

  TempDir dir_;
  std::unique_ptr<Repository> repo_;
  int imports_ = 0;
};

// The output's lines, the summary (last line) left out.
std::vector<std::string> Problems(const BuiltinCheckResult& r) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = r.output.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(r.output.substr(start, nl - start));
  }
  if (!lines.empty()) lines.pop_back();
  return lines;
}

std::string Summary(const BuiltinCheckResult& r) {
  std::string out = r.output;
  if (out.ends_with('\n')) out.pop_back();
  return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
}

using Lines = std::vector<std::string>;

// ---- csv ------------------------------------------------------------------

TEST_F(BuiltinCheckTest, CsvPassesWhenEveryTableParsesWithTheFirstOnesHeader) {
  auto r = RunAll(
      {{"a.csv", "id,score\n1,0.5\n2,\"1e3\"\n"}, {"sub/b.tsv", "id\tscore\n3\t-2\n"}, {"notes.txt", "not matched"}},
      "csv", {"*.?sv", "--numeric", "score"});
  EXPECT_TRUE(r.passed) << r.output;
  EXPECT_TRUE(Problems(r).empty());
  EXPECT_EQ(Summary(r), "2 CSV/TSV files checked");
}

TEST_F(BuiltinCheckTest, CsvRaggedRowIsReportedWithPathAndLine) {
  auto r = RunAll({{"a.csv", "id,label\n1,cat\n2,dog,extra\n3,cow\n"}}, "csv", {"*.csv"});
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(Problems(r), Lines{"a.csv:3: row has 3 fields, the header 2"});
}

TEST_F(BuiltinCheckTest, CsvUnterminatedQuoteIsReportedWithTheLineItStarts) {
  auto r = RunAll({{"a.csv", "id,label\n1,cat\n2,\"dog\n3,cow\n"}}, "csv", {"*.csv"});
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(Problems(r), Lines{"a.csv:3: a quoted field never ends"});
}

TEST_F(BuiltinCheckTest, CsvLineNumbersCountTheLinesOfQuotedNewlines) {
  auto r = RunAll({{"a.csv", "id,note\n1,\"two\nlines\"\n2,ok,extra\n"}}, "csv", {"*.csv"});
  EXPECT_EQ(Problems(r), Lines{"a.csv:4: row has 3 fields, the header 2"});
}

TEST_F(BuiltinCheckTest, CsvSecondFileWithAnotherHeaderIsReportedWithHowItDiffers) {
  auto r = RunAll(
      {{"a.csv", "id,label,score\n1,cat,1\n"}, {"b.csv", "id,class\n2,dog\n"}, {"c.csv", "id,score,label\n3,2,cow\n"}},
      "csv", {"*.csv"});
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(Problems(r), (Lines{"b.csv:1: header differs from a.csv's: 2 columns, not 3; lacks \"label\", \"score\"; "
                                "extra \"class\"",
                                "c.csv:1: header differs from a.csv's: the same columns in another order (column 2 is "
                                "\"score\", not \"label\")"}));
}

TEST_F(BuiltinCheckTest, CsvFirstFileIsFirstInPathOrderNotWalkOrder) {
  // "a.csv" sorts before "a/x.csv" as a path (but after the directory "a"
  // as a name): a.csv's header is the reference.
  auto r = RunAll({{"a/x.csv", "k\n1\n"}, {"a.csv", "id\n1\n"}}, "csv", {"*.csv"});
  EXPECT_EQ(Problems(r), Lines{"a/x.csv:1: header differs from a.csv's: lacks \"id\"; extra \"k\""});
}

TEST_F(BuiltinCheckTest, CsvNonNumericValueInNumericColumnIsReportedWithPathLineColumnAndValue) {
  auto r = RunAll({{"a.csv", "id,score,weight\n1,0.5,2\n2,abc,3\n3, 7 ,x1\n4,+1e-3,.5\n"}}, "csv",
                  {"*.csv", "--numeric", "score,weight"});
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(Problems(r), (Lines{"a.csv:3: column \"score\": \"abc\" is not a number",
                                "a.csv:4: column \"weight\": \"x1\" is not a number"}));
}

TEST_F(BuiltinCheckTest, CsvNanInfAndHexAreNotNumbers) {
  auto r = RunAll({{"a.csv", "v\nnan\ninf\n0x1A\n1e999\n"}}, "csv", {"*.csv", "--numeric=v"});
  EXPECT_EQ(Problems(r),
            (Lines{"a.csv:2: column \"v\": \"nan\" is not a number", "a.csv:3: column \"v\": \"inf\" is not a number",
                   "a.csv:4: column \"v\": \"0x1A\" is not a number"}));
}

TEST_F(BuiltinCheckTest, CsvEmptyNumericCellIsAProblemUnlessAllowed) {
  Files files = {{"a.csv", "id,score\n1,\n2,3\n"}};
  EXPECT_EQ(Problems(RunAll(files, "csv", {"*.csv", "--numeric", "score"})),
            Lines{"a.csv:2: column \"score\" is empty"});
  EXPECT_TRUE(RunAll(files, "csv", {"*.csv", "--numeric", "score", "--allow-empty"}).passed);
}

TEST_F(BuiltinCheckTest, CsvMissingNumericColumnIsReported) {
  auto r = RunAll({{"a.csv", "id\n1\n"}}, "csv", {"*.csv", "--numeric", "score"});
  EXPECT_EQ(Problems(r), Lines{"a.csv:1: no column \"score\" (a --numeric column)"});
}

TEST_F(BuiltinCheckTest, CsvFileOfAnotherExtensionMatchingTheGlobIsReported) {
  auto r = RunAll({{"data/a.csv", "id\n1\n"}, {"data/README", "hi\n"}}, "csv", {"data/*"});
  EXPECT_EQ(Problems(r), Lines{"data/README: not a CSV or TSV file (by its extension: .csv, .tsv or .tab)"});
}

TEST_F(BuiltinCheckTest, CsvEmptyFileHasNoHeader) {
  auto r = RunAll({{"a.csv", ""}}, "csv", {"*.csv"});
  EXPECT_EQ(Problems(r), Lines{"a.csv:1: no header line"});
}

TEST_F(BuiltinCheckTest, CsvWithNoMatchingFilesPasses) {
  auto r = RunAll({{"a.txt", "x"}}, "csv", {"*.csv"});
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(Summary(r), "no CSV/TSV files match *.csv");
}

TEST_F(BuiltinCheckTest, CsvReadsOnlyChangedFiles) {
  Files files = {{"a.csv", "id\n1\n"}, {"b.csv", "id\n1,2\n"}, {"c.csv", "id\nx\n"}};
  auto r = RunChanged(files, "csv", {"*.csv"}, {"c.csv"});
  EXPECT_TRUE(r.passed) << r.output;
  EXPECT_EQ(Summary(r), "1 changed CSV/TSV file checked");
  EXPECT_EQ(Problems(RunAll(files, "csv", {"*.csv"})), Lines{"b.csv:2: row has 2 fields, the header 1"});
}

TEST_F(BuiltinCheckTest, CsvChangedFileIsComparedWithTheUnchangedFirstFile) {
  auto r = RunChanged({{"a.csv", "id,label\n1,cat\n"}, {"b.csv", "id\n2\n"}}, "csv", {"*.csv"}, {"b.csv"});
  EXPECT_EQ(Problems(r), Lines{"b.csv:1: header differs from a.csv's: 1 columns, not 2; lacks \"label\""});
}

TEST_F(BuiltinCheckTest, CsvChangedFirstFileIsComparedWithTheFirstUnchangedFile) {
  auto r = RunChanged({{"a.csv", "id,class\n1,cat\n"}, {"b.csv", "id,label\n2,dog\n"}, {"c.csv", "id,label\n"}}, "csv",
                      {"*.csv"}, {"a.csv"});
  EXPECT_EQ(Problems(r), Lines{"a.csv:1: header differs from unchanged b.csv's: lacks \"label\"; extra \"class\""});
}

// A large table, read in blocks of whole records, is judged exactly as if
// read whole: same problems at the same lines.
TEST_F(BuiltinCheckTest, CsvReadInBlocksReportsWhatAWholeReadReports) {
  std::string csv = "\xEF\xBB\xBFid,\"note\nwith newline\",score\r\n";
  for (int i = 0; i < 2000; i++) {
    std::string score = i % 397 == 5 ? "bad" + std::to_string(i) : std::to_string(i) + ".5";
    std::string note = i % 7 == 0 ? "\"multi\nline, \"\"quoted\"\"\"" : "plain";
    csv += std::to_string(i) + "," + note + "," + score + (i % 3 ? "\n" : "\r\n");
  }
  csv += "2000,ragged\n2001,x,1\n";
  Files files = {{"big.csv", csv}};
  Args args = {"*.csv", "--numeric", "score"};
  BuiltinCheckResult whole = RunAll(files, "csv", args);
  BuiltinCheckLimits small;
  small.table_block_bytes = 100;
  BuiltinCheckResult blocks = RunAll(files, "csv", args, small);
  EXPECT_EQ(Problems(whole).size(), 7u) << whole.output;  // six bad scores, one ragged row
  EXPECT_EQ(Problems(whole).back().substr(0, 8), "big.csv:");
  EXPECT_NE(Problems(whole).back().find("row has 2 fields, the header 3"), std::string::npos);
  EXPECT_EQ(blocks.output, whole.output);
}

TEST_F(BuiltinCheckTest, CsvRecordLongerThanTheLimitIsReportedAndTheRestSkipped) {
  std::string csv = "id,text\n1,short\n2,\"" + std::string(5000, 'x') + "\"\n3,short\n";
  BuiltinCheckLimits limits;
  limits.table_block_bytes = 64;
  limits.max_record_bytes = 1000;
  auto r = RunAll({{"a.csv", csv}}, "csv", {"*.csv"}, limits);
  EXPECT_EQ(Problems(r), Lines{"a.csv:3: a record longer than 1000 bytes; the rest of the file is not checked"});
}

TEST_F(BuiltinCheckTest, CsvRecordLongerThanTheLimitAcrossChunksIsReported) {
  // 3 MiB in one quoted field: it comes in several pieces and never ends
  // within the limit, so it is not held whole.
  std::string csv = "id,text\n1,short\n2,\"" + std::string(3 << 20, 'x') + "\"\n3,short\n";
  BuiltinCheckLimits limits;
  limits.max_record_bytes = 1 << 20;
  auto r = RunAll({{"a.csv", csv}}, "csv", {"*.csv"}, limits);
  EXPECT_EQ(Problems(r), Lines{"a.csv:3: a record longer than 1.0 MiB (1048576 bytes); the rest of the file is not "
                               "checked"});
}

TEST_F(BuiltinCheckTest, CsvRowsBeforeAStructuralFaultAreStillJudged) {
  auto r = RunAll({{"a.csv", "id,score\n1,x\n2,3,4\n3,y\n"}, {"0.csv", "id,score,note\n"}}, "csv",
                  {"*.csv", "--numeric", "score"});
  EXPECT_EQ(Problems(r),
            (Lines{"a.csv:1: header differs from 0.csv's: 2 columns, not 3; lacks \"note\"",
                   "a.csv:2: column \"score\": \"x\" is not a number", "a.csv:3: row has 3 fields, the header 2"}));
}

TEST_F(BuiltinCheckTest, CsvStrayQuoteInALargeFileIsFoundAtItsLine) {
  std::string csv = "id,text\n";
  for (int i = 0; i < 100; i++) csv += std::to_string(i) + (i == 50 ? ",a\"b\n" : ",ok\n");
  BuiltinCheckLimits limits;
  limits.table_block_bytes = 64;
  limits.max_record_bytes = 1000;
  auto r = RunAll({{"a.csv", csv}}, "csv", {"*.csv"}, limits);
  EXPECT_EQ(Problems(r), Lines{"a.csv:52: a quote inside an unquoted field"});
}

// ---- jsonl ----------------------------------------------------------------

TEST_F(BuiltinCheckTest, JsonlPassesWhenEveryLineIsAJsonValue) {
  auto r = RunAll({{"a.jsonl", "{\"id\": 1}\r\n[1, 2]\n\"text\"\n3.5\n{\"last\": \"no newline\"}"}, {"b.ndjson", ""}},
                  "jsonl", {"*"});
  EXPECT_TRUE(r.passed) << r.output;
  EXPECT_EQ(Summary(r), "2 JSONL files checked");
}

TEST_F(BuiltinCheckTest, JsonlInvalidLineIsReportedWithPathLineAndTheParsersReason) {
  auto r = RunAll({{"d/a.jsonl", "{\"id\": 1}\n{\"id\": 2,}\n{\"id\": 3} x\n"}}, "jsonl", {"*.jsonl"});
  EXPECT_FALSE(r.passed);
  auto p = Problems(r);
  ASSERT_EQ(p.size(), 2u) << r.output;
  EXPECT_TRUE(p[0].starts_with("d/a.jsonl:2: invalid JSON: column 10: syntax error while parsing object key")) << p[0];
  EXPECT_TRUE(p[1].starts_with("d/a.jsonl:3: invalid JSON: column ")) << p[1];
}

TEST_F(BuiltinCheckTest, JsonlBlankLineIsAProblemUnlessAllowed) {
  Files files = {{"a.jsonl", "{}\n\n  \n{}\n"}};
  EXPECT_EQ(Problems(RunAll(files, "jsonl", {"*.jsonl"})), (Lines{"a.jsonl:2: blank line", "a.jsonl:3: blank line"}));
  EXPECT_TRUE(RunAll(files, "jsonl", {"*.jsonl", "--allow-blank"}).passed);
}

TEST_F(BuiltinCheckTest, JsonlLinesAcrossChunksKeepTheirNumbers) {
  // About 3 MiB: several chunks, so lines are cut between pieces.
  std::string jsonl;
  for (int i = 1; i <= 60000; i++) {
    jsonl += i == 54321 ? "{\"id\": oops}\n"
                        : "{\"id\": " + std::to_string(i) + ", \"pad\": \"" + std::string(40, 'p') + "\"}\n";
  }
  auto r = RunAll({{"big.jsonl", jsonl}}, "jsonl", {"*.jsonl"});
  auto p = Problems(r);
  ASSERT_EQ(p.size(), 1u) << r.output;
  EXPECT_TRUE(p[0].starts_with("big.jsonl:54321: invalid JSON")) << p[0];
}

TEST_F(BuiltinCheckTest, JsonlLineLongerThanTheLimitIsReportedAndTheRestSkipped) {
  BuiltinCheckLimits limits;
  limits.max_record_bytes = 100;
  auto r = RunAll({{"a.jsonl", "{}\n\"" + std::string(500, 'x') + "\"\nbad\n"}}, "jsonl", {"*.jsonl"}, limits);
  EXPECT_EQ(Problems(r), Lines{"a.jsonl:2: a line longer than 100 bytes; the rest of the file is not checked"});
}

TEST_F(BuiltinCheckTest, JsonlReadsOnlyChangedFilesAndRefusesOtherExtensions) {
  Files files = {{"a.jsonl", "bad\n"}, {"b.jsonl", "{}\n"}, {"c.json", "{}"}};
  auto r = RunChanged(files, "jsonl", {"*.json*"}, {"b.jsonl", "c.json"});
  EXPECT_EQ(Problems(r), Lines{"c.json: not a JSONL file (by its extension: .jsonl or .ndjson)"});
  EXPECT_EQ(Summary(r), "1 changed JSONL file checked");
}

// ---- nonempty -------------------------------------------------------------

TEST_F(BuiltinCheckTest, NonemptyReportsEmptyFilesOfTheGlob) {
  Files files = {{"a.txt", "x"}, {"sub/empty.txt", ""}, {"empty.bin", ""}};
  EXPECT_EQ(Problems(RunAll(files, "nonempty", {})), (Lines{"empty.bin: empty file", "sub/empty.txt: empty file"}));
  EXPECT_EQ(Problems(RunAll(files, "nonempty", {"*.txt"})), Lines{"sub/empty.txt: empty file"});
  EXPECT_TRUE(RunAll(files, "nonempty", {"a.*"}).passed);
}

TEST_F(BuiltinCheckTest, NonemptyJudgesOnlyChangedFiles) {
  Files files = {{"a.txt", "x"}, {"old-empty.txt", ""}};
  auto r = RunChanged(files, "nonempty", {}, {"a.txt", "no/such/file"});
  EXPECT_TRUE(r.passed) << r.output;
  EXPECT_EQ(Summary(r), "1 changed file checked");
}

// ---- unique ---------------------------------------------------------------

TEST_F(BuiltinCheckTest, UniqueReportsEachGroupOfIdenticalFiles) {
  std::string big = test_util::RandomBytes(3 << 20, 7);  // several chunks
  auto r = RunAll({{"a.txt", "same"},
                   {"b/c.txt", "same"},
                   {"d.txt", "same"},
                   {"e.txt", "other"},
                   {"big1", big},
                   {"big2", big},
                   {"big3", big + "!"}},
                  "unique", {});
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(Problems(r), (Lines{"a.txt: same content as b/c.txt, d.txt", "big1: same content as big2"}));
  EXPECT_EQ(Summary(r), "7 files compared, 2 groups of identical files");
}

TEST_F(BuiltinCheckTest, UniqueIgnoresEmptyFilesAndLooksAtTheWholeTree) {
  Files files = {{"e1", ""}, {"e2", ""}, {"a.csv", "x"}, {"b.csv", "x"}, {"c.txt", "x"}};
  // Whole tree, whatever changed; only the glob's files.
  auto r = RunChanged(files, "unique", {"*.csv"}, {});
  EXPECT_EQ(Problems(r), Lines{"a.csv: same content as b.csv"});
  EXPECT_TRUE(RunAll(files, "unique", {"e*"}).passed);
}

// ---- count ----------------------------------------------------------------

TEST_F(BuiltinCheckTest, CountChecksTheNumberOfMatchingFilesInTheWholeTree) {
  Files files = {{"img/1.png", "1"}, {"img/2.png", "2"}, {"img/3.png", "3"}, {"x.png", "4"}};
  ObjectId root = Tree(files);
  auto run = [&](const Args& args) { return Run(root, "count", args, {}, false, {}); };
  EXPECT_TRUE(run({"img/*.png", "--min", "3", "--max", "3"}).passed);
  EXPECT_EQ(Summary(run({"*.png", "--min=1"})), "4 files match *.png");
  EXPECT_EQ(Problems(run({"img/*.png", "--min", "4"})), Lines{"3 files match img/*.png, fewer than the minimum of 4"});
  EXPECT_EQ(Problems(run({"*.png", "--max", "2"})), Lines{"4 files match *.png, more than the maximum of 2"});
  EXPECT_EQ(Problems(run({"*.jpg", "--min", "1"})), Lines{"0 files match *.jpg, fewer than the minimum of 1"});
}

// ---- max-size -------------------------------------------------------------

TEST_F(BuiltinCheckTest, MaxSizeReportsFilesLargerThanTheLimit) {
  Files files = {{"small.bin", std::string(1024, 'a')}, {"big.bin", std::string(3000, 'b')}, {"big.txt", "xx"}};
  EXPECT_TRUE(RunAll(files, "max-size", {"3000"}).passed);
  EXPECT_TRUE(RunAll(files, "max-size", {"1K", "small.*"}).passed);
  auto r = RunAll(files, "max-size", {"1k", "*.bin"});
  EXPECT_EQ(Problems(r), Lines{"big.bin: 2.9 KiB (3000 bytes), larger than the limit of 1.0 KiB (1024 bytes)"});
  EXPECT_EQ(Summary(r), "2 files checked");
}

TEST_F(BuiltinCheckTest, MaxSizeJudgesOnlyChangedFiles) {
  auto r = RunChanged({{"big.bin", std::string(3000, 'b')}, {"ok.bin", "x"}}, "max-size", {"1KiB"}, {"ok.bin"});
  EXPECT_TRUE(r.passed) << r.output;
}

// ---- output ---------------------------------------------------------------

TEST_F(BuiltinCheckTest, OutputKeepsTheFirstProblemsAndCountsTheRest) {
  BuiltinCheckLimits limits;
  limits.max_problems = 2;
  auto r = RunAll({{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}, {"e", ""}}, "nonempty", {}, limits);
  EXPECT_EQ(r.output, "a: empty file\nb: empty file\n... and 3 more problems\n5 files checked\n");
}

// ---- definitions ----------------------------------------------------------

TEST(ValidateBuiltinCheck, AcceptsWellFormedDefinitions) {
  TUSK_EXPECT_OK(ValidateBuiltinCheck("csv", {"labels/**/*.csv", "--numeric", "a,b", "--numeric=c", "--allow-empty"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("jsonl", {"*.jsonl", "--allow-blank"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("nonempty", {}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("unique", {"images/**"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("count", {"*.png", "--max", "10"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("count", {"*.png", "--min=2", "--max=2"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("max-size", {"10M"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("max-size", {"1GiB", "*.bin"}));
  TUSK_EXPECT_OK(ValidateBuiltinCheck("max-size", {"512"}));
}

void ExpectRefused(const std::string& name, const Args& args, const std::string& says) {
  Status st = ValidateBuiltinCheck(name, args);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << name;
  EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
}

TEST(ValidateBuiltinCheck, RefusesBadDefinitionsSayingWhy) {
  ExpectRefused("csvv", {"*.csv"},
                "no built-in check named \"csvv\" (there are csv, jsonl, nonempty, unique, count, max-size)");
  ExpectRefused("csv", {}, "built-in csv: missing GLOB (usage: csv GLOB [--numeric COL[,COL...]] [--allow-empty])");
  ExpectRefused("jsonl", {"--allow-blank"}, "missing GLOB");
  ExpectRefused("csv", {"*.csv", "--numeric"}, "--numeric needs a value");
  ExpectRefused("csv", {"*.csv", "--numeric", "a,,b"}, "empty column name");
  ExpectRefused("csv", {"*.csv", "--nmeric", "a"}, "unknown option --nmeric");
  ExpectRefused("csv", {"*.csv", "--allow-empty=yes"}, "--allow-empty takes no value");
  ExpectRefused("csv", {"a.csv", "b.csv"}, "unexpected argument \"b.csv\"");
  ExpectRefused("csv", {"/data/*.csv"}, "relative to the dataset's root");
  ExpectRefused("unique", {"data/"}, "data/** for every file below");
  ExpectRefused("max-size", {}, "missing SIZE");
  ExpectRefused("max-size", {"ten"}, "size \"ten\" does not start with a number");
  ExpectRefused("max-size", {"10MB"}, "is ambiguous");
  ExpectRefused("max-size", {"10X"}, "unknown unit");
  ExpectRefused("max-size", {"99999999999T"}, "too large");
  ExpectRefused("count", {"*.png"}, "count needs --min or --max");
  ExpectRefused("count", {"*.png", "--min", "5", "--max", "2"}, "--min 5 is more than --max 2");
  ExpectRefused("count", {"*.png", "--min", "-1"}, "--min wants a whole number, not \"-1\"");
}

TEST(ValidateBuiltinCheck, RunRefusesWhatValidateRefuses) {
  TempDir dir;
  TUSK_ASSERT_OK(Repository::Create(dir.Sub("store"), StoreConfig{}));
  TUSK_ASSERT_OK_AND_ASSIGN(auto repo, Repository::Open(dir.Sub("store")));
  auto r = RunBuiltinCheck(*repo, ObjectId(), "count", {"*"}, {}, true);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST(BuiltinCheckUsage, ListsEveryBuiltInWithItsArguments) {
  std::string usage = "\n" + BuiltinCheckUsage();
  for (const char* head :
       {"csv GLOB [--numeric COL[,COL...]] [--allow-empty]", "jsonl GLOB [--allow-blank]", "nonempty [GLOB]",
        "unique [GLOB]", "count GLOB [--min N] [--max N]", "max-size SIZE [GLOB]"}) {
    EXPECT_NE(usage.find(std::string("\n") + head), std::string::npos) << head << " in\n" << usage;
  }
}

}  // namespace
}  // namespace tusk
