// /proc/self/mountinfo, parsed (proc(5)): which mounts exist, where, and with
// which effective options. Used to verify an overlay's options after mounting
// and to find mounts a crashed worker left below its scratch directories.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::worker {

struct MountInfo {
  std::uint64_t id = 0;
  std::string mount_point;    ///< unescaped ("\040" -> ' ')
  std::string fstype;         ///< "overlay", "tmpfs", ...
  std::string super_options;  ///< comma-separated, as the kernel shows them
};

/// Parses mountinfo text. Malformed lines are kInternal "snapshot.mountinfo".
Expected<std::vector<MountInfo>> ParseMountInfo(std::string_view text);

/// Reads and parses /proc/self/mountinfo. Errors: StateError, or ParseMountInfo's.
Expected<std::vector<MountInfo>> ReadMountInfo();

}  // namespace manifold::worker
