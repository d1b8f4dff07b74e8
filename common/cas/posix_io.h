// Thin POSIX wrappers used inside common/cas: an owning fd, flock()ed lock
// files, and syscalls that retry EINTR and fail as Error values. Everything is
// relative to a directory fd (the *at() calls); callers pass only names they
// have validated. The owning fd is common/base's UniqueFd.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/base/unique_fd.h"

namespace manifold::cas::internal {

using ::manifold::UniqueFd;

/// kResourceExhausted for ENOSPC/EDQUOT/EMFILE/ENFILE/ENOMEM, else kInternal;
/// code "cas.io", message "<op> <name>: <strerror>".
Error SysError(std::string_view op, std::string_view name, int err);

/// openat() with O_CLOEXEC added, retrying EINTR.
Expected<UniqueFd> OpenAt(int dir_fd, const std::string& name, int flags, mode_t mode = 0);

/// Like OpenAt, but a missing `name` (ENOENT) gives std::nullopt.
Expected<std::optional<UniqueFd>> OpenAtIfExists(int dir_fd, const std::string& name, int flags);

/// Creates `name` under `dir_fd` if missing (mode 0755) and opens it as a
/// directory without following a final symlink.
Expected<UniqueFd> OpenOrMakeDirAt(int dir_fd, const std::string& name);

/// Writes all of `data`.
Expected<void> WriteAll(int fd, std::string_view data, std::string_view name);

/// One read(), retrying EINTR; 0 only at end of file.
Expected<std::size_t> ReadSome(int fd, std::span<char> buffer, std::string_view name);

Expected<void> Fsync(int fd, std::string_view name);

/// flock(fd, operation), retrying EINTR. With wait=false returns false when a
/// conflicting lock is held instead of blocking.
Expected<bool> Flock(int fd, int operation, bool wait, std::string_view name);

/// Opens (creating, mode 0644) `name` under `dir_fd` on a fresh open file
/// description and flock()s it with `operation` (LOCK_SH or LOCK_EX). A fresh
/// description per call means two threads of one process exclude each other
/// just as two processes do. With wait=false a held conflicting lock gives
/// std::nullopt instead of blocking.
Expected<std::optional<UniqueFd>> LockFileAt(int dir_fd, const std::string& name, int operation,
                                             bool wait);

/// `bytes` random bytes as lowercase hex (getrandom).
std::string RandomHex(std::size_t bytes);

/// Lists the names in directory `dir_fd` (without "." and ".."), sorted.
Expected<std::vector<std::string>> ListDir(int dir_fd, std::string_view name);

}  // namespace manifold::cas::internal
