// Variable expansion of one instruction, with BuildKit's rules for which
// arguments each instruction expands (ENV/LABEL keys and values, ARG names and
// defaults, COPY/ADD sources, destination and flags, RUN --mount values,
// WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL; never RUN/CMD/ENTRYPOINT bodies).
#pragma once

#include <set>
#include <string>

#include "common/base/expected.h"
#include "common/dockerfile/instruction.h"
#include "common/dockerfile/shell_lexer.h"

namespace manifold::dockerfile {

struct ExpandedInstruction {
  Instruction inst;
  std::set<std::string> used;  ///< variables referenced that were set
};

/// Expands `in` against `env`. Errors (kInvalidInput) are located at the
/// instruction's line of `df`.
Expected<ExpandedInstruction> ExpandInstruction(const Instruction& in, const VarLookup& env,
                                                char escape, const Dockerfile& df);

/// Checks an expanded instruction's values: EXPOSE ports, STOPSIGNAL, --chmod,
/// --checksum, mount specs. Errors are located at the instruction's line.
Expected<void> ValidateExpanded(const Instruction& in, const Dockerfile& df);

/// Cleans an absolute path lexically (path.Clean).
std::string CleanPath(const std::string& p);

}  // namespace manifold::dockerfile
