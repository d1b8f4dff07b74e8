#include "common/cas/gc.h"

#include <deque>
#include <unordered_set>

#include "common/cas/digest.h"
#include "common/cas/lease.h"
#include "common/cas/local_blob_store.h"

namespace manifold::cas {

Expected<GcStats> Prune(LocalBlobStore& store, const std::vector<std::string>& root_digests,
                        const ChildrenFn& children, const LeaseStore& leases,
                        const GcOptions& options) {
  RootsFn roots = [&]() -> Expected<std::vector<std::string>> { return root_digests; };
  return Prune(store, roots, children, leases, options);
}

Expected<GcStats> Prune(LocalBlobStore& store, const RootsFn& roots_fn, const ChildrenFn& children,
                        const LeaseStore& leases, const GcOptions& options) {
  MF_TRY(lock, store.LockForGc(options.wait_for_ingests));
  if (!lock) {
    return MakeError(ErrorKind::kTransient, "cas.gc_busy",
                     "blob ingests in progress in " + store.root() + "; garbage collection skipped");
  }
  // Roots are read under the lock too: an image named after the caller looked
  // would otherwise lose its blobs.
  MF_TRY(root_digests, roots_fn());
  for (const auto& d : root_digests) MF_TRY_VOID(DigestHex(d).With("gc root"));
  // Leases are read under the lock: a writer that added its digest to a
  // lease before releasing its shared lock is seen here.
  MF_TRY(active, leases.Active());
  auto cutoff = std::chrono::system_clock::now() - options.min_age;

  GcStats stats;
  std::unordered_set<std::string> marked;
  std::deque<std::string> queue(root_digests.begin(), root_digests.end());
  for (const auto& lease : active) queue.insert(queue.end(), lease.digests.begin(), lease.digests.end());
  while (!queue.empty()) {
    std::string digest = std::move(queue.front());
    queue.pop_front();
    if (marked.count(digest)) continue;
    MF_TRY(present, store.Has(digest));
    if (!present) continue;
    marked.insert(digest);
    MF_TRY(kids, children(digest).With("listing children of " + digest));
    for (auto& kid : kids) {
      MF_TRY_VOID(DigestHex(kid).With("child of " + digest));
      if (!marked.count(kid)) queue.push_back(std::move(kid));
    }
  }
  stats.marked = marked.size();

  MF_TRY(all, store.List());
  for (const auto& digest : all) {
    if (marked.count(digest)) continue;
    MF_TRY(removed, store.DeleteIfOlder(digest, cutoff));
    if (removed) {
      ++stats.removed_blobs;
      stats.removed_bytes += *removed;
    } else {
      ++stats.kept_young;
    }
  }
  return stats;
}

}  // namespace manifold::cas
