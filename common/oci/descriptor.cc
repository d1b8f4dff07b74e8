#include "common/oci/descriptor.h"

#include "common/oci/json_util.h"

namespace manifold::oci {

namespace detail {

namespace {

Expected<void> ReadPlatform(const Json& obj, const Where& w, Descriptor* d) {
  const Json* p = Member(obj, "platform");
  if (!p) return Ok();
  Where pw = w.Key("platform");
  if (!p->is_object()) return Invalid(pw, "an object");
  Platform platform;
  MF_TRY(architecture, ReadString(*p, "architecture", pw));
  MF_TRY(os, ReadString(*p, "os", pw));
  MF_TRY(variant, ReadString(*p, "variant", pw));
  MF_TRY(os_version, ReadString(*p, "os.version", pw));
  MF_TRY(os_features, ReadStrings(*p, "os.features", pw));
  d->platform = Platform{std::move(os), std::move(architecture), std::move(variant)};
  d->platform_os_version = std::move(os_version);
  d->platform_os_features = std::move(os_features);
  return Ok();
}

}  // namespace

Expected<Descriptor> DescriptorFromJson(const Json& j, const Where& w) {
  if (!j.is_object()) return Invalid(w, "an object");
  Descriptor d;
  MF_TRY(media_type, ReadString(j, "mediaType", w));
  MF_TRY(digest, ReadDigest(j, "digest", w));
  if (!Member(j, "size")) return Missing(w.Key("size"));
  MF_TRY(size, ReadNonNegative(j, "size", w));
  MF_TRY(urls, ReadStrings(j, "urls", w));
  MF_TRY(annotations, ReadStringMap(j, "annotations", w));
  MF_TRY(data, ReadString(j, "data", w));
  MF_TRY(artifact_type, ReadString(j, "artifactType", w));
  MF_TRY_VOID(ReadPlatform(j, w, &d));
  d.media_type = std::move(media_type);
  d.digest = std::move(digest);
  d.size = size;
  d.urls = std::move(urls);
  d.annotations = std::move(annotations);
  d.data = std::move(data);
  d.artifact_type = std::move(artifact_type);
  return d;
}

OrderedJson DescriptorToJson(const Descriptor& d) {
  OrderedJson j = OrderedJson::object();
  PutString(j, "mediaType", d.media_type);
  j["digest"] = d.digest.ToString();
  j["size"] = d.size;
  PutStrings(j, "urls", d.urls);
  PutStringMap(j, "annotations", d.annotations);
  PutString(j, "data", d.data);
  if (d.platform) {
    OrderedJson p = OrderedJson::object();
    p["architecture"] = d.platform->architecture;
    p["os"] = d.platform->os;
    PutString(p, "os.version", d.platform_os_version);
    PutStrings(p, "os.features", d.platform_os_features);
    PutString(p, "variant", d.platform->variant);
    j["platform"] = std::move(p);
  }
  PutString(j, "artifactType", d.artifact_type);
  return j;
}

}  // namespace detail

std::string Descriptor::ToJson() const { return detail::Dump(detail::DescriptorToJson(*this)); }

Descriptor DescribeBytes(std::string media_type, std::string_view content) {
  Descriptor d;
  d.media_type = std::move(media_type);
  d.digest = Digest::Sha256Of(content);
  d.size = static_cast<std::int64_t>(content.size());
  return d;
}

Expected<Descriptor> ParseDescriptor(std::string_view json) {
  MF_TRY(doc, detail::ParseDocument(json, "descriptor"));
  return detail::DescriptorFromJson(doc, detail::Where{"descriptor", ""});
}

}  // namespace manifold::oci
