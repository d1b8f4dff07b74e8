#include "common/image/image_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "common/cas/lease.h"
#include "common/oci/media_types.h"

namespace manifold::image {

std::string DefaultStateDir() {
  const char* env = std::getenv("MANIFOLD_ROOT");
  if (env && *env) return env;
  return "/var/lib/manifold";
}

namespace {

Expected<void> MkdirP(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
        return MakeError(errno == ENOSPC ? ErrorKind::kResourceExhausted : ErrorKind::kInvalidInput,
                         "image.state_dir", "cannot create " + cur + ": " + std::strerror(errno));
    }
    if (i < path.size()) cur += path[i];
  }
  return Ok();
}

// Which document a stored blob is, by its mediaType field (or its shape).
std::string SniffMediaType(const std::string& bytes) {
  auto idx = oci::ParseIndex(bytes);
  if (idx.ok()) return idx->media_type;
  auto man = oci::ParseManifest(bytes);
  if (man.ok()) return man->media_type;
  return "";
}

}  // namespace

Expected<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& state_dir) {
  MF_TRY_VOID(MkdirP(state_dir + "/content"));
  MF_TRY(blobs, cas::LocalBlobStore::Open(state_dir + "/content"));
  MF_TRY(names, NameStore::Open(state_dir));
  return std::unique_ptr<ImageStore>(new ImageStore(state_dir, std::move(blobs), std::move(names)));
}

Expected<std::string> ImageStore::NormalizeName(const std::string& name) {
  MF_TRY(ref, oci::ParseReference(name));
  return ref.String();
}

Expected<oci::Descriptor> ImageStore::PutDocument(const std::string& media_type,
                                                  const std::string& bytes) {
  oci::Descriptor d = oci::DescribeBytes(media_type, bytes);
  MF_TRY(has, blobs_->Has(d.digest.ToString()));
  if (has) return d;
  MF_TRY(w, blobs_->BeginIngest(d.digest.ToString(), bytes.size()));
  MF_TRY_VOID(w->Write(bytes));
  MF_TRY(committed, w->Commit());
  (void)committed;
  return d;
}

Expected<ResolvedImage> ImageStore::ResolveDescriptor(const std::string& name,
                                                      const oci::Descriptor& root) {
  ResolvedImage out;
  out.name = name;
  out.root = root;
  MF_TRY(bytes, blobs_->ReadAll(root.digest.ToString()));
  std::vector<oci::Descriptor> manifests;
  if (oci::IsIndex(root.media_type)) {
    MF_TRY(index, oci::ParseIndex(bytes));
    for (const auto& m : index.manifests)
      if (oci::IsManifest(m.media_type)) manifests.push_back(m);
    out.index = std::move(index);
  } else {
    manifests.push_back(root);
  }
  for (const auto& md : manifests) {
    PlatformImage pi;
    pi.manifest_desc = md;
    MF_TRY(mbytes, blobs_->ReadAll(md.digest.ToString()));
    MF_TRY(m, oci::ParseManifest(mbytes));
    if (!oci::IsImageConfig(m.config.media_type)) continue;  // attestations and other artifacts
    MF_TRY(cbytes, blobs_->ReadAll(m.config.digest.ToString()));
    MF_TRY(c, oci::ParseImageConfig(cbytes));
    if (!pi.manifest_desc.platform)
      pi.manifest_desc.platform = oci::Platform{c.os, c.architecture, c.variant};
    pi.manifest = std::move(m);
    pi.config = std::move(c);
    out.platforms.push_back(std::move(pi));
  }
  return out;
}

Expected<ResolvedImage> ImageStore::Resolve(const std::string& user_name) {
  MF_TRY(name, NormalizeName(user_name));
  MF_TRY(rec, names_.Get(name));
  if (!rec)
    return MakeError(ErrorKind::kInvalidInput, "image.not_found",
                     "image \"" + user_name + "\" is not in the local store (" + state_dir_ + ")");
  MF_TRY(digest, oci::ParseDigest(rec->digest));
  MF_TRY(size, blobs_->Stat(rec->digest));
  oci::Descriptor root;
  root.media_type = rec->media_type;
  root.digest = digest;
  root.size = static_cast<int64_t>(size);
  return ResolveDescriptor(name, root);
}

Expected<oci::Descriptor> ImageStore::AddPlatform(const std::string& name,
                                                  const oci::Descriptor& manifest_desc) {
  MF_ASSERT(manifest_desc.platform.has_value(), "AddPlatform needs a platform");
  oci::Descriptor result;
  MF_TRY_VOID(names_.Update([&](std::map<std::string, NameRecord>* table) -> Expected<void> {
    auto it = table->find(name);
    std::vector<oci::Descriptor> entries;
    if (it != table->end()) {
      MF_TRY(digest, oci::ParseDigest(it->second.digest));
      MF_TRY(size, blobs_->Stat(it->second.digest));
      oci::Descriptor old_root{it->second.media_type, digest, static_cast<int64_t>(size)};
      auto old = ResolveDescriptor(name, old_root);
      if (old.ok()) {
        if (old->index) {
          entries = old->index->manifests;
        } else {
          for (const auto& p : old->platforms) entries.push_back(p.manifest_desc);
        }
      }
    }
    // Replace the same platform, keep the others in order.
    bool replaced = false;
    for (auto& e : entries) {
      if (e.platform && *e.platform == *manifest_desc.platform) {
        e = manifest_desc;
        replaced = true;
      }
    }
    if (!replaced) entries.push_back(manifest_desc);
    if (entries.size() == 1) {
      result = entries[0];
      result.platform.reset();
    } else {
      oci::ImageIndex index;
      index.manifests = entries;
      MF_TRY(d, PutDocument(std::string(oci::kOciImageIndex), index.ToJson()));
      result = d;
    }
    (*table)[name] = NameRecord{result.digest.ToString(), result.media_type};
    return Ok();
  }));
  return result;
}

Expected<void> ImageStore::Tag(const std::string& raw_name, const oci::Descriptor& root) {
  MF_TRY(name, NormalizeName(raw_name));
  return names_.Update([&](std::map<std::string, NameRecord>* table) -> Expected<void> {
    (*table)[name] = NameRecord{root.digest.ToString(), root.media_type};
    return Ok();
  });
}

Expected<cas::GcStats> ImageStore::Prune() {
  MF_TRY(leases, cas::LeaseStore::Open(state_dir_ + "/content"));
  cas::RootsFn roots = [this]() -> Expected<std::vector<std::string>> {
    MF_TRY(all, names_.List());
    std::vector<std::string> out;
    for (const auto& [name, rec] : all) out.push_back(rec.digest);
    return out;
  };
  cas::ChildrenFn children = [this](const std::string& d) { return Children(d); };
  cas::GcOptions opts;
  opts.min_age = std::chrono::seconds(0);  // roots are read under the GC lock
  return cas::Prune(*blobs_, roots, children, leases, opts);
}

std::vector<oci::Descriptor> ImageStore::Closure(const ResolvedImage& image) {
  std::vector<oci::Descriptor> out;
  std::set<std::string> seen;
  auto add = [&](const oci::Descriptor& d) {
    if (seen.insert(d.digest.ToString()).second) out.push_back(d);
  };
  add(image.root);
  for (const auto& p : image.platforms) {
    add(p.manifest_desc);
    add(p.manifest.config);
    for (const auto& l : p.manifest.layers) add(l);
  }
  return out;
}

Expected<std::vector<std::string>> ImageStore::Children(const std::string& digest) {
  std::vector<std::string> out;
  auto size = blobs_->Stat(digest);
  if (!size.ok() || *size > oci::kMaxManifestBytes) return out;  // layers are leaves
  auto bytes = blobs_->ReadAll(digest);
  if (!bytes.ok()) return out;
  std::string mt = SniffMediaType(*bytes);
  if (oci::IsIndex(mt)) {
    MF_TRY(index, oci::ParseIndex(*bytes));
    for (const auto& m : index.manifests) out.push_back(m.digest.ToString());
  } else if (oci::IsManifest(mt)) {
    MF_TRY(m, oci::ParseManifest(*bytes));
    out.push_back(m.config.digest.ToString());
    for (const auto& l : m.layers) out.push_back(l.digest.ToString());
  }
  return out;
}

}  // namespace manifold::image
