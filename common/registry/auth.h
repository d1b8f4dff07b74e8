// Registry authentication (distribution-spec + CNCF Distribution token spec):
// a 401 carries WWW-Authenticate; Basic is answered with the credentials,
// Bearer by fetching a token from the realm (GET with Basic credentials, or a
// form POST with grant_type=refresh_token for an identity token) and sending
// "Bearer <token>". Tokens are cached per (realm, service, scopes) until
// their expiry. Secrets never appear in errors or logs.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/http/http_client.h"
#include "common/registry/challenge.h"
#include "common/registry/registry_options.h"

namespace manifold::registry {

/// Sends a token request and collects its (bounded) body. The registry
/// client provides it: it picks the TLS settings and refuses a plain-http
/// realm unless that host is insecure or loopback.
using TokenTransport =
    std::function<Expected<http::Response>(const http::Request& request, std::string* body)>;

using WallClock = std::function<std::chrono::system_clock::time_point()>;

/// "repository:<repo>:pull" / "repository:<repo>:pull,push".
std::string PullScope(const std::string& repo);
std::string PushScope(const std::string& repo);

/// Thread-safe. One per registry host.
class Authenticator {
 public:
  /// `registry` names the registry in messages ("docker.io", "127.0.0.1:5000").
  Authenticator(std::string registry, CredentialSource credentials, TokenTransport transport,
                WallClock clock = std::chrono::system_clock::now);

  /// The Authorization value for a request needing `scopes`, from what
  /// challenges taught so far (nullopt: send none). May fetch a token.
  /// Errors: those of the credential source and of the token fetch:
  /// kSecurity "registry.unauthorized" (token server refused),
  /// kTransient "registry.token" (token server 5xx/429 or unreachable),
  /// kIntegrity "registry.token" (a reply without a token).
  Expected<std::optional<std::string>> Authorization(const std::vector<std::string>& scopes);

  /// Learns from a 401 to a request needing `scopes` and forgets the token
  /// it carried. Errors: kSecurity "registry.unauthorized" when nothing can
  /// answer the challenge (no usable scheme; Basic without credentials).
  Expected<void> OnUnauthorized(const std::vector<std::string>& www_authenticate,
                                const std::vector<std::string>& scopes);

  /// Learns the scheme from a probe's 401 without failing.
  void Learn(const std::vector<std::string>& www_authenticate);

  /// Token requests sent so far (tests).
  int token_fetches() const;

 private:
  struct Token {
    std::string value;
    std::chrono::system_clock::time_point expires;
  };
  Expected<Credentials> CredentialsLocked();
  Expected<Token> FetchToken(const Challenge& bearer, const std::vector<std::string>& scopes,
                             const Credentials& creds);
  std::string CacheKey(const std::vector<std::string>& scopes) const;
  void LearnLocked(const std::vector<Challenge>& challenges);

  std::string registry_;
  CredentialSource credentials_source_;
  TokenTransport transport_;
  WallClock clock_;

  mutable std::mutex mu_;  // held across token fetches: one fetch per scope at a time
  std::optional<Credentials> credentials_;
  std::optional<Challenge> basic_;
  std::optional<Challenge> bearer_;
  std::map<std::string, Token> tokens_;
  int token_fetches_ = 0;
};

/// "Basic base64(user:password)".
std::string BasicAuthorization(const std::string& username, const std::string& password);

/// Percent-encodes a query or form value (RFC 3986 unreserved kept).
std::string QueryEscape(std::string_view value);

}  // namespace manifold::registry
