#include "worker/build/config_step.h"

#include <gtest/gtest.h>

#include "common/dockerfile/parser.h"

namespace manifold::worker {
namespace {

dockerfile::Instruction One(const std::string& line) {
  std::string text = "FROM scratch\n" + line + "\n";
  auto tree = dockerfile::Parse(text, "Dockerfile", {});
  EXPECT_TRUE(tree.ok());
  auto df = dockerfile::ParseInstructions(*tree);
  EXPECT_TRUE(df.ok()) << df.error().ToString();
  return df->stages[0].instructions.at(0);
}

struct State {
  oci::ImageConfig config;
  std::map<std::string, std::string> args;
  bool cmd_set = false;
  std::map<std::string, std::string> build_args;
  std::string Apply(const std::string& line) {
    auto by = ApplyMetadata(One(line), build_args, config, args, cmd_set);
    EXPECT_TRUE(by.ok()) << by.error().ToString();
    return by.ok() ? *by : "";
  }
};

TEST(ConfigStepTest, EntrypointDropsAnInheritedCmdButNotOneSetInTheStage) {
  State s;
  s.config.config.cmd = std::vector<std::string>{"inherited"};
  EXPECT_EQ(s.Apply("ENTRYPOINT [\"/app\"]"), "ENTRYPOINT [\"/app\"]");
  EXPECT_FALSE(s.config.config.cmd.has_value());
  EXPECT_EQ(s.Apply("CMD [\"--flag\"]"), "CMD [\"--flag\"]");
  s.Apply("ENTRYPOINT /bin/run");
  ASSERT_TRUE(s.config.config.cmd.has_value());
  EXPECT_EQ(*s.config.config.cmd, std::vector<std::string>{"--flag"});
  EXPECT_EQ(*s.config.config.entrypoint, (std::vector<std::string>{"/bin/sh", "-c", "/bin/run"}));
}

TEST(ConfigStepTest, ShellFormUsesTheStagesShell) {
  State s;
  s.Apply("SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]");
  s.Apply("CMD echo hi");
  EXPECT_EQ(*s.config.config.cmd,
            (std::vector<std::string>{"/bin/bash", "-eo", "pipefail", "-c", "echo hi"}));
}

TEST(ConfigStepTest, WorkdirIsCleanedAndRelativeToThePreviousOne) {
  State s;
  EXPECT_EQ(s.Apply("WORKDIR /a/b/../c"), "WORKDIR /a/c");
  EXPECT_EQ(s.Apply("WORKDIR d/"), "WORKDIR /a/c/d");
  EXPECT_EQ(s.config.config.working_dir, "/a/c/d");
}

TEST(ConfigStepTest, EnvReplacesInPlaceAndExposeDefaultsToTcp) {
  State s;
  s.config.config.env = {"PATH=/bin", "A=1"};
  EXPECT_EQ(s.Apply("ENV PATH=/usr/bin:/bin B=2"), "ENV PATH=/usr/bin:/bin B=2");
  EXPECT_EQ(s.config.config.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "A=1", "B=2"}));
  s.Apply("EXPOSE 80 53/udp");
  EXPECT_EQ(s.config.config.exposed_ports, (std::set<std::string>{"80/tcp", "53/udp"}));
}

TEST(ConfigStepTest, ArgTakesTheBuildArgElseItsDefault) {
  State s;
  s.build_args = {{"V", "given"}};
  EXPECT_EQ(s.Apply("ARG V=default W=w"), "ARG V=given W=w");
  EXPECT_EQ(s.args, (std::map<std::string, std::string>{{"V", "given"}, {"W", "w"}}));
}

TEST(ConfigStepTest, BuildStepsAreNotMetadata) {
  oci::ImageConfig c;
  std::map<std::string, std::string> args;
  bool cmd_set = false;
  auto r = ApplyMetadata(One("RUN true"), {}, c, args, cmd_set);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "step.unexpected");
}

}  // namespace
}  // namespace manifold::worker
