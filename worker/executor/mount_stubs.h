// Mount points the runtime creates in the rootfs (/proc, /dev, /etc/hosts, a
// `--mount` target) must not end up in the step's layer. Record what is
// missing before the run; afterwards remove what is still an empty stub
// (BuildKit's MountStubsCleaner). Every lookup goes through fs::RootDir, so a
// step that swaps a stub's parent for a symlink to "/" or to a host path
// cannot make the cleanup touch anything outside the root (CVE-2024-23652).
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/fs/path.h"
#include "common/fs/root_dir.h"

namespace manifold::worker {

class MountStubs {
 public:
  /// Notes, for each absolute container path in `destinations`, the
  /// components that do not exist yet in `root`, and the modification time of
  /// the deepest existing parent (restored after removal). A destination that
  /// is not a valid path, or whose parent is not a directory, is skipped: the
  /// runtime will report it. Errors: ErrnoError codes for unexpected lookup
  /// failures.
  static Expected<MountStubs> Record(const fs::RootDir& root,
                                     const std::vector<std::string>& destinations);

  /// Removes each recorded path that is still an empty directory or an empty
  /// regular file (anything else is left: the step put it there), deepest
  /// first, then restores the parents' times. Missing paths are fine.
  /// Errors: the first unexpected ErrnoError, after trying every path.
  Expected<void> Remove(const fs::RootDir& root) const;

  /// Recorded stubs, deepest first ("etc/hosts" before "etc").
  const std::vector<fs::Path>& paths() const { return stubs_; }

 private:
  struct ParentTimes {
    fs::Path path;
    struct timespec atime;
    struct timespec mtime;
  };
  std::vector<fs::Path> stubs_;
  std::vector<ParentTimes> parents_;
};

}  // namespace manifold::worker
