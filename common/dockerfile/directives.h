// Parser directives (`# syntax=`, `# escape=`, `# check=`): only at the top of
// the file, before any comment, blank line or instruction.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::dockerfile {

class DirectiveParser {
 public:
  /// Looks at one physical line (leading whitespace already stripped). Once a
  /// line is not a directive, later lines never are. Fails for a repeated
  /// directive or a bad escape token; the message carries no location.
  Expected<void> ParseLine(std::string_view line, int line_number);

  char escape() const { return escape_; }
  const std::map<std::string, std::string>& parsed() const { return parsed_; }
  /// Line number of each directive seen.
  const std::map<std::string, int>& lines() const { return lines_; }

 private:
  bool done_ = false;
  char escape_ = '\\';
  std::map<std::string, std::string> parsed_;
  std::map<std::string, int> lines_;
};

/// Whether `syntax` names the built-in frontend (docker/dockerfile 1.x, by tag
/// or digest, with or without a registry prefix). Any other frontend image is
/// refused by the caller.
bool IsBuiltinSyntax(std::string_view syntax);

}  // namespace manifold::dockerfile
