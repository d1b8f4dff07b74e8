#include "coordinator/plan/plan.h"

#include <gtest/gtest.h>

#include "common/dockerfile/parser.h"

namespace manifold::plan {
namespace {

struct Planned {
  std::optional<Error> error;
  Plan plan;
};

Planned PlanText(std::string_view text, const std::string& platforms = "linux/amd64,linux/arm64",
            std::map<std::string, std::string> args = {}, const std::string& target = "") {
  Planned out;
  auto tree = dockerfile::Parse(text, "Dockerfile");
  if (!tree.ok()) {
    out.error = tree.error();
    return out;
  }
  auto df = dockerfile::ParseInstructions(*tree);
  if (!df.ok()) {
    out.error = df.error();
    return out;
  }
  PlanOptions opts;
  opts.build_platform = *oci::ParsePlatform("linux/amd64");
  opts.platforms = *oci::ParsePlatformList(platforms);
  opts.build_args = std::move(args);
  opts.target = target;
  auto p = MakePlan(*df, tree->escape, opts);
  if (!p.ok()) out.error = p.error();
  else out.plan = std::move(*p);
  return out;
}

const Job* Find(const Plan& p, const std::string& id) {
  for (const auto& j : p.jobs)
    if (j.id == id) return &j;
  return nullptr;
}

TEST(PlanTest, OneJobPerStageAndPlatformWithEdges) {
  auto r = PlanText(
      "FROM busybox AS gen\nRUN make\n"
      "FROM busybox AS hash\nCOPY --from=gen /a /a\n"
      "FROM busybox AS pack\nRUN --mount=type=bind,from=gen,target=/g cat /g/x\n"
      "FROM hash AS final\nCOPY --from=2 /b /b\n");
  ASSERT_FALSE(r.error) << r.error->ToString();
  ASSERT_EQ(r.plan.jobs.size(), 8u);
  const Job* f = Find(r.plan, "final-linux-arm64");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->base_job, "hash-linux-arm64");
  EXPECT_EQ(f->depends_on, (std::vector<std::string>{"hash-linux-arm64", "pack-linux-arm64"}));
  const Job* pack = Find(r.plan, "pack-linux-amd64");
  ASSERT_NE(pack, nullptr);
  EXPECT_EQ(pack->depends_on, (std::vector<std::string>{"gen-linux-amd64"}));
  EXPECT_EQ(pack->base, "busybox");
  // Dependencies come before dependents.
  std::map<std::string, size_t> pos;
  for (size_t i = 0; i < r.plan.jobs.size(); ++i) pos[r.plan.jobs[i].id] = i;
  for (const auto& j : r.plan.jobs)
    for (const auto& d : j.depends_on) EXPECT_LT(pos.at(d), pos.at(j.id)) << j.id << " after " << d;
}

TEST(PlanTest, TargetPrunesUnneededStages) {
  auto r = PlanText("FROM a AS one\nFROM b AS two\nFROM c AS three\nCOPY --from=one /x /x\n", "linux/amd64",
               {}, "three");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.plan.jobs.size(), 2u);
  EXPECT_EQ(r.plan.jobs[0].id, "one-linux-amd64");
  EXPECT_EQ(r.plan.jobs[1].id, "three-linux-amd64");
  auto bad = PlanText("FROM a AS one\n", "linux/amd64", {}, "nope");
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->message, "target stage \"nope\" could not be found");
}

TEST(PlanTest, BuildPlatformStagesRunOnTheBuildPlatform) {
  auto r = PlanText(
      "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETARCH\nRUN echo $TARGETARCH\n"
      "FROM busybox\nCOPY --from=build /out /out\n");
  ASSERT_FALSE(r.error);
  const Job* b = Find(r.plan, "build-linux-arm64");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->platform.ToString(), "linux/amd64");
  EXPECT_EQ(b->target_platform.ToString(), "linux/arm64");
  EXPECT_EQ(b->args.at("TARGETARCH"), "arm64");
}

TEST(PlanTest, ArgScoping) {
  auto r = PlanText(
      "ARG VERSION=1.0\nARG BASE=busybox\nFROM $BASE:$VERSION\n"
      "RUN echo $VERSION\nARG VERSION\nWORKDIR /v$VERSION\nENV A=$TARGETARCH\nARG TARGETARCH\n"
      "ENV B=$TARGETARCH C=${MISSING:-dflt}\n",
      "linux/arm64", {{"BASE", "alpine"}, {"UNUSED", "1"}, {"HTTP_PROXY", "http://p"}});
  ASSERT_FALSE(r.error) << r.error->ToString();
  const Job& j = r.plan.jobs[0];
  EXPECT_EQ(j.base, "alpine:1.0");
  EXPECT_EQ(j.instructions[0].args[0], "echo $VERSION");  // RUN is never expanded
  EXPECT_EQ(j.instructions[2].args[0], "/v1.0");          // redeclared global ARG
  EXPECT_EQ(j.instructions[3].kvs[0].value, "");          // TARGETARCH not yet declared
  EXPECT_EQ(j.instructions[5].kvs[0].value, "arm64");
  EXPECT_EQ(j.instructions[5].kvs[1].value, "dflt");
  EXPECT_EQ(r.plan.warnings, (std::vector<std::string>{"one or more build-args [UNUSED] were not consumed"}));
}

TEST(PlanTest, EnvOverridesArgAndIsInherited) {
  auto r = PlanText("FROM a AS base\nARG X=arg\nENV X=env\nWORKDIR /$X\nFROM base\nLABEL x=$X\n", "linux/amd64",
               {{"X", "cli"}});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.plan.jobs[0].instructions[2].args[0], "/env");
  EXPECT_EQ(r.plan.jobs[1].instructions[0].kvs[0].value, "env");
}

TEST(PlanTest, CopyAndMountValuesAreExpanded) {
  auto r = PlanText(
      "FROM a AS src\nFROM b\nARG S=src D=/dst M=0644 T=/cache\nCOPY --from=$S --chmod=$M file$D $D/\n"
      "RUN --mount=type=cache,target=$T,id=$S echo\n",
      "linux/amd64");
  ASSERT_FALSE(r.error) << r.error->ToString();
  const Job& j = r.plan.jobs.back();
  const auto& copy = j.instructions[1];
  EXPECT_EQ(copy.from, "src");
  EXPECT_EQ(copy.chmod, "0644");
  EXPECT_EQ(copy.args[0], "file/dst");
  EXPECT_EQ(copy.dest, "/dst/");
  EXPECT_EQ(j.instructions[2].mounts[0], "type=cache,target=/cache,id=src");
  EXPECT_EQ(j.depends_on, (std::vector<std::string>{"src-linux-amd64"}));
}

TEST(PlanTest, CyclesAndBadIndexes) {
  auto c = PlanText("FROM b AS a\nFROM a AS b\n", "linux/amd64");
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, "dockerfile.stage.cycle");
  auto c2 = PlanText("FROM x AS a\nCOPY --from=b /x /x\nFROM x AS b\nCOPY --from=a /y /y\n", "linux/amd64");
  ASSERT_TRUE(c2.error);
  EXPECT_EQ(c2.error->message, "Dockerfile:3: circular dependency detected on stage: b");
  auto self = PlanText("FROM x AS a\nCOPY --from=a /x /y\n", "linux/amd64");
  ASSERT_TRUE(self.error);
  EXPECT_EQ(self.error->code, "dockerfile.stage.cycle");
  auto idx = PlanText("FROM x\nCOPY --from=5 /x /y\n", "linux/amd64");
  ASSERT_TRUE(idx.error);
  EXPECT_EQ(idx.error->message, "Dockerfile:2: invalid stage index 5");
}

TEST(PlanTest, WorkdirInProcIsRefused) {
  for (const char* df : {"FROM a\nWORKDIR /proc/self/fd/7\n", "FROM a\nWORKDIR /proc\nWORKDIR 1/cwd\n",
                         "FROM a\nARG P=/proc/1/cwd\nWORKDIR $P\n", "FROM a\nWORKDIR /x/../proc/self\n"}) {
    auto r = PlanText(df, "linux/amd64");
    ASSERT_TRUE(r.error) << df;
    EXPECT_EQ(r.error->kind, ErrorKind::kSecurity);
    EXPECT_EQ(r.error->code, "dockerfile.workdir.proc");
  }
  EXPECT_FALSE(PlanText("FROM a\nWORKDIR /procs\n", "linux/amd64").error);
}

TEST(PlanTest, ExpansionLimit) {
  std::string df = "FROM a\nARG A=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
  char prev = 'A';
  for (char c = 'B'; c <= 'Z'; ++c) {
    df += std::string("ARG ") + c + "=$" + prev + "$" + prev + "$" + prev + "$" + prev + "\n";
    prev = c;
  }
  auto r = PlanText(df, "linux/amd64");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error->code, "dockerfile.expansion.too_large");
  ASSERT_TRUE(r.error->where);
}

TEST(PlanTest, ValuesCheckedAfterExpansion) {
  auto r = PlanText("FROM a\nARG P=eighty\nEXPOSE $P\n", "linux/amd64");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->message, "Dockerfile:3: invalid containerPort: eighty");
  auto s = PlanText("FROM a\nSTOPSIGNAL SIGBOGUS\n", "linux/amd64");
  ASSERT_TRUE(s.error);
  EXPECT_EQ(s.error->message, "Dockerfile:2: invalid signal: SIGBOGUS");
  auto m = PlanText("FROM a\nCOPY --chmod=999 a b\n", "linux/amd64");
  ASSERT_TRUE(m.error);
  EXPECT_EQ(m.error->message, "Dockerfile:2: invalid chmod parameter: 999");
  EXPECT_FALSE(PlanText("FROM a\nEXPOSE 80/tcp 8000-8010/udp\nSTOPSIGNAL 9\nCOPY --chmod=u+x a b\n", "linux/amd64").error);
  auto p = PlanText("FROM --platform=../x a\n", "linux/amd64");
  ASSERT_TRUE(p.error);
  EXPECT_EQ(p.error->code, "platform.invalid");
}

TEST(PlanTest, JsonShape) {
  auto r = PlanText("FROM busybox AS b\nRUN --network=none echo hi\n", "linux/arm64");
  ASSERT_FALSE(r.error);
  EXPECT_EQ(PlanToJson(r.plan),
            "{\n"
            "  \"target\": \"b\",\n"
            "  \"jobs\": [\n"
            "    {\n"
            "      \"id\": \"b-linux-arm64\",\n"
            "      \"stage\": \"b\",\n"
            "      \"platform\": \"linux/arm64\",\n"
            "      \"target_platform\": \"linux/arm64\",\n"
            "      \"base\": \"busybox\",\n"
            "      \"depends_on\": [],\n"
            "      \"instructions\": [\n"
            "        {\n"
            "          \"cmd\": \"run\",\n"
            "          \"line\": 2,\n"
            "          \"flags\": [\n"
            "            \"--network=none\"\n"
            "          ],\n"
            "          \"args\": [\n"
            "            \"echo hi\"\n"
            "          ],\n"
            "          \"shell_form\": true\n"
            "        }\n"
            "      ]\n"
            "    }\n"
            "  ],\n"
            "  \"warnings\": []\n"
            "}\n");
}

}  // namespace
}  // namespace manifold::plan
