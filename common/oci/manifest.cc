#include "common/oci/manifest.h"

#include "common/oci/json_util.h"
#include "common/oci/quote.h"

namespace manifold::oci {

namespace {

constexpr std::string_view kWhat = "manifest";

static_assert(kMaxManifestBytes == detail::kMaxDocumentBytes);

}  // namespace

Expected<ImageManifest> ParseManifest(std::string_view bytes) {
  using detail::Member;
  MF_TRY(doc, detail::ParseDocument(bytes, kWhat));
  MF_TRY_VOID(detail::CheckNotAmbiguousOrSchema1(doc, kWhat));
  detail::Where w{kWhat, ""};
  MF_TRY(media_type, detail::ReadString(doc, "mediaType", w));
  if (IsIndex(media_type))
    return MakeError(ErrorKind::kInvalidInput, "oci.media_type",
                     "expected an image manifest, got media type " + QuoteForMessage(media_type));
  if (media_type.empty() && Member(doc, "manifests") && !Member(doc, "config"))
    return MakeError(ErrorKind::kInvalidInput, "oci.media_type",
                     "expected an image manifest, got an image index");
  MF_TRY_VOID(detail::CheckSchemaVersion2(doc, kWhat));

  ImageManifest m;
  m.media_type = std::move(media_type);
  MF_TRY(artifact_type, detail::ReadString(doc, "artifactType", w));
  m.artifact_type = std::move(artifact_type);
  const detail::Json* config = Member(doc, "config");
  if (!config) return detail::Missing(w.Key("config"));
  MF_TRY(config_desc, detail::DescriptorFromJson(*config, w.Key("config")));
  m.config = std::move(config_desc);
  if (const detail::Json* layers = Member(doc, "layers")) {
    if (!layers->is_array()) return detail::Invalid(w.Key("layers"), "an array");
    m.layers.reserve(layers->size());
    for (const auto& layer : *layers) {
      MF_TRY(d, detail::DescriptorFromJson(layer, w.Key("layers").Index(m.layers.size())));
      m.layers.push_back(std::move(d));
    }
  }
  if (const detail::Json* subject = Member(doc, "subject")) {
    MF_TRY(d, detail::DescriptorFromJson(*subject, w.Key("subject")));
    m.subject = std::move(d);
  }
  MF_TRY(annotations, detail::ReadStringMap(doc, "annotations", w));
  m.annotations = std::move(annotations);
  return m;
}

std::string ImageManifest::ToJson() const {
  detail::OrderedJson j = detail::OrderedJson::object();
  j["schemaVersion"] = schema_version;
  detail::PutString(j, "mediaType", media_type);
  detail::PutString(j, "artifactType", artifact_type);
  j["config"] = detail::DescriptorToJson(config);
  detail::OrderedJson list = detail::OrderedJson::array();
  for (const auto& layer : layers) list.push_back(detail::DescriptorToJson(layer));
  j["layers"] = std::move(list);
  if (subject) j["subject"] = detail::DescriptorToJson(*subject);
  detail::PutStringMap(j, "annotations", annotations);
  return detail::Dump(j);
}

}  // namespace manifold::oci
