// `manifold import`: a root filesystem (a directory or a tar, like `docker
// import`) becomes a one-layer image for one platform under a name; importing
// the same name for another platform adds that platform to the name's index.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/expected.h"
#include "common/image/image_store.h"
#include "common/layer/compress.h"
#include "common/oci/platform.h"

namespace manifold::image {

struct ImportOptions {
  oci::Platform platform;
  /// Layer mtimes are clamped to it and it is the image's `created` time;
  /// unset means the file times as they are and the current time.
  std::optional<std::int64_t> source_date_epoch;
  layer::Compression compression = layer::Compression::kGzip;
};

struct ImportResult {
  std::string name;               ///< normalised
  oci::Descriptor manifest;       ///< the platform's manifest
  oci::Descriptor root;           ///< what the name points to now
  std::string diff_id;
};

/// kInvalidInput "image.import.source" when `rootfs` is neither a directory nor
/// a tar archive (plain, gzip or zstd).
Expected<ImportResult> Import(ImageStore& store, const std::string& rootfs, const std::string& name,
                              const ImportOptions& opts);

/// RFC 3339 UTC ("2023-11-14T22:13:20Z").
std::string Rfc3339(std::int64_t unix_seconds);

}  // namespace manifold::image
