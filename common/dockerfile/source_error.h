// Dockerfile errors print like ninja's: "Dockerfile:7: message", then the
// offending line and a caret ("^ near here").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"

namespace manifold::dockerfile {

/// Builds a kInvalidInput (or `kind`) error located at `line` (1-based) and
/// `column` (1-based, 0 = unknown) of `file`, whose physical lines are `lines`.
Error SourceError(std::string_view file, const std::vector<std::string>& lines, int line,
                  int column, std::string code, std::string message,
                  ErrorKind kind = ErrorKind::kInvalidInput);

}  // namespace manifold::dockerfile
