#include "common/cas/digest.h"

#include <cstdio>

namespace manifold::cas {

bool IsSha256Hex(std::string_view hex) {
  if (hex.size() != kSha256HexChars) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Expected<std::string_view> DigestHex(std::string_view digest) {
  if (digest.substr(0, kSha256Prefix.size()) != kSha256Prefix ||
      !IsSha256Hex(digest.substr(kSha256Prefix.size()))) {
    return MakeError(ErrorKind::kInvalidInput, "cas.digest_invalid",
                     "invalid digest " + QuoteForError(digest) +
                         ": want sha256:<64 lowercase hex>");
  }
  return digest.substr(kSha256Prefix.size());
}

std::string DigestFromHex(std::string_view hex) {
  MF_ASSERT(IsSha256Hex(hex), "not a sha256 hex digest");
  return std::string(kSha256Prefix) + std::string(hex);
}

std::string QuoteForError(std::string_view s) {
  constexpr std::size_t kMaxShown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (s.size() > kMaxShown) out += "...";
  return out;
}

}  // namespace manifold::cas
