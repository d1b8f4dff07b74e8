#include "common/wire/stage_job.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/dockerfile/parser.h"
#include "coordinator/plan/job_message.h"
#include "coordinator/plan/plan.h"
#include "schemas/scheduler.capnp.h"

namespace manifold::wire {
namespace {

const std::string kKey1 = "sha256:" + std::string(64, 'a');
const std::string kKey2 = "sha256:" + std::string(64, 'b');

void ExpectSame(const dockerfile::Instruction& a, const dockerfile::Instruction& b,
                const std::string& at) {
  SCOPED_TRACE(at);
  EXPECT_EQ(a.cmd, b.cmd);
  EXPECT_EQ(a.line, b.line);
  EXPECT_EQ(a.end_line, b.end_line);
  EXPECT_EQ(a.original, b.original);
  EXPECT_EQ(a.args, b.args);
  EXPECT_EQ(a.prepend_shell, b.prepend_shell);
  ASSERT_EQ(a.files.size(), b.files.size());
  for (size_t i = 0; i < a.files.size(); ++i) {
    EXPECT_EQ(a.files[i].name, b.files[i].name);
    EXPECT_EQ(a.files[i].content, b.files[i].content);
    EXPECT_EQ(a.files[i].expand, b.files[i].expand);
    EXPECT_EQ(a.files[i].chomp, b.files[i].chomp);
    EXPECT_EQ(a.files[i].fd, b.files[i].fd);
  }
  ASSERT_EQ(a.kvs.size(), b.kvs.size());
  for (size_t i = 0; i < a.kvs.size(); ++i) {
    EXPECT_EQ(a.kvs[i].key, b.kvs[i].key);
    EXPECT_EQ(a.kvs[i].value, b.kvs[i].value);
    EXPECT_EQ(a.kvs[i].legacy, b.kvs[i].legacy);
  }
  ASSERT_EQ(a.arg_decls.size(), b.arg_decls.size());
  for (size_t i = 0; i < a.arg_decls.size(); ++i) {
    EXPECT_EQ(a.arg_decls[i].name, b.arg_decls[i].name);
    EXPECT_EQ(a.arg_decls[i].value, b.arg_decls[i].value);
  }
  EXPECT_EQ(a.base, b.base);
  EXPECT_EQ(a.stage_name, b.stage_name);
  EXPECT_EQ(a.platform, b.platform);
  EXPECT_EQ(a.mounts, b.mounts);
  EXPECT_EQ(a.network, b.network);
  EXPECT_EQ(a.security, b.security);
  ASSERT_EQ(a.heredoc_sources.size(), b.heredoc_sources.size());
  for (size_t i = 0; i < a.heredoc_sources.size(); ++i) {
    EXPECT_EQ(a.heredoc_sources[i].name, b.heredoc_sources[i].name);
    EXPECT_EQ(a.heredoc_sources[i].data, b.heredoc_sources[i].data);
    EXPECT_EQ(a.heredoc_sources[i].expand, b.heredoc_sources[i].expand);
  }
  EXPECT_EQ(a.dest, b.dest);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.chown, b.chown);
  EXPECT_EQ(a.chmod, b.chmod);
  EXPECT_EQ(a.checksum, b.checksum);
  EXPECT_EQ(a.link, b.link);
  EXPECT_EQ(a.parents, b.parents);
  EXPECT_EQ(a.keep_git_dir, b.keep_git_dir);
  EXPECT_EQ(a.excludes, b.excludes);
  EXPECT_EQ(a.health_test, b.health_test);
  EXPECT_EQ(a.interval_ns, b.interval_ns);
  EXPECT_EQ(a.timeout_ns, b.timeout_ns);
  EXPECT_EQ(a.start_period_ns, b.start_period_ns);
  EXPECT_EQ(a.start_interval_ns, b.start_interval_ns);
  EXPECT_EQ(a.retries, b.retries);
  EXPECT_EQ(a.onbuild_expression, b.onbuild_expression);
  ASSERT_EQ(a.sub == nullptr, b.sub == nullptr);
  if (a.sub) ExpectSame(*a.sub, *b.sub, at + ".sub");
}

void ExpectSame(const StageJobData& a, const StageJobData& b) {
  SCOPED_TRACE(a.job_id);
  EXPECT_EQ(a.build_id, b.build_id);
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.stage_index, b.stage_index);
  EXPECT_EQ(a.stage, b.stage);
  EXPECT_EQ(a.platform, b.platform);
  EXPECT_EQ(a.target_platform, b.target_platform);
  EXPECT_EQ(a.base, b.base);
  EXPECT_EQ(a.base_job, b.base_job);
  EXPECT_EQ(a.base_manifest_digest, b.base_manifest_digest);
  EXPECT_EQ(a.depends_on, b.depends_on);
  EXPECT_EQ(a.args, b.args);
  EXPECT_EQ(a.env, b.env);
  EXPECT_EQ(a.lease_epoch, b.lease_epoch);
  EXPECT_EQ(a.cache_keys, b.cache_keys);
  ASSERT_EQ(a.instructions.size(), b.instructions.size());
  for (size_t i = 0; i < a.instructions.size(); ++i)
    ExpectSame(a.instructions[i], b.instructions[i], "instruction " + std::to_string(i));
}

StageJobData RoundTrip(const StageJobData& in) {
  auto bytes = EncodeStageJob(in);
  EXPECT_TRUE(bytes.ok()) << bytes.error().ToString();
  if (!bytes.ok()) return {};
  auto out = DecodeStageJob(*bytes);
  EXPECT_TRUE(out.ok()) << out.error().ToString();
  if (!out.ok()) return {};
  return std::move(out).value();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(StageJobTest, RoundTripsEveryJobOfBusyboxMultistageForArm64) {
  const std::string text = ReadFile("examples/busybox-multistage/Dockerfile");
  ASSERT_FALSE(text.empty()) << "run from the source root";
  auto tree = dockerfile::Parse(text, "Dockerfile");
  ASSERT_TRUE(tree.ok()) << tree.error().ToString();
  auto df = dockerfile::ParseInstructions(*tree);
  ASSERT_TRUE(df.ok()) << df.error().ToString();
  plan::PlanOptions opts;
  opts.build_platform = *oci::ParsePlatform("linux/amd64");
  opts.platforms = {*oci::ParsePlatform("linux/arm64")};
  auto p = plan::MakePlan(*df, tree->escape, opts);
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  ASSERT_EQ(p->jobs.size(), 5u);

  bool saw_mount = false, saw_stage_base = false;
  for (const auto& job : p->jobs) {
    std::vector<std::string> keys(job.instructions.size());
    if (!keys.empty()) keys[0] = kKey1;
    auto in = plan::MakeStageJobData("build-1", job, 3, keys);
    auto out = RoundTrip(in);
    ExpectSame(in, out);
    EXPECT_EQ(out.target_platform.ToString(), "linux/arm64");
    for (const auto& ins : out.instructions) saw_mount = saw_mount || !ins.mounts.empty();
    saw_stage_base = saw_stage_base || !out.base_job.empty();
  }
  EXPECT_TRUE(saw_mount);
  EXPECT_FALSE(saw_stage_base);  // every stage is FROM busybox:latest
}

dockerfile::Instruction RichInstruction() {
  dockerfile::Instruction in;
  in.cmd = dockerfile::Cmd::kRun;
  in.line = 7;
  in.end_line = 12;
  in.original = "RUN --mount=type=cache,target=/c <<EOF\n...";
  in.args = {"cat <<EOF", "-c"};
  in.prepend_shell = true;
  in.files = {{"EOF", std::string("echo hi\n\tx\n\0bin\n", 17), false, true, 3},
              {"E2", "", true, false, 0}};
  in.kvs = {{"A", "1", false}, {"B", "two words", true}};
  in.arg_decls = {{"X", std::nullopt}, {"Y", std::string("\"q\"")}, {"Z", std::string()}};
  in.base = "alpine:3.19";
  in.stage_name = "build";
  in.platform = "$BUILDPLATFORM";
  in.mounts = {"type=cache,target=/c", "type=secret,id=s"};
  in.network = "none";
  in.security = "insecure";
  in.heredoc_sources = {{"conf", "k=v\n", true}, {"raw", "$X\n", false}};
  in.dest = "/etc/";
  in.from = "gen";
  in.chown = "1:1";
  in.chmod = "0755";
  in.checksum = "sha256:" + std::string(64, 'c');
  in.link = true;
  in.parents = true;
  in.keep_git_dir = true;
  in.excludes = {"*.md", "tmp/"};
  in.health_test = {"CMD-SHELL", "curl -f localhost"};
  in.interval_ns = 30'000'000'000;
  in.timeout_ns = -1;
  in.start_period_ns = 5;
  in.start_interval_ns = 6;
  in.retries = 4;
  return in;
}

TEST(StageJobTest, RoundTripsEveryInstructionFieldIncludingOnbuild) {
  StageJobData job;
  job.build_id = "b_1";
  job.job_id = "final-linux-arm-v7";
  job.stage_index = 4;
  job.stage = "final";
  job.platform = *oci::ParsePlatform("linux/amd64");
  job.target_platform = *oci::ParsePlatform("linux/arm/v7");
  job.base_job = "report-linux-arm-v7";
  job.depends_on = {"report-linux-arm-v7", "gen-linux-arm-v7"};
  job.args = {{"TARGETARCH", "arm"}, {"EMPTY", ""}};
  job.env = {{"Z", "1"}, {"A", "2"}, {"Z", "3"}};
  job.lease_epoch = ~0ull;
  job.instructions.push_back(RichInstruction());
  dockerfile::Instruction onbuild;
  onbuild.cmd = dockerfile::Cmd::kOnbuild;
  onbuild.line = 20;
  onbuild.onbuild_expression = "COPY . /app";
  auto sub = RichInstruction();
  sub.cmd = dockerfile::Cmd::kCopy;
  onbuild.sub = std::make_shared<const dockerfile::Instruction>(sub);
  job.instructions.push_back(onbuild);
  job.cache_keys = {"", kKey2};
  ExpectSame(job, RoundTrip(job));

  // Image base with a resolved digest, and scratch.
  job.base_job.clear();
  job.base = "docker.io/library/busybox:latest";
  job.base_manifest_digest = kKey1;
  job.cache_keys.clear();
  ExpectSame(job, RoundTrip(job));
  job.base = "scratch";
  job.base_manifest_digest.clear();
  ExpectSame(job, RoundTrip(job));
}

// A StageJob written directly, as a peer (or an attacker) could.
std::string RawJob(const std::string& job_id, const std::string& target_arch,
                   unsigned instructions = 1, size_t arg_bytes = 4) {
  OutgoingMessage<schema::StageJob> out;
  auto b = out.Body();
  b.setBuildId("b1");
  b.setJobId(job_id);
  b.setStage("gen");
  auto p = b.initPlatform();
  p.setOs("linux");
  p.setArchitecture("arm64");
  auto t = b.initTargetPlatform();
  t.setOs("linux");
  t.setArchitecture(target_arch);
  b.initBase().setScratch();
  auto list = b.initInstructions(instructions);
  for (unsigned i = 0; i < instructions; ++i) {
    list[i].setIndex(i);
    list[i].setCommand("RUN");
    list[i].initArgs(1).set(0, std::string(arg_bytes, 'x'));
  }
  return out.Encode();
}

TEST(StageJobTest, RawValidJobDecodes) {
  auto job = DecodeStageJob(RawJob("gen-linux-arm64", "arm64"));
  ASSERT_TRUE(job.ok()) << job.error().ToString();
  EXPECT_EQ(job->base, "scratch");
  EXPECT_EQ(job->instructions.at(0).args.at(0), "xxxx");
}

TEST(StageJobTest, RefusesTraversalJobId) {
  auto decoded = DecodeStageJob(RawJob("../x", "arm64"));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(decoded.error().code, "wire.id");
  EXPECT_NE(decoded.error().message.find("StageJob.jobId"), std::string::npos);

  StageJobData job;
  job.build_id = "b";
  job.job_id = "../x";
  job.stage = "s";
  job.platform = job.target_platform = *oci::ParsePlatform("linux/arm64");
  job.base = "scratch";
  auto encoded = EncodeStageJob(job);
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.error().kind, ErrorKind::kSecurity);

  job.job_id = "ok";
  job.base.clear();
  job.base_job = "a/b";
  encoded = EncodeStageJob(job);
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.error().kind, ErrorKind::kSecurity);
}

TEST(StageJobTest, RefusesBadPlatformNamingTheField) {
  auto decoded = DecodeStageJob(RawJob("j", ".."));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.platform");
  EXPECT_NE(decoded.error().message.find("StageJob.targetPlatform"), std::string::npos)
      << decoded.error().message;

  decoded = DecodeStageJob(RawJob("j", ""));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("StageJob.targetPlatform"), std::string::npos);

  StageJobData job;
  job.build_id = "b";
  job.job_id = "j";
  job.stage = "s";
  job.platform = {"linux", "../evil", ""};
  job.target_platform = *oci::ParsePlatform("linux/arm64");
  job.base = "scratch";
  auto encoded = EncodeStageJob(job);
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_NE(encoded.error().message.find("StageJob.platform"), std::string::npos);
}

TEST(StageJobTest, RefusesOverLimitMessages) {
  // Too many instructions.
  auto decoded = DecodeStageJob(RawJob("j", "arm64", kMaxJobInstructions + 1, 0));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.limit");
  EXPECT_NE(decoded.error().message.find("StageJob.instructions"), std::string::npos);

  // One text field over 1 MiB.
  decoded = DecodeStageJob(RawJob("j", "arm64", 1, kMaxTextBytes + 1));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, "wire.limit");
  EXPECT_NE(decoded.error().message.find("StageJob.instructions[0].args[0]"), std::string::npos)
      << decoded.error().message;

  // The codec's own limits: bytes and traversal.
  DecodeLimits small;
  small.max_message_bytes = 1024;
  decoded = DecodeStageJob(RawJob("j", "arm64", 1, 4096), small);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, "wire.too_large");
  DecodeLimits shallow;
  shallow.traversal_limit_words = 64;
  decoded = DecodeStageJob(RawJob("j", "arm64", 50, 64), shallow);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, "wire.limit");

  // Encode refuses what decode would.
  StageJobData job;
  job.build_id = "b";
  job.job_id = "j";
  job.stage = "s";
  job.platform = job.target_platform = *oci::ParsePlatform("linux/arm64");
  job.base = "scratch";
  job.instructions.resize(kMaxJobInstructions + 1);
  auto encoded = EncodeStageJob(job);
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.error().code, "wire.limit");
}

TEST(StageJobTest, RefusesAStageResultBodyAsAStageJob) {
  StageResultData r;
  r.job_id = "j";
  r.config_digest = kKey1;
  auto bytes = EncodeStageResult(r);
  ASSERT_TRUE(bytes.ok());
  auto decoded = DecodeStageJob(*bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, "wire.unexpected_type");
}

TEST(StageResultTest, RoundTripsLayersStepsAndError) {
  StageResultData r;
  r.job_id = "report-linux-arm64";
  r.lease_epoch = 9;
  LayerData l{"application/vnd.oci.image.layer.v1.tar+gzip", kKey1, kKey2, 1234};
  r.layers = {l, l};
  r.steps = {{0, kKey1, true, l, 17}, {1, "", false, std::nullopt, 0}};
  r.config_digest = kKey2;
  Error e = MakeError(ErrorKind::kResourceExhausted, "cas.disk_full", "no space left");
  e.context = {"applying layer", "step 2"};
  e.where = SourceRange{"Dockerfile", 3, 4, 5};
  e.detail = "RUN x\n    ^";
  r.error = e;

  auto bytes = EncodeStageResult(r);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeStageResult(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->job_id, r.job_id);
  EXPECT_EQ(out->lease_epoch, 9u);
  ASSERT_EQ(out->layers.size(), 2u);
  EXPECT_EQ(out->layers[1].media_type, l.media_type);
  EXPECT_EQ(out->layers[1].digest, kKey1);
  EXPECT_EQ(out->layers[1].diff_id, kKey2);
  EXPECT_EQ(out->layers[1].size, 1234u);
  ASSERT_EQ(out->steps.size(), 2u);
  EXPECT_EQ(out->steps[0].cache_key, kKey1);
  EXPECT_TRUE(out->steps[0].cached);
  ASSERT_TRUE(out->steps[0].layer.has_value());
  EXPECT_EQ(out->steps[0].layer->diff_id, kKey2);
  EXPECT_EQ(out->steps[0].duration_ms, 17u);
  EXPECT_FALSE(out->steps[1].layer.has_value());
  EXPECT_EQ(out->steps[1].cache_key, "");
  EXPECT_EQ(out->config_digest, kKey2);
  ASSERT_TRUE(out->error.has_value());
  EXPECT_EQ(out->error->kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(out->error->code, "cas.disk_full");
  EXPECT_EQ(out->error->message, "no space left");
  EXPECT_EQ(out->error->context, e.context);
  ASSERT_TRUE(out->error->where.has_value());
  EXPECT_EQ(out->error->where->file, "Dockerfile");
  EXPECT_EQ(out->error->where->line, 3);
  EXPECT_EQ(out->error->where->column, 4);
  EXPECT_EQ(out->error->where->end_line, 5);
  EXPECT_EQ(out->error->detail, e.detail);

  // Every kind survives the trip.
  for (ErrorKind k : {ErrorKind::kInvalidInput, ErrorKind::kIntegrity, ErrorKind::kSecurity,
                      ErrorKind::kTransient, ErrorKind::kDisconnected,
                      ErrorKind::kResourceExhausted, ErrorKind::kUnimplemented,
                      ErrorKind::kInternal}) {
    StageResultData failed;
    failed.job_id = "j";
    failed.error = MakeError(k, "x", "y");
    auto b = EncodeStageResult(failed);
    ASSERT_TRUE(b.ok()) << b.error().ToString();
    auto d = DecodeStageResult(*b);
    ASSERT_TRUE(d.ok()) << d.error().ToString();
    ASSERT_TRUE(d->error.has_value());
    EXPECT_EQ(d->error->kind, k);
    EXPECT_TRUE(d->config_digest.empty());
    EXPECT_FALSE(d->error->where.has_value());
  }
}

TEST(StageResultTest, RefusesBadIdsAndDigests) {
  OutgoingMessage<schema::StageResult> out;
  out.Body().setJobId("../x");
  auto d = DecodeStageResult(out.Encode());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kSecurity);

  OutgoingMessage<schema::StageResult> bad_digest;
  bad_digest.Body().setJobId("j");
  auto digest = bad_digest.Body().initConfigDigest();
  digest.setAlgorithm("sha256");
  digest.setEncoded("../../etc/passwd");
  d = DecodeStageResult(bad_digest.Encode());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kInvalidInput);
  EXPECT_NE(d.error().message.find("StageResult.configDigest"), std::string::npos);

  OutgoingMessage<schema::StageResult> no_config;  // success without a config
  no_config.Body().setJobId("j");
  d = DecodeStageResult(no_config.Encode());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace manifold::wire
