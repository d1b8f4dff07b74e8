// `manifold push` and `build --push`: copies an image from the local image
// store to a registry. Order (RELIABILITY.md 3.8): every blob of every
// platform first (HEAD skips what the registry has; a mount from another
// repository of the same registry beats an upload), then each image manifest
// by digest, then the index, and the tag only with that last PUT, so a failed
// push never leaves the tag on a partial image.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/descriptor.h"
#include "common/oci/digest.h"
#include "common/oci/reference.h"
#include "common/registry/registry_options.h"

namespace manifold::image {
class ImageStore;
}

namespace manifold::registry {

class RegistryClient;

struct PushOptions {
  RegistryOptions registry;
  int parallelism = 4;  ///< blobs uploaded at once
  /// Repositories of the target registry that may already hold the blobs
  /// (cross-repository mount). The source name's repository is added when it
  /// is on the same registry.
  std::vector<std::string> mount_from;
  /// Blobs someone else pushed to the target repository already (a farm's
  /// workers push the layers they built): they need not be in the store; a
  /// HEAD checks the registry has them.
  std::set<std::string> pushed_elsewhere;
};

struct PushResult {
  oci::Digest digest;  ///< of the root document, as the registry confirmed it
  oci::Descriptor root;
  int blobs_uploaded = 0;
  int blobs_mounted = 0;
  int blobs_existing = 0;
  int manifests_pushed = 0;  ///< including the root
};

/// Pushes the image the local name `name` points to, to `reference` (empty:
/// to `name` itself). Errors: kInvalidInput "image.not_found",
/// "reference.invalid", "registry.push_incomplete" (a blob the image needs
/// is not in the store), and those of RegistryClient.
Expected<PushResult> Push(image::ImageStore& store, const std::string& name,
                          const std::string& reference, const PushOptions& options);

/// Pushes the image rooted at `root` (an index or a manifest in the store).
Expected<PushResult> Push(image::ImageStore& store, const oci::Descriptor& root,
                          const std::string& reference, const PushOptions& options);

/// The same with a client the caller keeps; it must be for `reference.domain`.
Expected<PushResult> Push(image::ImageStore& store, RegistryClient& client,
                          const oci::Descriptor& root, const oci::Reference& reference,
                          const PushOptions& options);

}  // namespace manifold::registry
