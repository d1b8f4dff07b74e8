// fs code names the shared fd owner fs::UniqueFd.
#pragma once

#include "common/base/unique_fd.h"

namespace manifold::fs {
using ::manifold::UniqueFd;
}  // namespace manifold::fs
