#include "common/image/import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "common/base/unique_fd.h"
#include "common/image/blob_stream.h"
#include "common/image/layer_index.h"
#include "common/layer/layer_writer.h"
#include "common/oci/media_types.h"

namespace manifold::image {

namespace {

// Sends layer bytes into a CAS ingest.
// Passes bytes through, checking that the stream starts like a tar archive
// (the "ustar" magic at offset 257 of the first header).
class TarCheckSink : public layer::ByteSink {
 public:
  explicit TarCheckSink(layer::ByteSink& next) : next_(next) {}
  Expected<void> Write(std::string_view data) override {
    if (head_.size() < 512) head_.append(data.substr(0, 512 - head_.size()));
    return next_.Write(data);
  }
  bool LooksLikeTar() const { return head_.size() >= 262 && head_.compare(257, 5, "ustar") == 0; }

 private:
  layer::ByteSink& next_;
  std::string head_;
};

// A tar file used as the layer: decompressed, hashed (diff_id), recompressed.
Expected<layer::LayerInfo> LayerFromTar(const std::string& path, cas::BlobWriter& out,
                                        layer::Compression compression) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return MakeError(ErrorKind::kInvalidInput, "image.import.source",
                     "cannot open " + path + ": " + std::strerror(errno));
  layer::FdSource file(fd.get());
  MF_TRY(plain, layer::NewAutoDecompressor(file));
  BlobSink blob(out);
  layer::HashingSink compressed(&blob);
  MF_TRY(comp, layer::NewCompressor(compression, compressed));
  layer::HashingSink tar(comp.get());
  TarCheckSink check(tar);
  MF_TRY(n, layer::CopyStream(*plain, check));
  (void)n;
  if (!check.LooksLikeTar())
    return MakeError(ErrorKind::kInvalidInput, "image.import.source",
                     path + " is neither a directory nor a tar archive");
  MF_TRY_VOID(comp->Finish());
  layer::LayerInfo info;
  info.diff_id = tar.Digest();
  info.uncompressed_size = tar.bytes();
  info.digest = compressed.Digest();
  info.size = compressed.bytes();
  info.media_type = std::string(layer::LayerMediaType(compression));
  return info;
}

}  // namespace

std::string Rfc3339(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Expected<ImportResult> Import(ImageStore& store, const std::string& rootfs, const std::string& user_name,
                              const ImportOptions& opts) {
  MF_TRY(name, ImageStore::NormalizeName(user_name));
  struct stat st {};
  if (::stat(rootfs.c_str(), &st) != 0)
    return MakeError(ErrorKind::kInvalidInput, "image.import.source",
                     "cannot read " + rootfs + ": " + std::strerror(errno));
  MF_TRY(writer, store.blobs().BeginIngest());
  layer::LayerInfo info;
  if (S_ISDIR(st.st_mode)) {
    layer::DiffOptions diff;
    diff.source_date_epoch = opts.source_date_epoch;
    BlobSink sink(*writer);
    MF_TRY(i, layer::WriteLayer(rootfs, sink, opts.compression, diff));
    info = std::move(i);
  } else if (S_ISREG(st.st_mode)) {
    MF_TRY(i, LayerFromTar(rootfs, *writer, opts.compression));
    info = std::move(i);
  } else {
    return MakeError(ErrorKind::kInvalidInput, "image.import.source",
                     rootfs + " is neither a directory nor a tar archive");
  }
  MF_TRY(layer_digest, writer->Commit());
  MF_ASSERT(layer_digest == info.digest, "layer digest " + layer_digest + " != " + info.digest);

  std::int64_t created = opts.source_date_epoch.value_or(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch()).count());
  oci::ImageConfig config;
  config.created = Rfc3339(created);
  config.architecture = opts.platform.architecture;
  config.os = opts.platform.os;
  config.variant = opts.platform.variant;
  MF_TRY(diff_id, oci::ParseDigest(info.diff_id));
  config.rootfs.diff_ids.push_back(diff_id);
  oci::HistoryEntry h;
  h.created = config.created;
  h.created_by = "manifold import";
  h.comment = "imported from a root filesystem";
  config.history.push_back(h);
  MF_TRY(config_desc, store.PutDocument(std::string(oci::kOciImageConfig), config.ToJson()));

  oci::ImageManifest manifest;
  manifest.config = config_desc;
  oci::Descriptor layer_desc;
  layer_desc.media_type = info.media_type;
  MF_TRY(ld, oci::ParseDigest(info.digest));
  layer_desc.digest = ld;
  layer_desc.size = static_cast<std::int64_t>(info.size);
  manifest.layers.push_back(layer_desc);
  MF_TRY_VOID(LayerIndex(store.state_dir() + "/content").Record(info.diff_id, layer_desc));
  MF_TRY(manifest_desc, store.PutDocument(std::string(oci::kOciImageManifest), manifest.ToJson()));
  manifest_desc.platform = opts.platform;
  MF_TRY(root, store.AddPlatform(name, manifest_desc));
  return ImportResult{name, manifest_desc, root, info.diff_id};
}

}  // namespace manifold::image
