// http:// and https:// URLs, as given to `ADD <url>`, found in a redirect's
// Location header or in a proxy variable. Parsing is strict: anything that
// could smuggle bytes into a request line (spaces, control characters,
// non-ASCII) is refused, not escaped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::http {

struct Url {
  std::string scheme;      ///< "http" or "https" (lowercased)
  std::string userinfo;    ///< "user:password" as written (still percent-encoded); often empty
  std::string host;        ///< lowercased; an IPv6 literal without its brackets
  std::uint16_t port = 0;  ///< explicit or the scheme's default (80/443)
  std::string target;      ///< path and query, always starting with '/'; no fragment

  bool IsTls() const { return scheme == "https"; }
  bool IsIpv6() const { return host.find(':') != std::string::npos; }
  bool HasDefaultPort() const { return port == (IsTls() ? 443 : 80); }

  /// "host:port", brackets around an IPv6 host; used in error messages.
  std::string HostPort() const;
  /// The Host header: host, with ":port" only when it is not the default.
  std::string HostHeader() const;
  /// "scheme://host[:port]/target" without userinfo, so it is safe to log.
  std::string ToString() const;

  /// Resolves a reference (a Location header) against this URL (RFC 3986
  /// section 5): absolute, scheme-relative ("//h/p"), absolute-path,
  /// relative-path (with "." and ".." removed) or query-only.
  /// Errors: kInvalidInput "http.url" (not http/https, or malformed).
  Expected<Url> Resolve(std::string_view reference) const;
};

/// Parses an absolute http/https URL. The port defaults to 80/443; a fragment
/// is dropped. Errors: kInvalidInput "http.url" naming the URL (userinfo
/// replaced by "xxxxx" in the message).
Expected<Url> ParseUrl(std::string_view text);

/// Decodes %XX escapes (userinfo for Basic auth). Errors: kInvalidInput "http.url".
Expected<std::string> PercentDecode(std::string_view text);

}  // namespace manifold::http
