#include "common/dockerfile/parser.h"

#include <gtest/gtest.h>

#include "common/dockerfile/directives.h"
#include "common/dockerfile/heredoc.h"

namespace manifold::dockerfile {
namespace {

SyntaxTree MustParse(std::string_view text) {
  auto t = Parse(text, "Dockerfile");
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().ToString());
  return t.ok() ? std::move(*t) : SyntaxTree{};
}

std::string ParseError(std::string_view text) {
  auto t = Parse(text, "Dockerfile");
  EXPECT_FALSE(t.ok());
  if (t.ok()) return "";
  EXPECT_EQ(t.error().kind, ErrorKind::kInvalidInput);
  return t.error().ToString();
}

TEST(ParserTest, DirectivesOnlyAtTheTop) {
  auto t = MustParse("# Syntax=docker/dockerfile:1\n#escape=`\nFROM a\n# check=skip=all\nRUN x `\n y\n");
  EXPECT_EQ(t.directives.at("syntax"), "docker/dockerfile:1");
  EXPECT_EQ(t.directives.at("escape"), "`");
  EXPECT_EQ(t.escape, '`');
  EXPECT_EQ(t.directives.count("check"), 0u);
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.nodes[1].args[0], "x  y");
}

TEST(ParserTest, DirectiveAfterCommentOrBlankIsAComment) {
  auto t = MustParse("# a comment\n# escape=`\nFROM a\n");
  EXPECT_TRUE(t.directives.empty());
  auto u = MustParse("\n# escape=`\nFROM a\n");
  EXPECT_TRUE(u.directives.empty());
  EXPECT_EQ(u.escape, '\\');
}

TEST(ParserTest, BadAndRepeatedDirectives) {
  EXPECT_EQ(ParseError("# escape=x\nFROM a\n"),
            "Dockerfile:1: invalid escape token 'x' does not match ` or \\\n# escape=x\n^ near here");
  EXPECT_EQ(ParseError("# syntax=a\n# SYNTAX=b\nFROM a\n"),
            "Dockerfile:2: only one syntax parser directive can be used\n# SYNTAX=b\n^ near here");
}

TEST(ParserTest, ContinuationsSkipCommentsAndBlankLines) {
  auto t = MustParse("FROM a\nRUN echo a \\\n# inner comment\n\n    && echo b\n");
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.nodes[1].args[0], "echo a     && echo b");
  EXPECT_EQ(t.nodes[1].line, 2);
  EXPECT_EQ(t.nodes[1].end_line, 5);
  ASSERT_EQ(t.warnings.size(), 1u);
  EXPECT_EQ(t.warnings[0].message, "Empty continuation line found in: RUN echo a     && echo b");
}

TEST(ParserTest, TrailingEscapeAtEndOfFile) {
  auto t = MustParse("FROM a\nRUN echo \\");
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.nodes[1].args[0], "echo");
}

TEST(ParserTest, EmptyFilesAreErrors) {
  EXPECT_EQ(ParseError(""), "Dockerfile:1: file with no instructions");
  EXPECT_EQ(ParseError("# syntax=docker/dockerfile:1\n# just a comment\n\n"),
            "Dockerfile:3: file with no instructions\n\n^ near here");
}

TEST(ParserTest, JsonFormAndFallback) {
  auto t = MustParse("FROM a\nCMD [\"a\", \"b c\"]\nCMD [\"a\", b]\nENTRYPOINT []\n");
  EXPECT_TRUE(t.nodes[1].json);
  EXPECT_EQ(t.nodes[1].args, (std::vector<std::string>{"a", "b c"}));
  EXPECT_FALSE(t.nodes[2].json);
  EXPECT_EQ(t.nodes[2].args, (std::vector<std::string>{"[\"a\", b]"}));
  EXPECT_TRUE(t.nodes[3].json);
  EXPECT_TRUE(t.nodes[3].args.empty());
  EXPECT_EQ(ParseError("FROM a\nRUN [\"a\", 1]\n"),
            "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings "
            "only\nRUN [\"a\", 1]\n^ near here");
}

TEST(ParserTest, FlagsAreWordsWithQuotesRemoved) {
  auto t = MustParse("FROM a\nRUN --mount=type=cache,target=\"/x y\" --network=none echo hi\n");
  EXPECT_EQ(t.nodes[1].flags,
            (std::vector<std::string>{"--mount=type=cache,target=/x y", "--network=none"}));
  EXPECT_EQ(t.nodes[1].args[0], "echo hi");
}

TEST(ParserTest, EnvForms) {
  auto t = MustParse("FROM a\nENV A=1 B=\"two words\"\nENV LEGACY value with spaces\n");
  ASSERT_EQ(t.nodes[1].kvs.size(), 2u);
  EXPECT_EQ(t.nodes[1].kvs[1].value, "\"two words\"");
  EXPECT_FALSE(t.nodes[1].kvs[1].legacy);
  ASSERT_EQ(t.nodes[2].kvs.size(), 1u);
  EXPECT_EQ(t.nodes[2].kvs[0].key, "LEGACY");
  EXPECT_EQ(t.nodes[2].kvs[0].value, "value with spaces");
  EXPECT_TRUE(t.nodes[2].kvs[0].legacy);
  EXPECT_EQ(ParseError("FROM a\nENV a=b c\n"),
            "Dockerfile:2: Syntax error - can't find = in \"c\". Must be of the form: "
            "name=value\nENV a=b c\n^ near here");
  EXPECT_EQ(ParseError("FROM a\nENV PATH\n"),
            "Dockerfile:2: ENV must have two arguments\nENV PATH\n^ near here");
  EXPECT_EQ(ParseError("FROM a\nLABEL k\n"),
            "Dockerfile:2: LABEL must have two arguments\nLABEL k\n^ near here");
}

TEST(ParserTest, ArgWordsKeepQuotes) {
  auto t = MustParse("ARG A=\"x y\" B C='z'\nFROM a\n");
  EXPECT_EQ(t.nodes[0].args, (std::vector<std::string>{"A=\"x y\"", "B", "C='z'"}));
}

TEST(ParserTest, HeredocsAreRead) {
  auto t = MustParse(
      "FROM a\n"
      "RUN <<EOF cat >/x && 3<<-\"END\" cat\n"
      "line $one\n"
      "EOF\n"
      "\t\ttabbed\n"
      "\tEND\n"
      "COPY <<A <<'B' /dest/\n"
      "a\n"
      "A\n"
      "b\n"
      "B\n");
  ASSERT_EQ(t.nodes.size(), 3u);
  const auto& run = t.nodes[1];
  ASSERT_EQ(run.heredocs.size(), 2u);
  EXPECT_EQ(run.heredocs[0].name, "EOF");
  EXPECT_EQ(run.heredocs[0].content, "line $one\n");
  EXPECT_TRUE(run.heredocs[0].expand);
  EXPECT_EQ(run.heredocs[1].name, "END");
  EXPECT_TRUE(run.heredocs[1].chomp);
  EXPECT_FALSE(run.heredocs[1].expand);
  EXPECT_EQ(run.heredocs[1].fd, 3);
  EXPECT_EQ(run.heredocs[1].content, "\t\ttabbed\n");
  EXPECT_EQ(run.end_line, 6);
  const auto& copy = t.nodes[2];
  ASSERT_EQ(copy.heredocs.size(), 2u);
  EXPECT_TRUE(copy.heredocs[0].expand);
  EXPECT_FALSE(copy.heredocs[1].expand);
  EXPECT_EQ(copy.line, 7);
  EXPECT_EQ(copy.end_line, 11);
}

TEST(ParserTest, HeredocNotInJsonFormOrOtherInstructions) {
  auto t = MustParse("FROM a\nRUN [\"<<EOF\"]\nCMD <<EOF\nEOF\n");
  EXPECT_TRUE(t.nodes[1].heredocs.empty());
  EXPECT_TRUE(t.nodes[2].heredocs.empty());
  EXPECT_EQ(t.nodes.size(), 4u);  // the "EOF" line is an (unknown) instruction
  EXPECT_FALSE(t.nodes[3].known);
}

TEST(ParserTest, OnbuildHeredoc) {
  auto t = MustParse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n");
  ASSERT_EQ(t.nodes.size(), 2u);
  ASSERT_TRUE(t.nodes[1].sub);
  EXPECT_EQ(t.nodes[1].sub->cmd, "run");
  ASSERT_EQ(t.nodes[1].heredocs.size(), 1u);
  EXPECT_EQ(t.nodes[1].heredocs[0].content, "echo hi\n");
}

TEST(ParserTest, UnterminatedHeredoc) {
  EXPECT_EQ(ParseError("FROM a\nRUN <<EOF\necho hi\n"),
            "Dockerfile:2: unterminated heredoc\nRUN <<EOF\n^ near here");
}

TEST(ParserTest, AcceptsWhatBuildKitAccepts) {
  auto t = MustParse("RUNN echo\nRUN before from\nFROM a\nRUN --bogus-flag x\n");
  EXPECT_FALSE(t.nodes[0].known);
  EXPECT_EQ(t.nodes[0].keyword, "RUNN");
  EXPECT_EQ(t.nodes[3].flags, (std::vector<std::string>{"--bogus-flag"}));
}

TEST(ParserTest, LineAndFileLimits) {
  std::string long_line = "FROM a\nRUN " + std::string(70000, 'x') + "\n";
  auto t = Parse(long_line, "Dockerfile");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, "dockerfile.limit.line");
  EXPECT_EQ(t.error().message, "Dockerfile:2: dockerfile line greater than max allowed size of 65535");
  std::string big(2 << 20, '#');
  auto b = Parse(big, "Dockerfile");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message,
            "Dockerfile: file is 2097152 bytes, more than the maximum of 1048576");
}

TEST(ParserTest, ByteOrderMarkAndCrlf) {
  auto t = MustParse("\xEF\xBB\xBF# escape=`\r\nFROM a\r\nRUN a `\r\n  b\r\n");
  EXPECT_EQ(t.escape, '`');
  EXPECT_EQ(t.nodes[1].args[0], "a   b");
}

TEST(ParserTest, WhitespaceListsKeepQuotes) {
  auto t = MustParse("FROM a\nCOPY \"a b\" c\\ d /x/\nEXPOSE 80/tcp 443\n");
  EXPECT_EQ(t.nodes[1].args, (std::vector<std::string>{"\"a", "b\"", "c\\", "d", "/x/"}));
  EXPECT_EQ(t.nodes[2].args, (std::vector<std::string>{"80/tcp", "443"}));
}

TEST(ParserTest, HealthcheckTypeFirst) {
  auto t = MustParse("FROM a\nHEALTHCHECK --interval=5s CMD [\"curl\", \"-f\"]\nHEALTHCHECK NONE\n");
  EXPECT_EQ(t.nodes[1].args, (std::vector<std::string>{"CMD", "curl", "-f"}));
  EXPECT_TRUE(t.nodes[1].json);
  EXPECT_EQ(t.nodes[1].flags, (std::vector<std::string>{"--interval=5s"}));
  EXPECT_EQ(t.nodes[2].args, (std::vector<std::string>{"NONE"}));
}

TEST(HeredocTest, WordForms) {
  auto h = ParseHeredocWord("<<-'E\"OF'");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(*h);
  EXPECT_EQ((*h)->name, "E\"OF");
  EXPECT_FALSE((*h)->expand);
  EXPECT_TRUE((*h)->chomp);
  auto n = ParseHeredocWord("<<");
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(*n);
  auto three = ParseHeredocWord("<<<EOF");
  ASSERT_TRUE(three.ok());
  EXPECT_FALSE(*three);
  EXPECT_EQ(ChompHeredocContent("\t\ta\n\tb\nc\t\n"), "a\nb\nc\t\n");
}

TEST(DirectivesTest, BuiltinSyntaxNames) {
  for (const char* ok : {"docker/dockerfile:1", "docker/dockerfile:1.7", "docker/dockerfile:1.7.1",
                         "docker/dockerfile:1-labs", "docker.io/docker/dockerfile:1",
                         "docker/dockerfile", "docker/dockerfile:latest",
                         "docker/dockerfile:1@sha256:0000000000000000000000000000000000000000000000000000000000000000"})
    EXPECT_TRUE(IsBuiltinSyntax(ok)) << ok;
  for (const char* bad : {"docker/dockerfile:2", "docker/dockerfile:10", "tonistiigi/dockerfile:1",
                          "docker/dockerfile-upstream:1", "example.com/docker/dockerfile:1",
                          "docker/dockerfile:"})
    EXPECT_FALSE(IsBuiltinSyntax(bad)) << bad;
}

}  // namespace
}  // namespace manifold::dockerfile
