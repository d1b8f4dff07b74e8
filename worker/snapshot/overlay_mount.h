// An overlayfs mount as RAII: mounted by Mount(), unmounted by the destructor
// (umount2, then MNT_DETACH if busy). Layer paths are passed relative to a
// base directory (the snapshot store) and the mount(2) call runs in a helper
// thread that unshared its cwd (CLONE_FS) and chdir'ed there, as containerd's
// mountAt does: the option string stays short whatever the state path, and
// no other thread's cwd moves.
//
// The kernel copies at most one page of mount data (4096 bytes here,
// terminating NUL included); a longer string is refused up front (callers
// flatten long chains first: Snapshotter::Lowers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::worker {

/// What every step overlay is mounted with: no renames of lower directories
/// recorded as redirects, no metadata-only copy-ups, no inode index. With
/// any of them the upper dir stops being a faithful diff (RELIABILITY.md 2.4).
inline constexpr std::string_view kOverlayDiffFeatures = "redirect_dir=off,metacopy=off,index=off";

struct OverlayOptions {
  std::string base_dir;             ///< absolute; the paths below are relative to it
  std::vector<std::string> lowers;  ///< top first; at least one (two without an upper)
  std::string upper;                ///< empty: a read-only mount of the lowers
  std::string work;                 ///< required with `upper`, same file system
  std::string features{kOverlayDiffFeatures};
  /// After mounting, check the effective options (VerifyOptions) and unmount
  /// again on failure. Off only for tests that need a bad mount.
  bool verify = true;
};

/// The most bytes of mount data the kernel takes, NUL excluded (page size - 1).
std::size_t MaxMountDataBytes();

/// The mount(2) data string for `options`. Errors: kInternal
/// "snapshot.mount.options" (a path holding ',', ':', '\\' or a newline; no
/// lower; an upper without a work dir; one lower without an upper) and
/// kInternal "snapshot.mount.too_long" when longer than MaxMountDataBytes().
Expected<std::string> OverlayMountData(const OverlayOptions& options);

/// Bytes left for the ':'-joined lowerdir list in `options`' mount data (its
/// `lowers` ignored).
std::size_t LowerdirBudget(const OverlayOptions& options);

class OverlayMount {
 public:
  /// Mounts overlayfs at `target` (absolute, an existing empty directory).
  /// Read-only mounts also get MS_RDONLY. Errors: OverlayMountData's; a
  /// failed mount(2) as a StateError; VerifyOptions' (the mount is then
  /// undone).
  static Expected<OverlayMount> Mount(const std::string& target, const OverlayOptions& options);

  OverlayMount(OverlayMount&& other) noexcept;
  OverlayMount& operator=(OverlayMount&& other) noexcept;
  ~OverlayMount();

  const std::string& target() const { return target_; }
  bool mounted() const { return !target_.empty(); }

  /// The mount's super options as /proc/self/mountinfo shows them (found by
  /// mount id). Errors: kInternal "snapshot.mount.gone" if not mounted.
  Expected<std::string> SuperOptions() const;

  /// Fails with kInternal "snapshot.overlay.redirect_dir" ("overlay at <t>
  /// has redirect_dir=on; the overlayfs differ does not support it") or
  /// "snapshot.overlay.metacopy" when the effective options (shown ones, else
  /// the overlay module's defaults) would make the upper dir a wrong diff.
  /// A mount without an upper dir always passes.
  Expected<void> VerifyOptions() const;

  /// Unmounts now. When the mount is busy: with `detach_if_busy`, detaches
  /// it (MNT_DETACH: gone from view, freed when the last user leaves); else
  /// fails with kInternal "snapshot.mount.busy" and stays mounted.
  /// Idempotent.
  Expected<void> Unmount(bool detach_if_busy = true);

 private:
  OverlayMount(std::string target, std::uint64_t mount_id)
      : target_(std::move(target)), mount_id_(mount_id) {}

  std::string target_;  // empty once unmounted
  std::uint64_t mount_id_ = 0;
};

}  // namespace manifold::worker
