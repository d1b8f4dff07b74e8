#include "common/image/layer_index.h"
#include "common/base/temp_name.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/image/blob_stream.h"
#include "common/layer/layer_writer.h"

namespace manifold::image {

namespace {

layer::Compression CompressionOf(const std::string& media_type) {
  if (media_type.size() >= 5 && media_type.compare(media_type.size() - 5, 5, "+zstd") == 0)
    return layer::Compression::kZstd;
  if (media_type.find("gzip") != std::string::npos) return layer::Compression::kGzip;
  return layer::Compression::kNone;
}

}  // namespace

Expected<void> LayerIndex::Record(const std::string& diff_id, const oci::Descriptor& layer) {
  MF_TRY(d, oci::ParseDigest(diff_id));  // validated before it names a path
  if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST)
    return MakeError(ErrorKind::kResourceExhausted, "image.layer_index.io",
                     "cannot create " + dir_ + ": " + std::strerror(errno));
  // One file per (diff_id, blob): concurrent writers never lose each other's records.
  std::string path = dir_ + "/" + d.hex + "." + layer.digest.hex;
  std::string tmp = path + UniqueTempSuffix();
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"mediaType", layer.media_type}, {"digest", layer.digest.ToString()},
                          {"size", layer.size}}.dump();
    if (!out) return MakeError(ErrorKind::kResourceExhausted, "image.layer_index.io", "cannot write " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return MakeError(ErrorKind::kResourceExhausted, "image.layer_index.io",
                     "cannot rename " + tmp + ": " + std::strerror(errno));
  return Ok();
}

Expected<std::vector<oci::Descriptor>> LayerIndex::Lookup(const std::string& diff_id) const {
  MF_TRY(d, oci::ParseDigest(diff_id));
  std::vector<oci::Descriptor> out;
  std::string prefix = d.hex + ".";
  if (DIR* dir = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name.rfind(prefix, 0) != 0 || name.find(".tmp.") != std::string::npos) continue;
      std::ifstream in(dir_ + "/" + name);
      std::stringstream ss;
      ss << in.rdbuf();
      auto j = nlohmann::json::parse(ss.str(), nullptr, false);
      if (j.is_discarded() || !j.contains("digest")) continue;
      auto digest = oci::ParseDigest(j["digest"].get<std::string>());
      if (!digest.ok()) continue;
      oci::Descriptor desc;
      desc.media_type = j.value("mediaType", "");
      desc.digest = *digest;
      desc.size = j.value("size", static_cast<std::int64_t>(0));
      out.push_back(desc);
    }
    ::closedir(dir);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.digest.hex < b.digest.hex; });
  return out;
}

Expected<oci::Descriptor> LayerIndex::Encode(cas::BlobStore& store, const std::string& diff_id,
                                             layer::Compression compression) {
  MF_TRY(known, Lookup(diff_id));
  const oci::Descriptor* source = nullptr;
  for (const auto& k : known) {
    MF_TRY(has, store.Has(k.digest.ToString()));
    if (!has) continue;
    if (CompressionOf(k.media_type) == compression) return k;
    if (!source) source = &k;
  }
  if (!source)
    return MakeError(ErrorKind::kInvalidInput, "layer.unknown_diff_id",
                     "no stored layer uncompresses to " + diff_id);
  MF_TRY(reader, store.OpenBlob(source->digest.ToString(), true));
  BlobSource src(*reader);
  MF_TRY(plain, layer::NewAutoDecompressor(src));
  MF_TRY(writer, store.BeginIngest());
  BlobSink blob(*writer);
  layer::HashingSink compressed(&blob);
  MF_TRY(comp, layer::NewCompressor(compression, compressed));
  layer::HashingSink tar(comp.get());
  MF_TRY(n, layer::CopyStream(*plain, tar));
  (void)n;
  MF_TRY_VOID(comp->Finish());
  std::string got = tar.Digest();
  if (got != diff_id)
    return MakeError(ErrorKind::kIntegrity, "layer.diffid_mismatch",
                     "layer " + source->digest.ToString() + " uncompresses to " + got + ", not " + diff_id);
  MF_TRY(digest, writer->Commit());
  oci::Descriptor out;
  out.media_type = std::string(layer::LayerMediaType(compression));
  MF_TRY(parsed, oci::ParseDigest(digest));
  out.digest = parsed;
  out.size = static_cast<std::int64_t>(compressed.bytes());
  MF_TRY_VOID(Record(diff_id, out));
  return out;
}

}  // namespace manifold::image
