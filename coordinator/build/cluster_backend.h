// What a build needs from the farm when it runs inside manifold-coordinator
// instead of the embedded mode (issue 6): remote job slots reached through
// the coordinator's reactor, the shared cache index, and where blobs live.
// The planning, keys, scheduling and assembly code is the same Build.
#pragma once
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/cache/step_cache.h"
#include "common/wire/cluster.h"
#include "common/wire/stage_job.h"

namespace manifold::coordinator {

class ClusterBackend {
 public:
  virtual ~ClusterBackend() = default;

  /// A message from a job slot, or news about one.
  struct Incoming {
    enum class Kind {
      kMessage,  ///< `bytes` from the slot
      kLost,     ///< its worker was lost, drained or revoked: its job runs elsewhere
      kTaken,    ///< another build's job runs there: its job (if any) waits for another slot
      kCancelled,  ///< the build is cancelled (its client, or the operator); `bytes` says why
    };
    std::string slot;
    std::string bytes;
    Kind kind = Kind::kMessage;
  };
  virtual void Send(const std::string& slot, const std::string& bytes) = 0;
  /// Sends a StageJob: the slot runs this lease until its StageResult. The
  /// slot may turn out to be another build's by then (kTaken comes back).
  virtual void Dispatch(const std::string& slot, const wire::LeaseData& lease, const std::string& bytes) = 0;
  /// A lease epoch no other lease of any build had (late results of one
  /// lease can never pass for another's).
  virtual std::uint64_t NextEpoch() = 0;
  /// Claims `key` (a job's final cache key) for this build while no other
  /// build runs a job ending in it; false while one does (RELIABILITY H6:
  /// the same step submitted by two builds at once runs once).
  virtual bool ClaimKey(const std::string& key) = 0;
  virtual void ReleaseKey(const std::string& key) = 0;
  /// nullopt when nothing arrived within `timeout`.
  virtual std::optional<Incoming> Receive(std::chrono::milliseconds timeout) = 0;

  /// The worker a slot belongs to ("<worker>-s<N>" -> "<worker>").
  virtual std::string WorkerOf(const std::string& slot) const = 0;
  /// Running jobs on `worker` (any build), for "least loaded".
  virtual int Load(const std::string& worker) const = 0;

  /// The shared index's record for `key` whose blobs all have a live holder.
  virtual Expected<std::optional<cache::StepRecord>> Lookup(const std::string& key) = 0;
  /// Records each (key, record), held by `worker`, all or nothing.
  virtual Expected<void> Record(const std::vector<std::pair<std::string, cache::StepRecord>>& records,
                                const std::string& worker) = 0;
  /// Where `digest` can be fetched: live workers, then the coordinator
  /// itself (empty holder) when its store has it. With a `limit`, at most
  /// that many workers, picked from a place `salt` sets (a base layer has a
  /// holder per worker; spread the fetches, never list them all).
  virtual std::vector<wire::BlobHolder> Holders(const std::string& digest, std::size_t limit = 0,
                                                std::size_t salt = 0) = 0;
  /// The workers that hold `digest` (live or not).
  virtual std::vector<std::string> HolderIds(const std::string& digest) = 0;
  /// Which of `candidates` hold `digest`.
  virtual std::vector<std::string> HeldBy(const std::string& digest, const std::vector<std::string>& candidates) = 0;
  /// Fetches blobs the coordinator's store lacks from their holders.
  virtual Expected<void> FetchToStore(const std::vector<std::string>& digests) = 0;

  /// What one worker answered to a push request.
  struct WorkerPush {
    std::string worker;
    std::vector<wire::LayerData> layers;
    std::optional<Error> error;  ///< it failed, or left, or did not answer in time
    std::uint32_t uploaded = 0, mounted = 0, existing = 0;
  };
  /// Asks each worker of `layers` (worker -> the layers it holds) to push
  /// them to `reference`'s repository itself, all at once, and waits for
  /// every answer.
  virtual std::vector<WorkerPush> PushFromWorkers(const std::string& reference,
                                                  const std::map<std::string, std::vector<wire::LayerData>>& layers) = 0;
  /// Whether `worker` is in the farm now (connected, not revoked).
  virtual bool IsLive(const std::string& worker) const = 0;

  /// How long a job may wait for a worker of its platform (RELIABILITY H4).
  virtual std::chrono::milliseconds worker_wait() const = 0;

  /// Workers that say they would rather stay idle (low disk, their last job
  /// ran out of space): jobs go to healthy workers first (RELIABILITY H8).
  virtual std::set<std::string> DegradedWorkers() const = 0;
  /// Takes `worker` out of rotation for every build, for the returned time
  /// (RELIABILITY H5: a build quarantines a worker that keeps failing).
  virtual std::chrono::milliseconds Quarantine(const std::string& worker, const std::string& why) = 0;
};

}  // namespace manifold::coordinator
