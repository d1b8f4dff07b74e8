#include "worker/platform/platform_detect.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace manifold::worker {
namespace {

namespace fs = std::filesystem;

// Handler files are a few hundred bytes; never read more than this.
constexpr std::size_t kMaxHandlerBytes = 4096;

struct MachineMapping {
  std::string_view name;
  std::string_view architecture;
  std::string_view variant;
};

// uname -m spellings (and Go's, which some tools pass through).
constexpr MachineMapping kMachines[] = {
    {"x86_64", "amd64", ""},   {"amd64", "amd64", ""},       {"aarch64", "arm64", ""},
    {"arm64", "arm64", ""},    {"armv7l", "arm", "v7"},
    {"armv7", "arm", "v7"},    {"armv6l", "arm", "v6"},      {"armv5tel", "arm", "v5"},
    {"i386", "386", ""},       {"i486", "386", ""},          {"i586", "386", ""},
    {"i686", "386", ""},       {"riscv64", "riscv64", ""},   {"ppc64le", "ppc64le", ""},
    {"s390x", "s390x", ""},    {"mips64", "mips64", ""},     {"mips64el", "mips64le", ""},
    {"loongarch64", "loong64", ""},
};

// binfmt_misc handler names as registered by qemu-user-static / tonistiigi/binfmt.
constexpr MachineMapping kQemuHandlers[] = {
    {"qemu-aarch64", "arm64", ""},     {"qemu-arm", "arm", "v7"},
    {"qemu-riscv64", "riscv64", ""},   {"qemu-ppc64le", "ppc64le", ""},
    {"qemu-s390x", "s390x", ""},       {"qemu-x86_64", "amd64", ""},
    {"qemu-i386", "386", ""},          {"qemu-mips64el", "mips64le", ""},
    {"qemu-mips64", "mips64", ""},     {"qemu-loongarch64", "loong64", ""},
};

PlatformTriple Linux(const MachineMapping& m) {
  return PlatformTriple{"linux", std::string(m.architecture), std::string(m.variant)};
}

struct HandlerFile {
  bool enabled = false;
  std::string interpreter;
};

// Format (Documentation/admin-guide/binfmt-misc.rst): first line "enabled" or
// "disabled", then "interpreter <path>", "flags: ...", "offset", "magic", "mask".
HandlerFile ParseHandler(const std::string& text) {
  HandlerFile h;
  std::size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (first) h.enabled = line == "enabled";
    first = false;
    constexpr std::string_view kInterpreter = "interpreter ";
    if (line.substr(0, kInterpreter.size()) == kInterpreter) {
      h.interpreter = std::string(line.substr(kInterpreter.size()));
    }
    pos = end + 1;
  }
  return h;
}

}  // namespace

std::string PlatformTriple::ToString() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

Expected<PlatformTriple> PlatformFromMachine(std::string_view machine) {
  for (const auto& m : kMachines) {
    if (m.name == machine) return Linux(m);
  }
  return MakeError(ErrorKind::kUnimplemented, "platform.unknown_machine",
                   "unknown machine architecture \"" + std::string(machine) + "\"");
}

Expected<PlatformTriple> DetectNativePlatform() {
  struct utsname u {};
  if (uname(&u) != 0) {
    return MakeError(ErrorKind::kInternal, "platform.uname",
                     std::string("uname failed: ") + std::strerror(errno));
  }
  if (std::string_view(u.sysname) != "Linux") {
    return MakeError(ErrorKind::kUnimplemented, "platform.unsupported_os",
                     "workers run on Linux only, this is " + std::string(u.sysname));
  }
  return PlatformFromMachine(u.machine);
}

Expected<std::vector<EmulatedPlatform>> DetectEmulatedPlatforms(std::string_view binfmt_dir) {
  std::vector<EmulatedPlatform> found;
  const fs::path dir(binfmt_dir);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return found;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return MakeError(ErrorKind::kInternal, "platform.binfmt",
                     "listing " + dir.string() + ": " + ec.message());
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    const auto* mapping = std::find_if(std::begin(kQemuHandlers), std::end(kQemuHandlers),
                                       [&name](const MachineMapping& m) { return m.name == name; });
    if (mapping == std::end(kQemuHandlers)) continue;  // register, status, other handlers

    std::ifstream in(it->path(), std::ios::binary);
    if (!in) continue;  // handler removed while listing
    std::string text(kMaxHandlerBytes, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    HandlerFile handler = ParseHandler(text);
    if (!handler.enabled || handler.interpreter.empty()) continue;
    // TODO(soon): handlers registered with the F flag keep working after their
    // interpreter file disappears from this mount namespace (containers);
    // decide whether to trust the flag instead of the path.
    if (!fs::exists(handler.interpreter, ec)) continue;
    found.push_back(EmulatedPlatform{Linux(*mapping), name, handler.interpreter});
  }
  if (ec) {
    return MakeError(ErrorKind::kInternal, "platform.binfmt",
                     "listing " + dir.string() + ": " + ec.message());
  }
  std::sort(found.begin(), found.end(),
            [](const EmulatedPlatform& a, const EmulatedPlatform& b) { return a.handler < b.handler; });
  return found;
}

}  // namespace manifold::worker
