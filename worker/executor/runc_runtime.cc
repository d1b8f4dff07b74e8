#include "worker/executor/runc_runtime.h"

#include <sys/prctl.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/base/log.h"
#include "common/fs/root_dir.h"
#include "worker/executor/mount_stubs.h"
#include "worker/executor/subprocess.h"

namespace manifold::worker {
namespace {

namespace stdfs = std::filesystem;
using Clock = Subprocess::Clock;

// runc's own environment: nothing of the worker's (tokens, proxies) leaks
// into it; the container's environment comes from the spec alone.
const std::vector<std::string>& RuncEnv() {
  static const std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  return env;
}

constexpr std::chrono::milliseconds kAdminTimeout{30000};  // runc kill/delete/list/--version
constexpr std::size_t kMaxResolvConfBytes = 64 * 1024;
constexpr std::size_t kMaxRuncLogBytes = 64 * 1024;

Error IoError(std::string_view what, int err) {
  return MakeError(ErrorKind::kInternal, "executor.bundle",
                   std::string(what) + ": " + std::strerror(err));
}

Expected<void> WriteFile(const std::string& path, std::string_view content) {
  fs::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return IoError("creating " + path, errno);
  while (!content.empty()) {
    const ssize_t n = write(fd.get(), content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("writing " + path, errno);
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  if (fchmod(fd.get(), 0644) != 0) return IoError("chmod " + path, errno);
  return Ok();
}

// Reads at most `max_bytes`; a missing file reads as empty.
std::string ReadSmallFile(const std::string& path, std::size_t max_bytes) {
  fs::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  if (!fd.valid()) return out;
  char buf[8192];
  while (out.size() < max_bytes) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  if (out.size() > max_bytes) out.resize(max_bytes);
  return out;
}

// runc --log-format json: one object per line; keep the error messages.
std::string RuncLogErrors(const std::string& log) {
  std::string errors;
  std::size_t pos = 0;
  while (pos < log.size()) {
    std::size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    const auto entry = nlohmann::json::parse(log.begin() + static_cast<std::ptrdiff_t>(pos),
                                             log.begin() + static_cast<std::ptrdiff_t>(end),
                                             nullptr, /*allow_exceptions=*/false);
    pos = end + 1;
    if (!entry.is_object()) continue;
    const std::string level = entry.value("level", "");
    if (level != "error" && level != "fatal") continue;
    if (!errors.empty()) errors += '\n';
    errors += entry.value("msg", "");
  }
  return errors;
}

bool HasEffectiveCapability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1U << (cap % 32))) != 0;
}

// The container's RLIMIT_NOFILE can exceed the worker's hard limit only if
// the worker may raise it for runc (CAP_SYS_RESOURCE), and never fs.nr_open.
std::uint64_t AchievableNofile(std::uint64_t wanted) {
  std::uint64_t limit = wanted;
  const std::string nr_open = ReadSmallFile("/proc/sys/fs/nr_open", 64);
  if (const std::uint64_t n = std::strtoull(nr_open.c_str(), nullptr, 10); n > 0) {
    limit = std::min(limit, n);
  }
  struct rlimit own {};
  if (!HasEffectiveCapability(CAP_SYS_RESOURCE) && getrlimit(RLIMIT_NOFILE, &own) == 0 &&
      own.rlim_max != RLIM_INFINITY) {
    limit = std::min<std::uint64_t>(limit, own.rlim_max);
  }
  return limit;
}

Expected<void> MakePrivateDir(const std::string& path) {
  std::error_code ec;
  stdfs::create_directories(path, ec);
  if (ec) return IoError("creating " + path, ec.value());
  if (chmod(path.c_str(), 0700) != 0) return IoError("chmod " + path, errno);
  return Ok();
}

// Removes a bundle directory on scope exit.
class BundleDir {
 public:
  explicit BundleDir(std::string path) : path_(std::move(path)) {}
  BundleDir(const BundleDir&) = delete;
  BundleDir& operator=(const BundleDir&) = delete;
  ~BundleDir() {
    std::error_code ec;
    stdfs::remove_all(path_, ec);
    if (ec) MF_LOG_WARN("executor: removing bundle {}: {}", path_, ec.message());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

// `runc delete -f` on scope exit: whatever happened, the container is gone.
class ContainerGuard {
 public:
  ContainerGuard(const RuncRuntime& runtime, std::string id)
      : runtime_(runtime), id_(std::move(id)) {}
  ContainerGuard(const ContainerGuard&) = delete;
  ContainerGuard& operator=(const ContainerGuard&) = delete;
  ~ContainerGuard() { runtime_.DeleteContainer(id_); }

 private:
  const RuncRuntime& runtime_;
  std::string id_;
};

Expected<void> CheckPlatformRunnable(const PlatformTriple& platform, const PlatformTriple& native,
                                     std::string_view binfmt_dir) {
  if (platform == native) return Ok();
  MF_TRY(emulated, DetectEmulatedPlatforms(binfmt_dir));
  for (const EmulatedPlatform& e : emulated) {
    // arm/v7 emulation also runs v6 and v5 binaries; match on architecture
    // and accept an emulator whose variant is at least the requested one.
    if (e.platform.os == platform.os && e.platform.architecture == platform.architecture &&
        (platform.variant.empty() || e.platform.variant.empty() ||
         platform.variant <= e.platform.variant)) {
      return Ok();
    }
  }
  return MakeError(ErrorKind::kUnimplemented, "executor.platform",
                   "no emulator for " + platform.ToString() + " on this " + native.ToString() +
                       " worker (register qemu-user-static with scripts/binfmt.sh)");
}

RuncRuntime::RuncRuntime(RuncConfig config, std::string runc_path, RuncVersion version,
                         PlatformTriple native)
    : config_(std::move(config)),
      runc_path_(std::move(runc_path)),
      version_(std::move(version)),
      native_(std::move(native)) {}

Expected<std::unique_ptr<RuncRuntime>> RuncRuntime::Create(RuncConfig config) {
  if (config.state_dir.empty() || config.state_dir[0] != '/') {
    return MakeError(ErrorKind::kInvalidInput, "executor.state_dir",
                     "state dir \"" + config.state_dir + "\" is not an absolute path");
  }
  const char* path_env = std::getenv("PATH");
  MF_TRY(runc, FindRunc(config.runc_path, path_env ? path_env : ""));
  MF_TRY_VOID(CheckRuncPermissions(runc));
  MF_TRY(out, RunCommand({runc, "--version"}, RuncEnv(), kAdminTimeout));
  MF_TRY(version, ParseRuncVersion(out.output).With("checking " + runc));
  MF_TRY_VOID(CheckRuncVersion(version).With("checking " + runc));
  MF_TRY(native, DetectNativePlatform());
  if (!config.policy.capability_bounding_set) {
    std::uint64_t set = 0;
    for (int cap = 0; cap < 64; ++cap)
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) set |= std::uint64_t{1} << cap;
    config.policy.capability_bounding_set = set;
  }
  const std::uint64_t nofile = AchievableNofile(config.policy.nofile_limit);
  if (nofile != config.policy.nofile_limit) {
    MF_LOG_INFO(
        "executor: RLIMIT_NOFILE for steps lowered from {} to {} (no CAP_SYS_RESOURCE "
        "or fs.nr_open is lower)",
        config.policy.nofile_limit, nofile);
    config.policy.nofile_limit = nofile;
  }
  MF_TRY_VOID(MakePrivateDir(config.state_dir + "/runc"));
  MF_TRY_VOID(MakePrivateDir(config.state_dir + "/bundles"));
  return std::unique_ptr<RuncRuntime>(
      new RuncRuntime(std::move(config), std::move(runc), std::move(version), std::move(native)));
}

std::vector<std::string> RuncRuntime::RuncArgs(std::initializer_list<std::string_view> args) const {
  std::vector<std::string> argv = {runc_path_, "--root", config_.state_dir + "/runc"};
  if (config_.systemd_cgroup) argv.emplace_back("--systemd-cgroup");
  for (std::string_view a : args) argv.emplace_back(a);
  return argv;
}

std::string RuncRuntime::BundlePath(std::string_view id) const {
  return config_.state_dir + "/bundles/" + std::string(id);
}

void RuncRuntime::DeleteContainer(std::string_view id) const {
  auto r = RunCommand(RuncArgs({"delete", "-f", id}), RuncEnv(), kAdminTimeout);
  if (!r.ok()) {
    MF_LOG_WARN("executor: runc delete -f {}: {}", id, r.error().ToString());
  } else if (r->exit_code != 0 && r->output.find("does not exist") == std::string::npos) {
    MF_LOG_WARN("executor: runc delete -f {} exited {}: {}", id, r->exit_code, r->output);
  }
}

Expected<RunResult> RuncRuntime::Run(const RunRequest& request) {
  const auto started = Clock::now();
  // The id names a directory and a runc container: check it before either.
  MF_TRY_VOID(ValidateContainerId(request.id));
  if (request.platform) {
    MF_TRY_VOID(CheckPlatformRunnable(*request.platform, native_, config_.binfmt_dir));
  }
  const std::string bundle_path = BundlePath(request.id);
  const EtcFiles etc{bundle_path + "/resolv.conf", bundle_path + "/hosts",
                     bundle_path + "/hostname"};
  MF_TRY(spec, BuildRuntimeSpec(request.id, request.spec, config_.policy, etc));
  const std::string hostname = spec["hostname"].get<std::string>();

  struct stat root_st {};
  if (stat(request.spec.rootfs.c_str(), &root_st) != 0 || !S_ISDIR(root_st.st_mode)) {
    return MakeError(ErrorKind::kInvalidInput, "executor.rootfs",
                     "rootfs " + request.spec.rootfs + " is not a directory");
  }
  std::optional<fs::RootDir> root;
  std::optional<MountStubs> stubs;
  if (request.remove_mount_stubs) {
    MF_TRY(opened, fs::RootDir::Open(request.spec.rootfs));
    std::vector<std::string> destinations;
    for (const auto& m : spec["mounts"])
      destinations.push_back(m["destination"].get<std::string>());
    MF_TRY(recorded, MountStubs::Record(opened, destinations));
    root.emplace(std::move(opened));
    stubs.emplace(std::move(recorded));
  }

  // A worker that crashed mid-step may have left this id behind.
  std::error_code ec;
  if (stdfs::exists(bundle_path, ec)) {
    DeleteContainer(request.id);
    stdfs::remove_all(bundle_path, ec);
  }
  if (mkdir(bundle_path.c_str(), 0700) != 0) return IoError("creating " + bundle_path, errno);
  std::optional<RunResult> result;
  {
    BundleDir bundle(bundle_path);
    MF_TRY_VOID(
        WriteFile(etc.resolv_conf, ReadSmallFile(config_.host_resolv_conf, kMaxResolvConfBytes)));
    MF_TRY_VOID(WriteFile(etc.hosts, HostsFileContent(hostname)));
    MF_TRY_VOID(WriteFile(etc.hostname, hostname + "\n"));
    MF_TRY_VOID(WriteFile(bundle_path + "/config.json", spec.dump(2)));

    const std::string log_path = bundle_path + "/runc.log";
    OutputTail tail(config_.output_tail_bytes);
    const OutputSink sink = [&tail, &request](std::string_view chunk) {
      tail.Append(chunk);
      if (request.on_output) request.on_output(chunk);
    };
    std::optional<int> status;
    bool timed_out = false;
    bool cancelled = false;
    {
      ContainerGuard container(*this, request.id);
      MF_TRY(proc, Subprocess::Start(RuncArgs({"--log", log_path, "--log-format", "json", "run",
                                               "--bundle", bundle_path, request.id}),
                                     RuncEnv(), SpawnOptions{config_.policy.nofile_limit}));
      const auto deadline =
          request.timeout.count() > 0 ? started + request.timeout : Clock::time_point::max();
      // In slices when the step may be cancelled, asking between them.
      while (true) {
        auto until = deadline;
        if (request.cancelled) until = std::min(deadline, Clock::now() + std::chrono::milliseconds(200));
        MF_TRY(waited, proc.Wait(until, sink));
        status = waited;
        if (status || until == deadline) break;
        if (request.cancelled()) {
          cancelled = true;
          break;
        }
      }
      if (!status) {
        timed_out = !cancelled;
        auto killed = RunCommand(RuncArgs({"kill", request.id, "KILL"}), RuncEnv(), kAdminTimeout);
        if (!killed.ok())
          MF_LOG_WARN("executor: runc kill {}: {}", request.id, killed.error().ToString());
        MF_TRY(after_kill, proc.Wait(Clock::now() + config_.kill_grace, sink));
        if (!after_kill) {
          proc.Kill();
          MF_TRY_VOID(proc.Wait(Clock::time_point::max(), sink));
        }
      }
    }  // runc delete -f
    if (stubs) {
      auto removed = stubs->Remove(*root);
      if (!removed.ok()) {
        MF_LOG_WARN("executor: removing mount stubs of {}: {}", request.id,
                    removed.error().ToString());
      }
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    if (cancelled)
      return MakeError(ErrorKind::kInternal, "step.cancelled", "step " + request.id + " was cancelled and killed");
    if (timed_out) {
      Error e = MakeError(ErrorKind::kResourceExhausted, "executor.timeout",
                          "step " + request.id + " ran longer than its timeout of " +
                              std::to_string(request.timeout.count()) + " ms and was killed");
      e.detail = std::move(tail).Take();
      return e;
    }
    result = RunResult{*status, std::move(tail).Take(),
                       RuncLogErrors(ReadSmallFile(log_path, kMaxRuncLogBytes)), elapsed};
  }  // bundle removed
  return *std::move(result);
}

Expected<void> RuncRuntime::RemoveStale() {
  MF_TRY(listed, RunCommand(RuncArgs({"list", "-q"}), RuncEnv(), kAdminTimeout));
  if (listed.exit_code != 0) {
    return MakeError(ErrorKind::kInternal, "executor.runc.list",
                     "runc list exited " + std::to_string(listed.exit_code) + ": " + listed.output);
  }
  std::size_t pos = 0;
  while (pos < listed.output.size()) {
    std::size_t end = listed.output.find('\n', pos);
    if (end == std::string::npos) end = listed.output.size();
    const std::string id = listed.output.substr(pos, end - pos);
    pos = end + 1;
    if (id.empty() || !ValidateContainerId(id).ok()) continue;
    MF_LOG_INFO("executor: removing stale container {}", id);
    DeleteContainer(id);
  }
  std::error_code ec;
  const std::string bundles = config_.state_dir + "/bundles";
  for (stdfs::directory_iterator it(bundles, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm_ec;
    stdfs::remove_all(it->path(), rm_ec);
    if (rm_ec) return IoError("removing " + it->path().string(), rm_ec.value());
  }
  if (ec) return IoError("listing " + bundles, ec.value());
  return Ok();
}

}  // namespace manifold::worker
