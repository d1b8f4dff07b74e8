// The stage executor with a recording runtime (no containers) over a real
// content store, snapshotter and step cache: what reaches the runtime, what
// is refused before it, and what the cache answers.
#include "worker/build/stage_executor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/dockerfile/instruction.h"
#include "common/dockerfile/parser.h"
#include "worker/build/run_mounts.h"
#include "worker/executor/testing/fake_runtime.h"

namespace manifold::worker {
namespace {

namespace stdfs = std::filesystem;

std::vector<dockerfile::Instruction> Parse(const std::string& body) {
  std::string text = "FROM scratch\n" + body;
  auto tree = dockerfile::Parse(text, "Dockerfile", {});
  EXPECT_TRUE(tree.ok()) << tree.error().ToString();
  auto df = dockerfile::ParseInstructions(*tree);
  EXPECT_TRUE(df.ok()) << df.error().ToString();
  return df->stages[0].instructions;
}

class StageExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("mf-stage-exec-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_ / "worker");
    stdfs::create_directories(dir_ / "ctx");
    auto store = image::ImageStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_ = std::move(*store);
    auto snaps = Snapshotter::Open(dir_.string());
    ASSERT_TRUE(snaps.ok()) << snaps.error().ToString();
    snaps_.emplace(std::move(*snaps));
    auto cache = cache::StepCache::Open(dir_.string());
    ASSERT_TRUE(cache.ok());
    cache_.emplace(std::move(*cache));
    auto session = std::make_shared<BuildSession>();
    session->context_dir = (dir_ / "ctx").string();
    session->secrets["tok"] = "top-secret";
    sessions_.Put("b1", session);
    SetPolicy(false);
  }
  void TearDown() override {
    runtime_.reset();
    snaps_.reset();
    stdfs::remove_all(dir_);
  }

  void SetPolicy(bool worker_allows_insecure) {
    ExecutorPolicy p;
    p.allow_insecure = worker_allows_insecure;
    runtime_ = std::make_unique<FakeRuntime>(p);
    env_.store = store_.get();
    env_.snapshots = &*snaps_;
    env_.runtime = runtime_.get();
    env_.cache = &*cache_;
    env_.sessions = &sessions_;
    env_.policy = p;
    env_.state_dir = (dir_ / "worker").string();
  }

  wire::StageJobData Job(const std::string& body, std::vector<std::string> keys = {}) {
    wire::StageJobData j;
    j.build_id = "b1";
    j.job_id = "stage-0-linux-amd64";
    j.stage = "stage-0";
    j.platform = {"linux", "amd64", ""};
    j.target_platform = j.platform;
    j.base = "scratch";
    j.instructions = Parse(body);
    j.cache_keys = std::move(keys);
    return j;
  }

  Expected<wire::StageResultData> Run(const wire::StageJobData& j) {
    return ExecuteStage(j, env_, [this](const wire::ProgressData& p) { progress_.push_back(p); });
  }

  stdfs::path dir_;
  std::unique_ptr<image::ImageStore> store_;
  std::optional<Snapshotter> snaps_;
  std::optional<cache::StepCache> cache_;
  SessionRegistry sessions_;
  std::unique_ptr<FakeRuntime> runtime_;
  WorkerEnv env_;
  std::vector<wire::ProgressData> progress_;
};

TEST_F(StageExecutorTest, InsecureWithoutTheBuildsEntitlementNeverReachesTheRuntime) {
  SetPolicy(true);
  auto job = Job("RUN --security=insecure true\n");
  job.options.allow_insecure = false;
  auto r = Run(job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "step.entitlement");
  EXPECT_EQ(r.error().where->line, 2);
  EXPECT_TRUE(runtime_->runs().empty());
}

TEST_F(StageExecutorTest, InsecureRefusedByAWorkerThatDoesNotPermitIt) {
  SetPolicy(false);
  auto job = Job("RUN --security=insecure true\n");
  job.options.allow_insecure = true;
  auto r = Run(job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "step.entitlement");
  EXPECT_TRUE(runtime_->runs().empty());
}

TEST_F(StageExecutorTest, InsecureGrantedGetsEveryCapability) {
  SetPolicy(true);
  auto job = Job("RUN --security=insecure true\n");
  job.options.allow_insecure = true;
  auto r = Run(job);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(runtime_->runs().size(), 1u);
  EXPECT_EQ(runtime_->runs()[0].spec["process"]["capabilities"]["bounding"].size(),
            AllCapabilities().size());
}

TEST_F(StageExecutorTest, WorkdirInProcForcedOverTheWireIsRefusedBeforeAnythingIsCreated) {
  auto job = Job("WORKDIR /app\nRUN true\n");
  job.instructions[0].args = {"/proc/self/fd/7"};  // what the planner would have refused
  auto r = Run(job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "executor.cwd.proc");
  EXPECT_TRUE(runtime_->runs().empty());
}

TEST_F(StageExecutorTest, SecretsReachTheStepOnlyAsAMountOrTheEnvItAskedFor) {
  auto job = Job("RUN --mount=type=secret,id=tok --mount=type=secret,id=tok,env=TOKEN true\n");
  auto r = Run(job);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(runtime_->runs().size(), 1u);
  const auto& spec = runtime_->runs()[0].spec;
  bool mounted = false;
  for (const auto& m : spec["mounts"])
    if (m["destination"] == "/run/secrets/tok") {
      mounted = true;
      std::string src = m["source"];
      EXPECT_EQ(src.rfind((dir_ / "worker/steps").string(), 0), 0u) << src;
      EXPECT_FALSE(stdfs::exists(src)) << "secret file left behind: " << src;
    }
  EXPECT_TRUE(mounted) << spec["mounts"].dump();
  EXPECT_NE(std::find(spec["process"]["env"].begin(), spec["process"]["env"].end(), "TOKEN=top-secret"),
            spec["process"]["env"].end());
  // Nothing about the secret in the image config or the progress stream.
  auto config = store_->blobs().ReadAll(r->config_digest);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->find("top-secret"), std::string::npos);
  for (const auto& p : progress_) EXPECT_EQ(p.text.find("top-secret"), std::string::npos);
}

TEST_F(StageExecutorTest, HeredocsBecomeAScriptOrShellInput) {
  auto job = Job(
      "RUN <<EOF\necho one\nEOF\n"
      "RUN <<EOF cat > /x\nline\nEOF\n"
      "RUN [\"/bin/echo\", \"exec\"]\n");
  auto r = Run(job);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(runtime_->runs().size(), 3u);
  EXPECT_EQ(runtime_->runs()[0].request.spec.args,
            (std::vector<std::string>{"/bin/sh", "-c", "/dev/pipes/EOF"}));
  EXPECT_EQ(runtime_->runs()[1].request.spec.args,
            (std::vector<std::string>{"/bin/sh", "-c", "<<EOF cat > /x\nline\nEOF"}));
  EXPECT_EQ(runtime_->runs()[2].request.spec.args, (std::vector<std::string>{"/bin/echo", "exec"}));
}

TEST_F(StageExecutorTest, ARunExitingNonZeroIsAStepFailureWithItsOutput) {
  runtime_->FailOnCommand("false", 1, "some output\n");
  auto r = Run(Job("ENV A=1\nRUN false\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "step.run.failed");
  EXPECT_EQ(r.error().message,
            "process \"/bin/sh -c false\" did not complete successfully: exit code: 1");
  EXPECT_EQ(r.error().detail, "output (last bytes):\nsome output\n");
  EXPECT_EQ(r.error().where->line, 3);
}

TEST_F(StageExecutorTest, PlannedKeysAreRecordedAndAnswerTheNextRun) {
  std::vector<std::string> keys = {"sha256:" + std::string(64, '1'), "sha256:" + std::string(64, '2')};
  auto job = Job("RUN echo hi\nENV A=b\n", keys);
  auto first = Run(job);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(runtime_->runs().size(), 1u);
  EXPECT_FALSE(first->steps[0].cached);
  ASSERT_TRUE(first->steps[0].layer.has_value());
  EXPECT_FALSE(first->steps[1].layer.has_value());
  auto second = Run(job);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(runtime_->runs().size(), 1u);  // nothing ran again
  EXPECT_TRUE(second->steps[0].cached);
  EXPECT_TRUE(second->steps[1].cached);
  EXPECT_EQ(second->config_digest, first->config_digest);
  EXPECT_EQ(second->layers.size(), 1u);
  // --no-cache executes again.
  job.options.no_cache = true;
  auto third = Run(job);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(runtime_->runs().size(), 2u);
}

TEST_F(StageExecutorTest, CacheIdsNeverNameHostPaths) {
  auto r = Run(Job("RUN --mount=type=cache,id=../../../../escape,target=/c true\n"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(stdfs::exists(dir_ / "escape"));
  EXPECT_FALSE(stdfs::exists(dir_.parent_path() / "escape"));
  const auto& spec = runtime_->runs()[0].spec;
  bool found = false;
  for (const auto& m : spec["mounts"]) {
    if (m["destination"] != "/c") continue;
    found = true;
    EXPECT_EQ(std::string(m["source"]), CacheMountDir(env_.state_dir, "../../../../escape"));
  }
  EXPECT_TRUE(found) << spec["mounts"].dump();
}

}  // namespace
}  // namespace manifold::worker
