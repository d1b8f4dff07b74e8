// StageJob and StageResult messages (schemas/scheduler.capnp) to and from
// plain C++ types. The capnp readers stay in here: callers see StageJobData and
// StageResultData, validated at decode (STYLE.md principle 3, RELIABILITY A7,
// A10): ids match [A-Za-z0-9_-]{1,64} (kSecurity "wire.id"), platforms parse
// with oci::ParsePlatform, digests with oci::ParseDigest, lists and texts are
// bounded, and the codec enforces size, traversal, nesting and protocol version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/error.h"
#include "common/base/expected.h"
#include "common/dockerfile/instruction.h"
#include "common/oci/platform.h"
#include "common/wire/codec.h"

namespace manifold::wire {

/// Bounds applied on both encode and decode.
inline constexpr std::size_t kMaxJobInstructions = 10'000;
inline constexpr std::size_t kMaxListEntries = 10'000;  ///< any other list
inline constexpr std::size_t kMaxTextBytes = 1u << 20;  ///< any one text or data field
inline constexpr std::size_t kMaxContextFiles = 100'000;  ///< files of one build context

/// Build-level settings carried by every job (schemas/scheduler.capnp
/// JobOptions). Never secrets.
struct JobOptions {
  bool no_cache = false;
  std::optional<std::int64_t> source_date_epoch;
  bool allow_insecure = false;
  std::vector<std::string> volumes;  ///< "HOST:CTR[:ro]"
  std::string compression = "gzip";  ///< gzip, zstd, none
  std::vector<std::string> secret_ids;
  bool operator==(const JobOptions&) const = default;
};

/// A blob server that holds a blob: a worker's peer endpoint and key, or the
/// coordinator itself (both empty).
struct BlobHolder {
  std::string endpoint;    ///< tcp://HOST:PORT
  std::string public_key;  ///< Z85, 40 characters
  bool operator==(const BlobHolder&) const = default;
};

/// A blob a cluster job may need and where to fetch it.
struct BlobSourceData {
  std::string media_type;
  std::string digest;   ///< "sha256:<hex>"
  std::uint64_t size = 0;
  std::string diff_id;  ///< layers only: the uncompressed tar's digest
  std::vector<BlobHolder> holders;
  bool operator==(const BlobSourceData&) const = default;
};

/// One layer: compressed blob descriptor plus the uncompressed tar's digest.
struct LayerData {
  std::string media_type;
  std::string digest;   ///< "sha256:<hex>"
  std::string diff_id;  ///< "sha256:<hex>"
  std::uint64_t size = 0;
  bool operator==(const LayerData&) const = default;
};

/// One file of the build context (a regular file's bytes travel as the blob
/// `digest`).
struct ContextFileData {
  std::string path;  ///< relative, '/'-separated, no "..", no leading '/'
  std::uint32_t mode = 0;  ///< st_mode with the type bits
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t size = 0;
  std::string digest;       ///< regular files
  std::string link_target;  ///< symlinks
  std::int64_t mtime_ns = 0;
  bool operator==(const ContextFileData&) const = default;
};

/// What a cluster worker needs besides the job itself (schema JobSupplement).
struct JobSupplement {
  std::vector<BlobSourceData> sources;
  /// Shared-index records for planned keys: key, config digest, layer chain.
  struct CachedStep {
    std::string key;
    std::string config_digest;
    std::vector<LayerData> layers;  ///< full chain; blobs listed in `sources`
    bool operator==(const CachedStep&) const = default;
  };
  std::vector<CachedStep> cached_steps;
  std::vector<ContextFileData> context;
  std::optional<std::string> dockerignore;
  std::map<std::string, std::string> secrets;  ///< only the ids the job mounts
  /// The job reads the context: `context` lists only what its steps may read
  /// (maybe nothing), and the worker makes the context dir anyway.
  bool reads_context = false;
  bool operator==(const JobSupplement&) const = default;
};

/// One stage for one platform, as the worker needs it (plan::Job's fields plus
/// the build id, the lease epoch and the planned step keys). Built from a
/// plan::Job by plan::MakeStageJobData (coordinator/plan/job_message.h).
struct StageJobData {
  std::string build_id;  ///< [A-Za-z0-9_-]{1,64}
  std::string job_id;    ///< [A-Za-z0-9_-]{1,64}
  int stage_index = 0;
  std::string stage;               ///< display name
  oci::Platform platform;          ///< where the steps run
  oci::Platform target_platform;   ///< what the stage is built for
  std::string base;                ///< image reference or "scratch"; empty when base_job is set
  std::string base_job;            ///< job id when FROM names a stage
  std::string base_manifest_digest;  ///< optional "sha256:...", resolved for `platform`
  std::vector<std::string> depends_on;  ///< job ids, base first
  std::vector<dockerfile::Instruction> instructions;  ///< expanded, every field carried
  std::map<std::string, std::string> args;            ///< ARG values in scope
  std::vector<std::pair<std::string, std::string>> env;  ///< ENV in order
  std::uint64_t lease_epoch = 0;
  /// Planned step keys: empty, or one per instruction ("" = not planned), each
  /// "sha256:<hex>". Decodes as empty when no instruction carries a key.
  std::vector<std::string> cache_keys;
  /// Resolved inputs: reference as written (or the base job id) ->
  /// "stage:<config digest>" / "image:<manifest digest>".
  std::vector<std::pair<std::string, std::string>> inputs;
  JobOptions options;
  /// Empty, or one "sha256:<hex>" per instruction (cache::StepDigest).
  std::vector<std::string> step_digests;
  /// Cluster jobs only.
  std::optional<JobSupplement> supplement;
};


struct StepResultData {
  std::uint32_t index = 0;
  std::string cache_key;  ///< "" or "sha256:<hex>"
  bool cached = false;
  std::optional<LayerData> layer;  ///< unset for metadata-only steps
  std::uint64_t duration_ms = 0;
  /// Set when the step's state was recorded under `cache_key`: the config
  /// after it and how many of StageResult.layers its image has.
  std::string config_digest;
  std::uint32_t chain_length = 0;
};

struct StageResultData {
  std::string job_id;
  std::uint64_t lease_epoch = 0;
  std::vector<LayerData> layers;  ///< full chain, base layers first
  std::vector<StepResultData> steps;
  std::string config_digest;  ///< "sha256:<hex>"; may be empty only when `error` is set
  std::optional<Error> error;  ///< set when the job failed
};

/// Envelope(StageJob) bytes. Refuses (kInvalidInput, kSecurity for ids) what
/// DecodeStageJob would refuse, so a peer never gets a message it must drop.
Expected<std::string> EncodeStageJob(const StageJobData& job);

/// Errors: the codec's ("wire.too_large", "wire.malformed", "wire.version",
/// "wire.limit", "wire.unexpected_type"), kSecurity "wire.id" for a bad id,
/// kInvalidInput "wire.platform" / "wire.digest" / "wire.limit" / "wire.field"
/// with the offending field named in the message ("StageJob.platform: ...").
Expected<StageJobData> DecodeStageJob(std::string_view bytes, const DecodeLimits& limits = {});

/// Same rules. An Error's kind round-trips; an unknown kind from a newer peer
/// decodes as kInternal rather than losing the failure.
Expected<std::string> EncodeStageResult(const StageResultData& result);
Expected<StageResultData> DecodeStageResult(std::string_view bytes,
                                            const DecodeLimits& limits = {});

/// Progress of a running job (worker -> coordinator).
struct ProgressData {
  enum class Kind { kStart, kOutput, kCached, kDone, kInfo };
  std::string job_id;
  std::uint64_t lease_epoch = 0;
  int step = -1;  ///< instruction index, -1 = the job
  Kind kind = Kind::kInfo;
  std::string text;
  std::uint64_t duration_ms = 0;
};
Expected<std::string> EncodeProgress(const ProgressData& p);
Expected<ProgressData> DecodeProgress(std::string_view bytes, const DecodeLimits& limits = {});

/// A worker (or one of its job slots) announcing itself (schema Register).
struct WorkerHelloData {
  std::string worker_id;  ///< [A-Za-z0-9_-]{1,64}
  std::string hostname;
  std::vector<std::pair<oci::Platform, bool>> platforms;  ///< (platform, emulated), native first
  std::uint32_t slots = 1;
  std::string software_version;
};
Expected<std::string> EncodeWorkerHello(const WorkerHelloData& h);
Expected<WorkerHelloData> DecodeWorkerHello(std::string_view bytes,
                                            const DecodeLimits& limits = {});

/// Coordinator -> worker: stop.
Expected<std::string> EncodeShutdown(const std::string& reason);

/// The body type of an envelope, to dispatch on: one of the k*Type constants.
enum class MessageType { kStageJob, kStageResult, kProgress, kWorkerHello, kShutdown, kOther };
Expected<MessageType> PeekMessageType(std::string_view bytes, const DecodeLimits& limits = {});

/// [A-Za-z0-9_-]{1,64}.
bool IsValidWireId(std::string_view id);

/// A CURVE key in Z85: 40 characters of the Z85 alphabet.
bool IsZ85Key(std::string_view key);

}  // namespace manifold::wire
