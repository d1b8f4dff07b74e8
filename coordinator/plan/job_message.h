// plan::Job -> wire::StageJobData, the message the scheduler leases to a
// worker. Lives in coordinator/ because common/wire must not know plan::Job
// (STYLE.md section 2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/wire/stage_job.h"
#include "coordinator/plan/plan.h"

namespace manifold::plan {

/// Copies every field the worker needs from `job`. `cache_keys` is empty or one
/// "sha256:<hex>" per instruction ("" = not planned). Validation happens in
/// wire::EncodeStageJob.
wire::StageJobData MakeStageJobData(const std::string& build_id, const Job& job,
                                    std::uint64_t lease_epoch,
                                    std::vector<std::string> cache_keys = {});

}  // namespace manifold::plan
