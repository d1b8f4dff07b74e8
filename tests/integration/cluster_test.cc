// The farm end to end (issue 6): manifold-coordinator and manifold-worker as
// separate processes, each with its own state dir, on 127.0.0.1 (and in
// network namespaces, joining by beacon), driven by `manifold build
// --coordinator` and `manifold workers`. Checked through what a user sees:
// index digests against the embedded build, the trace, the workers list,
// each daemon's log, and what survives a worker killed mid-RUN.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/registry_fixture.h"
#include "tests/integration/tree_compare.h"

namespace manifold::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// A daemon we started: stopped by its PID, never by name.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Process() { Stop(); }
  pid_t pid() const { return pid_; }
  const std::string& log() const { return log_; }
  /// SIGTERM, then the exit status (or -1 after 60 s and a SIGKILL).
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, sig);
    auto deadline = Clock::now() + std::chrono::seconds(60);
    int st = 0;
    while (Clock::now() < deadline) {
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return -1;
  }
  bool Running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return true;
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_;
};

bool WaitFor(const std::function<bool()>& cond, std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

struct Result {
  int rc = 0;
  std::string out;
  int executed = -1;
  int cached = -1;
  std::string digest;
};

Result Parse(int rc, std::string out) {
  Result r;
  r.rc = rc;
  r.out = std::move(out);
  std::smatch m;
  static const std::regex kSummary("steps: ([0-9]+) executed, ([0-9]+) cached");
  if (std::regex_search(r.out, m, kSummary)) {
    r.executed = std::stoi(m[1]);
    r.cached = std::stoi(m[2]);
  }
  static const std::regex kDigest("(sha256:[0-9a-f]{64})\\s*$");
  if (std::regex_search(r.out, m, kDigest)) r.digest = m[1];
  return r;
}

constexpr const char* kEpoch = "1700000000";

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bases_ = new TempDir();
    for (const char* arch : {"amd64", "arm64"}) {
      std::string out;
      int rc = RunCommand("bash tests/testdata/busybox-rootfs.sh " + std::string(arch) + " " +
                              bases_->path() + "/busybox-" + arch,
                          &out);
      ASSERT_EQ(rc, 0) << out;
    }
  }
  static void TearDownTestSuite() {
    delete bases_;
    bases_ = nullptr;
  }

  void SetUp() override {
    setenv("SOURCE_DATE_EPOCH", kEpoch, 1);
    port_ = FreePort();
    address_ = "127.0.0.1:" + std::to_string(port_);
    coord_state_ = tmp_.path() + "/coordinator";
  }

  void TearDown() override {
    if (getenv("MF_KEEP_LOGS")) RunCommand("cp " + tmp_.path() + "/*.log /tmp/keep/ 2>/dev/null", &keep_);
    workers_.clear();  // SIGTERM: drain and exit
    coordinator_.reset();
    unsetenv("SOURCE_DATE_EPOCH");
    unsetenv("MANIFOLD_ROOT");
    // A worker killed with SIGKILL leaves its overlay mounted.
    std::string out;
    RunCommand("grep -o ' " + tmp_.path() + "[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l", &out);
  }

  std::string Manifold(const std::string& args, int want = 0, const std::string& root = "") {
    std::string out;
    std::string env = "MANIFOLD_ROOT=" + (root.empty() ? tmp_.path() + "/client" : root) + " ";
    int rc = RunCommand(env + MF_MANIFOLD_BIN + " " + args, &out);
    EXPECT_EQ(rc, want) << "manifold " << args << "\n" << out;
    return out;
  }

  /// busybox:latest for both platforms in `root`'s store, with the same
  /// history times everywhere (SOURCE_DATE_EPOCH).
  void ImportBases(const std::string& root) {
    for (const char* arch : {"amd64", "arm64"})
      Manifold(std::string("import --platform linux/") + arch + " -t busybox:latest " + bases_->path() +
                   "/busybox-" + arch,
               0, root);
  }

  void StartCoordinator(const std::vector<std::string>& extra = {}) {
    ImportBases(coord_state_);
    std::string out;
    ASSERT_EQ(RunCommand(std::string(MF_COORDINATOR_BIN) + " token --state-dir " + coord_state_, &out), 0) << out;
    std::istringstream lines(out);
    for (std::string l; std::getline(lines, l);)
      if (!l.empty()) token_ = l;
    ASSERT_EQ(token_.size(), 83u) << out;
    std::vector<std::string> argv{MF_COORDINATOR_BIN, "--listen", address_, "--state-dir", coord_state_,
                                  "--heartbeat-timeout", "3", "--worker-wait", "30"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coordinator_ = std::make_unique<Process>(argv, tmp_.path() + "/coordinator.log");
    ASSERT_TRUE(WaitFor([&] { return ReadFile(coordinator_->log()).find("coordinator listening") != std::string::npos; }))
        << ReadFile(coordinator_->log());
  }

  Process& StartWorker(const std::string& id, int slots = 1, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{MF_WORKER_BIN, "--join", address_, "--token", token_, "--listen",
                                  "127.0.0.1:0", "--state-dir", tmp_.path() + "/" + id, "--id", id,
                                  "--slots", std::to_string(slots), "--log-level", "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto ready = [&] {
      std::string log = ReadFile(coordinator_->log());
      std::size_t n = 0;
      for (std::size_t at = 0; (at = log.find("worker " + id + " ready", at)) != std::string::npos; ++at) ++n;
      return n;
    };
    const std::size_t before = ready();
    auto& p = workers_[id];
    p = std::make_unique<Process>(argv, tmp_.path() + "/" + id + ".log");
    EXPECT_TRUE(WaitFor([&] { return ready() > before; })) << ReadFile(coordinator_->log()) << ReadFile(p->log());
    return *p;
  }

  Result FarmBuild(const std::string& args, const std::string& context, const std::string& root = "") {
    std::string out;
    std::string env = "MANIFOLD_ROOT=" + (root.empty() ? tmp_.path() + "/client" : root) + " ";
    int rc = RunCommand(env + MF_MANIFOLD_BIN + " build --progress plain --coordinator " + address_ +
                            " --token '" + token_ + "' " + args + " " + context,
                        &out);
    return Parse(rc, out);
  }

  /// A linux/amd64 farm build of `ctx` running on its own thread, its output
  /// (then "rc=N") going to `log`.
  std::thread BuildInBackground(const std::string& ctx, const std::string& log) {
    std::string cmd = "MANIFOLD_ROOT=" + tmp_.path() + "/client " + MF_MANIFOLD_BIN +
                      " build --progress plain --coordinator " + address_ + " --token '" + token_ +
                      "' --platform linux/amd64 " + ctx + " > " + log + " 2>&1; echo rc=$? >> " + log;
    return std::thread([cmd] {
      std::string ignored;
      RunCommand(cmd, &ignored);
    });
  }

  /// The index digest the embedded build makes of `ctx` (same bases, same
  /// SOURCE_DATE_EPOCH): what every farm build must equal.
  std::string EmbeddedDigest(const std::string& ctx, const std::string& platforms = "linux/amd64") {
    std::string embedded = tmp_.path() + "/embedded";
    ImportBases(embedded);
    return Parse(0, Manifold("build -q --platform " + platforms + " " + ctx, 0, embedded)).digest;
  }

  /// A linux/amd64 farm build of tmp/ctx whose one RUN prints step-started
  /// then sleeps `sleep_s`, in the background (output in tmp/build.log);
  /// returns the worker the step started on, once it has.
  std::string BuildUntilTheStepStarts(int sleep_s, std::thread& build) {
    WriteFile(tmp_.path() + "/ctx/Dockerfile", "FROM busybox:latest\nRUN echo step-started && sleep " +
                                                   std::to_string(sleep_s) + " && echo slow > /slow.txt\n");
    build = BuildInBackground(tmp_.path() + "/ctx", tmp_.path() + "/build.log");
    std::smatch m;
    std::string text;
    EXPECT_TRUE(WaitFor([&] {
      text = ReadFile(tmp_.path() + "/build.log");
      return std::regex_search(text, m, std::regex("@(w[ab])\\] \\| step-started"));
    })) << text;
    return m.empty() ? std::string() : std::string(m[1]);
  }

  /// After the worker running that step was taken away: the build still
  /// succeeded, the survivor ran the step, and the image is the clean run's.
  /// Returns the build's output.
  std::string ExpectTheStepRanOn(const std::string& survivor) {
    std::string text = ReadFile(tmp_.path() + "/build.log");
    EXPECT_NE(text.find("rc=0"), std::string::npos) << text << ReadFile(coordinator_->log());
    EXPECT_NE(text.find("@" + survivor + "] | step-started"), std::string::npos) << text;
    Result r = Parse(0, text.substr(0, text.rfind("rc=")));
    EXPECT_EQ(EmbeddedDigest(tmp_.path() + "/ctx"), r.digest);
    return text;
  }

  /// The coordinator refused the late result of `victim`'s first lease.
  void ExpectLateResultDropped(const std::string& victim) {
    EXPECT_TRUE(std::regex_search(ReadFile(coordinator_->log()),
                                  std::regex(victim + "-s0 reported on job [^ ]+ \\(epoch [0-9]+\\) it does not hold; dropped")))
        << ReadFile(coordinator_->log());
  }

  /// Waits until `manifold workers` lists every one of `ids` as ready.
  bool AllReady(const std::vector<std::string>& ids, std::chrono::seconds limit) {
    return WaitFor(
        [&] {
          std::string listed = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
          for (const auto& id : ids)
            if (!std::regex_search(listed, std::regex("\n" + id + " +127\\.0\\.0\\.1:[0-9]+ +ready"))) return false;
          return true;
        },
        limit);
  }

  /// Jobs each worker ran, from the trace of the last build.
  static std::map<std::string, int> SlicesPerWorker(const std::string& trace) {
    std::map<std::string, int> out;
    auto j = nlohmann::json::parse(ReadFile(trace));
    for (const auto& e : j["traceEvents"])
      if (e["ph"] == "X") out[e["args"].value("worker", "")]++;
    return out;
  }

  static TempDir* bases_;
  TempDir tmp_;
  int port_ = 0;
  std::string address_;
  std::string coord_state_;
  std::string token_;
  std::string keep_;
  std::unique_ptr<Process> coordinator_;
  std::map<std::string, std::unique_ptr<Process>> workers_;
};

TempDir* ClusterTest::bases_ = nullptr;

// A coordinator and two workers build the multi-stage example for both
// platforms; the stages spread over both workers and the index is the one
// the embedded build makes from the same inputs.
TEST_F(ClusterTest, TwoWorkersBuildTheExampleAsTheEmbeddedBuildDoes) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::string trace = tmp_.path() + "/trace.json";
  std::string oci = tmp_.path() + "/out.tar";
  Result r = FarmBuild("--platform linux/amd64,linux/arm64 -t farm/example --trace " + trace +
                           " -o type=oci,dest=" + oci,
                       "examples/busybox-multistage");
  ASSERT_EQ(r.rc, 0) << r.out << ReadFile(coordinator_->log());
  EXPECT_EQ(r.executed + r.cached, 32) << r.out;
  EXPECT_NE(r.out.find("jobs: 10 run, 0 cached"), std::string::npos) << r.out;
  auto slices = SlicesPerWorker(trace);
  EXPECT_GT(slices["wa"], 0) << r.out;
  EXPECT_GT(slices["wb"], 0) << r.out;
  EXPECT_NE(r.out.find("@wa] RUN"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("@wb] RUN"), std::string::npos) << r.out;
  // Each worker logs every job it ran with its stage, platform and build.
  std::regex job_line("job [a-z0-9-]+ started: stage [a-z]+ for linux/(amd64|arm64) \\(build [0-9a-f]+\\)");
  EXPECT_TRUE(std::regex_search(ReadFile(workers_["wa"]->log()), job_line));

  // The embedded build of the same inputs.
  EXPECT_EQ(EmbeddedDigest("examples/busybox-multistage", "linux/amd64,linux/arm64"), r.digest);

  // The client got the image: tagged and written as an OCI archive.
  EXPECT_TRUE(fs::exists(oci));
  std::string listed = Manifold("images");
  EXPECT_NE(listed.find("farm/example"), std::string::npos) << listed;

  // A rebuild from another client runs nothing and gets the same index.
  Result again = FarmBuild("--platform linux/amd64,linux/arm64", "examples/busybox-multistage",
                           tmp_.path() + "/client2");
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(again.executed, 0) << again.out;
  EXPECT_EQ(again.digest, r.digest);
}

// The context goes up incrementally: a rebuild after editing one file
// uploads that file only.
TEST_F(ClusterTest, ContextUploadSendsOnlyWhatTheCoordinatorLacks) {
  StartCoordinator();
  StartWorker("wa", 2);
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nCOPY . /app\nRUN cat /app/a.txt\n");
  WriteFile(ctx + "/a.txt", "alpha\n");
  WriteFile(ctx + "/sub/b.txt", "beta\n");
  WriteFile(ctx + "/.dockerignore", "ignored.txt\n");
  WriteFile(ctx + "/ignored.txt", "never sent\n");
  Result first = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(first.rc, 0) << first.out;
  EXPECT_NE(first.out.find("files uploaded"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("| alpha"), std::string::npos) << first.out;
  WriteFile(ctx + "/a.txt", "alpha 2\n");
  Result second = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(second.rc, 0) << second.out;
  EXPECT_NE(second.out.find(", 1 files uploaded (8 bytes)"), std::string::npos) << second.out;
  // --progress json: one JSON object per event, tagged with the worker.
  std::string json_out;
  ASSERT_EQ(RunCommand("MANIFOLD_ROOT=" + tmp_.path() + "/client " + MF_MANIFOLD_BIN +
                           " build --progress json --no-cache --coordinator " + address_ + " --token '" + token_ +
                           "' --platform linux/amd64 " + ctx,
                       &json_out),
            0)
      << json_out;
  EXPECT_NE(json_out.find("\"event\":\"start\""), std::string::npos) << json_out;
  EXPECT_NE(json_out.find("\"worker\":\"wa\""), std::string::npos) << json_out;
  EXPECT_NE(second.out.find("| alpha 2"), std::string::npos) << second.out;
  // What the embedded build of the same context gives.
  EXPECT_EQ(EmbeddedDigest(ctx), second.digest);
}

// A worker fetches only the context files its jobs' steps read: each job
// brings what its COPY sources select, the next job of the build on the same
// worker adds its own, and a file no step reads never leaves the coordinator.
TEST_F(ClusterTest, AWorkerFetchesOnlyTheContextFilesItsStepsRead) {
  StartCoordinator();
  StartWorker("wa");
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox:latest AS one\nCOPY a.txt /a.txt\n"
            "FROM busybox:latest AS two\nCOPY sub/ /sub/\n"
            "FROM busybox:latest\nCOPY --from=one /a.txt /a.txt\nCOPY --from=two /sub/c.txt /c.txt\n");
  WriteFile(ctx + "/a.txt", "alpha\n");
  WriteFile(ctx + "/sub/c.txt", "gamma\n");
  std::string big;
  for (int i = 0; big.size() < (1 << 20); ++i) big += "no step reads this " + std::to_string(i) + "\n";
  WriteFile(ctx + "/big.bin", big);
  Result r = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(EmbeddedDigest(ctx), r.digest);
  // The build's context on the worker: the two jobs' files, nothing else.
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(tmp_.path() + "/wa/contexts")) dirs.push_back(e.path());
  ASSERT_EQ(dirs.size(), 1u);
  std::set<std::string> have;
  for (const auto& e : fs::recursive_directory_iterator(dirs[0]))
    have.insert(fs::relative(e.path(), dirs[0]).string());
  EXPECT_EQ(have, (std::set<std::string>{"a.txt", "sub", "sub/c.txt"}));
  // Nor is its blob in the worker's store (a.txt's is, for comparison).
  auto stored = [&](const std::string& file) {
    std::string hex, out;
    RunCommand("sha256sum " + file + " | cut -c1-64", &hex);
    hex = hex.substr(0, 64);
    RunCommand("find " + tmp_.path() + "/wa -name " + hex + " | wc -l", &out);
    return std::stoi(out) > 0;
  };
  EXPECT_TRUE(stored(ctx + "/a.txt"));
  EXPECT_FALSE(stored(ctx + "/big.bin"));
}

// Base images the client holds travel to the farm like the context: only
// the blobs the coordinator lacks, once.
TEST_F(ClusterTest, BaseImagesTheClientHoldsTravelToTheFarm) {
  std::string out;
  ASSERT_EQ(RunCommand(std::string(MF_COORDINATOR_BIN) + " token --state-dir " + coord_state_ + " | tail -1", &out), 0);
  token_ = out.substr(0, 83);
  coordinator_ = std::make_unique<Process>(
      std::vector<std::string>{MF_COORDINATOR_BIN, "--listen", address_, "--state-dir", coord_state_},
      tmp_.path() + "/coordinator.log");
  ASSERT_TRUE(WaitFor([&] { return ReadFile(coordinator_->log()).find("coordinator listening") != std::string::npos; }));
  StartWorker("wa", 2);
  ImportBases(tmp_.path() + "/client");  // the client's store only
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN uname -m > /arch\n");
  Result r = FarmBuild("--platform linux/amd64,linux/arm64", ctx);
  ASSERT_EQ(r.rc, 0) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("images: 1 from the client, ([0-9]+) blobs uploaded"))) << r.out;
  EXPECT_EQ(m[1], "7") << r.out;  // index, 2 manifests, 2 configs, 2 layers
  Result again = FarmBuild("--platform linux/amd64,linux/arm64", ctx);
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_NE(again.out.find("images: 1 from the client, 0 blobs uploaded (0 bytes)"), std::string::npos) << again.out;
  EXPECT_EQ(again.digest, r.digest);
}

// Secrets reach the worker running the step that mounts them, over CURVE,
// and are nowhere on disk afterwards: not in the coordinator's or the
// workers' state dirs, logs or images.
TEST_F(ClusterTest, SecretsReachOnlyTheStepAndLeaveNoTrace) {
  StartCoordinator();
  StartWorker("wa", 2);
  std::string ctx = tmp_.path() + "/ctx";
  const std::string secret = "s3cr3t-" + std::to_string(::getpid()) + "-value";
  WriteFile(tmp_.path() + "/secret-src/token", secret);
  std::string sha;
  ASSERT_EQ(RunCommand("sha256sum < " + tmp_.path() + "/secret-src/token | cut -c1-64", &sha), 0);
  sha = sha.substr(0, 64);
  // The Dockerfile names the secret's hash only, never its value.
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox:latest\n"
            "RUN --mount=type=secret,id=tok test \"$(sha256sum < /run/secrets/tok | cut -c1-64)\" = " + sha +
                " && echo secret-ok\n");
  Result r = FarmBuild("--platform linux/amd64 --secret id=tok,src=" + tmp_.path() + "/secret-src/token " +
                           "-o type=oci,dest=" + tmp_.path() + "/out.tar",
                       ctx);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("| secret-ok"), std::string::npos) << r.out;
  std::string found;
  RunCommand("grep -rl --binary-files=text '" + secret + "' " + tmp_.path() + " | grep -v '/secret-src/' || true", &found);
  EXPECT_EQ(found, "") << found;
  std::string archive;
  RunCommand("cd " + tmp_.path() + " && mkdir -p x && tar -xf out.tar -C x && zcat -f x/blobs/sha256/* | grep -c '" +
                 secret + "' || true",
             &archive);
  EXPECT_EQ(archive.substr(0, 1), "0") << archive;
}

// --push from the farm: the coordinator pushes the multi-platform result to
// the registry; skopeo sees the same index digest.
TEST_F(ClusterTest, PushFromTheFarm) {
  TempDir regdir;
  auto registry = TestRegistry::Start(TestRegistry::Mode::kOpen, regdir.path());
  ASSERT_TRUE(registry);
  StartCoordinator();
  StartWorker("wa", 2);
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN uname -m > /arch\n");
  const std::string ref = registry->host() + "/farm/app:1";
  Result r = FarmBuild("--platform linux/amd64,linux/arm64 --push -t " + ref, ctx);
  ASSERT_EQ(r.rc, 0) << r.out << ReadFile(coordinator_->log());
  EXPECT_NE(r.out.find("pushed " + ref + "@" + r.digest), std::string::npos) << r.out;
  std::string raw;
  ASSERT_EQ(RunCommand("skopeo inspect --tls-verify=false --raw docker://" + ref, &raw), 0) << raw;
  auto index = nlohmann::json::parse(raw);
  EXPECT_EQ(index["manifests"].size(), 2u) << raw;
  std::string digest;
  ASSERT_EQ(RunCommand("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" + ref, &digest), 0);
  EXPECT_EQ(digest.substr(0, 71), r.digest);
  // The worker pushed the layers it built itself (the base layers, which the
  // coordinator holds, went from there): they never came to the coordinator,
  // nor to the client, which asked for no local output.
  EXPECT_TRUE(std::regex_search(ReadFile(workers_["wa"]->log()),
                                std::regex("pushed 2 layer\\(s\\) to " + registry->host() + "/farm/app:1 \\(2 uploaded")))
      << ReadFile(workers_["wa"]->log());
  EXPECT_NE(r.out.find("wa pushed 2 layer(s) (2 uploaded, 0 mounted, 0 already there)"), std::string::npos) << r.out;
  std::set<std::string> layers;
  for (const auto& m : index["manifests"]) {
    std::string mraw;
    ASSERT_EQ(RunCommand("skopeo inspect --tls-verify=false --raw docker://" + registry->host() + "/farm/app@" +
                             m["digest"].get<std::string>(),
                         &mraw),
              0);
    auto manifest = nlohmann::json::parse(mraw);
    layers.insert(manifest["layers"].back()["digest"].get<std::string>().substr(7));  // the RUN's
  }
  ASSERT_EQ(layers.size(), 2u);
  for (const auto& hex : layers) {
    std::string found;
    RunCommand("find " + coord_state_ + " " + tmp_.path() + "/client -name " + hex + " 2>/dev/null", &found);
    EXPECT_EQ(found, "") << hex;
  }
  // Every blob is there: a full copy out of the registry works.
  std::string copied;
  EXPECT_EQ(RunCommand("skopeo copy --all --src-tls-verify=false docker://" + ref + " oci:" + tmp_.path() + "/copy:x",
                       &copied),
            0)
      << copied;
}

// A stage built on worker A and then needed on worker B, while A is drained
// (it serves blobs but takes no jobs): B fetches it from A and runs none of
// its steps.
TEST_F(ClusterTest, DrainedWorkerServesItsLayersToTheOneThatNeedsThem) {
  StartCoordinator();
  StartWorker("wa", 2);
  std::string ctx = tmp_.path() + "/ctx";
  const std::string stage_a =
      "FROM busybox:latest AS a\nRUN echo built-on-a > /a.txt && seq 1 50000 > /numbers\n";
  WriteFile(ctx + "/Dockerfile", stage_a);
  Result first = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(first.rc, 0) << first.out;
  EXPECT_EQ(first.executed, 1) << first.out;

  StartWorker("wb", 2);
  std::string out = Manifold("workers drain wa --coordinator " + address_ + " --token '" + token_ + "'");
  EXPECT_NE(out.find("draining worker wa"), std::string::npos) << out;
  ASSERT_TRUE(WaitFor([&] {
    std::string list = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
    return std::regex_search(list, std::regex("\nwa +127\\.0\\.0\\.1:[0-9]+ +draining"));
  }));

  WriteFile(ctx + "/Dockerfile", stage_a + "FROM a AS b\nRUN cat /a.txt && wc -l /numbers\n");
  Result second = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(second.rc, 0) << second.out << ReadFile(workers_["wb"]->log());
  EXPECT_EQ(second.executed, 1) << second.out;
  EXPECT_NE(second.out.find("[linux/amd64 b 1/1 @wb] | built-on-a"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("50000 /numbers"), std::string::npos) << second.out;
  // B fetched the layer from A's blob server, not from the coordinator.
  std::string wb_log = ReadFile(workers_["wb"]->log());
  std::smatch m;
  const std::string wa_log = ReadFile(workers_["wa"]->log());
  ASSERT_TRUE(std::regex_search(wa_log, m,
                                std::regex("serving blobs on (tcp://127\\.0\\.0\\.1:[0-9]+)")));
  EXPECT_NE(wb_log.find("from " + m[1].str()), std::string::npos) << wb_log;
  // A ran no job of the second build.
  EXPECT_EQ(ReadFile(workers_["wa"]->log()).find("stage b"), std::string::npos);
}

// kill -9 of the worker in the middle of a RUN: its job runs again on the
// other worker and the index is the one a clean run gives (RELIABILITY H1).
TEST_F(ClusterTest, WorkerKilledMidRunIsReplacedAndTheIndexIsTheSame) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::thread build;
  const std::string victim = BuildUntilTheStepStarts(4, build);
  ASSERT_FALSE(victim.empty());
  const std::string survivor = victim == "wa" ? "wb" : "wa";
  ::kill(workers_[victim]->pid(), SIGKILL);
  workers_[victim]->Stop();
  build.join();
  std::string text = ExpectTheStepRanOn(survivor);
  EXPECT_NE(text.find("worker " + victim + " lost; the job runs again elsewhere"), std::string::npos) << text;
  // The killed worker comes back on its state dir: it reclaims what the
  // dead run left and rejoins under its id.
  workers_.erase(victim);
  StartWorker(victim);
  EXPECT_NE(ReadFile(workers_[victim]->log()).find("worker " + victim + " rejoins"), std::string::npos);
}

// A worker stopped (SIGSTOP: its process hung, its TCP connections open)
// mid-RUN is declared lost when its heartbeats stop; the job runs elsewhere.
// Resumed, the worker's late result carries a stale lease epoch and is
// dropped; the worker rejoins (RELIABILITY H2).
TEST_F(ClusterTest, AHungWorkerIsReplacedAndItsLateResultDropped) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::thread build;
  const std::string victim = BuildUntilTheStepStarts(12, build);
  ASSERT_FALSE(victim.empty());
  const std::string survivor = victim == "wa" ? "wb" : "wa";
  const std::string log = tmp_.path() + "/build.log";
  ::kill(workers_[victim]->pid(), SIGSTOP);
  bool replaced = WaitFor([&] { return ReadFile(log).find("worker " + victim + " lost") != std::string::npos; });
  ::kill(workers_[victim]->pid(), SIGCONT);
  ASSERT_TRUE(replaced) << ReadFile(log);
  build.join();
  ExpectTheStepRanOn(survivor);
  // The resumed worker's first heartbeat named the lease it still ran: the
  // coordinator had given it away, so it was cancelled there and then (its
  // RUN killed, not run to the end), and its result refused.
  EXPECT_TRUE(std::regex_search(ReadFile(workers_[victim]->log()),
                                std::regex("job [^ ]+ \\(lease [0-9]+\\) cancelled: no build wants this run any more")))
      << ReadFile(workers_[victim]->log());
  EXPECT_NE(ReadFile(workers_[victim]->log()).find("was cancelled and killed"), std::string::npos);
  ExpectLateResultDropped(victim);
  // Back in the farm.
  std::string list = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
  EXPECT_TRUE(std::regex_search(list, std::regex("\n" + victim + " +127\\.0\\.0\\.1:[0-9]+ +ready"))) << list;
}

// Two builds at once share the farm: the second runs on the free worker
// while the first still runs, instead of waiting for it; each image is the
// one the embedded build makes.
TEST_F(ClusterTest, TwoBuildsRunAtOnceOnTheFreeWorkers) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::thread first;
  const std::string busy = BuildUntilTheStepStarts(10, first);
  ASSERT_FALSE(busy.empty());
  const std::string free = busy == "wa" ? "wb" : "wa";
  std::string ctx2 = tmp_.path() + "/ctx2";
  WriteFile(ctx2 + "/Dockerfile", "FROM busybox:latest\nRUN echo second > /second.txt\n");
  Result second = FarmBuild("--platform linux/amd64", ctx2);
  // Done while the first build still sleeps on the other worker.
  const std::string first_log = ReadFile(tmp_.path() + "/build.log");
  first.join();
  ASSERT_EQ(second.rc, 0) << second.out;
  EXPECT_EQ(first_log.find("rc="), std::string::npos) << first_log;
  EXPECT_EQ(second.out.find("waiting:"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("scheduled on " + free), std::string::npos) << second.out;
  EXPECT_TRUE(std::regex_search(ReadFile(coordinator_->log()), std::regex("build 2 started \\([^)]*, 2 running\\)")))
      << ReadFile(coordinator_->log());
  EXPECT_EQ(EmbeddedDigest(ctx2), second.digest);
  ExpectTheStepRanOn(busy);
}

// The same steps submitted by two builds at once run once (RELIABILITY H6):
// the second build waits for the first one's job and takes its result.
TEST_F(ClusterTest, TheSameStepInTwoBuildsAtOnceRunsOnce) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::thread first;
  ASSERT_FALSE(BuildUntilTheStepStarts(4, first).empty());
  Result second = FarmBuild("--platform linux/amd64", tmp_.path() + "/ctx");
  first.join();
  ASSERT_EQ(second.rc, 0) << second.out;
  EXPECT_NE(second.out.find("[linux/amd64 stage-0] the same steps are running for another build; waiting for their result"),
            std::string::npos)
      << second.out;
  EXPECT_EQ(second.executed, 0) << second.out;
  EXPECT_EQ(second.out.find("| step-started"), std::string::npos) << second.out;
  const std::string first_log = ReadFile(tmp_.path() + "/build.log");
  ASSERT_NE(first_log.find("rc=0"), std::string::npos) << first_log;
  Result first_result = Parse(0, first_log.substr(0, first_log.rfind("rc=")));
  EXPECT_EQ(first_result.executed, 1) << first_result.out;
  EXPECT_EQ(second.digest, first_result.digest);
  EXPECT_EQ(EmbeddedDigest(tmp_.path() + "/ctx"), second.digest);
}

// A failed build stops the jobs it still had running on other workers (their
// RUN is killed, not run to the end), and the workers are free at once.
TEST_F(ClusterTest, AFailedBuildCancelsItsOtherRunningJobs) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox:latest AS slow\nRUN echo slow-started && sleep 120 && echo slow > /slow\n"
            "FROM busybox:latest AS bad\nRUN echo bad-started && sleep 3 && exit 3\n"
            "FROM busybox:latest\nCOPY --from=slow /slow /slow\nCOPY --from=bad /etc/hostname /h\n");
  Result r = FarmBuild("--platform linux/amd64", ctx);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("exit code: 3"), std::string::npos) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("@(w[ab])\\] \\| slow-started"))) << r.out;
  const std::string slow = m[1];
  EXPECT_TRUE(AllReady({"wa", "wb"}, std::chrono::seconds(20)));
  const std::string slow_log = ReadFile(workers_[slow]->log());
  EXPECT_TRUE(std::regex_search(slow_log, std::regex("job [^ ]+ \\(lease [0-9]+\\) cancelled: build 1 ended"))) << slow_log;
  EXPECT_TRUE(std::regex_search(slow_log, std::regex("job [^ ]+ failed: stage slow for linux/amd64 \\(build [^)]+\\): "
                                                     "[^\n]*was cancelled and killed")))
      << slow_log;
  EXPECT_NE(ReadFile(coordinator_->log()).find("build 1 ended with 1 job(s) still running on " + slow + "; cancelling them"),
            std::string::npos);
}

// Ctrl-C on `manifold build --coordinator` cancels the build on the farm;
// a client killed outright does too (the coordinator notices it is gone).
TEST_F(ClusterTest, InterruptingTheClientCancelsTheBuildOnTheFarm) {
  StartCoordinator();
  StartWorker("wa");
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN echo step-started && sleep 120\n");
  setenv("MANIFOLD_ROOT", (tmp_.path() + "/client").c_str(), 1);
  auto client = [&](const std::string& log) {
    return std::make_unique<Process>(
        std::vector<std::string>{MF_MANIFOLD_BIN, "build", "--progress", "plain", "--coordinator", address_, "--token",
                                 token_, "--platform", "linux/amd64", ctx},
        log);
  };
  const std::string log1 = tmp_.path() + "/client1.log";
  auto first = client(log1);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log1).find("| step-started") != std::string::npos; })) << ReadFile(log1);
  EXPECT_EQ(first->Stop(SIGINT), 1);
  std::string text = ReadFile(log1);
  EXPECT_NE(text.find("cancelling the build on the farm: interrupted (SIGINT)"), std::string::npos) << text;
  EXPECT_NE(text.find("build cancelled: interrupted (SIGINT)"), std::string::npos) << text;
  EXPECT_NE(ReadFile(coordinator_->log()).find("build 1 cancelled by its client: interrupted (SIGINT)"),
            std::string::npos);
  EXPECT_TRUE(AllReady({"wa"}, std::chrono::seconds(20)));
  EXPECT_TRUE(std::regex_search(ReadFile(workers_["wa"]->log()),
                                std::regex("\\(lease [0-9]+\\) cancelled: build 1 ended")));

  const std::string log2 = tmp_.path() + "/client2.log";
  auto second = client(log2);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log2).find("| step-started") != std::string::npos; })) << ReadFile(log2);
  second->Stop(SIGKILL);
  EXPECT_TRUE(WaitFor([&] {
    return ReadFile(coordinator_->log()).find("build 2: its client is gone; cancelling it") != std::string::npos;
  })) << ReadFile(coordinator_->log());
  EXPECT_TRUE(AllReady({"wa"}, std::chrono::seconds(20)));
  EXPECT_TRUE(std::regex_search(ReadFile(workers_["wa"]->log()),
                                std::regex("\\(lease [0-9]+\\) cancelled: build 2 ended")));
}

// --max-builds 1: a second build waits in the queue; `manifold builds`
// lists both, and `manifold builds cancel N` stops the queued one, then the
// running one (its RUN killed on the worker).
TEST_F(ClusterTest, TheOperatorListsAndCancelsBuilds) {
  StartCoordinator({"--max-builds", "1"});
  StartWorker("wa");
  std::thread first;
  ASSERT_EQ(BuildUntilTheStepStarts(120, first), "wa");
  std::string ctx2 = tmp_.path() + "/ctx2";
  WriteFile(ctx2 + "/Dockerfile", "FROM busybox:latest\nRUN echo second\n");
  const std::string log2 = tmp_.path() + "/build2.log";
  std::thread second = BuildInBackground(ctx2, log2);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log2).find("waiting: 1 builds running (--max-builds 1), 0 queued before this one") !=
                                   std::string::npos; }))
      << ReadFile(log2);
  const std::string farm = " --coordinator " + address_ + " --token '" + token_ + "'";
  std::string listed = Manifold("builds" + farm);
  EXPECT_TRUE(std::regex_search(listed, std::regex("\n1 +running +1 +[0-9]+s +linux/amd64"))) << listed;
  EXPECT_TRUE(std::regex_search(listed, std::regex("\n2 +queued +0 +[0-9]+s +linux/amd64"))) << listed;
  EXPECT_NE(Manifold("builds cancel 9" + farm, 1).find("no build 9 is running or queued"), std::string::npos);

  Manifold("builds cancel 2" + farm);
  second.join();
  std::string text2 = ReadFile(log2);
  EXPECT_NE(text2.find("build cancelled: by the operator (manifold builds cancel)"), std::string::npos) << text2;
  EXPECT_NE(text2.find("rc=1"), std::string::npos) << text2;

  Manifold("builds cancel 1" + farm);
  first.join();
  std::string text1 = ReadFile(tmp_.path() + "/build.log");
  EXPECT_NE(text1.find("build cancelled: by the operator (manifold builds cancel)"), std::string::npos) << text1;
  EXPECT_TRUE(AllReady({"wa"}, std::chrono::seconds(20)));
  EXPECT_TRUE(std::regex_search(ReadFile(workers_["wa"]->log()), std::regex("\\(lease [0-9]+\\) cancelled: build 1 ended")));
  listed = Manifold("builds" + farm);
  EXPECT_EQ(listed.find("running"), std::string::npos) << listed;
}

// A stage result held only by a worker that then died (never fetched by
// anyone: not a target) is built again on a live worker before the stage
// that reads it, and the image is the one a clean run makes.
TEST_F(ClusterTest, AStageResultLostWithItsWorkerIsBuiltAgain) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox:latest AS one\nRUN echo one-built > /1\n"
            "FROM busybox:latest AS slow\nRUN echo slow-begin && sleep 6 && echo s > /s\n"
            "FROM busybox:latest\nCOPY --from=one /1 /1\nCOPY --from=slow /s /s\n");
  std::string log = tmp_.path() + "/build.log";
  std::thread build = BuildInBackground(ctx, log);
  std::smatch m;
  std::string text;
  ASSERT_TRUE(WaitFor([&] {
    text = ReadFile(log);
    return std::regex_search(text, m, std::regex("\\[linux/amd64 one\\] scheduled on (w[ab])"));
  })) << text;
  const std::string holder = m[1];
  const std::string other = holder == "wa" ? "wb" : "wa";
  // "one" finished and reported; "slow" is still sleeping on the other one.
  ASSERT_TRUE(WaitFor([&] { return ReadFile(workers_[holder]->log()).find("done: stage one") != std::string::npos; }))
      << ReadFile(workers_[holder]->log());
  ::kill(workers_[holder]->pid(), SIGKILL);
  workers_[holder]->Stop();
  build.join();
  text = ReadFile(log);
  ASSERT_NE(text.find("rc=0"), std::string::npos) << text << ReadFile(coordinator_->log());
  EXPECT_NE(text.find("[linux/amd64 one] its result left the farm with its worker; the stage is built again"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("[linux/amd64 one] scheduled on " + other), std::string::npos) << text;
  EXPECT_EQ(EmbeddedDigest(ctx), Parse(0, text.substr(0, text.rfind("rc="))).digest);
}

// Keys the coordinator does not know get nothing (RELIABILITY G1) until
// allow-client admits them; a removed worker is refused from then on.
TEST_F(ClusterTest, UnknownKeysAndRemovedWorkersAreRefused) {
  StartCoordinator();
  StartWorker("wa");
  StartWorker("wb");
  // A well-formed token of another coordinator: the handshake fails.
  std::string other = tmp_.path() + "/other";
  std::string out;
  ASSERT_EQ(RunCommand(std::string(MF_COORDINATOR_BIN) + " token --state-dir " + other + " | tail -1", &out), 0);
  std::string bogus = out.substr(0, 83);
  std::string listed;
  const std::string client = "MANIFOLD_ROOT=" + tmp_.path() + "/client MANIFOLD_CLIENT_KEY=" + tmp_.path() +
                             "/client.key " + MF_MANIFOLD_BIN;
  int rc = RunCommand(client + " workers --coordinator " + address_ + " --token '" + bogus + "'", &listed);
  EXPECT_EQ(rc, 1) << listed;
  EXPECT_NE(listed.find("no answer from the coordinator at " + address_), std::string::npos) << listed;

  // The right coordinator key, but a client key it does not know: ZAP says no.
  const std::string server_key = token_.substr(3, 40);
  rc = RunCommand(client + " workers --coordinator " + address_ + " --coordinator-key '" + server_key + "'", &listed);
  EXPECT_EQ(rc, 1) << listed;
  std::string client_key;
  ASSERT_EQ(RunCommand(client + " client-key", &client_key), 0);
  client_key = client_key.substr(0, 40);
  std::string fingerprint;
  ASSERT_EQ(RunCommand("printf %s '" + client_key + "' | sha256sum | cut -c1-12", &fingerprint), 0);
  fingerprint = fingerprint.substr(0, 12);
  EXPECT_NE(ReadFile(coordinator_->log()).find("refused a connection from 127.0.0.1 with unknown key " + fingerprint),
            std::string::npos)
      << ReadFile(coordinator_->log());
  // Admitted, the same key lists the workers.
  ASSERT_EQ(RunCommand(std::string(MF_COORDINATOR_BIN) + " allow-client '" + client_key + "' --state-dir " + coord_state_, &out), 0) << out;
  rc = RunCommand(client + " workers --coordinator " + address_ + " --coordinator-key '" + server_key + "'", &listed);
  EXPECT_EQ(rc, 0) << listed;
  EXPECT_TRUE(std::regex_search(listed, std::regex("\nwa +127\\.0\\.0\\.1:[0-9]+ +ready"))) << listed;

  out = Manifold("workers rm wb --coordinator " + address_ + " --token '" + token_ + "'");
  EXPECT_NE(out.find("removed worker wb"), std::string::npos);
  EXPECT_TRUE(std::regex_search(out, std::regex("\nwb +127\\.0\\.0\\.1:[0-9]+ +revoked"))) << out;
  EXPECT_TRUE(WaitFor([&] { return ReadFile(workers_["wb"]->log()).find("removed from the cluster") != std::string::npos; }))
      << ReadFile(workers_["wb"]->log());
  EXPECT_EQ(workers_["wb"]->Stop(), 0);
  // Started again with its key, it is refused: the handshake, then the join.
  Process again({MF_WORKER_BIN, "--join", address_, "--token", token_, "--listen", "127.0.0.1:0",
                 "--state-dir", tmp_.path() + "/wb", "--id", "wb"},
                tmp_.path() + "/wb-again.log");
  EXPECT_TRUE(WaitFor([&] { return !again.Running(); }, std::chrono::seconds(40)));
  EXPECT_EQ(again.Stop(), 1);
  EXPECT_NE(ReadFile(again.log()).find("worker wb was removed (manifold workers rm); use a new key"), std::string::npos)
      << ReadFile(again.log());
  // Builds go to the remaining worker.
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN echo hello > /h\n");
  Result r = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("@wa] RUN"), std::string::npos) << r.out;
}

// A job whose platform no worker offers waits for --worker-wait, then fails
// with a clear error (RELIABILITY H4); a failed RUN is not retried and its
// output is shown.
TEST_F(ClusterTest, NoWorkerForAPlatformAndFailedCommands) {
  StartCoordinator({"--worker-wait", "2"});
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN echo hi\n");
  Result r = FarmBuild("--platform linux/amd64", ctx);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("no worker for linux/amd64 (stage stage-0) joined within 2 s"), std::string::npos) << r.out;

  StartWorker("wa");
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN echo about to fail && exit 3\n");
  r = FarmBuild("--platform linux/amd64", ctx);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("Dockerfile:2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("on wa"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("about to fail"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n') > 0, true);
  std::string wa_log = ReadFile(workers_["wa"]->log());
  std::size_t starts = 0;
  for (std::size_t p = 0; (p = wa_log.find("started: stage stage-0", p)) != std::string::npos; ++p) ++starts;
  EXPECT_EQ(starts, 1u) << wa_log;
}

// A worker whose disk is full fails every job it takes: each job runs again
// on another worker, and after three failures in a row the bad worker is
// out of rotation for the build (RELIABILITY H5, H8).
TEST_F(ClusterTest, AWorkerThatKeepsFailingIsTakenOutOfRotation) {
  StartCoordinator();
  const std::string bad = tmp_.path() + "/wbad";
  fs::create_directories(bad);
  std::string out;
  ASSERT_EQ(RunCommand("mount -t tmpfs -o size=1500k tmpfs " + bad, &out), 0) << out;
  StartWorker("wbad", 2);
  std::string ctx = tmp_.path() + "/ctx";
  // Three independent stages: all ready at once, so the full worker gets
  // some of them first.
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox:latest AS one\nRUN echo 1 > /x\n"
            "FROM busybox:latest AS two\nRUN echo 2 > /x\n"
            "FROM busybox:latest AS three\nRUN echo 3 > /x\n"
            "FROM busybox:latest\nCOPY --from=one /x /1\nCOPY --from=two /x /2\nCOPY --from=three /x /3\n");
  std::string log = tmp_.path() + "/build.log";
  std::thread build = BuildInBackground(ctx, log);
  // Only the bad worker exists at first: its failures pile up, then a good
  // worker joins and takes the jobs.
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("taken out of rotation") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(log);
  StartWorker("wgood", 2);
  build.join();
  std::string text = ReadFile(log);
  ASSERT_NE(text.find("rc=0"), std::string::npos) << text;
  EXPECT_NE(text.find("failed on wbad"), std::string::npos) << text;
  EXPECT_NE(text.find("the job runs again elsewhere"), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(
      text, std::regex("worker wbad failed 3 jobs in a row: [^\n]+; taken out of rotation \\(quarantined for 600 s\\)")))
      << text;
  EXPECT_NE(text.find("@wgood] RUN echo 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("@wbad] DONE"), std::string::npos) << text;
  // The worker said it was short of disk from the start (H8)...
  EXPECT_NE(ReadFile(workers_["wbad"]->log()).find("degraded: low disk: "), std::string::npos);
  EXPECT_NE(ReadFile(coordinator_->log()).find("worker wbad degraded: low disk: "), std::string::npos);
  // ...and stays out of rotation for the next builds too (H5), as listed,
  // even after the coordinator restarts.
  const std::regex quarantined("\nwbad +127\\.0\\.0\\.1:[0-9]+ +quarantined .*\\(failed 3 jobs in a row: ");
  std::string listed = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
  EXPECT_TRUE(std::regex_search(listed, quarantined)) << listed;
  EXPECT_EQ(coordinator_->Stop(SIGTERM), 0);
  std::vector<std::string> argv{MF_COORDINATOR_BIN, "--listen", address_, "--state-dir", coord_state_,
                                "--heartbeat-timeout", "3"};
  coordinator_ = std::make_unique<Process>(argv, tmp_.path() + "/coordinator2.log");
  ASSERT_TRUE(WaitFor([&] { return ReadFile(coordinator_->log()).find("coordinator listening") != std::string::npos; }));
  EXPECT_TRUE(WaitFor([&] {
    listed = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
    return std::regex_search(listed, quarantined) &&
           std::regex_search(listed, std::regex("\nwgood +127\\.0\\.0\\.1:[0-9]+ +ready"));
  })) << listed;
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest AS a\nRUN echo a > /a\nFROM busybox:latest AS b\nRUN echo b > /b\n"
                                 "FROM busybox:latest\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n");
  Result again = FarmBuild("--platform linux/amd64", ctx);
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(again.out.find("on wbad"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("scheduled on wgood"), std::string::npos) << again.out;
  workers_.erase("wbad");
  RunCommand("umount -l " + bad, &out);
}

// A quarantine ends by itself: once its time is up the worker takes jobs
// again (here after its disk was given room).
TEST_F(ClusterTest, AQuarantinedWorkerComesBackWhenItsTimeIsUp) {
  StartCoordinator({"--quarantine", "4"});
  const std::string bad = tmp_.path() + "/wbad";
  fs::create_directories(bad);
  std::string out;
  ASSERT_EQ(RunCommand("mount -t tmpfs -o size=1500k tmpfs " + bad, &out), 0) << out;
  StartWorker("wbad", 1, {"--min-free-disk", "1"});
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest AS one\nRUN echo 1 > /x\n"
                                 "FROM busybox:latest\nCOPY --from=one /x /x\n");
  std::string log = tmp_.path() + "/build.log";
  std::thread build = BuildInBackground(ctx, log);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("taken out of rotation") != std::string::npos; },
                      std::chrono::seconds(60)))
      << ReadFile(log);
  StartWorker("wgood");
  build.join();
  ASSERT_NE(ReadFile(log).find("rc=0"), std::string::npos) << ReadFile(log);
  // Out of space (what the failed extraction left, or its last job): it
  // says so with its next heartbeat.
  EXPECT_TRUE(WaitFor([&] {
    return std::regex_search(ReadFile(coordinator_->log()),
                             std::regex("worker wbad degraded: (low disk: [0-9]+ MiB free|its last job ran out of "
                                        "resources: write [^\n]*No space left on device)"));
  })) << ReadFile(workers_["wbad"]->log());
  // Room on its disk, the good worker gone, the quarantine over: the next
  // build runs on it.
  ASSERT_EQ(RunCommand("mount -o remount,size=256m " + bad, &out), 0) << out;
  EXPECT_EQ(workers_["wgood"]->Stop(SIGTERM), 0);
  workers_.erase("wgood");
  ASSERT_TRUE(WaitFor([&] {
    std::string listed = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
    return std::regex_search(listed, std::regex("\nwbad +127\\.0\\.0\\.1:[0-9]+ +(ready|degraded) "));
  }));
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN echo back > /back\n");
  Result again = FarmBuild("--platform linux/amd64", ctx);
  EXPECT_EQ(again.rc, 0) << again.out << ReadFile(workers_["wbad"]->log());
  EXPECT_NE(again.out.find("scheduled on wbad"), std::string::npos) << again.out;
  workers_.erase("wbad");
  RunCommand("umount -l " + bad, &out);
}

// SIGTERM drains a worker: the running job finishes, the worker exits 0
// (RELIABILITY H11).
TEST_F(ClusterTest, SigtermDrainsTheRunningJob) {
  StartCoordinator();
  Process& wa = StartWorker("wa");
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile", "FROM busybox:latest\nRUN echo begin && sleep 2 && echo end\n");
  std::string log = tmp_.path() + "/build.log";
  std::thread build = BuildInBackground(ctx, log);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("| begin") != std::string::npos; })) << ReadFile(log);
  EXPECT_EQ(wa.Stop(SIGTERM), 0) << ReadFile(wa.log());
  build.join();
  std::string text = ReadFile(log);
  EXPECT_NE(text.find("rc=0"), std::string::npos) << text;
  EXPECT_NE(text.find("| end"), std::string::npos) << text;
  EXPECT_NE(ReadFile(wa.log()).find("draining: finishing running jobs"), std::string::npos);
}

// The coordinator killed (SIGKILL) mid-build and started again: the client
// submits again when it stops hearing from it, the workers rejoin on their
// own, and nothing that finished runs again (RELIABILITY H7).
TEST_F(ClusterTest, CoordinatorRestartedMidBuildLosesNoFinishedStep) {
  StartCoordinator();
  StartWorker("wa");
  std::string ctx = tmp_.path() + "/ctx";
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox:latest AS one\nRUN echo first-step > /1\n"
            "FROM busybox:latest\nCOPY --from=one /1 /1\nRUN echo second-step && sleep 3 && cat /1\n");
  std::string log = tmp_.path() + "/build.log";
  std::thread build = BuildInBackground(ctx, log);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("| second-step") != std::string::npos; })) << ReadFile(log);
  coordinator_->Stop(SIGKILL);
  std::vector<std::string> argv{MF_COORDINATOR_BIN, "--listen", address_, "--state-dir", coord_state_,
                                "--heartbeat-timeout", "3"};
  coordinator_ = std::make_unique<Process>(argv, tmp_.path() + "/coordinator2.log");
  build.join();
  std::string text = ReadFile(log);
  ASSERT_NE(text.find("rc=0"), std::string::npos) << text << ReadFile(tmp_.path() + "/coordinator2.log");
  EXPECT_NE(text.find("submitting the build again"), std::string::npos) << text;
  // The first stage finished before the kill: the new coordinator's index
  // answers it, no job runs for it.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t p = 0; (p = text.find(what, p)) != std::string::npos; ++p) ++n;
    return n;
  };
  EXPECT_EQ(count("@wa] RUN echo first-step"), 1u) << text;
  EXPECT_NE(text.find("[linux/amd64 one 1/1] CACHED"), std::string::npos) << text;
  // The step running at the kill finished on the worker, which recorded it:
  // the resubmitted job finds it in the worker's cache.
  EXPECT_EQ(count("@wa] RUN echo second-step"), 1u) << text;
  EXPECT_NE(text.find("steps: 0 executed, 3 cached"), std::string::npos) << text;
  EXPECT_NE(ReadFile(tmp_.path() + "/coordinator2.log").find("worker wa ready"), std::string::npos);
}

// The same farm with each daemon in its own network namespace, joined by a
// bridge, the workers finding the coordinator by its UDP beacon. nsenter
// rather than `ip netns exec`, which remounts /sys without the cgroup
// mounts runc needs.
class NetnsClusterTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    tag_ = std::to_string(::getpid() % 100000);
    std::string out;
    std::string script = "set -e; ip link add mfbr" + tag_ + " type bridge; ip link set mfbr" + tag_ +
                         " up; ip addr add 10.231.0.254/24 dev mfbr" + tag_ + "; ";
    int n = 1;
    for (const char* ns : {"c", "a", "b"}) {
      std::string name = "mf" + std::string(ns) + tag_;
      std::string veth = "mfv" + std::string(ns) + tag_, peer = "mfp" + std::string(ns) + tag_;
      script += "ip netns add " + name + "; ip link add " + veth + " type veth peer name " + peer +
                "; ip link set " + peer + " master mfbr" + tag_ + "; ip link set " + peer +
                " up; ip link set " + veth + " netns " + name + "; ip netns exec " + name +
                " ip addr add 10.231.0." + std::to_string(n) + "/24 brd 10.231.0.255 dev " + veth +
                "; ip netns exec " + name + " ip link set " + veth + " up; ip netns exec " + name +
                " ip link set lo up; ";
      ++n;
    }
    ASSERT_EQ(RunCommand(script, &out), 0) << out;
    address_ = "10.231.0.1:" + std::to_string(port_);
  }
  void TearDown() override {
    ClusterTest::TearDown();
    std::string out;
    RunCommand("for ns in c a b; do ip netns del mf${ns}" + tag_ + "; done; ip link del mfbr" + tag_, &out);
  }
  std::string Ns(const char* which) const { return "mf" + std::string(which) + tag_; }
  /// The coordinator in namespace c, workers wa and wb in a and b, joined
  /// by beacon discovery.
  void StartNetnsFarm() {
    ImportBases(coord_state_);
    std::string out;
    ASSERT_EQ(RunCommand(std::string(MF_COORDINATOR_BIN) + " token --state-dir " + coord_state_ + " | tail -1", &out), 0);
    token_ = out.substr(0, 83);
    const std::string beacon_port = std::to_string(FreePort());
    coordinator_ = std::make_unique<Process>(
        std::vector<std::string>{"nsenter", "--net=/var/run/netns/" + Ns("c"), MF_COORDINATOR_BIN, "--listen", address_,
                                 "--state-dir", coord_state_, "--heartbeat-timeout", "3", "--beacon",
                                 "10.231.0.255", "--beacon-port", beacon_port},
        tmp_.path() + "/coordinator.log");
    for (const char* w : {"a", "b"}) {
      std::string id = std::string("w") + w;
      workers_[id] = std::make_unique<Process>(
          std::vector<std::string>{"nsenter", "--net=/var/run/netns/" + Ns(w), MF_WORKER_BIN, "--discover", "--beacon-port",
                                   beacon_port, "--token", token_, "--state-dir", tmp_.path() + "/" + id,
                                   "--id", id, "--slots", "1"},
          tmp_.path() + "/" + id + ".log");
    }
    for (const char* id : {"wa", "wb"})
      ASSERT_TRUE(WaitFor([&] { return ReadFile(coordinator_->log()).find(std::string("worker ") + id + " ready") != std::string::npos; }))
          << ReadFile(coordinator_->log()) << ReadFile(workers_[id]->log());
    // Each found the coordinator at its namespace's address and advertises its own.
    EXPECT_NE(ReadFile(workers_["wa"]->log()).find("coordinator tcp://10.231.0.1:" + std::to_string(port_)), std::string::npos)
        << ReadFile(workers_["wa"]->log());
    std::string list = Manifold("workers --coordinator " + address_ + " --token '" + token_ + "'");
    EXPECT_TRUE(std::regex_search(list, std::regex("\nwa +10\\.231\\.0\\.2:[0-9]+ +ready"))) << list;
    EXPECT_TRUE(std::regex_search(list, std::regex("\nwb +10\\.231\\.0\\.3:[0-9]+ +ready"))) << list;
  }
  std::string tag_;
};

TEST_F(NetnsClusterTest, WorkersInTheirOwnNamespacesJoinByBeacon) {
  StartNetnsFarm();
  std::string trace = tmp_.path() + "/trace.json";
  Result r = FarmBuild("--platform linux/amd64,linux/arm64 --trace " + trace, "examples/busybox-multistage");
  ASSERT_EQ(r.rc, 0) << r.out << ReadFile(coordinator_->log());
  auto slices = SlicesPerWorker(trace);
  EXPECT_GT(slices["wa"], 0);
  EXPECT_GT(slices["wb"], 0);
  EXPECT_EQ(EmbeddedDigest("examples/busybox-multistage", "linux/amd64,linux/arm64"), r.digest);
}

// A worker cut off the network (its link down) for more than twice the
// heartbeat timeout mid-RUN: the job runs on the other worker; when the
// link comes back the worker's late result is dropped (stale lease) and it
// rejoins (RELIABILITY H3).
TEST_F(NetnsClusterTest, APartitionedWorkerIsReplacedAndRejoinsOnHeal) {
  StartNetnsFarm();
  std::thread build;
  const std::string victim = BuildUntilTheStepStarts(10, build);
  ASSERT_FALSE(victim.empty());
  const std::string v = victim.substr(1), survivor = victim == "wa" ? "wb" : "wa";
  const std::string log = tmp_.path() + "/build.log";
  const std::string link = "ip netns exec " + Ns(v.c_str()) + " ip link set mfv" + v + tag_;
  std::string out;
  ASSERT_EQ(RunCommand(link + " down", &out), 0) << out;
  bool replaced = WaitFor([&] { return ReadFile(log).find("worker " + victim + " lost") != std::string::npos; });
  std::this_thread::sleep_for(std::chrono::seconds(3));  // partitioned for more than 2x the timeout
  ASSERT_EQ(RunCommand(link + " up", &out), 0) << out;
  ASSERT_TRUE(replaced) << ReadFile(log);
  build.join();
  ExpectTheStepRanOn(survivor);
  ExpectLateResultDropped(victim);
  auto ready = [&] {
    std::string l = ReadFile(coordinator_->log());
    std::size_t n = 0;
    for (std::size_t at = 0; (at = l.find("worker " + victim + " ready", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  EXPECT_TRUE(WaitFor([&] { return ready() >= 2; })) << ReadFile(coordinator_->log());
}

}  // namespace
}  // namespace manifold::testing
