// Image references ("busybox", "reg.example.com:5000/team/app:1.2@sha256:..."), parsed
// and normalised as docker/distribution's reference.ParseNormalizedNamed + TagNameOnly.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "common/oci/digest.h"

namespace manifold::oci {

/// A normalised reference: always has a domain, a path, and a tag or a digest (or both).
struct Reference {
  std::string domain;  ///< "docker.io", "localhost:5000", "reg.example.com", "[::1]:5000"
  std::string path;    ///< "library/busybox", "team/app"; lowercase, at most 255 characters
  std::string tag;     ///< "latest" when neither tag nor digest was given
  std::optional<Digest> digest;  ///< wins over the tag when pulling

  /// "docker.io/library/busybox".
  std::string Name() const;
  /// Normalised full form: "docker.io/library/busybox:latest", "reg/a@sha256:...",
  /// "docker.io/library/busybox:1@sha256:...".
  std::string String() const;
  /// Docker UI form, without "docker.io/" and "library/": "busybox:latest", "user/app:1".
  std::string FamiliarString() const;
  /// Host to contact: "registry-1.docker.io" for docker.io, else the domain.
  std::string RegistryHost() const;
  /// Repository name in distribution-spec URLs (/v2/<name>/...): the path.
  const std::string& Repository() const { return path; }

  bool operator==(const Reference&) const = default;
};

/// Parses `name[:tag][@digest]`. The first path component is the domain when it
/// contains '.' or ':' or is "localhost" ("index.docker.io" becomes "docker.io");
/// otherwise the domain is docker.io, and a single-component docker.io path gets
/// "library/". Errors: kInvalidInput "reference.invalid" with messages
/// `invalid reference "<input>": <reason>` (reasons as Docker's: "repository name
/// must be lowercase", "repository name must have at least one component", "invalid
/// tag format", ...); a bad digest keeps ParseDigest's kind and code.
Expected<Reference> ParseReference(std::string_view s);

}  // namespace manifold::oci
