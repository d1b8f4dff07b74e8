// The one door through which an OCI layer tar reaches the disk: tar (gzip,
// zstd or plain; detected by magic) -> fs::RootDir, with OCI whiteouts,
// limits on everything the input controls, and the layer's diff_id computed on
// the way. Every path is resolved inside the root with openat2(RESOLVE_IN_ROOT)
// and the final component is never followed (RELIABILITY.md 2.1, rows B1-B16).
//
// Rules, in short:
// - Entry names are cleaned; a leading "/" is root-relative; a ".." climbing
//   above the root is kSecurity "layer.breakout.path". Symlinks met while
//   resolving parents are followed as if the root were "/", so a write through
//   `etc -> /etc` lands in <root>/etc.
// - Hardlink targets are resolved the same way and must already exist inside
//   the root as a non-directory, else kSecurity "layer.breakout.hardlink". A
//   hardlink to a symlink links the symlink. Hardlink headers carry no
//   metadata of their own (the target inode keeps its own).
// - Whiteouts ".wh.<name>" delete <name> from lower layers (an entry this layer
//   created is kept, per image-spec); ".wh..wh..opq" empties the directory of
//   everything not created by this layer, in whatever order the marker comes
//   (like containerd's unpackedPaths, tracked by inode). ".wh.", ".wh..",
//   ".wh..." are kSecurity "layer.whiteout.invalid"; other ".wh..wh.*" (aufs
//   metadata) are skipped.
// - Duplicates: the last entry wins (the old one is removed inside the root,
//   unless both are directories: then contents stay); counted and warned.
// - Devices and fifos are created only when running as root and
//   create_devices is set; else skipped with a warning. Device numbers the
//   kernel cannot hold (major > 4095, minor > 1048575) are kSecurity
//   "layer.device.range". Owners outside 0..2^32-2 are kSecurity
//   "layer.owner.range"; owners are applied only when running as root.
// - xattrs: only "security.capability" and "user.*", and only on regular
//   files and directories (set through their fd); everything else (trusted.*,
//   system.*, any xattr on a symlink) is dropped with a warning.
// - Modes (setuid/setgid kept) are set by fd; a directory's mode and times are
//   deferred to the end and applied by re-opening it with O_NOFOLLOW inside
//   the root (CVE-2021-31566); a directory replaced later in the layer by
//   anything else (a symlink, a file, a new directory on another inode) does
//   not get the old entry's metadata.
// - Truncated or corrupt input (tar, gzip, zstd; a missing end-of-archive
//   marker; non-zero bytes after it) is kIntegrity "layer.truncated".
//
// A failed Apply leaves a partially written root. Callers apply into a fresh
// private directory and rename it into place only on success; on failure they
// discard it. Comparing ApplyStats::diff_id with the image config's
// rootfs.diff_ids[i] (kIntegrity "layer.diffid_mismatch") is also theirs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/layer/byte_stream.h"

namespace manifold::fs {
class RootDir;
}

namespace manifold::layer {

struct ApplyOptions {
  /// Uncompressed tar bytes, counted as they are decompressed (so a gzip bomb
  /// stops here); also bounds the sum of regular files' declared sizes, checked
  /// before each file is created (so sparse holes, written as zeros, count).
  /// kSecurity "layer.limit.bytes".
  std::uint64_t max_bytes = std::uint64_t{20} << 30;
  std::uint64_t max_entries = 2'000'000;    ///< "layer.limit.entries"
  std::size_t max_depth = 256;              ///< components per name or hardlink target: "layer.limit.depth"
  std::size_t max_name_bytes = 4096;        ///< per name and link target: "layer.limit.name"
  std::size_t max_pax_bytes = 1 << 20;      ///< extension headers per entry: "layer.limit.pax"
  /// Memory kept across entries (deferred directory metadata, inodes of this
  /// layer, hardlinks into lower layers). kSecurity "layer.limit.memory".
  std::uint64_t max_tracked_bytes = std::uint64_t{512} << 20;
  /// Create char/block devices and fifos (only ever when euid is 0).
  bool create_devices = true;
  std::size_t max_warnings = 100;  ///< warnings kept as text; all are counted
  /// Keep whiteouts in overlayfs form instead of acting on lower layers, so
  /// the tree can be stacked as an overlay lower dir (worker snapshots: each
  /// layer unpacked on its own). Needs root (kUnimplemented
  /// "layer.overlay.needs_root") and an empty `root` (kInvalidInput
  /// "layer.overlay.not_empty"). Then:
  /// - ".wh.<name>" becomes a char device 0/0 named <name>; if this layer
  ///   already has <name>, a non-directory is kept (it hides the lower one
  ///   anyway) and a directory is made opaque;
  /// - ".wh..wh..opq" sets xattr trusted.overlay.opaque=y on its directory
  ///   (created if missing; on the root too, though overlayfs ignores it
  ///   there: stackers must drop the layers below); nothing is pruned;
  /// - a directory entry replacing a whiteout of this layer is made opaque;
  /// - a hardlink to a whiteout fails like one to a missing target, and one
  ///   to a file of a lower layer cannot be expressed (kSecurity
  ///   "layer.breakout.hardlink", as Docker's overlay2 driver fails too);
  /// - a char device 0/0 entry (it would read as a whiteout) is skipped with
  ///   a warning, and "user.overlay.*" xattrs are dropped.
  bool overlay_whiteouts = false;
};

struct ApplyStats {
  /// "sha256:<hex>" of the whole uncompressed stream (trailing padding
  /// included): the layer's DiffID.
  std::string diff_id;
  std::uint64_t uncompressed_bytes = 0;
  std::uint64_t entries = 0;  ///< tar entries read
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t hardlinks = 0;
  std::uint64_t devices = 0;      ///< char/block devices and fifos created
  std::uint64_t whiteouts = 0;    ///< ".wh.<name>" entries that removed something
  std::uint64_t opaque_dirs = 0;  ///< ".wh..wh..opq" markers applied
  std::uint64_t duplicates = 0;   ///< entries replacing one of this same layer
  std::uint64_t skipped = 0;      ///< entries not applied (devices without root, sockets, ...)
  std::uint64_t dropped_xattrs = 0;
  std::uint64_t dropped_fixups = 0;  ///< deferred directory metadata not applied (replaced)
  std::uint64_t warning_count = 0;
  std::vector<std::string> warnings;  ///< the first ApplyOptions::max_warnings
};

/// Applies the layer read from `layer_bytes` onto `root`. Errors: kSecurity
/// "layer.breakout.path", "layer.breakout.hardlink", "layer.breakout.escaped"
/// (a resolved directory turned out not to be below the root: containment
/// failed; nothing was written there), "layer.whiteout.invalid",
/// "layer.device.range", "layer.owner.range", "layer.limit.{bytes,entries,
/// depth,name,pax,memory}"; kIntegrity "layer.truncated"; fs errors (see
/// fs/errno_error.h) for disk trouble or a layer inconsistent with the tree
/// below it; the source's own errors. Errors about one entry carry the context
/// `entry "<name as stored>"`.
Expected<ApplyStats> Apply(fs::RootDir& root, ByteSource& layer_bytes,
                           const ApplyOptions& options = {});

}  // namespace manifold::layer
