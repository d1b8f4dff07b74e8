#include "common/registry/auth.h"

#include <time.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "common/base/log.h"
#include "common/registry/base64.h"

namespace manifold::registry {
namespace {

/// Tokens are renewed this long before they expire, so a request does not
/// leave with a token that dies in flight.
constexpr std::chrono::seconds kExpiryMargin{5};
/// The token spec's floor for expires_in.
constexpr std::int64_t kMinExpiresInSeconds = 60;

Error Unauthorized(const std::string& registry, const std::string& why) {
  return MakeError(ErrorKind::kSecurity, "registry.unauthorized",
                   "unauthorized: authentication required for " + registry +
                       (why.empty() ? "" : " (" + why + ")"));
}

std::optional<std::chrono::system_clock::time_point> ParseRfc3339(const std::string& text) {
  tm parts{};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &parts);
  if (end == nullptr) return std::nullopt;
  return std::chrono::system_clock::from_time_t(::timegm(&parts));  // fraction and zone ignored
}

std::vector<Challenge> ParseAll(const std::vector<std::string>& headers) {
  std::vector<Challenge> out;
  for (const auto& h : headers)
    for (auto& c : ParseChallenges(h)) out.push_back(std::move(c));
  return out;
}

}  // namespace

std::string PullScope(const std::string& repo) { return "repository:" + repo + ":pull"; }
std::string PushScope(const std::string& repo) { return "repository:" + repo + ":pull,push"; }

std::string BasicAuthorization(const std::string& username, const std::string& password) {
  return "Basic " + Base64Encode(username + ":" + password);
}

std::string QueryEscape(std::string_view value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '~';
    if (keep) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

Authenticator::Authenticator(std::string registry, CredentialSource credentials,
                             TokenTransport transport, WallClock clock)
    : registry_(std::move(registry)),
      credentials_source_(std::move(credentials)),
      transport_(std::move(transport)),
      clock_(std::move(clock)) {}

int Authenticator::token_fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_fetches_;
}

Expected<Credentials> Authenticator::CredentialsLocked() {
  if (!credentials_) {
    if (!credentials_source_) {
      credentials_ = Credentials{};
    } else {
      MF_TRY(found, credentials_source_(registry_));
      credentials_ = std::move(found);
    }
  }
  return *credentials_;
}

std::string Authenticator::CacheKey(const std::vector<std::string>& scopes) const {
  std::set<std::string> sorted(scopes.begin(), scopes.end());
  std::string key = bearer_->params.count("realm") ? bearer_->params.at("realm") : "";
  key += '\n';
  key += bearer_->params.count("service") ? bearer_->params.at("service") : "";
  for (const auto& s : sorted) key += "\n" + s;
  return key;
}

void Authenticator::LearnLocked(const std::vector<Challenge>& challenges) {
  for (const auto& c : challenges) {
    if (c.scheme == "bearer" && c.params.count("realm")) {
      // A new realm or service invalidates what was fetched from the old one.
      if (bearer_ && (bearer_->params.at("realm") != c.params.at("realm") ||
                      bearer_->params.count("service") != c.params.count("service") ||
                      (c.params.count("service") &&
                       bearer_->params.at("service") != c.params.at("service"))))
        tokens_.clear();
      bearer_ = c;
    } else if (c.scheme == "basic") {
      basic_ = c;
    }
  }
}

void Authenticator::Learn(const std::vector<std::string>& www_authenticate) {
  std::lock_guard<std::mutex> lock(mu_);
  LearnLocked(ParseAll(www_authenticate));
}

Expected<void> Authenticator::OnUnauthorized(const std::vector<std::string>& www_authenticate,
                                             const std::vector<std::string>& scopes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto challenges = ParseAll(www_authenticate);
  LearnLocked(challenges);
  if (bearer_) {
    tokens_.erase(CacheKey(scopes));
    return Ok();
  }
  if (basic_) {
    MF_TRY(creds, CredentialsLocked());
    if (creds.username.empty() && creds.password.empty())
      return Unauthorized(registry_, "no credentials");
    return Ok();
  }
  return Unauthorized(registry_, challenges.empty() ? "no WWW-Authenticate challenge"
                                                    : "unsupported authentication scheme");
}

Expected<std::optional<std::string>> Authenticator::Authorization(
    const std::vector<std::string>& scopes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!bearer_ && !basic_) return std::optional<std::string>();
  MF_TRY(creds, CredentialsLocked());
  if (bearer_) {
    if (!creds.registry_token.empty())
      return std::optional<std::string>("Bearer " + creds.registry_token);
    std::string key = CacheKey(scopes);
    auto it = tokens_.find(key);
    if (it == tokens_.end() || clock_() + kExpiryMargin >= it->second.expires) {
      MF_TRY(token, FetchToken(*bearer_, scopes, creds));
      it = tokens_.insert_or_assign(key, std::move(token)).first;
    }
    return std::optional<std::string>("Bearer " + it->second.value);
  }
  if (creds.username.empty() && creds.password.empty()) return std::optional<std::string>();
  return std::optional<std::string>(BasicAuthorization(creds.username, creds.password));
}

Expected<Authenticator::Token> Authenticator::FetchToken(const Challenge& bearer,
                                                         const std::vector<std::string>& scopes,
                                                         const Credentials& creds) {
  const std::string& realm = bearer.params.at("realm");
  std::string service = bearer.params.count("service") ? bearer.params.at("service") : "";
  std::vector<std::string> wanted = scopes;
  if (wanted.empty() && bearer.params.count("scope")) wanted.push_back(bearer.params.at("scope"));

  http::Request req;
  if (!creds.identity_token.empty()) {
    // Distribution token spec, "OAuth2 token": a refresh token is exchanged
    // with a form POST.
    req.method = "POST";
    req.url = realm;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    std::string scope_list;
    for (const auto& s : wanted) scope_list += (scope_list.empty() ? "" : " ") + s;
    req.body = "grant_type=refresh_token&refresh_token=" + QueryEscape(creds.identity_token) +
               "&client_id=manifold";
    if (!service.empty()) req.body += "&service=" + QueryEscape(service);
    if (!scope_list.empty()) req.body += "&scope=" + QueryEscape(scope_list);
  } else {
    std::string query;
    if (!service.empty()) query += "service=" + QueryEscape(service);
    for (const auto& s : wanted) query += (query.empty() ? "" : "&") + ("scope=" + QueryEscape(s));
    req.url = realm + (query.empty() ? "" : (realm.find('?') == std::string::npos ? "?" : "&") + query);
    if (!creds.username.empty() || !creds.password.empty())
      req.headers.emplace_back("Authorization",
                               BasicAuthorization(creds.username, creds.password));
  }
  ++token_fetches_;
  std::string body;
  auto sent = transport_(req, &body);
  if (!sent.ok()) {
    Error e = std::move(sent).error();
    if (e.kind == ErrorKind::kTransient)
      return MakeError(ErrorKind::kTransient, "registry.token",
                       "cannot get a token for " + registry_ + ": " + e.message);
    return std::move(e).With("getting a token for " + registry_);
  }
  int status = sent->status;
  if (status == 401 || status == 403)
    return Unauthorized(registry_, "the token server refused the credentials: " +
                                       std::to_string(status) + " " + sent->reason);
  if (status == 429 || status >= 500)
    return MakeError(ErrorKind::kTransient, "registry.token",
                     "token server for " + registry_ + " answered " + std::to_string(status) +
                         " " + sent->reason);
  if (status != 200)
    return Unauthorized(registry_, "the token server answered " + std::to_string(status) + " " +
                                       sent->reason);
  nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  Token token;
  if (reply.is_object()) {
    for (const char* field : {"token", "access_token"}) {
      auto it = reply.find(field);
      if (it != reply.end() && it->is_string() && !it->get<std::string>().empty()) {
        token.value = it->get<std::string>();
        break;
      }
    }
  }
  if (token.value.empty())
    return MakeError(ErrorKind::kIntegrity, "registry.token",
                     "token server for " + registry_ + " sent a reply without a token");
  std::int64_t expires_in = kMinExpiresInSeconds;
  if (auto it = reply.find("expires_in"); it != reply.end() && it->is_number_integer())
    expires_in = std::max(it->get<std::int64_t>(), kMinExpiresInSeconds);
  auto now = clock_();
  auto issued = now;
  if (auto it = reply.find("issued_at"); it != reply.end() && it->is_string()) {
    // A token server whose clock runs ahead must not make a token live longer.
    if (auto at = ParseRfc3339(it->get<std::string>()); at && *at < now) issued = *at;
  }
  token.expires = issued + std::chrono::seconds(expires_in);
  MF_LOG_DEBUG("registry {}: got a token for {} scope(s), valid {}s", registry_, wanted.size(),
               expires_in);
  return token;
}

}  // namespace manifold::registry
