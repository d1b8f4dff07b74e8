// A validated path relative to some root. Tar entry names, link targets and
// other untrusted strings become a Path before anything touches the disk.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::fs {

/// True when `name` can be one path component: non-empty, not "." or "..",
/// and free of '/' and NUL. A backslash is an ordinary byte.
bool IsValidComponent(std::string_view name);

/// A clean relative path: components joined by single '/', none empty, "."
/// or "..", no NUL. The empty path names the root itself. Paths are lexical:
/// symlinks are resolved only later, inside a RootDir.
class Path {
 public:
  Path() = default;  ///< the root

  /// Cleans `raw` like Go's path.Clean after stripping leading '/' (absolute
  /// names are root-relative): collapses "//", drops ".", and applies ".."
  /// lexically. Errors: kSecurity "fs.path.escape" ("path escapes the root")
  /// when a ".." would climb above the root; kSecurity "fs.path.nul" for a NUL
  /// byte.
  static Expected<Path> Parse(std::string_view raw);

  /// This path plus one component. Errors: kSecurity "fs.path.component" when
  /// `name` is not a valid component.
  Expected<Path> Join(std::string_view name) const;

  const std::string& str() const { return path_; }
  bool IsRoot() const { return path_.empty(); }
  /// Number of components (0 for the root).
  std::size_t Depth() const;
  /// The containing directory; the root's parent is the root.
  Path Parent() const;
  /// The last component; empty for the root.
  std::string_view Base() const;
  std::vector<std::string_view> Components() const;
  /// The first `n` components (n <= Depth()).
  Path Prefix(std::size_t n) const;
  /// "." for the root (what openat() expects), else str().
  const char* c_str_or_dot() const { return path_.empty() ? "." : path_.c_str(); }

  friend bool operator==(const Path& a, const Path& b) { return a.path_ == b.path_; }

 private:
  explicit Path(std::string clean) : path_(std::move(clean)) {}
  std::string path_;
};

/// Go's path.Clean of "/" + `raw`: "/a/../b/./c" -> "/b/c"; ".." at the root
/// stays at the root, as the kernel resolves "/..". Always absolute.
std::string CleanRootedPath(std::string_view raw);

}  // namespace manifold::fs
