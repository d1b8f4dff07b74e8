#include "worker/step/in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs/errno_error.h"

namespace manifold::worker {

Expected<fs::UniqueFd> OpenInRoot(const fs::RootDir& root, const fs::Path& path, int flags) {
  struct open_how how = {};
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, root.fd(), path.c_str_or_dot(), &how, sizeof(how));
    if (fd >= 0) return fs::UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || (errno == EAGAIN && attempt < 32)) continue;
    return fs::ErrnoError("open", path.IsRoot() ? "." : path.str(), errno);
  }
}

}  // namespace manifold::worker
