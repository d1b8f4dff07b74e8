// The daemons' config files (/etc/manifold/*.toml): the flat subset of TOML
// they need — `key = "string"`, `key = 123`, `key = true`, comments, blank
// lines. Tables, arrays and dates are refused with the file and line, never
// silently ignored.
#pragma once
#include <map>
#include <string>

#include "common/base/expected.h"

namespace manifold {

/// key -> value (strings unquoted and unescaped; numbers and booleans as
/// written). Errors: kInvalidInput "config.syntax" ("FILE:LINE: ..."),
/// "config.read" when the file cannot be read.
Expected<std::map<std::string, std::string>> ParseFlatToml(const std::string& text,
                                                           const std::string& file);
Expected<std::map<std::string, std::string>> ReadFlatToml(const std::string& path);

}  // namespace manifold
