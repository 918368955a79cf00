// Which key identifies a row: declared, detected, or none (keyless).
#include <gtest/gtest.h>

#include "store/merge/table.h"
#include "tests/store/merge/table_test_util.h"

namespace tusk {
namespace {

KeyChoice KeyOf(std::string_view old_csv, std::string_view new_csv, const KeySpec& key = std::nullopt) {
  auto d = DiffTables(old_csv, new_csv, TableFormat::kCsv, key);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? d->key : KeyChoice{};
}

TEST(TableKey, ColumnNamedIdIsDetected) {
  KeyChoice k = KeyOf("label,ID,v\na,1,x\nb,2,y\n", "label,ID,v\na,1,x\n");
  EXPECT_EQ(k.columns, (std::vector<std::string>{"ID"}));
  EXPECT_FALSE(k.declared);
  EXPECT_EQ(k.Describe(), "key ID");
}

TEST(TableKey, ColumnEndingInUnderscoreIdIsDetected) {
  EXPECT_EQ(KeyOf("label,sample_id\na,7\nb,8\n", "label,sample_id\na,7\n").columns,
            (std::vector<std::string>{"sample_id"}));
  EXPECT_EQ(KeyOf("label,filename\na,x.png\n", "label,filename\na,x.png\n").columns,
            (std::vector<std::string>{"filename"}));
}

TEST(TableKey, FirstColumnIsTheFallbackWhenNothingIsNamedLikeAnIdentifier) {
  KeyChoice k = KeyOf("label,score\ncat,1\ndog,2\n", "label,score\ncat,3\n");
  EXPECT_EQ(k.columns, (std::vector<std::string>{"label"}));
  EXPECT_NE(k.Describe().find("first column"), std::string::npos) << k.Describe();
}

TEST(TableKey, NonUniqueCandidateMakesTheTableKeylessWithTheReason) {
  KeyChoice k = KeyOf("id,v\n1,a\n2,b\n", "id,v\n1,a\n1,b\n");
  EXPECT_TRUE(k.columns.empty());
  EXPECT_EQ(k.Describe(), "no key: rows compared whole (column id repeats a value on line 3 of new (first on line 2))");
}

TEST(TableKey, DeclaredKeyMayHaveSeveralColumns) {
  std::vector<std::string> key{"id", "lang"};
  auto d = DiffTables("id,lang,text\n1,en,hi\n1,fr,salut\n", "id,lang,text\n1,en,hello\n1,fr,salut\n",
                      TableFormat::kCsv, key);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->key.Describe(), "key (id, lang) (declared)");
  ASSERT_EQ(d->rows.size(), 1u);
  EXPECT_EQ(d->rows[0].key, "id=1, lang=en");
}

TEST(TableKey, DeclaredKeyThatIsMissingOrRepeatsIsAnError) {
  std::vector<std::string> missing{"uuid"};
  auto m = DiffTables("id\n1\n", "id\n1\n", TableFormat::kCsv, missing);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("uuid is missing in old"), std::string::npos) << m.status().message();
  std::vector<std::string> id{"id"};
  auto r = DiffTables("id\n1\n", "id\n1\n2\n1\n", TableFormat::kCsv, id);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 4 of new"), std::string::npos) << r.status().message();
}

TEST(TableKey, JsonlKeyFieldMissingInARowFallsBackToKeyless) {
  auto d = DiffTables("{\"id\":1}\n{\"v\":2}\n", "{\"id\":1}\n{\"v\":2}\n", TableFormat::kJsonl, std::nullopt);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->key.columns.empty());
  EXPECT_NE(d->key.reason.find("line 2 of old has no id"), std::string::npos) << d->key.reason;
}

TEST(TableKey, QuotedKeysMatchUnquotedOnes) {
  auto d = DiffTables("id,v\n\"1\",a\n\"a,b\",x\n", "id,v\n1,b\n\"a,b\",x\n", TableFormat::kCsv, std::nullopt);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->rows.size(), 1u);
  EXPECT_EQ(d->rows[0].kind, RowChange::Kind::kChanged);
  EXPECT_EQ(d->rows[0].key, "id=1");
}

}  // namespace
}  // namespace tusk
