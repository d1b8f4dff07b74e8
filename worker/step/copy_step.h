// COPY and ADD (local sources) with Docker/BuildKit semantics, from a source
// tree (the build context, or another stage's rootfs) into a destination
// rootfs. Both trees are reached only through fs::RootDir handles: source
// symlinks are followed as if the source root were "/", so nothing outside it
// is ever read (RELIABILITY A8); destination paths are resolved inside the
// destination root.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/expected.h"
#include "common/layer/apply.h"

namespace manifold::fs {
class RootDir;
}
namespace manifold::dockerfile {
class IgnoreMatcher;
struct Instruction;
}  // namespace manifold::dockerfile

namespace manifold::worker {

struct CopySource {
  const fs::RootDir* root = nullptr;  ///< the context root, or a stage's rootfs
  /// .dockerignore of the context: matching paths (relative to the root) are
  /// invisible, as if absent. Null for none.
  const dockerfile::IgnoreMatcher* ignore = nullptr;
  /// false (context): copied entries are owned by 0:0; true (`--from` a
  /// stage or image): their uid/gid are kept. --chown overrides both.
  bool keep_owners = false;
};

struct CopyOptions {
  /// Limits for ADD's extraction of local archives (layer::Apply's rules).
  layer::ApplyOptions extract;
};

struct CopyStats {
  std::uint64_t files = 0;
  std::uint64_t directories = 0;  ///< copied or created (dest parents included)
  std::uint64_t symlinks = 0;
  std::uint64_t hardlinks = 0;
  std::uint64_t devices = 0;
  std::uint64_t skipped = 0;  ///< sockets; devices when not root
  std::uint64_t bytes = 0;    ///< file data copied
  std::uint64_t archives = 0; ///< ADD archives extracted
};

/// Runs `in` (COPY or ADD; sources in `in.args` and `in.heredoc_sources`,
/// `in.dest`, `--chown`, `--chmod`, `--parents`, `--exclude`) from `src` into
/// `dest_root`. `workdir` is the stage's absolute WORKDIR, which a relative
/// dest is joined to. Rules:
/// - A source is cleaned relative to the source root ("/a" is "a"); one whose
///   ".." climbs above it is kInvalidInput "copy.source.outside_context".
///   Symlinks on the way, and a source that is itself a symlink, are followed
///   inside the root. Components with `*?[\` are Go filepath.Match globs.
/// - Dest is a directory when it ends in "/" (or "/.", or is "."), when a
///   glob matched several entries, or when it exists as one; else a single
///   file lands at dest exactly. More than one source without a trailing "/"
///   is kInvalidInput "copy.dest.not_dir" ("When using COPY with more than one
///   source file, the destination must be a directory and end with a /").
/// - A directory source copies its contents. `--parents` keeps the source's
///   path below dest. `--exclude` patterns (dockerignore syntax) match a
///   top-level source by its root-relative path, and entries below a
///   directory source by their path relative to that directory.
/// - Owners: --chown (ResolveChown against dest_root), else per keep_owners;
///   applied to copied entries and to dest directories the copy created.
///   --chmod (octal or symbolic) to every copied file and directory. Times
///   are kept from the source; symlinks stay symlinks; hardlinks within one
///   copy stay linked; devices and fifos are created when running as root.
/// - Heredoc sources are files named after the heredoc (mode 0644).
/// - ADD: a source file that is a tar (plain, gzip, bzip2, xz, zstd; sniffed
///   by content) is extracted into dest through layer::Apply; URLs are
///   kUnimplemented "step.add.url".
/// Errors: the above; kInvalidInput "copy.source.none" (no sources),
/// "copy.source.not_found" (`"/missing": not found`, or for a glob
/// `"nomatch*": no source files were specified`), "copy.chmod.invalid",
/// "copy.pattern.invalid"; ResolveChown's errors; fs and layer errors.
Expected<CopyStats> Copy(const CopySource& src, const fs::RootDir& dest_root,
                         const std::string& workdir, const dockerfile::Instruction& in,
                         const CopyOptions& options = {});

/// Go's path/filepath.Match on one path component (no '/'). Errors:
/// kInvalidInput "copy.pattern.invalid" ("syntax error in pattern").
Expected<bool> MatchComponent(std::string_view pattern, std::string_view name);

/// Parses a --chmod value (octal "755", or symbolic "u+x,go-w") and applies it
/// to `mode` (permission bits). Errors: kInvalidInput "copy.chmod.invalid".
Expected<std::uint32_t> ApplyChmod(std::string_view spec, std::uint32_t mode, bool is_dir);

}  // namespace manifold::worker
