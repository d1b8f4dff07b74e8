// Directory tree -> layer tar. Walks a tree (a step's overlayfs upper dir,
// or any directory) through fds only, and writes one tar entry per file in a
// fixed order, so equal trees give equal bytes:
//
// - Depth-first, each directory's children sorted by name (byte order), the
//   parent before its children. The root itself has no entry. Paths are
//   relative without "./"; directories end in "/".
// - mode (07777), uid, gid and mtime (whole seconds) come from lstat; with
//   `source_date_epoch` set, mtime = min(mtime, epoch). No atime/ctime, no
//   owner names.
// - A non-directory seen again by (st_dev, st_ino) becomes a hardlink entry
//   to the first path seen (same mode/owner/mtime, no data, no xattrs).
// - Symlinks are kept verbatim; char/block devices and fifos are kept;
//   sockets are skipped (counted in DiffStats). Sparse files are written as
//   plain data (holes read as zeros).
// - xattrs kept: "security.capability" and "user.*"; everything else
//   ("trusted.*", "system.*", other "security.*") is dropped.
//
// Overlay mode (`overlay_upper`), after BuildKit util/overlay:
// - a char device 0/0 is a whiteout: it becomes an empty regular entry
//   "<dir>/.wh.<name>" with mode 0, uid/gid 0 and the device's (clamped)
//   mtime, sorted among its siblings by that name;
// - a directory with xattr trusted.overlay.opaque=y (or user.overlay.opaque=y,
//   rootless) gets an opaque marker "<dir>/.wh..wh..opq" (same shape as a
//   whiteout, the directory's mtime) right after the directory entry;
// - "user.overlay.*" xattrs are not copied into the layer;
// - a trusted.overlay.redirect or trusted.overlay.metacopy xattr (or their
//   user.overlay.* forms) fails the diff: the layer would be wrong.
//
// Files are opened with openat(parent_fd, name, O_NOFOLLOW | O_CLOEXEC)
// and streamed in 1 MiB chunks; xattrs are read with llistxattr/lgetxattr
// through "/proc/self/fd/<parent_fd>/<name>" (one component, not followed),
// so no path is ever resolved from the host root. Memory is bounded by the
// chunk buffer, one directory's names at a time per level, and the table of
// multiply-linked inodes; one directory fd is held per level of nesting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/expected.h"

namespace manifold::layer {

class TarWriter;

struct DiffOptions {
  /// When set, every mtime written is min(mtime, *source_date_epoch).
  std::optional<std::int64_t> source_date_epoch;
  /// Interpret overlayfs upper-dir markers (whiteouts, opaque dirs, redirects).
  bool overlay_upper = false;
};

struct DiffStats {
  std::uint64_t entries = 0;  ///< tar entries written (whiteouts and markers included)
  std::uint64_t regular_files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t hardlinks = 0;
  std::uint64_t special_files = 0;  ///< char/block devices and fifos
  std::uint64_t whiteouts = 0;
  std::uint64_t opaque_dirs = 0;
  std::uint64_t sockets_skipped = 0;
  std::uint64_t data_bytes = 0;  ///< file content bytes (before tar framing)
};

/// Writes the tree under `dir_fd` (any directory fd, O_PATH is fine; not
/// closed) into `tar` and finishes the archive.
/// Errors: kInternal "layer.diff.redirect" (message "redirect_dir is used but
/// it's not supported in overlayfs differ"), kInternal "layer.diff.changed"
/// (a file changed size or identity while being read), "layer.diff.io"
/// (kResourceExhausted for ENOMEM/EMFILE/ENFILE/ENOSPC/EDQUOT, else
/// kInternal), or the writer's and its sink's errors.
Expected<DiffStats> WriteTree(int dir_fd, TarWriter& tar, const DiffOptions& options);

/// Same, opening `dir_path` (trusted, from the worker) with O_PATH | O_DIRECTORY.
Expected<DiffStats> WriteTree(const std::string& dir_path, TarWriter& tar,
                              const DiffOptions& options);

}  // namespace manifold::layer
