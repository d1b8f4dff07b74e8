#include "coordinator/build/context_manifest.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crypto/sha256.h"
#include "common/fs/path.h"
#include "common/fs/unique_fd.h"

namespace manifold::coordinator {
namespace {

Error IoError(const std::string& what, int err) {
  return MakeError(ErrorKind::kInternal, "context.io", what + ": " + std::strerror(err));
}

Expected<std::string> HashFile(int dirfd, const char* name, const std::string& shown) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return IoError("open " + shown, errno);
  fs::UniqueFd guard(fd);
  crypto::Sha256 h;
  std::vector<char> buf(1 << 16);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("read " + shown, errno);
    }
    if (n == 0) break;
    h.Update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
  return "sha256:" + h.HexDigest();
}

Expected<void> Walk(int dirfd, const std::string& rel, const dockerfile::IgnoreMatcher* ignore,
                    std::vector<cache::SourceDigest>& out) {
  int dup = ::dup(dirfd);
  if (dup < 0) return IoError("dup", errno);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return IoError("opendir " + rel, errno);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string path = rel.empty() ? n : rel + "/" + n;
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return IoError("stat " + path, errno);
    bool excluded = ignore && ignore->Excluded(path);
    if (excluded && !(S_ISDIR(st.st_mode) && ignore->MayReincludeUnder(path))) continue;
    cache::SourceDigest s;
    s.path = path;
    s.mode = st.st_mode;
    s.uid = st.st_uid;
    s.gid = st.st_gid;
    if (S_ISREG(st.st_mode)) {
      MF_TRY(digest, HashFile(dirfd, n.c_str(), path));
      MF_TRY(dd, oci::ParseDigest(digest));
      s.digest = dd;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t len = ::readlinkat(dirfd, n.c_str(), target.data(), target.size());
      if (len < 0) return IoError("readlink " + path, errno);
      target.resize(static_cast<std::size_t>(len));
      s.link_target = target;
    }
    if (!excluded) out.push_back(s);
    if (S_ISDIR(st.st_mode)) {
      int sub = ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (sub < 0) return IoError("open " + path, errno);
      fs::UniqueFd sg(sub);
      MF_TRY_VOID(Walk(sub, path, ignore, out));
    }
  }
  return Ok();
}

bool HasGlob(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

}  // namespace

Expected<ContextManifest> ScanContext(const std::string& context_dir,
                                      const dockerfile::IgnoreMatcher* ignore) {
  int fd = ::open(context_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return MakeError(ErrorKind::kInvalidInput, "context.missing",
                     "build context \"" + context_dir + "\": " + std::strerror(errno));
  fs::UniqueFd guard(fd);
  ContextManifest m;
  MF_TRY_VOID(Walk(fd, "", ignore, m.entries));
  std::sort(m.entries.begin(), m.entries.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return m;
}

std::vector<cache::SourceDigest> SelectSources(const ContextManifest& m, const std::string& source) {
  std::string clean = fs::CleanRootedPath(source).substr(1);  // "" = the whole context
  std::string prefix;
  {
    std::string acc;
    std::size_t pos = 0;
    while (pos <= clean.size() && !clean.empty()) {
      auto slash = clean.find('/', pos);
      std::string comp = clean.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      if (HasGlob(comp)) break;
      acc = acc.empty() ? comp : acc + "/" + comp;
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    prefix = acc;
  }
  auto under = [&](const std::string& p) {
    return prefix.empty() || p == prefix || (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
                                             p[prefix.size()] == '/');
  };
  auto is_ancestor = [&](const std::string& p) {
    return prefix.size() > p.size() && prefix.compare(0, p.size(), p) == 0 && prefix[p.size()] == '/';
  };
  // A symlink is followed when it is the source or on the way to it (and,
  // for a pattern, when it may be one of the matches); below a copied
  // directory it is copied as a link, which its link_target covers.
  const bool glob = prefix != clean;
  std::vector<cache::SourceDigest> out;
  for (const auto& e : m.entries) {
    if (S_ISLNK(e.mode) &&
        (e.path == prefix || is_ancestor(e.path) || (glob && under(e.path))))
      return m.entries;
    if (under(e.path)) out.push_back(e);
  }
  return out;
}

}  // namespace manifold::coordinator
