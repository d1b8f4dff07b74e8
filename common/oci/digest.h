// Content digests ("sha256:<hex>"): the address of every blob Manifold stores or sends.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::oci {

/// `<algorithm>:<hex>`. Plain data: only ParseDigest() and Sha256Of() guarantee a
/// valid value; a default-constructed Digest is empty. Ordered by algorithm, then
/// hex, so it works as a std::map key; std::hash is specialised below.
struct Digest {
  std::string algorithm;  ///< "sha256" or "sha512"
  std::string hex;        ///< lowercase hex: 64 characters for sha256, 128 for sha512

  /// The sha256 digest of `bytes`.
  static Digest Sha256Of(std::string_view bytes);

  /// "sha256:<hex>"; "" when empty.
  std::string ToString() const;
  bool empty() const { return algorithm.empty() && hex.empty(); }

  auto operator<=>(const Digest&) const = default;
  bool operator==(const Digest&) const = default;
};

/// Validates `<algorithm>:<hex>` (go-digest grammar). sha256 needs 64 and sha512
/// 128 lowercase hex characters. Errors: kInvalidInput "digest.invalid" for
/// anything malformed; kUnimplemented "digest.algorithm" for a well-formed digest
/// of another algorithm ("sha384:...", "blake3:...").
Expected<Digest> ParseDigest(std::string_view s);

}  // namespace manifold::oci

template <>
struct std::hash<manifold::oci::Digest> {
  std::size_t operator()(const manifold::oci::Digest& d) const noexcept;
};
