// A distribution-spec client for one registry (a reference's domain):
// manifests and blobs by repository, with authentication (auth.h), retries
// (retry_policy.h), TLS from certs.d and plain HTTP only for insecure or
// loopback registries (registry_options.h). Docker Hub ("docker.io") is
// reached at registry-1.docker.io, after its mirrors for reads.
//
// Every error names the registry and what was asked for, never a credential
// or a signed URL's query. Kinds: kInvalidInput (unknown manifest or blob,
// request refused), kSecurity (TLS or authentication refused), kIntegrity
// (digest, size or media type mismatch), kTransient (5xx, 429, timeouts and
// dropped connections, after retries), kUnimplemented (schema1).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/cas/blob_store.h"
#include "common/oci/descriptor.h"
#include "common/oci/digest.h"
#include "common/registry/registry_options.h"

namespace manifold::registry {

/// Largest manifest or index read from a registry (RELIABILITY.md E3).
inline constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{4} << 20;

struct FetchedManifest {
  std::string bytes;       ///< exactly as served (push these, never a re-serialisation)
  std::string media_type;  ///< OCI manifest/index or Docker v2s2 manifest/list
  oci::Digest digest;      ///< sha256 of bytes (verified against the request or header)

  oci::Descriptor descriptor() const;
};

enum class BlobPush { kExisted, kMounted, kUploaded };

/// Thread-safe: blob transfers may run from several threads at once.
class RegistryClient {
 public:
  /// A client for `domain` ("docker.io", "127.0.0.1:5000", "[::1]:5000").
  /// Errors: kInvalidInput "registry.config" (a bad mirror URL, a certs.d
  /// folder with a certificate but no key).
  static Expected<std::unique_ptr<RegistryClient>> Create(const std::string& domain,
                                                          RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const std::string& domain() const;

  /// GET /v2/<repo>/manifests/<tag-or-digest>, accepting OCI manifests and
  /// indexes and Docker v2s2 manifests and lists. By digest the bytes must
  /// hash to it; by tag a Docker-Content-Digest header must match them. The
  /// document is parsed (ambiguous manifest/index refused) and its mediaType
  /// must match Content-Type. Errors: kInvalidInput "registry.manifest_unknown"
  /// ("manifest unknown: docker.io/library/x:1"), "registry.manifest_too_large";
  /// kIntegrity "registry.digest_mismatch", "registry.media_type_mismatch";
  /// kUnimplemented "oci.schema1"; and the common ones above.
  Expected<FetchedManifest> GetManifest(const std::string& repo, const std::string& reference);

  /// HEAD /v2/<repo>/blobs/<digest>: the size, or nullopt when absent.
  Expected<std::optional<std::int64_t>> HeadBlob(const std::string& repo,
                                                 const oci::Digest& digest);

  /// Streams a blob into `store` through a verifying ingest (expected digest
  /// and size): nothing is published unless both match. A dropped connection
  /// resumes with Range from the bytes already written (or restarts when the
  /// registry ignores Range); a mismatch is retried once from scratch.
  /// Redirects (to storage) are followed without credentials. Errors:
  /// kIntegrity "registry.blob_mismatch" naming digest and registry;
  /// kInvalidInput "registry.blob_unknown"; the store's errors; the common ones.
  Expected<void> GetBlob(const std::string& repo, const oci::Descriptor& blob,
                         cas::BlobStore& store);

  /// Makes `blob` (held in `store`) present in <repo>: nothing if a HEAD finds
  /// it; else a cross-repository mount from the first of `mount_from` (other
  /// repositories of this registry) that works; else an upload: one PUT up to
  /// chunk_bytes, PATCH chunks beyond, read from the store as they go.
  /// Errors: kIntegrity "registry.digest_mismatch" (the registry confirmed
  /// another digest); the store's errors; the common ones.
  Expected<BlobPush> PushBlob(const std::string& repo, const oci::Descriptor& blob,
                              cas::BlobStore& store,
                              const std::vector<std::string>& mount_from = {});

  /// PUT /v2/<repo>/manifests/<reference> (a tag or the document's digest).
  /// Returns the digest, checked against Docker-Content-Digest when the
  /// registry sends one (kIntegrity "registry.digest_mismatch" otherwise).
  Expected<oci::Digest> PutManifest(const std::string& repo, const std::string& reference,
                                    const std::string& media_type, const std::string& bytes);

  struct Impl;

 private:
  explicit RegistryClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// `text` with the query of every http(s) URL in it replaced by "?REDACTED"
/// (signed storage URLs carry credentials there; containerd's sanitizedURL).
std::string RedactUrls(std::string_view text);

}  // namespace manifold::registry
