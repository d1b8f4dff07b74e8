#include "common/http/url.h"

#include <arpa/inet.h>

#include <vector>

#include "common/base/ascii.h"

namespace manifold::http {
namespace {

constexpr std::size_t kMaxUrlBytes = 8192;

bool IsVisibleAscii(char c) { return c > 0x20 && c < 0x7f; }

bool IsSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

/// The URL as it may appear in a message: the password replaced by "xxxxx" and
/// bytes that are not printable ASCII shown as \xHH, so a hostile Location
/// header cannot forge log lines.
std::string ForMessage(std::string_view text) {
  std::string shown(text.substr(0, 512));
  std::size_t start = shown.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  std::size_t end = shown.find_first_of("/?#", start);
  if (end == std::string::npos) end = shown.size();
  std::size_t at = shown.rfind('@', end);
  if (at != std::string::npos && at >= start) {
    std::size_t colon = shown.find(':', start);
    if (colon != std::string::npos && colon < at) shown.replace(colon + 1, at - colon - 1, "xxxxx");
  }
  std::string out;
  for (char c : shown) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  if (text.size() > 512) out += "...";
  return out;
}

Error UrlError(std::string_view text, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "http.url",
                   "invalid URL \"" + ForMessage(text) + "\": " + why);
}

/// Length of the scheme if `text` starts with "scheme:", else 0.
std::size_t SchemeLength(std::string_view text) {
  if (text.empty() || !((text[0] >= 'a' && text[0] <= 'z') || (text[0] >= 'A' && text[0] <= 'Z')))
    return 0;
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (text[i] == ':') return i;
    if (!IsSchemeChar(text[i])) return 0;
  }
  return 0;
}

Expected<void> CheckCharacters(std::string_view text) {
  if (text.empty()) return UrlError(text, "empty");
  if (text.size() > kMaxUrlBytes)
    return UrlError(text, "longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  for (char c : text) {
    if (!IsVisibleAscii(c))
      return UrlError(text, "spaces, control characters and non-ASCII bytes must be %-encoded");
  }
  return Ok();
}

Expected<std::uint16_t> ParsePort(std::string_view text, std::string_view digits) {
  if (digits.size() > 5) return UrlError(text, "invalid port");
  unsigned value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return UrlError(text, "invalid port");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return UrlError(text, "port out of range");
  return static_cast<std::uint16_t>(value);
}

/// RFC 3986 section 5.2.4 on a path that starts with '/'.
std::string RemoveDotSegments(std::string_view path) {
  std::vector<std::string_view> out;
  std::string_view rest = path.substr(1);
  for (;;) {
    std::size_t slash = rest.find('/');
    bool last = slash == std::string_view::npos;
    std::string_view seg = rest.substr(0, slash);
    if (seg == "." || seg == "..") {
      if (seg == ".." && !out.empty()) out.pop_back();
      if (last) out.push_back("");
    } else {
      out.push_back(seg);
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  std::string result;
  for (auto seg : out) {
    result += '/';
    result += seg;
  }
  return result.empty() ? "/" : result;
}

}  // namespace

std::string Url::HostPort() const {
  return (IsIpv6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::HostHeader() const {
  std::string h = IsIpv6() ? "[" + host + "]" : host;
  if (!HasDefaultPort()) h += ":" + std::to_string(port);
  return h;
}

std::string Url::ToString() const { return scheme + "://" + HostHeader() + target; }

Expected<Url> ParseUrl(std::string_view text) {
  MF_TRY_VOID(CheckCharacters(text));
  std::size_t scheme_len = SchemeLength(text);
  if (scheme_len == 0) return UrlError(text, "no scheme (expected http:// or https://)");
  Url url;
  url.scheme = AsciiLower(text.substr(0, scheme_len));
  if (url.scheme != "http" && url.scheme != "https")
    return UrlError(text, "unsupported scheme \"" + url.scheme + "\" (expected http or https)");
  std::string_view rest = text.substr(scheme_len + 1);
  if (rest.substr(0, 2) != "//") return UrlError(text, "expected \"//\" after the scheme");
  rest.remove_prefix(2);

  std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  tail = tail.substr(0, tail.find('#'));

  if (std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    url.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return UrlError(text, "unterminated IPv6 address");
    std::string literal(authority.substr(1, close - 1));
    in6_addr addr;
    if (::inet_pton(AF_INET6, literal.c_str(), &addr) != 1)
      return UrlError(text, "invalid IPv6 address");
    url.host = AsciiLower(literal);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return UrlError(text, "unexpected characters after IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    std::size_t colon = authority.find(':');
    std::string_view host = authority.substr(0, colon);
    for (char c : host) {
      if (!IsHostChar(c)) return UrlError(text, "invalid character in host");
    }
    url.host = AsciiLower(host);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
  }
  if (url.host.empty()) return UrlError(text, "no host");
  url.port = url.IsTls() ? 443 : 80;
  if (has_port && !port_text.empty()) {
    MF_TRY(port, ParsePort(text, port_text));
    url.port = port;
  }
  url.target = tail.empty() || tail[0] != '/' ? "/" + std::string(tail) : std::string(tail);
  return url;
}

Expected<Url> Url::Resolve(std::string_view reference) const {
  MF_TRY_VOID(CheckCharacters(reference));
  if (SchemeLength(reference) != 0) return ParseUrl(reference);
  if (reference.substr(0, 2) == "//") return ParseUrl(scheme + ":" + std::string(reference));
  std::string_view ref = reference.substr(0, reference.find('#'));
  Url out = *this;
  if (ref.empty()) return out;
  std::string_view base_path = std::string_view(target).substr(0, target.find('?'));
  if (ref[0] == '?') {
    out.target = std::string(base_path) + std::string(ref);
    return out;
  }
  std::size_t query = ref.find('?');
  std::string_view path = ref.substr(0, query);
  std::string_view query_part = query == std::string_view::npos ? "" : ref.substr(query);
  std::string merged;
  if (path[0] == '/') {
    merged = std::string(path);
  } else {
    merged = std::string(base_path.substr(0, base_path.rfind('/') + 1)) + std::string(path);
  }
  out.target = RemoveDotSegments(merged) + std::string(query_part);
  return out;
}

Expected<std::string> PercentDecode(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int hi = i + 2 < text.size() ? hex(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? hex(text[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return MakeError(ErrorKind::kInvalidInput, "http.url", "invalid %-escape in URL");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace manifold::http
