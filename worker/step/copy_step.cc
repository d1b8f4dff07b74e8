#include "worker/step/copy_step.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/dockerfile/dockerignore.h"
#include "common/dockerfile/instruction.h"
#include "common/fs/dir.h"
#include "common/fs/errno_error.h"
#include "common/fs/path.h"
#include "common/fs/root_dir.h"
#include "common/layer/byte_stream.h"
#include "common/layer/tar_reader.h"
#include "worker/step/archive_source.h"
#include "worker/step/in_root.h"
#include "worker/step/user_db.h"

namespace manifold::worker {
namespace {

using dockerfile::IgnoreMatcher;

Error Invalid(std::string code, std::string message) {
  return MakeError(ErrorKind::kInvalidInput, std::move(code), std::move(message));
}

bool HasMeta(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

// Go's path.Clean of a rooted path: ".." at the root stays at the root.
Expected<fs::Path> CleanRooted(std::string_view raw) { return fs::Path::Parse(fs::CleanRootedPath(raw)); }

class Copier {
 public:
  Copier(const CopySource& src, const fs::RootDir& dest, const dockerfile::Instruction& in,
         const CopyOptions& options)
      : src_(src), dest_(dest), in_(in), options_(options), root_(geteuid() == 0) {}

  Expected<CopyStats> Run(const std::string& workdir);

 private:
  Expected<std::vector<fs::Path>> Expand(const std::string& raw);
  Expected<void> Glob(const fs::Path& base, const std::vector<std::string_view>& comps,
                      std::size_t i, std::vector<fs::Path>& out);
  bool Ignored(const fs::Path& p) const {
    return src_.ignore && !p.IsRoot() && src_.ignore->Excluded(p.str());
  }
  Expected<bool> IsDirInDest(const fs::Path& p);
  Expected<fs::Dir> MkdirAllDest(const fs::Path& p);
  Expected<void> CopyTop(const fs::Path& source, bool dest_is_dir);
  Expected<void> CopyTree(const fs::Dir& from, const fs::Dir& to, const fs::Path& to_path,
                          const std::string& rel);
  Expected<void> CopyEntry(const fs::Dir& from_dir, std::string_view from_name, int data_fd,
                           const struct stat& st, const fs::Dir& to_dir,
                           const fs::Path& to_path, const std::string& rel);
  Expected<void> SetMeta(const fs::Dir& dir, std::string_view name, const struct stat& st,
                         int fd);
  Expected<bool> TryExtract(const fs::Path& source, const fs::Path& dest_dir);
  Expected<void> WriteHeredoc(const dockerfile::HeredocSource& h, bool dest_is_dir);

  const CopySource& src_;
  const fs::RootDir& dest_;
  const dockerfile::Instruction& in_;
  const CopyOptions& options_;
  bool root_;
  fs::Path dest_path_;
  std::optional<UidGid> chown_;
  std::optional<IgnoreMatcher> exclude_;
  std::unordered_map<fs::FileKey, fs::Path, fs::FileKeyHash> links_;
  CopyStats stats_;
};

Expected<CopyStats> Copier::Run(const std::string& workdir) {
  const char* name = in_.cmd == dockerfile::Cmd::kAdd ? "ADD" : "COPY";
  std::size_t n_sources = in_.args.size() + in_.heredoc_sources.size();
  if (n_sources == 0) return Invalid("copy.source.none", "no source files were specified");
  for (const auto& a : in_.args) {
    if (in_.cmd == dockerfile::Cmd::kAdd &&
        (a.starts_with("http://") || a.starts_with("https://") || a.starts_with("git@")))
      return MakeError(ErrorKind::kUnimplemented, "step.add.url",
                       "ADD from a URL (" + a + ") is fetched by the URL source, not copy_step");
  }
  const std::string& d = in_.dest;
  bool dest_is_dir = d.ends_with("/") || d == "." || d.ends_with("/.") || d.empty();
  std::string full = d.starts_with("/") ? d : "/" + workdir + "/" + d;
  MF_TRY(dest_path, CleanRooted(full));
  dest_path_ = dest_path;
  if (n_sources > 1 && !dest_is_dir)
    return Invalid("copy.dest.not_dir", std::string("When using ") + name +
                                            " with more than one source file, the destination "
                                            "must be a directory and end with a /");
  if (!in_.chown.empty()) {
    MF_TRY(ug, ResolveChown(dest_, in_.chown));
    chown_ = ug;
  }
  if (!in_.chmod.empty()) MF_TRY_VOID(ApplyChmod(in_.chmod, 0, false));
  if (!in_.excludes.empty()) {
    MF_TRY(m, IgnoreMatcher::FromPatterns(in_.excludes));
    exclude_ = std::move(m);
  }
  // Resolve every source before writing anything.
  std::vector<std::pair<fs::Path, bool>> work;  // path, dest is a directory
  for (const auto& raw : in_.args) {
    MF_TRY(matches, Expand(raw));
    bool dir = dest_is_dir || matches.size() > 1 || in_.parents;
    for (auto& m : matches) work.emplace_back(std::move(m), dir);
  }
  for (const auto& [path, dir] : work) MF_TRY_VOID(CopyTop(path, dir));
  for (const auto& h : in_.heredoc_sources) MF_TRY_VOID(WriteHeredoc(h, dest_is_dir));
  return stats_;
}

Expected<std::vector<fs::Path>> Copier::Expand(const std::string& raw) {
  std::string_view view = raw;
  auto parsed = fs::Path::Parse(view);
  if (!parsed.ok()) {
    if (parsed.error().code == "fs.path.escape")
      return Invalid("copy.source.outside_context",
                     "source \"" + raw + "\" is outside the build context");
    return std::move(parsed).error();
  }
  std::vector<fs::Path> out;
  if (!HasMeta(parsed->str())) {
    auto st = OpenInRoot(*src_.root, *parsed, O_PATH);
    if (!st.ok() || Ignored(*parsed)) {
      if (st.ok() || st.error().code == "fs.not_found" || st.error().code == "fs.not_dir")
        return Invalid("copy.source.not_found", "\"/" + parsed->str() + "\": not found");
      return std::move(st).error();
    }
    out.push_back(*parsed);
    return out;
  }
  MF_TRY_VOID(Glob(fs::Path(), parsed->Components(), 0, out));
  if (out.empty())
    return Invalid("copy.source.not_found",
                   "\"" + raw + "\": no source files were specified");
  return out;
}

Expected<void> Copier::Glob(const fs::Path& base, const std::vector<std::string_view>& comps,
                            std::size_t i, std::vector<fs::Path>& out) {
  if (i == comps.size()) {
    if (Ignored(base)) return Ok();
    auto fd = OpenInRoot(*src_.root, base, O_PATH);
    if (fd.ok()) out.push_back(base);
    return Ok();
  }
  if (!HasMeta(comps[i])) {
    MF_TRY(next, base.Join(comps[i]));
    return Glob(next, comps, i + 1, out);
  }
  auto dir = src_.root->TryOpenDir(base);
  if (!dir.ok() || !*dir) return Ok();  // not a directory: no match, as Go's Glob
  std::vector<std::string> names;
  MF_TRY_VOID((*dir)->ForEachChild([&](std::string_view n) -> Expected<void> {
    MF_TRY(m, MatchComponent(comps[i], n));
    if (m) names.emplace_back(n);
    return Ok();
  }));
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    MF_TRY(next, base.Join(n));
    MF_TRY_VOID(Glob(next, comps, i + 1, out));
  }
  return Ok();
}

Expected<bool> Copier::IsDirInDest(const fs::Path& p) {
  MF_TRY(d, dest_.TryOpenDir(p));
  return d.has_value();
}

// Like RootDir::MkdirAll, but created directories get the copy's owner.
Expected<fs::Dir> Copier::MkdirAllDest(const fs::Path& p) {
  for (std::size_t i = 1; i <= p.Depth(); ++i) {
    fs::Path prefix = p.Prefix(i);
    MF_TRY(d, dest_.TryOpenDir(prefix));
    if (d) continue;
    MF_TRY(st, dest_.TryStat(prefix));
    // A file where a directory must be is replaced; a dangling symlink is
    // not (Mkdir then fails with fs.exists).
    if (st && !S_ISLNK(st->st_mode)) MF_TRY_VOID(dest_.RemoveAll(prefix));
    MF_TRY_VOID(dest_.Mkdir(prefix, 0755));
    ++stats_.directories;
    if (root_) {
      UidGid owner = chown_.value_or(UidGid{});
      MF_TRY_VOID(dest_.Lchown(prefix, owner.uid, owner.gid));
    }
  }
  return dest_.OpenDir(p);
}

Expected<void> Copier::CopyTop(const fs::Path& source, bool dest_is_dir) {
  MF_TRY(fd, OpenInRoot(*src_.root, source, O_PATH));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return fs::ErrnoError("fstat", source.str(), errno);
  if (exclude_ && !source.IsRoot() && exclude_->Excluded(source.str())) return Ok();
  fs::Path target = dest_path_;
  if (in_.parents) {
    for (auto c : source.Components()) {
      MF_TRY(t, target.Join(c));
      target = t;
    }
  }
  if (S_ISDIR(st.st_mode)) {
    fs::Dir from(std::move(fd), source.IsRoot() ? "." : source.str());
    MF_TRY(existed, IsDirInDest(target));
    MF_TRY(to, MkdirAllDest(target));
    MF_TRY_VOID(CopyTree(from, to, target, ""));
    // A destination directory this copy created takes the source's metadata;
    // an existing one keeps its own.
    if (!existed && !target.IsRoot()) {
      MF_TRY(parent, dest_.OpenDir(target.Parent()));
      MF_TRY_VOID(SetMeta(parent, target.Base(), st, -1));
    }
    return Ok();
  }
  if (in_.cmd == dockerfile::Cmd::kAdd && S_ISREG(st.st_mode)) {
    MF_TRY(extracted, TryExtract(source, in_.parents ? target.Parent() : dest_path_));
    if (extracted) return Ok();
  }
  if (!in_.parents) {
    bool into = dest_is_dir || target.IsRoot();
    if (!into) {
      MF_TRY(is_dir, IsDirInDest(target));
      into = is_dir;
    }
    if (into) {
      MF_TRY(t, target.Join(source.Base()));
      target = t;
    }
  }
  if (target.IsRoot()) return Invalid("copy.dest.root", "cannot copy a file onto /");
  MF_TRY(to_dir, MkdirAllDest(target.Parent()));
  UniqueFd data;
  if (S_ISREG(st.st_mode)) {
    MF_TRY(rfd, OpenInRoot(*src_.root, source, O_RDONLY | O_NONBLOCK));
    struct stat again;
    if (fstat(rfd.get(), &again) != 0 || again.st_ino != st.st_ino || again.st_dev != st.st_dev)
      return MakeError(ErrorKind::kTransient, "copy.source.changed",
                       "source \"" + source.str() + "\" changed while being copied");
    data = std::move(rfd);
  }
  // The source was resolved through symlinks, so it is never a symlink here.
  fs::Dir none(UniqueFd(), "");
  return CopyEntry(none, source.str(), data.get(), st, to_dir, target, std::string(source.Base()));
}

Expected<void> Copier::CopyTree(const fs::Dir& from, const fs::Dir& to, const fs::Path& to_path,
                                const std::string& rel) {
  std::vector<std::string> names;
  MF_TRY_VOID(from.ForEachChild([&](std::string_view n) -> Expected<void> {
    names.emplace_back(n);
    return Ok();
  }));
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string child_rel = rel.empty() ? n : rel + "/" + n;
    if (exclude_ && exclude_->Excluded(child_rel)) continue;
    if (src_.ignore) {
      std::string ctx_rel = from.label() == "." ? n : from.label() + "/" + n;
      if (src_.ignore->Excluded(ctx_rel) && !src_.ignore->MayReincludeUnder(ctx_rel)) continue;
    }
    MF_TRY(st, from.Stat(n));
    MF_TRY(child_path, to_path.Join(n));
    UniqueFd data;
    if (S_ISREG(st.st_mode)) {
      MF_TRY(rfd, from.OpenFile(n, O_RDONLY | O_NONBLOCK));
      struct stat again;
      if (fstat(rfd.get(), &again) != 0 || again.st_ino != st.st_ino)
        return MakeError(ErrorKind::kTransient, "copy.source.changed",
                         "source \"" + from.label() + "/" + n + "\" changed while being copied");
      data = std::move(rfd);
    }
    MF_TRY_VOID(CopyEntry(from, n, data.get(), st, to, child_path, child_rel));
  }
  return Ok();
}

Expected<void> Copier::CopyEntry(const fs::Dir& from_dir, std::string_view from_name,
                                 int data_fd, const struct stat& st, const fs::Dir& to_dir,
                                 const fs::Path& to_path, const std::string& rel) {
  std::string_view name = to_path.Base();
  MF_TRY(existing, to_dir.TryStat(name));
  bool merge_dir = existing && S_ISDIR(existing->st_mode) && S_ISDIR(st.st_mode);
  if (existing && !merge_dir) MF_TRY_VOID(to_dir.RemoveAll(name));

  if (S_ISDIR(st.st_mode)) {
    if (!merge_dir) MF_TRY_VOID(to_dir.Mkdir(name, 0700));
    ++stats_.directories;
    MF_TRY(child_from, from_dir.OpenDir(from_name));
    MF_TRY(child_to, to_dir.OpenDir(name));
    MF_TRY_VOID(CopyTree(child_from, child_to, to_path, rel));
    return SetMeta(to_dir, name, st, -1);
  }
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    auto it = links_.find(fs::KeyOf(st));
    if (it != links_.end()) {
      MF_TRY_VOID(dest_.Link(to_path, it->second));
      ++stats_.hardlinks;
      return Ok();
    }
    links_.emplace(fs::KeyOf(st), to_path);
  }
  if (S_ISREG(st.st_mode)) {
    MF_TRY(out, to_dir.OpenFile(name, O_WRONLY | O_CREAT | O_EXCL, 0600));
    char buf[65536];
    for (;;) {
      ssize_t n = read(data_fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fs::ErrnoError("read", from_dir.label() + "/" + std::string(from_name), errno);
      if (n == 0) break;
      MF_TRY_VOID(layer::FdSink(out.get()).Write(std::string_view(buf, static_cast<std::size_t>(n))));
      stats_.bytes += static_cast<std::uint64_t>(n);
    }
    ++stats_.files;
    return SetMeta(to_dir, name, st, out.get());
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
    ssize_t n = readlinkat(from_dir.fd(), std::string(from_name).c_str(), target.data(), target.size());
    if (n < 0) return fs::ErrnoError("readlink", from_dir.label() + "/" + std::string(from_name), errno);
    if (static_cast<std::size_t>(n) >= target.size())
      return MakeError(ErrorKind::kTransient, "copy.source.changed", "symlink changed while being copied");
    target.resize(static_cast<std::size_t>(n));
    MF_TRY_VOID(to_dir.Symlink(name, target));
    ++stats_.symlinks;
    return SetMeta(to_dir, name, st, -1);
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
    if (!root_) {
      ++stats_.skipped;
      return Ok();
    }
    MF_TRY_VOID(to_dir.Mknod(name, st.st_mode, st.st_rdev));
    ++stats_.devices;
    return SetMeta(to_dir, name, st, -1);
  }
  ++stats_.skipped;  // sockets
  return Ok();
}

Expected<void> Copier::SetMeta(const fs::Dir& dir, std::string_view name, const struct stat& st,
                               int fd) {
  if (root_) {
    UidGid owner = chown_ ? *chown_
                          : (src_.keep_owners ? UidGid{st.st_uid, st.st_gid} : UidGid{});
    MF_TRY_VOID(dir.Lchown(name, owner.uid, owner.gid));
  }
  if (!S_ISLNK(st.st_mode)) {
    std::uint32_t mode = st.st_mode & 07777;
    if (!in_.chmod.empty()) {
      MF_TRY(m, ApplyChmod(in_.chmod, mode, S_ISDIR(st.st_mode)));
      mode = m;
    }
    if (fd >= 0) {
      if (fchmod(fd, mode) != 0) return fs::ErrnoError("chmod", name, errno);
    } else {
      MF_TRY_VOID(dir.Chmod(name, mode));
    }
  }
  return dir.SetTimes(name, st.st_atim, st.st_mtim);
}

Expected<bool> Copier::TryExtract(const fs::Path& source, const fs::Path& dest_dir) {
  MF_TRY(fd, OpenInRoot(*src_.root, source, O_RDONLY | O_NONBLOCK));
  char head[8] = {};
  ssize_t n = pread(fd.get(), head, sizeof(head), 0);
  if (n < 0) return fs::ErrnoError("read", source.str(), errno);
  ArchiveCompression c = DetectArchiveCompression(std::string_view(head, static_cast<std::size_t>(n)));
  {
    layer::FdSource raw(fd.get());
    auto dec = NewArchiveDecompressor(c, raw);
    if (!dec.ok()) return false;
    auto reader = layer::TarReader::Open(**dec);
    if (!reader.ok()) return false;
    auto first = (*reader)->Next();
    if (!first.ok() || !*first) return false;  // not a tar, or an empty one: copied as a file
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return fs::ErrnoError("seek", source.str(), errno);
  MF_TRY(dir, MkdirAllDest(dest_dir));
  // layer::Apply needs a RootDir; re-open the directory we resolved inside
  // dest_ through our own descriptor (trusted: it is ours, not input).
  MF_TRY(sub, fs::RootDir::Open("/proc/self/fd/" + std::to_string(dir.fd())));
  layer::FdSource raw(fd.get());
  std::unique_ptr<layer::ByteSource> plain;
  layer::ByteSource* input = &raw;
  if (c == ArchiveCompression::kBzip2 || c == ArchiveCompression::kXz) {
    MF_TRY(d, NewArchiveDecompressor(c, raw));
    plain = std::move(d);
    input = plain.get();
  }
  MF_TRY(applied, layer::Apply(sub, *input, options_.extract).With("extracting \"" + source.str() + "\""));
  stats_.files += applied.files;
  stats_.directories += applied.directories;
  stats_.symlinks += applied.symlinks;
  stats_.hardlinks += applied.hardlinks;
  stats_.devices += applied.devices;
  ++stats_.archives;
  return true;
}

Expected<void> Copier::WriteHeredoc(const dockerfile::HeredocSource& h, bool dest_is_dir) {
  if (!fs::IsValidComponent(h.name))
    return Invalid("copy.heredoc.name", "invalid heredoc name \"" + h.name + "\"");
  fs::Path target = dest_path_;
  bool into = dest_is_dir || target.IsRoot();
  if (!into) {
    MF_TRY(is_dir, IsDirInDest(target));
    into = is_dir;
  }
  if (into) {
    MF_TRY(t, target.Join(h.name));
    target = t;
  }
  MF_TRY(dir, MkdirAllDest(target.Parent()));
  MF_TRY(existing, dir.TryStat(target.Base()));
  if (existing) MF_TRY_VOID(dir.RemoveAll(target.Base()));
  MF_TRY(out, dir.OpenFile(target.Base(), O_WRONLY | O_CREAT | O_EXCL, 0600));
  MF_TRY_VOID(layer::FdSink(out.get()).Write(h.data));
  struct stat st;
  if (fstat(out.get(), &st) != 0) return fs::ErrnoError("fstat", target.str(), errno);
  st.st_mode = S_IFREG | 0644;
  st.st_uid = 0;
  st.st_gid = 0;
  ++stats_.files;
  stats_.bytes += h.data.size();
  return SetMeta(dir, target.Base(), st, out.get());
}

}  // namespace

Expected<CopyStats> Copy(const CopySource& src, const fs::RootDir& dest_root,
                         const std::string& workdir, const dockerfile::Instruction& in,
                         const CopyOptions& options) {
  MF_ASSERT(src.root != nullptr, "CopySource without a root");
  Copier copier(src, dest_root, in, options);
  return copier.Run(workdir);
}

}  // namespace manifold::worker
