// A build context rebuilt from its manifest on another node (issue 6): the
// coordinator rebuilds the client's context from uploaded blobs, a worker
// rebuilds the files its jobs read. Paths were validated at decode (relative,
// no ".."); on top of that nothing is ever written through a symlink, so an
// entry "a -> /etc" followed by "a/passwd" cannot escape the directory.
#pragma once
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/cas/local_blob_store.h"
#include "common/wire/stage_job.h"

namespace manifold::wire {

/// Creates `dir` (replacing what was there) holding `files`: directories,
/// symlinks and regular files copied from `blobs` (every digest must be
/// there), with their modes, owners (when running as root) and mtimes.
/// Errors: kSecurity "context.path" (a path through a symlink or a file in
/// the way), kInvalidInput "cas.not_found", kInternal "context.io".
Expected<void> MaterializeContext(const std::string& dir, const std::vector<ContextFileData>& files,
                                  cas::LocalBlobStore& blobs);

/// Adds `files` to a context `dir` made by MaterializeContext (a job that
/// reads other parts of the same context): files and symlinks must not be
/// there yet; directories may, and get their mode, owner and times again
/// (adding children changed their mtime). Same errors.
Expected<void> AddToContext(const std::string& dir, const std::vector<ContextFileData>& files,
                            cas::LocalBlobStore& blobs);

}  // namespace manifold::wire
