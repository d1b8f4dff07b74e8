#include "common/oci/digest.h"

#include "common/crypto/sha256.h"
#include "common/oci/quote.h"

namespace manifold::oci {

namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsLowerHex(char c) { return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'); }

// go-digest: algorithm := component (separator component)*, component := [a-z0-9]+,
// separator := [+._-].
bool ValidAlgorithm(std::string_view a) {
  bool need_alnum = true;
  for (char c : a) {
    if (IsLowerAlnum(c)) {
      need_alnum = false;
    } else if ((c == '+' || c == '.' || c == '_' || c == '-') && !need_alnum) {
      need_alnum = true;
    } else {
      return false;
    }
  }
  return !need_alnum;
}

// go-digest: encoded := [a-zA-Z0-9=_-]+.
bool ValidEncoded(std::string_view e) {
  if (e.empty()) return false;
  for (char c : e) {
    bool ok = IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '=' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Error Invalid(std::string_view s, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "digest.invalid",
                   "invalid digest " + QuoteForMessage(s) + ": " + why);
}

}  // namespace

Digest Digest::Sha256Of(std::string_view bytes) { return Digest{"sha256", crypto::Sha256Hex(bytes)}; }

std::string Digest::ToString() const {
  if (empty()) return "";
  return algorithm + ":" + hex;
}

Expected<Digest> ParseDigest(std::string_view s) {
  std::size_t colon = s.find(':');
  if (colon == std::string_view::npos) return Invalid(s, "expected <algorithm>:<hex>");
  std::string_view algorithm = s.substr(0, colon);
  std::string_view encoded = s.substr(colon + 1);
  if (!ValidAlgorithm(algorithm) || !ValidEncoded(encoded))
    return Invalid(s, "expected <algorithm>:<hex>");
  std::size_t want;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return MakeError(ErrorKind::kUnimplemented, "digest.algorithm",
                     "unsupported digest algorithm " + QuoteForMessage(algorithm) +
                         " (supported: sha256, sha512)");
  }
  bool hex_ok = encoded.size() == want;
  for (char c : encoded) hex_ok = hex_ok && IsLowerHex(c);
  if (!hex_ok)
    return Invalid(s, std::string(algorithm) + " needs " + std::to_string(want) +
                          " lowercase hex characters");
  return Digest{std::string(algorithm), std::string(encoded)};
}

}  // namespace manifold::oci

std::size_t std::hash<manifold::oci::Digest>::operator()(
    const manifold::oci::Digest& d) const noexcept {
  std::size_t h = std::hash<std::string>{}(d.hex);
  return h ^ (std::hash<std::string>{}(d.algorithm) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}
