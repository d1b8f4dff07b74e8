// Quoting untrusted text for error messages (internal to common/oci).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace manifold::oci {

/// `"text"` for an error message: at most `max_bytes` bytes of `s` (then `...`),
/// with `"`, `\`, control bytes and non-ASCII bytes escaped, so a hostile document
/// can neither flood a log line nor put terminal escapes or broken UTF-8 in it.
std::string QuoteForMessage(std::string_view s, std::size_t max_bytes = 100);

}  // namespace manifold::oci
