#include "common/registry/push.h"

#include <atomic>
#include <set>

#include "common/image/image_store.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/registry/client.h"
#include "common/registry/parallel.h"

namespace manifold::registry {
namespace {

Error Incomplete(const std::string& digest, const std::string& what) {
  return MakeError(ErrorKind::kInvalidInput, "registry.push_incomplete",
                   "cannot push: " + what + " " + digest + " is not in the local store");
}

struct Document {
  oci::Descriptor desc;
  std::string bytes;
};

}  // namespace

Expected<PushResult> Push(image::ImageStore& store, const std::string& name,
                          const std::string& reference, const PushOptions& options) {
  MF_TRY(normalized, image::ImageStore::NormalizeName(name));
  MF_TRY(record, store.names().Get(normalized));
  if (!record)
    return MakeError(ErrorKind::kInvalidInput, "image.not_found",
                     "image \"" + name + "\" is not in the local store (" + store.state_dir() + ")");
  MF_TRY(digest, oci::ParseDigest(record->digest));
  MF_TRY(size, store.blobs().Stat(record->digest));
  oci::Descriptor root;
  root.media_type = record->media_type;
  root.digest = digest;
  root.size = static_cast<std::int64_t>(size);
  MF_TRY(source, oci::ParseReference(name));
  MF_TRY(target, oci::ParseReference(reference.empty() ? name : reference));
  PushOptions o = options;
  if (source.domain == target.domain && source.path != target.path)
    o.mount_from.push_back(source.path);
  MF_TRY(client, RegistryClient::Create(target.domain, o.registry));
  return Push(store, *client, root, target, o);
}

Expected<PushResult> Push(image::ImageStore& store, const oci::Descriptor& root,
                          const std::string& reference, const PushOptions& options) {
  MF_TRY(target, oci::ParseReference(reference));
  MF_TRY(client, RegistryClient::Create(target.domain, options.registry));
  return Push(store, *client, root, target, options);
}

Expected<PushResult> Push(image::ImageStore& store, RegistryClient& client,
                          const oci::Descriptor& root, const oci::Reference& target,
                          const PushOptions& options) {
  MF_ASSERT(client.domain() == target.domain, "client for " + client.domain() + " used for " +
                                                  target.domain);
  PushResult result;
  result.root = root;
  std::string name = target.String();
  const std::string& repo = target.Repository();
  if (target.digest && *target.digest != root.digest)
    return MakeError(ErrorKind::kInvalidInput, "registry.push_digest",
                     "cannot push " + root.digest.ToString() + " as " + name);

  auto read = [&store](const oci::Descriptor& d, const char* what) -> Expected<std::string> {
    MF_TRY(has, store.blobs().Has(d.digest.ToString()));
    if (!has) return Incomplete(d.digest.ToString(), what);
    return store.blobs().ReadAll(d.digest.ToString());
  };
  MF_TRY(root_bytes, read(root, "image"));

  std::vector<Document> manifests;
  std::vector<oci::Descriptor> blobs;
  std::set<oci::Digest> seen;
  auto add_manifest = [&](const oci::Descriptor& d, std::string bytes) -> Expected<void> {
    MF_TRY(m, oci::ParseManifest(bytes).With("manifest " + d.digest.ToString()));
    if (seen.insert(m.config.digest).second) blobs.push_back(m.config);
    for (const auto& layer : m.layers)
      if (seen.insert(layer.digest).second) blobs.push_back(layer);
    manifests.push_back(Document{d, std::move(bytes)});
    return Ok();
  };
  if (oci::IsIndex(root.media_type)) {
    MF_TRY(index, oci::ParseIndex(root_bytes).With("index " + root.digest.ToString()));
    std::set<oci::Digest> listed;
    for (const auto& entry : index.manifests) {
      if (!listed.insert(entry.digest).second) continue;
      if (oci::IsIndex(entry.media_type))
        return MakeError(ErrorKind::kUnimplemented, "registry.nested_index",
                         "cannot push " + name + ": nested index " + entry.digest.ToString());
      MF_TRY(bytes, read(entry, "manifest"));
      if (oci::IsManifest(entry.media_type)) {
        MF_TRY_VOID(add_manifest(entry, std::move(bytes)));
      } else {
        manifests.push_back(Document{entry, std::move(bytes)});  // an artifact: copied as is
      }
    }
  } else if (oci::IsManifest(root.media_type)) {
    // The root itself is pushed last, by tag; only its blobs come first.
    MF_TRY_VOID(add_manifest(root, root_bytes));
    manifests.clear();
  } else {
    return MakeError(ErrorKind::kInvalidInput, "registry.push_media_type",
                     "cannot push " + root.digest.ToString() + ": " + root.media_type +
                         " is not an image index or manifest");
  }
  std::vector<bool> local(blobs.size(), true);
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    const std::string d = blobs[i].digest.ToString();
    MF_TRY(has, store.blobs().Has(d));
    local[i] = has;
    if (!has && !options.pushed_elsewhere.count(d)) return Incomplete(d, "blob");
  }

  std::atomic<int> uploaded{0}, mounted{0}, existing{0};
  MF_TRY_VOID(ParallelFor(blobs.size(), options.parallelism, [&](std::size_t i) -> Expected<void> {
    if (!local[i]) {
      MF_TRY(size, client.HeadBlob(repo, blobs[i].digest).With("pushing " + name));
      if (!size)
        return MakeError(ErrorKind::kTransient, "registry.push_incomplete",
                         "cannot push " + name + ": blob " + blobs[i].digest.ToString() +
                             " was pushed by another node but the registry does not have it");
      ++existing;
      return Ok();
    }
    MF_TRY(how, client.PushBlob(repo, blobs[i], store.blobs(), options.mount_from)
                    .With("pushing " + name));
    if (how == BlobPush::kUploaded) ++uploaded;
    if (how == BlobPush::kMounted) ++mounted;
    if (how == BlobPush::kExisted) ++existing;
    return Ok();
  }));
  result.blobs_uploaded = uploaded;
  result.blobs_mounted = mounted;
  result.blobs_existing = existing;

  for (const auto& m : manifests) {
    MF_TRY_VOID(client.PutManifest(repo, m.desc.digest.ToString(), m.desc.media_type, m.bytes)
                    .With("pushing " + name));
    ++result.manifests_pushed;
  }
  std::string reference = target.digest ? target.digest->ToString() : target.tag;
  MF_TRY(confirmed, client.PutManifest(repo, reference, root.media_type, root_bytes)
                        .With("pushing " + name));
  ++result.manifests_pushed;
  result.digest = confirmed;
  return result;
}

}  // namespace manifold::registry
