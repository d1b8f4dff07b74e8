#include "common/http/http_client.h"

#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/base/ascii.h"
#include "common/http/round_trip.h"

namespace manifold::http {
namespace {

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

/// Field values may hold visible bytes, spaces and tabs; CR, LF and NUL would
/// let a value smuggle a header or a second request.
bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

Expected<void> ValidateRequest(const Request& request) {
  if (!IsToken(request.method))
    return MakeError(ErrorKind::kInvalidInput, "http.method",
                     "invalid HTTP method \"" + request.method + "\"");
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name))
      return MakeError(ErrorKind::kInvalidInput, "http.header",
                       "invalid header name \"" + name + "\"");
    if (!IsFieldValue(value))
      return MakeError(ErrorKind::kInvalidInput, "http.header",
                       "invalid characters in the value of header " + name);
    std::string lower = AsciiLower(name);
    if (lower == "host" || lower == "content-length" || lower == "transfer-encoding" ||
        lower == "connection")
      return MakeError(ErrorKind::kInvalidInput, "http.header",
                       "header " + name + " is set by the HTTP client");
  }
  return Ok();
}

bool IsRedirect(const Response& r) {
  bool status =
      r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 || r.status == 308;
  return status && r.Header("location").has_value();
}

bool SameOrigin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

/// Credentials go only to the origin the caller named: a redirect elsewhere
/// (a registry sending blobs to a CDN) loses Authorization and Cookie, as in
/// Go's net/http and curl.
Expected<internal::WireRequest> ToWire(const Request& request, const Url& url, bool same_origin,
                                       const ClientOptions& options) {
  internal::WireRequest wire;
  wire.method = request.method;
  bool has_agent = false, has_auth = false;
  for (const auto& [name, value] : request.headers) {
    std::string lower = AsciiLower(name);
    if (!same_origin && (lower == "authorization" || lower == "cookie")) continue;
    has_agent = has_agent || lower == "user-agent";
    has_auth = has_auth || lower == "authorization";
    wire.headers.emplace_back(name, value);
  }
  if (!has_agent) wire.headers.emplace_back("User-Agent", options.user_agent);
  if (!has_auth && !url.userinfo.empty()) {
    MF_TRY(auth, internal::BasicAuthorization(url.userinfo));
    wire.headers.emplace_back("Authorization", std::move(auth));
  }
  wire.body = request.body;
  wire.body_source = request.body_source;
  wire.body_length = request.body_length;
  wire.send_body = !request.body.empty() || request.body_source != nullptr ||
                   request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  return wire;
}

class AppendSink : public layer::ByteSink {
 public:
  explicit AppendSink(std::string* out) : out_(out) {}
  Expected<void> Write(std::string_view data) override {
    out_->append(data);
    return Ok();
  }

 private:
  std::string* out_;
};

}  // namespace

std::optional<std::string> Response::Header(std::string_view name) const {
  std::string lower = AsciiLower(name);
  for (const auto& [n, v] : headers) {
    if (n == lower) return v;
  }
  return std::nullopt;
}

struct Client::Impl {
  ClientOptions options;
  std::once_flag tls_once;
  std::shared_ptr<const internal::TlsContext> tls;
  std::optional<Error> tls_error;

  Expected<const internal::TlsContext*> Tls() {
    std::call_once(tls_once, [this] {
      auto made = internal::NewTlsContext(options);
      if (made.ok()) {
        tls = std::move(*made);
      } else {
        tls_error = std::move(made).error();
      }
    });
    if (tls_error) return *tls_error;
    return tls.get();
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->options; }

Expected<Response> Client::Fetch(const Request& request, layer::ByteSink& body_sink) const {
  const ClientOptions& o = impl_->options;
  MF_TRY_VOID(ValidateRequest(request));
  MF_TRY(start, ParseUrl(request.url));
  ProxyConfig proxies;
  if (o.proxy) {
    proxies = *o.proxy;
  } else if (o.use_env_proxy) {
    proxies = ProxyConfigFromEnv();
  }
  bool follow = o.follow_redirects && (request.method == "GET" || request.method == "HEAD");
  std::function<bool(const Response&)> wants_body = [follow, &request](const Response& r) {
    if (follow && IsRedirect(r)) return false;
    if (request.on_head) request.on_head(r);
    return true;
  };

  Url url = start;
  for (int redirects = 0;; ++redirects) {
    MF_TRY(proxy, ProxyFor(url, proxies));
    const internal::TlsContext* tls = nullptr;
    if (url.IsTls()) {
      MF_TRY(context, impl_->Tls());
      tls = context;
    }
    MF_TRY(wire, ToWire(request, url, SameOrigin(url, start), o));
    MF_TRY(response, internal::RoundTrip(url, proxy, wire, o, tls, wants_body, body_sink));
    if (!(follow && IsRedirect(response))) return response;

    if (redirects >= o.max_redirects)
      return MakeError(ErrorKind::kInvalidInput, "http.redirect",
                       "too many redirects (more than " + std::to_string(o.max_redirects) +
                           ") fetching " + start.ToString());
    auto next = url.Resolve(*response.Header("location"));
    if (!next.ok())
      return MakeError(ErrorKind::kInvalidInput, "http.redirect",
                       "bad redirect from " + url.ToString() + ": " + next.error().message);
    // An https URL promises its bytes were not tampered with; following a
    // redirect to plain http would silently break that promise.
    if (url.IsTls() && !next->IsTls())
      return MakeError(ErrorKind::kSecurity, "http.redirect_downgrade",
                       "refusing redirect from " + url.ToString() + " to " + next->ToString() +
                           " (https to http)");
    url = std::move(*next);
  }
}

Expected<Response> Fetch(const Request& request, layer::ByteSink& body_sink,
                         const ClientOptions& options) {
  return Client(options).Fetch(request, body_sink);
}

Expected<Response> FetchToString(const Request& request, std::string* body,
                                 const ClientOptions& options) {
  body->clear();
  AppendSink sink(body);
  return Fetch(request, sink, options);
}

}  // namespace manifold::http
