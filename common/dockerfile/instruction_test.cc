#include "common/dockerfile/instruction.h"

#include <gtest/gtest.h>

#include "common/dockerfile/expand.h"
#include "common/dockerfile/parser.h"

namespace manifold::dockerfile {
namespace {

Dockerfile Must(std::string_view text) {
  auto t = Parse(text, "Dockerfile");
  EXPECT_TRUE(t.ok()) << t.error().ToString();
  auto df = ParseInstructions(*t);
  EXPECT_TRUE(df.ok()) << df.error().ToString();
  return df.ok() ? std::move(*df) : Dockerfile{};
}

// The first line of the error (the message; the source line and caret follow).
std::string Fail(std::string_view text, ErrorKind kind = ErrorKind::kInvalidInput) {
  auto t = Parse(text, "Dockerfile");
  if (!t.ok()) return "parse: " + t.error().message;
  auto df = ParseInstructions(*t);
  EXPECT_FALSE(df.ok());
  if (df.ok()) return "";
  EXPECT_EQ(df.error().kind, kind);
  return df.error().message;
}

TEST(InstructionTest, FromForms) {
  auto df = Must("ARG V=1\nFROM --platform=$BUILDPLATFORM busybox:$V AS Build\nFROM build\n");
  ASSERT_EQ(df.meta_args.size(), 1u);
  ASSERT_EQ(df.stages.size(), 2u);
  EXPECT_EQ(df.stages[0].name, "build");
  EXPECT_EQ(df.stages[0].from.base, "busybox:$V");
  EXPECT_EQ(df.stages[0].from.platform, "$BUILDPLATFORM");
  EXPECT_EQ(df.stages[1].DisplayName(), "stage-1");
  EXPECT_EQ(Fail("FROM a b\n"), "Dockerfile:1: FROM requires either one or three arguments");
  EXPECT_EQ(Fail("FROM a AS 1x\n"),
            "Dockerfile:1: invalid name for build stage: \"1x\", name can't start with a number "
            "or contain symbols");
  EXPECT_EQ(Fail("FROM a AS x\nFROM b AS X\n"), "Dockerfile:2: duplicate stage name \"x\"");
  EXPECT_EQ(Fail("FROM --platform a\n"), "Dockerfile:1: missing a value on flag: platform");
}

TEST(InstructionTest, UnknownInstructionNamesLine) {
  auto t = Parse("FROM a\n\n\n\n\n\nRUNN echo\n", "Dockerfile");
  ASSERT_TRUE(t.ok());
  auto df = ParseInstructions(*t);
  ASSERT_FALSE(df.ok());
  EXPECT_EQ(df.error().code, "dockerfile.unknown_instruction");
  EXPECT_EQ(df.error().ToString(), "Dockerfile:7: unknown instruction \"RUNN\"\nRUNN echo\n^ near here");
  ASSERT_TRUE(df.error().where);
  EXPECT_EQ(df.error().where->line, 7);
}

TEST(InstructionTest, OnlyArgBeforeFrom) {
  EXPECT_EQ(Fail("RUN x\nFROM a\n"),
            "Dockerfile:1: RUN before the first FROM: only ARG may come before FROM");
  EXPECT_EQ(Fail("ARG a\n"), "Dockerfile:1: the Dockerfile has no FROM instruction");
}

TEST(InstructionTest, RunFlags) {
  auto df = Must(
      "FROM a\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none "
      "--security=insecure echo hi\n");
  const auto& run = df.stages[0].instructions[0];
  EXPECT_EQ(run.cmd, Cmd::kRun);
  EXPECT_EQ(run.mounts.size(), 2u);
  EXPECT_EQ(run.network, "none");
  EXPECT_EQ(run.security, "insecure");
  EXPECT_TRUE(run.prepend_shell);
  EXPECT_EQ(Fail("FROM a\nRUN --network=bogus x\n"),
            "Dockerfile:2: unsupported network mode \"bogus\" (expected default, none or host)");
  EXPECT_EQ(Fail("FROM a\nRUN --security=open x\n"),
            "Dockerfile:2: unsupported security mode \"open\" (expected sandbox or insecure)");
  EXPECT_EQ(Fail("FROM a\nRUN --foo x\n"), "Dockerfile:2: unknown flag \"--foo\" for RUN");
  EXPECT_EQ(Fail("FROM a\nRUN --network=none --network=host x\n"),
            "Dockerfile:2: duplicate flag specified: network");
  EXPECT_EQ(Fail("FROM a\nRUN --mount=type=nfs,target=/x x\n"),
            "Dockerfile:2: unsupported mount type \"nfs\"");
  EXPECT_EQ(Fail("FROM a\nRUN\n"), "Dockerfile:2: RUN requires at least one argument");
}

TEST(InstructionTest, CopyAndAddFlags) {
  auto df = Must(
      "FROM a\nCOPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md "
      "--exclude=x a b /dst/\nADD --checksum=sha256:abc --keep-git-dir=true --link=false u /d\n");
  const auto& copy = df.stages[0].instructions[0];
  EXPECT_EQ(copy.from, "build");
  EXPECT_EQ(copy.chown, "app:app");
  EXPECT_EQ(copy.chmod, "0755");
  EXPECT_TRUE(copy.link);
  EXPECT_TRUE(copy.parents);
  EXPECT_EQ(copy.excludes, (std::vector<std::string>{"*.md", "x"}));
  EXPECT_EQ(copy.args, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(copy.dest, "/dst/");
  const auto& add = df.stages[0].instructions[1];
  EXPECT_TRUE(add.keep_git_dir);
  EXPECT_FALSE(add.link);
  EXPECT_EQ(add.checksum, "sha256:abc");
  EXPECT_EQ(Fail("FROM a\nADD --from=x a b\n"), "Dockerfile:2: unknown flag \"--from\" for ADD");
  EXPECT_EQ(Fail("FROM a\nCOPY --link=maybe a b\n"),
            "Dockerfile:2: expecting boolean value for flag link, not: maybe");
  EXPECT_EQ(Fail("FROM a\nCOPY a\n"),
            "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined.");
  EXPECT_EQ(Fail("FROM a\nCOPY a <<EOF\nx\nEOF\n"),
            "Dockerfile:2: COPY cannot accept a heredoc as a destination");
}

TEST(InstructionTest, CopyHeredocSources) {
  auto df = Must("FROM a\nCOPY <<-EOF <<'RAW' file /d/\n\thello $x\nEOF\nraw $y\nRAW\n");
  const auto& copy = df.stages[0].instructions[0];
  ASSERT_EQ(copy.heredoc_sources.size(), 2u);
  EXPECT_EQ(copy.heredoc_sources[0].data, "hello $x\n");
  EXPECT_TRUE(copy.heredoc_sources[0].expand);
  EXPECT_EQ(copy.heredoc_sources[1].data, "raw $y\n");
  EXPECT_FALSE(copy.heredoc_sources[1].expand);
  EXPECT_EQ(copy.args, (std::vector<std::string>{"file"}));
}

TEST(InstructionTest, Healthcheck) {
  auto df = Must(
      "FROM a\nHEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s "
      "--start-interval=100ms --retries=3 CMD curl -f http://localhost/\n"
      "HEALTHCHECK CMD [\"/bin/check\", \"-q\"]\nHEALTHCHECK NONE\n");
  const auto& h = df.stages[0].instructions[0];
  EXPECT_EQ(h.health_test, (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/"}));
  EXPECT_EQ(h.interval_ns, 30'000'000'000);
  EXPECT_EQ(h.timeout_ns, 90'000'000'000);
  EXPECT_EQ(h.start_period_ns, 1'500'000'000);
  EXPECT_EQ(h.start_interval_ns, 100'000'000);
  EXPECT_EQ(h.retries, 3);
  EXPECT_EQ(df.stages[0].instructions[1].health_test,
            (std::vector<std::string>{"CMD", "/bin/check", "-q"}));
  EXPECT_EQ(df.stages[0].instructions[2].health_test, (std::vector<std::string>{"NONE"}));
  EXPECT_EQ(Fail("FROM a\nHEALTHCHECK NONE x\n"), "Dockerfile:2: HEALTHCHECK NONE takes no arguments");
  EXPECT_EQ(Fail("FROM a\nHEALTHCHECK RUN x\n"),
            "Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
  EXPECT_EQ(Fail("FROM a\nHEALTHCHECK --interval=10us CMD x\n"),
            "Dockerfile:2: Interval \"interval\" cannot be less than 1ms");
  EXPECT_EQ(Fail("FROM a\nHEALTHCHECK --timeout=soon CMD x\n"),
            "Dockerfile:2: time: invalid duration \"soon\"");
  EXPECT_EQ(Fail("FROM a\nHEALTHCHECK --retries=-1 CMD x\n"),
            "Dockerfile:2: --retries cannot be negative (-1)");
  EXPECT_EQ(Fail("FROM a\nHEALTHCHECK CMD\n"), "Dockerfile:2: Missing command after HEALTHCHECK CMD");
}

TEST(InstructionTest, Onbuild) {
  auto df = Must("FROM a\nONBUILD RUN echo hi\nonbuild copy <<EOF /x\nhello\nEOF\n");
  const auto& o = df.stages[0].instructions[0];
  EXPECT_EQ(o.onbuild_expression, "RUN echo hi");
  ASSERT_TRUE(o.sub);
  EXPECT_EQ(o.sub->cmd, Cmd::kRun);
  const auto& c = df.stages[0].instructions[1];
  EXPECT_EQ(c.onbuild_expression, "copy <<EOF /x\nhello\nEOF");
  ASSERT_TRUE(c.sub);
  ASSERT_EQ(c.sub->heredoc_sources.size(), 1u);
  EXPECT_EQ(c.sub->heredoc_sources[0].data, "hello\n");
  EXPECT_EQ(Fail("FROM a\nONBUILD ONBUILD RUN x\n"),
            "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  EXPECT_EQ(Fail("FROM a\nONBUILD FROM x\n"), "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  EXPECT_EQ(Fail("FROM a\nONBUILD MAINTAINER x\n"),
            "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger");
  EXPECT_EQ(Fail("FROM a\nONBUILD RUNN x\n"), "Dockerfile:2: unknown instruction \"RUNN\"");
  EXPECT_EQ(Fail("FROM a\nONBUILD\n"), "Dockerfile:2: ONBUILD requires at least one argument");
}

TEST(InstructionTest, ArgumentCounts) {
  EXPECT_EQ(Fail("FROM a\nENV\n"), "Dockerfile:2: ENV requires at least one argument");
  EXPECT_EQ(Fail("FROM a\nLABEL\n"), "Dockerfile:2: LABEL requires at least one argument");
  EXPECT_EQ(Fail("FROM a\nARG\n"), "Dockerfile:2: ARG requires at least one argument");
  EXPECT_EQ(Fail("FROM a\nARG =x\n"), "Dockerfile:2: ARG names can not be blank");
  EXPECT_EQ(Fail("FROM a\nEXPOSE\n"), "Dockerfile:2: EXPOSE requires at least one argument");
  EXPECT_EQ(Fail("FROM a\nVOLUME\n"), "Dockerfile:2: VOLUME requires at least one argument");
  EXPECT_EQ(Fail("FROM a\nVOLUME [\"\"]\n"), "Dockerfile:2: VOLUME specified can not be an empty string");
  EXPECT_EQ(Fail("FROM a\nUSER\n"), "Dockerfile:2: USER requires exactly one argument");
  EXPECT_EQ(Fail("FROM a\nWORKDIR\n"), "Dockerfile:2: WORKDIR requires exactly one argument");
  EXPECT_EQ(Fail("FROM a\nSTOPSIGNAL\n"), "Dockerfile:2: STOPSIGNAL requires exactly one argument");
  EXPECT_EQ(Fail("FROM a\nMAINTAINER\n"), "Dockerfile:2: MAINTAINER requires exactly one argument");
  EXPECT_EQ(Fail("FROM a\nSHELL\n"), "Dockerfile:2: SHELL requires at least one argument");
  EXPECT_EQ(Fail("FROM a\nSHELL sh -c\n"), "Dockerfile:2: SHELL requires the arguments to be in JSON form");
  EXPECT_EQ(Fail("FROM a\nUSER --x=1 bob\n"), "Dockerfile:2: unknown flag \"--x\" for USER");
}

TEST(InstructionTest, ExternalFrontendRefused) {
  EXPECT_EQ(Fail("# syntax=example.com/my/frontend:2\nFROM a\n", ErrorKind::kUnimplemented),
            "Dockerfile:1: frontend \"example.com/my/frontend:2\" is not supported: Manifold builds "
            "with its built-in docker/dockerfile:1 frontend and does not run external frontends");
  Must("# syntax=docker/dockerfile:1.7\nFROM a\n");
}

TEST(InstructionTest, ArgDeclarations) {
  auto df = Must("FROM a\nARG A B=\"x y\" C=\n");
  const auto& decls = df.stages[0].instructions[0].arg_decls;
  ASSERT_EQ(decls.size(), 3u);
  EXPECT_FALSE(decls[0].value);
  EXPECT_EQ(*decls[1].value, "\"x y\"");
  EXPECT_EQ(*decls[2].value, "");
}

TEST(DurationTest, GoSyntax) {
  EXPECT_EQ(*ParseGoDuration("1h2m3s"), 3723'000'000'000);
  EXPECT_EQ(*ParseGoDuration("0"), 0);
  EXPECT_EQ(*ParseGoDuration("-1.5s"), -1'500'000'000);
  EXPECT_EQ(*ParseGoDuration("2\xC2\xB5s"), 2000);
  EXPECT_FALSE(ParseGoDuration("5"));
  EXPECT_FALSE(ParseGoDuration("1x"));
  EXPECT_FALSE(ParseGoDuration(""));
  EXPECT_FALSE(ParseGoDuration(".s"));
}

TEST(CleanPathTest, Lexical) {
  EXPECT_EQ(CleanPath("/a/b/../c/./d/"), "/a/c/d");
  EXPECT_EQ(CleanPath("/../.."), "/");
  EXPECT_EQ(CleanPath("//proc//self"), "/proc/self");
}

}  // namespace
}  // namespace manifold::dockerfile
