// The handle through which layer extraction (and anything else writing inside
// a rootfs) touches the disk. Paths are resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS): symlinks, absolute or relative, are followed as if
// the root were "/", so no lookup leaves the root, and the final component is
// then acted on with an *at() call that does not follow it. No std::string
// path is ever joined onto a host path.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "common/fs/dir.h"
#include "common/fs/path.h"
#include "common/fs/unique_fd.h"

namespace manifold::fs {

/// Succeeds when the kernel offers openat2(2) with RESOLVE_IN_ROOT (Linux
/// 5.6+). Errors: kUnimplemented "fs.openat2.unsupported". There is no weaker
/// fallback: a worker without openat2 must refuse to extract.
Expected<void> CheckOpenat2();

class RootDir {
 public:
  /// Opens `host_path` (trusted configuration, not input) as a root. Checks
  /// openat2 first. Errors: kUnimplemented "fs.openat2.unsupported", or an
  /// ErrnoError (fs.not_found, fs.not_dir, ...).
  static Expected<RootDir> Open(const std::string& host_path);

  RootDir(RootDir&&) noexcept = default;
  RootDir& operator=(RootDir&&) noexcept = default;

  int fd() const { return root_.fd(); }
  /// The root directory itself.
  const Dir& root() const { return root_; }

  /// Resolves `dir` inside the root (symlinks followed, clamped at the root;
  /// magic links refused) to a directory handle.
  Expected<Dir> OpenDir(const Path& dir) const;
  /// Like OpenDir, but nullopt when a component is missing.
  Expected<std::optional<Dir>> TryOpenDir(const Path& dir) const;
  /// Creates missing directories along `dir` with `mode` (existing ones, and
  /// symlinks to directories inside the root, are kept) and returns a handle.
  /// A dangling symlink on the way fails with fs.not_found.
  Expected<Dir> MkdirAll(const Path& dir, mode_t mode) const;

  // Single-entry operations: resolve path.Parent() with OpenDir, then act on
  // path.Base() without following it. The root itself is refused
  // (kInvalidInput "fs.path.root").
  Expected<UniqueFd> OpenFile(const Path& path, int flags, mode_t mode = 0) const;
  Expected<void> Mkdir(const Path& path, mode_t mode) const;
  Expected<void> Symlink(const Path& path, std::string_view target) const;
  /// Hard link `path` to `target`; the target's parent is resolved in the
  /// root too, and a symlink target is linked itself.
  Expected<void> Link(const Path& path, const Path& target) const;
  Expected<void> Unlink(const Path& path) const;
  /// Missing is not an error; a missing parent is not either.
  Expected<void> RemoveAll(const Path& path) const;
  Expected<void> Mknod(const Path& path, mode_t mode, dev_t dev) const;
  Expected<void> Lchown(const Path& path, uid_t uid, gid_t gid) const;
  Expected<void> SetTimes(const Path& path, const timespec& atime, const timespec& mtime) const;
  Expected<void> Chmod(const Path& path, mode_t mode) const;
  Expected<void> SetXattr(const Path& path, std::string_view key, std::string_view value) const;
  /// lstat()-like. The root itself may be stat'ed.
  Expected<struct stat> Stat(const Path& path) const;
  Expected<std::optional<struct stat>> TryStat(const Path& path) const;

 private:
  explicit RootDir(Dir root) : root_(std::move(root)) {}
  Expected<Dir> ParentOf(const Path& path) const;
  Dir root_;
};

}  // namespace manifold::fs
