#include "common/layer/apply.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/fs/errno_error.h"
#include "common/fs/root_dir.h"
#include "common/layer/apply_stream.h"
#include "common/layer/compress.h"
#include "common/layer/tar_reader.h"

namespace manifold::layer {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOverlayOpaqueXattr = "trusted.overlay.opaque";
// What the kernel's dev_t holds (12-bit major, 20-bit minor); larger values
// would be silently truncated by mknod and could alias another device.
constexpr std::uint64_t kMaxDevMajor = 0xfff;
constexpr std::uint64_t kMaxDevMinor = 0xfffff;
constexpr std::int64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "unchanged"
constexpr int kMaxWalkDepth = 4096;
// Rough per-item bookkeeping costs for the memory limit.
constexpr std::uint64_t kInodeCost = 48;
constexpr std::uint64_t kRecordCost = 64;
constexpr std::size_t kCopyBytes = 64 * 1024;

Error Security(const char* code, std::string message) {
  return MakeError(ErrorKind::kSecurity, code, std::move(message));
}

// Reader and decompressor failures as Apply reports them.
Error ReadError(Error e) {
  std::string_view code = e.code;
  if (code == "layer.tar.malformed" || code.substr(0, 11) == "layer.gzip." ||
      code.substr(0, 11) == "layer.zstd.") {
    e.kind = ErrorKind::kIntegrity;
    e.code = "layer.truncated";
  } else if (code == "layer.limit.size") {
    e.code = "layer.limit.bytes";
  }
  return e;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool AllowedXattr(std::string_view name) {
  return name == "security.capability" || StartsWith(name, "user.");
}

// An overlayfs whiteout: a char device 0/0. With overlay_whiteouts the tree
// holds no other (such device entries are skipped).
bool IsOverlayWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// Marks the directory open as `dir` (any fd, O_PATH is fine) opaque.
Expected<void> SetOverlayOpaque(int dir, const std::string& label) {
  int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fs::ErrnoError("open", label, errno);
  fs::UniqueFd owned(fd);
  return fs::SetXattrFd(owned.get(), kOverlayOpaqueXattr, "y", label);
}

timespec ToTimespec(std::int64_t sec, std::int32_t nsec) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = nsec >= 0 && nsec < 1'000'000'000 ? nsec : 0;
  return ts;
}

struct LinkName {
  fs::FileKey dir;
  std::string name;
  friend bool operator==(const LinkName& a, const LinkName& b) {
    return a.dir == b.dir && a.name == b.name;
  }
};
struct LinkNameHash {
  std::size_t operator()(const LinkName& l) const {
    return fs::FileKeyHash()(l.dir) ^ std::hash<std::string>()(l.name);
  }
};

// Directory metadata applied after the last entry.
struct Fixup {
  fs::Path path;
  fs::FileKey key;  // the inode the entry created or adopted
  mode_t mode;
  timespec atime;
  timespec mtime;
};

class Applier {
 public:
  Applier(fs::RootDir& root, const ApplyOptions& options, const internal::TarStream& stream,
          ApplyStats& stats)
      : root_(root), options_(options), stream_(stream), stats_(stats),
        is_root_(geteuid() == 0) {}

  Expected<void> Init() {
    MF_TRY(st, root_.root().StatSelf());
    root_key_ = fs::KeyOf(st);
    if (options_.overlay_whiteouts) {
      if (!is_root_) {
        return MakeError(ErrorKind::kUnimplemented, "layer.overlay.needs_root",
                         "overlay whiteouts can only be written as root");
      }
      bool empty = true;
      MF_TRY_VOID(root_.root().ForEachChild([&empty](std::string_view) -> Expected<void> {
        empty = false;
        return Ok();
      }));
      if (!empty) {
        return MakeError(ErrorKind::kInvalidInput, "layer.overlay.not_empty",
                         "a layer is unpacked with overlay whiteouts only into an empty directory");
      }
    }
    return Ok();
  }

  Expected<void> Entry(const TarEntry& entry, TarReader& reader);
  Expected<void> Finish();

 private:
  enum : std::uint8_t { kFromEntry = 1, kAncestor = 2 };

  Expected<fs::Path> EntryPath(const TarEntry& entry) const;
  Expected<fs::Dir> ParentFor(const fs::Path& path);
  Expected<void> RecordAncestors(const fs::Dir& dir);
  Expected<void> Track(std::uint64_t bytes);
  Expected<void> Record(const struct stat& st, std::uint8_t flag);
  bool IsFromEntry(const struct stat& st) const;
  Expected<bool> Clear(const fs::Dir& parent, const fs::Path& path, bool keep_dir);
  void Warn(std::string message);

  Expected<void> Whiteout(const fs::Path& path);
  Expected<void> OverlayWhiteout(const fs::Path& path, std::string_view target);
  Expected<bool> OverlayWhiteoutOnPath(const fs::Path& dir, bool replace);
  Expected<void> Opaque(const fs::Path& dir);
  Expected<void> PruneLower(const fs::Dir& dir, int depth);
  Expected<void> File(const fs::Path& path, const TarEntry& entry, TarReader& reader);
  Expected<void> Directory(const fs::Path& path, const TarEntry& entry);
  Expected<void> Symlink(const fs::Path& path, const TarEntry& entry);
  Expected<void> Hardlink(const fs::Path& path, const TarEntry& entry);
  Expected<void> Device(const fs::Path& path, const TarEntry& entry);
  Expected<void> ApplyXattrs(int fd, const fs::Path& path, const TarEntry& entry);
  void DropXattrs(const fs::Path& path, const TarEntry& entry, const char* why);
  Expected<void> Chown(int fd, const fs::Path& path, const TarEntry& entry);

  fs::RootDir& root_;
  const ApplyOptions& options_;
  const internal::TarStream& stream_;
  ApplyStats& stats_;
  const bool is_root_;
  fs::FileKey root_key_;
  std::unordered_map<fs::FileKey, std::uint8_t, fs::FileKeyHash> layer_inodes_;
  std::unordered_set<LinkName, LinkNameHash> lower_links_;
  std::vector<Fixup> fixups_;
  std::uint64_t tracked_bytes_ = 0;
  std::uint64_t file_bytes_ = 0;  // sum of regular files' declared sizes
};

void Applier::Warn(std::string message) {
  ++stats_.warning_count;
  if (stats_.warnings.size() < options_.max_warnings) stats_.warnings.push_back(std::move(message));
}

Expected<void> Applier::Track(std::uint64_t bytes) {
  tracked_bytes_ += bytes;
  if (tracked_bytes_ > options_.max_tracked_bytes) {
    return Security("layer.limit.memory", "layer needs more than " +
                                              std::to_string(options_.max_tracked_bytes) +
                                              " bytes of bookkeeping");
  }
  return Ok();
}

Expected<void> Applier::Record(const struct stat& st, std::uint8_t flag) {
  auto [it, inserted] = layer_inodes_.try_emplace(fs::KeyOf(st), flag);
  if (!inserted) {
    it->second |= flag;
    return Ok();
  }
  return Track(kInodeCost);
}

bool Applier::IsFromEntry(const struct stat& st) const {
  auto it = layer_inodes_.find(fs::KeyOf(st));
  return it != layer_inodes_.end() && (it->second & kFromEntry) != 0;
}

// Marks `dir` and the directories above it (up to the root) as belonging to
// this layer, so an opaque marker on any of them keeps them. Walks real ".."
// links, read-only.
Expected<void> Applier::RecordAncestors(const fs::Dir& dir) {
  MF_TRY(st, dir.StatSelf());
  fs::UniqueFd cur;
  for (int depth = 0;; ++depth) {
    fs::FileKey key = fs::KeyOf(st);
    if (key == root_key_ || layer_inodes_.count(key) != 0) return Ok();
    MF_TRY_VOID(Record(st, kAncestor));
    if (depth > kMaxWalkDepth) {
      return MakeError(ErrorKind::kInvalidInput, "layer.depth",
                       "\"" + dir.label() + "\" is too deep below the layer root");
    }
    int fd = openat(cur.valid() ? cur.get() : dir.fd(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fs::ErrnoError("open parent of", dir.label(), errno);
    fs::UniqueFd up(fd);
    struct stat up_st;
    if (fstat(up.get(), &up_st) != 0) return fs::ErrnoError("fstat parent of", dir.label(), errno);
    if (fs::KeyOf(up_st) == key) {
      // Reached "/" without meeting the root: containment failed (a bug, or
      // the tree was moved under us). Never write there.
      return Security("layer.breakout.escaped",
                      "\"" + dir.label() + "\" resolved outside the layer root");
    }
    cur = std::move(up);
    st = up_st;
  }
}

Expected<fs::Path> Applier::EntryPath(const TarEntry& entry) const {
  auto path = fs::Path::Parse(entry.path);
  if (!path.ok()) {
    if (path.error().code == "fs.path.escape") {
      return Security("layer.breakout.path", "path escapes the layer root");
    }
    return Security("layer.breakout.path", path.error().message);
  }
  if (path->Depth() > options_.max_depth) {
    return Security("layer.limit.depth", "path has " + std::to_string(path->Depth()) +
                                             " components, limit is " +
                                             std::to_string(options_.max_depth));
  }
  return path;
}

Expected<fs::Dir> Applier::ParentFor(const fs::Path& path) {
  fs::Path parent = path.Parent();
  auto opened = root_.TryOpenDir(parent);
  if (!opened.ok() && options_.overlay_whiteouts && opened.error().code == "fs.not_dir") {
    MF_TRY(replaced, OverlayWhiteoutOnPath(parent, true));
    if (replaced) opened = root_.TryOpenDir(parent);
  }
  MF_TRY(dir, std::move(opened));
  if (!dir) {
    MF_TRY(made, root_.MkdirAll(parent, 0755));
    dir.emplace(std::move(made));
  }
  MF_TRY_VOID(RecordAncestors(*dir));
  return std::move(*dir);
}

// Makes room for `path` in `parent`: removes what is there, unless both it
// and the new entry are directories. Returns whether a directory was kept.
Expected<bool> Applier::Clear(const fs::Dir& parent, const fs::Path& path, bool keep_dir) {
  MF_TRY(st, parent.TryStat(path.Base()));
  if (!st) return false;
  if (IsFromEntry(*st)) {
    ++stats_.duplicates;
    Warn("entry " + Quote(path.str()) + " appears more than once; the last one wins");
  }
  if (keep_dir && S_ISDIR(st->st_mode)) return true;
  MF_TRY_VOID(parent.RemoveAll(path.Base()));
  return false;
}

Expected<void> Applier::Entry(const TarEntry& entry, TarReader& reader) {
  MF_TRY(path, EntryPath(entry));
  if (entry.uid < 0 || entry.uid > kMaxId || entry.gid < 0 || entry.gid > kMaxId) {
    return Security("layer.owner.range", "owner " + std::to_string(entry.uid) + ":" +
                                             std::to_string(entry.gid) + " out of range");
  }
  if (path.IsRoot()) {
    ++stats_.skipped;
    Warn("entry " + Quote(entry.path) + " names the layer root; ignored");
    return Ok();
  }
  if (StartsWith(path.str(), kWhiteoutMetaPrefix) && path.str() != kOpaqueMarker) {
    // aufs bookkeeping (".wh..wh.plnk/...", ".wh..wh.aufs") at the top level.
    ++stats_.skipped;
    Warn("aufs metadata " + Quote(path.str()) + " ignored");
    return Ok();
  }
  if (StartsWith(path.Base(), kWhiteoutPrefix)) return Whiteout(path);
  switch (entry.type) {
    case EntryType::kRegular: return File(path, entry, reader);
    case EntryType::kDirectory: return Directory(path, entry);
    case EntryType::kSymlink: return Symlink(path, entry);
    case EntryType::kHardlink: return Hardlink(path, entry);
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice:
    case EntryType::kFifo: return Device(path, entry);
    case EntryType::kSocket: break;
  }
  ++stats_.skipped;
  Warn("entry " + Quote(entry.path) + " is a socket; skipped");
  return Ok();
}

Expected<void> Applier::Whiteout(const fs::Path& path) {
  std::string_view base = path.Base();
  if (base == kOpaqueMarker) return Opaque(path.Parent());
  std::string_view target = base.substr(kWhiteoutPrefix.size());
  if (!fs::IsValidComponent(target)) {
    return Security("layer.whiteout.invalid",
                    "whiteout " + Quote(base) + " does not name an entry");
  }
  if (StartsWith(base, kWhiteoutMetaPrefix)) {
    ++stats_.skipped;
    Warn("aufs metadata " + Quote(path.str()) + " ignored");
    return Ok();
  }
  if (options_.overlay_whiteouts) return OverlayWhiteout(path, target);
  MF_TRY(dir, root_.TryOpenDir(path.Parent()));
  if (!dir) return Ok();  // nothing below can exist
  MF_TRY_VOID(RecordAncestors(*dir));
  MF_TRY(st, dir->TryStat(target));
  if (!st) return Ok();
  if (IsFromEntry(*st)) {
    // image-spec: a whiteout hides lower layers only.
    Warn("whiteout " + Quote(path.str()) + " names an entry of the same layer; kept");
    return Ok();
  }
  MF_TRY_VOID(dir->RemoveAll(target));
  ++stats_.whiteouts;
  return Ok();
}

// Overlay form: the lower entry is hidden by a whiteout device, or by what
// this layer already has under that name (a directory only when opaque).
Expected<void> Applier::OverlayWhiteout(const fs::Path& path, std::string_view target) {
  MF_TRY(hidden, OverlayWhiteoutOnPath(path.Parent(), false));
  if (hidden) return Ok();  // a directory above is whited out already
  MF_TRY(dir, ParentFor(path));
  MF_TRY(st, dir.TryStat(target));
  if (st && IsOverlayWhiteout(*st)) return Ok();  // repeated
  if (st && S_ISDIR(st->st_mode)) {
    MF_TRY(child, dir.OpenDir(target));
    MF_TRY_VOID(SetOverlayOpaque(child.fd(), path.str()));
    ++stats_.whiteouts;
    return Ok();
  }
  if (st) {
    Warn("whiteout " + Quote(path.str()) + " names an entry of the same layer; kept");
    return Ok();
  }
  MF_TRY_VOID(dir.Mknod(target, S_IFCHR, makedev(0, 0)));
  ++stats_.whiteouts;
  return Ok();
}

// Overlay form: whether a directory on the way to `dir` (or `dir` itself) is
// a whiteout of this layer. With `replace`, each one becomes an opaque
// directory instead (this layer creates something below it), and the result
// says whether any was replaced.
Expected<bool> Applier::OverlayWhiteoutOnPath(const fs::Path& dir, bool replace) {
  bool replaced = false;
  for (std::size_t i = 1; i <= dir.Depth(); ++i) {
    fs::Path prefix = dir.Prefix(i);
    MF_TRY(parent, root_.TryOpenDir(prefix.Parent()));
    if (!parent) return replaced;  // nothing further down exists
    MF_TRY(st, parent->TryStat(prefix.Base()));
    if (!st || !IsOverlayWhiteout(*st)) continue;
    if (!replace) return true;
    MF_TRY_VOID(parent->Unlink(prefix.Base()));
    MF_TRY_VOID(parent->Mkdir(prefix.Base(), 0755));
    MF_TRY(child, parent->OpenDir(prefix.Base()));
    MF_TRY_VOID(SetOverlayOpaque(child.fd(), prefix.str()));
    replaced = true;
  }
  return replaced;
}

Expected<void> Applier::Opaque(const fs::Path& dir_path) {
  if (options_.overlay_whiteouts) MF_TRY_VOID(OverlayWhiteoutOnPath(dir_path, true));
  MF_TRY(dir, root_.MkdirAll(dir_path, 0755));
  MF_TRY_VOID(RecordAncestors(dir));
  if (options_.overlay_whiteouts) {
    MF_TRY_VOID(SetOverlayOpaque(dir.fd(), dir_path.IsRoot() ? "." : dir_path.str()));
    ++stats_.opaque_dirs;
    return Ok();
  }
  MF_TRY_VOID(PruneLower(dir, 0));
  ++stats_.opaque_dirs;
  return Ok();
}

// Removes everything below `dir` that this layer did not create, recursing
// into directories it did. Repeats a pass until one removes nothing, since
// readdir may skip names while the directory changes.
Expected<void> Applier::PruneLower(const fs::Dir& dir, int depth) {
  if (depth > kMaxWalkDepth) {
    return MakeError(ErrorKind::kInvalidInput, "layer.depth",
                     "\"" + dir.label() + "\" is too deep below the layer root");
  }
  MF_TRY(self, dir.StatSelf());
  const fs::FileKey dir_key = fs::KeyOf(self);
  std::unordered_set<ino_t> visited;
  for (bool removed = true; removed;) {
    removed = false;
    MF_TRY_VOID(dir.ForEachChild([&](std::string_view name) -> Expected<void> {
      MF_TRY(st, dir.TryStat(name));
      if (!st) return Ok();
      bool keep = layer_inodes_.count(fs::KeyOf(*st)) != 0 ||
                  lower_links_.count(LinkName{dir_key, std::string(name)}) != 0;
      if (!keep) {
        removed = true;
        return dir.RemoveAll(name);
      }
      if (!S_ISDIR(st->st_mode) || !visited.insert(st->st_ino).second) return Ok();
      MF_TRY(child, dir.OpenDir(name));
      return PruneLower(child, depth + 1);
    }));
  }
  return Ok();
}

Expected<void> Applier::Chown(int fd, const fs::Path& path, const TarEntry& entry) {
  if (!is_root_) return Ok();
  if (fchown(fd, static_cast<uid_t>(entry.uid), static_cast<gid_t>(entry.gid)) != 0) {
    return fs::ErrnoError("chown", path.str(), errno);
  }
  return Ok();
}

void Applier::DropXattrs(const fs::Path& path, const TarEntry& entry, const char* why) {
  for (const auto& [name, value] : entry.xattrs) {
    ++stats_.dropped_xattrs;
    Warn("xattr " + Quote(name) + " on " + Quote(path.str()) + " dropped: " + why);
  }
}

Expected<void> Applier::ApplyXattrs(int fd, const fs::Path& path, const TarEntry& entry) {
  for (const auto& [name, value] : entry.xattrs) {
    if (options_.overlay_whiteouts && StartsWith(name, "user.overlay.")) {
      // Would be read as overlay metadata by a rootless mount or our differ.
      ++stats_.dropped_xattrs;
      Warn("xattr " + Quote(name) + " on " + Quote(path.str()) +
           " dropped: overlay metadata is not taken from layers");
      continue;
    }
    if (!AllowedXattr(name)) {
      ++stats_.dropped_xattrs;
      Warn("xattr " + Quote(name) + " on " + Quote(path.str()) +
           " dropped: only security.capability and user.* are applied");
      continue;
    }
    auto set = fs::SetXattrFd(fd, name, value, path.str());
    if (set.ok()) continue;
    const std::string& code = set.error().code;
    if (code != "fs.unsupported" && code != "fs.permission" && code != "fs.syscall" &&
        code != "fs.invalid") {
      return std::move(set).error();
    }
    ++stats_.dropped_xattrs;
    Warn("xattr " + Quote(name) + " on " + Quote(path.str()) +
         " dropped: " + set.error().message);
  }
  return Ok();
}

Expected<void> Applier::File(const fs::Path& path, const TarEntry& entry, TarReader& reader) {
  // Both the stream and the files' declared sizes count: a sparse entry's
  // holes are never in the stream, but are written out as zeros.
  const std::uint64_t size = static_cast<std::uint64_t>(entry.size);
  const std::uint64_t used = std::max(stream_.total(), file_bytes_);
  if (size > stream_.max_bytes() - std::min(used, stream_.max_bytes())) {
    return Security("layer.limit.bytes", "size " + std::to_string(size) +
                                             " exceeds the layer limit of " +
                                             std::to_string(stream_.max_bytes()) +
                                             " uncompressed bytes");
  }
  file_bytes_ += size;
  MF_TRY(parent, ParentFor(path));
  MF_TRY_VOID(Clear(parent, path, false));
  MF_TRY(fd, parent.OpenFile(path.Base(), O_WRONLY | O_CREAT | O_EXCL, 0600));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return fs::ErrnoError("fstat", path.str(), errno);
  MF_TRY_VOID(Record(st, kFromEntry));

  std::string buffer(kCopyBytes, '\0');
  std::uint64_t written = 0;
  for (;;) {
    MF_TRY(n, reader.ReadData(std::span<char>(buffer.data(), buffer.size())));
    if (n == 0) break;
    for (std::size_t off = 0; off < n;) {
      ssize_t w = write(fd.get(), buffer.data() + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fs::ErrnoError("write", path.str(), errno);
      off += static_cast<std::size_t>(w);
    }
    written += n;
  }
  if (written != size) {
    return MakeError(ErrorKind::kIntegrity, "layer.truncated",
                     "entry data is " + std::to_string(written) + " bytes, header says " +
                         std::to_string(size));
  }
  MF_TRY_VOID(Chown(fd.get(), path, entry));  // before chmod: chown clears setuid
  if (fchmod(fd.get(), entry.mode & 07777) != 0) return fs::ErrnoError("chmod", path.str(), errno);
  MF_TRY_VOID(ApplyXattrs(fd.get(), path, entry));
  const timespec times[2] = {
      entry.atime ? ToTimespec(entry.atime->sec, entry.atime->nsec)
                  : ToTimespec(entry.mtime, entry.mtime_nsec),
      ToTimespec(entry.mtime, entry.mtime_nsec)};
  if (futimens(fd.get(), times) != 0) return fs::ErrnoError("utimens", path.str(), errno);
  ++stats_.files;
  return Ok();
}

Expected<void> Applier::Directory(const fs::Path& path, const TarEntry& entry) {
  MF_TRY(parent, ParentFor(path));
  bool over_whiteout = false;
  if (options_.overlay_whiteouts) {
    MF_TRY(prev, parent.TryStat(path.Base()));
    over_whiteout = prev && IsOverlayWhiteout(*prev);
  }
  MF_TRY(kept, Clear(parent, path, true));
  if (!kept) MF_TRY_VOID(parent.Mkdir(path.Base(), 0700));
  MF_TRY(fd, parent.OpenFile(path.Base(), O_RDONLY | O_DIRECTORY));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return fs::ErrnoError("fstat", path.str(), errno);
  // This layer removed the lower entry, then made a directory of that name:
  // nothing of the lower one may show through.
  if (over_whiteout) MF_TRY_VOID(fs::SetXattrFd(fd.get(), kOverlayOpaqueXattr, "y", path.str()));
  MF_TRY_VOID(Record(st, kFromEntry));
  MF_TRY_VOID(Chown(fd.get(), path, entry));
  MF_TRY_VOID(ApplyXattrs(fd.get(), path, entry));
  MF_TRY_VOID(Track(kRecordCost + path.str().size()));
  timespec mtime = ToTimespec(entry.mtime, entry.mtime_nsec);
  fixups_.push_back(Fixup{path, fs::KeyOf(st), static_cast<mode_t>(entry.mode & 07777),
                          entry.atime ? ToTimespec(entry.atime->sec, entry.atime->nsec) : mtime,
                          mtime});
  ++stats_.directories;
  return Ok();
}

Expected<void> Applier::Symlink(const fs::Path& path, const TarEntry& entry) {
  MF_TRY(parent, ParentFor(path));
  MF_TRY_VOID(Clear(parent, path, false));
  MF_TRY_VOID(parent.Symlink(path.Base(), entry.linkname));
  MF_TRY(st, parent.Stat(path.Base()));
  MF_TRY_VOID(Record(st, kFromEntry));
  if (is_root_) {
    MF_TRY_VOID(parent.Lchown(path.Base(), static_cast<uid_t>(entry.uid),
                              static_cast<gid_t>(entry.gid)));
  }
  DropXattrs(path, entry, "xattrs are not applied to symlinks");
  timespec mtime = ToTimespec(entry.mtime, entry.mtime_nsec);
  MF_TRY_VOID(parent.SetTimes(path.Base(), mtime, mtime));
  ++stats_.symlinks;
  return Ok();
}

Expected<void> Applier::Hardlink(const fs::Path& path, const TarEntry& entry) {
  auto target = fs::Path::Parse(entry.linkname);
  if (!target.ok() || target->IsRoot()) {
    return Security("layer.breakout.hardlink",
                    "hardlink target " + Quote(entry.linkname) + " escapes the layer root");
  }
  if (target->Depth() > options_.max_depth) {
    return Security("layer.limit.depth", "hardlink target has " +
                                             std::to_string(target->Depth()) +
                                             " components, limit is " +
                                             std::to_string(options_.max_depth));
  }
  auto target_opened = root_.TryOpenDir(target->Parent());
  if (!target_opened.ok() && options_.overlay_whiteouts &&
      target_opened.error().code == "fs.not_dir") {
    target_opened = std::optional<fs::Dir>();  // below a whiteout: missing
  }
  MF_TRY(target_dir, std::move(target_opened));
  std::optional<struct stat> target_st;
  if (target_dir) {
    MF_TRY(found, target_dir->TryStat(target->Base()));
    target_st = found;
  }
  if (!target_st || (options_.overlay_whiteouts && IsOverlayWhiteout(*target_st))) {
    return Security("layer.breakout.hardlink", "hardlink target " + Quote(entry.linkname) +
                                                   " does not exist inside the layer root");
  }
  if (S_ISDIR(target_st->st_mode)) {
    return Security("layer.breakout.hardlink",
                    "hardlink target " + Quote(entry.linkname) + " is a directory");
  }
  MF_TRY(parent, ParentFor(path));
  MF_TRY(existing, parent.TryStat(path.Base()));
  if (existing && fs::KeyOf(*existing) == fs::KeyOf(*target_st)) {
    ++stats_.hardlinks;  // already that inode (a link to itself, or a repeat)
    return Ok();
  }
  MF_TRY_VOID(Clear(parent, path, false));
  MF_TRY_VOID(parent.Link(path.Base(), *target_dir, target->Base()));
  if (layer_inodes_.count(fs::KeyOf(*target_st)) == 0) {
    // A lower file gets a name in this layer: an opaque marker on this
    // directory must keep the name, though not the lower inode's other names.
    MF_TRY(dir_st, parent.StatSelf());
    lower_links_.insert(LinkName{fs::KeyOf(dir_st), std::string(path.Base())});
    MF_TRY_VOID(Track(kRecordCost + path.Base().size()));
  }
  if (!entry.xattrs.empty()) DropXattrs(path, entry, "hardlinks carry no metadata");
  ++stats_.hardlinks;
  return Ok();
}

Expected<void> Applier::Device(const fs::Path& path, const TarEntry& entry) {
  mode_t type = S_IFIFO;
  if (entry.type != EntryType::kFifo) {
    type = entry.type == EntryType::kCharDevice ? S_IFCHR : S_IFBLK;
    if (entry.devmajor > kMaxDevMajor || entry.devminor > kMaxDevMinor) {
      return Security("layer.device.range",
                      "device number " + std::to_string(entry.devmajor) + ":" +
                          std::to_string(entry.devminor) + " out of range (major <= " +
                          std::to_string(kMaxDevMajor) + ", minor <= " +
                          std::to_string(kMaxDevMinor) + ")");
    }
  }
  if (options_.overlay_whiteouts && type == S_IFCHR && entry.devmajor == 0 &&
      entry.devminor == 0) {
    ++stats_.skipped;
    Warn("device " + Quote(path.str()) +
         " skipped: a char device 0/0 reads as an overlay whiteout");
    return Ok();
  }
  if (!is_root_ || !options_.create_devices) {
    ++stats_.skipped;
    Warn("device or fifo " + Quote(path.str()) + " skipped: " +
         (is_root_ ? "device creation is disabled" : "not running as root"));
    return Ok();
  }
  MF_TRY(parent, ParentFor(path));
  MF_TRY_VOID(Clear(parent, path, false));
  dev_t dev = type == S_IFIFO ? 0
                              : makedev(static_cast<unsigned>(entry.devmajor),
                                        static_cast<unsigned>(entry.devminor));
  MF_TRY_VOID(parent.Mknod(path.Base(), type | (entry.mode & 07777), dev));
  MF_TRY(st, parent.Stat(path.Base()));
  MF_TRY_VOID(Record(st, kFromEntry));
  MF_TRY_VOID(parent.Lchown(path.Base(), static_cast<uid_t>(entry.uid),
                            static_cast<gid_t>(entry.gid)));
  MF_TRY_VOID(parent.Chmod(path.Base(), entry.mode & 07777));  // chown cleared setuid/setgid
  DropXattrs(path, entry, "xattrs are applied to regular files and directories only");
  timespec mtime = ToTimespec(entry.mtime, entry.mtime_nsec);
  MF_TRY_VOID(parent.SetTimes(path.Base(), mtime, mtime));
  ++stats_.devices;
  return Ok();
}

// Deferred directory metadata: re-resolve each directory inside the root,
// open it without following a final symlink, and apply only if it is still
// the inode the entry made.
Expected<void> Applier::Finish() {
  for (const Fixup& f : fixups_) {
    MF_TRY(parent, root_.TryOpenDir(f.path.Parent()));
    std::optional<fs::UniqueFd> fd;
    if (parent) {
      auto opened = parent->OpenFile(f.path.Base(), O_RDONLY | O_DIRECTORY);
      if (opened.ok()) {
        fd.emplace(std::move(opened).value());
      } else if (opened.error().code != "fs.loop" && opened.error().code != "fs.not_dir" &&
                 opened.error().code != "fs.not_found") {
        return std::move(opened).error();
      }
    }
    struct stat st;
    if (fd && fstat(fd->get(), &st) != 0) return fs::ErrnoError("fstat", f.path.str(), errno);
    if (!fd || !(fs::KeyOf(st) == f.key)) {
      ++stats_.dropped_fixups;
      Warn("directory " + Quote(f.path.str()) +
           " was replaced later in the layer; its mode and times are not applied");
      continue;
    }
    if (fchmod(fd->get(), f.mode) != 0) return fs::ErrnoError("chmod", f.path.str(), errno);
    const timespec times[2] = {f.atime, f.mtime};
    if (futimens(fd->get(), times) != 0) return fs::ErrnoError("utimens", f.path.str(), errno);
  }
  fixups_.clear();
  return Ok();
}

}  // namespace

Expected<ApplyStats> Apply(fs::RootDir& root, ByteSource& layer_bytes,
                           const ApplyOptions& options) {
  ApplyStats stats;
  DecompressLimits decompress_limits;
  // A backstop only: TarStream below counts the same bytes and trips first
  // with the layer's own message.
  decompress_limits.max_output_bytes =
      options.max_bytes > UINT64_MAX - (1 << 20) ? UINT64_MAX : options.max_bytes + (1 << 20);
  auto decompressor = NewAutoDecompressor(layer_bytes, decompress_limits);
  if (!decompressor.ok()) return ReadError(std::move(decompressor).error());
  internal::TarStream stream(**decompressor, options.max_bytes);

  TarLimits tar_limits;
  tar_limits.max_entries = options.max_entries;
  tar_limits.max_name_bytes = options.max_name_bytes;
  tar_limits.max_pax_bytes = options.max_pax_bytes;
  auto reader = TarReader::Open(stream, tar_limits);
  if (!reader.ok()) return ReadError(std::move(reader).error());

  Applier applier(root, options, stream, stats);
  MF_TRY_VOID(applier.Init());
  for (;;) {
    auto next = (*reader)->Next();
    if (!next.ok()) return ReadError(std::move(next).error());
    if (!*next) break;
    ++stats.entries;
    const TarEntry& entry = **next;
    auto applied = applier.Entry(entry, **reader);
    if (!applied.ok()) {
      return ReadError(std::move(applied).error()).With("entry " + Quote(entry.path));
    }
  }
  auto end = stream.CheckEnd((*reader)->consumed_bytes());
  if (!end.ok()) return ReadError(std::move(end).error());
  MF_TRY_VOID(applier.Finish());
  stats.uncompressed_bytes = stream.total();
  stats.diff_id = stream.DiffId();
  return stats;
}

}  // namespace manifold::layer
