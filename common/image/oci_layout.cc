#include "common/image/oci_layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "common/base/unique_fd.h"
#include "common/layer/byte_stream.h"
#include "common/layer/compress.h"
#include "common/layer/tar_reader.h"
#include "common/layer/tar_writer.h"
#include "common/oci/media_types.h"

namespace manifold::image {

namespace {

constexpr const char* kLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";
constexpr const char* kNameAnnotation = "io.containerd.image.name";
constexpr const char* kRefAnnotation = "org.opencontainers.image.ref.name";

Error IoErr(const std::string& what, int err) {
  return MakeError(err == ENOSPC || err == EDQUOT ? ErrorKind::kResourceExhausted
                                                   : ErrorKind::kInvalidInput,
                   "image.layout.io", what + ": " + std::strerror(err));
}

// The layout's index.json: one descriptor for the image, annotated with its name.
std::string LayoutIndex(const ResolvedImage& image) {
  oci::ImageIndex index;
  oci::Descriptor root = image.root;
  if (!image.index && image.platforms.size() == 1) root.platform = image.platforms[0].manifest_desc.platform;
  root.annotations[kNameAnnotation] = image.name;
  auto ref = oci::ParseReference(image.name);
  if (ref.ok()) root.annotations[kRefAnnotation] = ref->tag;
  index.manifests.push_back(root);
  return index.ToJson();
}

// Streams one blob of the store into a sink.
Expected<void> CopyBlob(ImageStore& store, const oci::Descriptor& d, layer::ByteSink& out) {
  MF_TRY(reader, store.blobs().OpenBlob(d.digest.ToString(), true));
  std::vector<char> buf(1 << 20);
  for (;;) {
    MF_TRY(n, reader->Read(std::span<char>(buf.data(), buf.size())));
    if (n == 0) break;
    MF_TRY_VOID(out.Write(std::string_view(buf.data(), n)));
  }
  return Ok();
}

Expected<void> ExportTar(ImageStore& store, const ResolvedImage& image, const std::string& dest,
                         const ExportOptions& opts) {
  std::string tmp = dest + ".tmp-" + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return IoErr("creating " + tmp, errno);
  auto write_all = [&]() -> Expected<void> {
    layer::FdSink sink(fd.get());
    layer::TarWriter tar(sink);
    auto dir = [&](const std::string& path) {
      layer::TarHeader h;
      h.path = path;
      h.type = layer::EntryType::kDirectory;
      h.mode = 0755;
      h.mtime = opts.mtime;
      return tar.WriteHeader(h);
    };
    auto file = [&](const std::string& path, std::uint64_t size) {
      layer::TarHeader h;
      h.path = path;
      h.type = layer::EntryType::kRegular;
      h.mode = 0644;
      h.mtime = opts.mtime;
      h.size = size;
      return tar.WriteHeader(h);
    };
    MF_TRY_VOID(dir("blobs/"));
    MF_TRY_VOID(dir("blobs/sha256/"));
    for (const auto& d : ImageStore::Closure(image)) {
      MF_TRY_VOID(file("blobs/sha256/" + d.digest.hex, static_cast<std::uint64_t>(d.size)));
      // TarWriter is itself the sink for the entry's data.
      struct EntrySink : layer::ByteSink {
        layer::TarWriter& t;
        explicit EntrySink(layer::TarWriter& tw) : t(tw) {}
        Expected<void> Write(std::string_view data) override { return t.WriteData(data); }
      } entry(tar);
      MF_TRY_VOID(CopyBlob(store, d, entry));
    }
    std::string index = LayoutIndex(image);
    MF_TRY_VOID(file("index.json", index.size()));
    MF_TRY_VOID(tar.WriteData(index));
    std::string layout = kLayoutFile;
    MF_TRY_VOID(file("oci-layout", layout.size()));
    MF_TRY_VOID(tar.WriteData(layout));
    return tar.Finish();
  };
  auto r = write_all();
  if (r.ok() && ::fsync(fd.get()) != 0) r = IoErr("syncing " + tmp, errno);
  if (r.ok() && ::rename(tmp.c_str(), dest.c_str()) != 0) r = IoErr("renaming to " + dest, errno);
  if (!r.ok()) ::unlink(tmp.c_str());
  return r;
}

Expected<void> WriteFileAt(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return IoErr("creating " + path, errno);
  layer::FdSink sink(fd.get());
  return sink.Write(data);
}

Expected<void> ExportDir(ImageStore& store, const ResolvedImage& image, const std::string& dest) {
  if (::mkdir(dest.c_str(), 0755) != 0 && errno != EEXIST) return IoErr("creating " + dest, errno);
  if (DIR* d = ::opendir(dest.c_str())) {
    int entries = 0;
    while (dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) ++entries;
    ::closedir(d);
    if (entries)
      return MakeError(ErrorKind::kInvalidInput, "image.export.dest",
                       "export destination " + dest + " is not empty");
  }
  for (const char* sub : {"/blobs", "/blobs/sha256"})
    if (::mkdir((dest + sub).c_str(), 0755) != 0 && errno != EEXIST) return IoErr("creating " + dest + sub, errno);
  for (const auto& desc : ImageStore::Closure(image)) {
    std::string path = dest + "/blobs/sha256/" + desc.digest.hex;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) return IoErr("creating " + path, errno);
    layer::FdSink sink(fd.get());
    MF_TRY_VOID(CopyBlob(store, desc, sink));
  }
  MF_TRY_VOID(WriteFileAt(dest + "/index.json", LayoutIndex(image)));
  return WriteFileAt(dest + "/oci-layout", kLayoutFile);
}

// "blobs/sha256/<hex>" (with an optional "./") -> "sha256:<hex>", validated.
std::optional<std::string> BlobPathDigest(std::string path) {
  if (path.rfind("./", 0) == 0) path = path.substr(2);
  if (path.rfind("blobs/", 0) != 0) return std::nullopt;
  std::string rest = path.substr(6);
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::string digest = rest.substr(0, slash) + ":" + rest.substr(slash + 1);
  if (!oci::ParseDigest(digest).ok()) return std::nullopt;
  return digest;
}

Expected<void> IngestStream(ImageStore& store, const std::string& digest, std::uint64_t size,
                            layer::ByteSource& src) {
  MF_TRY(has, store.blobs().Has(digest));
  if (has) return Ok();
  MF_TRY(w, store.blobs().BeginIngest(digest, size));
  std::vector<char> buf(1 << 20);
  for (;;) {
    MF_TRY(n, src.Read(std::span<char>(buf.data(), buf.size())));
    if (n == 0) break;
    MF_TRY_VOID(w->Write(std::string_view(buf.data(), n)));
  }
  MF_TRY(c, w->Commit());
  (void)c;
  return Ok();
}

// Reads the layout's index.json into the store's names.
Expected<std::vector<LoadedImage>> NameImages(ImageStore& store, const std::string& index_json,
                                              const std::string& source,
                                              const std::optional<std::string>& name_override) {
  MF_TRY(index, oci::ParseIndex(index_json).With("reading " + source + " index.json"));
  std::vector<LoadedImage> out;
  std::vector<oci::Descriptor> images;
  for (const auto& d : index.manifests)
    if (oci::IsIndex(d.media_type) || oci::IsManifest(d.media_type)) images.push_back(d);
  if (images.empty())
    return MakeError(ErrorKind::kInvalidInput, "image.load.empty", source + " holds no image");
  if (name_override && images.size() != 1)
    return MakeError(ErrorKind::kInvalidInput, "image.load.ambiguous",
                     source + " holds " + std::to_string(images.size()) +
                         " images: a single -t name cannot name them all");
  for (const auto& d : images) {
    std::string name;
    if (name_override) {
      name = *name_override;
    } else if (d.annotations.count(kNameAnnotation)) {
      name = d.annotations.at(kNameAnnotation);
    } else if (d.annotations.count(kRefAnnotation) &&
               d.annotations.at(kRefAnnotation).find_first_of(":/") != std::string::npos) {
      name = d.annotations.at(kRefAnnotation);  // skopeo's oci-archive:FILE:name:tag
    } else {
      return MakeError(ErrorKind::kInvalidInput, "image.load.no_name",
                       source + " does not name image " + d.digest.ToString() + ": give one with -t NAME");
    }
    MF_TRY(normalized, ImageStore::NormalizeName(name));
    // Every blob the image needs must now be in the store (verified on ingest).
    MF_TRY(resolved, store.ResolveDescriptor(normalized, d).With("loading " + source));
    for (const auto& blob : ImageStore::Closure(resolved)) {
      MF_TRY(has, store.blobs().Has(blob.digest.ToString()));
      if (!has)
        return MakeError(ErrorKind::kIntegrity, "image.load.missing_blob",
                         source + " lacks blob " + blob.digest.ToString());
    }
    oci::Descriptor root = d;
    root.annotations.clear();
    root.platform.reset();
    MF_TRY_VOID(store.Tag(normalized, root));
    out.push_back({normalized, root});
  }
  return out;
}

Expected<std::string> ReadSmall(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoErr("opening " + path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoErr("reading " + path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > oci::kMaxIndexBytes)
      return MakeError(ErrorKind::kInvalidInput, "oci.too_large", path + " is over 4 MiB");
  }
  return out;
}

Expected<std::vector<LoadedImage>> LoadDir(ImageStore& store, const std::string& dir,
                                           const std::optional<std::string>& name_override) {
  MF_TRY(index_json, ReadSmall(dir + "/index.json"));
  MF_TRY(index, oci::ParseIndex(index_json).With("reading " + dir + "/index.json"));
  // Walk every referenced blob from index.json, ingesting as we go.
  std::vector<oci::Descriptor> todo = index.manifests;
  std::set<std::string> seen;
  while (!todo.empty()) {
    oci::Descriptor d = todo.back();
    todo.pop_back();
    std::string digest = d.digest.ToString();
    if (!seen.insert(digest).second) continue;
    std::string path = dir + "/blobs/" + d.digest.algorithm + "/" + d.digest.hex;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) {
      if (oci::IsIndex(d.media_type) || oci::IsManifest(d.media_type) || oci::IsImageConfig(d.media_type) ||
          oci::IsLayer(d.media_type))
        return MakeError(ErrorKind::kIntegrity, "image.load.missing_blob",
                         dir + " lacks blob " + digest);
      continue;  // unknown artifacts may be absent
    }
    layer::FdSource src(fd.get());
    MF_TRY_VOID(IngestStream(store, digest, static_cast<std::uint64_t>(d.size), src).With("loading " + path));
    if (oci::IsIndex(d.media_type) || oci::IsManifest(d.media_type)) {
      MF_TRY(children, store.Children(digest));
      MF_TRY(bytes, store.blobs().ReadAll(digest));
      if (oci::IsIndex(d.media_type)) {
        MF_TRY(sub, oci::ParseIndex(bytes));
        for (const auto& m : sub.manifests) todo.push_back(m);
      } else {
        MF_TRY(m, oci::ParseManifest(bytes));
        todo.push_back(m.config);
        for (const auto& l : m.layers) todo.push_back(l);
      }
      (void)children;
    }
  }
  return NameImages(store, index_json, dir, name_override);
}

Expected<std::vector<LoadedImage>> LoadTar(ImageStore& store, const std::string& file,
                                           const std::optional<std::string>& name_override) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoErr("opening " + file, errno);
  layer::FdSource raw(fd.get());
  MF_TRY(plain, layer::NewAutoDecompressor(raw));
  MF_TRY(tar, layer::TarReader::Open(*plain));
  std::optional<std::string> index_json;
  struct EntrySource : layer::ByteSource {
    layer::TarReader& t;
    explicit EntrySource(layer::TarReader& r) : t(r) {}
    Expected<std::size_t> Read(std::span<char> b) override { return t.ReadData(b); }
  } entry_src(*tar);
  for (;;) {
    MF_TRY(entry, tar->Next());
    if (!entry) break;
    if (entry->type != layer::EntryType::kRegular) continue;
    std::string path = entry->path.rfind("./", 0) == 0 ? entry->path.substr(2) : entry->path;
    if (path == "index.json") {
      if (entry->size > static_cast<std::int64_t>(oci::kMaxIndexBytes))
        return MakeError(ErrorKind::kInvalidInput, "oci.too_large", file + ": index.json is over 4 MiB");
      std::string body;
      std::vector<char> buf(65536);
      for (;;) {
        MF_TRY(n, tar->ReadData(std::span<char>(buf.data(), buf.size())));
        if (n == 0) break;
        body.append(buf.data(), n);
      }
      index_json = body;
    } else if (auto digest = BlobPathDigest(path)) {
      MF_TRY_VOID(IngestStream(store, *digest, static_cast<std::uint64_t>(entry->size), entry_src)
                      .With("loading " + file + ": " + path));
    }
  }
  if (!index_json)
    return MakeError(ErrorKind::kInvalidInput, "image.load.not_layout",
                     file + " is not an OCI image layout archive (no index.json)");
  return NameImages(store, *index_json, file, name_override);
}

}  // namespace

Expected<void> ExportLayout(ImageStore& store, const ResolvedImage& image, const std::string& dest,
                            const ExportOptions& opts) {
  if (opts.format == LayoutFormat::kDirectory) return ExportDir(store, image, dest);
  return ExportTar(store, image, dest, opts);
}

Expected<std::vector<LoadedImage>> LoadLayout(ImageStore& store, const std::string& source,
                                              const std::optional<std::string>& name_override) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) return IoErr("reading " + source, errno);
  if (S_ISDIR(st.st_mode)) return LoadDir(store, source, name_override);
  return LoadTar(store, source, name_override);
}

}  // namespace manifold::image
