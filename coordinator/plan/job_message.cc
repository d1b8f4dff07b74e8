#include "coordinator/plan/job_message.h"

#include <utility>

namespace manifold::plan {

wire::StageJobData MakeStageJobData(const std::string& build_id, const Job& job,
                                    std::uint64_t lease_epoch,
                                    std::vector<std::string> cache_keys) {
  wire::StageJobData out;
  out.build_id = build_id;
  out.job_id = job.id;
  out.stage_index = job.stage_index;
  out.stage = job.stage;
  out.platform = job.platform;
  out.target_platform = job.target_platform;
  out.base = job.base;
  out.base_job = job.base_job;
  out.depends_on = job.depends_on;
  out.instructions = job.instructions;
  out.args = job.args;
  out.env = job.env;
  out.lease_epoch = lease_epoch;
  out.cache_keys = std::move(cache_keys);
  return out;
}

}  // namespace manifold::plan
