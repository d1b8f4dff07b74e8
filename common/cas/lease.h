// Leases keep blobs alive while a build uses them (RELIABILITY.md F4): garbage
// collection treats every digest of an unexpired lease as a root. Leases live
// as one small file each under <root>/leases/<id>, rewritten atomically
// (temp + fsync + rename) under an flock()ed <root>/leases/.lock, so several
// processes and threads may share one root.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/cas/posix_io.h"

namespace manifold::cas {

struct Lease {
  std::string id;
  std::chrono::system_clock::time_point expiry;
  std::vector<std::string> digests;  ///< sorted, without duplicates
};

/// Lease ids match [A-Za-z0-9_-]{1,64}; anything else is kInvalidInput
/// ("cas.lease_id_invalid") before it comes near a path.
class LeaseStore {
 public:
  /// Wall-clock time: leases outlive processes, so expiry cannot be monotonic.
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  /// Creates <root>/leases (and <root>) if missing and removes temp files of writers that
  /// crashed mid-write. Errors: kInternal/kResourceExhausted ("cas.io").
  static Expected<LeaseStore> Open(const std::string& root,
                                   Clock now = &std::chrono::system_clock::now);

  /// Errors: kInvalidInput ("cas.lease_exists" if an unexpired lease has this
  /// id, "cas.lease_expiry_past").
  Expected<void> Create(std::string_view id, std::chrono::system_clock::time_point expiry);
  /// Adds digests (validated: "cas.digest_invalid"). Add digests before the
  /// blobs are needed; for blobs ingested without a known digest, before the
  /// BlobWriter is destroyed. Errors: kInvalidInput ("cas.lease_not_found"),
  /// kTransient ("cas.lease_expired": the lease lapsed and was removed; its
  /// blobs may be gone, start over with a new lease).
  Expected<void> Add(std::string_view id, const std::vector<std::string>& digests);
  /// Moves the expiry (for builds that outlive their first estimate). Errors
  /// as for Add, plus "cas.lease_expiry_past".
  Expected<void> Renew(std::string_view id, std::chrono::system_clock::time_point expiry);
  /// Removes the lease. Releasing a missing lease succeeds.
  Expected<void> Release(std::string_view id);
  /// Unexpired leases, sorted by id; expired ones are removed on the way.
  /// Errors: kIntegrity ("cas.lease_corrupt") for an unreadable lease file:
  /// GC must then stop rather than guess which blobs are in use.
  Expected<std::vector<Lease>> Active() const;

 private:
  LeaseStore(internal::UniqueFd dir, Clock now) : dir_(std::move(dir)), now_(std::move(now)) {}

  Expected<internal::UniqueFd> Lock() const;
  /// The lease, or std::nullopt if there is no file.
  Expected<std::optional<Lease>> Read(const std::string& id) const;
  Expected<void> Write(const Lease& lease) const;
  /// Reads an existing unexpired lease (removing it if expired).
  Expected<Lease> ReadLive(const std::string& id) const;

  internal::UniqueFd dir_;
  Clock now_;
};

}  // namespace manifold::cas
