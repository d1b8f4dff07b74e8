// Reading small input files (Dockerfiles) with a size cap and clear errors.
#pragma once

#include <string>

#include "common/base/expected.h"

namespace manifold::cli {

/// Reads `path` whole; fails (kInvalidInput, "io.read") naming the path when
/// it cannot be opened or is larger than `max_bytes` (+1 so the caller's
/// limit check still sees "too large").
Expected<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

}  // namespace manifold::cli
