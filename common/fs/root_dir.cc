#include "common/fs/root_dir.h"

#include <fcntl.h>
#include <linux/openat2.h>  // struct open_how, RESOLVE_* (glibc 2.36 has no wrapper)
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs/errno_error.h"

namespace manifold::fs {
namespace {

// openat2 may fail with EAGAIN when a rename races the lookup.
constexpr int kMaxAgain = 32;

// O_PATH handle on `path` below `root_fd`, resolved as if root_fd were "/".
// Symlinks (also in the last component) are followed, but never out of the
// root; magic links (/proc/self/fd/N and friends) are refused.
int OpenInRoot(int root_fd, const Path& path) {
  struct open_how how = {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, root_fd, path.c_str_or_dot(), &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EINTR || (errno == EAGAIN && attempt < kMaxAgain)) continue;
    return -1;
  }
}

std::string Label(const Path& path) { return path.IsRoot() ? "." : path.str(); }

Error Unsupported(int err) {
  return MakeError(ErrorKind::kUnimplemented, "fs.openat2.unsupported",
                   std::string("openat2(2) with RESOLVE_IN_ROOT is not available (") +
                       std::strerror(err) +
                       "); Linux 5.6 or newer is required to extract layers safely");
}

}  // namespace

Expected<void> CheckOpenat2() {
  struct open_how how = {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
  if (fd >= 0) {
    close(static_cast<int>(fd));
    return Ok();
  }
  // ENOSYS: no syscall; EPERM: a seccomp filter refusing it; E2BIG/EINVAL:
  // an openat2 without these resolve flags.
  return Unsupported(errno);
}

Expected<RootDir> RootDir::Open(const std::string& host_path) {
  MF_TRY_VOID(CheckOpenat2());
  int fd = open(host_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open root", host_path, errno);
  return RootDir(Dir(UniqueFd(fd), "."));
}

Expected<Dir> RootDir::OpenDir(const Path& dir) const {
  int fd = OpenInRoot(root_.fd(), dir);
  if (fd < 0) return ErrnoError("openat2", Label(dir), errno);
  return Dir(UniqueFd(fd), Label(dir));
}

Expected<std::optional<Dir>> RootDir::TryOpenDir(const Path& dir) const {
  int fd = OpenInRoot(root_.fd(), dir);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Dir>();
    return ErrnoError("openat2", Label(dir), errno);
  }
  return std::optional<Dir>(Dir(UniqueFd(fd), Label(dir)));
}

Expected<Dir> RootDir::MkdirAll(const Path& dir, mode_t mode) const {
  MF_TRY(existing, TryOpenDir(dir));
  if (existing) return std::move(*existing);
  // Walk down: each prefix is resolved from the root again, so a symlink met
  // on the way is followed inside the root, and a directory is created only
  // in a parent that itself was resolved inside the root.
  std::vector<std::string_view> parts = dir.Components();
  MF_TRY(cur, OpenDir(Path()));
  for (std::size_t i = 0; i < parts.size(); ++i) {
    Path prefix = dir.Prefix(i + 1);
    MF_TRY(next, TryOpenDir(prefix));
    if (!next) {
      auto made = cur.Mkdir(parts[i], mode);
      if (!made.ok() && made.error().code != "fs.exists") return std::move(made).error();
      MF_TRY(again, TryOpenDir(prefix));
      if (!again) {
        // Something is there but does not resolve: a dangling symlink.
        return ErrnoError("mkdir (dangling symlink?)", Label(prefix), ENOENT);
      }
      next = std::move(again);
    }
    cur = std::move(*next);
  }
  return cur;
}

Expected<Dir> RootDir::ParentOf(const Path& path) const {
  if (path.IsRoot()) {
    return MakeError(ErrorKind::kInvalidInput, "fs.path.root",
                     "operation needs a path below the root");
  }
  return OpenDir(path.Parent());
}

Expected<UniqueFd> RootDir::OpenFile(const Path& path, int flags, mode_t mode) const {
  MF_TRY(parent, ParentOf(path));
  return parent.OpenFile(path.Base(), flags, mode);
}

Expected<void> RootDir::Mkdir(const Path& path, mode_t mode) const {
  MF_TRY(parent, ParentOf(path));
  return parent.Mkdir(path.Base(), mode);
}

Expected<void> RootDir::Symlink(const Path& path, std::string_view target) const {
  MF_TRY(parent, ParentOf(path));
  return parent.Symlink(path.Base(), target);
}

Expected<void> RootDir::Link(const Path& path, const Path& target) const {
  MF_TRY(target_parent, ParentOf(target));
  MF_TRY(parent, ParentOf(path));
  return parent.Link(path.Base(), target_parent, target.Base());
}

Expected<void> RootDir::Unlink(const Path& path) const {
  MF_TRY(parent, ParentOf(path));
  return parent.Unlink(path.Base());
}

Expected<void> RootDir::RemoveAll(const Path& path) const {
  if (path.IsRoot()) return ParentOf(path).error();
  MF_TRY(parent, TryOpenDir(path.Parent()));
  if (!parent) return Ok();
  return parent->RemoveAll(path.Base());
}

Expected<void> RootDir::Mknod(const Path& path, mode_t mode, dev_t dev) const {
  MF_TRY(parent, ParentOf(path));
  return parent.Mknod(path.Base(), mode, dev);
}

Expected<void> RootDir::Lchown(const Path& path, uid_t uid, gid_t gid) const {
  MF_TRY(parent, ParentOf(path));
  return parent.Lchown(path.Base(), uid, gid);
}

Expected<void> RootDir::SetTimes(const Path& path, const timespec& atime,
                                 const timespec& mtime) const {
  MF_TRY(parent, ParentOf(path));
  return parent.SetTimes(path.Base(), atime, mtime);
}

Expected<void> RootDir::Chmod(const Path& path, mode_t mode) const {
  MF_TRY(parent, ParentOf(path));
  return parent.Chmod(path.Base(), mode);
}

Expected<void> RootDir::SetXattr(const Path& path, std::string_view key,
                                 std::string_view value) const {
  MF_TRY(parent, ParentOf(path));
  return parent.SetXattr(path.Base(), key, value);
}

Expected<struct stat> RootDir::Stat(const Path& path) const {
  if (path.IsRoot()) return root_.StatSelf();
  MF_TRY(parent, ParentOf(path));
  return parent.Stat(path.Base());
}

Expected<std::optional<struct stat>> RootDir::TryStat(const Path& path) const {
  if (path.IsRoot()) {
    MF_TRY(st, root_.StatSelf());
    return std::optional<struct stat>(st);
  }
  MF_TRY(parent, TryOpenDir(path.Parent()));
  if (!parent) return std::optional<struct stat>();
  return parent->TryStat(path.Base());
}

}  // namespace manifold::fs
