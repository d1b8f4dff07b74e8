#include "common/cas/posix_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "common/crypto/sha256.h"

namespace manifold::cas::internal {

Error SysError(std::string_view op, std::string_view name, int err) {
  ErrorKind kind = ErrorKind::kInternal;
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      kind = ErrorKind::kResourceExhausted;
      break;
    default:
      break;
  }
  return MakeError(kind, "cas.io",
                   std::string(op) + " " + std::string(name) + ": " + std::strerror(err));
}

Expected<UniqueFd> OpenAt(int dir_fd, const std::string& name, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::openat(dir_fd, name.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return SysError("open", name, errno);
  return UniqueFd(fd);
}

Expected<std::optional<UniqueFd>> OpenAtIfExists(int dir_fd, const std::string& name, int flags) {
  int fd;
  do {
    fd = ::openat(dir_fd, name.c_str(), flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == ENOENT) return std::optional<UniqueFd>();
  if (fd < 0) return SysError("open", name, errno);
  return std::optional<UniqueFd>(UniqueFd(fd));
}

Expected<UniqueFd> OpenOrMakeDirAt(int dir_fd, const std::string& name) {
  if (::mkdirat(dir_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
    return SysError("mkdir", name, errno);
  }
  return OpenAt(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

Expected<void> WriteAll(int fd, std::string_view data, std::string_view name) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("write", name, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Ok();
}

Expected<std::size_t> ReadSome(int fd, std::span<char> buffer, std::string_view name) {
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return SysError("read", name, errno);
  }
}

Expected<void> Fsync(int fd, std::string_view name) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return SysError("fsync", name, errno);
  }
  return Ok();
}

Expected<bool> Flock(int fd, int operation, bool wait, std::string_view name) {
  int op = operation | (wait ? 0 : LOCK_NB);
  while (::flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK && !wait) return false;
    return SysError("flock", name, errno);
  }
  return true;
}

Expected<std::optional<UniqueFd>> LockFileAt(int dir_fd, const std::string& name, int operation,
                                             bool wait) {
  MF_TRY(fd, OpenAt(dir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  MF_TRY(locked, Flock(fd.get(), operation, wait, name));
  if (!locked) return std::optional<UniqueFd>();
  return std::optional<UniqueFd>(std::move(fd));
}

std::string RandomHex(std::size_t bytes) {
  std::vector<std::uint8_t> buf(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(buf.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  if (got < bytes) {
    // getrandom unavailable (very old kernel): names only need to be unique,
    // not secret, and O_EXCL catches the rare collision.
    std::random_device rd;
    for (auto& b : buf) b = static_cast<std::uint8_t>(rd());
  }
  return crypto::HexEncode(buf.data(), buf.size());
}

Expected<std::vector<std::string>> ListDir(int dir_fd, std::string_view name) {
  // fdopendir takes ownership, so hand it a fresh descriptor of the directory.
  MF_TRY(fd, OpenAt(dir_fd, ".", O_RDONLY | O_DIRECTORY));
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) return SysError("opendir", name, errno);
  fd.Release();
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    std::string_view n = entry->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return SysError("readdir", name, err);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace manifold::cas::internal
