// A small blocking HTTP/1.1 client over Boost.Beast, for `ADD <url>` and the
// registry client: one connection per request ("Connection: close"), TLS
// verified against a CA bundle with SNI and hostname checks, redirects for
// GET/HEAD, HTTP(S)_PROXY/NO_PROXY, per-operation timeouts and a body limit.
// The response body is streamed into a layer::ByteSink, never buffered whole.
// Beast and Asio stay inside http_client.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/expected.h"
#include "common/http/proxy.h"
#include "common/layer/byte_stream.h"

namespace manifold::http {

struct Response {
  int status = 0;
  std::string reason;
  /// In arrival order, names lowercased, values as sent (trimmed).
  std::vector<std::pair<std::string, std::string>> headers;
  /// The URL that produced this response, after redirects (without userinfo).
  std::string final_url;
  /// Bytes written to the body sink.
  std::uint64_t body_bytes = 0;

  /// The first value of a header, name matched case-insensitively.
  std::optional<std::string> Header(std::string_view name) const;
};

struct Request {
  std::string method = "GET";
  std::string url;
  /// Extra headers. Host, Content-Length, Transfer-Encoding and Connection are
  /// set by the client and refused here. Authorization and Cookie are dropped
  /// when a redirect leaves the original host:port.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  ///< sent with Content-Length when non-empty or the method is POST/PUT/PATCH
  /// When set, the body is streamed from here instead of `body`: exactly
  /// `body_length` bytes, with Content-Length (a source that ends early fails
  /// the request with kInvalidInput "http.body"). Not owned; read once, so
  /// such a request is never re-sent (it is not redirected either: only
  /// GET/HEAD are).
  layer::ByteSource* body_source = nullptr;
  std::uint64_t body_length = 0;
  /// Called with the final response's head (not a followed redirect's) just
  /// before its body is streamed into the sink: lets the caller route a 2xx
  /// body and an error page differently, or check Content-Range.
  std::function<void(const Response&)> on_head;
};

struct ClientOptions {
  /// PEM bundle of trusted CAs. Empty: OpenSSL's defaults, which honour the
  /// SSL_CERT_FILE and SSL_CERT_DIR environment variables.
  std::string ca_file = "/etc/ssl/certs/ca-certificates.crt";
  /// More PEM CA files trusted in addition to ca_file (a registry's
  /// certs.d/HOST/*.crt, added to the system pool as Docker does).
  std::vector<std::string> extra_ca_files;
  /// A client certificate (PEM chain) and its key, presented when a server
  /// asks (certs.d/HOST/*.cert + *.key). Both or neither.
  std::string client_cert_file;
  std::string client_key_file;
  bool insecure_skip_verify = false;  ///< no certificate or hostname check (tests, labs)
  bool follow_redirects = true;       ///< for GET/HEAD only; other methods get the 3xx back
  int max_redirects = 10;
  /// Bounds DNS resolution plus TCP connect, and separately the TLS handshake.
  std::chrono::milliseconds connect_timeout{30000};
  /// Bounds each read or write: a peer silent this long fails the request. A
  /// slow but steady download is not cut off.
  std::chrono::milliseconds io_timeout{60000};
  std::uint64_t max_body_bytes = 0;  ///< 0 = unlimited
  /// The proxy settings to use; when unset and use_env_proxy, ProxyConfigFromEnv().
  std::optional<ProxyConfig> proxy;
  bool use_env_proxy = true;
  std::string user_agent = "manifold";  ///< unless the request sets User-Agent
};

/// Holds the options and the TLS context: the CA bundle is loaded once, by the
/// first https request, so a registry session does not re-read it per request
/// and plain-http users never need it. Fetch() is const and may run
/// concurrently from several threads; each call uses its own connection.
class Client {
 public:
  explicit Client(ClientOptions options);
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  /// Sends `request` and streams the final response's body into `body_sink`
  /// (for any status: a 404 page is streamed too; bodies of followed redirects
  /// are not). A non-2xx status is not an error. Errors:
  ///   kInvalidInput "http.url" / "http.header" / "http.method" (bad request),
  ///   kInvalidInput "http.redirect" (too many, or a bad Location),
  ///   kSecurity "http.redirect_downgrade" (https redirected to http),
  ///   kInvalidInput "http.tls_config" (CA bundle unreadable),
  ///   kSecurity "http.tls" (certificate, hostname or handshake failure),
  ///   kTransient "http.connect" (resolve or connect) / "http.io" /
  ///   "http.timeout", each naming host:port, kTransient "http.protocol"
  ///   (malformed response), "http.proxy" (bad proxy setting: kInvalidInput or
  ///   kUnimplemented; proxy refused CONNECT: kTransient for 5xx, else
  ///   kInvalidInput), kResourceExhausted "http.too_large" (body over
  ///   max_body_bytes; the sink may have received up to the limit), and
  ///   whatever the sink returns.
  Expected<Response> Fetch(const Request& request, layer::ByteSink& body_sink) const;

  const ClientOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A one-off Client(options).Fetch().
Expected<Response> Fetch(const Request& request, layer::ByteSink& body_sink,
                         const ClientOptions& options);

/// Fetch() into a string, which is cleared first.
Expected<Response> FetchToString(const Request& request, std::string* body,
                                 const ClientOptions& options);

}  // namespace manifold::http
