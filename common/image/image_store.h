// The node's local image store: the content-addressed blobs of
// `<state>/content` plus the names of `<state>/images.json`. Images in it are
// used before any registry is asked, as buildah does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/cas/gc.h"
#include "common/cas/local_blob_store.h"
#include "common/image/name_store.h"
#include "common/oci/descriptor.h"
#include "common/oci/image_config.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/reference.h"

namespace manifold::image {

/// `$MANIFOLD_ROOT`, else /var/lib/manifold.
std::string DefaultStateDir();

/// One platform's image: its manifest and config.
struct PlatformImage {
  oci::Descriptor manifest_desc;  ///< with platform
  oci::ImageManifest manifest;
  oci::ImageConfig config;
};

/// A name's image: the root document (index or manifest) and each platform.
struct ResolvedImage {
  std::string name;  ///< normalised
  oci::Descriptor root;
  std::optional<oci::ImageIndex> index;  ///< when the root is an index
  std::vector<PlatformImage> platforms;
};

class ImageStore {
 public:
  /// Opens (creating) the store under `state_dir`.
  static Expected<std::unique_ptr<ImageStore>> Open(const std::string& state_dir);

  cas::LocalBlobStore& blobs() { return *blobs_; }
  NameStore& names() { return names_; }
  const std::string& state_dir() const { return state_dir_; }

  /// Normalises a user's name ("busybox" -> "docker.io/library/busybox:latest").
  static Expected<std::string> NormalizeName(const std::string& name);

  /// Stores a small document (manifest, index, config) and describes it.
  Expected<oci::Descriptor> PutDocument(const std::string& media_type, const std::string& bytes);

  /// Reads the image `name` points to, with every platform's manifest and config.
  /// kInvalidInput "image.not_found" when the name is unknown.
  Expected<ResolvedImage> Resolve(const std::string& name);

  /// Reads a root document by descriptor (index or manifest) into a ResolvedImage.
  Expected<ResolvedImage> ResolveDescriptor(const std::string& name, const oci::Descriptor& root);

  /// Points `name` at an image for `manifest_desc.platform`, keeping the name's
  /// other platforms: a second platform turns a manifest into an index; the
  /// same platform is replaced.
  Expected<oci::Descriptor> AddPlatform(const std::string& name, const oci::Descriptor& manifest_desc);

  /// Points `name` at `root` as is (load).
  Expected<void> Tag(const std::string& name, const oci::Descriptor& root);

  /// Every blob an image needs (root, manifests, configs, layers), in a
  /// parents-first order, without duplicates.
  static std::vector<oci::Descriptor> Closure(const ResolvedImage& image);

  /// Removes every blob no name and no active lease reaches. kTransient
  /// "cas.gc_busy" while another process is writing blobs.
  Expected<cas::GcStats> Prune();

  /// Children of a stored document for garbage collection (index → manifests,
  /// manifest → config + layers; anything else has none).
  Expected<std::vector<std::string>> Children(const std::string& digest);

 private:
  ImageStore(std::string state_dir, std::unique_ptr<cas::LocalBlobStore> blobs, NameStore names)
      : state_dir_(std::move(state_dir)), blobs_(std::move(blobs)), names_(std::move(names)) {}

  std::string state_dir_;
  std::unique_ptr<cas::LocalBlobStore> blobs_;
  NameStore names_;
};

}  // namespace manifold::image
