// The syntax layer: Dockerfile text to a SyntaxTree, accepting exactly what
// BuildKit's parser accepts (frontend/dockerfile/parser).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/node.h"

namespace manifold::dockerfile {

struct ParseLimits {
  size_t max_file_bytes = 1 << 20;  ///< RELIABILITY default: 1 MiB
  size_t max_line_bytes = 65535;    ///< BuildKit: bufio.MaxScanTokenSize - 1
};

/// Parses `content`; `file` names it in errors ("Dockerfile:3: ..."). Errors are
/// kInvalidInput with the location, the line and a caret. Unknown
/// instructions, unknown flags and instructions before FROM are accepted here;
/// the instruction layer rejects them.
Expected<SyntaxTree> Parse(std::string_view content, std::string_view file,
                           const ParseLimits& limits = {});

/// BuildKit's parseWords: splits on whitespace, keeping quotes and escapes.
std::vector<std::string> ParseWords(std::string_view rest, char escape);

/// Go's unicode.IsSpace for a code point.
bool IsUnicodeSpace(char32_t c);

}  // namespace manifold::dockerfile
