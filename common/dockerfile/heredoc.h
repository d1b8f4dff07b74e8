// Heredoc words (`<<EOF`, `<<-EOF`, `3<<"EOF"`) as BuildKit recognises them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/node.h"

namespace manifold::dockerfile {

/// Parses one word; nullopt when it is not a heredoc. The result has no content.
Expected<std::optional<Heredoc>> ParseHeredocWord(std::string_view word);

/// The heredocs an instruction line opens, in order (BuildKit heredocsFromLine).
Expected<std::vector<Heredoc>> HeredocsFromLine(std::string_view line);

/// `<<-`: removes leading tabs from every line of `content`.
std::string ChompHeredocContent(std::string_view content);

}  // namespace manifold::dockerfile
