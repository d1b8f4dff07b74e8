// Digest strings as the CAS accepts them: "sha256:" + 64 lowercase hex. Every
// entry point validates here before a digest comes near a path, so
// "sha256:../../x" never reaches openat(). (A typed oci::Digest may replace
// these helpers later; the rule stays: validate at the point of use.)
#pragma once

#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::cas {

inline constexpr std::string_view kSha256Prefix = "sha256:";
inline constexpr std::size_t kSha256HexChars = 64;

/// True if `hex` is exactly 64 characters of [0-9a-f].
bool IsSha256Hex(std::string_view hex);

/// Returns the hex part of a valid digest (a view into `digest`).
/// Errors: kInvalidInput ("cas.digest_invalid") naming the (escaped,
/// truncated) input.
Expected<std::string_view> DigestHex(std::string_view digest);

/// "sha256:" + hex. `hex` must already be valid (asserted).
std::string DigestFromHex(std::string_view hex);

/// `s` quoted for an error message: non-printable bytes as \xNN, at most 80
/// characters of input shown.
std::string QuoteForError(std::string_view s);

}  // namespace manifold::cas
