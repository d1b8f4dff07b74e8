// Whole-file replacement that readers never see half-written: write a
// uniquely named temp file next to the target, fsync, rename over it.
#pragma once
#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::fs {

/// Replaces `path` with `data` (created with `mode`). Errors: kResourceExhausted
/// "fs.full" on ENOSPC, kInternal "fs.io" otherwise, naming the path.
Expected<void> WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0600);

}  // namespace manifold::fs
