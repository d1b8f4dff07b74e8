#include "common/registry/client.h"

#include <thread>

#include <nlohmann/json.hpp>

#include "common/base/ascii.h"
#include "common/base/log.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/registry/client_impl.h"

namespace manifold::registry {
namespace {

/// Registry error bodies are read through this cap (RELIABILITY.md 3.3).
constexpr std::size_t kMaxErrorBody = 64 * 1024;

bool SameOrigin(const http::Url& a, const http::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

/// Routes a 2xx body to the call's sink and keeps (a bounded prefix of) any
/// other body for the error message.
class SplitSink : public layer::ByteSink {
 public:
  explicit SplitSink(const Call& call) : call_(call) {}
  void OnHead(const http::Response& head) {
    ok_ = head.status >= 200 && head.status <= 299;
    target_ = ok_ && call_.route ? call_.route(head) : nullptr;
  }
  Expected<void> Write(std::string_view data) override {
    if (ok_) return target_ ? target_->Write(data) : Ok();
    if (error_body_.size() < kMaxErrorBody)
      error_body_.append(data.substr(0, kMaxErrorBody - error_body_.size()));
    return Ok();
  }
  std::string TakeErrorBody() { return std::move(error_body_); }

 private:
  const Call& call_;
  bool ok_ = false;
  layer::ByteSink* target_ = nullptr;
  std::string error_body_;
};

/// A string with a cap; over it, kInvalidInput naming the limit.
class BoundedSink : public layer::ByteSink {
 public:
  BoundedSink(std::uint64_t limit, std::string what) : limit_(limit), what_(std::move(what)) {}
  Expected<void> Write(std::string_view data) override {
    if (data_.size() + data.size() > limit_)
      return MakeError(ErrorKind::kInvalidInput, "registry.manifest_too_large",
                       what_ + " is over the limit of " + std::to_string(limit_) + " bytes");
    data_.append(data);
    return Ok();
  }
  std::string& data() { return data_; }

 private:
  std::uint64_t limit_;
  std::string what_;
  std::string data_;
};

std::vector<std::string> HeaderValues(const http::Response& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [n, v] : r.headers)
    if (n == name) out.push_back(v);
  return out;
}

std::string Printable(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

Error Sanitize(Error e) {
  e.message = RedactUrls(e.message);
  for (auto& c : e.context) c = RedactUrls(c);
  return e;
}

Expected<http::Url> EndpointUrl(const std::string& scheme, const std::string& host_port) {
  auto url = http::ParseUrl(scheme + "://" + host_port + "/");
  if (!url.ok())
    return MakeError(ErrorKind::kInvalidInput, "registry.config",
                     "invalid registry address \"" + host_port + "\"");
  return url;
}

Expected<std::unique_ptr<Host>> MakeHost(const std::string& name, const std::string& host_port,
                                         const std::string& only_scheme, bool mirror,
                                         const RegistryOptions& options) {
  auto host = std::make_unique<Host>();
  host->name = name;
  host->mirror = mirror;
  MF_TRY(tls_files, TlsFilesFor(options.certs_dir, host_port));
  bool insecure = IsInsecureRegistry(options, host_port);
  http::ClientOptions base;
  base.ca_file = options.ca_file;
  base.extra_ca_files = tls_files.ca_files;
  base.client_cert_file = tls_files.cert_file;
  base.client_key_file = tls_files.key_file;
  base.connect_timeout = options.connect_timeout;
  base.io_timeout = options.io_timeout;
  base.proxy = options.proxy;
  base.use_env_proxy = options.use_env_proxy;
  base.user_agent = options.user_agent;
  host->token_client = std::make_unique<http::Client>(base);
  if (only_scheme != "http") {
    MF_TRY(url, EndpointUrl("https", host_port));
    http::ClientOptions o = base;
    // Docker: an insecure registry is still tried over https first, unverified.
    o.insecure_skip_verify = insecure;
    host->endpoints.push_back(Endpoint{url, std::make_unique<http::Client>(o)});
  }
  if (only_scheme == "http" || (only_scheme.empty() && insecure)) {
    MF_TRY(url, EndpointUrl("http", host_port));
    host->endpoints.push_back(Endpoint{url, std::make_unique<http::Client>(base)});
  }
  return host;
}

}  // namespace

std::string RedactUrls(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t a = text.find("http://", i), b = text.find("https://", i);
    std::size_t start = std::min(a, b);
    if (start == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    std::size_t end = start;
    while (end < text.size() && text[end] != ' ' && text[end] != '"' && text[end] != '\'' &&
           text[end] != '\n' && text[end] != ',' && text[end] != ')')
      ++end;
    std::string_view url = text.substr(start, end - start);
    out.append(text.substr(i, start - i));
    auto q = url.find('?');
    if (q == std::string_view::npos) {
      out.append(url);
    } else {
      out.append(url.substr(0, q));
      out.append("?REDACTED");
    }
    i = end;
  }
  return out;
}

oci::Descriptor FetchedManifest::descriptor() const {
  oci::Descriptor d;
  d.media_type = media_type;
  d.digest = digest;
  d.size = static_cast<std::int64_t>(bytes.size());
  return d;
}

std::string Reply::Summary() const {
  auto doc = nlohmann::json::parse(error_body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("errors") || !doc["errors"].is_array() ||
      doc["errors"].empty() || !doc["errors"][0].is_object())
    return "";
  const auto& first = doc["errors"][0];
  std::string code = first.value("code", std::string());
  std::string message = first.contains("message") && first["message"].is_string()
                            ? first["message"].get<std::string>()
                            : std::string();
  std::string out = Printable(code, 64);
  if (!message.empty()) out += (out.empty() ? "" : ": ") + Printable(message, 200);
  return RedactUrls(out);
}

// --- request path ------------------------------------------------------------

Expected<Endpoint*> RegistryClient::Impl::Choose(Host& host) {
  std::lock_guard<std::mutex> lock(host.mu);
  if (host.chosen >= 0) return &host.endpoints[static_cast<std::size_t>(host.chosen)];
  std::optional<Error> last;
  for (std::size_t i = 0; i < host.endpoints.size(); ++i) {
    Endpoint& ep = host.endpoints[i];
    http::Request probe;
    probe.url = ep.base.ToString() + "v2/";
    layer::StringSink ignored;
    auto r = ep.client->Fetch(probe, ignored);
    if (r.ok()) {
      host.chosen = static_cast<int>(i);
      if (r->status == 401) host.auth->Learn(HeaderValues(*r, "www-authenticate"));
      return &ep;
    }
    MF_LOG_DEBUG("registry {}: {} failed: {}", host.name, ep.base.ToString(),
                 RedactUrls(r.error().message));
    last = Sanitize(std::move(r).error());
  }
  return std::move(*last).With("contacting registry " + host.name);
}

Expected<Reply> RegistryClient::Impl::Exchange(Host& host, const Call& call) {
  MF_TRY(ep, Choose(host));
  Expected<http::Url> resolved = call.target.starts_with("http://") ||
                                         call.target.starts_with("https://")
                                     ? http::ParseUrl(call.target)
                                     : ep->base.Resolve(call.target);
  if (!resolved.ok()) return Sanitize(std::move(resolved).error()).With(call.what);
  const http::Url& url = *resolved;
  // Credentials go only to the registry itself: never to an upload Location
  // or a redirect elsewhere (the http client also drops them on redirects).
  bool ours = SameOrigin(url, ep->base);
  for (int round = 0;; ++round) {
    http::Request req;
    req.method = call.method;
    req.url = url.ToString();
    req.headers = call.headers;
    if (ours) {
      MF_TRY(authorization, host.auth->Authorization(call.scopes));
      if (authorization) req.headers.emplace_back("Authorization", *authorization);
    }
    req.body = call.body;
    req.body_source = call.body_source;
    req.body_length = call.body_length;
    SplitSink sink(call);
    req.on_head = [&sink](const http::Response& head) { sink.OnHead(head); };
    auto r = ep->client->Fetch(req, sink);
    if (!r.ok()) return Sanitize(std::move(r).error()).With(call.what);
    if (r->status == 401) {
      auto final_url = http::ParseUrl(r->final_url);
      if (!ours || !final_url.ok() || !SameOrigin(*final_url, ep->base))
        return MakeError(ErrorKind::kSecurity, "registry.unauthorized",
                         "unauthorized: " + call.what + " was redirected to " +
                             (final_url.ok() ? final_url->HostPort() : "another host") +
                             ", which asks for credentials (not sent)");
      if (round > 0)
        return MakeError(ErrorKind::kSecurity, "registry.unauthorized",
                         "unauthorized: authentication required for " + host.name);
      MF_TRY_VOID(host.auth->OnUnauthorized(HeaderValues(*r, "www-authenticate"), call.scopes)
                      .With(call.what));
      if (call.body_source)  // read once: the caller restarts with the new credentials
        return MakeError(ErrorKind::kTransient, "registry.reauth",
                         "registry " + host.name + " asked for new credentials during " +
                             call.what);
      continue;
    }
    return Reply{std::move(*r), sink.TakeErrorBody()};
  }
}

void RegistryClient::Impl::Pause(std::chrono::milliseconds delay) const {
  std::this_thread::sleep_for(delay);
}

Expected<Reply> RegistryClient::Impl::Send(Host& host, const Call& call,
                                           const std::function<void()>& reset) {
  const RetryPolicy& policy = options.retry;
  int previous_status = 0;
  for (int attempt = 1;; ++attempt) {
    if (reset) reset();
    auto r = Exchange(host, call);
    std::chrono::milliseconds delay{0};
    if (!r.ok()) {
      bool retry = r.error().kind == ErrorKind::kTransient && !call.body_source &&
                   attempt < policy.max_attempts;
      if (!retry) return r;
      delay = Backoff(policy, attempt);
      MF_LOG_DEBUG("registry {}: attempt {} of {} failed ({}), retrying in {}ms", host.name,
                   attempt, call.what, r.error().message, delay.count());
      previous_status = 0;
    } else {
      int status = r->head.status;
      if (!IsRetryableStatus(status, previous_status) || call.body_source ||
          attempt >= policy.max_attempts)
        return r;
      delay = Backoff(policy, attempt);
      if (auto after = r->head.Header("retry-after")) {
        auto wait = ParseRetryAfter(*after, std::chrono::system_clock::now());
        if (wait && *wait > policy.max_retry_after) return r;
        if (wait) delay = *wait;
      }
      MF_LOG_DEBUG("registry {}: {} for {}, retrying in {}ms", host.name, status, call.what,
                   delay.count());
      previous_status = status;
    }
    Pause(delay);
  }
}

Error RegistryClient::Impl::StatusError(const Host& host, const Call& call,
                                        const Reply& reply) const {
  int status = reply.head.status;
  std::string summary = reply.Summary();
  std::string status_text = std::to_string(status) + " " + Printable(reply.head.reason, 64);
  std::string detail = summary.empty() ? "" : " (" + summary + ")";
  if (status == 401)
    return MakeError(ErrorKind::kSecurity, "registry.unauthorized",
                     "unauthorized: authentication required for " + host.name);
  if (status == 403)
    return MakeError(ErrorKind::kSecurity, "registry.denied",
                     "denied: registry " + host.name + " refused " + call.what + detail);
  if (status == 429)
    return MakeError(ErrorKind::kTransient, "registry.rate_limited",
                     "registry " + host.name + " is rate limiting (" + status_text + ") " +
                         call.what + detail);
  if (status >= 500 || status == 408)
    return MakeError(ErrorKind::kTransient, "registry.unavailable",
                     "registry " + host.name + " failed (" + status_text + ") " + call.what +
                         detail);
  return MakeError(ErrorKind::kInvalidInput, "registry.rejected",
                   "registry " + host.name + " refused (" + status_text + ") " + call.what +
                       detail);
}

// --- client -------------------------------------------------------------------

RegistryClient::RegistryClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegistryClient::~RegistryClient() = default;

const std::string& RegistryClient::domain() const { return impl_->domain; }

Expected<std::unique_ptr<RegistryClient>> RegistryClient::Create(const std::string& domain,
                                                                 RegistryOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->domain = domain;
  impl->options = std::move(options);
  const RegistryOptions& o = impl->options;
  auto add = [&impl, &o](std::unique_ptr<Host> host) {
    Host* h = host.get();
    // The token transport: the host's own TLS settings; a plain-http realm
    // only where plain http is allowed anyway, so a token never crosses the
    // network in the clear (RELIABILITY.md E15).
    auto transport = [h, &o](const http::Request& req, std::string* body) -> Expected<http::Response> {
      auto url = http::ParseUrl(req.url);
      if (!url.ok()) return Sanitize(std::move(url).error()).With("token realm");
      if (!url->IsTls() && !IsInsecureRegistry(o, url->HostPort()))
        return MakeError(ErrorKind::kSecurity, "registry.token",
                         "refusing to send credentials for " + h->name +
                             " to a plain-http token realm " + url->HostPort());
      // A realm on the registry's own origin shares its endpoint (and so an
      // insecure registry's TLS leniency); any other realm is verified.
      const http::Client* client = h->token_client.get();
      for (const auto& ep : h->endpoints)
        if (SameOrigin(ep.base, *url)) client = ep.client.get();
      BoundedSink sink(kMaxErrorBody, "token reply from " + url->HostPort());
      auto r = client->Fetch(req, sink);
      if (!r.ok()) return Sanitize(std::move(r).error());
      *body = std::move(sink.data());
      return r;
    };
    h->auth = std::make_unique<Authenticator>(h->name, o.credentials, transport);
    impl->hosts.push_back(std::move(host));
  };
  if (domain == kDockerHubDomain) {
    for (const auto& mirror : o.mirrors) {
      auto url = http::ParseUrl(mirror.find("://") == std::string::npos ? "https://" + mirror
                                                                         : mirror);
      if (!url.ok())
        return MakeError(ErrorKind::kInvalidInput, "registry.config",
                         "invalid registry mirror \"" + RedactUrls(mirror) + "\"");
      std::string host_port = url->HostPort();
      if (url->HasDefaultPort()) host_port = url->IsIpv6() ? "[" + url->host + "]" : url->host;
      MF_TRY(host, MakeHost(host_port, host_port, url->scheme, /*mirror=*/true, o));
      add(std::move(host));
    }
    MF_TRY(hub, MakeHost(domain, std::string(kDockerHubHost), "", false, o));
    add(std::move(hub));
  } else {
    MF_TRY(host, MakeHost(domain, domain, "", false, o));
    add(std::move(host));
  }
  return std::unique_ptr<RegistryClient>(new RegistryClient(std::move(impl)));
}

// --- manifests ------------------------------------------------------------------

namespace {

std::string MediaTypeOf(const http::Response& head) {
  std::string ct = AsciiLower(head.Header("content-type").value_or(""));
  auto semi = ct.find(';');
  if (semi != std::string::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  return ct;
}

Error MediaTypeMismatch(const std::string& name, const std::string& header,
                        const std::string& field) {
  return MakeError(ErrorKind::kIntegrity, "registry.media_type_mismatch",
                   "manifest " + name + " is served as " + header + " but says it is " + field);
}

/// Checks the document against its Content-Type; returns its media type.
Expected<std::string> CheckDocument(const std::string& name, const std::string& content_type,
                                    const std::string& bytes) {
  std::string what = "manifest " + name;
  if (oci::IsDockerSchema1(content_type))
    return MakeError(ErrorKind::kUnimplemented, "oci.schema1",
                     "Docker schema1 manifests are not supported: rebuild the image and push it "
                     "as Docker schema2 or OCI")
        .With(what);
  if (oci::IsIndex(content_type)) {
    MF_TRY(index, oci::ParseIndex(bytes).With(what));
    if (!index.media_type.empty() && index.media_type != content_type)
      return MediaTypeMismatch(name, content_type, index.media_type);
    return content_type;
  }
  if (oci::IsManifest(content_type)) {
    MF_TRY(manifest, oci::ParseManifest(bytes).With(what));
    if (!manifest.media_type.empty() && manifest.media_type != content_type)
      return MediaTypeMismatch(name, content_type, manifest.media_type);
    return content_type;
  }
  // A generic or missing Content-Type: the document says what it is.
  auto manifest = oci::ParseManifest(bytes);
  if (manifest.ok())
    return manifest->media_type.empty() ? std::string(oci::kOciImageManifest)
                                        : manifest->media_type;
  if (manifest.error().code != "oci.media_type") return std::move(manifest).error().With(what);
  MF_TRY(index, oci::ParseIndex(bytes).With(what));
  return index.media_type.empty() ? std::string(oci::kOciImageIndex) : index.media_type;
}

}  // namespace

Expected<FetchedManifest> RegistryClient::GetManifest(const std::string& repo,
                                                      const std::string& reference) {
  bool by_digest = reference.find(':') != std::string::npos;
  std::optional<oci::Digest> want;
  if (by_digest) {
    MF_TRY(d, oci::ParseDigest(reference));
    want = d;
  }
  std::string name = impl_->domain + "/" + repo + (by_digest ? "@" : ":") + reference;
  BoundedSink sink(kMaxManifestBytes, "manifest " + name);
  Call call;
  call.what = "fetching manifest " + name;
  call.target = "/v2/" + repo + "/manifests/" + reference;
  call.headers = {{"Accept", std::string(oci::kOciImageIndex) + ", " +
                                 std::string(oci::kOciImageManifest) + ", " +
                                 std::string(oci::kDockerManifestList) + ", " +
                                 std::string(oci::kDockerManifest) + ", " +
                                 std::string(oci::kDockerSchema1SignedManifest) + ";q=0.1"}};
  call.scopes = {PullScope(repo)};
  call.route = [&sink](const http::Response&) -> layer::ByteSink* { return &sink; };
  std::optional<Error> mirror_error;
  for (auto& host : impl_->hosts) {
    auto r = impl_->Send(*host, call, [&sink] { sink.data().clear(); });
    std::optional<Error> failure;
    if (!r.ok()) {
      failure = std::move(r).error();
    } else if (r->head.status == 404) {
      failure = MakeError(ErrorKind::kInvalidInput, "registry.manifest_unknown",
                          "manifest unknown: " + name);
    } else if (!r->ok()) {
      failure = impl_->StatusError(*host, call, *r);
    }
    if (failure) {
      if (host->mirror) {  // the next mirror, or the origin, may do better
        MF_LOG_DEBUG("mirror {}: {}", host->name, failure->message);
        continue;
      }
      return *failure;
    }
    FetchedManifest out;
    out.bytes = std::move(sink.data());
    out.digest = oci::Digest::Sha256Of(out.bytes);
    if (want && *want != out.digest)
      return MakeError(ErrorKind::kIntegrity, "registry.digest_mismatch",
                       "manifest " + name + " from " + host->name + " does not match its digest: got " +
                           out.digest.ToString());
    if (auto header = r->head.Header("docker-content-digest")) {
      auto claimed = oci::ParseDigest(*header);
      if (claimed.ok() && claimed->algorithm == "sha256" && *claimed != out.digest)
        return MakeError(ErrorKind::kIntegrity, "registry.digest_mismatch",
                         "manifest " + name + " from " + host->name + " hashes to " +
                             out.digest.ToString() + " but the registry says " +
                             claimed->ToString());
    }
    MF_TRY(media_type, CheckDocument(name, MediaTypeOf(r->head), out.bytes));
    out.media_type = std::move(media_type);
    return out;
  }
  return MakeError(ErrorKind::kInternal, "registry.internal", "no registry host for " + name);
}

Expected<oci::Digest> RegistryClient::PutManifest(const std::string& repo,
                                                  const std::string& reference,
                                                  const std::string& media_type,
                                                  const std::string& bytes) {
  std::string name = impl_->domain + "/" + repo +
                     (reference.find(':') != std::string::npos ? "@" : ":") + reference;
  Call call;
  call.method = "PUT";
  call.what = "pushing manifest " + name;
  call.target = "/v2/" + repo + "/manifests/" + reference;
  call.headers = {{"Content-Type", media_type}};
  call.body = bytes;
  call.scopes = {PushScope(repo)};
  Host& host = impl_->origin();
  MF_TRY(reply, impl_->Send(host, call));
  if (!reply.ok()) return impl_->StatusError(host, call, reply);
  oci::Digest ours = oci::Digest::Sha256Of(bytes);
  if (auto header = reply.head.Header("docker-content-digest")) {
    auto claimed = oci::ParseDigest(*header);
    if (!claimed.ok() || *claimed != ours)
      return MakeError(ErrorKind::kIntegrity, "registry.digest_mismatch",
                       "registry " + host.name + " stored manifest " + name + " as " +
                           Printable(*header, 140) + ", not " + ours.ToString());
  }
  return ours;
}

}  // namespace manifold::registry
