#include "common/http/round_trip.h"

// clang-format off
// <utility> must come before any Boost.Asio header: Boost 1.74's Asio does not
// compile under C++20 on g++ 12 otherwise.
#include <utility>
// clang-format on

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <limits>
#include <span>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "common/base/ascii.h"

namespace manifold::http::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

class TlsContext {
 public:
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  bool verify = true;
};

namespace {

// Limits on what the server controls (STYLE.md: every decoder of untrusted
// bytes has explicit limits). The body has its own, max_body_bytes.
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kBodyChunkBytes = 64 * 1024;

/// Runs one asynchronous operation to completion on a private io_context.
/// The deadline is the tcp_stream's: on expiry Beast closes the socket and
/// the operation completes with beast::error::timeout.
class Io {
 public:
  template <class Start>
  error_code Run(Start&& start) {
    error_code result;
    bool done = false;
    start([&result, &done](error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    ioc.run();
    MF_ASSERT(done, "asynchronous operation did not complete");
    return result;
  }

  asio::io_context ioc;
};

std::string OpenSslReason() {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e == 0 ? nullptr : ERR_reason_error_string(e);
  std::string out = reason ? reason : "unknown OpenSSL error";
  ERR_clear_error();  // a stale queue would mislabel this thread's next TLS error
  return out;
}

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

/// `what` reads "reading the response from host:port".
Error IoError(const error_code& ec, const std::string& what, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout)
    return MakeError(ErrorKind::kTransient, "http.timeout",
                     what + " timed out after " + Ms(timeout));
  if (ec == bhttp::error::partial_message || ec == bhttp::error::end_of_stream ||
      ec == asio::error::eof)
    return MakeError(ErrorKind::kTransient, "http.io", what + " failed: connection closed early");
  if (ec == asio::ssl::error::stream_truncated)
    return MakeError(ErrorKind::kTransient, "http.io",
                     what + " failed: connection closed without TLS close_notify");
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category())
    return MakeError(ErrorKind::kTransient, "http.protocol",
                     what + " failed: malformed HTTP (" + ec.message() + ")");
  return MakeError(ErrorKind::kTransient, "http.io", what + " failed: " + ec.message());
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET6, host.c_str(), &a6) == 1 ||
         ::inet_pton(AF_INET, host.c_str(), &a4) == 1;
}

/// Resolves and connects to `peer`. DNS resolution is a blocking
/// getaddrinfo(): it is bounded by the system resolver's own timeouts, not by
/// connect_timeout (Asio cannot abandon a getaddrinfo in flight).
Expected<beast::tcp_stream> Connect(Io& io, const Url& peer, const std::string& name,
                                    const ClientOptions& options) {
  tcp::resolver resolver(io.ioc);
  error_code ec;
  auto endpoints = resolver.resolve(peer.host, std::to_string(peer.port), ec);
  if (ec)
    return MakeError(ErrorKind::kTransient, "http.connect",
                     "cannot resolve " + name + ": " + ec.message());
  beast::tcp_stream stream(io.ioc);
  stream.expires_after(options.connect_timeout);
  ec = io.Run([&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
  if (ec == beast::error::timeout)
    return MakeError(ErrorKind::kTransient, "http.timeout",
                     "connecting to " + name + " timed out after " + Ms(options.connect_timeout));
  if (ec)
    return MakeError(ErrorKind::kTransient, "http.connect",
                     "cannot connect to " + name + ": " + ec.message());
  return stream;
}

Expected<std::optional<std::string>> ProxyAuthorization(const std::optional<Url>& proxy) {
  if (!proxy || proxy->userinfo.empty()) return std::optional<std::string>();
  MF_TRY(value, BasicAuthorization(proxy->userinfo));
  return std::optional<std::string>(std::move(value));
}

/// Asks the proxy for a tunnel to `url` (RFC 9110 section 9.3.6).
Expected<void> Tunnel(Io& io, beast::tcp_stream& stream, const Url& url, const Url& proxy,
                      const ClientOptions& options) {
  std::string name = "proxy " + proxy.HostPort();
  bhttp::request<bhttp::empty_body> msg{bhttp::verb::connect, url.HostPort(), 11};
  msg.set(bhttp::field::host, url.HostPort());
  msg.set(bhttp::field::user_agent, options.user_agent);
  MF_TRY(auth, ProxyAuthorization(proxy));
  if (auth) msg.set(bhttp::field::proxy_authorization, *auth);
  stream.expires_after(options.io_timeout);
  error_code ec = io.Run([&](auto h) { bhttp::async_write(stream, msg, std::move(h)); });
  if (ec) return IoError(ec, "sending CONNECT to " + name, options.io_timeout);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.skip(true);  // a 2xx answer to CONNECT has no body: the tunnel follows
  stream.expires_after(options.io_timeout);
  ec = io.Run([&](auto h) { bhttp::async_read_header(stream, buffer, parser, std::move(h)); });
  if (ec) return IoError(ec, "reading the CONNECT response from " + name, options.io_timeout);
  int status = parser.get().result_int();
  if (status < 200 || status > 299) {
    return MakeError(status >= 500 ? ErrorKind::kTransient : ErrorKind::kInvalidInput, "http.proxy",
                     name + " refused to connect to " + url.HostPort() + ": " +
                         std::to_string(status) + " " + std::string(parser.get().reason()));
  }
  // Bytes after the 200 cannot be from the origin (we have not sent a
  // ClientHello yet); feeding them to TLS would let the proxy inject data.
  if (buffer.size() != 0)
    return MakeError(ErrorKind::kTransient, "http.protocol",
                     name + " sent data before the tunnel was used");
  return Ok();
}

Expected<void> Handshake(Io& io, beast::ssl_stream<beast::tcp_stream>& stream, const Url& url,
                         const TlsContext& tls, const ClientOptions& options) {
  SSL* ssl = stream.native_handle();
  bool ip = IsIpLiteral(url.host);
  // SNI carries DNS names only (RFC 6066 section 3).
  if (!ip && SSL_set_tlsext_host_name(ssl, url.host.c_str()) != 1)
    return MakeError(ErrorKind::kSecurity, "http.tls", "cannot set SNI for " + url.HostPort());
  if (tls.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                 : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
    if (set != 1)
      return MakeError(ErrorKind::kSecurity, "http.tls",
                       "cannot set up certificate name checks for " + url.HostPort());
  }
  beast::get_lowest_layer(stream).expires_after(options.connect_timeout);
  ERR_clear_error();  // Asio reads this thread's queue to name a handshake error
  error_code ec =
      io.Run([&](auto h) { stream.async_handshake(asio::ssl::stream_base::client, std::move(h)); });
  if (!ec) return Ok();
  long verify = SSL_get_verify_result(ssl);
  if (tls.verify && verify != X509_V_OK)
    return MakeError(ErrorKind::kSecurity, "http.tls",
                     "TLS certificate of " + url.HostPort() +
                         " rejected: " + X509_verify_cert_error_string(verify));
  std::string what = "TLS handshake with " + url.HostPort();
  if (ec.category() == asio::error::get_ssl_category())
    return MakeError(ErrorKind::kSecurity, "http.tls", what + " failed: " + ec.message());
  return IoError(ec, what, options.connect_timeout);
}

struct Exchange {
  const Url& url;
  std::string target;  ///< origin-form, or absolute-form through a plain proxy
  std::string peer;    ///< for messages: "host:port" or "host:port via proxy h:p"
  const WireRequest& request;
  std::optional<std::string> proxy_authorization;
  const ClientOptions& options;
  const std::function<bool(const Response&)>& wants_body;
  layer::ByteSink& sink;
};

Error TooLarge(const Exchange& x, std::uint64_t at_least) {
  return MakeError(ErrorKind::kResourceExhausted, "http.too_large",
                   "response body of " + x.url.ToString() + " is over the limit of " +
                       std::to_string(x.options.max_body_bytes) + " bytes (at least " +
                       std::to_string(at_least) + ")");
}

template <class Body>
void SetHead(bhttp::request<Body>& msg, const Exchange& x) {
  msg.version(11);
  msg.method_string(x.request.method);
  msg.target(x.target);
  msg.set(bhttp::field::host, x.url.HostHeader());
  for (const auto& [name, value] : x.request.headers) msg.insert(name, value);
  if (x.proxy_authorization) msg.set(bhttp::field::proxy_authorization, *x.proxy_authorization);
  msg.set(bhttp::field::connection, "close");
}

/// Sends the head, then body_length bytes pulled from body_source in
/// kBodyChunkBytes pieces: memory stays bounded whatever the upload size.
template <class Stream>
Expected<void> WriteStreamed(Io& io, Stream& stream, const Exchange& x) {
  const ClientOptions& o = x.options;
  auto& lowest = beast::get_lowest_layer(stream);
  bhttp::request<bhttp::buffer_body> msg;
  SetHead(msg, x);
  msg.content_length(x.request.body_length);
  msg.body().data = nullptr;
  msg.body().more = x.request.body_length > 0;
  bhttp::request_serializer<bhttp::buffer_body> serializer{msg};
  std::string what = "sending the request to " + x.peer;
  lowest.expires_after(o.io_timeout);
  error_code ec =
      io.Run([&](auto h) { bhttp::async_write_header(stream, serializer, std::move(h)); });
  if (ec) return IoError(ec, what, o.io_timeout);
  std::vector<char> chunk(kBodyChunkBytes);
  std::uint64_t left = x.request.body_length;
  while (left > 0) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    MF_TRY(n, x.request.body_source->Read(std::span<char>(chunk.data(), want)));
    if (n == 0)
      return MakeError(ErrorKind::kInvalidInput, "http.body",
                       "request body for " + x.url.HostPort() + " ended " + std::to_string(left) +
                           " bytes short of its length");
    left -= n;
    msg.body().data = chunk.data();
    msg.body().size = n;
    msg.body().more = left > 0;
    lowest.expires_after(o.io_timeout);
    ec = io.Run([&](auto h) { bhttp::async_write(stream, serializer, std::move(h)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return IoError(ec, what, o.io_timeout);
  }
  if (!serializer.is_done()) {
    msg.body().data = nullptr;
    msg.body().size = 0;
    msg.body().more = false;
    lowest.expires_after(o.io_timeout);
    ec = io.Run([&](auto h) { bhttp::async_write(stream, serializer, std::move(h)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return IoError(ec, what, o.io_timeout);
  }
  return Ok();
}

template <class Stream>
Expected<Response> Run(Io& io, Stream& stream, const Exchange& x) {
  const ClientOptions& o = x.options;
  auto& lowest = beast::get_lowest_layer(stream);

  error_code ec;
  if (x.request.body_source) {
    MF_TRY_VOID(WriteStreamed(io, stream, x));
  } else {
    bhttp::request<bhttp::string_body> msg;
    SetHead(msg, x);
    if (x.request.send_body) {
      msg.body() = std::string(x.request.body);
      msg.prepare_payload();
    }
    lowest.expires_after(o.io_timeout);
    ec = io.Run([&](auto h) { bhttp::async_write(stream, msg, std::move(h)); });
    if (ec) return IoError(ec, "sending the request to " + x.peer, o.io_timeout);
  }

  beast::flat_buffer buffer;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  for (;;) {  // skips interim 1xx responses
    parser.emplace();
    parser->header_limit(kMaxHeaderBytes);
    // max_body_bytes is enforced below. Not boost::none: Boost 1.74 compares
    // the length against the empty optional and reports body_limit.
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (x.request.method == "HEAD") parser->skip(true);
    lowest.expires_after(o.io_timeout);
    ec = io.Run([&](auto h) { bhttp::async_read_header(stream, buffer, *parser, std::move(h)); });
    if (ec) return IoError(ec, "reading the response from " + x.peer, o.io_timeout);
    int status = parser->get().result_int();
    if (status < 100 || status > 199 || status == 101) break;
  }

  Response response;
  response.status = parser->get().result_int();
  response.reason = std::string(parser->get().reason());
  for (const auto& field : parser->get())
    response.headers.emplace_back(AsciiLower(std::string(field.name_string())),
                                  std::string(field.value()));
  response.final_url = x.url.ToString();
  if (!x.wants_body(response)) return response;

  std::uint64_t limit = o.max_body_bytes;
  if (limit != 0 && !parser->is_done() && parser->content_length() &&
      *parser->content_length() > limit)
    return TooLarge(x, *parser->content_length());
  std::vector<char> chunk(kBodyChunkBytes);
  while (!parser->is_done()) {
    parser->get().body().data = chunk.data();
    parser->get().body().size = chunk.size();
    lowest.expires_after(o.io_timeout);
    ec = io.Run([&](auto h) { bhttp::async_read(stream, buffer, *parser, std::move(h)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    // Bytes that arrived before a failure are still delivered: a caller
    // resuming with Range continues right after them.
    std::size_t n = chunk.size() - parser->get().body().size;
    if (n > 0) {
      if (limit != 0 && response.body_bytes + n > limit)
        return TooLarge(x, response.body_bytes + n);
      MF_TRY_VOID(x.sink.Write(std::string_view(chunk.data(), n)));
      response.body_bytes += n;
    }
    if (ec) return IoError(ec, "reading the response body from " + x.peer, o.io_timeout);
  }
  return response;
}

Expected<void> LoadCaFile(SSL_CTX* ctx, const std::string& file) {
  std::string from = "cannot load CA certificates from " + file + ": ";
  // OpenSSL's own message for a missing file is vague; errno is not.
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    std::fclose(f);
  } else {
    return MakeError(ErrorKind::kInvalidInput, "http.tls_config", from + std::strerror(errno));
  }
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1)
    return MakeError(ErrorKind::kInvalidInput, "http.tls_config", from + OpenSslReason());
  return Ok();
}

Expected<void> LoadClientCert(SSL_CTX* ctx, const ClientOptions& options) {
  if (options.client_cert_file.empty() && options.client_key_file.empty()) return Ok();
  if (options.client_cert_file.empty() || options.client_key_file.empty())
    return MakeError(ErrorKind::kInvalidInput, "http.tls_config",
                     "a client certificate needs both a certificate and a key file");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, options.client_cert_file.c_str()) != 1)
    return MakeError(ErrorKind::kInvalidInput, "http.tls_config",
                     "cannot load client certificate " + options.client_cert_file + ": " +
                         OpenSslReason());
  if (SSL_CTX_use_PrivateKey_file(ctx, options.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1)
    return MakeError(ErrorKind::kInvalidInput, "http.tls_config",
                     "cannot load client key " + options.client_key_file + ": " + OpenSslReason());
  return Ok();
}

}  // namespace

Expected<std::shared_ptr<const TlsContext>> NewTlsContext(const ClientOptions& options) {
  auto tls = std::make_shared<TlsContext>();
  SSL_CTX* ctx = tls->ctx.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (options.insecure_skip_verify) {
    tls->verify = false;
    tls->ctx.set_verify_mode(asio::ssl::verify_none);
    MF_TRY_VOID(LoadClientCert(ctx, options));
    return std::shared_ptr<const TlsContext>(std::move(tls));
  }
  tls->ctx.set_verify_mode(asio::ssl::verify_peer);
  ERR_clear_error();
  if (options.ca_file.empty()) {
    // OpenSSL's defaults honour SSL_CERT_FILE and SSL_CERT_DIR.
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
      return MakeError(
          ErrorKind::kInvalidInput, "http.tls_config",
          "cannot load CA certificates from OpenSSL's default paths: " + OpenSslReason());
    for (const auto& extra : options.extra_ca_files) MF_TRY_VOID(LoadCaFile(ctx, extra));
    MF_TRY_VOID(LoadClientCert(ctx, options));
    return std::shared_ptr<const TlsContext>(std::move(tls));
  }
  MF_TRY_VOID(LoadCaFile(ctx, options.ca_file));
  for (const auto& extra : options.extra_ca_files) MF_TRY_VOID(LoadCaFile(ctx, extra));
  MF_TRY_VOID(LoadClientCert(ctx, options));
  return std::shared_ptr<const TlsContext>(std::move(tls));
}

Expected<Response> RoundTrip(const Url& url, const std::optional<Url>& proxy,
                             const WireRequest& request, const ClientOptions& options,
                             const TlsContext* tls,
                             const std::function<bool(const Response&)>& wants_body,
                             layer::ByteSink& sink) {
  Io io;
  std::string peer = url.HostPort();
  if (proxy) peer += " via proxy " + proxy->HostPort();
  MF_TRY(plain,
         Connect(io, proxy ? *proxy : url, proxy ? "proxy " + proxy->HostPort() : peer, options));
  Exchange x{url, url.target, peer, request, std::nullopt, options, wants_body, sink};
  if (!url.IsTls()) {
    if (proxy) {
      // A plain proxy gets the absolute-form target (RFC 9112 section 3.2.2).
      x.target = url.ToString();
      MF_TRY(auth, ProxyAuthorization(proxy));
      x.proxy_authorization = std::move(auth);
    }
    return Run(io, plain, x);
  }
  MF_ASSERT(tls != nullptr, "https without a TLS context");
  if (proxy) MF_TRY_VOID(Tunnel(io, plain, url, *proxy, options));
  // The context is only read here (SSL_new), which OpenSSL allows concurrently.
  beast::ssl_stream<beast::tcp_stream> stream(std::move(plain),
                                              const_cast<asio::ssl::context&>(tls->ctx));
  MF_TRY_VOID(Handshake(io, stream, url, *tls, options));
  return Run(io, stream, x);
}

Expected<std::string> BasicAuthorization(std::string_view userinfo) {
  MF_TRY(plain, PercentDecode(userinfo));
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                          reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(n));
  return "Basic " + encoded;
}

}  // namespace manifold::http::internal
