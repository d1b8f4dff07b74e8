#include "common/wire/context_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/base/unique_fd.h"

namespace manifold::wire {
namespace {

Error Io(const std::string& what) {
  return MakeError(ErrorKind::kInternal, "context.io", what + ": " + std::strerror(errno));
}

timespec Ts(std::int64_t ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  t.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return t;
}

/// Every parent of `rel` under `dir` must be a real directory (created when
/// missing), never a symlink.
Expected<void> Parents(const std::string& dir, const std::string& rel) {
  std::string cur = dir;
  std::size_t start = 0;
  while (true) {
    auto slash = rel.find('/', start);
    if (slash == std::string::npos) return Ok();
    cur += "/" + rel.substr(start, slash - start);
    struct stat st {};
    if (::lstat(cur.c_str(), &st) != 0) {
      if (::mkdir(cur.c_str(), 0755) != 0) return Io("mkdir " + cur);
    } else if (!S_ISDIR(st.st_mode)) {
      return MakeError(ErrorKind::kSecurity, "context.path",
                       "context entry \"" + rel + "\" lies under \"" + cur.substr(dir.size() + 1) +
                           "\", which is not a directory");
    }
    start = slash + 1;
  }
}

}  // namespace

Expected<void> MaterializeContext(const std::string& dir, const std::vector<ContextFileData>& files,
                                  cas::LocalBlobStore& blobs) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (::mkdir(dir.c_str(), 0755) != 0) return Io("mkdir " + dir);
  return AddToContext(dir, files, blobs);
}

Expected<void> AddToContext(const std::string& dir, const std::vector<ContextFileData>& files,
                            cas::LocalBlobStore& blobs) {
  const bool root = ::geteuid() == 0;
  std::vector<const ContextFileData*> dirs;
  for (const auto& f : files) {
    MF_TRY_VOID(Parents(dir, f.path));
    std::string path = dir + "/" + f.path;
    const mode_t perm = f.mode & 07777;
    if (S_ISDIR(f.mode)) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        if (::mkdir(path.c_str(), 0755) != 0) return Io("mkdir " + path);
      } else if (!S_ISDIR(st.st_mode)) {
        return MakeError(ErrorKind::kSecurity, "context.path", "context entry \"" + f.path + "\" is listed twice");
      }
      dirs.push_back(&f);
      continue;
    }
    if (S_ISLNK(f.mode)) {
      if (::symlink(f.link_target.c_str(), path.c_str()) != 0) return Io("symlink " + path);
      if (root && ::lchown(path.c_str(), f.uid, f.gid) != 0) return Io("lchown " + path);
      timespec ts[2] = {Ts(f.mtime_ns), Ts(f.mtime_ns)};
      ::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      continue;
    }
    if (!S_ISREG(f.mode)) continue;  // sockets, fifos and devices are not sent
    MF_TRY(src_path, blobs.BlobPath(f.digest));
    UniqueFd in(::open(src_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) {
      if (errno == ENOENT) return cas::NotFoundError(f.digest);
      return Io("open " + src_path);
    }
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out.get() < 0) return Io("create " + path);
    char buf[1 << 16];
    while (true) {
      ssize_t n = ::read(in.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Io("read " + src_path);
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(out.get(), buf + off, static_cast<std::size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Io("write " + path);
        off += w;
      }
    }
    if (root && ::fchown(out.get(), f.uid, f.gid) != 0) return Io("chown " + path);
    if (::fchmod(out.get(), perm) != 0) return Io("chmod " + path);
    timespec ts[2] = {Ts(f.mtime_ns), Ts(f.mtime_ns)};
    ::futimens(out.get(), ts);
  }
  // Directories last and deepest first, so creating children does not touch
  // the times set.
  std::sort(dirs.begin(), dirs.end(), [](auto* a, auto* b) { return a->path > b->path; });
  for (const auto* d : dirs) {
    std::string path = dir + "/" + d->path;
    if (root && ::lchown(path.c_str(), d->uid, d->gid) != 0) return Io("chown " + path);
    if (::chmod(path.c_str(), d->mode & 07777) != 0) return Io("chmod " + path);
    timespec ts[2] = {Ts(d->mtime_ns), Ts(d->mtime_ns)};
    ::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }
  return Ok();
}

}  // namespace manifold::wire
