// What is a table: CSV/TSV per RFC 4180 and JSONL, what is refused (with
// the version and line), and that every byte of a cell survives.
#include <gtest/gtest.h>

#include "store/merge/table.h"
#include "store/merge/table_internal.h"

namespace tusk {
namespace {

using table::Cell;
using table::Table;

std::vector<std::string> Cells(const Table& t, size_t row) {
  std::vector<Cell> cells;
  t.DecodeRow(row, &cells);
  std::vector<std::string> out;
  for (const auto& c : cells) out.push_back(c.present ? c.text : "<absent>");
  return out;
}

Status ParseError(std::string_view bytes, TableFormat f = TableFormat::kCsv) {
  auto t = Table::Parse(bytes, f, "ours");
  return t.ok() ? Status::Ok() : t.status();
}

TEST(TableParse, QuotedFieldsHoldSeparatorsDoubledQuotesAndNewlines) {
  std::string csv = "id,text\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,plain\n";
  auto t = Table::Parse(csv, TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->row_count(), 4u);
  EXPECT_EQ(Cells(*t, 0), (std::vector<std::string>{"1", "a,b"}));
  EXPECT_EQ(Cells(*t, 1), (std::vector<std::string>{"2", "say \"hi\""}));
  EXPECT_EQ(Cells(*t, 2), (std::vector<std::string>{"3", "two\nlines"}));
  EXPECT_EQ(t->RowLine(2), 4u);
  EXPECT_EQ(t->RowLine(3), 6u) << "a quoted newline moves later rows down a line";
}

TEST(TableParse, CrlfAndLfBothEndRecordsEvenMixedInOneFile) {
  auto t = Table::Parse("id,v\r\n1,a\n2,b\r\n3,\"c\r\nd\"\r\n", TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->row_count(), 3u);
  EXPECT_EQ(Cells(*t, 0), (std::vector<std::string>{"1", "a"}));
  EXPECT_EQ(Cells(*t, 1), (std::vector<std::string>{"2", "b"}));
  EXPECT_EQ(Cells(*t, 2), (std::vector<std::string>{"3", "c\r\nd"})) << "a CRLF inside quotes is data";
  EXPECT_EQ(t->RowEol(0), "\n");
  EXPECT_EQ(t->RowEol(1), "\r\n");
}

TEST(TableParse, RowsKeepTheirExactBytes) {
  std::string csv = "id,v\n1, spaced \n2,\"quoted\"\n";
  auto t = Table::Parse(csv, TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->RowBytes(0), "1, spaced \n");
  EXPECT_EQ(t->RowBytes(1), "2,\"quoted\"\n");
  EXPECT_EQ(Cells(*t, 0)[1], " spaced ") << "spaces are data, never trimmed";
}

TEST(TableParse, BomBeforeTheHeaderIsNotPartOfTheFirstColumnName) {
  auto t = Table::Parse("\xEF\xBB\xBFid,v\n1,a\n", TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->has_bom());
  EXPECT_EQ(t->columns()[0], "id");
}

TEST(TableParse, InvalidUtf8InACellIsKeptByteForByte) {
  auto t = Table::Parse("id,v\n1,\xff\xfe\x80\n", TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Cells(*t, 0)[1], "\xff\xfe\x80");
}

TEST(TableParse, HeaderWithoutRowsIsATable) {
  auto t = Table::Parse("id,v\n", TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->row_count(), 0u);
  auto u = Table::Parse("id,v", TableFormat::kCsv, "ours");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->columns().size(), 2u);
}

TEST(TableParse, FinalLineWithoutNewlineIsARow) {
  auto t = Table::Parse("id,v\n1,a\n2,b", TableFormat::kCsv, "ours");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->row_count(), 2u);
  EXPECT_EQ(t->RowEol(1), "");
  EXPECT_EQ(Cells(*t, 1), (std::vector<std::string>{"2", "b"}));
}

TEST(TableParse, TsvSeparatesByTabsWithTheSameQuoting) {
  auto t = Table::Parse("id\tv\n1\t\"a\tb\"\n2\tx,y\n", TableFormat::kTsv, "ours");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Cells(*t, 0), (std::vector<std::string>{"1", "a\tb"}));
  EXPECT_EQ(Cells(*t, 1), (std::vector<std::string>{"2", "x,y"}));
}

TEST(TableParse, EmbeddedNulIsNotATable) {
  Status s = ParseError(std::string("id,v\n1,a\n2,b\0c\n", 15));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("ours line 3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("NUL"), std::string::npos) << s.message();
}

TEST(TableParse, UnterminatedQuoteIsNotATable) {
  Status s = ParseError("id,v\n1,\"never ends\n2,b\n");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s.message();
}

TEST(TableParse, QuoteInsideAnUnquotedFieldIsNotATable) {
  EXPECT_FALSE(ParseError("id,v\n1,a\"b\n").ok());
  EXPECT_FALSE(ParseError("id,v\n1,\"a\"b\n").ok()) << "text after a closing quote";
}

TEST(TableParse, RaggedRowIsRefusedNamingItsLine) {
  Status s = ParseError("id,v\n1,a\n2,b,c\n");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("ours line 3"), std::string::npos) << s.message();
  Status after_quoted_newline = ParseError("id,v\n1,\"a\nb\"\n2\n");
  EXPECT_NE(after_quoted_newline.message().find("line 4"), std::string::npos) << after_quoted_newline.message();
}

TEST(TableParse, DuplicateOrEmptyColumnNameIsNotATable) {
  EXPECT_NE(ParseError("id,v,v\n1,a,b\n").message().find("\"v\" appears twice"), std::string::npos);
  EXPECT_NE(ParseError("id,,w\n1,a,b\n").message().find("column 2 has no name"), std::string::npos);
  EXPECT_FALSE(ParseError("").ok()) << "no header line";
}

TEST(TableParse, JsonlFieldsAreColumnsInOrderOfFirstAppearance) {
  auto t = Table::Parse("{\"id\":1,\"a\":\"x\"}\n{\"b\":[1,2],\"id\":2}\r\n", TableFormat::kJsonl, "ours");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->columns(), (std::vector<std::string>{"id", "a", "b"}));
  EXPECT_EQ(Cells(*t, 1), (std::vector<std::string>{"2", "<absent>", "[1,2]"}));
}

TEST(TableParse, JsonlValuesCompareAsValues) {
  auto t = Table::Parse(
      "{\"n\":1.0,\"o\":{\"b\":1,\"a\":[2.0,{\"y\":1,\"x\":2}]}}\n"
      "{\"n\":1,\"o\":{\"a\":[2,{\"x\":2,\"y\":1}],\"b\":1}}\n",
      TableFormat::kJsonl, "ours");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Cells(*t, 0), Cells(*t, 1)) << "1.0 == 1 and key order inside objects is irrelevant";
  std::vector<Cell> cells;
  t->DecodeRow(0, &cells);
  EXPECT_EQ(cells[1].out, "{\"b\":1,\"a\":[2.0,{\"y\":1,\"x\":2}]}") << "written as the line had it";
}

TEST(TableParse, JsonlLineThatIsNotAnObjectIsRefused) {
  EXPECT_NE(ParseError("{\"id\":1}\n[1,2]\n", TableFormat::kJsonl).message().find("ours line 2: not a JSON object"),
            std::string::npos);
  EXPECT_NE(ParseError("{\"id\":1}\n42\n", TableFormat::kJsonl).message().find("line 2"), std::string::npos);
  EXPECT_NE(ParseError("{\"id\":1}\n{\"id\":\n", TableFormat::kJsonl).message().find("line 2: not valid JSON"),
            std::string::npos);
  EXPECT_FALSE(ParseError("{\"id\":1}\n\n{\"id\":2}\n", TableFormat::kJsonl).ok()) << "a blank line";
  EXPECT_FALSE(ParseError(std::string(600, '['), TableFormat::kJsonl).ok());
  EXPECT_TRUE(ParseError("", TableFormat::kJsonl).ok()) << "an empty JSONL file is a table of no rows";
}

TEST(TableParse, ErrorsNameTheVersion) {
  auto m = MergeTables("id,v\n1,a\n", "id,v\n1,a\n", "id,v\n1,a,b\n", TableFormat::kCsv, std::nullopt);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("theirs line 2"), std::string::npos) << m.status().message();
  auto d = DiffTables("id,v\n1,\"a\n", "id,v\n", TableFormat::kCsv, std::nullopt);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("old line 2"), std::string::npos) << d.status().message();
}

TEST(TableFormat, ChosenByExtensionCaseInsensitively) {
  EXPECT_EQ(TableFormatForPath("a/b.CSV"), TableFormat::kCsv);
  EXPECT_EQ(TableFormatForPath("x.tab"), TableFormat::kTsv);
  EXPECT_EQ(TableFormatForPath("x.tsv"), TableFormat::kTsv);
  EXPECT_EQ(TableFormatForPath("x.ndjson"), TableFormat::kJsonl);
  EXPECT_EQ(TableFormatForPath("x.jsonl"), TableFormat::kJsonl);
  EXPECT_EQ(TableFormatForPath("x.json"), std::nullopt);
  EXPECT_EQ(TableFormatForPath("dir.csv/readme"), std::nullopt);
  EXPECT_STREQ(TableFormatName(TableFormat::kJsonl), "JSONL");
}

TEST(ConflictNotation, FoundInCellsAndAsLineMergeMarkers) {
  EXPECT_TRUE(HasConflictNotation("id,v\n1,<<<<<<< ours: a ||||||| base: b ======= theirs: c >>>>>>>\n"));
  EXPECT_TRUE(HasConflictNotation("a\n<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n"));
  EXPECT_TRUE(HasConflictNotation("a\r\n=======\r\n"));
  EXPECT_FALSE(HasConflictNotation("id,v\n1,a <<<<<<< b\n2,==========\n"));
}

TEST(ConflictNotation, LinesArePointedAt) {
  EXPECT_EQ(ConflictNotationLines("id,v\n1,a\n2,<<<<<<< ours: a ||||||| base: b ======= theirs: c >>>>>>>\n"
                                  "<<<<<<< ours\n=======\n>>>>>>> theirs\n"),
            (std::vector<uint64_t>{3, 4, 5, 6}));
  EXPECT_TRUE(ConflictNotationLines("id,v\n1,a\n").empty());
}

}  // namespace
}  // namespace tusk
