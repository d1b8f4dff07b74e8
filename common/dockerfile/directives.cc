#include "common/dockerfile/directives.h"

#include "common/base/ascii.h"

#include <cctype>

namespace manifold::dockerfile {

namespace {

bool IsSpaceByte(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n'; }

// Matches BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
bool MatchDirective(std::string_view line, std::string* key, std::string* value) {
  size_t i = 0;
  if (line.empty() || line[0] != '#') return false;
  ++i;
  while (i < line.size() && IsSpaceByte(line[i])) ++i;
  size_t k0 = i;
  if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) return false;
  while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
  size_t k1 = i;
  while (i < line.size() && IsSpaceByte(line[i])) ++i;
  if (i >= line.size() || line[i] != '=') return false;
  ++i;
  while (i < line.size() && IsSpaceByte(line[i])) ++i;
  size_t v1 = line.size();
  while (v1 > i && IsSpaceByte(line[v1 - 1])) --v1;
  if (v1 <= i) return false;
  *key = std::string(line.substr(k0, k1 - k0));
  *value = std::string(line.substr(i, v1 - i));
  return true;
}

}  // namespace

Expected<void> DirectiveParser::ParseLine(std::string_view line, int line_number) {
  if (done_) return Ok();
  std::string key, value;
  if (!MatchDirective(line, &key, &value)) {
    done_ = true;
    return Ok();
  }
  key = AsciiLower(key);
  if (key != "syntax" && key != "escape" && key != "check") {
    done_ = true;
    return Ok();
  }
  if (parsed_.count(key))
    return MakeError(ErrorKind::kInvalidInput, "dockerfile.directive.duplicate",
                     "only one " + key + " parser directive can be used");
  if (key == "escape") {
    if (value != "\\" && value != "`")
      return MakeError(ErrorKind::kInvalidInput, "dockerfile.directive.escape",
                       "invalid escape token '" + value + "' does not match ` or \\");
    escape_ = value[0];
  }
  parsed_[key] = value;
  lines_[key] = line_number;
  return Ok();
}

bool IsBuiltinSyntax(std::string_view syntax) {
  std::string_view s = syntax;
  // Strip a registry prefix: docker.io/docker/dockerfile, docker.io/docker/dockerfile-upstream is not ours.
  for (std::string_view prefix : {"docker.io/", "index.docker.io/", "registry-1.docker.io/"}) {
    if (s.substr(0, prefix.size()) == prefix) {
      s.remove_prefix(prefix.size());
      break;
    }
  }
  constexpr std::string_view kName = "docker/dockerfile";
  if (s.substr(0, kName.size()) != kName) return false;
  s.remove_prefix(kName.size());
  if (s.empty()) return true;  // implicit :latest, which is 1.x
  std::string_view tag, digest;
  if (s[0] == ':') {
    s.remove_prefix(1);
    size_t at = s.find('@');
    tag = s.substr(0, at);
    if (at != std::string_view::npos) digest = s.substr(at + 1);
  } else if (s[0] == '@') {
    return s.substr(1, 7) == "sha256:" && s.size() == 1 + 7 + 64;
  } else {
    return false;
  }
  if (!digest.empty() && digest.substr(0, 7) != "sha256:") return false;
  if (tag.empty()) return false;
  if (tag == "latest" || tag == "labs") return true;
  // 1, 1.7, 1.7.1, 1-labs, 1.7-labs, 1.7.1-labs
  if (tag[0] != '1') return false;
  if (tag.size() == 1) return true;
  std::string_view after = tag.substr(1);
  for (size_t i = 0; i < after.size(); ++i) {
    char c = after[i];
    if (c == '-') return after.substr(i) == "-labs";
    if (c != '.' && !std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return after[0] == '.';
}

}  // namespace manifold::dockerfile
