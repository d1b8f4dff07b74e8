#include "worker/snapshot/step_snapshot.h"

#include "common/layer/diff.h"
#include "worker/snapshot/snapshotter.h"

namespace manifold::worker {

Expected<StepSnapshot> StepSnapshot::Prepare(Snapshotter& store,
                                             std::span<const std::string> chain) {
  MF_TRY(scratch, store.NewScratch());
  MF_TRY(upper, scratch.Mkdir("fs"));
  MF_TRY_VOID(scratch.Mkdir("work"));
  MF_TRY(merged, scratch.Mkdir("merged"));
  OverlayOptions options;
  options.base_dir = store.dir();
  options.upper = scratch.name() + "/fs";
  options.work = scratch.name() + "/work";
  MF_TRY(lowers, store.Lowers(chain, LowerdirBudget(options)));
  if (lowers.empty()) {  // FROM scratch: overlayfs still wants a lower dir
    MF_TRY_VOID(scratch.Mkdir("empty"));
    lowers.push_back(scratch.name() + "/empty");
  }
  options.lowers = std::move(lowers);
  MF_TRY(mount, OverlayMount::Mount(merged, options));
  return StepSnapshot(store, std::move(scratch), std::move(mount), std::move(merged),
                      std::move(upper));
}

Expected<layer::LayerInfo> StepSnapshot::Commit(layer::Compression compression,
                                                std::optional<std::int64_t> source_date_epoch,
                                                layer::ByteSink& out) {
  if (!scratch_ || !mount_) {
    return MakeError(ErrorKind::kInternal, "snapshot.step.done",
                     "step snapshot was already committed or discarded");
  }
  // The upper dir is read only once nothing can write to it any more: a
  // detached mount could still be written by a straggling process.
  MF_TRY_VOID(mount_->Unmount(/*detach_if_busy=*/false));
  mount_.reset();
  layer::DiffOptions diff;
  diff.overlay_upper = true;
  diff.source_date_epoch = source_date_epoch;
  MF_TRY(info, layer::WriteLayer(upper_, out, compression, diff));
  MF_TRY_VOID(store_->Commit(info.diff_id, std::move(*scratch_)));
  scratch_.reset();
  return info;
}

Expected<void> StepSnapshot::Discard() {
  if (mount_) {
    MF_TRY_VOID(mount_->Unmount());
    mount_.reset();
  }
  if (scratch_) {
    MF_TRY_VOID(scratch_->Remove());
    scratch_.reset();
  }
  return Ok();
}

}  // namespace manifold::worker
