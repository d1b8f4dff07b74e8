#include "common/dockerfile/dockerignore.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

namespace manifold::dockerfile {
namespace {

IgnoreMatcher MustFromPatterns(const std::vector<std::string>& patterns) {
  auto m = IgnoreMatcher::FromPatterns(patterns);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().ToString());
  return m.ok() ? *m : IgnoreMatcher();
}

// ---------------------------------------------------------------------------
// patternmatcher_test.go TestMatches: exact = the path itself matches, inexact =
// only a parent matches, fail = neither.

enum class Expect { kFail, kExact, kInexact };

struct MatchCase {
  const char* pattern;
  const char* text;
  Expect pass;
};

const MatchCase kMatchCases[] = {
    {"**", "file", Expect::kExact},
    {"**", "file/", Expect::kExact},
    {"**/", "file", Expect::kExact},
    {"**/", "file/", Expect::kExact},
    {"**", "/", Expect::kExact},
    {"**/", "/", Expect::kExact},
    {"**", "dir/file", Expect::kExact},
    {"**/", "dir/file", Expect::kExact},
    {"**", "dir/file/", Expect::kExact},
    {"**/", "dir/file/", Expect::kExact},
    {"**/**", "dir/file", Expect::kExact},
    {"**/**", "dir/file/", Expect::kExact},
    {"dir/**", "dir/file", Expect::kExact},
    {"dir/**", "dir/file/", Expect::kExact},
    {"dir/**", "dir/dir2/file", Expect::kExact},
    {"dir/**", "dir/dir2/file/", Expect::kExact},
    {"**/dir", "dir", Expect::kExact},
    {"**/dir", "dir/file", Expect::kInexact},
    {"**/dir2/*", "dir/dir2/file", Expect::kExact},
    {"**/dir2/*", "dir/dir2/file/", Expect::kInexact},
    {"**/dir2/**", "dir/dir2/dir3/file", Expect::kExact},
    {"**/dir2/**", "dir/dir2/dir3/file/", Expect::kExact},
    {"**file", "file", Expect::kExact},
    {"**file", "dir/file", Expect::kExact},
    {"**/file", "dir/file", Expect::kExact},
    {"**file", "dir/dir/file", Expect::kExact},
    {"**/file", "dir/dir/file", Expect::kExact},
    {"**/file*", "dir/dir/file", Expect::kExact},
    {"**/file*", "dir/dir/file.txt", Expect::kExact},
    {"**/file*txt", "dir/dir/file.txt", Expect::kExact},
    {"**/file*.txt", "dir/dir/file.txt", Expect::kExact},
    {"**/file*.txt*", "dir/dir/file.txt", Expect::kExact},
    {"**/**/*.txt", "dir/dir/file.txt", Expect::kExact},
    {"**/**/*.txt2", "dir/dir/file.txt", Expect::kFail},
    {"**/*.txt", "file.txt", Expect::kExact},
    {"**/**/*.txt", "file.txt", Expect::kExact},
    {"a**/*.txt", "a/file.txt", Expect::kExact},
    {"a**/*.txt", "a/dir/file.txt", Expect::kExact},
    {"a**/*.txt", "a/dir/dir/file.txt", Expect::kExact},
    {"a/*.txt", "a/dir/file.txt", Expect::kFail},
    {"a/*.txt", "a/file.txt", Expect::kExact},
    {"a/*.txt**", "a/file.txt", Expect::kExact},
    {"a[b-d]e", "ae", Expect::kFail},
    {"a[b-d]e", "ace", Expect::kExact},
    {"a[b-d]e", "aae", Expect::kFail},
    {"a[^b-d]e", "aze", Expect::kExact},
    {".*", ".foo", Expect::kExact},
    {".*", "foo", Expect::kFail},
    {"abc.def", "abcdef", Expect::kFail},
    {"abc.def", "abc.def", Expect::kExact},
    {"abc.def", "abcZdef", Expect::kFail},
    {"abc?def", "abcZdef", Expect::kExact},
    {"abc?def", "abcdef", Expect::kFail},
    {"**/foo/bar", "foo/bar", Expect::kExact},
    {"**/foo/bar", "dir/foo/bar", Expect::kExact},
    {"**/foo/bar", "dir/dir2/foo/bar", Expect::kExact},
    {"abc/**", "abc", Expect::kFail},
    {"abc/**", "abc/def", Expect::kExact},
    {"abc/**", "abc/def/ghi", Expect::kExact},
    {"**/.foo", ".foo", Expect::kExact},
    {"**/.foo", "bar.foo", Expect::kFail},
    {"a(b)c/def", "a(b)c/def", Expect::kExact},
    {"a(b)c/def", "a(b)c/xyz", Expect::kFail},
    {"a.|)$(}+{bc", "a.|)$(}+{bc", Expect::kExact},
    {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", Expect::kExact},
    {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", Expect::kExact},
    {"a\\\\", "a\\", Expect::kExact},
    {"a\\*b", "a*b", Expect::kExact},
};

TEST(IgnoreMatcherTest, PatternMatcherTable) {
  for (const MatchCase& c : kMatchCases) {
    SCOPED_TRACE(std::string("pattern=") + c.pattern + " text=" + c.text);
    const IgnoreMatcher m = MustFromPatterns({c.pattern});
    EXPECT_EQ(m.MatchesExact(c.text), c.pass == Expect::kExact);
    EXPECT_EQ(m.MatchesOrParentMatches(c.text), c.pass != Expect::kFail);
    EXPECT_EQ(m.Excluded(c.text), c.pass != Expect::kFail);
  }
}

struct MultiCase {
  std::vector<std::string> patterns;
  const char* text;
  bool excluded;
};

TEST(IgnoreMatcherTest, PatternMatcherMultiPatternTable) {
  const MultiCase cases[] = {
      {{"**", "!util/docker/web"}, "util/docker/web/foo", false},
      {{"**", "!util/docker/web", "util/docker/web/foo"}, "util/docker/web/foo", true},
      {{"**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"},
       "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
       false},
      {{"**", "!dist/*.whl"}, "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
      // The small TestXxx functions of patternmatcher_test.go.
      {{"*"}, "fileutils.go", true},
      {{"*.go"}, "fileutils.go", true},
      {{"!fileutils.go", "*.go"}, "fileutils.go", true},
      {{"docs", "!docs/README.md"}, "docs/README.md", false},
      {{"docs/", "!docs/README.md"}, "docs/README.md", false},
      {{"docs/*", "!docs/README.md"}, "docs/README.md", false},
      {{"*.go", "!fileutils.go"}, "fileutils.go", false},
      {{}, "any/path/there", false},
      {{"docs", "", "  "}, "docs/x", true},
      {{"docs", "  !docs/README.md"}, "docs/README.md", false},
      {{"docs", "!docs/README.md  "}, "docs/README.md", false},
  };
  for (const MultiCase& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.patterns) + " text=" + c.text);
    const IgnoreMatcher m = MustFromPatterns(c.patterns);
    EXPECT_EQ(m.MatchesOrParentMatches(c.text), c.excluded);
    EXPECT_EQ(m.Excluded(c.text), c.excluded);
  }
}

TEST(IgnoreMatcherTest, RootIsNeverExcluded) {
  const IgnoreMatcher m = MustFromPatterns({"*.go", "**", "."});
  EXPECT_FALSE(m.Excluded("."));
  EXPECT_FALSE(m.Excluded(""));
}

TEST(IgnoreMatcherTest, CleansPatternsAndRecordsExclusions) {
  const IgnoreMatcher m = MustFromPatterns({"docs", "config", "", " ./a//b/../c/ ", "!x/./y"});
  EXPECT_EQ(m.patterns(), (std::vector<std::string>{"docs", "config", "a/c", "!x/y"}));
  EXPECT_TRUE(m.HasExclusions());
  EXPECT_FALSE(MustFromPatterns({"docs"}).HasExclusions());
  // patternmatcher.New keeps a leading '/', so such a pattern never matches.
  const IgnoreMatcher rooted = MustFromPatterns({"/docs"});
  EXPECT_EQ(rooted.patterns(), std::vector<std::string>{"/docs"});
  EXPECT_FALSE(rooted.Excluded("docs"));
}

// ---------------------------------------------------------------------------
// patternmatcher_test.go matchTests (Go's filepath.Match table).

struct GlobCase {
  const char* pattern;
  const char* text;
  bool match;
  bool bad;
};

TEST(IgnoreMatcherTest, FilepathMatchTable) {
  const GlobCase cases[] = {
      {"abc", "abc", true, false},
      {"*", "abc", true, false},
      {"*c", "abc", true, false},
      {"a*", "a", true, false},
      {"a*", "abc", true, false},
      {"a*", "ab/c", true, false},
      {"a*/b", "abc/b", true, false},
      {"a*/b", "a/c/b", false, false},
      {"a*b*c*d*e*/f", "axbxcxdxe/f", true, false},
      {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false},
      {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false},
      {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false},
      {"a*b?c*x", "abxbbxdbxebxczzx", true, false},
      {"a*b?c*x", "abxbbxdbxebxczzy", false, false},
      {"ab[c]", "abc", true, false},
      {"ab[b-d]", "abc", true, false},
      {"ab[e-g]", "abc", false, false},
      {"ab[^c]", "abc", false, false},
      {"ab[^b-d]", "abc", false, false},
      {"ab[^e-g]", "abc", true, false},
      {"a\\*b", "a*b", true, false},
      {"a\\*b", "ab", false, false},
      {"a?b", "a\u263Ab", true, false},
      {"a[^a]b", "a\u263Ab", true, false},
      {"a???b", "a\u263Ab", false, false},
      {"a[^a][^a][^a]b", "a\u263Ab", false, false},
      {"[a-\u03B6]*", "\u03B1", true, false},
      {"*[a-\u03B6]", "A", false, false},
      {"a?b", "a/b", false, false},
      {"a*b", "a/b", false, false},
      {"[\\]a]", "]", true, false},
      {"[\\-]", "-", true, false},
      {"[x\\-]", "x", true, false},
      {"[x\\-]", "-", true, false},
      {"[x\\-]", "z", false, false},
      {"[\\-x]", "x", true, false},
      {"[\\-x]", "-", true, false},
      {"[\\-x]", "a", false, false},
      {"[]a]", "]", false, true},
      {"[-]", "-", false, true},
      {"[x-]", "x", false, true},
      {"[x-]", "-", false, true},
      {"[x-]", "z", false, true},
      {"[-x]", "x", false, true},
      {"[-x]", "-", false, true},
      {"[-x]", "a", false, true},
      {"\\", "a", false, true},
      {"[a-b-c]", "a", false, true},
      {"[", "a", false, true},
      {"[^", "a", false, true},
      {"[^bc", "a", false, true},
      {"a[", "a", false, true},
      {"a[", "ab", false, true},
      {"*x", "xxx", true, false},
  };
  for (const GlobCase& c : cases) {
    SCOPED_TRACE(std::string("pattern=") + c.pattern + " text=" + c.text);
    auto m = IgnoreMatcher::FromPatterns({c.pattern});
    if (c.bad) {
      ASSERT_FALSE(m.ok());
      EXPECT_EQ(m.error().kind, ErrorKind::kInvalidInput);
      EXPECT_EQ(m.error().code, "dockerignore.bad_pattern");
      EXPECT_EQ(m.error().message,
                std::string("bad pattern \"") + c.pattern + "\": syntax error in pattern");
      continue;
    }
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    EXPECT_EQ(m->Excluded(c.text), c.match);
    EXPECT_EQ(m->MatchesOrParentMatches(c.text), c.match);
  }
}

// patternmatcher_test.go compileTests: the match type and the Go regexp text.
TEST(IgnoreMatcherTest, CompilesLikePatternMatcher) {
  const std::pair<const char*, const char*> cases[] = {
      {"*", "regexp:^[^/]*$"},
      {"file*", "regexp:^file[^/]*$"},
      {"*file", "regexp:^[^/]*file$"},
      {"a*/b", "regexp:^a[^/]*/b$"},
      {"**", "suffix"},
      {"**/**", "regexp:^(.*/)?.*$"},
      {"dir/**", "prefix"},
      {"**/dir", "suffix"},
      {"**/dir2/*", "regexp:^(.*/)?dir2/[^/]*$"},
      {"**/dir2/**", "regexp:^(.*/)?dir2/.*$"},
      {"**file", "suffix"},
      {"**/file*txt", "regexp:^(.*/)?file[^/]*txt$"},
      {"**/**/*.txt", "regexp:^(.*/)?(.*/)?[^/]*\\.txt$"},
      {"a[b-d]e", "regexp:^a[b-d]e$"},
      {".*", "regexp:^\\.[^/]*$"},
      {"abc.def", "exact"},
      {"abc?def", "regexp:^abc[^/]def$"},
      {"**/foo/bar", "suffix"},
      {"a(b)c/def", "exact"},
      {"a.|)$(}+{bc", "exact"},
      {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact"},
      // patternmatcher's escape bitmap loses '|', '{' and '}'.
      {"a|{b}*", "regexp:^a|{b}[^/]*$"},
      {"a\\d", "regexp:^a\\d$"},
  };
  for (const auto& [pattern, want] : cases) {
    EXPECT_EQ(detail::DescribePattern(pattern), want) << pattern;
  }
}

// ---------------------------------------------------------------------------
// Go regexp behaviour that leaks through the translation, as Docker has it.

TEST(IgnoreMatcherTest, RegexpOperatorsLeakThroughLikeDocker) {
  struct Case {
    const char* pattern;
    const char* text;
    bool excluded;
  };
  const Case cases[] = {
      // '|' is live: "^a|b[^/]*$", the first branch unanchored at the end.
      {"a|b*", "abc/def", true},
      {"a|b*", "xb", true},
      {"a|b*", "x/y", false},
      {"|*", "anything/at/all", true},
      // '{' is a literal unless it forms a repeat.
      {"{a,b}*", "{a,b}x", true},
      {"{a,b}*", "a", false},
      {"a{2}*", "aa", true},
      {"a{2}*", "aaxyz", true},
      {"a{2}*", "a", false},
      // Escapes are Go regexp escapes, not glob escapes.
      {"\\d*", "5abc", true},
      {"\\d*", "dabc", false},
      {"a\\n", "an", false},
      {"a\\n", "a\n", true},
      {"a\\x41", "aA", true},
      {"a\\101", "aA", true},
      {"a\\b*", "a", true},
      {"a\\b*", "a-b", true},
      {"a\\b*", "ab", false},
      // \Q swallows the rest, including the generated "[^/]*$".
      {"a\\Qb*", "ab", false},
      {"a\\Qb*", "ab[^/]*$", true},
      {"a\\Qb*", "ab[^/]*$tail", true},
      // '^' outside a class is the start of text.
      {"a^b*", "a^b", false},
      // '*' inside brackets becomes "[^/]*", so "[*]" is the class "[[^/]" repeated then ']'.
      {"[*]", "]", true},
      {"[*]", "[^]", true},
      {"[*]", "*", false},
      {"[[:digit:]]*", "7up", true},
      {"[[:digit:]]*", "up", false},
      {"[[:^alpha:]x]", "x", true},
      {"[[:^alpha:]x]", "y", false},
      {"[\\d]", "4", true},
      // '.' from "**" does not cross a newline; "[^/]" does.
      {"a/**/b", "a/x\ny/b", false},
      {"a*b", "a\nb", true},
      // Runes, not bytes; invalid UTF-8 is one U+FFFD per byte.
      {"?", "\xC3\xA9", true},
      {"??", "\xFF\xFE", true},
      {"\xFF?", "\xFE!", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string("pattern=") + c.pattern + " text=" + c.text);
    const IgnoreMatcher m = MustFromPatterns({c.pattern});
    EXPECT_EQ(m.Excluded(c.text), c.excluded);
  }
}

TEST(IgnoreMatcherTest, WalkSemanticsDifferFromMatchesOrParentMatches) {
  // fsutil evaluates "!a" on "a/b" only against "a/b" itself, because it was
  // skipped (nothing matched yet) when the walker visited "a".
  const IgnoreMatcher m = MustFromPatterns({"a/b", "!a"});
  EXPECT_TRUE(m.Excluded("a/b"));
  EXPECT_FALSE(m.MatchesOrParentMatches("a/b"));
  EXPECT_FALSE(m.Excluded("a"));
}

TEST(IgnoreMatcherTest, LastMatchingPatternWins) {
  const IgnoreMatcher m = MustFromPatterns({"*.md", "!README*.md", "README-secret.md"});
  EXPECT_TRUE(m.Excluded("notes.md"));
  EXPECT_FALSE(m.Excluded("README.md"));
  EXPECT_TRUE(m.Excluded("README-secret.md"));
  EXPECT_FALSE(m.Excluded("sub/notes.md"));  // '*' stops at '/'

  const IgnoreMatcher dirs = MustFromPatterns({"build", "!build/keep", "build/keep/tmp"});
  EXPECT_TRUE(dirs.Excluded("build"));
  EXPECT_TRUE(dirs.Excluded("build/out.o"));
  EXPECT_FALSE(dirs.Excluded("build/keep"));
  EXPECT_FALSE(dirs.Excluded("build/keep/src/a.c"));
  EXPECT_TRUE(dirs.Excluded("build/keep/tmp/x"));
}

TEST(IgnoreMatcherTest, MayReincludeUnderFollowsFsutil) {
  const IgnoreMatcher literal = MustFromPatterns({"a", "!a/b/c"});
  EXPECT_TRUE(literal.MayReincludeUnder("a"));
  EXPECT_TRUE(literal.MayReincludeUnder("a/b"));
  EXPECT_FALSE(literal.MayReincludeUnder("a/x"));
  EXPECT_FALSE(literal.MayReincludeUnder("a/b/c/d"));

  EXPECT_FALSE(MustFromPatterns({"a"}).MayReincludeUnder("a"));

  const IgnoreMatcher trailing = MustFromPatterns({"a", "!a/b/**"});
  EXPECT_TRUE(trailing.MayReincludeUnder("a/b"));
  EXPECT_FALSE(trailing.MayReincludeUnder("a/c"));

  const IgnoreMatcher glob = MustFromPatterns({"a", "!a/*.go"});
  EXPECT_TRUE(glob.MayReincludeUnder("a"));
  EXPECT_TRUE(glob.MayReincludeUnder("x/y"));
}

// ---------------------------------------------------------------------------
// ignorefile.ReadAll.

TEST(ReadIgnoreFileTest, IgnorefileReadAllTable) {
  const std::string content =
      "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
  auto got = ReadIgnoreFile(content, ".dockerignore");
  ASSERT_TRUE(got.ok());
  std::vector<std::string> patterns;
  std::vector<int> lines;
  for (const auto& p : *got) {
    patterns.push_back(p.pattern);
    lines.push_back(p.line);
  }
  EXPECT_EQ(patterns, (std::vector<std::string>{"test1", "test2", "a/file/here", "lastfile",
                                                "!inverted/abs/path", "!", "!"}));
  EXPECT_EQ(lines, (std::vector<int>{1, 2, 3, 5, 7, 8, 9}));

  auto empty = ReadIgnoreFile("", ".dockerignore");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ReadIgnoreFileTest, BomCrlfCommentsAndCleaning) {
  const std::string content =
      "\xEF\xBB\xBF"
      "first\r\n"
      "  # not a comment: '#' must be in column 1\n"
      "#comment\r\n"
      "\t./a//b/../c/  \n"
      "/\n"
      "!../x/..\n"
      "\xEF\xBB\xBF"
      "bom-only-stripped-on-line-1\n"
      "\xE3\x80\x80wide-space\xC2\xA0\n"
      "last";
  auto got = ReadIgnoreFile(content, "x");
  ASSERT_TRUE(got.ok());
  std::vector<std::string> patterns;
  for (const auto& p : *got) patterns.push_back(p.pattern);
  EXPECT_EQ(patterns, (std::vector<std::string>{"first", "# not a comment: '#' must be in column 1",
                                                "a/c", "/", "!..",
                                                "\xEF\xBB\xBF"
                                                "bom-only-stripped-on-line-1",
                                                "wide-space", "last"}));
}

TEST(IgnoreMatcherTest, ParseKeepsGoCleaningQuirks) {
  // ReadAll gives "!../.." and patternmatcher.New cleans the whole string, in
  // which "!.." is one element: the pattern becomes ".", not an exclusion.
  auto m = IgnoreMatcher::Parse("!../..\n*.tmp\n", "ctx/.dockerignore");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->patterns(), (std::vector<std::string>{".", "*.tmp"}));
  EXPECT_FALSE(m->HasExclusions());
  EXPECT_TRUE(m->Excluded("x.tmp"));
}

// ---------------------------------------------------------------------------
// Errors: exact text, kind, code and location.

struct ErrorCase {
  std::string content;
  ErrorKind kind;
  const char* code;
  std::string message;
  int line;
};

TEST(IgnoreMatcherTest, ParseErrors) {
  const ErrorCase cases[] = {
      {"ok\n[\n", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:2: bad pattern \"[\": syntax error in pattern", 2},
      {"a\n\n  [Local-Only]/ \n", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:3: bad pattern \"[Local-Only]\": syntax error in pattern: "
       "invalid character class range `l-O`",
       3},
      {"[z-a]", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:1: bad pattern \"[z-a]\": syntax error in pattern: invalid character "
       "class range `z-a`",
       1},
      {"a\\y*", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:1: bad pattern \"a\\y*\": syntax error in pattern: invalid escape "
       "sequence `\\y`",
       1},
      {"a*{2}", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:1: bad pattern \"a*{2}\": syntax error in pattern: invalid nested "
       "repetition operator "
       "`*{2}`",
       1},
      {"?{1001}", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:1: bad pattern \"?{1001}\": syntax error in pattern: invalid repeat "
       "count `{1001}`",
       1},
      {"[[:foo:]]", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:1: bad pattern \"[[:foo:]]\": syntax error in pattern: invalid character "
       "class range "
       "`[:foo:]`",
       1},
      {"# c\n!\n", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:2: illegal exclusion pattern: \"!\"", 2},
      {"!/", ErrorKind::kInvalidInput, "dockerignore.bad_pattern",
       "ctx/.dockerignore:1: illegal exclusion pattern: \"!\"", 1},
      {"x\n\\pL*", ErrorKind::kUnimplemented, "dockerignore.unsupported_pattern",
       "ctx/.dockerignore:2: pattern \"\\pL*\": Unicode class `\\pL` is not supported", 2},
      {"a\n" + std::string(kMaxIgnorePatternBytes + 1, 'x') + "\n", ErrorKind::kInvalidInput,
       "dockerignore.pattern_too_long", "ctx/.dockerignore:2: line is longer than 65535 bytes", 2},
      {"# " + std::string(kMaxIgnorePatternBytes, 'x'), ErrorKind::kInvalidInput,
       "dockerignore.pattern_too_long", "ctx/.dockerignore:1: line is longer than 65535 bytes", 1},
      {std::string(kMaxIgnoreFileBytes + 1, '\n'), ErrorKind::kInvalidInput,
       "dockerignore.too_large", "ctx/.dockerignore: file is larger than 1048576 bytes", 0},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.message);
    auto m = IgnoreMatcher::Parse(c.content, "ctx/.dockerignore");
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().kind, c.kind);
    EXPECT_EQ(m.error().code, c.code);
    EXPECT_EQ(m.error().message, c.message);
    if (c.line > 0) {
      ASSERT_TRUE(m.error().where.has_value());
      EXPECT_EQ(m.error().where->file, "ctx/.dockerignore");
      EXPECT_EQ(m.error().where->line, c.line);
    } else {
      EXPECT_FALSE(m.error().where.has_value());
    }
  }
}

TEST(IgnoreMatcherTest, LimitsAreInclusive) {
  // A 65535-byte line is fine (Docker's bufio.Scanner takes it too).
  auto m = IgnoreMatcher::Parse(std::string(kMaxIgnorePatternBytes, 'x') + "\n", "f");
  EXPECT_TRUE(m.ok());
  auto big = IgnoreMatcher::FromPatterns({std::string(kMaxIgnorePatternBytes + 1, 'x')});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, "dockerignore.pattern_too_long");
  EXPECT_EQ(big.error().message, "pattern is longer than 65535 bytes");
}

TEST(IgnoreMatcherTest, FromPatternsErrorsHaveNoLocation) {
  auto m = IgnoreMatcher::FromPatterns({"ok", "a["});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "bad pattern \"a[\": syntax error in pattern");
  EXPECT_FALSE(m.error().where.has_value());
  auto bang = IgnoreMatcher::FromPatterns({"!"});
  ASSERT_FALSE(bang.ok());
  EXPECT_EQ(bang.error().message, "illegal exclusion pattern: \"!\"");
}

TEST(IgnoreMatcherTest, CountedRepetitionHasABudget) {
  const IgnoreMatcher one = MustFromPatterns({"?{1000}", "x{0,1000}y*", "z{2}"});
  EXPECT_TRUE(one.Excluded(std::string(1000, 'q')));
  EXPECT_FALSE(one.Excluded(std::string(999, 'q')));
  EXPECT_TRUE(one.Excluded(std::string(1000, 'x') + "y.txt"));
  EXPECT_FALSE(one.Excluded(std::string(1001, 'x') + "y"));
  // Without a glob character a pattern is an exact string, braces and all.
  EXPECT_TRUE(one.Excluded("z{2}"));
  EXPECT_FALSE(one.Excluded("zz"));
  // Docker (Go) would accept more; we stop at kMaxRepeatExpansion per file.
  auto m =
      IgnoreMatcher::Parse("a\n?{1000}\n?{1000}?{1000}\n?{1000}?{1000}\n", "ctx/.dockerignore");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(m.error().code, "dockerignore.unsupported_pattern");
  EXPECT_EQ(m.error().message,
            "ctx/.dockerignore:4: pattern \"?{1000}?{1000}\": counted repetition expands past the "
            "4096-instruction budget of one ignore file");
  // Nested repetition must fail fast, not expand a million copies first.
  auto nested = IgnoreMatcher::FromPatterns({"?{1000}\\Q\\E{1000}"});
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error().code, "dockerignore.unsupported_pattern");
}

TEST(IgnoreMatcherTest, PathologicalInputsStayLinear) {
  // Backtracking matchers take exponential time on these; the NFA stays linear.
  std::string stars;
  for (int i = 0; i < 100; ++i) stars += "a*";
  stars += "b";
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "**/";
  deep += "x";
  const IgnoreMatcher m = MustFromPatterns({stars, deep, "!" + stars + "c"});
  const std::string path = std::string(1500, 'a') + "/" + std::string(1500, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(m.Excluded(path));
  EXPECT_FALSE(m.MatchesOrParentMatches(path));
  EXPECT_TRUE(m.Excluded(std::string(1500, 'a') + "b"));
  EXPECT_TRUE(m.Excluded(std::string(1500, 'a') + "/q/" + std::string(300, 'a') + "/x"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

// ---------------------------------------------------------------------------
// FindIgnoreFile.

class FindIgnoreFileTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mf_dockerignore_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ctx_ = root_ + "/ctx";
    ASSERT_EQ(mkdir(ctx_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/df").c_str(), 0755), 0);
  }
  void TearDown() override {
    for (const std::string& f : created_) unlink(f.c_str());
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) rmdir(it->c_str());
    rmdir((root_ + "/df").c_str());
    rmdir(ctx_.c_str());
    rmdir(root_.c_str());
  }
  void Touch(const std::string& path) {
    std::ofstream(path) << "x\n";
    created_.push_back(path);
  }
  void MakeDir(const std::string& path) {
    ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
    dirs_.push_back(path);
  }

  std::string root_;
  std::string ctx_;
  std::vector<std::string> created_;
  std::vector<std::string> dirs_;
};

TEST_F(FindIgnoreFileTest, NeitherExists) {
  EXPECT_EQ(FindIgnoreFile(ctx_, ctx_ + "/Dockerfile"), std::nullopt);
}

TEST_F(FindIgnoreFileTest, ContextIgnoreFile) {
  Touch(ctx_ + "/.dockerignore");
  EXPECT_EQ(FindIgnoreFile(ctx_, ctx_ + "/Dockerfile"), ctx_ + "/.dockerignore");
  EXPECT_EQ(FindIgnoreFile(ctx_ + "/", "-"), ctx_ + "/.dockerignore");
}

TEST_F(FindIgnoreFileTest, DockerfileSpecificWins) {
  Touch(ctx_ + "/.dockerignore");
  Touch(root_ + "/df/app.Dockerfile.dockerignore");
  EXPECT_EQ(FindIgnoreFile(ctx_, root_ + "/df/app.Dockerfile"),
            root_ + "/df/app.Dockerfile.dockerignore");
  // Another Dockerfile in the same folder does not pick it up.
  EXPECT_EQ(FindIgnoreFile(ctx_, root_ + "/df/Dockerfile"), ctx_ + "/.dockerignore");
}

TEST_F(FindIgnoreFileTest, DefaultDockerfileName) {
  Touch(ctx_ + "/.dockerignore");
  Touch(ctx_ + "/Dockerfile.dockerignore");
  EXPECT_EQ(FindIgnoreFile(ctx_, ""), ctx_ + "/Dockerfile.dockerignore");
  EXPECT_EQ(FindIgnoreFile(ctx_, "-"), ctx_ + "/.dockerignore");
}

TEST_F(FindIgnoreFileTest, DirectoriesDoNotCount) {
  MakeDir(ctx_ + "/.dockerignore");
  MakeDir(ctx_ + "/Dockerfile.dockerignore");
  EXPECT_EQ(FindIgnoreFile(ctx_, ctx_ + "/Dockerfile"), std::nullopt);
}

TEST_F(FindIgnoreFileTest, SymlinksAreFollowed) {
  Touch(root_ + "/df/real");
  const std::string link = ctx_ + "/Dockerfile.dockerignore";
  ASSERT_EQ(symlink((root_ + "/df/real").c_str(), link.c_str()), 0);
  created_.push_back(link);
  EXPECT_EQ(FindIgnoreFile(ctx_, ctx_ + "/Dockerfile"), link);
}

}  // namespace
}  // namespace manifold::dockerfile
