// Builders for registry tests: small OCI images (config + layers) put into a
// FakeRegistry, so pull/push tests start from real documents.
#pragma once

#include <string>
#include <vector>

#include "common/oci/descriptor.h"
#include "common/oci/image_config.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/registry/testing/fake_registry.h"

namespace manifold::registry::testing {

struct TestImage {
  std::string manifest;  ///< bytes
  oci::Descriptor desc;  ///< of the manifest, with platform
  std::vector<std::string> layers;
  std::vector<oci::Descriptor> layer_descs;
  oci::Descriptor config;
};

/// An image whose layers are the given (uncompressed) contents, stored in
/// `repo` of `registry` (blobs, and the manifest under its digest).
inline TestImage AddImage(FakeRegistry& registry, const std::string& repo, const std::string& os,
                          const std::string& arch, const std::vector<std::string>& layers) {
  TestImage image;
  oci::ImageConfig config;
  config.os = os;
  config.architecture = arch;
  oci::ImageManifest manifest;
  for (const auto& content : layers) {
    oci::Descriptor d = oci::DescribeBytes(std::string(oci::kOciLayer), content);
    registry.AddBlob(repo, content);
    config.rootfs.diff_ids.push_back(d.digest);
    manifest.layers.push_back(d);
    image.layer_descs.push_back(d);
  }
  std::string config_bytes = config.ToJson();
  registry.AddBlob(repo, config_bytes);
  manifest.config = oci::DescribeBytes(std::string(oci::kOciImageConfig), config_bytes);
  image.config = manifest.config;
  image.manifest = manifest.ToJson();
  image.layers = layers;
  image.desc = oci::DescribeBytes(std::string(oci::kOciImageManifest), image.manifest);
  image.desc.platform = oci::Platform{os, arch, ""};
  registry.AddManifest(repo, "", image.desc.media_type, image.manifest);
  return image;
}

/// An index over `images`, tagged `tag` in `repo`; returns its bytes.
inline std::string AddIndex(FakeRegistry& registry, const std::string& repo,
                            const std::string& tag, const std::vector<TestImage>& images) {
  oci::ImageIndex index;
  for (const auto& i : images) index.manifests.push_back(i.desc);
  std::string bytes = index.ToJson();
  registry.AddManifest(repo, tag, std::string(oci::kOciImageIndex), bytes);
  return bytes;
}

}  // namespace manifold::registry::testing
