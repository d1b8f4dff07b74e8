#include "common/fs/dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "common/fs/errno_error.h"
#include "common/fs/path.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452  // Linux 6.6; same number on every architecture
#endif

namespace manifold::fs {
namespace {

// Deeper trees than this are not removed (each level holds one fd).
constexpr int kMaxRemoveDepth = 1024;

std::string Str(std::string_view name) {
  MF_ASSERT(IsValidComponent(name), "not a single path component: \"" + std::string(name) + "\"");
  return std::string(name);
}

template <class F>
auto RetryEintr(F f) {
  auto rc = f();
  while (rc == -1 && errno == EINTR) rc = f();
  return rc;
}

// Owns a DIR* for listing; the walk reads a fresh fd so rewinds are cheap.
class DirStream {
 public:
  explicit DirStream(DIR* d) : d_(d) {}
  ~DirStream() {
    if (d_ != nullptr) closedir(d_);
  }
  DirStream(const DirStream&) = delete;
  DirStream& operator=(const DirStream&) = delete;
  DIR* get() const { return d_; }

 private:
  DIR* d_;
};

Expected<std::unique_ptr<DirStream>> OpenStream(int dir_fd, const std::string& label) {
  int fd = RetryEintr([&] { return openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return ErrnoError("opendir", label, errno);
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    close(fd);
    return ErrnoError("fdopendir", label, err);
  }
  return std::make_unique<DirStream>(d);
}

// Reads the next child name; nullopt at the end.
Expected<std::optional<std::string>> NextName(DirStream& s, const std::string& label) {
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(s.get());
    if (e == nullptr) {
      if (errno != 0) return ErrnoError("readdir", label, errno);
      return std::optional<std::string>();
    }
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    return std::optional<std::string>(std::string(n));
  }
}

Expected<void> RemoveTree(int parent_fd, const std::string& name, const std::string& label,
                          int depth);

// Empties the directory open as `fd`, pass after pass until a pass sees no
// child (readdir may skip entries when the directory changes under it).
Expected<void> EmptyDir(int fd, const std::string& label, int depth) {
  MF_TRY(stream, OpenStream(fd, label));
  for (;;) {
    bool saw_any = false;
    for (;;) {
      MF_TRY(name, NextName(*stream, label));
      if (!name) break;
      saw_any = true;
      MF_TRY_VOID(RemoveTree(fd, *name, label + "/" + *name, depth + 1));
    }
    if (!saw_any) return Ok();
    rewinddir(stream->get());
  }
}

Expected<void> RemoveTree(int parent_fd, const std::string& name, const std::string& label,
                          int depth) {
  if (depth > kMaxRemoveDepth) {
    return MakeError(ErrorKind::kResourceExhausted, "fs.remove.depth",
                     "\"" + label + "\" is more than " + std::to_string(kMaxRemoveDepth) +
                         " directories deep");
  }
  if (RetryEintr([&] { return unlinkat(parent_fd, name.c_str(), 0); }) == 0) return Ok();
  if (errno == ENOENT) return Ok();
  if (errno != EISDIR && errno != EPERM) return ErrnoError("unlinkat", label, errno);
  // A directory (Linux reports EISDIR; POSIX allows EPERM).
  if (RetryEintr([&] { return unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR); }) == 0) {
    return Ok();
  }
  if (errno == ENOENT) return Ok();
  if (errno != ENOTEMPTY && errno != EEXIST) return ErrnoError("rmdir", label, errno);
  int fd = RetryEintr([&] {
    return openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  });
  if (fd < 0) return ErrnoError("open", label, errno);
  UniqueFd child(fd);
  MF_TRY_VOID(EmptyDir(child.get(), label, depth));
  if (RetryEintr([&] { return unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR); }) != 0 &&
      errno != ENOENT) {
    return ErrnoError("rmdir", label, errno);
  }
  return Ok();
}

}  // namespace

std::string Dir::ChildLabel(std::string_view name) const {
  if (label_.empty() || label_ == ".") return std::string(name);
  return label_ + "/" + std::string(name);
}

Expected<struct stat> Dir::StatSelf() const {
  struct stat st;
  if (fstat(fd_.get(), &st) != 0) return ErrnoError("fstat", label_, errno);
  return st;
}

Expected<struct stat> Dir::Stat(std::string_view name) const {
  std::string n = Str(name);
  struct stat st;
  if (fstatat(fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("lstat", ChildLabel(name), errno);
  }
  return st;
}

Expected<std::optional<struct stat>> Dir::TryStat(std::string_view name) const {
  std::string n = Str(name);
  struct stat st;
  if (fstatat(fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<struct stat>();
    return ErrnoError("lstat", ChildLabel(name), errno);
  }
  return std::optional<struct stat>(st);
}

Expected<void> Dir::Mkdir(std::string_view name, mode_t mode) const {
  std::string n = Str(name);
  if (RetryEintr([&] { return mkdirat(fd_.get(), n.c_str(), mode); }) != 0) {
    return ErrnoError("mkdirat", ChildLabel(name), errno);
  }
  return Ok();
}

Expected<Dir> Dir::OpenDir(std::string_view name) const {
  std::string n = Str(name);
  int fd = RetryEintr([&] {
    return openat(fd_.get(), n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  });
  if (fd < 0) return ErrnoError("open", ChildLabel(name), errno);
  return Dir(UniqueFd(fd), ChildLabel(name));
}

Expected<UniqueFd> Dir::OpenFile(std::string_view name, int flags, mode_t mode) const {
  std::string n = Str(name);
  int fd = RetryEintr(
      [&] { return openat(fd_.get(), n.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode); });
  if (fd < 0) return ErrnoError("open", ChildLabel(name), errno);
  return UniqueFd(fd);
}

Expected<void> Dir::Symlink(std::string_view name, std::string_view target) const {
  std::string n = Str(name);
  std::string t(target);
  if (t.empty() || t.find('\0') != std::string::npos) {
    return MakeError(ErrorKind::kInvalidInput, "fs.invalid",
                     "symlink \"" + ChildLabel(name) + "\" has an empty or NUL-bearing target");
  }
  if (symlinkat(t.c_str(), fd_.get(), n.c_str()) != 0) {
    return ErrnoError("symlinkat", ChildLabel(name), errno);
  }
  return Ok();
}

Expected<void> Dir::Link(std::string_view name, const Dir& target_dir,
                         std::string_view target_name) const {
  std::string n = Str(name);
  std::string t = Str(target_name);
  // Flags 0: a symlink target is linked itself, never followed.
  if (linkat(target_dir.fd(), t.c_str(), fd_.get(), n.c_str(), 0) != 0) {
    return ErrnoError("linkat", ChildLabel(name), errno);
  }
  return Ok();
}

Expected<void> Dir::Mknod(std::string_view name, mode_t mode, dev_t dev) const {
  std::string n = Str(name);
  mode_t type = mode & S_IFMT;
  if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO) {
    return MakeError(ErrorKind::kInvalidInput, "fs.invalid",
                     "mknod \"" + ChildLabel(name) + "\": not a device or fifo type");
  }
  if (mknodat(fd_.get(), n.c_str(), type | 0600, dev) != 0) {
    return ErrnoError("mknodat", ChildLabel(name), errno);
  }
  return Chmod(name, mode & 07777);
}

Expected<void> Dir::Unlink(std::string_view name) const {
  std::string n = Str(name);
  if (unlinkat(fd_.get(), n.c_str(), 0) == 0) return Ok();
  if (errno != EISDIR) return ErrnoError("unlinkat", ChildLabel(name), errno);
  if (unlinkat(fd_.get(), n.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoError("rmdir", ChildLabel(name), errno);
  }
  return Ok();
}

Expected<void> Dir::RemoveAll(std::string_view name) const {
  return RemoveTree(fd_.get(), Str(name), ChildLabel(name), 0);
}

Expected<void> Dir::Lchown(std::string_view name, uid_t uid, gid_t gid) const {
  std::string n = Str(name);
  if (fchownat(fd_.get(), n.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("lchown", ChildLabel(name), errno);
  }
  return Ok();
}

Expected<void> Dir::SetTimes(std::string_view name, const timespec& atime,
                             const timespec& mtime) const {
  std::string n = Str(name);
  const timespec times[2] = {atime, mtime};
  if (utimensat(fd_.get(), n.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("utimensat", ChildLabel(name), errno);
  }
  return Ok();
}

Expected<void> Dir::Chmod(std::string_view name, mode_t mode) const {
  std::string n = Str(name);
  mode &= 07777;
  // fchmodat2(AT_SYMLINK_NOFOLLOW) (Linux 6.6) acts on the child without
  // opening it; EOPNOTSUPP means it is a symlink. Older kernels: glibc's
  // fchmodat emulates the flag through an O_PATH fd and /proc/self/fd.
  if (syscall(SYS_fchmodat2, fd_.get(), n.c_str(), mode, AT_SYMLINK_NOFOLLOW) == 0) return Ok();
  if (errno == ENOSYS) {
    if (fchmodat(fd_.get(), n.c_str(), mode, AT_SYMLINK_NOFOLLOW) == 0) return Ok();
  }
  if (errno == EOPNOTSUPP) return Ok();
  return ErrnoError("chmod", ChildLabel(name), errno);
}

Expected<void> Dir::SetXattr(std::string_view name, std::string_view key,
                             std::string_view value) const {
  std::string n = Str(name);
  MF_TRY(before, Stat(name));
  int extra = 0;
  if (S_ISDIR(before.st_mode)) {
    extra = O_DIRECTORY;
  } else if (!S_ISREG(before.st_mode)) {
    return MakeError(ErrorKind::kUnimplemented, "fs.xattr.unsupported",
                     "xattrs are set only on regular files and directories, not \"" +
                         ChildLabel(name) + "\"");
  }
  MF_TRY(fd, OpenFile(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | extra));
  struct stat after;
  if (fstat(fd.get(), &after) != 0) return ErrnoError("fstat", ChildLabel(name), errno);
  if (!(KeyOf(after) == KeyOf(before))) {
    return MakeError(ErrorKind::kInvalidInput, "fs.changed",
                     "\"" + ChildLabel(name) + "\" changed while being opened");
  }
  return SetXattrFd(fd.get(), key, value, ChildLabel(name));
}

Expected<void> Dir::ForEachChild(
    const std::function<Expected<void>(std::string_view)>& fn) const {
  MF_TRY(stream, OpenStream(fd_.get(), label_));
  for (;;) {
    MF_TRY(name, NextName(*stream, label_));
    if (!name) return Ok();
    MF_TRY_VOID(fn(*name));
  }
}

Expected<void> SetXattrFd(int fd, std::string_view key, std::string_view value,
                          std::string_view label) {
  std::string k(key);
  if (fsetxattr(fd, k.c_str(), value.data(), value.size(), 0) != 0) {
    return ErrnoError("setxattr " + k, label, errno);
  }
  return Ok();
}

}  // namespace manifold::fs
