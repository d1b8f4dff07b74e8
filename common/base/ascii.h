// ASCII case mapping: keywords, flag values, stage names and platform parts
// are compared case-insensitively, bytes outside A-Z are left alone.
#pragma once

#include <string>
#include <string_view>

namespace manifold {

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

inline std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

}  // namespace manifold
