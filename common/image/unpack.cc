#include "common/image/unpack.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/fs/root_dir.h"
#include "common/image/blob_stream.h"
#include "common/image/layer_index.h"
#include "common/layer/apply.h"

namespace manifold::image {

namespace {

Expected<UnpackStats> ApplyAll(ImageStore& store, const PlatformImage& img, const std::string& dest) {
  UnpackStats stats;
  MF_TRY(root, fs::RootDir::Open(dest));
  const auto& layers = img.manifest.layers;
  const auto& diff_ids = img.config.rootfs.diff_ids;
  if (layers.size() != diff_ids.size())
    return MakeError(ErrorKind::kIntegrity, "layer.diffid_mismatch",
                     "manifest has " + std::to_string(layers.size()) + " layers but the config names " +
                         std::to_string(diff_ids.size()) + " diff_ids");
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string digest = layers[i].digest.ToString();
    MF_TRY(reader, store.blobs().OpenBlob(digest, true));
    BlobSource src(*reader);
    MF_TRY(applied, layer::Apply(root, src).With("applying layer " + digest));
    if (applied.diff_id != diff_ids[i].ToString())
      return MakeError(ErrorKind::kIntegrity, "layer.diffid_mismatch",
                       "layer " + digest + " uncompresses to " + applied.diff_id + ", but the config says " +
                           diff_ids[i].ToString());
    MF_TRY_VOID(LayerIndex(store.state_dir() + "/content").Record(applied.diff_id, layers[i]));
    ++stats.layers;
    stats.entries += applied.entries;
    stats.warnings += applied.warning_count;
  }
  return stats;
}

}  // namespace

Expected<UnpackStats> Unpack(ImageStore& store, const PlatformImage& img, const std::string& dest) {
  if (::mkdir(dest.c_str(), 0755) != 0)
    return MakeError(errno == EEXIST ? ErrorKind::kInvalidInput : ErrorKind::kResourceExhausted,
                     "image.unpack.dest", "cannot create " + dest + ": " + std::strerror(errno));
  auto r = ApplyAll(store, img, dest);
  if (!r.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dest, ec);
  }
  return r;
}

}  // namespace manifold::image
