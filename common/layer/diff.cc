#include "common/layer/diff.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "common/layer/tar_writer.h"

namespace manifold::layer {
namespace {

constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kRedirectMessage =
    "redirect_dir is used but it's not supported in overlayfs differ";

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Error SysError(std::string_view op, const std::string& rel, int err) {
  bool exhausted =
      err == ENOMEM || err == EMFILE || err == ENFILE || err == ENOSPC || err == EDQUOT;
  return MakeError(
      exhausted ? ErrorKind::kResourceExhausted : ErrorKind::kInternal, "layer.diff.io",
      std::string(op) + " \"" + (rel.empty() ? "." : rel) + "\": " + std::strerror(err));
}

Error Changed(const std::string& rel, std::string_view what) {
  return MakeError(ErrorKind::kInternal, "layer.diff.changed",
                   "\"" + rel + "\" " + std::string(what) + " while being archived");
}

template <class F>
auto RetryEintr(F f) {
  for (;;) {
    auto r = f();
    if (r >= 0 || errno != EINTR) return r;
  }
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Names of a directory's entries except "." and "..", in no particular order.
Expected<std::vector<std::string>> ReadNames(int dir_fd, const std::string& rel) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return SysError("dup", rel, errno);
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return SysError("opendir", rel, err);
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* d = ::readdir(dir);
    if (d == nullptr) break;
    std::string_view n = d->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return SysError("readdir", rel, err);
  return names;
}

// The raw xattrs of `name` inside `dir_fd`, not following a final symlink.
// Only names accepted by `wanted` have their values read.
template <class Pred>
Expected<std::map<std::string, std::string>> ReadXattrs(int dir_fd, const std::string& name,
                                                        const std::string& rel, Pred wanted) {
  std::string path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name;
  std::map<std::string, std::string> out;
  std::vector<char> list;
  for (;;) {
    ssize_t n = RetryEintr([&] { return ::llistxattr(path.c_str(), nullptr, 0); });
    if (n < 0 && (errno == ENOTSUP || errno == ENODATA)) return out;
    if (n < 0) return SysError("llistxattr", rel, errno);
    if (n == 0) return out;
    list.resize(static_cast<std::size_t>(n));
    n = RetryEintr([&] { return ::llistxattr(path.c_str(), list.data(), list.size()); });
    if (n < 0 && errno == ERANGE) continue;  // grew in between
    if (n < 0) return SysError("llistxattr", rel, errno);
    list.resize(static_cast<std::size_t>(n));
    break;
  }
  for (std::size_t i = 0; i < list.size();) {
    std::string key(list.data() + i);
    i += key.size() + 1;
    if (!wanted(key)) continue;
    std::vector<char> value;
    for (;;) {
      ssize_t n = RetryEintr([&] { return ::lgetxattr(path.c_str(), key.c_str(), nullptr, 0); });
      if (n < 0 && errno == ENODATA) break;  // removed in between
      if (n < 0) return SysError("lgetxattr " + key, rel, errno);
      value.resize(static_cast<std::size_t>(n));
      if (n > 0) {
        n = RetryEintr(
            [&] { return ::lgetxattr(path.c_str(), key.c_str(), value.data(), value.size()); });
        if (n < 0 && errno == ERANGE) continue;
        if (n < 0 && errno == ENODATA) break;
        if (n < 0) return SysError("lgetxattr " + key, rel, errno);
        value.resize(static_cast<std::size_t>(n));
      }
      out[key] = std::string(value.begin(), value.end());
      break;
    }
  }
  return out;
}

bool IsOverlayXattr(std::string_view key) {
  return StartsWith(key, "trusted.overlay.") || StartsWith(key, "user.overlay.");
}

bool KeepXattr(std::string_view key, bool overlay) {
  if (overlay && IsOverlayXattr(key)) return false;
  return key == "security.capability" || StartsWith(key, "user.");
}

bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

class Walker {
 public:
  Walker(TarWriter& tar, const DiffOptions& options)
      : tar_(tar), options_(options), buffer_(kChunkBytes) {}

  // Writes the entries of everything below `dir_fd`; `prefix` is the
  // directory's own relative path with a trailing "/" ("" for the root).
  Expected<void> WalkDir(int dir_fd, const std::string& prefix);

  const DiffStats& stats() const { return stats_; }

 private:
  struct Child {
    std::string sort_key;  // the entry name written: ".wh.<name>" for whiteouts
    std::string name;
  };

  Expected<void> WriteChild(int dir_fd, const std::string& prefix, const std::string& name);
  Expected<void> WriteMarker(std::string path, std::int64_t mtime);
  Expected<void> WriteFileData(int dir_fd, const std::string& name, const std::string& rel,
                               const struct stat& st, TarHeader& header);
  Expected<void> WriteZeros(std::uint64_t count);
  Expected<void> Put(const TarHeader& header) {
    MF_TRY_VOID(tar_.WriteHeader(header));
    ++stats_.entries;
    return Ok();
  }
  std::int64_t Clamp(std::int64_t mtime) const {
    return options_.source_date_epoch ? std::min(mtime, *options_.source_date_epoch) : mtime;
  }

  TarWriter& tar_;
  const DiffOptions& options_;
  std::vector<char> buffer_;
  std::vector<char> zeros_;                                    // allocated at the first hole
  std::map<std::pair<dev_t, ino_t>, std::string> first_link_;  // inodes with st_nlink > 1
  DiffStats stats_;
};

Expected<void> Walker::WalkDir(int dir_fd, const std::string& prefix) {
  MF_TRY(names, ReadNames(dir_fd, prefix));
  std::vector<Child> children;
  children.reserve(names.size());
  for (auto& name : names) {
    Child c{name, std::move(name)};
    if (options_.overlay_upper) {
      struct stat st;
      if (::fstatat(dir_fd, c.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return SysError("lstat", prefix + c.name, errno);
      }
      if (IsWhiteout(st)) c.sort_key = std::string(kWhiteoutPrefix) + c.name;
    }
    children.push_back(std::move(c));
  }
  names.clear();
  std::sort(children.begin(), children.end(),
            [](const Child& a, const Child& b) { return a.sort_key < b.sort_key; });
  for (const Child& c : children) MF_TRY_VOID(WriteChild(dir_fd, prefix, c.name));
  return Ok();
}

Expected<void> Walker::WriteMarker(std::string path, std::int64_t mtime) {
  TarHeader h;
  h.path = std::move(path);
  h.type = EntryType::kRegular;
  h.mtime = Clamp(mtime);
  return Put(h);
}

Expected<void> Walker::WriteChild(int dir_fd, const std::string& prefix, const std::string& name) {
  const std::string rel = prefix + name;
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return SysError("lstat", rel, errno);
  }
  const bool overlay = options_.overlay_upper;
  if (overlay && IsWhiteout(st)) {
    ++stats_.whiteouts;
    return WriteMarker(prefix + std::string(kWhiteoutPrefix) + name, st.st_mtim.tv_sec);
  }
  if (S_ISSOCK(st.st_mode)) {
    ++stats_.sockets_skipped;
    return Ok();
  }

  TarHeader h;
  h.path = rel;
  h.mode = st.st_mode & 07777;
  h.uid = st.st_uid;
  h.gid = st.st_gid;
  h.mtime = Clamp(st.st_mtim.tv_sec);

  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    auto [it, first] = first_link_.try_emplace({st.st_dev, st.st_ino}, rel);
    if (!first) {
      h.type = EntryType::kHardlink;
      h.linkname = it->second;
      ++stats_.hardlinks;
      return Put(h);
    }
  }

  MF_TRY(xattrs, ReadXattrs(dir_fd, name, rel, [overlay](std::string_view key) {
           return KeepXattr(key, overlay) || (overlay && IsOverlayXattr(key));
         }));
  bool opaque = false;
  for (auto& [key, value] : xattrs) {
    if (overlay && IsOverlayXattr(key)) {
      std::string_view leaf = std::string_view(key).substr(key.find(".overlay.") + 9);
      if (leaf == "redirect" || leaf == "metacopy") {
        return MakeError(ErrorKind::kInternal, "layer.diff.redirect", std::string(kRedirectMessage))
            .With("archiving \"" + rel + "\"");
      }
      if (leaf == "opaque" && value == "y") opaque = true;
    } else {
      h.xattrs.emplace(key, std::move(value));
    }
  }

  if (S_ISDIR(st.st_mode)) {
    Fd fd(RetryEintr([&] {
      return ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }));
    if (fd.get() < 0) return SysError("open", rel, errno);
    struct stat now;
    if (::fstat(fd.get(), &now) != 0) return SysError("fstat", rel, errno);
    if (now.st_ino != st.st_ino || now.st_dev != st.st_dev) return Changed(rel, "was replaced");
    h.path += '/';
    h.type = EntryType::kDirectory;
    MF_TRY_VOID(Put(h));
    ++stats_.directories;
    if (opaque) {
      ++stats_.opaque_dirs;
      MF_TRY_VOID(WriteMarker(h.path + std::string(kOpaqueMarker), st.st_mtim.tv_sec));
    }
    return WalkDir(fd.get(), h.path);
  }
  if (S_ISREG(st.st_mode)) return WriteFileData(dir_fd, name, rel, st, h);
  if (S_ISLNK(st.st_mode)) {
    std::vector<char> target(static_cast<std::size_t>(st.st_size) + 1);
    for (;;) {
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n < 0) return SysError("readlink", rel, errno);
      if (static_cast<std::size_t>(n) < target.size()) {
        h.linkname.assign(target.data(), static_cast<std::size_t>(n));
        break;
      }
      target.resize(target.size() * 2);  // grew since lstat
    }
    h.type = EntryType::kSymlink;
    ++stats_.symlinks;
    return Put(h);
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    h.type = S_ISCHR(st.st_mode) ? EntryType::kCharDevice : EntryType::kBlockDevice;
    h.devmajor = major(st.st_rdev);
    h.devminor = minor(st.st_rdev);
  } else if (S_ISFIFO(st.st_mode)) {
    h.type = EntryType::kFifo;
  } else {
    return MakeError(ErrorKind::kInternal, "layer.diff.io",
                     "\"" + rel + "\" has an unknown file type");
  }
  ++stats_.special_files;
  return Put(h);
}

Expected<void> Walker::WriteFileData(int dir_fd, const std::string& name, const std::string& rel,
                                     const struct stat& st, TarHeader& h) {
  // O_NONBLOCK: if the file was swapped for a fifo since lstat, do not hang.
  Fd fd(RetryEintr([&] {
    return ::openat(dir_fd, name.c_str(),
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  }));
  if (fd.get() < 0) return SysError("open", rel, errno);
  struct stat now;
  if (::fstat(fd.get(), &now) != 0) return SysError("fstat", rel, errno);
  if (now.st_ino != st.st_ino || now.st_dev != st.st_dev || !S_ISREG(now.st_mode)) {
    return Changed(rel, "was replaced");
  }
  h.type = EntryType::kRegular;
  h.size = static_cast<std::uint64_t>(now.st_size);
  MF_TRY_VOID(Put(h));
  ++stats_.regular_files;
  // Holes (found with SEEK_DATA/SEEK_HOLE; filesystems without them report
  // one data extent) are written as zeros without reading them.
  const off_t size = now.st_size;
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(fd.get(), pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) data = size;  // only a hole up to the end
    if (data < 0) return SysError("lseek", rel, errno);
    data = std::min(data, size);
    MF_TRY_VOID(WriteZeros(static_cast<std::uint64_t>(data - pos)));
    pos = data;
    if (pos == size) break;
    off_t hole = ::lseek(fd.get(), pos, SEEK_HOLE);
    if (hole < 0 && errno == ENXIO) return Changed(rel, "shrank");
    if (hole < 0) return SysError("lseek", rel, errno);
    hole = std::min(hole, size);
    while (pos < hole) {
      std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(static_cast<std::uint64_t>(hole - pos), buffer_.size()));
      ssize_t n = RetryEintr([&] { return ::pread(fd.get(), buffer_.data(), want, pos); });
      if (n < 0) return SysError("read", rel, errno);
      if (n == 0) return Changed(rel, "shrank");
      MF_TRY_VOID(tar_.WriteData(std::string_view(buffer_.data(), static_cast<std::size_t>(n))));
      pos += n;
      stats_.data_bytes += static_cast<std::uint64_t>(n);
    }
  }
  if (::fstat(fd.get(), &now) != 0) return SysError("fstat", rel, errno);
  if (now.st_size != size) return Changed(rel, now.st_size > size ? "grew" : "shrank");
  return Ok();
}

Expected<void> Walker::WriteZeros(std::uint64_t count) {
  if (count == 0) return Ok();
  if (zeros_.empty()) zeros_.assign(kChunkBytes, '\0');
  while (count > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(count, zeros_.size()));
    MF_TRY_VOID(tar_.WriteData(std::string_view(zeros_.data(), n)));
    count -= n;
    stats_.data_bytes += n;
  }
  return Ok();
}

}  // namespace

Expected<DiffStats> WriteTree(int dir_fd, TarWriter& tar, const DiffOptions& options) {
  // Re-open for reading: the caller's fd may be O_PATH, which cannot list.
  Fd root(RetryEintr([&] { return ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); }));
  if (root.get() < 0) return SysError("open", "", errno);
  Walker walker(tar, options);
  MF_TRY_VOID(walker.WalkDir(root.get(), ""));
  MF_TRY_VOID(tar.Finish());
  return walker.stats();
}

Expected<DiffStats> WriteTree(const std::string& dir_path, TarWriter& tar,
                              const DiffOptions& options) {
  Fd dir(RetryEintr([&] { return ::open(dir_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); }));
  if (dir.get() < 0) return SysError("open", dir_path, errno);
  return WriteTree(dir.get(), tar, options);
}

}  // namespace manifold::layer
