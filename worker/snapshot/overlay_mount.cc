#include "worker/snapshot/overlay_mount.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <thread>
#include <utility>

#include "common/base/log.h"
#include "worker/snapshot/mountinfo.h"
#include "worker/snapshot/state_error.h"

namespace manifold::worker {
namespace {

Error OptionsError(std::string message) {
  return MakeError(ErrorKind::kInternal, "snapshot.mount.options", std::move(message));
}

Expected<void> CheckPath(std::string_view what, const std::string& path) {
  if (path.empty() || path.find_first_of(",:\\\n") != std::string::npos) {
    return OptionsError(
        std::string(what) + " \"" + path +
        "\" cannot be passed to overlayfs (empty, or holds ',', ':', '\\' or a newline)");
  }
  return Ok();
}

// "key=value,flag" -> {key: value, flag: ""}.
std::map<std::string, std::string> SplitOptions(std::string_view options) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= options.size()) {
    std::size_t end = options.find(',', pos);
    if (end == std::string_view::npos) end = options.size();
    std::string_view opt = options.substr(pos, end - pos);
    std::size_t eq = opt.find('=');
    if (!opt.empty()) {
      out[std::string(opt.substr(0, eq))] =
          eq == std::string_view::npos ? "" : std::string(opt.substr(eq + 1));
    }
    pos = end + 1;
  }
  return out;
}

// The overlay module's default for a boolean feature ("Y"/"N" in sysfs).
bool ModuleDefaultOn(const char* param) {
  std::ifstream in(std::string("/sys/module/overlay/parameters/") + param);
  std::string value;
  in >> value;
  return value == "Y";
}

// Runs mount(2) from `base_dir` in a thread with its own cwd, so the relative
// lowerdir paths resolve there and no other thread is affected.
int MountFrom(const std::string& base_dir, const std::string& target, unsigned long flags,
              const std::string& data) {
  int result = 0;
  std::thread worker([&base_dir, &target, flags, &data, &result] {
    if (::unshare(CLONE_FS) != 0 || ::chdir(base_dir.c_str()) != 0) {
      result = errno;
      return;
    }
    if (::mount("overlay", target.c_str(), "overlay", flags, data.c_str()) != 0) result = errno;
  });
  worker.join();
  return result;
}

}  // namespace

std::size_t MaxMountDataBytes() {
  long page = ::sysconf(_SC_PAGESIZE);
  return static_cast<std::size_t>(page > 0 ? page : 4096) - 1;
}

std::size_t LowerdirBudget(const OverlayOptions& options) {
  OverlayOptions rest = options;
  rest.lowers.clear();
  std::size_t used = std::string_view("lowerdir=").size();
  if (!rest.upper.empty()) used += 10 + rest.upper.size() + 9 + rest.work.size();
  if (!rest.features.empty()) used += 1 + rest.features.size();
  std::size_t max = MaxMountDataBytes();
  return used >= max ? 0 : max - used;
}

Expected<std::string> OverlayMountData(const OverlayOptions& options) {
  if (options.lowers.empty()) return OptionsError("overlay needs at least one lower dir");
  if (options.upper.empty() && options.lowers.size() < 2) {
    return OptionsError("a read-only overlay needs at least two lower dirs");
  }
  std::string data = "lowerdir=";
  for (std::size_t i = 0; i < options.lowers.size(); ++i) {
    MF_TRY_VOID(CheckPath("lower dir", options.lowers[i]));
    if (i > 0) data += ':';
    data += options.lowers[i];
  }
  if (!options.upper.empty()) {
    MF_TRY_VOID(CheckPath("upper dir", options.upper));
    MF_TRY_VOID(CheckPath("work dir", options.work));
    data += ",upperdir=" + options.upper + ",workdir=" + options.work;
  }
  if (!options.features.empty()) data += "," + options.features;
  if (data.size() > MaxMountDataBytes()) {
    return MakeError(ErrorKind::kInternal, "snapshot.mount.too_long",
                     "overlay mount options are " + std::to_string(data.size()) +
                         " bytes, the kernel takes at most " + std::to_string(MaxMountDataBytes()) +
                         " (" + std::to_string(options.lowers.size()) + " lower dirs)");
  }
  return data;
}

Expected<OverlayMount> OverlayMount::Mount(const std::string& target,
                                           const OverlayOptions& options) {
  MF_TRY(data, OverlayMountData(options));
  unsigned long flags = options.upper.empty() ? MS_RDONLY : 0;
  if (int err = MountFrom(options.base_dir, target, flags, data); err != 0) {
    return StateError("mount overlay at", target, err).With("mount options " + data);
  }
  struct statx stx {};
  if (::statx(AT_FDCWD, target.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0 ||
      (stx.stx_mask & STATX_MNT_ID) == 0) {
    int err = errno;
    ::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    return StateError("statx", target, err == 0 ? ENOSYS : err);
  }
  OverlayMount mount(target, stx.stx_mnt_id);
  if (options.verify) MF_TRY_VOID(mount.VerifyOptions());  // the destructor unmounts
  return mount;
}

OverlayMount::OverlayMount(OverlayMount&& other) noexcept
    : target_(std::exchange(other.target_, {})), mount_id_(other.mount_id_) {}

OverlayMount& OverlayMount::operator=(OverlayMount&& other) noexcept {
  if (this != &other) {
    (void)Unmount();
    target_ = std::exchange(other.target_, {});
    mount_id_ = other.mount_id_;
  }
  return *this;
}

OverlayMount::~OverlayMount() {
  auto done = Unmount();
  if (!done.ok()) MF_LOG_WARN("overlay left mounted: {}", done.error().ToString());
}

Expected<std::string> OverlayMount::SuperOptions() const {
  if (!mounted()) {
    return MakeError(ErrorKind::kInternal, "snapshot.mount.gone", "overlay is not mounted");
  }
  MF_TRY(mounts, ReadMountInfo());
  for (const MountInfo& m : mounts) {
    if (m.id == mount_id_) return m.super_options;
  }
  return MakeError(ErrorKind::kInternal, "snapshot.mount.gone",
                   "overlay at " + target_ + " is no longer in /proc/self/mountinfo");
}

Expected<void> OverlayMount::VerifyOptions() const {
  MF_TRY(super, SuperOptions());
  auto options = SplitOptions(super);
  // Without an upper dir nothing is ever written, so no diff can be wrong
  // (and the kernel reports redirect_dir=on there: it follows redirects).
  if (options.count("upperdir") == 0) return Ok();
  auto effective = [&options](const char* key, const char* param) -> std::string {
    auto it = options.find(key);
    if (it != options.end()) return it->second;
    return ModuleDefaultOn(param) ? "on" : "off";  // only values that differ are shown
  };
  if (effective("redirect_dir", "redirect_dir") == "on") {
    return MakeError(
        ErrorKind::kInternal, "snapshot.overlay.redirect_dir",
        "overlay at " + target_ + " has redirect_dir=on; the overlayfs differ does not support it");
  }
  if (effective("metacopy", "metacopy") == "on") {
    return MakeError(
        ErrorKind::kInternal, "snapshot.overlay.metacopy",
        "overlay at " + target_ + " has metacopy=on; the overlayfs differ does not support it");
  }
  return Ok();
}

Expected<void> OverlayMount::Unmount(bool detach_if_busy) {
  if (!mounted()) return Ok();
  if (::umount2(target_.c_str(), UMOUNT_NOFOLLOW) != 0) {
    int err = errno;
    if (err == EBUSY && !detach_if_busy) {
      return MakeError(ErrorKind::kInternal, "snapshot.mount.busy",
                       "overlay at " + target_ + " is still in use");
    }
    if (err == EBUSY) {
      if (::umount2(target_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
        return StateError("umount (detach)", target_, errno);
      }
      MF_LOG_WARN("overlay at {} was busy; detached", target_);
    } else if (err != EINVAL && err != ENOENT) {  // EINVAL: no longer a mount point
      return StateError("umount", target_, err);
    }
  }
  target_.clear();
  return Ok();
}

}  // namespace manifold::worker
