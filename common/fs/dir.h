// A directory handle inside a RootDir. Every method names one child by a
// single component and acts on it with an *at() call that never follows a
// symlink in that final position; paths with '/' never reach this level.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "common/fs/unique_fd.h"

namespace manifold::fs {

/// Identity of an inode (device + inode number).
struct FileKey {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const FileKey& a, const FileKey& b) {
    return a.dev == b.dev && a.ino == b.ino;
  }
};
struct FileKeyHash {
  std::size_t operator()(const FileKey& k) const {
    return std::hash<unsigned long long>()(static_cast<unsigned long long>(k.ino) * 1000003u ^
                                           static_cast<unsigned long long>(k.dev));
  }
};
inline FileKey KeyOf(const struct stat& st) { return FileKey{st.st_dev, st.st_ino}; }

/// An O_PATH handle on a directory. Obtain one from RootDir (which resolved
/// it inside the root); a Dir never hands out a handle outside its own tree.
/// `name` arguments must satisfy IsValidComponent(); anything else is a
/// caller bug (MF_ASSERT). Errors are those of ErrnoError() (errno_error.h).
class Dir {
 public:
  /// Adopts `fd` (O_PATH or readable, must be a directory). `label` names it
  /// in error messages (a root-relative path; "." for the root).
  Dir(UniqueFd fd, std::string label) : fd_(std::move(fd)), label_(std::move(label)) {}

  int fd() const { return fd_.get(); }
  const std::string& label() const { return label_; }

  /// fstat() of the directory itself.
  Expected<struct stat> StatSelf() const;
  /// lstat()-like; fs.not_found when missing.
  Expected<struct stat> Stat(std::string_view name) const;
  /// lstat()-like; nullopt when missing.
  Expected<std::optional<struct stat>> TryStat(std::string_view name) const;

  /// mkdirat(); fs.exists if anything (even a dangling symlink) is there.
  Expected<void> Mkdir(std::string_view name, mode_t mode) const;
  /// Opens the child directory (O_PATH). A symlink in its place fails with
  /// fs.loop or fs.not_dir: it is never followed.
  Expected<Dir> OpenDir(std::string_view name) const;
  /// openat() with O_NOFOLLOW and O_CLOEXEC added: a final symlink fails with
  /// fs.loop. Use O_CREAT|O_EXCL to create.
  Expected<UniqueFd> OpenFile(std::string_view name, int flags, mode_t mode = 0) const;
  /// symlinkat(); `target` is stored verbatim (it may be absolute).
  Expected<void> Symlink(std::string_view name, std::string_view target) const;
  /// linkat() of `target_name` in `target_dir` (not followed if it is a
  /// symlink: the link is to the symlink itself) as `name` here.
  Expected<void> Link(std::string_view name, const Dir& target_dir,
                      std::string_view target_name) const;
  /// mknodat() for char/block devices and fifos; the mode is then set exactly
  /// (no umask) with Chmod().
  Expected<void> Mknod(std::string_view name, mode_t mode, dev_t dev) const;
  /// Removes a non-directory, or an empty directory.
  Expected<void> Unlink(std::string_view name) const;
  /// Removes `name` and everything below it, walking by fd and never
  /// following a symlink. Missing is not an error.
  Expected<void> RemoveAll(std::string_view name) const;
  /// fchownat(AT_SYMLINK_NOFOLLOW).
  Expected<void> Lchown(std::string_view name, uid_t uid, gid_t gid) const;
  /// utimensat(AT_SYMLINK_NOFOLLOW).
  Expected<void> SetTimes(std::string_view name, const timespec& atime,
                          const timespec& mtime) const;
  /// Sets permission bits (07777) without opening the child, so a device node
  /// is never opened; a no-op on a symlink (Linux ignores their modes).
  Expected<void> Chmod(std::string_view name, mode_t mode) const;
  /// fsetxattr() on a regular file or directory, opened without following;
  /// kUnimplemented "fs.xattr.unsupported" for other types.
  Expected<void> SetXattr(std::string_view name, std::string_view key,
                          std::string_view value) const;
  /// Calls `fn` for each child name ("." and ".." excluded). `fn` may remove
  /// the child it is given; an error from `fn` stops the walk.
  Expected<void> ForEachChild(const std::function<Expected<void>(std::string_view)>& fn) const;

 private:
  std::string ChildLabel(std::string_view name) const;
  UniqueFd fd_;
  std::string label_;
};

/// fsetxattr() on an open fd; `label` names it in errors.
Expected<void> SetXattrFd(int fd, std::string_view key, std::string_view value,
                          std::string_view label);

}  // namespace manifold::fs
