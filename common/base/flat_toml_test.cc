#include "common/base/flat_toml.h"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace manifold {
namespace {

using Map = std::map<std::string, std::string>;

TEST(FlatTomlTest, ParsesStringsNumbersBooleansAndComments) {
  const std::string text =
      "# manifold-worker settings\n"
      "\n"
      "coordinator = \"tcp://10.0.0.1:7700\"\n"
      "   indented   =   \"spaced\"   # trailing comment\n"
      "slots = 4\n"
      "offset = -12 # a comment after a number\n"
      "emulate = true\n"
      "drain = false\n"
      "hash_in_string = \"a # b\"\n"
      "empty = \"\"\n"
      "dash-key_2 = 0\n"
      "crlf = \"dos\"\r\n"
      "   # indented comment\n"
      "\t\n";
  auto parsed = ParseFlatToml(text, "worker.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  const Map want = {
      {"coordinator", "tcp://10.0.0.1:7700"},
      {"indented", "spaced"},
      {"slots", "4"},
      {"offset", "-12"},
      {"emulate", "true"},
      {"drain", "false"},
      {"hash_in_string", "a # b"},
      {"empty", ""},
      {"dash-key_2", "0"},
      {"crlf", "dos"},
  };
  EXPECT_EQ(*parsed, want);
}

TEST(FlatTomlTest, UnescapesStrings) {
  auto parsed = ParseFlatToml(R"(s = "say \"hi\"\tand\\or\nbye")" "\n", "f.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->at("s"), "say \"hi\"\tand\\or\nbye");
}

TEST(FlatTomlTest, EmptyAndCommentOnlyTextsAreEmptyMaps) {
  for (const std::string text : {"", "\n\n", "# only a comment\n", "# no newline"}) {
    auto parsed = ParseFlatToml(text, "f.toml");
    ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
    EXPECT_TRUE(parsed->empty()) << text;
  }
}

TEST(FlatTomlTest, ErrorsNameTheFileAndLine) {
  const struct {
    std::string text;
    std::string message;
  } cases[] = {
      {"a = 1\n\n[worker]\nb = 2\n",
       "c.toml:3: tables are not supported; write the keys at the top level"},
      {"  [[array.of.tables]]\n",
       "c.toml:1: tables are not supported; write the keys at the top level"},
      {"a = 1\njust words\n", "c.toml:2: expected key = value"},
      {"= 1\n", "c.toml:1: missing key"},
      {"a b = 1\n", "c.toml:1: bad key \"a b\""},
      {"\"quoted\" = 1\n", "c.toml:1: bad key \"\"quoted\"\""},
      {"a = 1\n# comment\na = 2\n", "c.toml:3: duplicate key \"a\""},
      {"a = \"x\"\na = \"x\"\n", "c.toml:2: duplicate key \"a\""},
      {"a =\n", "c.toml:1: missing value for \"a\""},
      {"a = # nothing\n", "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
      {"a = \"open\n", "c.toml:1: unterminated string"},
      {"a = \"escaped quote\\\"\n", "c.toml:1: unterminated string"},
      {"a = \"ends in a backslash\\\n", "c.toml:1: unterminated string"},
      {"a = \"bad \\q escape\"\n", "c.toml:1: unknown escape \\q"},
      {"a = \"x\" y\n", "c.toml:1: unexpected text after the string"},
      {"a = bare\n", "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
      {"a = True\n", "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
      {"a = 1.5\n", "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
      {"a = 1979-05-27\n",
       "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
      {"a = [1, 2]\n", "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
      {"a = 'single'\n", "c.toml:1: value of \"a\" must be a \"string\", a number, true or false"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto parsed = ParseFlatToml(c.text, "c.toml");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(parsed.error().code, "config.syntax");
    EXPECT_EQ(parsed.error().message, c.message);
  }
}

class TempFile {
 public:
  TempFile() {
    std::string tmpl = "/tmp/mf_flat_toml_XXXXXX";
    MF_ASSERT(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    dir_ = tmpl;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

TEST(FlatTomlTest, ReadsAFileAndNamesItInErrors) {
  TempFile tmp;
  auto parsed = ReadFlatToml(tmp.Write("ok.toml", "slots = 2\nname = \"w1\"\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(*parsed, (Map{{"slots", "2"}, {"name", "w1"}}));

  const std::string bad = tmp.Write("bad.toml", "slots = 2\n[table]\n");
  parsed = ReadFlatToml(bad);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, "config.syntax");
  EXPECT_EQ(parsed.error().message,
            bad + ":2: tables are not supported; write the keys at the top level");

  const std::string missing = tmp.dir() + "/missing.toml";
  parsed = ReadFlatToml(missing);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(parsed.error().code, "config.read");
  EXPECT_EQ(parsed.error().message, "cannot read " + missing);
}

}  // namespace
}  // namespace manifold
