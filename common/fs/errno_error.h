// Turns a failed syscall into an Error whose code names the errno class, so
// callers can branch on "fs.not_found" without seeing errno.
#pragma once

#include <string_view>

#include "common/base/error.h"

namespace manifold::fs {

/// Codes: fs.not_found (ENOENT), fs.exists, fs.not_dir, fs.is_dir, fs.not_empty,
/// fs.loop (ELOOP), fs.name_too_long, fs.cross_device, fs.busy, fs.invalid (EINVAL)
/// — all kInvalidInput: the tree or the input disagrees with the request;
/// fs.no_space (ENOSPC, EDQUOT), fs.no_resources (EMFILE, ENFILE, ENOMEM),
/// fs.io (EIO) — kResourceExhausted; fs.unsupported (ENOTSUP, ENOSYS) —
/// kUnimplemented; fs.permission (EPERM, EACCES), fs.syscall (anything else) —
/// kInternal. Message: `<op> "<what>": <strerror>`.
Error ErrnoError(std::string_view op, std::string_view what, int err);

}  // namespace manifold::fs
