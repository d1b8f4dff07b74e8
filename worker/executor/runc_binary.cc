#include "worker/executor/runc_binary.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <tuple>

namespace manifold::worker {
namespace {

constexpr int kMinMajor = 1;
constexpr int kMinMinor = 1;
constexpr int kMinPatch = 12;

// Distribution builds older than 1.1.12 with the CVE-2024-21626 fix
// backported, recognised by the package version runc prints as its commit.
struct Backport {
  std::string_view commit_prefix;  ///< followed by the revision number N
  int min_revision;
};
constexpr Backport kBackports[] = {
    // Debian 12: runc (1.1.5+ds1-1+deb12u1) bookworm-security, "CVE-2024-21626".
    {"1.1.5+ds1-1+deb12u", 1},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Reads a decimal number at the front of `s`, advancing it.
bool TakeNumber(std::string_view* s, int* out) {
  const auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), *out);
  if (ec != std::errc() || ptr == s->data()) return false;
  s->remove_prefix(static_cast<std::size_t>(ptr - s->data()));
  return true;
}

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

Expected<void> CheckOwned(const std::string& path, const char* what) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return MakeError(
        ErrorKind::kSecurity, "executor.runc.permissions",
        std::string("cannot stat runc ") + what + " " + path + ": " + std::strerror(errno));
  }
  if (st.st_uid != 0) {
    return MakeError(ErrorKind::kSecurity, "executor.runc.permissions",
                     std::string("runc ") + what + " " + path + " is owned by uid " +
                         std::to_string(st.st_uid) + ", not root");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return MakeError(ErrorKind::kSecurity, "executor.runc.permissions",
                     std::string("runc ") + what + " " + path + " is writable by group or others");
  }
  return Ok();
}

}  // namespace

Expected<RuncVersion> ParseRuncVersion(std::string_view output) {
  RuncVersion v;
  bool found = false;
  while (!output.empty()) {
    const std::size_t end = std::min(output.find('\n'), output.size());
    std::string_view line = Trim(output.substr(0, end));
    output.remove_prefix(std::min(end + 1, output.size()));
    constexpr std::string_view kVersion = "runc version ";
    constexpr std::string_view kCommit = "commit:";
    if (line.substr(0, kVersion.size()) == kVersion) {
      v.version = std::string(Trim(line.substr(kVersion.size())));
      std::string_view rest = v.version;
      if (!rest.empty() && rest.front() == 'v') rest.remove_prefix(1);
      found = TakeNumber(&rest, &v.major) && !rest.empty() && rest.front() == '.';
      if (found) rest.remove_prefix(1);
      found = found && TakeNumber(&rest, &v.minor);
      if (found && !rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        found = TakeNumber(&rest, &v.patch);
      }
    } else if (line.substr(0, kCommit.size()) == kCommit) {
      v.commit = std::string(Trim(line.substr(kCommit.size())));
    }
  }
  if (!found) {
    return MakeError(ErrorKind::kUnimplemented, "executor.runc.version",
                     "cannot read runc's version from `runc --version`");
  }
  return v;
}

Expected<void> CheckRuncVersion(const RuncVersion& v) {
  if (std::tie(v.major, v.minor, v.patch) >= std::tie(kMinMajor, kMinMinor, kMinPatch)) {
    return Ok();
  }
  for (const Backport& b : kBackports) {
    std::string_view commit = v.commit;
    if (commit.substr(0, b.commit_prefix.size()) != b.commit_prefix) continue;
    commit.remove_prefix(b.commit_prefix.size());
    int revision = 0;
    if (TakeNumber(&commit, &revision) && revision >= b.min_revision) return Ok();
  }
  return MakeError(ErrorKind::kSecurity, "executor.runc.version",
                   "runc " + v.version + (v.commit.empty() ? "" : " (" + v.commit + ")") +
                       " lacks the fix for CVE-2024-21626; install runc 1.1.12 or later");
}

Expected<std::string> FindRunc(std::string_view configured, std::string_view path_env) {
  std::string found;
  if (!configured.empty()) {
    if (configured.front() != '/') {
      return MakeError(ErrorKind::kInvalidInput, "executor.runc.path",
                       "runc path \"" + std::string(configured) + "\" is not absolute");
    }
    if (IsExecutableFile(std::string(configured))) found = std::string(configured);
  } else {
    while (found.empty() && !path_env.empty()) {
      const std::size_t end = std::min(path_env.find(':'), path_env.size());
      std::string_view dir = path_env.substr(0, end);
      path_env.remove_prefix(std::min(end + 1, path_env.size()));
      // Relative PATH entries would make the choice depend on the cwd.
      if (dir.empty() || dir.front() != '/') continue;
      std::string candidate = std::string(dir) + "/runc";
      if (IsExecutableFile(candidate)) found = std::move(candidate);
    }
  }
  if (found.empty()) {
    return MakeError(ErrorKind::kUnimplemented, "executor.runc.missing",
                     configured.empty()
                         ? "runc not found in PATH; install it (apt-get install runc)"
                         : "runc not found at " + std::string(configured));
  }
  char real[PATH_MAX];
  if (realpath(found.c_str(), real) == nullptr) {
    return MakeError(ErrorKind::kUnimplemented, "executor.runc.missing",
                     "cannot resolve " + found + ": " + std::strerror(errno));
  }
  return std::string(real);
}

Expected<void> CheckRuncPermissions(const std::string& real_path) {
  struct stat st {};
  if (stat(real_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return MakeError(ErrorKind::kSecurity, "executor.runc.permissions",
                     "runc binary " + real_path + " is not a regular file");
  }
  MF_TRY_VOID(CheckOwned(real_path, "binary"));
  const std::size_t slash = real_path.rfind('/');
  const std::string dir = slash == 0 ? "/" : real_path.substr(0, slash);
  return CheckOwned(dir, "directory");
}

}  // namespace manifold::worker
