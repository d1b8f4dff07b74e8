#include "worker/executor/mount_stubs.h"

#include <algorithm>

namespace manifold::worker {

Expected<MountStubs> MountStubs::Record(const fs::RootDir& root,
                                        const std::vector<std::string>& destinations) {
  MountStubs stubs;
  for (const std::string& dest : destinations) {
    auto parsed = fs::Path::Parse(dest);
    if (!parsed.ok() || parsed->IsRoot()) continue;
    const fs::Path& path = *parsed;
    // Find the first missing component; it and everything below it will be
    // created by the runtime.
    std::size_t first_missing = 0;
    bool blocked = false;
    for (std::size_t depth = 1; depth <= path.Depth(); ++depth) {
      auto st = root.TryStat(path.Prefix(depth));
      if (!st.ok()) {
        blocked = true;  // a parent is a file, a loop, ...: runc will say so
        break;
      }
      if (!st->has_value()) {
        first_missing = depth;
        break;
      }
      if (depth < path.Depth() && !S_ISDIR((*st)->st_mode) && !S_ISLNK((*st)->st_mode)) {
        blocked = true;
        break;
      }
    }
    if (blocked || first_missing == 0) continue;
    for (std::size_t depth = first_missing; depth <= path.Depth(); ++depth) {
      fs::Path stub = path.Prefix(depth);
      if (std::find(stubs.stubs_.begin(), stubs.stubs_.end(), stub) == stubs.stubs_.end()) {
        stubs.stubs_.push_back(std::move(stub));
      }
    }
    const fs::Path parent = path.Prefix(first_missing - 1);
    // The root's own times cannot be set through a RootDir; its entry is not
    // part of a layer's content anyway.
    if (parent.IsRoot()) continue;
    const bool known = std::any_of(stubs.parents_.begin(), stubs.parents_.end(),
                                   [&parent](const ParentTimes& p) { return p.path == parent; });
    if (known) continue;
    MF_TRY(st, root.Stat(parent));
    stubs.parents_.push_back(ParentTimes{parent, st.st_atim, st.st_mtim});
  }
  std::stable_sort(stubs.stubs_.begin(), stubs.stubs_.end(),
                   [](const fs::Path& a, const fs::Path& b) { return a.Depth() > b.Depth(); });
  return stubs;
}

Expected<void> MountStubs::Remove(const fs::RootDir& root) const {
  std::optional<Error> first_error;
  auto note = [&first_error](Error e) {
    if (!first_error) first_error = std::move(e);
  };
  for (const fs::Path& stub : stubs_) {
    auto st = root.TryStat(stub);
    if (!st.ok()) {
      // A parent replaced by a file or a dangling link: nothing of ours is there.
      if (st.error().code != "fs.not_dir" && st.error().code != "fs.not_found" &&
          st.error().code != "fs.loop") {
        note(std::move(st).error());
      }
      continue;
    }
    if (!st->has_value()) continue;
    const struct stat& s = **st;
    const bool empty_file = S_ISREG(s.st_mode) && s.st_size == 0;
    if (!empty_file && !S_ISDIR(s.st_mode)) continue;
    auto removed = root.Unlink(stub);  // a directory goes only if it is empty
    if (!removed.ok() && removed.error().code != "fs.not_empty" &&
        removed.error().code != "fs.exists" && removed.error().code != "fs.not_found") {
      note(std::move(removed).error());
    }
  }
  for (const ParentTimes& p : parents_) {
    auto st = root.TryStat(p.path);
    if (!st.ok() || !st->has_value() || !S_ISDIR((**st).st_mode)) continue;
    auto set = root.SetTimes(p.path, p.atime, p.mtime);
    if (!set.ok()) note(std::move(set).error());
  }
  if (first_error) return *std::move(first_error);
  return Ok();
}

}  // namespace manifold::worker
