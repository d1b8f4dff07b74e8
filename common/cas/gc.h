// Mark-and-sweep garbage collection of a LocalBlobStore (RELIABILITY.md F4).
// Marks from the caller's roots plus every digest of an active lease, through
// a caller-supplied `children` function (the caller parses manifests and
// indexes; the CAS does not know formats), then deletes unmarked blobs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/base/expected.h"

namespace manifold::cas {

class LocalBlobStore;
class LeaseStore;

struct GcOptions {
  /// false: if any BlobWriter is alive, return kTransient ("cas.gc_busy") at
  /// once. true: block until all writers are gone (never call it from a
  /// thread that itself holds a BlobWriter of this store: it would deadlock).
  bool wait_for_ingests = false;
  /// Blobs modified less than this long ago survive even when unmarked: a
  /// safety margin for a caller between Commit() and adding the digest to a
  /// lease. Zero collects everything unmarked.
  std::chrono::seconds min_age{std::chrono::minutes(10)};
};

struct GcStats {
  std::uint64_t marked = 0;          ///< reachable digests present in the store
  std::uint64_t removed_blobs = 0;
  std::uint64_t removed_bytes = 0;
  std::uint64_t kept_young = 0;      ///< unmarked but younger than min_age (or gone meanwhile)
};

/// Children of a blob present in the store: the digests it references
/// (an index's manifests, a manifest's config and layers); empty for leaves.
using ChildrenFn = std::function<Expected<std::vector<std::string>>(const std::string& digest)>;

/// Holds <root>/gc.lock exclusively for the whole run, while every
/// BlobWriter holds it shared, so no blob is deleted while it is being
/// ingested or committed. Roots and children missing from the store are
/// skipped. Any error (a `children` failure, a malformed digest from it:
/// "cas.digest_invalid", a corrupt lease) stops the run before anything is
/// deleted. Errors: kTransient ("cas.gc_busy"), those of `children`, of
/// LeaseStore::Active() and "cas.io".
Expected<GcStats> Prune(LocalBlobStore& store, const std::vector<std::string>& root_digests,
                        const ChildrenFn& children, const LeaseStore& leases,
                        const GcOptions& options = {});

/// The roots of a collection, read once the GC lock is held.
using RootsFn = std::function<Expected<std::vector<std::string>>()>;

/// Same, with roots read under the lock (a name added just before the lock is
/// taken is seen).
Expected<GcStats> Prune(LocalBlobStore& store, const RootsFn& roots, const ChildrenFn& children,
                        const LeaseStore& leases, const GcOptions& options = {});

}  // namespace manifold::cas
