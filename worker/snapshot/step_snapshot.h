// The rootfs of one RUN step: an overlay of the parent chain's snapshots
// (lower, read-only) and a fresh upper dir in scratch, mounted with
// kOverlayDiffFeatures and verified. After the step, Commit turns the upper
// dir into a layer (layer::WriteLayer in overlay mode: whiteouts and opaque
// directories become OCI markers, a redirect fails) and publishes the same
// upper dir as the new layer's snapshot, so the next step stacks on it
// without unpacking anything.
//
//   tmp-XXXXXX/fs      upper dir (becomes <new diff_id hex>/fs)
//   tmp-XXXXXX/work    overlay work dir
//   tmp-XXXXXX/merged  the mounted rootfs handed to runc
//   tmp-XXXXXX/empty   the lower dir of a step with no parent layer
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/base/expected.h"
#include "common/layer/byte_stream.h"
#include "common/layer/compress.h"
#include "common/layer/layer_writer.h"
#include "worker/snapshot/overlay_mount.h"
#include "worker/snapshot/scratch_dir.h"

namespace manifold::worker {

class Snapshotter;

class StepSnapshot {
 public:
  /// Mounts the step's rootfs over `chain` (diff_ids, bottom first; every
  /// one unpacked; long chains are flattened by Snapshotter::Lowers). Not
  /// thread-safe; `store` must outlive the result. Errors: those of
  /// Snapshotter::Lowers and OverlayMount::Mount (kInternal
  /// "snapshot.overlay.redirect_dir" if the kernel would record redirects).
  static Expected<StepSnapshot> Prepare(Snapshotter& store, std::span<const std::string> chain);

  StepSnapshot(StepSnapshot&&) noexcept = default;
  StepSnapshot& operator=(StepSnapshot&&) noexcept = default;
  ~StepSnapshot() = default;  // unmounts, then removes the scratch dir (member order)

  /// The merged rootfs (absolute), for the runtime.
  const std::string& rootfs() const { return rootfs_; }
  /// The upper dir (absolute): what the step changed.
  const std::string& upper() const { return upper_; }

  /// Unmounts (the step's processes must be gone), writes the layer into
  /// `out` and publishes the upper dir as the snapshot of its diff_id (or
  /// drops it if that snapshot exists). Call once. Errors: kInternal
  /// "snapshot.mount.busy" while something still uses the rootfs (nothing
  /// changes; Commit may be called again), kInternal "snapshot.step.done"
  /// when already committed or discarded; those of
  /// layer::WriteLayer (kInternal "layer.diff.redirect", ...), `out`, and
  /// Snapshotter::Commit. After an error nothing is published; Discard().
  Expected<layer::LayerInfo> Commit(layer::Compression compression,
                                    std::optional<std::int64_t> source_date_epoch,
                                    layer::ByteSink& out);

  /// Unmounts and removes everything of this step. Idempotent.
  Expected<void> Discard();

 private:
  StepSnapshot(Snapshotter& store, ScratchDir scratch, OverlayMount mount, std::string rootfs,
               std::string upper)
      : store_(&store),
        scratch_(std::move(scratch)),
        mount_(std::move(mount)),
        rootfs_(std::move(rootfs)),
        upper_(std::move(upper)) {}

  Snapshotter* store_;
  std::optional<ScratchDir> scratch_;  // declared before mount_: destroyed after it
  std::optional<OverlayMount> mount_;
  std::string rootfs_;
  std::string upper_;
};

}  // namespace manifold::worker
