// Errors about the worker's own snapshot directory. Nothing there comes from
// a user, so a failed syscall is our fault (kInternal) unless the host ran out
// of something (kResourceExhausted); the code keeps fs::ErrnoError's errno
// class ("fs.not_found", "fs.no_space", ...).
#pragma once

#include <string_view>

#include "common/base/error.h"
#include "common/fs/errno_error.h"

namespace manifold::worker {

inline Error StateError(std::string_view op, std::string_view what, int err) {
  Error e = fs::ErrnoError(op, what, err);
  if (e.kind != ErrorKind::kResourceExhausted) e.kind = ErrorKind::kInternal;
  return e;
}

}  // namespace manifold::worker
