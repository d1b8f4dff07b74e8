// `manifold pull` and FROM: copies an image from a registry into the local
// image store (image::ImageStore) and names it. Blobs are verified as they
// stream into the content store; the name moves only once everything it
// points to is stored, so an interrupted pull never leaves a broken name.
#pragma once

#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/descriptor.h"
#include "common/oci/platform.h"
#include "common/oci/reference.h"
#include "common/registry/registry_options.h"

namespace manifold::image {
class ImageStore;
}

namespace manifold::registry {

class RegistryClient;

struct PullOptions {
  RegistryOptions registry;
  /// The platforms wanted; empty: all of them (the index is kept as served,
  /// with every manifest it lists). One platform of an index: the name points
  /// at that platform's manifest. Several: at a new index of just those.
  std::vector<oci::Platform> platforms;
  int parallelism = 4;  ///< blobs fetched at once
};

struct PullResult {
  oci::Descriptor root;  ///< what the name now points to
  std::string name;      ///< the normalised name tagged ("docker.io/library/busybox:latest")
  int blobs_fetched = 0;
  int blobs_present = 0;  ///< skipped: already in the store
};

/// Pulls `reference` ("busybox", "127.0.0.1:5000/app:1", "reg/app@sha256:...").
/// Layers are recorded in the store's LayerIndex under their config diff_ids.
/// Errors: kInvalidInput "reference.invalid" and those of RegistryClient
/// (manifest unknown, unauthorized, ...), kInvalidInput "oci.no_platform"
/// when no wanted platform is offered, and the store's.
Expected<PullResult> Pull(image::ImageStore& store, const std::string& reference,
                          const PullOptions& options);

/// The same with a client the caller keeps (its tokens and endpoint choice
/// are reused). `client` must be for `reference.domain`.
Expected<PullResult> Pull(image::ImageStore& store, RegistryClient& client,
                          const oci::Reference& reference, const PullOptions& options);

}  // namespace manifold::registry
