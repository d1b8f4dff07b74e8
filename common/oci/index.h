// Image indexes (OCI) and manifest lists (Docker): one entry per platform.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/descriptor.h"
#include "common/oci/media_types.h"
#include "common/oci/platform.h"

namespace manifold::oci {

/// Largest index ParseIndex() reads.
inline constexpr std::size_t kMaxIndexBytes = std::size_t{4} << 20;

/// image-spec image-index.md. media_type keeps what the document said ("" if absent).
struct ImageIndex {
  int schema_version = 2;
  std::string media_type = std::string(kOciImageIndex);
  std::string artifact_type;
  std::vector<Descriptor> manifests;  ///< order kept: it is the preference order
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  /// Canonical JSON: schemaVersion, mediaType, artifactType, manifests, subject,
  /// annotations; empty optional fields omitted; "manifests" always written; no
  /// whitespace. Unknown fields of a parsed document are not kept.
  std::string ToJson() const;
  bool operator==(const ImageIndex&) const = default;
};

/// The one door for index bytes. Accepts OCI indexes and Docker manifest lists;
/// unknown fields, entry media types and artifactTypes do not fail (image-spec:
/// MUST NOT error). Errors are those of ParseManifest(), with "oci.media_type" for
/// an image manifest and "oci.invalid" when "manifests" is missing.
Expected<ImageIndex> ParseIndex(std::string_view bytes);

/// True when an entry for `have` can run on `want`, both normalised as ParsePlatform
/// does (linux/arm64/v8 == linux/arm64, aarch64 == arm64, arm == arm/v7). An older
/// variant also runs on a newer CPU: arm/v6 on arm/v7, amd64 (v1) on amd64/v3.
bool PlatformMatches(const Platform& want, const Platform& have);

/// The manifest entry for `want`: an exact (normalised) match first, else the
/// compatible entry with the newest variant; earlier entries win ties. Only image
/// manifests (IsManifest) with a platform are candidates, so attestations
/// ("unknown/unknown") and artifacts are skipped. Error: kInvalidInput
/// "oci.no_platform", naming the platforms the index offers.
Expected<Descriptor> SelectManifest(const ImageIndex& index, const Platform& want);

}  // namespace manifold::oci
