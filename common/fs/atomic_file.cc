#include "common/fs/atomic_file.h"

#include "common/base/temp_name.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace manifold::fs {
namespace {

Error IoError(const std::string& what, int err) {
  return MakeError(err == ENOSPC || err == EDQUOT ? ErrorKind::kResourceExhausted : ErrorKind::kInternal,
                   err == ENOSPC || err == EDQUOT ? "fs.full" : "fs.io",
                   what + ": " + std::strerror(err));
}

}  // namespace

Expected<void> WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + UniqueTempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return IoError("create " + tmp, errno);
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return IoError(what, err);
  };
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write " + tmp);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) return fail("chmod " + tmp);
  if (::fsync(fd) != 0) return fail("fsync " + tmp);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("rename " + path, err);
  }
  return Ok();
}

}  // namespace manifold::fs
