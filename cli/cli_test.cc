// Runs the real `manifold` binary: exit codes, stdout and the exact stderr a
// user sees.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// Tests run as parallel processes (ctest -j): each gets its own scratch dir.
const std::string& Scratch() {
  // Never destroyed, so the atexit handler can still read it.
  static const std::string* dir = [] {
    std::string tmpl = testing::TempDir() + "/manifold-cli-test-XXXXXX";
    auto* made = new std::string(mkdtemp(tmpl.data()));
    std::atexit([] { std::filesystem::remove_all(Scratch()); });
    return made;
  }();
  return *dir;
}

Result Manifold(const std::string& args) {
  std::string err_file = Scratch() + "/stderr.txt";
  std::string cmd = std::string(MF_MANIFOLD_BIN) + " " + args + " 2>" + err_file;
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

std::string WriteDockerfile(const std::string& name, const std::string& text) {
  std::string path = Scratch() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CliTest, HelpListsSubcommands) {
  auto r = Manifold("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("parse"), std::string::npos);
  EXPECT_NE(r.out.find("plan"), std::string::npos);
  EXPECT_EQ(Manifold("").code, 106);  // a subcommand is required (CLI11's RequiredError)
}

TEST(CliTest, ParseJsonMatchesGolden) {
  auto r = Manifold("parse --json common/dockerfile/testdata/ok/heredocs/Dockerfile");
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream golden("common/dockerfile/testdata/ok/heredocs/parse.json");
  std::string want(std::istreambuf_iterator<char>(golden), {});
  EXPECT_EQ(r.out, want);
}

TEST(CliTest, ErrorsNameFileAndLineAndExitNonZero) {
  std::string path = WriteDockerfile("Dockerfile.typo", "FROM busybox\nRUNN echo\n");
  auto r = Manifold("plan -f " + path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "error: " + path + ":2: unknown instruction \"RUNN\"\nRUNN echo\n^ near here\n");
  auto p = Manifold("parse " + path);  // the syntax layer accepts it
  EXPECT_EQ(p.code, 0) << p.err;
  auto missing = Manifold("parse /nonexistent/Dockerfile");
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "error: cannot read /nonexistent/Dockerfile: No such file or directory\n");
}

TEST(CliTest, PlansTheExampleForTwoPlatforms) {
  auto r = Manifold("plan --json --platform linux/amd64,linux/arm64 examples/busybox-multistage");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["jobs"].size(), 10u);
  std::set<std::string> ids;
  for (const auto& job : j["jobs"]) ids.insert(job["id"].get<std::string>());
  EXPECT_TRUE(ids.count("final-linux-arm64"));
  EXPECT_TRUE(ids.count("report-linux-amd64"));
  for (const auto& job : j["jobs"])
    if (job["id"] == "report-linux-arm64")
      EXPECT_EQ(job["depends_on"], nlohmann::json({"hash-linux-arm64", "pack-linux-arm64"}));
}

TEST(CliTest, BadRequestsNameTheField) {
  auto r = Manifold("plan --platform linux/../x examples/busybox-multistage");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: --platform: invalid platform \"linux/../x\": bad component \"..\"\n");
  auto e = Manifold("plan --platform '' examples/busybox-multistage");
  EXPECT_EQ(e.code, 1);
  EXPECT_EQ(e.err, "error: --platform: invalid platform \"\": empty platform\n");
  auto b = Manifold("plan --build-arg =x examples/busybox-multistage");
  EXPECT_EQ(b.code, 1);
  EXPECT_EQ(b.err, "error: invalid --build-arg \"=x\": empty name\n");
}

TEST(CliTest, BuildArgFromEnvironment) {
  std::string path = WriteDockerfile("Dockerfile.arg", "FROM busybox\nARG GREETING\nLABEL g=$GREETING\n");
  auto r = Manifold("plan --json -f " + path + " --build-arg GREETING");
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\"value\": \"\""), std::string::npos);  // unset in the environment
  setenv("GREETING", "hello from env", 1);
  auto s = Manifold("plan --json -f " + path + " --build-arg GREETING");
  unsetenv("GREETING");
  EXPECT_NE(s.out.find("\"value\": \"hello from env\""), std::string::npos) << s.out;
}

}  // namespace
