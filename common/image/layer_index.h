// Layers known by their diff_id (the digest of the uncompressed tar) as well as
// by their blob digest: `<state>/content/diffids/<hex>` lists every stored blob
// that uncompresses to that tar, so a layer can be found whatever its
// compression and re-encoded (gzip <-> zstd <-> none) without being rebuilt.
#pragma once

#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/cas/blob_store.h"
#include "common/layer/compress.h"
#include "common/oci/descriptor.h"

namespace manifold::image {

class LayerIndex {
 public:
  /// `content_dir` is the content store's root (`<state>/content`).
  explicit LayerIndex(std::string content_dir) : dir_(content_dir + "/diffids") {}

  /// Records that blob `layer` uncompresses to `diff_id`. Idempotent; safe
  /// with concurrent writers (each record is one file, replaced atomically).
  Expected<void> Record(const std::string& diff_id, const oci::Descriptor& layer);

  /// Every recorded blob for `diff_id` (empty when none).
  Expected<std::vector<oci::Descriptor>> Lookup(const std::string& diff_id) const;

  /// A blob for `diff_id` in `compression`: a recorded one if present, else
  /// made by decompressing a recorded blob and compressing it again, verified
  /// against the diff_id and recorded. kInvalidInput "layer.unknown_diff_id"
  /// when no blob for it is stored.
  Expected<oci::Descriptor> Encode(cas::BlobStore& store, const std::string& diff_id,
                                   layer::Compression compression);

 private:
  std::string dir_;
};

}  // namespace manifold::image
