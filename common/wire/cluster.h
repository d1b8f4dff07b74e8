// The farm's messages (schemas/cluster.capnp) to and from plain C++ types:
// joining, heartbeats, the worker list, blob transfer and builds submitted by
// a client. Same rules as stage_job.h: validated at decode, bounded on both
// sides, errors naming the field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base/error.h"
#include "common/base/expected.h"
#include "common/oci/platform.h"
#include "common/wire/codec.h"
#include "common/wire/stage_job.h"

namespace manifold::wire {

using PlatformList = std::vector<std::pair<oci::Platform, bool>>;  ///< (platform, emulated)

struct JoinData {
  std::string worker_id;  ///< wanted id; "" = the coordinator picks
  std::string public_key;  ///< Z85
  std::string hostname;
  PlatformList platforms;
  std::uint32_t slots = 1;
  std::string peer_endpoint;  ///< tcp://HOST:PORT
  std::uint32_t cpus = 0;
  std::uint64_t memory_bytes = 0;
  std::string software_version;
};
Expected<std::string> EncodeJoin(const JoinData& j);
Expected<JoinData> DecodeJoin(std::string_view bytes, const DecodeLimits& limits = {});

struct JoinReplyData {
  std::string worker_id;
  std::uint32_t heartbeat_interval_ms = 0;
  std::optional<Error> error;
};
Expected<std::string> EncodeJoinReply(const JoinReplyData& r);
Expected<JoinReplyData> DecodeJoinReply(std::string_view bytes, const DecodeLimits& limits = {});

/// One run of one job (schema JobLease).
struct LeaseData {
  std::string job_id;
  std::uint64_t lease_epoch = 0;
  bool operator==(const LeaseData&) const = default;
  bool operator<(const LeaseData& o) const {
    return std::tie(job_id, lease_epoch) < std::tie(o.job_id, o.lease_epoch);
  }
};

struct HeartbeatData {
  std::string worker_id;
  PlatformList platforms;
  std::uint32_t slots = 0;
  std::vector<std::string> running_jobs;
  std::uint64_t disk_free_bytes = 0;
  std::uint32_t load_milli = 0;
  bool draining = false;
  std::string peer_endpoint;
  std::uint32_t cpus = 0;
  std::uint64_t memory_bytes = 0;
  std::string hostname;
  std::string degraded;  ///< why it would rather stay idle; "" = healthy
  std::uint64_t members_version = 0;  ///< of the last full member list held
  std::vector<LeaseData> running_leases;
};
Expected<std::string> EncodeHeartbeat(const HeartbeatData& h);
Expected<HeartbeatData> DecodeHeartbeat(std::string_view bytes, const DecodeLimits& limits = {});

struct MemberData {
  std::string worker_id;
  std::string public_key;
  std::string endpoint;
};
struct HeartbeatReplyData {
  /// The whole list when `members_full`, else members that just joined.
  std::vector<MemberData> members;
  bool drain = false;
  std::optional<Error> error;
  bool members_full = false;
  std::uint64_t members_version = 0;
  std::vector<LeaseData> cancel;  ///< runs to stop now
  std::string cancel_reason;
};
Expected<std::string> EncodeHeartbeatReply(const HeartbeatReplyData& r);
Expected<HeartbeatReplyData> DecodeHeartbeatReply(std::string_view bytes,
                                                  const DecodeLimits& limits = {});

/// Largest chunk a blob server sends in one frame.
inline constexpr std::uint32_t kMaxChunkBytes = 4u << 20;

struct BlobRequestData {
  std::string digest;  ///< "sha256:<hex>"
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  ///< 1..kMaxChunkBytes
};
Expected<std::string> EncodeBlobRequest(const BlobRequestData& r);
Expected<BlobRequestData> DecodeBlobRequest(std::string_view bytes,
                                            const DecodeLimits& limits = {});

struct BlobChunkData {
  std::string digest;
  std::uint64_t offset = 0;
  std::uint64_t total_size = 0;
  std::optional<Error> error;  ///< set: no payload frame follows
};
Expected<std::string> EncodeBlobChunk(const BlobChunkData& c);
Expected<BlobChunkData> DecodeBlobChunk(std::string_view bytes, const DecodeLimits& limits = {});

struct SubmitBuildData {
  std::string dockerfile;
  std::string dockerfile_name = "Dockerfile";
  std::optional<std::string> dockerignore;
  std::vector<ContextFileData> context;
  std::vector<oci::Platform> platforms;
  std::string target;
  std::map<std::string, std::string> build_args;
  std::vector<std::string> tags;
  bool no_cache = false;
  std::vector<std::string> no_cache_filter;
  std::map<std::string, std::string> secrets;
  std::vector<std::string> allow;
  std::optional<std::int64_t> source_date_epoch;
  std::string compression = "gzip";
  bool pull = false;
  bool push = false;
  /// Images the client holds that the build names: reference -> root.
  struct LocalImage {
    std::string reference;
    std::string media_type;
    std::string digest;
    std::uint64_t size = 0;
    bool operator==(const LocalImage&) const = default;
  };
  std::vector<LocalImage> images;
  std::string progress = "plain";  ///< plain or json
  /// The client does not fetch the image (a --push build without -o): the
  /// layers need not come to the coordinator; workers push them.
  bool no_result = false;
};
Expected<std::string> EncodeSubmitBuild(const SubmitBuildData& s);
Expected<SubmitBuildData> DecodeSubmitBuild(std::string_view bytes,
                                            const DecodeLimits& limits = {});

struct BuildEventData {
  enum class Kind { kLine, kDone, kFailed, kTrace };
  Kind kind = Kind::kLine;
  std::string text;
  std::optional<Error> error;  ///< kFailed
  std::string index_digest;    ///< kDone
  std::vector<std::pair<std::string, std::string>> manifests;  ///< (platform, digest)
  std::vector<std::pair<std::string, std::string>> pushed;     ///< (reference, digest)
  std::uint32_t steps_executed = 0, steps_cached = 0, jobs_run = 0, jobs_cached = 0;
};
Expected<std::string> EncodeBuildEvent(const BuildEventData& e);
Expected<BuildEventData> DecodeBuildEvent(std::string_view bytes, const DecodeLimits& limits = {});

struct PushBlobsData {
  std::string reference;  ///< registry/repository[:tag]: where the layers go
  std::vector<LayerData> layers;
};
Expected<std::string> EncodePushBlobs(const PushBlobsData& p);
Expected<PushBlobsData> DecodePushBlobs(std::string_view bytes, const DecodeLimits& limits = {});

struct PushBlobsReplyData {
  std::optional<Error> error;
  std::uint32_t uploaded = 0, mounted = 0, existing = 0;
};
Expected<std::string> EncodePushBlobsReply(const PushBlobsReplyData& r);
Expected<PushBlobsReplyData> DecodePushBlobsReply(std::string_view bytes, const DecodeLimits& limits = {});

struct CancelBuildData {
  std::string reason;
};
Expected<std::string> EncodeCancelBuild(const CancelBuildData& c);
Expected<CancelBuildData> DecodeCancelBuild(std::string_view bytes, const DecodeLimits& limits = {});

struct BuildsRequestData {
  std::string action = "list";  ///< list, cancel
  std::uint32_t number = 0;     ///< cancel: the build
};
Expected<std::string> EncodeBuildsRequest(const BuildsRequestData& r);
Expected<BuildsRequestData> DecodeBuildsRequest(std::string_view bytes, const DecodeLimits& limits = {});

struct BuildInfoData {
  std::uint32_t number = 0;
  std::string state;      ///< running, queued
  std::string platforms;  ///< comma-separated
  std::string tags;       ///< comma-separated
  std::uint32_t seconds = 0;
  std::uint32_t running_jobs = 0;
  bool operator==(const BuildInfoData&) const = default;
};
struct BuildsReplyData {
  std::vector<BuildInfoData> builds;
  std::optional<Error> error;
};
Expected<std::string> EncodeBuildsReply(const BuildsReplyData& r);
Expected<BuildsReplyData> DecodeBuildsReply(std::string_view bytes, const DecodeLimits& limits = {});

struct WorkersRequestData {
  std::string action = "list";  ///< list, rm, drain
  std::string worker_id;
};
Expected<std::string> EncodeWorkersRequest(const WorkersRequestData& r);
Expected<WorkersRequestData> DecodeWorkersRequest(std::string_view bytes,
                                                  const DecodeLimits& limits = {});

struct WorkerInfoData {
  std::string worker_id;
  std::string address;
  PlatformList platforms;
  std::string state;  ///< ready, busy, degraded, quarantined, draining, lost, revoked
  std::uint32_t running_jobs = 0;
  std::uint32_t slots = 0;
  std::uint32_t cpus = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t disk_free_bytes = 0;
  std::string hostname;
  std::string note;  ///< why degraded or quarantined
};
struct WorkersReplyData {
  std::vector<WorkerInfoData> workers;
  std::optional<Error> error;
};
Expected<std::string> EncodeWorkersReply(const WorkersReplyData& r);
Expected<WorkersReplyData> DecodeWorkersReply(std::string_view bytes,
                                              const DecodeLimits& limits = {});

/// Body types of the cluster messages, to dispatch on.
enum class ClusterType {
  kJoin, kJoinReply, kHeartbeat, kHeartbeatReply, kBlobRequest, kBlobChunk,
  kSubmitBuild, kBuildEvent, kCancelBuild, kWorkersRequest, kWorkersReply, kPushBlobs,
  kPushBlobsReply, kBuildsRequest, kBuildsReply, kOther
};
/// kOther for any body that is not a cluster message (StageJob, Progress...).
Expected<ClusterType> PeekClusterType(std::string_view bytes, const DecodeLimits& limits = {});

}  // namespace manifold::wire
