// `manifold parse --json`: the syntax tree as JSON (shape in ARCHITECTURE.md).
#pragma once

#include <string>

#include "common/dockerfile/node.h"

namespace manifold::dockerfile {

/// Serialises `tree` as pretty-printed JSON.
std::string SyntaxTreeToJson(const SyntaxTree& tree);

/// One line per instruction, for humans: `3-5 RUN [--mount=...] args...`.
std::string SyntaxTreeToText(const SyntaxTree& tree);

}  // namespace manifold::dockerfile
