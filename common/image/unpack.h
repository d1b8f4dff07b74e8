// `manifold unpack`: an image's layers applied, in order, into a new
// directory (what a worker does to make a base image's root filesystem, and
// what `umoci unpack` does). Each layer's diff_id is checked against the config.
#pragma once

#include <string>

#include "common/base/expected.h"
#include "common/image/image_store.h"

namespace manifold::image {

struct UnpackStats {
  std::uint64_t layers = 0;
  std::uint64_t entries = 0;
  std::uint64_t warnings = 0;
};

/// Applies `img`'s layers into `dest`, which must not exist (it is created, and
/// removed again if anything fails: nothing half-written is left). Errors:
/// kIntegrity "layer.diffid_mismatch" when a layer is not the one the config
/// names, and every error of layer::Apply.
Expected<UnpackStats> Unpack(ImageStore& store, const PlatformImage& img, const std::string& dest);

}  // namespace manifold::image
