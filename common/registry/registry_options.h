// How Manifold reaches registries, as Docker configures it: insecure
// registries (plain HTTP allowed; loopback always is), mirrors for Docker Hub,
// per-registry TLS files in /etc/docker/certs.d/HOST[:PORT]/, credentials,
// retries and timeouts. The CLI fills a RegistryOptions (flags, daemon.json,
// ~/.docker/config.json) and passes it down; nothing here is global.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/http/proxy.h"
#include "common/registry/retry_policy.h"

namespace manifold::registry {

/// The domain references use for Docker Hub, the host actually contacted, and
/// the key Docker's config.json and credential helpers use for it.
inline constexpr std::string_view kDockerHubDomain = "docker.io";
inline constexpr std::string_view kDockerHubHost = "registry-1.docker.io";
inline constexpr std::string_view kDockerHubAuthKey = "https://index.docker.io/v1/";

/// What a registry login holds. All empty: anonymous.
struct Credentials {
  std::string username;
  std::string password;
  /// An OAuth2 refresh token ("identitytoken"): exchanged at the token
  /// endpoint with a form POST (distribution token spec, grant_type=refresh_token).
  std::string identity_token;
  /// A bearer token sent as is ("registrytoken").
  std::string registry_token;

  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() &&
           registry_token.empty();
  }
};

/// Credentials for a registry domain ("docker.io", "reg.example.com:5000").
/// Returns empty Credentials when there are none; errors only when the store
/// itself fails (unreadable file, broken helper).
using CredentialSource = std::function<Expected<Credentials>(const std::string& domain)>;

struct RegistryOptions {
  /// HOST[:PORT] entries allowed over plain HTTP (and over HTTPS without
  /// certificate checks), as `--insecure-registry`. HTTPS is still tried first.
  std::vector<std::string> insecure_registries;
  /// As Docker does, loopback registries (127.0.0.0/8, ::1, localhost) are
  /// insecure without being listed. Tests turn this off to exercise TLS checks.
  bool loopback_is_insecure = true;
  /// Docker Hub mirrors ("https://mirror.example.com", "http://10.0.0.5:5000"),
  /// tried in order before registry-1.docker.io for pulls (never for pushes).
  std::vector<std::string> mirrors;
  /// Per-registry TLS files: <certs_dir>/HOST[:PORT]/*.crt are extra CAs,
  /// *.cert + *.key a client certificate. A missing folder is fine.
  std::string certs_dir = "/etc/docker/certs.d";
  /// The system CA bundle (empty: OpenSSL's defaults).
  std::string ca_file = "/etc/ssl/certs/ca-certificates.crt";
  CredentialSource credentials;  ///< unset: anonymous
  RetryPolicy retry;
  std::chrono::milliseconds connect_timeout{30000};
  /// A registry silent this long during one read or write fails the request
  /// (kTransient "http.timeout"), which is then retried.
  std::chrono::milliseconds io_timeout{60000};
  std::optional<http::ProxyConfig> proxy;  ///< unset: HTTP(S)_PROXY from the environment
  bool use_env_proxy = true;
  std::string user_agent = "manifold";
  /// Blobs up to this size are uploaded with one PUT; bigger ones in PATCH
  /// chunks of this size, streamed from the store (memory stays bounded).
  std::uint64_t chunk_bytes = std::uint64_t{16} << 20;
};

/// "host" of "HOST[:PORT]" ("[::1]:5000" -> "::1").
std::string HostOf(std::string_view host_port);

/// localhost, 127.0.0.0/8 or ::1 (host without port).
bool IsLoopbackHost(std::string_view host);

/// Whether `host_port` may be reached over plain HTTP: listed in
/// insecure_registries (exactly, or as a bare host matching any port), or
/// loopback when loopback_is_insecure.
bool IsInsecureRegistry(const RegistryOptions& options, std::string_view host_port);

/// The TLS files Docker reads for `host_port` from <certs_dir>/<host_port>/,
/// sorted by name. Errors: kInvalidInput "registry.certs" for a *.cert without
/// its *.key (or the reverse), naming both.
struct HostTlsFiles {
  std::vector<std::string> ca_files;
  std::string cert_file;
  std::string key_file;
};
Expected<HostTlsFiles> TlsFilesFor(const std::string& certs_dir, std::string_view host_port);

/// Reads "insecure-registries" and "registry-mirrors" from a daemon.json
/// (Docker's /etc/docker/daemon.json) and appends them to `options`. A
/// missing file is fine. Errors: kInvalidInput "registry.config" naming the file.
Expected<void> LoadDaemonConfig(const std::string& path, RegistryOptions* options);

}  // namespace manifold::registry
