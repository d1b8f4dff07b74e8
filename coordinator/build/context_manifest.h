// The build context as the coordinator sees it (DESIGN.md "A build, end to
// end", 1): every entry not left out by .dockerignore, with its mode, owner,
// size, content digest and link target, sorted by path. Cache keys of
// COPY/ADD and context bind mounts are computed from it, never from host
// paths or times.
#pragma once
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/cache/cache_key.h"
#include "common/dockerfile/dockerignore.h"

namespace manifold::coordinator {

struct ContextManifest {
  std::vector<cache::SourceDigest> entries;  ///< sorted by path; no root entry
};

/// Walks `context_dir` (symlinks are not followed) and hashes regular files.
/// Errors: kInvalidInput "context.missing" when it is not a directory;
/// kInternal "context.io".
Expected<ContextManifest> ScanContext(const std::string& context_dir,
                                      const dockerfile::IgnoreMatcher* ignore);

/// The entries a COPY/ADD source (or a bind mount's source) may read:
/// the path itself and everything below it; for a pattern with wildcards,
/// everything below its literal prefix; everything when a symlink is on the
/// way (its target may be anywhere in the context). Over-selecting only costs
/// cache hits, never correctness.
std::vector<cache::SourceDigest> SelectSources(const ContextManifest& m, const std::string& source);

}  // namespace manifold::coordinator
