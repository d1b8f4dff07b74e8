// OCI image layouts (image-spec image-layout.md) as a directory or a tar
// archive: `manifold export` writes one, `manifold load` reads one (ours, or
// one written by skopeo, umoci or buildah).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/image/image_store.h"

namespace manifold::image {

enum class LayoutFormat { kTar, kDirectory };

struct ExportOptions {
  LayoutFormat format = LayoutFormat::kTar;
  /// mtime of the archive's entries; 0 when unset, so exports are reproducible.
  std::int64_t mtime = 0;
};

/// Writes `image` to `dest`. As BuildKit's OCI exporter does, index.json holds
/// one descriptor — the multi-platform index, or the manifest of a
/// single-platform image — annotated with the image's name
/// (`io.containerd.image.name`) and tag (`org.opencontainers.image.ref.name`).
/// A tar is written to `dest.tmp-*` and renamed, so a failure leaves nothing;
/// a directory destination must not exist or be empty.
Expected<void> ExportLayout(ImageStore& store, const ResolvedImage& image, const std::string& dest,
                            const ExportOptions& opts);

struct LoadedImage {
  std::string name;  ///< normalised
  oci::Descriptor root;
};

/// Reads a layout directory or tar into the store, verifying every blob's
/// digest, and names each image of its index.json: `name_override` when given
/// (the layout must then hold one image), else the image's annotations.
Expected<std::vector<LoadedImage>> LoadLayout(ImageStore& store, const std::string& source,
                                              const std::optional<std::string>& name_override);

}  // namespace manifold::image
