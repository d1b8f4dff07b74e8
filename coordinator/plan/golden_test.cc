// Golden folders, as BuildKit's testfiles: every testdata/ok/<case> parses to
// its parse.json (and, when present, plans to plan.json); every
// testdata/bad/<case> fails with exactly error.txt. Adding a case is adding a
// folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <cstdlib>

#include "common/dockerfile/instruction.h"
#include "common/dockerfile/parse_json.h"
#include "common/dockerfile/parser.h"
#include "coordinator/plan/plan.h"

namespace manifold::dockerfile {
namespace {

namespace fs = std::filesystem;

const fs::path kRoot = "common/dockerfile/testdata";

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Cases(const char* kind) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kRoot / kind))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

plan::PlanOptions Options(const fs::path& dir) {
  plan::PlanOptions opts;
  opts.build_platform = *oci::ParsePlatform("linux/amd64");
  opts.platforms = *oci::ParsePlatformList("linux/amd64,linux/arm64");
  std::ifstream args(dir / "args.txt");
  for (std::string line; std::getline(args, line);) {
    if (line.rfind("platform=", 0) == 0) opts.platforms = *oci::ParsePlatformList(line.substr(9));
    else if (line.rfind("target=", 0) == 0) opts.target = line.substr(7);
    else if (line.rfind("build-arg=", 0) == 0) {
      std::string kv = line.substr(10);
      size_t eq = kv.find('=');
      opts.build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return opts;
}

// The first error of parse, instruction layer and plan, or the outputs.
struct Outcome {
  std::optional<Error> error;
  std::string parse_json;
  std::string plan_json;
};

Outcome RunCase(const fs::path& dir, bool want_plan) {
  Outcome o;
  auto tree = Parse(Slurp(dir / "Dockerfile"), "Dockerfile");
  if (!tree.ok()) {
    o.error = tree.error();
    return o;
  }
  o.parse_json = SyntaxTreeToJson(*tree);
  if (!want_plan) return o;
  auto df = ParseInstructions(*tree);
  if (!df.ok()) {
    o.error = df.error();
    return o;
  }
  auto p = plan::MakePlan(*df, tree->escape, Options(dir));
  if (!p.ok()) {
    o.error = p.error();
    return o;
  }
  o.plan_json = plan::PlanToJson(*p);
  return o;
}

// MF_UPDATE_GOLDEN=1 rewrites the expected files (review the diff before committing).
bool Update() { return std::getenv("MF_UPDATE_GOLDEN") != nullptr; }

void Write(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

class GoldenOk : public testing::TestWithParam<std::string> {};
class GoldenBad : public testing::TestWithParam<std::string> {};

TEST_P(GoldenOk, MatchesExpected) {
  fs::path dir = kRoot / "ok" / GetParam();
  bool want_plan = fs::exists(dir / "plan.json");
  Outcome o = RunCase(dir, want_plan);
  ASSERT_FALSE(o.error) << o.error->ToString();
  if (Update()) {
    Write(dir / "parse.json", o.parse_json);
    if (want_plan) Write(dir / "plan.json", o.plan_json);
    return;
  }
  EXPECT_EQ(o.parse_json, Slurp(dir / "parse.json"));
  if (want_plan) EXPECT_EQ(o.plan_json, Slurp(dir / "plan.json"));
}

TEST_P(GoldenBad, FailsWithExactError) {
  fs::path dir = kRoot / "bad" / GetParam();
  Outcome o = RunCase(dir, true);
  ASSERT_TRUE(o.error) << "expected an error";
  if (Update()) {
    Write(dir / "error.txt", o.error->ToString() + "\n");
    return;
  }
  EXPECT_EQ(o.error->ToString() + "\n", Slurp(dir / "error.txt"));
  EXPECT_TRUE(o.error->where.has_value() || o.error->code == "dockerfile.limit.size" ||
              o.error->code == "dockerfile.target");
}

std::string Name(const testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Dockerfile, GoldenOk, testing::ValuesIn(Cases("ok")), Name);
INSTANTIATE_TEST_SUITE_P(Dockerfile, GoldenBad, testing::ValuesIn(Cases("bad")), Name);

}  // namespace
}  // namespace manifold::dockerfile
