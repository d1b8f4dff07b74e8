// A build's own runc root and bundles under the worker's state dir, held
// with a lock for the build's life (RELIABILITY C5).
#pragma once
#include <string>

#include "common/base/expected.h"
#include "common/fs/unique_fd.h"

namespace manifold::coordinator {

struct RunDir {
  std::string path;  ///< <worker>/run/<build id>
  fs::UniqueFd lock;  ///< flock held until the build ends
};

/// Reclaims the run dirs of dead builds (their lock is free: their containers
/// are killed and removed and the dir deleted, so their overlays can be
/// swept), then creates and locks <wstate>/run/<build_id>. Builds running at
/// the same time on one state dir never touch each other's containers.
/// Errors: kInternal "build.state".
Expected<RunDir> ClaimRunDir(const std::string& wstate, const std::string& build_id);

}  // namespace manifold::coordinator
