// .dockerignore with Docker's exact semantics: moby/patternmatcher/ignorefile
// ReadAll (reading the file), moby/patternmatcher New (cleaning patterns) and
// its Go-regexp translation of globs (matching), walked the way
// tonistiigi/fsutil's filter walker walks a build context, plus BuildKit's
// choice of ignore file (frontend/dockerui).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::dockerfile {

/// Input limits (KJ: every decoder of untrusted bytes has explicit limits).
/// A line of 64 KiB or more fails in Docker too (bufio.Scanner: token too long).
inline constexpr size_t kMaxIgnoreFileBytes = size_t{1} << 20;
inline constexpr size_t kMaxIgnorePatternBytes = 64 * 1024 - 1;

/// One pattern of an ignore file, as ignorefile.ReadAll returns it, with its line.
struct IgnorePattern {
  std::string pattern;  ///< trimmed, cleaned, leading '/' dropped, '!' kept
  int line = 0;         ///< 1-based line in the file
};

/// ignorefile.ReadAll: a first-line UTF-8 BOM is dropped; lines starting with '#'
/// are comments; the rest are trimmed, empty ones skipped, and each pattern is
/// path-cleaned with a leading '/' dropped ('!' prefix kept). Errors (kInvalidInput):
///   "dockerignore.too_large"         content over kMaxIgnoreFileBytes
///   "dockerignore.pattern_too_long"  a line over kMaxIgnorePatternBytes
Expected<std::vector<IgnorePattern>> ReadIgnoreFile(std::string_view content,
                                                    std::string_view source);

/// Decides which context paths an ignore file leaves out. Immutable once built;
/// safe to share between threads. Matching cost is O(path length x pattern size)
/// per pattern: no backtracking, no exponential cases.
class IgnoreMatcher {
 public:
  IgnoreMatcher();  ///< no patterns: excludes nothing
  ~IgnoreMatcher();
  IgnoreMatcher(const IgnoreMatcher&);
  IgnoreMatcher(IgnoreMatcher&&) noexcept;
  IgnoreMatcher& operator=(const IgnoreMatcher&);
  IgnoreMatcher& operator=(IgnoreMatcher&&) noexcept;

  /// Parses .dockerignore text; `source` names the file for errors. Errors:
  ///   kInvalidInput "dockerignore.bad_pattern"
  ///     `ctx/.dockerignore:3: bad pattern "[": syntax error in pattern` (Go filepath.Match),
  ///     `...: bad pattern "[z-a]": syntax error in pattern: invalid character class range
  ///     `z-a`` (Go regexp), `ctx/.dockerignore:4: illegal exclusion pattern: "!"`
  ///   kUnimplemented "dockerignore.unsupported_pattern": what Docker accepts but we
  ///     do not: Unicode classes (`\pL`), and counted repetition (`?{1000}`, live in
  ///     Docker by accident) past 4096 extra instructions per file
  ///   and the ReadIgnoreFile errors. Errors carry `where` (file, line).
  /// Docker reports a pattern that Go's regexp rejects only when a path reaches it;
  /// we report it here.
  static Expected<IgnoreMatcher> Parse(std::string_view content, std::string_view source);

  /// patternmatcher.New: patterns are trimmed and path-cleaned (a leading '/' is
  /// kept, unlike ReadIgnoreFile); empty ones are skipped. Same errors, without file:line.
  static Expected<IgnoreMatcher> FromPatterns(const std::vector<std::string>& patterns);

  /// True when BuildKit leaves `path` out of the context. `path` is relative to the
  /// context root, '/'-separated, no leading "./". Computed as fsutil's walker does:
  /// each ancestor in turn (MatchesUsingParentResults), a pattern that matched an
  /// ancestor counts as matching, the last pattern that applies wins. "" and "."
  /// are never excluded. An excluded directory is still sent when something below
  /// it is not excluded; the walker decides that, see MayReincludeUnder.
  bool Excluded(std::string_view path) const;

  /// patternmatcher MatchesOrParentMatches: like Excluded, but each pattern is tried
  /// against the path and all its parents whenever it is evaluated. Differs from
  /// Excluded only for unusual orderings, e.g. {"a/b", "!a"} on "a/b" (false here,
  /// Excluded true). Used by fsutil for single-file opens.
  bool MatchesOrParentMatches(std::string_view path) const;

  /// patternmatcher MatchesExact: the path itself, no parents.
  bool MatchesExact(std::string_view path) const;

  /// For an excluded directory: true when fsutil's walker still descends into it
  /// because a '!' pattern could re-include something below. False means every
  /// path below `dir` is excluded too.
  bool MayReincludeUnder(std::string_view dir) const;

  /// True when any pattern starts with '!'.
  bool HasExclusions() const { return exclusions_; }

  /// Cleaned patterns in order (patternmatcher Pattern.String with '!' re-added).
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct Compiled;
  static Expected<IgnoreMatcher> Build(const std::vector<IgnorePattern>& input,
                                       std::string_view source);

  std::vector<std::shared_ptr<const Compiled>> compiled_;
  std::vector<std::string> patterns_;
  bool exclusions_ = false;
  bool only_prefix_exceptions_ = true;  ///< fsutil onlyPrefixExcludeExceptions
};

/// Which ignore file applies (BuildKit dockerui): "<dockerfile_path>.dockerignore"
/// wins over "<context_dir>/.dockerignore". An empty `dockerfile_path` means
/// "<context_dir>/Dockerfile"; "-" (stdin) has no own ignore file. A candidate
/// counts when stat() (following symlinks) finds a regular file. Returns nullopt
/// when neither exists.
std::optional<std::string> FindIgnoreFile(const std::string& context_dir,
                                          const std::string& dockerfile_path);

namespace detail {
/// How patternmatcher compiles a cleaned pattern (no '!'): "exact", "prefix",
/// "suffix" or "regexp:<Go regexp text>". For tests.
std::string DescribePattern(std::string_view cleaned_pattern);
}  // namespace detail

}  // namespace manifold::dockerfile
