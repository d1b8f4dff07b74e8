// Which platforms this worker can build for: its native one (uname) and those
// it can emulate through binfmt_misc handlers (QEMU user mode). The worker
// reports both in Register; the scheduler prefers native placement.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::worker {

/// An OCI platform triple; variant is empty when the architecture has none.
struct PlatformTriple {
  std::string os;
  std::string architecture;
  std::string variant;

  /// "linux/arm/v7", "linux/amd64".
  std::string ToString() const;
  bool operator==(const PlatformTriple&) const = default;
};

struct EmulatedPlatform {
  PlatformTriple platform;
  std::string handler;      ///< binfmt_misc entry name ("qemu-aarch64")
  std::string interpreter;  ///< "/usr/bin/qemu-aarch64-static"
  bool operator==(const EmulatedPlatform&) const = default;
};

inline constexpr std::string_view kDefaultBinfmtDir = "/proc/sys/fs/binfmt_misc";

/// Maps a uname(2) machine string ("x86_64", "aarch64", "armv7l") to the
/// architecture/variant of OCI's linux platforms.
/// Errors: kUnimplemented ("platform.unknown_machine").
Expected<PlatformTriple> PlatformFromMachine(std::string_view machine);

/// This host's platform from uname(2).
/// Errors: kUnimplemented ("platform.unsupported_os", "platform.unknown_machine"),
/// kInternal ("platform.uname").
Expected<PlatformTriple> DetectNativePlatform();

/// Platforms served by binfmt_misc handlers in `binfmt_dir`: one per known
/// QEMU handler file ("qemu-aarch64", ...) that is enabled and whose
/// interpreter exists. Unknown handlers, `register` and `status` are ignored;
/// a missing directory (binfmt_misc not mounted) means none. Sorted by handler.
/// Errors: kInternal ("platform.binfmt") if the directory cannot be listed.
Expected<std::vector<EmulatedPlatform>> DetectEmulatedPlatforms(
    std::string_view binfmt_dir = kDefaultBinfmtDir);

}  // namespace manifold::worker
