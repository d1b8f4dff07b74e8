// Real containers (label needs_root): runs busybox rootfses with runc. Skips
// when not root or when runc is missing. Run from the source root (ctest's
// working directory) so tests/testdata and scripts/ resolve.
#include "worker/executor/runc_runtime.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "worker/executor/subprocess.h"

namespace manifold::worker {
namespace {

using namespace std::chrono_literals;

std::string Shell(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

class RuncRuntimeTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    char tmpl[] = "/tmp/runc_runtime_test.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    suite_dir_ = tmpl;
    int rc = 0;
    const std::string out =
        Shell("bash tests/testdata/busybox-rootfs.sh amd64 " + suite_dir_ + "/amd64", &rc);
    if (rc == 0) {
      amd64_rootfs_ = suite_dir_ + "/amd64";
    } else {
      rootfs_error_ = out;
    }
  }
  static void TearDownTestSuite() {
    if (!suite_dir_.empty()) Shell("rm -rf " + suite_dir_);
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (amd64_rootfs_.empty()) GTEST_SKIP() << "no busybox rootfs: " << rootfs_error_;
    char tmpl[] = "/tmp/runc_state.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_dir_ = tmpl;
    config_.state_dir = state_dir_;
    auto runtime = RuncRuntime::Create(config_);
    if (!runtime.ok() && runtime.error().code == "executor.runc.missing") {
      GTEST_SKIP() << runtime.error().ToString();
    }
    ASSERT_TRUE(runtime.ok()) << runtime.error().ToString();
    runtime_ = std::move(runtime).value();
    ASSERT_TRUE(runtime_->RemoveStale().ok());
  }
  void TearDown() override {
    if (!state_dir_.empty()) Shell("rm -rf " + state_dir_);
  }

  RunRequest Request(std::vector<std::string> args) {
    RunRequest r;
    r.id = "test_" + std::to_string(counter_++);
    r.spec.args = std::move(args);
    r.spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    r.spec.rootfs = amd64_rootfs_;
    r.timeout = 60s;
    return r;
  }

  RunResult MustRun(const RunRequest& r) {
    auto result = runtime_->Run(r);
    EXPECT_TRUE(result.ok()) << result.error().ToString();
    return result.ok() ? *result : RunResult{-1, "", "", {}};
  }

  std::string RuncList() {
    auto r = RunCommand({runtime_->runc_path(), "--root", state_dir_ + "/runc", "list", "-q"},
                        {"PATH=/usr/bin:/bin"}, 30s);
    return r.ok() ? r->output : "error: " + r.error().ToString();
  }

  static std::string suite_dir_;
  static std::string amd64_rootfs_;
  static std::string rootfs_error_;
  RuncConfig config_;
  std::string state_dir_;
  std::unique_ptr<RuncRuntime> runtime_;
  int counter_ = 0;
};

std::string RuncRuntimeTest::suite_dir_;
std::string RuncRuntimeTest::amd64_rootfs_;
std::string RuncRuntimeTest::rootfs_error_;

TEST_F(RuncRuntimeTest, UnameIsNative) {
  RunResult r = MustRun(Request({"uname", "-m"}));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output_tail, "x86_64\n");
  EXPECT_EQ(r.runtime_error, "");
}

// RELIABILITY D1: descriptors the worker holds without O_CLOEXEC never reach
// the container; ls sees 0, 1, 2 and its own handle on the directory.
TEST_F(RuncRuntimeTest, NoDescriptorLeaksIntoTheContainer) {
  int leaked[4];
  for (int& fd : leaked) fd = open("/etc/hostname", O_RDONLY);
  RunResult r = MustRun(Request({"ls", "/proc/self/fd"}));
  for (int fd : leaked) close(fd);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output_tail, "0\n1\n2\n3\n");
}

TEST_F(RuncRuntimeTest, NonZeroExitIsAResultWithTheOutputTail) {
  RunResult r = MustRun(Request({"sh", "-c", "echo building; echo oops >&2; exit 3"}));
  EXPECT_EQ(r.exit_code, 3);
  // runc copies the container's stdout and stderr separately, so their
  // relative order is not kept.
  EXPECT_TRUE(r.output_tail == "building\noops\n" || r.output_tail == "oops\nbuilding\n")
      << r.output_tail;
  EXPECT_EQ(RuncList(), "");
}

TEST_F(RuncRuntimeTest, OutputTailKeepsTheLastBytesAndOutputStreams) {
  config_.output_tail_bytes = 16;
  auto small = RuncRuntime::Create(config_);
  ASSERT_TRUE(small.ok());
  RunRequest req = Request({"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9; do echo line$i; done"});
  std::string streamed;
  req.on_output = [&streamed](std::string_view c) { streamed += c; };
  auto r = (*small)->Run(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output_tail, "ne7\nline8\nline9\n");  // the last 16 bytes, cut mid-line
  EXPECT_EQ(streamed.size(), 54u);
}

TEST_F(RuncRuntimeTest, TimeoutKillsAndRemovesTheContainer) {
  RunRequest req = Request({"sleep", "100"});
  req.timeout = 1s;
  const auto start = std::chrono::steady_clock::now();
  auto r = runtime_->Run(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(r.error().code, "executor.timeout");
  EXPECT_EQ(r.error().message, "step test_0 ran longer than its timeout of 1000 ms and was killed");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  EXPECT_EQ(RuncList(), "");
  EXPECT_FALSE(Exists(state_dir_ + "/bundles/test_0"));
}

// A cancelled step (its build failed, or the farm gave its lease to another
// worker) is killed while it runs, once it has started, and leaves nothing.
TEST_F(RuncRuntimeTest, CancelKillsTheRunningStepAndRemovesTheContainer) {
  RunRequest req = Request({"sh", "-c", "echo started; sleep 100"});
  std::atomic<bool> started{false};
  req.on_output = [&started](std::string_view c) {
    if (c.find("started") != std::string_view::npos) started = true;
  };
  int asked_after_start = 0;
  req.cancelled = [&] { return started && ++asked_after_start >= 2; };
  auto r = runtime_->Run(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(r.error().code, "step.cancelled");
  EXPECT_EQ(r.error().message, "step test_0 was cancelled and killed");
  EXPECT_EQ(asked_after_start, 2);
  EXPECT_EQ(RuncList(), "");
  EXPECT_FALSE(Exists(state_dir_ + "/bundles/test_0"));
  // Never asked to stop: runs to the end as before.
  RunRequest ok = Request({"sh", "-c", "sleep 0.5; echo done"});
  ok.cancelled = [] { return false; };
  EXPECT_EQ(MustRun(ok).output_tail, "done\n");
}

TEST_F(RuncRuntimeTest, NetworkNoneHasOnlyLoopback) {
  RunRequest req = Request({"cat", "/proc/net/dev"});
  req.spec.network = RunSpec::Network::kNone;
  RunResult r = MustRun(req);
  ASSERT_EQ(r.exit_code, 0) << r.output_tail;
  std::set<std::string> interfaces;
  std::istringstream lines(r.output_tail);
  std::string line;
  while (std::getline(lines, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;  // the two header lines
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    interfaces.insert(name);
  }
  EXPECT_EQ(interfaces, std::set<std::string>{"lo"});
}

TEST_F(RuncRuntimeTest, ReadonlyBindMountIsVisibleAndNotWritable) {
  const std::string host_file = state_dir_ + "/ca.pem";
  std::ofstream(host_file) << "certificate\n";
  RunRequest req =
      Request({"sh", "-c", "cat /certs/ca.pem; echo changed > /certs/ca.pem && echo wrote"});
  req.spec.mounts = {{Mount::Type::kBind, host_file, "/certs/ca.pem", true, 0}};
  RunResult r = MustRun(req);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output_tail.find("certificate\n"), std::string::npos) << r.output_tail;
  EXPECT_EQ(r.output_tail.find("wrote"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("Read-only file system"), std::string::npos) << r.output_tail;
  std::ifstream in(host_file);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "certificate\n");
  EXPECT_FALSE(Exists(amd64_rootfs_ + "/certs"));  // mount stub removed
}

TEST_F(RuncRuntimeTest, TmpfsMount) {
  RunRequest req = Request({"sh", "-c", "echo x > /scratch/f && grep ' /scratch ' /proc/mounts"});
  req.spec.mounts = {{Mount::Type::kTmpfs, "", "/scratch", false, 1 << 20}};
  RunResult r = MustRun(req);
  EXPECT_EQ(r.exit_code, 0) << r.output_tail;
  EXPECT_NE(r.output_tail.find("tmpfs /scratch tmpfs rw,nosuid,nodev"), std::string::npos)
      << r.output_tail;
}

TEST_F(RuncRuntimeTest, HostnameAndEtcFiles) {
  RunRequest req = Request({"sh", "-c", "hostname; cat /etc/hostname; grep -c stepbox /etc/hosts"});
  req.spec.hostname = "stepbox";
  RunResult r = MustRun(req);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output_tail, "stepbox\nstepbox\n1\n");
}

TEST_F(RuncRuntimeTest, RunsAsTheRequestedUser) {
  RunRequest req = Request({"sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status"});
  req.spec.uid = 1000;
  req.spec.gid = 1000;
  req.spec.additional_gids = {1000, 65534};
  RunResult r = MustRun(req);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output_tail, "1000\n1000\n1000 65534\nCapEff:\t0000000000000000\n");
}

TEST_F(RuncRuntimeTest, RootGetsDockerDefaultCapabilities) {
  RunResult r = MustRun(Request({"grep", "CapBnd", "/proc/self/status"}));
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
  // NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
  EXPECT_EQ(r.output_tail, "CapBnd:\t00000000a80425fb\n");
}

TEST_F(RuncRuntimeTest, MinimalDevAndProcSys) {
  // /dev/core (a link to /proc/kcore) exists only when the kernel has kcore.
  RunRequest req = Request({"sh", "-c",
                            "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                            "ls /dev | grep -vx core | tr '\\n' ' '; echo; "
                            "{ echo 1 > /proc/sys/kernel/domainname; } 2>/dev/null || echo ro-sys; "
                            "wc -c < /proc/timer_list"});
  RunResult r = MustRun(req);
  EXPECT_EQ(r.exit_code, 0) << r.output_tail;
  EXPECT_EQ(r.output_tail,
            "4\n"
            "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero \n"
            "ro-sys\n0\n");  // /proc/timer_list masked by /dev/null
}

TEST_F(RuncRuntimeTest, EnvAndCwd) {
  RunRequest req = Request({"sh", "-c", "echo $GREETING; pwd"});
  req.spec.env.push_back("GREETING=hello world");
  req.spec.cwd = "/tmp/../root";
  RunResult r = MustRun(req);
  EXPECT_EQ(r.output_tail, "hello world\n/root\n");
}

TEST_F(RuncRuntimeTest, PidsLimitApplies) {
  RunResult r = MustRun(Request({"cat", "/sys/fs/cgroup/pids/pids.max"}));
  if (r.exit_code != 0) GTEST_SKIP() << "no cgroup v1 pids hierarchy: " << r.output_tail;
  EXPECT_EQ(r.output_tail, "4096\n");
}

TEST_F(RuncRuntimeTest, MountStubsDoNotStayInTheRootfs) {
  MustRun(Request({"true"}));
  for (const char* p :
       {"/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}) {
    EXPECT_FALSE(Exists(amd64_rootfs_ + p)) << p;
  }
  EXPECT_TRUE(Exists(amd64_rootfs_ + "/etc/passwd"));
}

TEST_F(RuncRuntimeTest, CommandNotFoundIsARuntimeErrorResult) {
  RunResult r = MustRun(Request({"no-such-command"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.runtime_error.find("executable file not found"), std::string::npos)
      << r.runtime_error;
  EXPECT_EQ(RuncList(), "");
}

TEST_F(RuncRuntimeTest, RefusesBeforeCreatingAnything) {
  RunRequest req = Request({"true"});
  req.spec.cwd = "/proc/self/fd/7";
  auto r = runtime_->Run(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "executor.cwd.proc");

  req = Request({"true"});
  req.spec.insecure = true;
  r = runtime_->Run(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "executor.entitlement");

  req = Request({"true"});
  req.id = "../../etc";
  r = runtime_->Run(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "executor.id");
  EXPECT_EQ(Shell("ls " + state_dir_ + "/bundles"), "");
}

TEST_F(RuncRuntimeTest, InsecureWithEntitlement) {
  // Every capability the worker holds itself: a container cannot get more
  // than its runtime has (a sandboxed worker may lack some).
  const std::string own = Shell("grep CapBnd /proc/self/status");
  config_.policy.allow_insecure = true;
  auto insecure = RuncRuntime::Create(config_);
  ASSERT_TRUE(insecure.ok());
  RunRequest req = Request({"grep", "CapBnd", "/proc/self/status"});
  req.spec.insecure = true;
  auto r = (*insecure)->Run(req);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output_tail, own);
}

// RELIABILITY D7.
TEST_F(RuncRuntimeTest, ForeignPlatformWithoutEmulatorIsUnimplemented) {
  config_.binfmt_dir = state_dir_ + "/no-binfmt";
  auto runtime = RuncRuntime::Create(config_);
  ASSERT_TRUE(runtime.ok());
  RunRequest req = Request({"true"});
  req.platform = PlatformTriple{"linux", "s390x", ""};
  auto r = (*runtime)->Run(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(r.error().code, "executor.platform");
  EXPECT_EQ(r.error().message,
            "no emulator for linux/s390x on this linux/amd64 worker (register qemu-user-static "
            "with scripts/binfmt.sh)");
  req.platform = PlatformTriple{"linux", "amd64", ""};
  EXPECT_TRUE((*runtime)->Run(req).ok());
}

TEST_F(RuncRuntimeTest, Arm64UnderEmulation) {
  int rc = 0;
  const std::string binfmt = Shell("bash scripts/binfmt.sh aarch64", &rc);
  auto emulated = DetectEmulatedPlatforms();
  const bool has_arm64 =
      emulated.ok() && std::any_of(emulated->begin(), emulated->end(), [](const auto& e) {
        return e.platform.architecture == "arm64";
      });
  if (!has_arm64) GTEST_SKIP() << "binfmt registration not possible here: " << binfmt;
  const std::string rootfs = suite_dir_ + "/arm64";
  const std::string made = Shell("bash tests/testdata/busybox-rootfs.sh arm64 " + rootfs, &rc);
  if (rc != 0) GTEST_SKIP() << "no arm64 busybox: " << made;
  RunRequest req = Request({"uname", "-m"});
  req.spec.rootfs = rootfs;
  req.platform = PlatformTriple{"linux", "arm64", ""};
  RunResult r = MustRun(req);
  EXPECT_EQ(r.exit_code, 0) << r.runtime_error;
  EXPECT_EQ(r.output_tail, "aarch64\n");
}

TEST(CheckPlatformRunnableTest, NativeNeedsNoEmulator) {
  const PlatformTriple amd64{"linux", "amd64", ""};
  EXPECT_TRUE(CheckPlatformRunnable(amd64, amd64, "/nonexistent").ok());
  auto r = CheckPlatformRunnable({"linux", "arm64", ""}, amd64, "/nonexistent");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "no emulator for linux/arm64 on this linux/amd64 worker (register qemu-user-static "
            "with scripts/binfmt.sh)");
}

}  // namespace
}  // namespace manifold::worker
