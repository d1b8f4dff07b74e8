// A scripted in-process registry for common/registry tests (STYLE.md section
// 8: fakes over mocks): the distribution-spec routes Manifold uses (/v2/,
// manifests, blobs with Range, uploads with mount/PATCH/PUT) on 127.0.0.1,
// with optional Basic or Bearer authentication (a token server of its own),
// blob redirects to another host, and a script hook that can answer any
// request instead (429, 5xx, truncated or corrupt bodies, stalls).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/http/testing/test_cert.h"
#include "common/http/testing/test_server.h"

namespace manifold::registry::testing {

/// What a script answers: raw response bytes, or a stall (never answer).
struct Override {
  bool stall = false;
  std::string raw;
};

class FakeRegistry {
 public:
  enum class Auth { kNone, kBasic, kBearer };
  struct Options {
    Auth auth = Auth::kNone;
    std::string username = "alice";
    std::string password = "s3cret-pw";
    /// Serve HTTPS with this certificate.
    std::optional<http::testing::TestCert> tls;
    bool support_range = true;
    /// When set ("http://127.0.0.1:PORT"), blob GETs answer 307 to
    /// <base>/storage/<digest>?X-Amz-Signature=SIGNED.
    std::string blob_redirect_base;
    int token_expires_in = 300;
  };

  FakeRegistry();
  explicit FakeRegistry(Options options);
  ~FakeRegistry();
  FakeRegistry(const FakeRegistry&) = delete;
  FakeRegistry& operator=(const FakeRegistry&) = delete;

  /// "127.0.0.1:<port>".
  std::string domain() const;

  /// Stores a blob in `repo`; returns its digest.
  std::string AddBlob(const std::string& repo, const std::string& bytes);
  /// Stores a manifest under its digest and, when `tag` is not empty, the tag.
  std::string AddManifest(const std::string& repo, const std::string& tag,
                          const std::string& media_type, const std::string& bytes);
  std::optional<std::string> Blob(const std::string& digest) const;
  bool RepoHasBlob(const std::string& repo, const std::string& digest) const;
  /// The media type and bytes a tag or digest names, if any.
  std::optional<std::pair<std::string, std::string>> Manifest(const std::string& repo,
                                                              const std::string& ref) const;

  using Script =
      std::function<std::optional<Override>(const http::testing::ReceivedRequest& request)>;
  /// Runs before the normal handling of every registry request.
  void SetScript(Script script);

  std::vector<http::testing::ReceivedRequest> requests() const;
  /// Requests whose method matches and whose target starts with `prefix`.
  int Count(const std::string& method, const std::string& prefix) const;
  std::vector<http::testing::ReceivedRequest> token_requests() const;

  /// A 200/206 answer for `content` honouring a "Range: bytes=N-" header
  /// (for storage servers that blob redirects lead to).
  static std::string BlobResponse(const std::string& content,
                                  const http::testing::ReceivedRequest& request);

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace manifold::registry::testing
