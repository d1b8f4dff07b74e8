#include "common/oci/platform.h"

#include "common/base/ascii.h"

#include <sys/utsname.h>

#include <cctype>

namespace manifold::oci {

namespace {

Error Invalid(std::string_view spec, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "platform.invalid",
                   "invalid platform \"" + std::string(spec) + "\": " + why);
}

bool ValidPart(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  return s != "." && s != "..";
}

void Normalize(Platform* p) {
  std::string& a = p->architecture;
  std::string& v = p->variant;
  if (a == "aarch64" || a == "arm64") {
    a = "arm64";
    if (v == "8" || v == "v8") v.clear();
  } else if (a == "x86_64" || a == "x86-64" || a == "amd64") {
    a = "amd64";
    if (v == "v1") v.clear();
  } else if (a == "i386" || a == "i686" || a == "386") {
    a = "386";
  } else if (a == "armhf") {
    a = "arm";
    v = "v7";
  } else if (a == "armel") {
    a = "arm";
    v = "v6";
  } else if (a == "arm") {
    if (v.empty() || v == "7") v = "v7";
    else if (v == "5" || v == "6" || v == "8") v = "v" + v;
  }
  if (p->os == "macos") p->os = "darwin";
}

}  // namespace

std::string Platform::ToString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Expected<Platform> ParsePlatform(std::string_view spec) {
  if (spec.empty()) return Invalid(spec, "empty platform");
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = spec.find('/', start);
    parts.push_back(AsciiLower(spec.substr(start, slash == std::string_view::npos ? slash : slash - start)));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() > 3) return Invalid(spec, "expected os/arch[/variant]");
  for (const auto& p : parts)
    if (!ValidPart(p)) return Invalid(spec, "bad component \"" + p + "\"");
  Platform p;
  if (parts.size() == 1) {
    // A bare OS or architecture: containerd treats known OS names as OS.
    if (parts[0] == "linux" || parts[0] == "windows" || parts[0] == "darwin") {
      p.os = parts[0];
      p.architecture = NativePlatform().architecture;
    } else {
      p.os = "linux";
      p.architecture = parts[0];
    }
  } else {
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
  }
  Normalize(&p);
  return p;
}

Expected<std::vector<Platform>> ParsePlatformList(std::string_view list, size_t max_count) {
  std::vector<Platform> out;
  size_t start = 0;
  for (;;) {
    size_t comma = list.find(',', start);
    std::string_view item = list.substr(start, comma == std::string_view::npos ? comma : comma - start);
    MF_TRY(p, ParsePlatform(item));
    bool dup = false;
    for (const auto& q : out) dup = dup || q == p;
    if (!dup) out.push_back(p);
    if (out.size() > max_count)
      return MakeError(ErrorKind::kInvalidInput, "platform.too_many",
                       "more than " + std::to_string(max_count) + " platforms requested");
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Platform NativePlatform() {
  struct utsname u {};
  uname(&u);
  auto p = ParsePlatform(std::string("linux/") + u.machine);
  if (p.ok()) return *p;
  return Platform{"linux", u.machine, ""};
}

}  // namespace manifold::oci
