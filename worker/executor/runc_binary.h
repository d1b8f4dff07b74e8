// Which runc the worker trusts (RELIABILITY D6): found at a configured path
// or on PATH, root-owned and not writable by others (CVE-2019-5736 replaced
// the binary), and carrying the fix for the leaked-fd breakout
// (CVE-2024-21626): upstream 1.1.12 or later, or a distribution build known
// to carry the backport.
#pragma once

#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::worker {

struct RuncVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string version;  ///< as printed: "1.1.5+ds1"
  std::string commit;   ///< as printed: "1.1.5+ds1-1+deb12u1", "v1.1.12-0-g51d5e946"
};

/// Parses `runc --version` output ("runc version 1.1.12\ncommit: ...").
/// Errors: kUnimplemented "executor.runc.version" when no version line parses.
Expected<RuncVersion> ParseRuncVersion(std::string_view output);

/// Accepts 1.1.12+ (and any later minor or major), or an older version whose
/// commit names a distribution package known to carry the CVE-2024-21626 fix
/// (Debian 12's "1.1.5+ds1-1+deb12uN", N >= 1). Errors: kSecurity
/// "executor.runc.version" naming the version and the minimum.
Expected<void> CheckRuncVersion(const RuncVersion& v);

/// `configured` if non-empty (must be absolute), else the first executable
/// "runc" in the absolute entries of `path_env` (a PATH value). Returns the
/// real path (symlinks resolved). Errors: kUnimplemented "executor.runc.missing";
/// kInvalidInput "executor.runc.path" for a relative configured path.
Expected<std::string> FindRunc(std::string_view configured, std::string_view path_env);

/// The binary at `real_path` and its directory must be owned by root and not
/// group- or world-writable; the binary must be a regular file.
/// Errors: kSecurity "executor.runc.permissions".
Expected<void> CheckRuncPermissions(const std::string& real_path);

}  // namespace manifold::worker
