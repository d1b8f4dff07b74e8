#include "worker/executor/runtime_spec.h"

#include "common/fs/path.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace manifold::worker {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxIdBytes = 64;
constexpr std::size_t kMaxHostnameBytes = 63;

struct DeviceNode {
  const char* path;
  int major;
  int minor;
};

// The minimal /dev of Docker and runc (null, zero, full, random, urandom, tty);
// /dev/ptmx, /dev/fd and the std* links are made by runc itself.
constexpr DeviceNode kDevices[] = {
    {"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

bool IsInProc(std::string_view clean_abs) {
  return clean_abs == "/proc" || clean_abs.substr(0, 6) == "/proc/";
}

json MountJson(std::string_view destination, std::string_view type, std::string_view source,
               std::vector<std::string> options) {
  return json{{"destination", destination},
              {"type", type},
              {"source", source},
              {"options", std::move(options)}};
}

Expected<void> ValidateMount(const Mount& m, std::string* clean_destination) {
  if (m.destination.empty() || m.destination[0] != '/' || HasNul(m.destination)) {
    return MakeError(ErrorKind::kInvalidInput, "executor.mount.destination",
                     "mount destination \"" + m.destination + "\" is not an absolute path");
  }
  std::string dest = fs::CleanRootedPath(m.destination);
  if (dest == "/") {
    return MakeError(ErrorKind::kInvalidInput, "executor.mount.destination",
                     "cannot mount over the container's root");
  }
  if (IsInProc(dest)) {
    return MakeError(ErrorKind::kSecurity, "executor.mount.proc",
                     "mount destination \"" + dest + "\" is inside /proc");
  }
  if (m.type == Mount::Type::kBind &&
      (m.source.empty() || m.source[0] != '/' || HasNul(m.source))) {
    return MakeError(ErrorKind::kInvalidInput, "executor.mount.source",
                     "bind mount source \"" + m.source + "\" is not an absolute host path");
  }
  *clean_destination = std::move(dest);
  return Ok();
}

std::size_t Depth(std::string_view clean_abs) {
  return static_cast<std::size_t>(std::count(clean_abs.begin(), clean_abs.end(), '/'));
}

json DeviceCgroupRules(bool insecure) {
  if (insecure) return json::array({json{{"allow", true}, {"access", "rwm"}}});
  // Docker's default device cgroup: deny all, allow mknod of any node (the
  // node is useless without read/write access), then the minimal /dev plus
  // ptmx and the pts devices.
  json rules = json::array({json{{"allow", false}, {"access", "rwm"}},
                            json{{"allow", true}, {"type", "c"}, {"access", "m"}},
                            json{{"allow", true}, {"type", "b"}, {"access", "m"}}});
  for (const DeviceNode& d : kDevices) {
    rules.push_back(json{
        {"allow", true}, {"type", "c"}, {"major", d.major}, {"minor", d.minor}, {"access", "rwm"}});
  }
  rules.push_back(
      json{{"allow", true}, {"type", "c"}, {"major", 5}, {"minor", 2}, {"access", "rwm"}});
  rules.push_back(json{{"allow", true}, {"type", "c"}, {"major", 136}, {"access", "rwm"}});
  return rules;
}

}  // namespace

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE",
  };
  return caps;
}

const std::vector<std::string>& AllCapabilities() {
  // capability(7) numbers 0..40, in order.
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",
      "CAP_DAC_OVERRIDE",
      "CAP_DAC_READ_SEARCH",
      "CAP_FOWNER",
      "CAP_FSETID",
      "CAP_KILL",
      "CAP_SETGID",
      "CAP_SETUID",
      "CAP_SETPCAP",
      "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST",
      "CAP_NET_ADMIN",
      "CAP_NET_RAW",
      "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",
      "CAP_SYS_MODULE",
      "CAP_SYS_RAWIO",
      "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",
      "CAP_SYS_ADMIN",
      "CAP_SYS_BOOT",
      "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",
      "CAP_SYS_TTY_CONFIG",
      "CAP_MKNOD",
      "CAP_LEASE",
      "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",
      "CAP_SETFCAP",
      "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN",
      "CAP_SYSLOG",
      "CAP_WAKE_ALARM",
      "CAP_BLOCK_SUSPEND",
      "CAP_AUDIT_READ",
      "CAP_PERFMON",
      "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE",
  };
  return caps;
}

const std::vector<std::string>& DefaultMaskedPaths() {
  static const std::vector<std::string> paths = {
      "/proc/asound",     "/proc/acpi",        "/proc/interrupts",
      "/proc/kcore",      "/proc/keys",        "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/proc/scsi",       "/sys/firmware",     "/sys/devices/virtual/powercap",
  };
  return paths;
}

const std::vector<std::string>& DefaultReadonlyPaths() {
  static const std::vector<std::string> paths = {
      "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
  };
  return paths;
}

Expected<void> ValidateContainerId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= kMaxIdBytes;
  for (char c : id) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  }
  if (ok) return Ok();
  std::string shown(id.substr(0, kMaxIdBytes));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return MakeError(ErrorKind::kSecurity, "executor.id",
                   "invalid container id \"" + shown + "\": want [A-Za-z0-9_-]{1,64}");
}

Expected<std::string> ValidateCwd(std::string_view cwd) {
  if (cwd.empty() || cwd[0] != '/' || HasNul(cwd)) {
    return MakeError(ErrorKind::kInvalidInput, "executor.cwd.relative",
                     "working directory \"" + std::string(cwd) + "\" is not an absolute path");
  }
  std::string clean = fs::CleanRootedPath(cwd);
  // CVE-2024-21626: a cwd under /proc (/proc/self/fd/N) can reach a host fd
  // that leaked into runc init.
  if (IsInProc(clean)) {
    return MakeError(ErrorKind::kSecurity, "executor.cwd.proc",
                     "working directory \"" + clean + "\" is inside /proc");
  }
  return clean;
}

std::string HostsFileContent(std::string_view hostname) {
  std::string h(hostname.empty() ? kDefaultHostname : hostname);
  return "127.0.0.1\tlocalhost " + h +
         "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n";
}

Expected<json> BuildRuntimeSpec(std::string_view id, const RunSpec& spec,
                                const ExecutorPolicy& policy, const EtcFiles& etc) {
  MF_TRY_VOID(ValidateContainerId(id));
  // Validate at use (CVE-2024-23653): the planner refuses too, but a job that
  // reaches a worker by any other path must not get privileges it lacks.
  if (spec.insecure && !policy.allow_insecure) {
    return MakeError(ErrorKind::kSecurity, "executor.entitlement",
                     "security=insecure requested but this worker does not allow "
                     "security.insecure");
  }
  MF_TRY(cwd, ValidateCwd(spec.cwd));
  if (spec.args.empty() || spec.args[0].empty()) {
    return MakeError(ErrorKind::kInvalidInput, "executor.args", "empty command");
  }
  for (const std::string& a : spec.args) {
    if (HasNul(a)) {
      return MakeError(ErrorKind::kInvalidInput, "executor.args",
                       "command argument contains a NUL byte");
    }
  }
  for (const std::string& e : spec.env) {
    const std::size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0 || HasNul(e)) {
      std::string shown = e.substr(0, std::min<std::size_t>(e.find('\0'), 64));
      return MakeError(ErrorKind::kInvalidInput, "executor.env",
                       "environment entry \"" + shown + "\" is not KEY=value");
    }
  }
  const std::string hostname(spec.hostname.empty() ? kDefaultHostname : spec.hostname);
  bool hostname_ok =
      hostname.size() <= kMaxHostnameBytes && hostname.front() != '-' && hostname.front() != '.';
  for (char c : hostname) {
    hostname_ok = hostname_ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '-' || c == '.');
  }
  if (!hostname_ok) {
    return MakeError(ErrorKind::kInvalidInput, "executor.hostname",
                     "invalid hostname \"" + hostname.substr(0, 64) + "\"");
  }
  if (spec.rootfs.empty() || spec.rootfs[0] != '/' || HasNul(spec.rootfs)) {
    return MakeError(ErrorKind::kInvalidInput, "executor.rootfs",
                     "rootfs \"" + spec.rootfs + "\" is not an absolute host path");
  }

  // User mounts: validated, then stably sorted by depth so /a is mounted
  // before /a/b whatever the order given (Docker sorts the same way).
  std::vector<std::pair<std::string, const Mount*>> user_mounts;
  for (const Mount& m : spec.mounts) {
    std::string dest;
    MF_TRY_VOID(ValidateMount(m, &dest));
    user_mounts.emplace_back(std::move(dest), &m);
  }
  std::stable_sort(user_mounts.begin(), user_mounts.end(),
                   [](const auto& a, const auto& b) { return Depth(a.first) < Depth(b.first); });
  auto user_mounted = [&user_mounts](std::string_view dest) {
    return std::any_of(user_mounts.begin(), user_mounts.end(),
                       [dest](const auto& um) { return um.first == dest; });
  };

  json mounts = json::array();
  mounts.push_back(MountJson("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(
      MountJson("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  mounts.push_back(
      MountJson("/dev/pts", "devpts", "devpts",
                {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  mounts.push_back(MountJson("/dev/shm", "tmpfs", "shm",
                             {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  mounts.push_back(MountJson("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(MountJson("/sys", "sysfs", "sysfs",
                             {"nosuid", "noexec", "nodev", spec.insecure ? "rw" : "ro"}));
  mounts.push_back(MountJson("/sys/fs/cgroup", "cgroup", "cgroup",
                             {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  // A user mount on the same path wins (Docker skips its own file then).
  const std::pair<const char*, const std::string*> etc_files[] = {
      {"/etc/resolv.conf", &etc.resolv_conf},
      {"/etc/hosts", &etc.hosts},
      {"/etc/hostname", &etc.hostname},
  };
  for (const auto& [dest, source] : etc_files) {
    if (user_mounted(dest)) continue;
    mounts.push_back(
        MountJson(dest, "bind", *source, {"rbind", "ro", "nosuid", "nodev", "noexec"}));
  }
  for (const auto& [dest, m] : user_mounts) {
    if (m->type == Mount::Type::kBind) {
      mounts.push_back(MountJson(dest, "bind", m->source, {"rbind", m->readonly ? "ro" : "rw"}));
    } else {
      std::vector<std::string> opts = {"nosuid", "nodev", "mode=1777"};
      if (m->tmpfs_size_bytes > 0) opts.push_back("size=" + std::to_string(m->tmpfs_size_bytes));
      if (m->readonly) opts.push_back("ro");
      mounts.push_back(MountJson(dest, "tmpfs", "tmpfs", std::move(opts)));
    }
  }

  std::vector<std::string> caps = spec.insecure ? AllCapabilities() : DefaultCapabilities();
  if (policy.capability_bounding_set) {
    const auto& all = AllCapabilities();
    std::erase_if(caps, [&](const std::string& c) {
      auto it = std::find(all.begin(), all.end(), c);
      auto bit = static_cast<std::uint64_t>(it - all.begin());
      return it == all.end() || bit >= 64 || !((*policy.capability_bounding_set >> bit) & 1);
    });
  }
  json process = {
      {"terminal", false},
      {"user", {{"uid", spec.uid}, {"gid", spec.gid}}},
      {"args", spec.args},
      {"env", spec.env},
      {"cwd", cwd},
      // Bounding, effective and permitted only, as Docker since CVE-2022-24769:
      // nothing inheritable or ambient, so a non-root user gets no
      // capabilities across execve.
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", json::array({json{{"type", "RLIMIT_NOFILE"},
                                    {"hard", policy.nofile_limit},
                                    {"soft", policy.nofile_limit}}})},
      {"noNewPrivileges", false},
  };
  if (!spec.additional_gids.empty()) process["user"]["additionalGids"] = spec.additional_gids;

  json namespaces = json::array({json{{"type", "pid"}}, json{{"type", "ipc"}},
                                 json{{"type", "uts"}}, json{{"type", "mount"}}});
  // No network namespace entry means the host's network (the default, as in
  // buildah and the classic docker build).
  if (spec.network == RunSpec::Network::kNone) namespaces.push_back(json{{"type", "network"}});

  json devices = json::array();
  for (const DeviceNode& d : kDevices) {
    devices.push_back(json{{"path", d.path},
                           {"type", "c"},
                           {"major", d.major},
                           {"minor", d.minor},
                           {"fileMode", 0666},
                           {"uid", 0},
                           {"gid", 0}});
  }

  json resources = {{"devices", DeviceCgroupRules(spec.insecure)}};
  if (policy.pids_limit > 0) resources["pids"] = {{"limit", policy.pids_limit}};
  if (policy.memory_limit_bytes) resources["memory"] = {{"limit", *policy.memory_limit_bytes}};

  json linux = {
      {"namespaces", std::move(namespaces)},
      {"devices", std::move(devices)},
      {"resources", std::move(resources)},
  };
  if (!policy.cgroup_parent.empty()) {
    linux["cgroupsPath"] = "/" + policy.cgroup_parent + "/" + std::string(id);
  }
  if (!spec.insecure) {
    linux["maskedPaths"] = DefaultMaskedPaths();
    linux["readonlyPaths"] = DefaultReadonlyPaths();
  }
  // TODO(security): Docker's default seccomp profile is not applied yet.

  return json{
      {"ociVersion", "1.0.2-dev"},
      {"process", std::move(process)},
      {"root", {{"path", spec.rootfs}, {"readonly", spec.readonly_rootfs}}},
      {"hostname", hostname},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux)},
  };
}

}  // namespace manifold::worker
