// What the coordinator knows of one (stage, platform) job during a build.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/wire/stage_job.h"
#include "coordinator/plan/plan.h"

namespace manifold::coordinator {

/// What one job of the plan needs and produced.
struct JobState {
  plan::Job job;
  std::vector<std::string> keys;  ///< per instruction
  std::vector<std::string> step_digests;  ///< per instruction: keys without the parent
  std::string final_key;
  std::string base_manifest;                 ///< image bases
  std::map<std::string, std::string> image_inputs;  ///< ref -> "image:<digest>"
  std::map<std::string, std::string> stage_inputs;  ///< ref -> job id
  bool no_cache = false;
  bool needed = false;
  bool rooted_at_scratch = false;
  enum class Status { kPending, kRunning, kDone } status = Status::kPending;
  bool cached_whole = false;
  std::string config_digest;
  std::vector<wire::LayerData> layers;
  std::vector<bool> step_cached;
  std::string slot;  ///< running on
  std::vector<std::size_t> deps;  ///< job.depends_on as indices into the build's jobs
  bool has_run = false;           ///< some instruction is a RUN (needs its platform)
  /// Context entries its steps may read (COPY/ADD sources, bind mounts, as
  /// SelectSources picks them): all a worker fetches of the context.
  std::set<std::string> context_paths;
};

}  // namespace manifold::coordinator
