// Planning: a typed Dockerfile and build options to a graph of (stage,
// platform) jobs, each with its base and its instructions expanded for that
// platform. Needs no image, registry, emulator or context.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/instruction.h"
#include "common/oci/platform.h"

namespace manifold::plan {

struct PlanOptions {
  std::vector<oci::Platform> platforms;  ///< target platforms; empty = the build platform
  oci::Platform build_platform;          ///< where the build runs (BUILDPLATFORM)
  std::string target;                    ///< stage name; empty = last stage
  std::map<std::string, std::string> build_args;
};

struct Job {
  std::string id;               ///< "<stage>-<os>-<arch>[-<variant>]", [A-Za-z0-9_-]{1,64}
  int stage_index = 0;
  std::string stage;            ///< display name
  oci::Platform platform;       ///< where the job's steps run (FROM --platform, else target)
  oci::Platform target_platform;
  std::string base;             ///< image reference, "scratch", or empty when base_job is set
  std::string base_job;         ///< job id when FROM names a stage
  std::vector<std::string> depends_on;  ///< job ids, base first
  std::vector<dockerfile::Instruction> instructions;  ///< expanded
  std::map<std::string, std::string> args;  ///< ARG values in scope at the end (for RUN env)
  std::vector<std::pair<std::string, std::string>> env;  ///< ENV from the Dockerfile (FROM <stage> inherits)
};

struct Plan {
  std::vector<Job> jobs;               ///< dependencies before dependents
  std::vector<std::string> warnings;
  std::string target_stage;
};

/// Plans `df`. Errors carry the Dockerfile line (kInvalidInput), kSecurity for
/// WORKDIR inside /proc (RELIABILITY A5).
Expected<Plan> MakePlan(const dockerfile::Dockerfile& df, char escape, const PlanOptions& opts);

/// `manifold plan --json`.
std::string PlanToJson(const Plan& plan);
/// `manifold plan` for humans.
std::string PlanToText(const Plan& plan);

}  // namespace manifold::plan
