#include "worker/snapshot/scratch_dir.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "common/base/log.h"
#include "common/fs/dir.h"
#include "common/fs/path.h"
#include "worker/snapshot/mountinfo.h"
#include "worker/snapshot/state_error.h"

namespace manifold::worker {
namespace {

constexpr std::string_view kScratchPrefix = "tmp-";

Expected<fs::UniqueFd> OpenDirFd(int at, const std::string& path, int flags) {
  int fd = ::openat(at, path.c_str(), flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return StateError("open", path, errno);
  return fs::UniqueFd(fd);
}

// A fs::Dir over a duplicate of `fd` (fs::Dir owns its fd).
Expected<fs::Dir> DirOf(int fd, const std::string& label) {
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return StateError("dup", label, errno);
  return fs::Dir(fs::UniqueFd(dup), label);
}

// Takes the directory's lock without waiting; false when someone holds it.
Expected<bool> TryLock(int fd, const std::string& label) {
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    return StateError("flock", label, errno);
  }
}

// Detaches every mount at or below `dir` (absolute), deepest first.
Expected<void> DetachMountsBelow(const std::string& dir) {
  MF_TRY(mounts, ReadMountInfo());
  std::vector<std::string> points;
  for (const MountInfo& m : mounts) {
    if (m.mount_point == dir || m.mount_point.starts_with(dir + "/")) {
      points.push_back(m.mount_point);
    }
  }
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& p : points) {
    if (::umount2(p.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
        errno != ENOENT) {
      return StateError("umount", p, errno);
    }
  }
  return Ok();
}

}  // namespace

Expected<ScratchDir> ScratchDir::Create(const std::string& parent) {
  MF_TRY(parent_fd, OpenDirFd(AT_FDCWD, parent, O_PATH));
  std::string tmpl = parent + "/" + std::string(kScratchPrefix) + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return StateError("mkdtemp", tmpl, errno);
  std::string name = tmpl.substr(parent.size() + 1);
  auto dir = OpenDirFd(parent_fd.get(), name, O_RDONLY);
  if (!dir.ok()) {
    ::unlinkat(parent_fd.get(), name.c_str(), AT_REMOVEDIR);
    return std::move(dir).error();
  }
  // Held until the directory is published or removed; a sweep that starts
  // between mkdtemp and here may remove it, and then our later steps fail
  // (never publish anything half-made).
  MF_TRY(locked, TryLock(dir->get(), tmpl));
  MF_ASSERT(locked, "a new scratch directory is locked by someone else");
  return ScratchDir(std::move(parent_fd), std::move(dir).value(), std::move(name), std::move(tmpl));
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : parent_(std::move(other.parent_)),
      dir_(std::move(other.dir_)),
      name_(std::exchange(other.name_, {})),
      path_(std::exchange(other.path_, {})) {}

ScratchDir& ScratchDir::operator=(ScratchDir&& other) noexcept {
  if (this != &other) {
    (void)Remove();
    parent_ = std::move(other.parent_);
    dir_ = std::move(other.dir_);
    name_ = std::exchange(other.name_, {});
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

ScratchDir::~ScratchDir() {
  auto removed = Remove();
  if (!removed.ok()) MF_LOG_WARN("scratch directory left behind: {}", removed.error().ToString());
}

Expected<std::string> ScratchDir::Mkdir(std::string_view sub) {
  MF_ASSERT(fs::IsValidComponent(sub) && dir_.valid(), "bad scratch subdirectory");
  std::string s(sub);
  if (::mkdirat(dir_.get(), s.c_str(), 0755) != 0)
    return StateError("mkdir", path_ + "/" + s, errno);
  if (::fchmodat(dir_.get(), s.c_str(), 0755, 0) != 0) {
    return StateError("chmod", path_ + "/" + s, errno);
  }
  return path_ + "/" + s;
}

Expected<void> ScratchDir::KeepOnly(std::string_view keep) {
  MF_ASSERT(dir_.valid(), "scratch directory already gone");
  MF_TRY(dir, DirOf(dir_.get(), path_));
  std::vector<std::string> doomed;
  MF_TRY_VOID(dir.ForEachChild([&doomed, keep](std::string_view name) -> Expected<void> {
    if (name != keep) doomed.emplace_back(name);
    return Ok();
  }));
  for (const std::string& name : doomed) MF_TRY_VOID(dir.RemoveAll(name));
  return Ok();
}

Expected<bool> ScratchDir::Publish(std::string_view final_name) {
  MF_ASSERT(fs::IsValidComponent(final_name) && dir_.valid(), "bad snapshot name");
  if (::syncfs(dir_.get()) != 0) return StateError("syncfs", path_, errno);
  std::string final_str(final_name);
  if (::renameat2(parent_.get(), name_.c_str(), parent_.get(), final_str.c_str(),
                  RENAME_NOREPLACE) != 0) {
    int err = errno;
    if (err != EEXIST && err != ENOTEMPTY) return StateError("rename", path_, err);
    MF_TRY_VOID(Remove());
    return false;
  }
  dir_.Reset();
  parent_.Reset();
  name_.clear();
  path_.clear();
  return true;
}

Expected<void> ScratchDir::Remove() {
  if (path_.empty()) return Ok();
  MF_TRY(parent, DirOf(parent_.get(), path_.substr(0, path_.size() - name_.size() - 1)));
  MF_TRY_VOID(parent.RemoveAll(name_));
  dir_.Reset();
  parent_.Reset();
  name_.clear();
  path_.clear();
  return Ok();
}

Expected<int> SweepScratchDirs(const std::string& parent) {
  MF_TRY(parent_fd, OpenDirFd(AT_FDCWD, parent, O_RDONLY));
  MF_TRY(dir, DirOf(parent_fd.get(), parent));
  std::vector<std::string> names;
  MF_TRY_VOID(dir.ForEachChild([&names](std::string_view name) -> Expected<void> {
    if (name.starts_with(kScratchPrefix)) names.emplace_back(name);
    return Ok();
  }));
  int removed = 0;
  for (const std::string& name : names) {
    auto fd = OpenDirFd(parent_fd.get(), name, O_RDONLY);
    if (!fd.ok()) {
      if (fd.error().code == "fs.not_found") continue;  // its owner just published or removed it
      if (fd.error().code != "fs.not_dir" && fd.error().code != "fs.loop") {
        return std::move(fd).error();
      }
      MF_TRY_VOID(dir.Unlink(name));  // a stray file or symlink: no owner, no lock
      ++removed;
      continue;
    }
    MF_TRY(locked, TryLock(fd->get(), parent + "/" + name));
    if (!locked) continue;  // a live owner
    MF_TRY_VOID(DetachMountsBelow(parent + "/" + name));
    MF_TRY_VOID(dir.RemoveAll(name));
    MF_LOG_INFO("removed leftover snapshot scratch directory {}/{}", parent, name);
    ++removed;
  }
  return removed;
}

}  // namespace manifold::worker
