#include "common/oci/index.h"

#include <algorithm>

#include "common/oci/json_util.h"
#include "common/oci/quote.h"

namespace manifold::oci {

namespace {

constexpr std::string_view kWhat = "image index";

static_assert(kMaxIndexBytes == detail::kMaxDocumentBytes);

std::optional<Platform> Normalised(const Platform& p) {
  std::string spec = p.os + "/" + p.architecture;
  if (!p.variant.empty()) spec += "/" + p.variant;
  auto parsed = ParsePlatform(spec);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

// Variant as an ordered level where newer CPUs run older code; -1 = no ordering.
int VariantLevel(const Platform& p) {
  const std::string& v = p.variant;
  if (p.architecture == "arm") {
    if (v == "v5") return 5;
    if (v == "v6") return 6;
    if (v == "v7") return 7;
    if (v == "v8") return 8;
  } else if (p.architecture == "amd64") {
    if (v.empty()) return 1;
    if (v == "v2") return 2;
    if (v == "v3") return 3;
    if (v == "v4") return 4;
  }
  return -1;
}

}  // namespace

Expected<ImageIndex> ParseIndex(std::string_view bytes) {
  using detail::Member;
  MF_TRY(doc, detail::ParseDocument(bytes, kWhat));
  MF_TRY_VOID(detail::CheckNotAmbiguousOrSchema1(doc, kWhat));
  detail::Where w{kWhat, ""};
  MF_TRY(media_type, detail::ReadString(doc, "mediaType", w));
  if (IsManifest(media_type))
    return MakeError(ErrorKind::kInvalidInput, "oci.media_type",
                     "expected an image index, got media type " + QuoteForMessage(media_type));
  if (media_type.empty() && !Member(doc, "manifests") &&
      (Member(doc, "config") || Member(doc, "layers")))
    return MakeError(ErrorKind::kInvalidInput, "oci.media_type",
                     "expected an image index, got an image manifest");
  MF_TRY_VOID(detail::CheckSchemaVersion2(doc, kWhat));

  ImageIndex index;
  index.media_type = std::move(media_type);
  MF_TRY(artifact_type, detail::ReadString(doc, "artifactType", w));
  index.artifact_type = std::move(artifact_type);
  const detail::Json* manifests = Member(doc, "manifests");
  if (!manifests) return detail::Missing(w.Key("manifests"));
  if (!manifests->is_array()) return detail::Invalid(w.Key("manifests"), "an array");
  index.manifests.reserve(manifests->size());
  for (const auto& entry : *manifests) {
    MF_TRY(d, detail::DescriptorFromJson(entry, w.Key("manifests").Index(index.manifests.size())));
    index.manifests.push_back(std::move(d));
  }
  if (const detail::Json* subject = Member(doc, "subject")) {
    MF_TRY(d, detail::DescriptorFromJson(*subject, w.Key("subject")));
    index.subject = std::move(d);
  }
  MF_TRY(annotations, detail::ReadStringMap(doc, "annotations", w));
  index.annotations = std::move(annotations);
  return index;
}

std::string ImageIndex::ToJson() const {
  detail::OrderedJson j = detail::OrderedJson::object();
  j["schemaVersion"] = schema_version;
  detail::PutString(j, "mediaType", media_type);
  detail::PutString(j, "artifactType", artifact_type);
  detail::OrderedJson list = detail::OrderedJson::array();
  for (const auto& m : manifests) list.push_back(detail::DescriptorToJson(m));
  j["manifests"] = std::move(list);
  if (subject) j["subject"] = detail::DescriptorToJson(*subject);
  detail::PutStringMap(j, "annotations", annotations);
  return detail::Dump(j);
}

bool PlatformMatches(const Platform& want, const Platform& have) {
  auto w = Normalised(want);
  auto h = Normalised(have);
  if (!w || !h || w->os != h->os || w->architecture != h->architecture) return false;
  if (w->variant == h->variant) return true;
  int wl = VariantLevel(*w);
  int hl = VariantLevel(*h);
  return wl > 0 && hl > 0 && hl <= wl;
}

Expected<Descriptor> SelectManifest(const ImageIndex& index, const Platform& want) {
  constexpr std::size_t kMaxListed = 16;
  const Descriptor* best = nullptr;
  int best_level = -1;
  std::vector<std::string> offered;  // normalised, so safe to print (ParsePlatform's charset)
  auto norm_want = Normalised(want);
  for (const auto& d : index.manifests) {
    if (!d.platform || !IsManifest(d.media_type)) continue;
    auto have = Normalised(*d.platform);
    if (!have) continue;
    std::string name = have->ToString();
    if (std::find(offered.begin(), offered.end(), name) == offered.end()) offered.push_back(name);
    if (!norm_want || !PlatformMatches(*norm_want, *have)) continue;
    if (have->variant == norm_want->variant) return d;  // exact: the first one wins
    int level = VariantLevel(*have);
    if (level > best_level) {
      best = &d;
      best_level = level;
    }
  }
  if (best) return *best;
  std::string listed;
  for (std::size_t i = 0; i < offered.size() && i < kMaxListed; ++i)
    listed += (i ? ", " : "") + offered[i];
  if (offered.size() > kMaxListed) listed += ", ...";
  return MakeError(ErrorKind::kInvalidInput, "oci.no_platform",
                   "no manifest for platform " + want.ToString() + " in the image index (" +
                       (offered.empty() ? std::string("it lists no platform manifests")
                                        : "available: " + listed) +
                       ")");
}

}  // namespace manifold::oci
