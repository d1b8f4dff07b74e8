#include "common/registry/registry_options.h"

#include <arpa/inet.h>
#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/base/ascii.h"

namespace manifold::registry {

std::string HostOf(std::string_view host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    auto close = host_port.find(']');
    if (close != std::string_view::npos) return AsciiLower(host_port.substr(1, close - 1));
  }
  auto colon = host_port.rfind(':');
  // A bare IPv6 address has several colons and no port.
  if (colon != std::string_view::npos && host_port.find(':') == colon)
    return AsciiLower(host_port.substr(0, colon));
  return AsciiLower(host_port);
}

bool IsLoopbackHost(std::string_view host) {
  std::string h = AsciiLower(host);
  if (h == "localhost") return true;
  in_addr a4;
  if (::inet_pton(AF_INET, h.c_str(), &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;  // 127.0.0.0/8
  in6_addr a6;
  if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

bool IsInsecureRegistry(const RegistryOptions& options, std::string_view host_port) {
  std::string hp = AsciiLower(host_port);
  std::string host = HostOf(hp);
  if (options.loopback_is_insecure && IsLoopbackHost(host)) return true;
  for (const auto& entry : options.insecure_registries) {
    std::string e = AsciiLower(entry);
    // Docker accepts "http://host:port" in the list too.
    for (std::string_view scheme : {"http://", "https://"})
      if (e.starts_with(scheme)) e = e.substr(scheme.size());
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e == hp) return true;
    if (e == host && HostOf(e) == e) return true;  // a bare host covers every port
  }
  return false;
}

Expected<HostTlsFiles> TlsFilesFor(const std::string& certs_dir, std::string_view host_port) {
  HostTlsFiles out;
  if (certs_dir.empty()) return out;
  // Folder names are host[:port] as typed; an IPv6 host keeps its brackets.
  std::string dir = certs_dir + "/" + std::string(host_port);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (name.ends_with(".crt")) {
      out.ca_files.push_back(dir + "/" + name);
    } else if (name.ends_with(".cert")) {
      std::string key = name.substr(0, name.size() - 5) + ".key";
      if (!std::binary_search(names.begin(), names.end(), key))
        return MakeError(ErrorKind::kInvalidInput, "registry.certs",
                         "missing key " + key + " for client certificate " + dir + "/" + name);
      if (out.cert_file.empty()) {
        out.cert_file = dir + "/" + name;
        out.key_file = dir + "/" + key;
      }
    } else if (name.ends_with(".key")) {
      std::string cert = name.substr(0, name.size() - 4) + ".cert";
      if (!std::binary_search(names.begin(), names.end(), cert))
        return MakeError(ErrorKind::kInvalidInput, "registry.certs",
                         "missing client certificate " + cert + " for key " + dir + "/" + name);
    }
  }
  return out;
}

Expected<void> LoadDaemonConfig(const std::string& path, RegistryOptions* options) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Ok();
    return MakeError(ErrorKind::kInvalidInput, "registry.config",
                     "cannot read " + path + ": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto bad = [&path](const std::string& why) {
    return MakeError(ErrorKind::kInvalidInput, "registry.config", "invalid " + path + ": " + why);
  };
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  auto strings = [&](const char* key, std::vector<std::string>* into) -> Expected<void> {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return Ok();
    if (!it->is_array()) return bad(std::string("\"") + key + "\" is not a list of strings");
    for (const auto& v : *it) {
      if (!v.is_string()) return bad(std::string("\"") + key + "\" is not a list of strings");
      into->push_back(v.get<std::string>());
    }
    return Ok();
  };
  MF_TRY_VOID(strings("insecure-registries", &options->insecure_registries));
  MF_TRY_VOID(strings("registry-mirrors", &options->mirrors));
  return Ok();
}

}  // namespace manifold::registry
