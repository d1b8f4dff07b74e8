// Tests for the shell lexer. The tables port BuildKit's frontend/dockerfile/shell tests
// (envVarTest, wordsTest, lex_test.go); every expected value was checked against BuildKit's
// lex.go itself.
#include "common/dockerfile/shell_lexer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>

namespace manifold::dockerfile {
namespace {

using Vars = std::map<std::string, std::string>;

VarLookup Env(Vars vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? "" : std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

/// The word, or "error" (BuildKit's tables spell failures that way).
std::string Word(std::string_view input, const VarLookup& env, const ExpandOptions& opts = {},
                 char escape = '\\') {
  auto r = ShellLexer(escape).ProcessWord(input, env, opts);
  return r.ok() ? r->word : "error";
}

/// The full error text, or "ok: <word>".
std::string ErrorText(std::string_view input, const Vars& vars = {}) {
  auto r = ShellLexer().ProcessWord(input, Env(vars));
  if (r.ok()) return "ok: " + r->word;
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput) << input;
  EXPECT_EQ(r.error().code, "dockerfile.expansion") << input;
  return r.error().ToString();
}

// BuildKit's envVarTest: platform | input | expected ("error" for any error). A = all, U = Unix,
// W = Windows (skipped: variable names are case sensitive here).
constexpr std::string_view kEnvVarTest = R"tbl(A|hello                    |     hello
A|he'll'o                  |     hello
A|he'llo                   |     error
A|he\'llo                  |     he'llo
A|he\\'llo                 |     error
A|abc\tdef                 |     abctdef
A|"abc\tdef"               |     abc\tdef
A|"abc\\tdef"              |     abc\tdef
A|'abc\tdef'               |     abc\tdef
A|hello\                   |     hello
A|hello\\                  |     hello\
A|"hello                   |     error
A|"hello\"                 |     error
A|"hel'lo"                 |     hel'lo
A|'hello                   |     error
A|'hello\'                 |     hello\
A|'hello\there'            |     hello\there
A|'hello\\there'           |     hello\\there
A|"''"                     |     ''
A|$.                       |     $.
A|he$1x                    |     hex
A|he$.x                    |     he$.x
# Next one is different on Windows as $pwd==$PWD
U|he$pwd.                  |     he.
W|he$pwd.                  |     he/home.
A|he$PWD                   |     he/home
A|he\$PWD                  |     he$PWD
A|he\\$PWD                 |     he\/home
A|"he\$PWD"                |     he$PWD
A|"he\\$PWD"               |     he\/home
A|\${}                     |     ${}
A|\${}aaa                  |     ${}aaa
A|he\${}                   |     he${}
A|he\${}xx                 |     he${}xx
A|${}                      |     error
A|${}aaa                   |     error
A|he${}                    |     error
A|he${}xx                  |     error
A|he${hi}                  |     he
A|he${hi}xx                |     hexx
A|he${PWD}                 |     he/home
A|he${.}                   |     error
A|he${XXX:-000}xx          |     he000xx
A|he${PWD:-000}xx          |     he/homexx
A|he${XXX:-$PWD}xx         |     he/homexx
A|he${XXX:-${PWD:-yyy}}xx  |     he/homexx
A|he${XXX:-${YYY:-yyy}}xx  |     heyyyxx
A|he${XXX:YYY}             |     error
A|he${XXX:+${PWD}}xx       |     hexx
A|he${PWD:+${XXX}}xx       |     hexx
A|he${PWD:+${SHELL}}xx     |     hebashxx
A|he${XXX:+000}xx          |     hexx
A|he${PWD:+000}xx          |     he000xx
A|'he${XX}'                |     he${XX}
A|"he${PWD}"               |     he/home
A|"he'$PWD'"               |     he'/home'
A|"$PWD"                   |     /home
A|'$PWD'                   |     $PWD
A|'\$PWD'                  |     \$PWD
A|'"hello"'                |     "hello"
A|he\$PWD                  |     he$PWD
A|"he\$PWD"                |     he$PWD
A|'he\$PWD'                |     he\$PWD
A|he${PWD                  |     error
A|he${PWD:=000}xx          |     error
A|he${PWD:+${PWD}:}xx      |     he/home:xx
A|he${XXX:-\$PWD:}xx       |     he$PWD:xx
A|he${XXX:-\${PWD}z}xx     |     he${PWDz}xx
A|안녕하세요                 |     안녕하세요
A|안'녕'하세요               |     안녕하세요
A|안'녕하세요                |     error
A|안녕\'하세요               |     안녕'하세요
A|안\\'녕하세요              |     error
A|안녕\t하세요               |     안녕t하세요
A|"안녕\t하세요"             |     안녕\t하세요
A|'안녕\t하세요              |     error
A|안녕하세요\                |     안녕하세요
A|안녕하세요\\               |     안녕하세요\
A|"안녕하세요                |     error
A|"안녕하세요\"              |     error
A|"안녕'하세요"              |     안녕'하세요
A|'안녕하세요                |     error
A|'안녕하세요\'              |     안녕하세요\
A|안녕$1x                    |     안녕x
A|안녕$.x                    |     안녕$.x
# Next one is different on Windows as $pwd==$PWD
U|안녕$pwd.                  |     안녕.
W|안녕$pwd.                  |     안녕/home.
A|안녕$PWD                   |     안녕/home
A|안녕\$PWD                  |     안녕$PWD
A|안녕\\$PWD                 |     안녕\/home
A|안녕\${}                   |     안녕${}
A|안녕\${}xx                 |     안녕${}xx
A|안녕${}                    |     error
A|안녕${}xx                  |     error
A|안녕${hi}                  |     안녕
A|안녕${hi}xx                |     안녕xx
A|안녕${PWD}                 |     안녕/home
A|안녕${.}                   |     error
A|안녕${XXX:-000}xx          |     안녕000xx
A|안녕${PWD:-000}xx          |     안녕/homexx
A|안녕${XXX:-$PWD}xx         |     안녕/homexx
A|안녕${XXX:-${PWD:-yyy}}xx  |     안녕/homexx
A|안녕${XXX:-${YYY:-yyy}}xx  |     안녕yyyxx
A|안녕${XXX:YYY}             |     error
A|안녕${XXX:+${PWD}}xx       |     안녕xx
A|안녕${PWD:+${XXX}}xx       |     안녕xx
A|안녕${PWD:+${SHELL}}xx     |     안녕bashxx
A|안녕${XXX:+000}xx          |     안녕xx
A|안녕${PWD:+000}xx          |     안녕000xx
A|'안녕${XX}'                |     안녕${XX}
A|"안녕${PWD}"               |     안녕/home
A|"안녕'$PWD'"               |     안녕'/home'
A|'"안녕"'                   |     "안녕"
A|안녕\$PWD                  |     안녕$PWD
A|"안녕\$PWD"                |     안녕$PWD
A|'안녕\$PWD'                |     안녕\$PWD
A|안녕${PWD                  |     error
A|안녕${PWD:=000}xx          |     error
A|안녕${PWD:+${PWD}:}xx      |     안녕/home:xx
A|안녕${XXX:-\$PWD:}xx       |     안녕$PWD:xx
A|안녕${XXX:-\${PWD}z}xx     |     안녕${PWDz}xx
A|$KOREAN                    |     한국어
A|안녕$KOREAN                |     안녕한국어
A|${{aaa}                   |     error
A|${aaa}}                   |     }
A|${aaa                     |     error
A|${{aaa:-bbb}              |     error
A|${aaa:-bbb}}              |     bbb}
A|${aaa:-bbb                |     error
A|${aaa:-bbb}               |     bbb
A|${aaa:-${bbb:-ccc}}       |     ccc
A|${aaa:-bbb ${foo}         |     error
A|${aaa:-bbb {foo}          |     bbb {foo
A|${:}                      |     error
A|${:-bbb}                  |     error
A|${:+bbb}                  |     error
# Positional parameters are never set
A|$1                        |
A|${1}                      |
A|${1:+bbb}                 |
A|${1:-bbb}                 |     bbb
A|$9                        |
A|${9:-bbb}                 |     bbb
A|$999                      |
A|${999}                    |
A|${999:+bbb}               |
A|${999:-bbb}               |     bbb
A|$999aaa                   |     aaa
A|${999}aaa                 |     aaa
A|${999:+bbb}aaa            |     aaa
A|${999:-bbb}aaa            |     bbbaaa
A|$001                      |
A|${001}                    |
A|${001:+bbb}               |
A|${001:-bbb}               |     bbb
A|$001aaa                   |     aaa
A|${001}aaa                 |     aaa
A|${001:+bbb}aaa            |     aaa
A|${001:-bbb}aaa            |     bbbaaa
# Special parameters are never set in a Dockerfile
A|$@                        |
A|${@}                      |
A|${@:+bbb}                 |
A|${@:-bbb}                 |     bbb
A|$@@@                      |     @@
A|$@aaa                     |     aaa
A|${@}aaa                   |     aaa
A|${@:+bbb}aaa              |     aaa
A|${@:-bbb}aaa              |     bbbaaa
A|$*                        |
A|${*}                      |
A|${*:+bbb}                 |
A|${*:-bbb}                 |     bbb
A|$*@@                      |     @@
A|$*aaa                     |     aaa
A|${*:-bbb}aaa              |     bbbaaa
A|$#                        |
A|${#}                      |
A|${#:+bbb}                 |
A|${#:-bbb}                 |     bbb
A|$#@@                      |     @@
A|$#aaa                     |     aaa
A|${#:-bbb}aaa              |     bbbaaa
A|${#PWD}                   |     error
A|$?                        |
A|${?}                      |
A|${?:-bbb}                 |     bbb
A|$?aaa                     |     aaa
A|$-                        |
A|${-}                      |
A|${-:-bbb}                 |     bbb
A|$-aaa                     |     aaa
A|$$                        |
A|${$}                      |
A|${$:-bbb}                 |     bbb
A|$$$                       |     $
A|$$aaa                     |     aaa
A|$!                        |
A|${!}                      |
A|${!:-bbb}                 |     bbb
A|$!aaa                     |     aaa
A|$0                        |
A|${0}                      |
A|${0:-bbb}                 |     bbb
A|$0aaa                     |     aaa
A|$01aaa                    |     aaa
# Set but empty
A|${NULL}                   |
A|${NULL:-bbb}              |     bbb
A|${NULL-bbb}               |
A|${NULL:+bbb}              |
A|${NULL+bbb}               |     bbb
A|${NULL?}                  |
A|${NULL:?}                 |     error
A|${XXX?}                   |     error
A|${PWD:?}                  |     /home
# Trimming and replacing
A|${PWD#/}                  |     home
A|${PWD#*/}                 |     home
A|${PWD##*o}                |     me
A|${PWD#*o}                 |     me
A|${PWD%e}                  |     /hom
A|${PWD%o*}                 |     /h
A|${PWD%%o*}                |     /h
A|${SHELL%?}                |     bas
A|${SHELL%%*}               |
A|${SHELL#*}                |     bash
A|${SHELL##*}               |
A|${XXX#*}                  |
A|${PWD/o/0}                |     /h0me
A|${SHELL//a/A}             |     bAsh
A|${PWD//?/x}               |     xxxxx
A|${KOREAN%어}               |     한국
A|${KOREAN#?}               |     국어
A|${PWD:#/}                 |     home
A|${PWD:%e}                 |     /hom
A|${PWD:/x}                 |     error
A|${PWD#\x}                 |     error
A|${PWD/\x/y}               |     error
A|${PWD/x}                  |     error
)tbl";

TEST(ShellLexerTest, EnvVarTable) {
  VarLookup env = Env({{"PWD", "/home"}, {"SHELL", "bash"}, {"KOREAN", "한국어"}, {"NULL", ""}});
  int cases = 0;
  for (const std::string& line : Split(std::string(kEnvVarTest), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = Split(line, '|');
    ASSERT_EQ(cols.size(), 3u) << line;
    if (Trim(cols[0]) == "W") continue;
    EXPECT_EQ(Word(Trim(cols[1]), env), Trim(cols[2])) << line;
    ++cases;
  }
  EXPECT_GT(cases, 200);
}

// BuildKit's wordsTest: `input | field,field,...`; `ENV k=v` lines add variables.
constexpr std::string_view kWordsTest = R"tbl(hello | hello
hello${hi}bye | hellobye
ENV hi=hi
hello${hi}bye | hellohibye
ENV space=abc  def
hello${space}bye | helloabc,defbye
hello"${space}"bye | helloabc  defbye
hello "${space}"bye | hello,abc  defbye
ENV leading=  ab c
hello${leading}def | hello,ab,cdef
hello"${leading}" def | hello  ab c,def
hello"${leading}" | hello  ab c
hello${leading} | hello,ab,c
# next line MUST have 3 trailing spaces, do not erase them!
ENV trailing=ab c   
hello${trailing} | helloab,c
hello${trailing}d | helloab,c,d
hello"${trailing}"d | helloab c   d
# next line MUST have 3 trailing spaces, do not erase them!
hel"lo${trailing}" | helloab c   
hello" there  " | hello there  
hello there     | hello,there
hello\ there | hello there
hello" there | error
hello\" there | hello",there
hello"\\there" | hello\there
hello"\there" | hello\there
hello'\\there' | hello\\there
hello'\there' | hello\there
hello'$there' | hello$there
)tbl";

TEST(ShellLexerTest, WordsTable) {
  Vars vars;
  int cases = 0;
  for (const std::string& line : Split(std::string(kWordsTest), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("ENV ", 0) == 0) {
      std::string kv = line.substr(line.find_first_not_of(' ', 3));
      vars[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
      continue;
    }
    std::vector<std::string> cols = Split(line, '|');
    ASSERT_EQ(cols.size(), 2u) << line;
    std::vector<std::string> expected = Split(cols[1].substr(cols[1].find_first_not_of(' ')), ',');
    auto words = ShellLexer().ProcessWords(Trim(cols[0]), Env(vars));
    EXPECT_EQ(words.ok() ? *words : std::vector<std::string>{"error"}, expected) << line;
    ++cases;
  }
  EXPECT_EQ(cases, 24);
}

// lex_test.go TestShellParserMandatoryEnvVars.
TEST(ShellLexerTest, MandatoryVariables) {
  const std::string no_empty = "${VAR:?message here$ARG}";
  const std::string no_unset = "${VAR?message here$ARG}";
  VarLookup set = Env({{"VAR", "plain"}, {"ARG", "x"}});
  VarLookup empty = Env({{"VAR", ""}, {"ARG", "x"}});
  VarLookup unset = Env({{"ARG", "x"}});

  EXPECT_EQ(Word(no_empty, set), "plain");
  EXPECT_EQ(ErrorText(no_empty, {{"VAR", ""}, {"ARG", "x"}}),
            "failed to process \"${VAR:?message here$ARG}\": VAR: message herex");
  EXPECT_EQ(ErrorText(no_empty, {{"ARG", "x"}}),
            "failed to process \"${VAR:?message here$ARG}\": VAR: message herex");
  EXPECT_EQ(Word(no_unset, set), "plain");
  EXPECT_EQ(Word(no_unset, empty), "");
  EXPECT_EQ(ErrorText(no_unset, {{"ARG", "x"}}),
            "failed to process \"${VAR?message here$ARG}\": VAR: message herex");
  EXPECT_EQ(ErrorText("${a?}"), "failed to process \"${a?}\": a: is not allowed to be unset");
  EXPECT_EQ(ErrorText("${a:?}"), "failed to process \"${a:?}\": a: is not allowed to be unset");
  EXPECT_EQ(ErrorText("${a:?}", {{"a", ""}}),
            "failed to process \"${a:?}\": a: is not allowed to be empty");
}

struct MatchCase {
  const char* input;
  Vars vars;
  const char* expected;  // nullptr: an error
  std::set<std::string> matched;
  std::set<std::string> unmatched;
};

// lex_test.go TestProcessWithMatches.
const MatchCase kMatchCases[] = {
    {"x", {{"DUMMY", "dummy"}}, "x", {}, {}},
    {"x ${UNUSED}", {{"DUMMY", "dummy"}}, "x ", {}, {"UNUSED"}},
    {"x ${FOO}", {{"FOO", "y"}}, "x y", {"FOO"}, {}},
    {"${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx  ccc", {"FOO", "BAR"},
     {"BAZ"}},
    {"${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx bbb ccc",
     {"FOO", "BAR"}, {"BAZ"}},
    {"${FOO:-}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx", {"FOO"}, {}},
    {"${FOO:-}", {}, "", {}, {"FOO"}},
    {"${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "aaa bbb ", {"FOO", "BAR"},
     {"BAZ"}},
    {"${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "aaa  ",
     {"FOO", "BAR"}, {"BAZ"}},
    {"${FOO?aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx", {"FOO"}, {}},
    {"${BAR?bbb}", {{"FOO", "xxx"}, {"BAR", ""}}, "", {"BAR"}, {}},
    {"${BAZ?ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, nullptr, {}, {}},
    {"${FOO:?aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx", {"FOO"}, {}},
    {"${BAR:?bbb}", {{"FOO", "xxx"}, {"BAR", ""}}, nullptr, {}, {}},
    {"${BAZ:?ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, nullptr, {}, {}},
    {"${BAZ:?}", {{"FOO", "xxx"}, {"BAR", ""}}, nullptr, {}, {}},
    {"${FOO=aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, nullptr, {}, {}},
    {"${FOO=:aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, nullptr, {}, {}},
    {"${FOO=}", {}, nullptr, {}, {}},
    // Regexp specials are literal; `}` must be escaped so it does not close the ${}.
    {R"(${FOO#()[]{\}^$.\*\?|\\})", {{"FOO", R"(()[]{}^$.*?|\x)"}}, "x", {"FOO"}, {}},
    {R"(${FOO%%\**})", {{"FOO", "xx**"}}, "xx", {"FOO"}, {}},
    {"${FOO#*x*y}", {{"FOO", "xxyy"}}, "y", {"FOO"}, {}},
    {"${FOO#*}", {{"FOO", "xxyy"}}, "xxyy", {"FOO"}, {}},
    {"${FOO#$BAR}", {{"FOO", "xxyy"}, {"BAR", "x"}}, "xyy", {"FOO", "BAR"}, {}},
    {"${FOO#$BAR}", {{"FOO", "xxyy"}, {"BAR", ""}}, "xxyy", {"FOO", "BAR"}, {}},
    {"${FOO#}", {{"FOO", "xxyy"}}, "xxyy", {"FOO"}, {}},
    {"${FOO##*x}", {{"FOO", "xxyy"}}, "yy", {"FOO"}, {}},
    {"${FOO##}", {{"FOO", "xxyy"}}, "xxyy", {"FOO"}, {}},
    {R"(${FOO#?\?})", {{"FOO", "???y"}}, "?y", {"FOO"}, {}},
    {"${ABC:-.}${FOO%x}${ABC:-.}", {{"FOO", "xxyy"}}, ".xxyy.", {"FOO"}, {"ABC"}},
    {R"(${FOO%%\**\*})", {{"FOO", "a***yy*"}}, "a", {"FOO"}, {}},
    {"${FOO%}", {{"FOO", "xxyy"}}, "xxyy", {"FOO"}, {}},
    {"${FOO%%$BAR}", {{"FOO", "xxyy"}, {"BAR", ""}}, "xxyy", {"FOO", "BAR"}, {}},
    {"${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", {{"FOO", "/foo*/*/*.txt"}, {"NEEDLE", R"(\*/)"}},
     "/foo.*/*.txt - /foo..*.txt", {"FOO", "NEEDLE"}, {}},
    {"${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", {{"FOO", "/tmp/tmp/bar.txt"}, {"NEEDLE", "/tmp"}},
     "/tmp/bar.txt - /bar.txt", {"FOO", "NEEDLE"}, {}},
    {"${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
     {{"FOO", "/a/foo/b/c.txt"}, {"NEEDLE", "/?/"}, {"REPLACEMENT", "/"}},
     "/foo/b/c.txt - /foo/c.txt", {"FOO", "NEEDLE", "REPLACEMENT"}, {}},
    {"${FOO/$NEEDLE/$REPLACEMENT}",
     {{"FOO", "http://google.de"}, {"NEEDLE", "http://"}, {"REPLACEMENT", "https://"}},
     "https://google.de", {"FOO", "NEEDLE", "REPLACEMENT"}, {}},
    {R"(${FOO//\//\/})", {{"FOO", "/tmp/foo.txt"}}, R"(\/tmp\/foo.txt)", {"FOO"}, {}},
    {"${FOO/$BAR/ww}", {{"FOO", "xxyy"}, {"BAR", ""}}, "wwxxyy", {"FOO", "BAR"}, {}},
    {"${FOO//ww}", {{"FOO", "xxyy"}}, nullptr, {}, {}},
    {"${FOO//}", {{"FOO", "xxyy"}}, nullptr, {}, {}},
    {"${FOO///}", {{"FOO", "xxyy"}}, "xxyy", {"FOO"}, {}},
    {"${FOO///}", {}, "", {}, {"FOO"}},
    // Nested references are recorded too.
    {"a${b}c${d:-e}${b:+f}", {{"b", "B"}}, "aBcef", {"b"}, {"d"}},
    {"${A:-${B:-$C}}", {{"C", "c"}}, "c", {"C"}, {"A", "B"}},
    {"${A:+$B}", {}, "", {}, {"A", "B"}},
    {"'$A' \"$B\" \\$C $", {{"B", "b"}}, "$A b $C $", {"B"}, {}},
};

TEST(ShellLexerTest, ProcessWithMatches) {
  for (const MatchCase& c : kMatchCases) {
    auto r = ShellLexer().ProcessWord(c.input, Env(c.vars));
    if (!c.expected) {
      EXPECT_FALSE(r.ok()) << c.input;
      continue;
    }
    ASSERT_TRUE(r.ok()) << c.input << ": " << r.error().ToString();
    EXPECT_EQ(r->word, c.expected) << c.input;
    EXPECT_EQ(r->matched, c.matched) << c.input;
    EXPECT_EQ(r->unmatched, c.unmatched) << c.input;
  }
}

// lex_test.go TestProcessWithMatchesPlatform.
TEST(ShellLexerTest, ReleaseFileName) {
  const char* release =
      "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
  Vars vars = {{"VERSION", "v1.2.3"}, {"TARGETOS", "linux"}, {"TARGETARCH", "arm"},
               {"TARGETVARIANT", "v7"}};
  EXPECT_EQ(Word(release, Env(vars)), "something-v1.2.3.linux-arm-v7.tar.gz");
  vars["TARGETARCH"] = "arm64";
  vars["TARGETVARIANT"] = "";
  EXPECT_EQ(Word(release, Env(vars)), "something-v1.2.3.linux-arm64.tar.gz");
  vars.erase("TARGETVARIANT");
  EXPECT_EQ(Word(release, Env(vars)), "something-v1.2.3.linux-arm64.tar.gz");
}

TEST(ShellLexerTest, ErrorsAreWordedAsBuildKit) {
  struct {
    const char* input;
    const char* text;
  } cases[] = {
      {"${aaa", R"(failed to process "${aaa": unsupported modifier (�) in substitution)"},
      {"${", R"(failed to process "${": syntax error: missing '}')"},
      {"${}", R"(failed to process "${}": syntax error: bad substitution)"},
      {"${:}", R"(failed to process "${:}": syntax error: bad substitution)"},
      {"${{a}", R"(failed to process "${{a}": syntax error: bad substitution)"},
      {"${a=b}", R"(failed to process "${a=b}": unsupported modifier (=) in substitution)"},
      {"${a:=b}", R"(failed to process "${a:=b}": unsupported modifier (:=) in substitution)"},
      {"${a:}b}", R"(failed to process "${a:}b}": unsupported modifier (:}) in substitution)"},
      {"${ a}", R"(failed to process "${ a}": unsupported modifier ( ) in substitution)"},
      {"${#PWD}", R"(failed to process "${#PWD}": unsupported modifier (P) in substitution)"},
      {"${a:", R"(failed to process "${a:": syntax error: missing '}')"},
      {"${a:-b", R"(failed to process "${a:-b": syntax error: missing '}')"},
      {"${a:-'b}", R"(failed to process "${a:-'b}": syntax error: missing '}')"},
      {"${a/b", R"(failed to process "${a/b": syntax error: missing '/' in ${})"},
      {"${a/b/c", R"(failed to process "${a/b/c": syntax error: missing '}')"},
      {"'abc", R"(failed to process "'abc": unexpected end of statement while looking for )"
               "matching single-quote"},
      {"\"abc", R"(failed to process "\"abc": unexpected end of statement while looking for )"
                "matching double-quote"},
      {R"(${a#\x})", R"(failed to process "${a#\\x}": invalid pattern (\x) in substitution: )"
                     R"(invalid escape '\x')"},
      // `%` reverses the pattern first, and the message shows it reversed.
      {R"(${a%b\x})", R"(failed to process "${a%b\\x}": invalid pattern (\xb) in substitution: )"
                      R"(invalid escape '\x')"},
      {R"(${a/x\/y})", R"(failed to process "${a/x\\/y}": syntax error: missing '/' in ${})"},
      {R"(${a//\q/})", R"(failed to process "${a//\\q/}": invalid pattern (\q) in substitution: )"
                       R"(invalid escape '\q')"},
      {"${a#\\", R"(failed to process "${a#\\": syntax error: missing '}')"},
      // %q quoting of the source, as Go's strconv.Quote.
      {"\t\"\x01\xc2\xa0\xc3\xa9\x7f\xef\xbb\xbf\xf0\x9f\x98\x80\xff${",
       R"(failed to process "\t\"\x01\u00a0é\x7f\ufeff😀\xff${": syntax error: missing '}')"},
  };
  for (const auto& c : cases) EXPECT_EQ(ErrorText(c.input, {{"a", "x"}}), c.text) << c.input;

  auto r = ShellLexer().ProcessWord("${a:?gone}", Env({}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "a: gone");  // BuildKit's wrapping is context
  EXPECT_EQ(r.error().context, std::vector<std::string>{"failed to process \"${a:?gone}\""});
}

TEST(ShellLexerTest, DefaultAndAlternativeOperators) {
  VarLookup env = Env({{"set", "v"}, {"empty", ""}});
  EXPECT_EQ(Word("${set:-w}|${empty:-w}|${unset:-w}", env), "v|w|w");
  EXPECT_EQ(Word("${set-w}|${empty-w}|${unset-w}", env), "v||w");
  EXPECT_EQ(Word("${set:+w}|${empty:+w}|${unset:+w}", env), "w||");
  EXPECT_EQ(Word("${set+w}|${empty+w}|${unset+w}", env), "w|w|");
  EXPECT_EQ(Word("${set:?w}|${empty?w}", env), "v|");
  EXPECT_EQ(Word("${unset:-'a  b'\"$set\"}", env), "a  bv");
  EXPECT_EQ(Word("${unset:-a}b}", env), "ab}");
}

TEST(ShellLexerTest, TrimOperators) {
  VarLookup env = Env({{"p", "/usr/local/bin"}, {"f", "a.tar.gz"}, {"nl", "ab\nab"},
                       {"k", "한국어"}, {"bad", "x\xfey"}});
  EXPECT_EQ(Word("${p#*/}|${p##*/}|${p%/*}|${p%%/*}", env), "usr/local/bin|bin|/usr/local|");
  EXPECT_EQ(Word("${f%.*}|${f%%.*}|${f#*.}|${f##*.}", env), "a.tar|a|tar.gz|gz");
  EXPECT_EQ(Word("${f#?.}|${f%.??}|${f#x}|${f%}", env), "tar.gz|a.tar|a.tar.gz|a.tar.gz");
  // `*` and `?` do not match a newline (Go's `.`).
  EXPECT_EQ(Word("${nl#*b}|${nl##*b}|${nl%b*}|${nl%%b*}", env), "\nab|\nab|ab\na|ab\na");
  EXPECT_EQ(Word("${k#?}|${k%?}", env), "국어|한국");
  // `%` reverses the value by runes, so invalid UTF-8 comes back as U+FFFD; `#` keeps it.
  EXPECT_EQ(Word("${bad%z}|${bad#z}", env), "x\xef\xbf\xbdy|x\xfey");
  EXPECT_EQ(Word(R"(${f%\*}|${f#a\.})", env), "error");  // `\.` is an invalid escape
}

TEST(ShellLexerTest, ReplaceOperators) {
  VarLookup env = Env({{"x", "banana"}, {"r", "<$0>"}, {"empty", ""}, {"nl", "ab\nab\nc"}});
  EXPECT_EQ(Word("${x/a/o}|${x//a/o}|${x/n?/.}|${x//n*/.}", env), "bonana|bonono|ba.na|ba.");
  EXPECT_EQ(Word("${x//$empty/.}|${x/$empty/.}", env), ".b.a.n.a.n.a.|.banana");
  EXPECT_EQ(Word("${x//z/y}|${unset//a/b}|${x//a/}", env), "banana||bnn");
  EXPECT_EQ(Word("${nl//a*/-}", env), "-\n-\nc");
  // Replace-all expands Go regexp templates in the replacement: $0 is the match.
  EXPECT_EQ(Word("${x//a/$r}|${x/a/$r}", env), "b<a>n<a>n<a>|b<$0>nana");
  EXPECT_EQ(Word(R"(${x//a/\$0})", env), R"(b\an\an\a)");
  EXPECT_EQ(Word("${x//a/$r}", Env({{"x", "banana"}, {"r", "$$|${0}|$0b|${1}|$"}})),
            "b$|a|||$n$|a|||$n$|a|||$");
}

TEST(ShellLexerTest, SkipUnsetEnvKeepsReferences) {
  ExpandOptions opts;
  opts.skip_unset_env = true;
  EXPECT_EQ(Word("$x ${x} ${x:-a} ${x-a} ${x:+a} ${x+a} ${x:?a} ${x?a} ${x#a} ${x%%a} "
                 "${x/a/b} ${x//a/b} ${y}",
                 Env({{"y", "Y"}}), opts),
            // BuildKit drops the second `/` of ${x//a/b}.
            "$x ${x} ${x:-a} ${x-a} ${x:+a} ${x+a} ${x:?a} ${x?a} ${x#a} ${x%%a} ${x/a/b} "
            "${x/a/b} Y");
}

TEST(ShellLexerTest, RawQuotesAndEscapes) {
  ExpandOptions raw;
  raw.raw_quotes = true;
  raw.raw_escapes = true;
  const char* input = R"(a\ b "c\d" "e\"f" 'g\h')";
  EXPECT_EQ(Word(input, Env({})), R"(a b c\d e"f g\h)");
  // A kept escape that escapes nothing inside double quotes is doubled, as in BuildKit.
  EXPECT_EQ(Word(input, Env({}), raw), R"(a\ b "c\\d" "e\"f" 'g\h')");
  EXPECT_EQ(*ShellLexer().ProcessWords(input, Env({}), raw),
            (std::vector<std::string>{R"(a\ b)", R"("c\\d")", R"("e\"f")", R"('g\h')"}));
  raw.raw_quotes = false;
  EXPECT_EQ(Word(input, Env({}), raw), R"(a\ b c\\d e\"f g\h)");
  // Inside ${x:-...} escapes are processed even with raw_escapes; in patterns they are kept.
  EXPECT_EQ(Word(R"(${x:-a\b} ${x#a\*})", Env({{"x", "a*c"}}), raw), "a*c c");
  EXPECT_EQ(Word(R"(${y:-a\b})", Env({}), raw), "ab");

  ExpandOptions literal_quotes;
  literal_quotes.skip_process_quotes = true;
  EXPECT_EQ(*ShellLexer().ProcessWords("\"a\" 'b' $c", Env({{"c", "x y"}}), literal_quotes),
            (std::vector<std::string>{"\"a\"", "'b'", "x", "y"}));
}

TEST(ShellLexerTest, BacktickEscape) {
  VarLookup env = Env({{"b", "B"}});
  EXPECT_EQ(Word("a`$b c`\\d \"e`\"f\" `", env, {}, '`'), "a$b c\\d e\"f ");
  EXPECT_EQ(Word(R"(c:\windows\$b)", env, {}, '`'), R"(c:\windows\B)");
  EXPECT_EQ(Word("\"``$b`x\"", env, {}, '`'), "`B`x");
  EXPECT_EQ(*ShellLexer('`').ProcessWords("a` b c", env),
            (std::vector<std::string>{"a b", "c"}));
}

TEST(ShellLexerTest, FieldSplitting) {
  VarLookup env = Env({{"v", "a\xc2\xa0" "b\xe2\x80\x83" "c d"}, {"e", ""}});
  auto words = [&](const char* w) { return *ShellLexer().ProcessWords(w, env); };
  // Unicode spaces in expansions split fields; quoted empty strings make no field.
  EXPECT_EQ(words("$v"), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(words("\"$v\""), (std::vector<std::string>{"a\xc2\xa0" "b\xe2\x80\x83" "c d"}));
  EXPECT_EQ(words("a \"\" '' $e b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(words("  "), std::vector<std::string>{});
}

TEST(ShellLexerTest, OddBytes) {
  VarLookup env = Env({{"a", std::string("\0", 1)}, {"b", "x\xfey"}});
  EXPECT_EQ(Word(std::string("\0$a\0", 4), env), std::string("\0\0\0", 3));
  // Invalid UTF-8 in the word reads as U+FFFD; in a value it is kept, except in fields.
  EXPECT_EQ(Word("a\xff" "b\xc3", env), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
  EXPECT_EQ(Word("$b", env), "x\xfey");
  EXPECT_EQ(*ShellLexer().ProcessWords("$b", env), std::vector<std::string>{"x\xef\xbf\xbdy"});
  // A leading byte order mark is skipped, as text/scanner does; elsewhere it stays.
  EXPECT_EQ(Word("\xef\xbb\xbf" "a\xef\xbb\xbf", env), "a\xef\xbb\xbf");
  // Names are Unicode letters and digits.
  EXPECT_EQ(Word("$b한|$b\xd9\xa3|$b\xc2\xa0", env), "||x\xfey\xc2\xa0");
  EXPECT_EQ(Word("x", nullptr), "x");
  EXPECT_EQ(Word("$x", nullptr), "");
}

TEST(ShellLexerTest, OutputLimit) {
  ExpandOptions opts;
  opts.max_output_bytes = 1000;
  VarLookup env = Env({{"b", std::string(100, 'b')}});
  EXPECT_EQ(Word(std::string(20, 'x') + std::string("$b$b$b$b$b$b$b$b${b}") + std::string(80, 'x'),
                 env, opts).size(), 1000u);
  std::string chain;
  for (int i = 0; i < 11; ++i) chain += "$b";
  auto r = ShellLexer().ProcessWord(chain, env, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "dockerfile.expansion.too_large");
  EXPECT_EQ(r.error().message, "expansion exceeds the limit of 1000 bytes");
  // Every path that grows text is bounded: quotes, nested words, replacement, fields.
  for (const char* w : {"\"$b$b$b$b$b$b$b$b$b$b$b\"", "${x:-$b$b$b$b$b$b$b$b$b$b$b}",
                        "${b//?/$b}", "${b//$e/xxxxxxxxxx}"}) {
    auto e = ShellLexer().ProcessWord(w, env, opts);
    ASSERT_FALSE(e.ok()) << w;
    EXPECT_EQ(e.error().code, "dockerfile.expansion.too_large") << w;
  }
  // Discarded expansions still cost work.
  std::string discarded;
  for (int i = 0; i < 2000; ++i) discarded += "${x:+$b$b$b$b$b$b$b$b$b}";
  auto d = ShellLexer().ProcessWord(discarded, env, opts);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, "dockerfile.expansion.too_large");
  EXPECT_EQ(d.error().message, "expansion needs too much work for the limit of 1000 bytes");
  // The default limit is 1 MiB.
  VarLookup big = Env({{"b", std::string(300000, 'b')}});
  EXPECT_EQ(Word("$b$b$b", big).size(), 900000u);
  EXPECT_EQ(Word("$b$b$b$b", big), "error");
}

TEST(ShellLexerTest, NestingLimit) {
  auto nested = [](int depth) {
    std::string w;
    for (int i = 0; i < depth; ++i) w += "${a:-";
    w += "x";
    for (int i = 0; i < depth; ++i) w += "}";
    return w;
  };
  EXPECT_EQ(Word(nested(ShellLexer::kMaxNesting), Env({})), "x");
  auto r = ShellLexer().ProcessWord(nested(ShellLexer::kMaxNesting + 1), Env({}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "dockerfile.expansion.too_deep");
  EXPECT_EQ(r.error().message, "${...} nested deeper than 100 levels");
  EXPECT_FALSE(ShellLexer().ProcessWord(std::string(200000, '{').insert(0, "$"), Env({})).ok());
  EXPECT_FALSE(ShellLexer().ProcessWord(nested(100000), Env({})).ok());
}

TEST(ShellLexerTest, SurvivesRandomInput) {
  std::mt19937 rng(42);
  const std::string alphabet = "${}:-+?#%/*\\'\"` \n\tab0@!\xff\xc3\xef\xbb\xbf";
  VarLookup env = Env({{"a", "a*b"}, {"b", "x y"}});
  ExpandOptions opts;
  opts.max_output_bytes = 4096;
  for (int i = 0; i < 20000; ++i) {
    std::string w;
    for (size_t n = rng() % 40; n > 0; --n) {
      w += i % 2 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    }
    opts.raw_quotes = rng() % 2;
    opts.raw_escapes = rng() % 2;
    opts.skip_unset_env = rng() % 2;
    ShellLexer lexer(rng() % 2 ? '\\' : '`');
    auto r = lexer.ProcessWord(w, env, opts);
    auto f = lexer.ProcessWords(w, env, opts);
    ASSERT_EQ(r.ok(), f.ok()) << w;
    if (!r.ok()) {
      EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
    }
  }
}

}  // namespace
}  // namespace manifold::dockerfile
