// Internal to common/registry: the state behind RegistryClient and the one
// request path every operation goes through (endpoint choice, credentials,
// retries), shared by client.cc and blob_transfer.cc.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/http/http_client.h"
#include "common/http/url.h"
#include "common/registry/auth.h"
#include "common/registry/client.h"

namespace manifold::registry {

using Headers = std::vector<std::pair<std::string, std::string>>;

/// One way to reach a host: https (verified, or not for insecure hosts) or http.
struct Endpoint {
  http::Url base;  ///< scheme://host:port/
  std::unique_ptr<http::Client> client;
};

/// A registry host: the origin, or a Docker Hub mirror.
struct Host {
  std::string name;  ///< in messages and for credentials: "docker.io", "mirror:5000"
  bool mirror = false;
  std::vector<Endpoint> endpoints;  ///< preference order
  std::unique_ptr<http::Client> token_client;  ///< verifying, for realms on other hosts
  std::unique_ptr<Authenticator> auth;
  std::mutex mu;
  int chosen = -1;  ///< guarded by mu: the endpoint that answered the /v2/ probe
};

/// One logical request. `target` is a path ("/v2/...") or an absolute URL
/// (an upload Location).
struct Call {
  std::string method = "GET";
  std::string what;  ///< "manifest docker.io/library/x:1", for messages
  std::string target;
  Headers headers;
  std::string body;
  /// A streamed body is read once: such a call is never re-sent here.
  layer::ByteSource* body_source = nullptr;
  std::uint64_t body_length = 0;
  std::vector<std::string> scopes;
  /// Where a 2xx body goes (nullptr: discarded); called with the head.
  std::function<layer::ByteSink*(const http::Response&)> route;
};

struct Reply {
  http::Response head;
  std::string error_body;  ///< a non-2xx body, at most 64 KiB

  bool ok() const { return head.status >= 200 && head.status <= 299; }
  /// "MANIFEST_UNKNOWN: manifest unknown" from a distribution error body, or "".
  std::string Summary() const;
};

struct RegistryClient::Impl {
  std::string domain;
  RegistryOptions options;
  std::vector<std::unique_ptr<Host>> hosts;  ///< mirrors first, the origin last

  Host& origin() { return *hosts.back(); }

  /// The endpoint to use, probing GET /v2/ once (which also teaches the
  /// authenticator the challenge).
  Expected<Endpoint*> Choose(Host& host);
  /// One exchange, re-sent once after a 401 the authenticator could answer.
  Expected<Reply> Exchange(Host& host, const Call& call);
  /// Exchange under the retry policy; `reset` runs before each attempt.
  Expected<Reply> Send(Host& host, const Call& call, const std::function<void()>& reset = {});
  /// The error for a non-2xx reply (404 is the caller's to name).
  Error StatusError(const Host& host, const Call& call, const Reply& reply) const;
  /// Sleeps before a retry.
  void Pause(std::chrono::milliseconds delay) const;
};

}  // namespace manifold::registry
