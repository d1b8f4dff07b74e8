#include "common/registry/pull.h"

#include <atomic>
#include <set>

#include "common/image/image_store.h"
#include "common/image/layer_index.h"
#include "common/oci/image_config.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/registry/client.h"
#include "common/registry/parallel.h"

namespace manifold::registry {
namespace {

struct PulledManifest {
  oci::Descriptor desc;
  std::string bytes;
  oci::ImageManifest manifest;
};

Expected<PulledManifest> FetchPlatformManifest(RegistryClient& client, const std::string& repo,
                                               const oci::Descriptor& entry,
                                               const std::string& name) {
  MF_TRY(fetched, client.GetManifest(repo, entry.digest.ToString()));
  if (static_cast<std::int64_t>(fetched.bytes.size()) != entry.size)
    return MakeError(ErrorKind::kIntegrity, "registry.size_mismatch",
                     "manifest " + entry.digest.ToString() + " of " + name + " is " +
                         std::to_string(fetched.bytes.size()) + " bytes, the index says " +
                         std::to_string(entry.size));
  if (!oci::IsManifest(fetched.media_type))
    return MakeError(ErrorKind::kUnimplemented, "registry.nested_index",
                     "index " + name + " lists " + entry.digest.ToString() + ", a " +
                         fetched.media_type + ", where an image manifest was expected");
  MF_TRY(manifest, oci::ParseManifest(fetched.bytes));
  return PulledManifest{entry, std::move(fetched.bytes), std::move(manifest)};
}

std::string PlatformList(const std::vector<oci::Platform>& platforms) {
  std::string out;
  for (const auto& p : platforms) out += (out.empty() ? "" : ", ") + p.ToString();
  return out;
}

}  // namespace

Expected<PullResult> Pull(image::ImageStore& store, const std::string& reference,
                          const PullOptions& options) {
  MF_TRY(ref, oci::ParseReference(reference));
  MF_TRY(client, RegistryClient::Create(ref.domain, options.registry));
  return Pull(store, *client, ref, options);
}

Expected<PullResult> Pull(image::ImageStore& store, RegistryClient& client,
                          const oci::Reference& ref, const PullOptions& options) {
  MF_ASSERT(client.domain() == ref.domain, "client for " + client.domain() + " used for " +
                                               ref.domain);
  PullResult result;
  result.name = ref.String();
  const std::string& repo = ref.Repository();
  MF_TRY(top, client.GetManifest(repo, ref.digest ? ref.digest->ToString() : ref.tag));

  std::vector<PulledManifest> manifests;
  std::optional<std::pair<std::string, std::string>> index_doc;  // media type, bytes
  if (oci::IsIndex(top.media_type)) {
    MF_TRY(index, oci::ParseIndex(top.bytes).With("index " + result.name));
    std::vector<oci::Descriptor> chosen;
    std::set<oci::Digest> seen;
    if (options.platforms.empty()) {
      // Everything the index lists that is an image manifest (attestations
      // included); other artifact types are left out.
      for (const auto& e : index.manifests)
        if (oci::IsManifest(e.media_type) && seen.insert(e.digest).second) chosen.push_back(e);
    } else {
      for (const auto& want : options.platforms) {
        MF_TRY(entry, oci::SelectManifest(index, want).With("pulling " + result.name));
        if (seen.insert(entry.digest).second) chosen.push_back(entry);
      }
    }
    for (const auto& entry : chosen) {
      MF_TRY(m, FetchPlatformManifest(client, repo, entry, result.name));
      manifests.push_back(std::move(m));
    }
    if (options.platforms.empty()) {
      result.root = top.descriptor();
      index_doc.emplace(top.media_type, top.bytes);
    } else if (chosen.size() == 1) {
      result.root = chosen[0];
      result.root.platform.reset();
    } else {
      oci::ImageIndex subset;
      subset.media_type = index.media_type.empty() ? top.media_type : index.media_type;
      subset.manifests = chosen;
      subset.annotations = index.annotations;
      std::string bytes = subset.ToJson();
      result.root = oci::DescribeBytes(top.media_type, bytes);
      index_doc.emplace(top.media_type, std::move(bytes));
    }
  } else {
    MF_TRY(manifest, oci::ParseManifest(top.bytes).With("manifest " + result.name));
    result.root = top.descriptor();
    manifests.push_back(PulledManifest{top.descriptor(), top.bytes, std::move(manifest)});
  }

  // Configs and layers, each once, skipping what the store holds.
  std::vector<oci::Descriptor> missing;
  std::set<oci::Digest> planned;
  for (const auto& m : manifests) {
    std::vector<const oci::Descriptor*> blobs = {&m.manifest.config};
    for (const auto& layer : m.manifest.layers) blobs.push_back(&layer);
    for (const auto* blob : blobs) {
      if (!planned.insert(blob->digest).second) continue;
      MF_TRY(has, store.blobs().Has(blob->digest.ToString()));
      if (has) {
        ++result.blobs_present;
      } else {
        missing.push_back(*blob);
      }
    }
  }
  MF_TRY_VOID(ParallelFor(missing.size(), options.parallelism, [&](std::size_t i) {
    return client.GetBlob(repo, missing[i], store.blobs()).With("pulling " + result.name);
  }));
  result.blobs_fetched = static_cast<int>(missing.size());

  image::LayerIndex layer_index(store.state_dir() + "/content");
  for (const auto& m : manifests) {
    if (!oci::IsImageConfig(m.manifest.config.media_type)) continue;  // an artifact
    MF_TRY(config_bytes, store.blobs().ReadAll(m.manifest.config.digest.ToString()));
    MF_TRY(config, oci::ParseImageConfig(config_bytes)
                       .With("config " + m.manifest.config.digest.ToString() + " of " +
                             result.name));
    if (!options.platforms.empty() && !index_doc && manifests.size() == 1) {
      oci::Platform have{config.os, config.architecture, config.variant};
      bool fits = false;
      for (const auto& want : options.platforms) fits = fits || oci::PlatformMatches(want, have);
      if (!fits)
        return MakeError(ErrorKind::kInvalidInput, "oci.no_platform",
                         "image " + result.name + " is for " + have.ToString() + ", not " +
                             PlatformList(options.platforms));
    }
    // diff_ids pair with layers by position; a manifest that disagrees with
    // its config is not indexed (it will fail clearly when unpacked).
    if (config.rootfs.diff_ids.size() != m.manifest.layers.size()) continue;
    for (std::size_t i = 0; i < m.manifest.layers.size(); ++i) {
      if (!oci::IsLayer(m.manifest.layers[i].media_type)) continue;
      MF_TRY_VOID(layer_index.Record(config.rootfs.diff_ids[i].ToString(), m.manifest.layers[i]));
    }
  }

  // Documents after their blobs, the root last, then the name.
  for (const auto& m : manifests) MF_TRY_VOID(store.PutDocument(m.desc.media_type, m.bytes));
  if (index_doc) MF_TRY_VOID(store.PutDocument(index_doc->first, index_doc->second));
  MF_TRY_VOID(store.Tag(result.name, result.root));
  return result;
}

}  // namespace manifold::registry
