#include "worker/executor/runtime_spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "worker/executor/testing/fake_runtime.h"

namespace manifold::worker {
namespace {

using nlohmann::json;

RunSpec BasicSpec() {
  RunSpec s;
  s.args = {"/bin/sh", "-c", "echo hi"};
  s.env = {"PATH=/usr/bin:/bin", "HOME=/root"};
  s.cwd = "/work";
  s.rootfs = "/var/lib/manifold/snap/1/merged";
  return s;
}

const EtcFiles kEtc{"/b/resolv.conf", "/b/hosts", "/b/hostname"};

json Build(const RunSpec& s, const ExecutorPolicy& p = {}) {
  auto spec = BuildRuntimeSpec("step_1", s, p, kEtc);
  EXPECT_TRUE(spec.ok()) << (spec.ok() ? "" : spec.error().ToString());
  return spec.ok() ? *spec : json();
}

std::vector<std::string> Destinations(const json& spec) {
  std::vector<std::string> out;
  for (const auto& m : spec["mounts"]) out.push_back(m["destination"]);
  return out;
}

const json* FindMount(const json& spec, std::string_view dest) {
  for (const auto& m : spec["mounts"]) {
    if (m["destination"] == dest) return &m;
  }
  return nullptr;
}

TEST(RuntimeSpecTest, ProcessFields) {
  RunSpec s = BasicSpec();
  s.uid = 1000;
  s.gid = 1001;
  s.additional_gids = {27, 100};
  json spec = Build(s);
  EXPECT_EQ(spec["ociVersion"], "1.0.2-dev");
  const json& p = spec["process"];
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["args"], json({"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(p["env"], json({"PATH=/usr/bin:/bin", "HOME=/root"}));
  EXPECT_EQ(p["cwd"], "/work");
  EXPECT_EQ(p["user"], json({{"uid", 1000}, {"gid", 1001}, {"additionalGids", {27, 100}}}));
  EXPECT_EQ(p["noNewPrivileges"], false);
  EXPECT_EQ(p["rlimits"],
            json::parse(R"([{"type":"RLIMIT_NOFILE","hard":1048576,"soft":1048576}])"));
  EXPECT_EQ(spec["root"], json({{"path", "/var/lib/manifold/snap/1/merged"}, {"readonly", false}}));
  EXPECT_EQ(spec["hostname"], "manifold");
}

TEST(RuntimeSpecTest, NoAdditionalGidsKeyWhenEmpty) {
  json spec = Build(BasicSpec());
  EXPECT_EQ(spec["process"]["user"], json({{"uid", 0}, {"gid", 0}}));
}

TEST(RuntimeSpecTest, DockerDefaultCapabilitiesNotInheritableOrAmbient) {
  json caps = Build(BasicSpec())["process"]["capabilities"];
  const json expected = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  EXPECT_EQ(caps["bounding"], expected);
  EXPECT_EQ(caps["effective"], expected);
  EXPECT_EQ(caps["permitted"], expected);
  EXPECT_FALSE(caps.contains("inheritable"));
  EXPECT_FALSE(caps.contains("ambient"));
}

TEST(RuntimeSpecTest, HostNetworkHasNoNetworkNamespace) {
  json spec = Build(BasicSpec());
  EXPECT_EQ(spec["linux"]["namespaces"],
            json::parse(R"([{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}])"));
}

TEST(RuntimeSpecTest, NetworkNoneAddsNetworkNamespace) {
  RunSpec s = BasicSpec();
  s.network = RunSpec::Network::kNone;
  EXPECT_EQ(Build(s)["linux"]["namespaces"],
            json::parse(R"([{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},)"
                        R"({"type":"network"}])"));
}

TEST(RuntimeSpecTest, StandardMountsInOrder) {
  json spec = Build(BasicSpec());
  EXPECT_EQ(Destinations(spec),
            (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                      "/sys", "/sys/fs/cgroup", "/etc/resolv.conf", "/etc/hosts",
                                      "/etc/hostname"}));
  EXPECT_EQ(*FindMount(spec, "/proc"),
            json::parse(R"({"destination":"/proc","type":"proc","source":"proc",)"
                        R"("options":["nosuid","noexec","nodev"]})"));
  EXPECT_EQ(*FindMount(spec, "/dev"),
            json::parse(R"({"destination":"/dev","type":"tmpfs","source":"tmpfs",)"
                        R"("options":["nosuid","strictatime","mode=755","size=65536k"]})"));
  EXPECT_EQ(*FindMount(spec, "/dev/pts"),
            json::parse(R"({"destination":"/dev/pts","type":"devpts","source":"devpts",)"
                        R"("options":["nosuid","noexec","newinstance","ptmxmode=0666",)"
                        R"("mode=0620","gid=5"]})"));
  EXPECT_EQ(*FindMount(spec, "/dev/shm"),
            json::parse(R"({"destination":"/dev/shm","type":"tmpfs","source":"shm",)"
                        R"("options":["nosuid","noexec","nodev","mode=1777","size=65536k"]})"));
  EXPECT_EQ(*FindMount(spec, "/sys"),
            json::parse(R"({"destination":"/sys","type":"sysfs","source":"sysfs",)"
                        R"("options":["nosuid","noexec","nodev","ro"]})"));
  EXPECT_EQ(*FindMount(spec, "/etc/resolv.conf"),
            json::parse(R"({"destination":"/etc/resolv.conf","type":"bind",)"
                        R"("source":"/b/resolv.conf",)"
                        R"("options":["rbind","ro","nosuid","nodev","noexec"]})"));
  EXPECT_EQ((*FindMount(spec, "/etc/hosts"))["source"], "/b/hosts");
  EXPECT_EQ((*FindMount(spec, "/etc/hostname"))["source"], "/b/hostname");
}

TEST(RuntimeSpecTest, MinimalDevices) {
  json devices = Build(BasicSpec())["linux"]["devices"];
  ASSERT_EQ(devices.size(), 6u);
  std::vector<std::string> paths;
  for (const auto& d : devices) {
    paths.push_back(d["path"]);
    EXPECT_EQ(d["type"], "c");
    EXPECT_EQ(d["fileMode"], 0666);
    EXPECT_EQ(d["uid"], 0);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                             "/dev/urandom", "/dev/tty"}));
  EXPECT_EQ(devices[0], json::parse(R"({"path":"/dev/null","type":"c","major":1,"minor":3,)"
                                    R"("fileMode":438,"uid":0,"gid":0})"));
  json rules = Build(BasicSpec())["linux"]["resources"]["devices"];
  EXPECT_EQ(rules[0], json::parse(R"({"allow":false,"access":"rwm"})"));
  EXPECT_EQ(rules.back(), json::parse(R"({"allow":true,"type":"c","major":136,"access":"rwm"})"));
}

TEST(RuntimeSpecTest, MaskedAndReadonlyPathsAsDocker) {
  json linux = Build(BasicSpec())["linux"];
  EXPECT_EQ(
      linux["maskedPaths"],
      json({"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
            "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}));
  EXPECT_EQ(linux["readonlyPaths"],
            json({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
}

TEST(RuntimeSpecTest, CgroupLimits) {
  json linux = Build(BasicSpec())["linux"];
  EXPECT_EQ(linux["cgroupsPath"], "/manifold/step_1");
  EXPECT_EQ(linux["resources"]["pids"], json({{"limit", 4096}}));
  EXPECT_FALSE(linux["resources"].contains("memory"));

  ExecutorPolicy p;
  p.pids_limit = 0;
  p.memory_limit_bytes = 512 << 20;
  p.cgroup_parent = "";
  linux = Build(BasicSpec(), p)["linux"];
  EXPECT_FALSE(linux.contains("cgroupsPath"));
  EXPECT_FALSE(linux["resources"].contains("pids"));
  EXPECT_EQ(linux["resources"]["memory"], json({{"limit", 512 << 20}}));
}

TEST(RuntimeSpecTest, UserMountsSortedByDepthAfterStandardOnes) {
  RunSpec s = BasicSpec();
  s.mounts = {
      {Mount::Type::kBind, "/host/ca.pem", "/etc/ssl/certs/ca.pem", true, 0},
      {Mount::Type::kTmpfs, "", "/tmp", false, 1 << 20},
      {Mount::Type::kBind, "/cache/1", "/root/.cache/../.npm/", false, 0},
  };
  json spec = Build(s);
  std::vector<std::string> dests = Destinations(spec);
  ASSERT_EQ(dests.size(), 13u);
  EXPECT_EQ(std::vector<std::string>(dests.begin() + 10, dests.end()),
            (std::vector<std::string>{"/tmp", "/root/.npm", "/etc/ssl/certs/ca.pem"}));
  EXPECT_EQ(*FindMount(spec, "/tmp"),
            json::parse(R"({"destination":"/tmp","type":"tmpfs","source":"tmpfs",)"
                        R"("options":["nosuid","nodev","mode=1777","size=1048576"]})"));
  EXPECT_EQ(*FindMount(spec, "/etc/ssl/certs/ca.pem"),
            json::parse(R"({"destination":"/etc/ssl/certs/ca.pem","type":"bind",)"
                        R"("source":"/host/ca.pem","options":["rbind","ro"]})"));
  EXPECT_EQ((*FindMount(spec, "/root/.npm"))["options"], json({"rbind", "rw"}));
}

TEST(RuntimeSpecTest, UserMountReplacesGeneratedEtcFile) {
  RunSpec s = BasicSpec();
  s.mounts = {{Mount::Type::kBind, "/my/resolv.conf", "/etc/resolv.conf", true, 0}};
  json spec = Build(s);
  int count = 0;
  for (const auto& m : spec["mounts"]) count += m["destination"] == "/etc/resolv.conf";
  EXPECT_EQ(count, 1);
  EXPECT_EQ((*FindMount(spec, "/etc/resolv.conf"))["source"], "/my/resolv.conf");
}

TEST(RuntimeSpecTest, HostnameAndHostsFile) {
  RunSpec s = BasicSpec();
  s.hostname = "builder-7";
  EXPECT_EQ(Build(s)["hostname"], "builder-7");
  EXPECT_EQ(HostsFileContent("builder-7"),
            "127.0.0.1\tlocalhost builder-7\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n");
  s.hostname = "bad host";
  auto spec = BuildRuntimeSpec("step_1", s, {}, kEtc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(spec.error().code, "executor.hostname");
  EXPECT_EQ(spec.error().message, "invalid hostname \"bad host\"");
}

TEST(RuntimeSpecTest, CwdIsCleaned) {
  RunSpec s = BasicSpec();
  s.cwd = "/work/./src/../build//";
  EXPECT_EQ(Build(s)["process"]["cwd"], "/work/build");
}

struct CwdCase {
  const char* cwd;
  ErrorKind kind;
  const char* code;
  const char* message;
};

class RuntimeSpecCwdTest : public testing::TestWithParam<CwdCase> {};

TEST_P(RuntimeSpecCwdTest, Refused) {
  RunSpec s = BasicSpec();
  s.cwd = GetParam().cwd;
  auto spec = BuildRuntimeSpec("step_1", s, {}, kEtc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().kind, GetParam().kind);
  EXPECT_EQ(spec.error().code, GetParam().code);
  EXPECT_EQ(spec.error().message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RuntimeSpecCwdTest,
    testing::Values(CwdCase{"/proc/self/fd/7", ErrorKind::kSecurity, "executor.cwd.proc",
                            "working directory \"/proc/self/fd/7\" is inside /proc"},
                    CwdCase{"/proc/1/cwd", ErrorKind::kSecurity, "executor.cwd.proc",
                            "working directory \"/proc/1/cwd\" is inside /proc"},
                    CwdCase{"/proc", ErrorKind::kSecurity, "executor.cwd.proc",
                            "working directory \"/proc\" is inside /proc"},
                    CwdCase{"/tmp/../proc/./self/cwd", ErrorKind::kSecurity, "executor.cwd.proc",
                            "working directory \"/proc/self/cwd\" is inside /proc"},
                    CwdCase{"/../../proc/self/fd/3", ErrorKind::kSecurity, "executor.cwd.proc",
                            "working directory \"/proc/self/fd/3\" is inside /proc"},
                    CwdCase{"work", ErrorKind::kInvalidInput, "executor.cwd.relative",
                            "working directory \"work\" is not an absolute path"},
                    CwdCase{"", ErrorKind::kInvalidInput, "executor.cwd.relative",
                            "working directory \"\" is not an absolute path"}));

TEST(RuntimeSpecTest, ProcessesDirectoryNotInsideProcIsFine) {
  RunSpec s = BasicSpec();
  s.cwd = "/processes";
  EXPECT_EQ(Build(s)["process"]["cwd"], "/processes");
}

TEST(RuntimeSpecTest, InsecureWithoutEntitlementRefused) {
  RunSpec s = BasicSpec();
  s.insecure = true;
  auto spec = BuildRuntimeSpec("step_1", s, ExecutorPolicy{}, kEtc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(spec.error().code, "executor.entitlement");
  EXPECT_EQ(spec.error().message,
            "security=insecure requested but this worker does not allow security.insecure");
}

TEST(RuntimeSpecTest, InsecureWithEntitlementGetsAllCapabilitiesAndNoMasks) {
  RunSpec s = BasicSpec();
  s.insecure = true;
  ExecutorPolicy p;
  p.allow_insecure = true;
  json spec = Build(s, p);
  EXPECT_EQ(spec["process"]["capabilities"]["bounding"].size(), 41u);
  EXPECT_EQ(spec["process"]["capabilities"]["effective"][21], "CAP_SYS_ADMIN");
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));
  EXPECT_EQ(spec["linux"]["resources"]["devices"],
            json::parse(R"([{"allow":true,"access":"rwm"}])"));
  EXPECT_EQ((*FindMount(spec, "/sys"))["options"], json({"nosuid", "noexec", "nodev", "rw"}));
}

TEST(RuntimeSpecTest, AllowInsecureAloneChangesNothing) {
  ExecutorPolicy p;
  p.allow_insecure = true;
  EXPECT_EQ(Build(BasicSpec(), p), Build(BasicSpec()));
}

class RuntimeSpecIdTest : public testing::TestWithParam<std::string> {};

TEST_P(RuntimeSpecIdTest, Refused) {
  auto spec = BuildRuntimeSpec(GetParam(), BasicSpec(), {}, kEtc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(spec.error().code, "executor.id");
}

INSTANTIATE_TEST_SUITE_P(Cases, RuntimeSpecIdTest,
                         testing::Values("", "a/../b", "..", "a.b", "step 1", "x\ny",
                                         std::string(65, 'a'), std::string("a\0b", 3)));

TEST(RuntimeSpecTest, IdErrorMessage) {
  auto r = ValidateContainerId("a/../b");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "invalid container id \"a/../b\": want [A-Za-z0-9_-]{1,64}");
  EXPECT_TRUE(ValidateContainerId(std::string(64, 'Z')).ok());
  EXPECT_TRUE(ValidateContainerId("build-1_stage-2_step-3").ok());
}

TEST(RuntimeSpecTest, MountValidation) {
  struct Case {
    Mount mount;
    ErrorKind kind;
    const char* code;
    const char* message;
  };
  const Case cases[] = {
      {{Mount::Type::kBind, "/h", "/proc/sys/kernel", false, 0},
       ErrorKind::kSecurity,
       "executor.mount.proc",
       "mount destination \"/proc/sys/kernel\" is inside /proc"},
      {{Mount::Type::kBind, "/h", "/x/../proc", false, 0},
       ErrorKind::kSecurity,
       "executor.mount.proc",
       "mount destination \"/proc\" is inside /proc"},
      {{Mount::Type::kBind, "/h", "rel/dir", false, 0},
       ErrorKind::kInvalidInput,
       "executor.mount.destination",
       "mount destination \"rel/dir\" is not an absolute path"},
      {{Mount::Type::kTmpfs, "", "/a/..", false, 0},
       ErrorKind::kInvalidInput,
       "executor.mount.destination",
       "cannot mount over the container's root"},
      {{Mount::Type::kBind, "relative/src", "/mnt", false, 0},
       ErrorKind::kInvalidInput,
       "executor.mount.source",
       "bind mount source \"relative/src\" is not an absolute host path"},
  };
  for (const Case& c : cases) {
    RunSpec s = BasicSpec();
    s.mounts = {c.mount};
    auto spec = BuildRuntimeSpec("step_1", s, {}, kEtc);
    ASSERT_FALSE(spec.ok()) << c.message;
    EXPECT_EQ(spec.error().kind, c.kind) << c.message;
    EXPECT_EQ(spec.error().code, c.code);
    EXPECT_EQ(spec.error().message, c.message);
  }
}

TEST(RuntimeSpecTest, ArgsEnvAndRootfsValidation) {
  RunSpec s = BasicSpec();
  s.args = {};
  EXPECT_EQ(BuildRuntimeSpec("a", s, {}, kEtc).error().code, "executor.args");
  s = BasicSpec();
  s.env = {"=x"};
  auto e = BuildRuntimeSpec("a", s, {}, kEtc);
  EXPECT_EQ(e.error().code, "executor.env");
  EXPECT_EQ(e.error().message, "environment entry \"=x\" is not KEY=value");
  s = BasicSpec();
  s.rootfs = "rootfs";
  EXPECT_EQ(BuildRuntimeSpec("a", s, {}, kEtc).error().code, "executor.rootfs");
  s = BasicSpec();
  s.readonly_rootfs = true;
  EXPECT_EQ(Build(s)["root"]["readonly"], true);
}

TEST(FakeRuntimeTest, RecordsSpecsAndFailsOnCommand) {
  FakeRuntime fake;
  fake.FailOnCommand("exit 3", 3, "boom\n");
  fake.ErrorOnCommand("sleep", MakeError(ErrorKind::kResourceExhausted, "executor.timeout", "t"));
  RunRequest ok{"s1", BasicSpec(), {}, {}, {}, true};
  std::string seen;
  ok.on_output = [&seen](std::string_view c) { seen += c; };
  ok.spec.args = {"/bin/sh", "-c", "exit 3"};
  auto r = fake.Run(ok);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output_tail, "boom\n");
  EXPECT_EQ(seen, "boom\n");
  ok.spec.args = {"sleep", "100"};
  EXPECT_EQ(fake.Run(ok).error().code, "executor.timeout");
  ok.spec.args = {"true"};
  EXPECT_EQ(fake.Run(ok)->exit_code, 0);
  ASSERT_EQ(fake.runs().size(), 3u);
  EXPECT_EQ(fake.runs()[2].spec["process"]["args"], json({"true"}));
  EXPECT_EQ((*FindMount(fake.runs()[2].spec, "/etc/hosts"))["source"], "/fake/bundles/s1/hosts");
}

TEST(FakeRuntimeTest, ChecksEntitlementToo) {
  FakeRuntime fake;
  RunRequest r{"s1", BasicSpec(), {}, {}, {}, true};
  r.spec.insecure = true;
  EXPECT_EQ(fake.Run(r).error().code, "executor.entitlement");
  EXPECT_TRUE(fake.runs().empty());
}

}  // namespace
}  // namespace manifold::worker
