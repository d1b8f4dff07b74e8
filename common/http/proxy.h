// Which proxy, if any, carries a request: the HTTP_PROXY / HTTPS_PROXY /
// NO_PROXY conventions with Go's net/http semantics (what Docker and BuildKit
// users already configure), so the same environment behaves the same way.
#pragma once

#include <optional>
#include <string>

#include "common/base/expected.h"
#include "common/http/url.h"

namespace manifold::http {

struct ProxyConfig {
  std::string http_proxy;   ///< for http:// URLs; "host:port" or "http://[user:pass@]host:port"
  std::string https_proxy;  ///< for https:// URLs (tunnelled with CONNECT)
  std::string no_proxy;     ///< comma-separated exclusions, see ProxyFor
};

/// Reads HTTP_PROXY, HTTPS_PROXY and NO_PROXY, each falling back to its
/// lowercase spelling when the uppercase one is unset or empty.
ProxyConfig ProxyConfigFromEnv();

/// The proxy for `target`, or nullopt to connect directly. Never proxied:
/// "localhost", loopback addresses, and hosts matching a NO_PROXY entry: "*"
/// (everything), an IP ("10.1.2.3"), a CIDR ("10.0.0.0/8"), a domain
/// ("example.com" matches it and its subdomains, ".example.com" and
/// "*.example.com" only subdomains), each optionally with ":port".
/// A proxy written without a scheme is http://; its port defaults to 80.
/// Errors: kInvalidInput "http.proxy" (malformed proxy URL), kUnimplemented
/// "http.proxy" (https:// or socks proxies).
Expected<std::optional<Url>> ProxyFor(const Url& target, const ProxyConfig& config);

}  // namespace manifold::http
