#include "common/oci/reference.h"

#include "common/oci/quote.h"

namespace manifold::oci {

namespace {

constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kLegacyDockerHub = "index.docker.io";
constexpr std::string_view kOfficialPrefix = "library/";
constexpr std::size_t kMaxPathLength = 255;  // distribution's RepositoryNameTotalLengthMax

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || IsDigit(c); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }
bool IsWord(char c) { return IsAlnum(c) || c == '_'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

Error Bad(std::string_view input, std::string_view why) {
  return MakeError(ErrorKind::kInvalidInput, "reference.invalid",
                   "invalid reference " + QuoteForMessage(input) + ": " + std::string(why));
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool ValidHostName(std::string_view host) {
  if (host.empty()) return false;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = host.find('.', start);
    std::string_view part = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (part.empty() || !IsAlnum(part.front()) || !IsAlnum(part.back())) return false;
    for (char c : part)
      if (!IsAlnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// host [':' port], host := domain-name | '[' ipv6 ']' (ipv6 as [a-fA-F0-9:]+).
bool ValidDomain(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  bool has_port = false;
  if (!d.empty() && d.front() == '[') {
    std::size_t close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1))
      if (!IsHex(c) && c != ':') return false;
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    std::size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      has_port = true;
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
    }
    if (!ValidHostName(host)) return false;
  }
  if (has_port) {
    if (port.empty()) return false;
    for (char c : port)
      if (!IsDigit(c)) return false;
  }
  return true;
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | [-]+
bool ValidPathComponent(std::string_view c) {
  std::size_t i = 0;
  for (;;) {
    if (i >= c.size() || !IsLowerAlnum(c[i])) return false;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    if (i == c.size()) return true;
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      i += (i + 1 < c.size() && c[i + 1] == '_') ? 2 : 1;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
  }
}

// tag := [\w][\w.-]{0,127}
bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128 || !IsWord(t.front())) return false;
  for (char c : t)
    if (!IsWord(c) && c != '.' && c != '-') return false;
  return true;
}

bool IsIdentifier(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!IsDigit(c) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

}  // namespace

std::string Reference::Name() const { return domain + "/" + path; }

std::string Reference::String() const {
  std::string s = Name();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->ToString();
  return s;
}

std::string Reference::FamiliarString() const {
  std::string s;
  if (domain != kDockerHub) {
    s = Name();
  } else if (path.compare(0, kOfficialPrefix.size(), kOfficialPrefix) == 0 &&
             path.find('/', kOfficialPrefix.size()) == std::string::npos) {
    s = path.substr(kOfficialPrefix.size());
  } else {
    s = path;
  }
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->ToString();
  return s;
}

std::string Reference::RegistryHost() const {
  return domain == kDockerHub ? "registry-1.docker.io" : domain;
}

Expected<Reference> ParseReference(std::string_view s) {
  if (s.empty()) return Bad(s, "repository name must have at least one component");
  if (IsIdentifier(s)) return Bad(s, "cannot specify 64-byte hexadecimal strings");
  Reference ref;

  std::string_view name = s;
  if (std::size_t at = s.find('@'); at != std::string_view::npos) {
    name = s.substr(0, at);
    auto d = ParseDigest(s.substr(at + 1));
    if (!d.ok()) {
      Error e = std::move(d).error();
      e.message = "invalid reference " + QuoteForMessage(s) + ": " + e.message;
      return e;
    }
    ref.digest = std::move(*d);
  }
  // A tag follows the last ':' only if no '/' comes after it ("host:5000/app" has none).
  std::size_t colon = name.rfind(':');
  std::size_t slash = name.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = name.substr(colon + 1);
    if (!ValidTag(tag)) return Bad(s, "invalid tag format");
    ref.tag = std::string(tag);
    name = name.substr(0, colon);
  }

  std::string_view remote = name;
  std::size_t first = name.find('/');
  if (first != std::string_view::npos) {
    std::string_view maybe_domain = name.substr(0, first);
    if (maybe_domain == "localhost" || maybe_domain.find_first_of(".:") != std::string_view::npos) {
      if (!ValidDomain(maybe_domain)) return Bad(s, "invalid domain");
      ref.domain = maybe_domain == kLegacyDockerHub ? kDockerHub : maybe_domain;
      remote = name.substr(first + 1);
    }
  }
  if (ref.domain.empty()) ref.domain = kDockerHub;
  if (remote.empty()) return Bad(s, "repository name must have at least one component");
  for (char c : remote)
    if (c >= 'A' && c <= 'Z') return Bad(s, "repository name must be lowercase");
  ref.path = std::string(remote);
  if (ref.domain == kDockerHub && ref.path.find('/') == std::string::npos)
    ref.path = std::string(kOfficialPrefix) + ref.path;

  std::size_t start = 0;
  for (;;) {
    std::size_t next = remote.find('/', start);
    std::string_view component =
        remote.substr(start, next == std::string_view::npos ? next : next - start);
    if (!ValidPathComponent(component)) return Bad(s, "invalid reference format");
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
  if (ref.path.size() > kMaxPathLength)
    return Bad(s, "repository name must not be more than 255 characters");
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

}  // namespace manifold::oci
