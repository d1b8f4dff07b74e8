// A small bounded worker pool for blob transfers: several blobs at once, but
// never more than `threads` connections to one registry.
#pragma once

#include <cstddef>
#include <functional>

#include "common/base/expected.h"

namespace manifold::registry {

/// Runs work(i) for every i in [0, count) on up to `threads` threads. After
/// the first failure no new item starts; returns that failure (an
/// InternalError thrown by an item becomes kInternal).
Expected<void> ParallelFor(std::size_t count, int threads,
                           const std::function<Expected<void>(std::size_t)>& work);

}  // namespace manifold::registry
