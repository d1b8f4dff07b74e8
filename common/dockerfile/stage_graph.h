// Stage references and the stage graph: which stages a target needs, in an
// order where dependencies come first; cycles are errors.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/instruction.h"

namespace manifold::dockerfile {

/// Resolves `ref` (a stage name, any case, or a stage index) to a stage index.
/// nullopt when it names no stage (an image). An index out of range is an
/// error: kInvalidInput "invalid stage index N".
Expected<std::optional<int>> ResolveStageRef(const Dockerfile& df, const std::string& ref);

/// Finds the target stage; empty `target` means the last stage.
Expected<int> ResolveTarget(const Dockerfile& df, const std::string& target);

/// Given each stage's dependencies (`deps[i]` = stage indexes stage i needs),
/// returns the stages `target` needs, dependencies first. A cycle is
/// kInvalidInput "circular dependency detected on stage: NAME" at the stage's line.
Expected<std::vector<int>> StagesNeeded(const Dockerfile& df, const std::vector<std::vector<int>>& deps,
                                        int target);

}  // namespace manifold::dockerfile
