// Opening the object a path names inside a RootDir, following every symlink
// (the last component too) as if the root were "/": openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS). COPY sources and /etc/passwd are found this way, as
// BuildKit follows source symlinks but never out of the source root.
#pragma once

#include "common/base/expected.h"
#include "common/fs/path.h"
#include "common/fs/root_dir.h"
#include "common/fs/unique_fd.h"

namespace manifold::worker {

/// openat2(root, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
/// Errors: those of fs::ErrnoError (fs.not_found, fs.not_dir, fs.loop, ...).
Expected<fs::UniqueFd> OpenInRoot(const fs::RootDir& root, const fs::Path& path, int flags);

}  // namespace manifold::worker
