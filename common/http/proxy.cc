#include "common/http/proxy.h"

#include <arpa/inet.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/base/ascii.h"

namespace manifold::http {
namespace {

std::string GetEnvAny(const char* upper, const char* lower) {
  const char* v = std::getenv(upper);
  if (v == nullptr || *v == '\0') v = std::getenv(lower);
  return v == nullptr ? "" : v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// An IPv4 or IPv6 address as 16 bytes (v4 mapped into ::ffff:0:0/96).
struct Ip {
  std::array<unsigned char, 16> bytes{};
  bool v4 = false;
};

std::optional<Ip> ParseIp(const std::string& text) {
  Ip ip;
  in_addr a4;
  if (::inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    ip.v4 = true;
    ip.bytes[10] = ip.bytes[11] = 0xff;
    std::memcpy(ip.bytes.data() + 12, &a4, 4);
    return ip;
  }
  in6_addr a6;
  if (::inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    std::memcpy(ip.bytes.data(), &a6, 16);
    return ip;
  }
  return std::nullopt;
}

bool PrefixMatches(const Ip& a, const Ip& b, int bits) {
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    int mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a.bytes[i] & mask) != (b.bytes[i] & mask)) return false;
  }
  return true;
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost" || (host.size() > 10 && host.ends_with(".localhost"))) return true;
  auto ip = ParseIp(host);
  if (!ip) return false;
  if (ip->v4) return ip->bytes[12] == 127;
  static const Ip kLoopback6 = *ParseIp("::1");
  return ip->bytes == kLoopback6.bytes;
}

/// One NO_PROXY entry against the target's host and port.
bool EntryMatches(std::string_view entry, const Url& target) {
  std::string_view host = entry;
  std::string_view port;
  if (!host.empty() && host[0] == '[') {
    std::size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
    host = host.substr(1, close - 1);
  } else if (host.find(':') == host.rfind(':') && host.find(':') != std::string_view::npos) {
    port = host.substr(host.find(':') + 1);
    host = host.substr(0, host.find(':'));
  }
  if (!port.empty() && port != std::to_string(target.port)) return false;

  if (std::size_t slash = host.find('/'); slash != std::string_view::npos) {
    auto net = ParseIp(std::string(host.substr(0, slash)));
    auto ip = ParseIp(target.host);
    std::string bits_text(host.substr(slash + 1));
    char* end = nullptr;
    long bits = std::strtol(bits_text.c_str(), &end, 10);
    if (!net || !ip || net->v4 != ip->v4 || bits_text.empty() || *end != '\0' || bits < 0 ||
        bits > (net->v4 ? 32 : 128))
      return false;
    return PrefixMatches(*net, *ip, static_cast<int>(bits) + (net->v4 ? 96 : 0));
  }
  if (auto net = ParseIp(std::string(host))) {
    auto ip = ParseIp(target.host);
    return ip && ip->bytes == net->bytes;
  }
  if (host.starts_with("*.")) host.remove_prefix(1);
  if (host.starts_with(".")) return target.host.ends_with(host);
  return target.host == host || (target.host.size() > host.size() && target.host.ends_with(host) &&
                                 target.host[target.host.size() - host.size() - 1] == '.');
}

bool Bypass(const Url& target, const std::string& no_proxy) {
  if (IsLoopback(target.host)) return true;
  std::string_view rest = no_proxy;
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string entry = AsciiLower(Trim(rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (EntryMatches(entry, target)) return true;
  }
  return false;
}

}  // namespace

ProxyConfig ProxyConfigFromEnv() {
  ProxyConfig c;
  c.http_proxy = GetEnvAny("HTTP_PROXY", "http_proxy");
  c.https_proxy = GetEnvAny("HTTPS_PROXY", "https_proxy");
  c.no_proxy = GetEnvAny("NO_PROXY", "no_proxy");
  return c;
}

Expected<std::optional<Url>> ProxyFor(const Url& target, const ProxyConfig& config) {
  std::string value(Trim(target.IsTls() ? config.https_proxy : config.http_proxy));
  if (value.empty() || Bypass(target, config.no_proxy)) return std::optional<Url>();
  std::size_t sep = value.find("://");
  if (sep == std::string::npos) {
    value = "http://" + value;
  } else if (std::string scheme = AsciiLower(value.substr(0, sep)); scheme != "http") {
    return MakeError(ErrorKind::kUnimplemented, "http.proxy",
                     "proxy scheme \"" + scheme + "\" is not supported (only http:// proxies)");
  }
  auto proxy = ParseUrl(value);
  if (!proxy.ok()) {
    Error e = std::move(proxy).error();
    return MakeError(ErrorKind::kInvalidInput, "http.proxy", "bad proxy setting: " + e.message);
  }
  // Go's rule: "http://proxy" means port 80 (ParseUrl already defaults it).
  return std::optional<Url>(std::move(*proxy));
}

}  // namespace manifold::http
