// A real CNCF distribution registry (Debian's docker-registry) for tests, on
// 127.0.0.1 with its own config and storage in a temp dir, in three setups:
// open (plain HTTP), Basic auth (htpasswd, bcrypt) over TLS with a CA made
// for the test, and token auth with an in-process token server that issues
// ES256 JWTs the registry verifies. Requests the registry served are counted
// from its access log.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace manifold::testing {

class TestRegistry {
 public:
  enum class Mode { kOpen, kBasicTls, kToken };

  /// Starts the registry and waits until it answers /v2/. `dir` must exist
  /// and is used for config, storage, certs and logs. Fails the test (and
  /// returns null) when it cannot start.
  static std::unique_ptr<TestRegistry> Start(Mode mode, const std::string& dir);
  ~TestRegistry();  // stops the registry by PID

  /// "127.0.0.1:<port>".
  const std::string& host() const { return host_; }
  Mode mode() const { return mode_; }
  /// kBasicTls: the CA (PEM file) that signed the registry's certificate,
  /// and a Docker-style certs dir (<dir>/certs.d/<host>/ca.crt).
  const std::string& ca_file() const { return ca_file_; }
  const std::string& certs_dir() const { return certs_dir_; }
  /// kBasicTls and kToken: the user that may push and pull.
  static constexpr const char* kUser = "builder";
  static constexpr const char* kPassword = "s3cret-pw";

  /// Requests the registry logged with this method whose URI contains
  /// `path_part` (e.g. "PUT", "/blobs/uploads/").
  int CountRequests(const std::string& method, const std::string& path_part) const;
  /// The registry's log so far (for failure messages).
  std::string Log() const;

  /// Token mode: tokens the token server issued so far.
  int TokensIssued() const;

 private:
  TestRegistry() = default;
  struct TokenServer;
  Mode mode_ = Mode::kOpen;
  std::string dir_;
  std::string host_;
  std::string ca_file_;
  std::string certs_dir_;
  std::string log_path_;
  int pid_ = -1;
  std::unique_ptr<TokenServer> token_;
};

}  // namespace manifold::testing
