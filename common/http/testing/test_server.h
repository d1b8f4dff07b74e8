// In-process servers for common/http tests, listening on 127.0.0.1 only, on an
// ephemeral port, served by one background thread:
//  - TestServer: HTTP or HTTPS; a handler returns the raw response bytes (so
//    tests can send chunked, truncated or malformed responses) or nothing, to
//    leave the client waiting;
//  - TestProxy: answers CONNECT by tunnelling to a routed 127.0.0.1 port, and
//    answers absolute-form requests itself with "via proxy: METHOD TARGET".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http/testing/test_cert.h"

namespace manifold::http::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lowercased
  std::string body;

  std::optional<std::string> Header(std::string_view lower_name) const;
};

/// Raw response bytes, or nullopt to never answer (the connection is held
/// until the client gives up or the server stops).
using Handler = std::function<std::optional<std::string>(const ReceivedRequest&)>;

/// "HTTP/1.1 <status> <reason>\r\nContent-Length: N\r\n<extra_headers>\r\n<body>";
/// extra_headers are full lines ("Location: /x\r\n").
std::string RawResponse(int status, std::string_view reason, std::string_view body,
                        std::string_view extra_headers = "");

class TestServer {
 public:
  /// Plain HTTP.
  explicit TestServer(Handler handler);
  /// HTTPS with `cert`.
  TestServer(Handler handler, const TestCert& cert);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::uint16_t port() const;
  /// "http(s)://127.0.0.1:<port><path>"
  std::string Url(std::string_view path) const;
  std::vector<ReceivedRequest> requests() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

class TestProxy {
 public:
  /// `routes` maps a CONNECT target ("origin.test:443") to a 127.0.0.1 port;
  /// other targets get 502.
  explicit TestProxy(std::map<std::string, std::uint16_t> routes);
  ~TestProxy();
  TestProxy(const TestProxy&) = delete;
  TestProxy& operator=(const TestProxy&) = delete;

  std::uint16_t port() const;
  std::vector<ReceivedRequest> requests() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace manifold::http::testing
