#include "common/fs/path.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace manifold::fs {
namespace {

struct CleanCase {
  std::string raw;
  std::string clean;
};

TEST(PathTest, ParseCleans) {
  const CleanCase cases[] = {
      {"a/b", "a/b"},
      {"/etc/passwd", "etc/passwd"},  // root-relative
      {"//a//b/", "a/b"},
      {"./a/./b/.", "a/b"},
      {"a/../b", "b"},
      {"a/b/..", "a"},
      {"a/b/../../c", "c"},
      {"", ""},
      {"/", ""},
      {".", ""},
      {"./", ""},
      {"a\\..\\b", "a\\..\\b"},  // a backslash is an ordinary byte
      {"...", "..."},
      {".wh..wh..opq", ".wh..wh..opq"},
  };
  for (const auto& c : cases) {
    auto p = Path::Parse(c.raw);
    ASSERT_TRUE(p.ok()) << c.raw << ": " << p.error().ToString();
    EXPECT_EQ(p->str(), c.clean) << c.raw;
  }
}

TEST(PathTest, ParseRejectsEscapes) {
  for (std::string raw : {"..", "../x", "../../etc/passwd", "a/../../b", "/../x", "/..",
                          "a/b/../../../c", "./.."}) {
    auto p = Path::Parse(raw);
    ASSERT_FALSE(p.ok()) << raw;
    EXPECT_EQ(p.error().kind, ErrorKind::kSecurity) << raw;
    EXPECT_EQ(p.error().code, "fs.path.escape") << raw;
    EXPECT_EQ(p.error().message, "path escapes the root") << raw;
  }
}

TEST(PathTest, ParseRejectsNul) {
  auto p = Path::Parse(std::string("a\0b", 3));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(p.error().code, "fs.path.nul");
  EXPECT_EQ(p.error().message, "path contains a NUL byte");
}

TEST(PathTest, Accessors) {
  Path p = *Path::Parse("a/bb/ccc");
  EXPECT_EQ(p.Depth(), 3u);
  EXPECT_EQ(p.Parent().str(), "a/bb");
  EXPECT_EQ(p.Base(), "ccc");
  EXPECT_EQ(p.Prefix(0).str(), "");
  EXPECT_EQ(p.Prefix(1).str(), "a");
  EXPECT_EQ(p.Prefix(2).str(), "a/bb");
  EXPECT_EQ(p.Prefix(3).str(), "a/bb/ccc");
  ASSERT_EQ(p.Components().size(), 3u);
  EXPECT_EQ(p.Components()[1], "bb");
  Path root;
  EXPECT_TRUE(root.IsRoot());
  EXPECT_EQ(root.Depth(), 0u);
  EXPECT_TRUE(root.Parent().IsRoot());
  EXPECT_EQ(root.Base(), "");
  EXPECT_STREQ(root.c_str_or_dot(), ".");
  EXPECT_EQ(Path::Parse("x")->Parent(), root);
}

TEST(PathTest, JoinTakesOneComponent) {
  Path p = *Path::Parse("a");
  EXPECT_EQ(p.Join("b")->str(), "a/b");
  EXPECT_EQ(Path().Join("b")->str(), "b");
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "b/c", std::string("b\0c", 3)}) {
    auto j = p.Join(bad);
    ASSERT_FALSE(j.ok()) << bad;
    EXPECT_EQ(j.error().code, "fs.path.component");
    EXPECT_EQ(j.error().kind, ErrorKind::kSecurity);
  }
}

TEST(PathTest, IsValidComponent) {
  EXPECT_TRUE(IsValidComponent("a"));
  EXPECT_TRUE(IsValidComponent("..."));
  EXPECT_TRUE(IsValidComponent(".wh.."));
  EXPECT_FALSE(IsValidComponent(""));
  EXPECT_FALSE(IsValidComponent("."));
  EXPECT_FALSE(IsValidComponent(".."));
  EXPECT_FALSE(IsValidComponent("a/b"));
}

}  // namespace
}  // namespace manifold::fs
