// Cache keys of build steps (DESIGN.md "Data model", RELIABILITY A9).
//
// A step's key is the SHA-256 of a canonical, versioned, length-prefixed
// encoding of everything that can change the step's result: the parent (the
// previous step's key, or the base for a stage's first step), the target and
// execution platforms, every result-affecting field of the expanded
// Instruction, the build args the step uses (proxy args excluded), the
// content digests of COPY/ADD sources, the keys/digests of `--from` inputs and
// SOURCE_DATE_EPOCH when set. Never wall-clock time, host paths or secret
// contents: there is no input for them. Equal inputs give equal keys on every
// node; map/set/vector ordering of args, sources and from-inputs is canonicalised.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/dockerfile/instruction.h"
#include "common/oci/digest.h"
#include "common/oci/platform.h"

namespace manifold::cache {

/// Tag at the start of every encoding. Bump when the encoding changes, so old
/// keys can never match new ones.
inline constexpr char kFormatVersion[] = "manifold.cachekey.v2";

/// What a step builds on.
struct Parent {
  enum class Kind {
    kStep,     ///< `value`: the previous step's key in this stage
    kImage,    ///< `value`: resolved base image manifest digest for the platform
    kScratch,  ///< `value` unused (must be empty)
    kStage,    ///< `value`: the upstream stage's final key (FROM <stage>)
  };
  Kind kind = Kind::kScratch;
  std::string value;
};

/// One COPY/ADD input file after `.dockerignore` filtering. `path` is relative
/// to the context (or the source stage's root), never a host path.
struct SourceDigest {
  std::string path;
  oci::Digest digest;       ///< content digest; empty for directories and symlinks
  uint32_t mode = 0;        ///< st_mode including the file type bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string link_target;  ///< symlinks only
};

/// A `COPY --from` / `RUN --mount=from=` input: the name as written and what it
/// resolved to (an upstream stage's final key or an image manifest digest).
struct FromInput {
  std::string ref;
  std::string key;
};

struct StepInputs {
  Parent parent;
  oci::Platform target_platform;
  oci::Platform exec_platform;          ///< where the step runs
  dockerfile::Instruction instruction;  ///< after variable expansion
  /// Build args the step uses (name -> value). Proxy args are ignored.
  std::map<std::string, std::string> build_args;
  std::vector<SourceDigest> sources;    ///< any order; sorted when encoded
  std::vector<FromInput> from_inputs;   ///< any order; sorted when encoded
  std::optional<int64_t> source_date_epoch;
};

/// HTTP_PROXY, http_proxy, HTTPS_PROXY, https_proxy, FTP_PROXY, ftp_proxy,
/// NO_PROXY, no_proxy, ALL_PROXY, all_proxy: never part of a key.
bool IsProxyBuildArg(const std::string& name);

/// Everything about the step except its parent, as hashed into StepDigest:
/// lines `name=<len>:<bytes>` (lists are preceded by `name#=<count>`),
/// starting with kFormatVersion.
std::string EncodeStep(const StepInputs& in);

/// EncodeStep(in), then the parent lines: readable enough for `--debug`.
std::string EncodeForDebug(const StepInputs& in);

/// "sha256:<hex>" of EncodeStep(in): the step without its parent.
std::string StepDigest(const StepInputs& in);

/// A step's key: its parent and its StepDigest, hashed (versioned). Workers
/// re-chain keys with it after refining a parent (RefinedKey).
std::string ChainKey(const Parent& parent, const std::string& step_digest);

/// ChainKey(in.parent, StepDigest(in)).
std::string ComputeKey(const StepInputs& in);

/// The key of a step known by what it produced rather than by its planned
/// inputs: a `COPY --from` whose planned key depends on the whole upstream
/// stage gets, once executed, a key from its parent's effective key, its step
/// digest and `content` (the layer's diff_id). Steps after it chain from this
/// key, so an upstream change that leaves the copied files alone still hits
/// them (BuildKit's content-checksum keys).
std::string RefinedKey(const std::string& parent_key, const std::string& step_digest,
                       const std::string& content);

}  // namespace manifold::cache
