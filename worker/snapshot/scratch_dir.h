// A snapshot's private working directory: "<snapshots>/tmp-XXXXXX", locked
// with flock(2) for as long as its owner lives. Everything a snapshot is made
// of is built here and becomes visible under its final name only through one
// rename (RELIABILITY.md C5): a crash leaves a "tmp-*" directory, which the
// next Snapshotter::Open sweeps (unlocked ones only, mounts below it detached
// first); a published snapshot is always complete.
#pragma once

#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "common/fs/unique_fd.h"

namespace manifold::worker {

class ScratchDir {
 public:
  /// Creates and locks a new "tmp-XXXXXX" in `parent` (absolute, trusted).
  /// Errors: StateError (state_error.h).
  static Expected<ScratchDir> Create(const std::string& parent);

  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&&) noexcept;
  ~ScratchDir();

  const std::string& path() const { return path_; }  ///< absolute
  const std::string& name() const { return name_; }  ///< "tmp-XXXXXX", relative to the parent
  int fd() const { return dir_.get(); }              ///< the directory, open read-only

  /// Creates the subdirectory `sub` (one component) with mode 0755 and
  /// returns its absolute path.
  Expected<std::string> Mkdir(std::string_view sub);
  /// Removes every child except `keep` (one component). Nothing may be
  /// mounted below: unmount first.
  Expected<void> KeepOnly(std::string_view keep);
  /// Flushes the file system (syncfs), then renames the directory to
  /// `<parent>/<final_name>` unless that exists. Returns true when published;
  /// false when another owner published that name first (ours is removed).
  /// Either way this object is empty afterwards. Errors: StateError.
  Expected<bool> Publish(std::string_view final_name);
  /// Removes the directory now (the destructor does it too, ignoring errors).
  Expected<void> Remove();

 private:
  ScratchDir(fs::UniqueFd parent, fs::UniqueFd dir, std::string name, std::string path)
      : parent_(std::move(parent)),
        dir_(std::move(dir)),
        name_(std::move(name)),
        path_(std::move(path)) {}

  fs::UniqueFd parent_;
  fs::UniqueFd dir_;  // holds the flock
  std::string name_;
  std::string path_;
};

/// Removes every "tmp-*" directory of `parent` that no live ScratchDir holds
/// (in this process or another), detaching whatever is mounted below it
/// first. Returns how many were removed. Errors: StateError.
Expected<int> SweepScratchDirs(const std::string& parent);

}  // namespace manifold::worker
