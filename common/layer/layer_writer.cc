#include "common/layer/layer_writer.h"

#include "common/oci/media_types.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/layer/tar_writer.h"

namespace manifold::layer {

std::string_view LayerMediaType(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return oci::kOciLayer;
    case Compression::kGzip:
      return oci::kOciLayerGzip;
    case Compression::kZstd:
      return oci::kOciLayerZstd;
  }
  return oci::kOciLayer;
}

Expected<void> HashingSink::Write(std::string_view data) {
  sha_.Update(data);
  bytes_ += data.size();
  if (next_ != nullptr) return next_->Write(data);
  return Ok();
}

Expected<LayerInfo> WriteLayer(int dir_fd, ByteSink& out, Compression compression,
                               const DiffOptions& options,
                               const CompressOptions& compress_options) {
  HashingSink compressed(&out);
  MF_TRY(compressor, NewCompressor(compression, compressed, compress_options));
  HashingSink uncompressed(compressor.get());
  TarWriter tar(uncompressed);
  MF_TRY(stats, WriteTree(dir_fd, tar, options));
  MF_TRY_VOID(compressor->Finish());

  LayerInfo info;
  info.diff_id = uncompressed.Digest();
  info.digest = compressed.Digest();
  info.uncompressed_size = uncompressed.bytes();
  info.size = compressed.bytes();
  info.media_type = std::string(LayerMediaType(compression));
  info.stats = stats;
  return info;
}

Expected<LayerInfo> WriteLayer(const std::string& dir_path, ByteSink& out, Compression compression,
                               const DiffOptions& options,
                               const CompressOptions& compress_options) {
  int fd = ::open(dir_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return MakeError(err == EMFILE || err == ENFILE || err == ENOMEM ? ErrorKind::kResourceExhausted
                                                                     : ErrorKind::kInternal,
                     "layer.diff.io", "open \"" + dir_path + "\": " + std::strerror(err));
  }
  auto info = WriteLayer(fd, out, compression, options, compress_options);
  ::close(fd);
  return info;
}

}  // namespace manifold::layer
