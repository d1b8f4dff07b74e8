// The worker's snapshot store (DESIGN.md "Snapshots"): each layer unpacked
// once into <state>/snapshots/<diff_id hex>/fs, read-only from then on, and
// stacked as overlayfs lower dirs. A snapshot holds its layer's *own* tree in
// overlayfs form (whiteouts as char devices 0/0, opaque directories with
// trusted.overlay.opaque=y; layer::ApplyOptions::overlay_whiteouts), so it
// does not depend on the layers below it and one copy serves every image.
//
// Layout of <state>/snapshots:
//   <hex>/fs          a layer's tree (Unpack, or a step's upper dir: Commit)
//   chain-<hex>/fs    a flattened chain, keyed by its ChainID (Lowers)
//   tmp-XXXXXX/       scratch (ScratchDir); swept at Open (RELIABILITY.md C5)
//
// Everything is built in scratch and published with one rename; losing a
// race to publish the same name discards ours. Thread-safe: the object only
// holds paths, and concurrent callers coordinate through the file system.
// Needs root (overlay whiteouts, mounts).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/layer/apply.h"
#include "common/layer/byte_stream.h"
#include "worker/snapshot/scratch_dir.h"

namespace manifold::worker {

/// image-spec config.md: ChainID(L0) = DiffID(L0), ChainID(L0..Ln) =
/// "sha256:" + hex(sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))). The chain
/// must not be empty.
std::string ChainId(std::span<const std::string> diff_ids);

class Snapshotter {
 public:
  /// Opens <state_dir>/snapshots (creating it; `state_dir` must exist) and
  /// removes leftover scratch directories of dead owners. Errors: StateError.
  static Expected<Snapshotter> Open(const std::string& state_dir);

  /// <state>/snapshots, absolute with symlinks resolved.
  const std::string& dir() const { return dir_; }

  /// The absolute path of the layer's tree. Errors: kInternal
  /// "snapshot.missing" when it is not unpacked; those of CheckDiffId.
  Expected<std::string> Unpacked(std::string_view diff_id) const;
  /// Same, nullopt when not unpacked.
  Expected<std::optional<std::string>> TryUnpacked(std::string_view diff_id) const;

  /// Unpacks the layer in `layer_bytes` (any compression) unless present,
  /// and returns Unpacked(diff_id). The tree is applied into scratch with
  /// layer::Apply (overlay_whiteouts forced on; `options` gives the limits)
  /// and published only if its diff_id is `diff_id`. Errors: CheckDiffId's;
  /// kIntegrity "layer.diffid_mismatch"; every error of layer::Apply (with
  /// context "unpacking layer <diff_id>"); StateError. On error nothing is
  /// published. A hardlink to a file of a lower layer cannot be stored
  /// (kSecurity "layer.breakout.hardlink", as with Docker's overlay2).
  Expected<std::string> Unpack(std::string_view diff_id, layer::ByteSource& layer_bytes,
                               const layer::ApplyOptions& options = {});

  /// Publishes `scratch`/fs, a tree already in overlayfs form (a step's
  /// upper dir, unmounted), as the snapshot of `diff_id`; everything else in
  /// `scratch` is removed first. If the snapshot exists already, ours is
  /// discarded. Returns Unpacked(diff_id).
  Expected<std::string> Commit(std::string_view diff_id, ScratchDir scratch);

  /// The overlay lower dirs for `chain` (diff_ids, bottom layer first), top
  /// first, relative to dir(), with ':'-joined length at most
  /// `budget_bytes`. Layers under one whose root is opaque are left out (the
  /// kernel ignores opaque roots), and so is a layer repeated lower in the
  /// chain (its top copy shows all it has). When the list is too long, a bottom
  /// prefix of the chain (a multiple of 16 layers, so that later chains
  /// reuse it) is replaced by its flattened copy "chain-<ChainID hex>/fs",
  /// made once by mounting the prefix read-only and copying the merged tree
  /// (layer::WriteTree into layer::Apply). An empty chain gives an empty
  /// list. Errors: kInternal "snapshot.missing" (a layer not unpacked),
  /// kInternal "snapshot.mount.too_long" (the budget holds too few layers),
  /// and those of mounting and copying.
  Expected<std::vector<std::string>> Lowers(std::span<const std::string> chain,
                                            std::size_t budget_bytes);

  /// A new scratch directory in dir().
  Expected<ScratchDir> NewScratch() const { return ScratchDir::Create(dir_); }

  /// Checks that `diff_id` is "sha256:<64 lowercase hex>" before it names a
  /// directory. Errors: oci::ParseDigest's (kInvalidInput "digest.invalid",
  /// kUnimplemented "digest.algorithm"), kUnimplemented
  /// "snapshot.diff_id.algorithm" for sha512.
  static Expected<std::string> CheckDiffId(std::string_view diff_id);

 private:
  explicit Snapshotter(std::string dir) : dir_(std::move(dir)) {}
  Expected<std::string> Publish(ScratchDir scratch, const std::string& name);
  Expected<std::string> Flatten(std::span<const std::string> prefix);

  std::string dir_;
};

}  // namespace manifold::worker
