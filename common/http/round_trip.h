// Internal to common/http: one request/response exchange on one fresh
// connection (direct, through a plain proxy, or through a CONNECT tunnel),
// with TLS when the URL is https. Redirects, header policy and proxy choice
// are the caller's (http_client.cc). Beast and Asio stay in round_trip.cc.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/expected.h"
#include "common/http/http_client.h"
#include "common/http/url.h"
#include "common/layer/byte_stream.h"

namespace manifold::http::internal {

/// The client side TLS setup (CA bundle, verify mode, TLS >= 1.2). Immutable
/// once built, so concurrent requests share it.
class TlsContext;

/// Errors: kInvalidInput "http.tls_config" when the CA bundle cannot be loaded.
Expected<std::shared_ptr<const TlsContext>> NewTlsContext(const ClientOptions& options);

/// A request as it goes on the wire; the caller has validated every field.
struct WireRequest {
  std::string method;
  /// Everything but Host, Connection, Content-Length and Proxy-Authorization.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
  layer::ByteSource* body_source = nullptr;  ///< when set, body_length bytes from here instead
  std::uint64_t body_length = 0;
  bool send_body = false;  ///< send Content-Length (and the body) even when empty
};

/// Sends `request` to `url` (through `proxy` when set) and reads the response
/// head; then streams the body into `sink` only if `wants_body(head)`, which
/// is called exactly once per response.
/// `tls` must be set for https URLs. Errors: see Client::Fetch.
Expected<Response> RoundTrip(const Url& url, const std::optional<Url>& proxy,
                             const WireRequest& request, const ClientOptions& options,
                             const TlsContext* tls,
                             const std::function<bool(const Response&)>& wants_body,
                             layer::ByteSink& sink);

/// "Basic <base64(user:password)>" from a URL's (percent-encoded) userinfo.
/// Errors: kInvalidInput "http.url" (bad %-escape).
Expected<std::string> BasicAuthorization(std::string_view userinfo);

}  // namespace manifold::http::internal
