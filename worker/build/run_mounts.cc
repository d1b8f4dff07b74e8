#include "worker/build/run_mounts.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/crypto/sha256.h"
#include "common/fs/root_dir.h"
#include "worker/build/stage_executor.h"
#include "worker/step/copy_step.h"

namespace manifold::worker {
namespace {

Error IoError(const std::string& what, int err) {
  return MakeError(ErrorKind::kInternal, "step.mount.io", what + ": " + std::strerror(err));
}

Expected<void> MkdirP(const std::string& path, mode_t mode) {
  std::string cur;
  std::size_t pos = 1;
  while (true) {
    std::size_t next = path.find('/', pos);
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return IoError("mkdir " + cur, errno);
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return Ok();
}

Expected<void> WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return IoError("create " + path, errno);
  fs::UniqueFd guard(fd);
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write " + path, errno);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) return IoError("chmod " + path, errno);
  return Ok();
}

void RemoveTree(const std::string& path) {
  // Only ever a path this worker created in its private state dir.
  auto slash = path.rfind('/');
  if (path.empty() || slash == std::string::npos || slash == 0) return;
  auto parent = fs::RootDir::Open(path.substr(0, slash));
  if (!parent.ok()) return;
  auto p = fs::Path::Parse(path.substr(slash + 1));
  if (!p.ok() || p->IsRoot()) return;
  auto r = parent->RemoveAll(*p);
  if (!r.ok()) MF_LOG_WARN("removing {}: {}", path, r.error().ToString());
}

bool IsAbs(const std::string& p) { return !p.empty() && p[0] == '/'; }

}  // namespace

std::string CacheMountDir(const std::string& state_dir, const std::string& id) {
  crypto::Sha256 h;
  h.Update(id);
  return state_dir + "/cache-mounts/" + h.HexDigest();
}

RunMounts::RunMounts(WorkerEnv& env, const wire::StageJobData& job, const BuildSession* session,
                     int step)
    : env_(env), job_(job), session_(session), step_(step) {}

RunMounts::~RunMounts() {
  if (!finished_) {
    for (auto& v : views_) (void)v.Discard();
    RemoveTree(step_dir_);
  }
}

Expected<std::string> RunMounts::StepDir() {
  if (!step_dir_.empty()) return step_dir_;
  std::string base = env_.state_dir + "/steps";
  MF_TRY_VOID(MkdirP(base, 0700));
  std::string tmpl = base + "/" + job_.job_id.substr(0, 40) + "-" + std::to_string(step_) + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return IoError("mkdtemp " + tmpl, errno);
  step_dir_ = buf.data();
  return step_dir_;
}

Expected<std::string> RunMounts::AddScript(const std::string& name, const std::string& data) {
  if (!fs::IsValidComponent(name))
    return MakeError(ErrorKind::kInvalidInput, "step.heredoc.name",
                     "invalid heredoc name \"" + name + "\"");
  MF_TRY(dir, StepDir());
  std::string path = dir + "/script-" + std::to_string(counter_++);
  MF_TRY_VOID(WriteFile(path, data, 0755));
  std::string target = "/dev/pipes/" + name;
  mounts_.push_back(Mount{Mount::Type::kBind, path, target, true, 0});
  return target;
}

Expected<void> RunMounts::AddMountSpec(const std::string& text, InputMounter& mounter) {
  MF_TRY(m, dockerfile::ParseExpandedMount(text));  // expanded at plan time
  if (m.type == "ssh")
    return MakeError(ErrorKind::kUnimplemented, "step.mount.ssh",
                     "RUN --mount=type=ssh is not supported yet");
  if (m.type == "tmpfs") {
    if (!IsAbs(m.target))
      return MakeError(ErrorKind::kInvalidInput, "step.mount.target",
                       "mount target \"" + m.target + "\" must be absolute");
    mounts_.push_back(Mount{Mount::Type::kTmpfs, "", m.target, false,
                            static_cast<std::uint64_t>(m.size_bytes)});
    return Ok();
  }
  if (m.type == "secret") return AddSecret(m);
  if (m.type == "cache") return AddCache(m, mounter);
  if (m.type == "bind") return AddBind(m, mounter);
  return MakeError(ErrorKind::kInvalidInput, "step.mount.type",
                   "unsupported mount type \"" + m.type + "\"");
}

Expected<void> RunMounts::AddSecret(const dockerfile::MountSpec& m) {
  std::string id = m.id;
  if (id.empty() && !m.target.empty()) id = m.target.substr(m.target.rfind('/') + 1);
  if (id.empty())
    return MakeError(ErrorKind::kInvalidInput, "step.secret.id", "secret mount needs an id");
  const std::string* data = nullptr;
  if (session_) {
    auto it = session_->secrets.find(id);
    if (it != session_->secrets.end()) data = &it->second;
  }
  if (!data) {
    if (m.required)
      return MakeError(ErrorKind::kInvalidInput, "step.secret.missing",
                       "secret " + id + " not found (give it with --secret id=" + id +
                           ",src=FILE)");
    return Ok();
  }
  if (m.env) env_vars_[*m.env] = *data;
  if (m.env && m.target.empty()) return Ok();
  std::string target = m.target.empty() ? "/run/secrets/" + id : m.target;
  if (!IsAbs(target))
    return MakeError(ErrorKind::kInvalidInput, "step.mount.target",
                     "secret target \"" + target + "\" must be absolute");
  MF_TRY(dir, StepDir());
  std::string path = dir + "/secret-" + std::to_string(counter_++);
  MF_TRY_VOID(WriteFile(path, *data, m.mode.value_or(0400)));
  if (::chown(path.c_str(), m.uid.value_or(0), m.gid.value_or(0)) != 0)
    return IoError("chown " + path, errno);
  mounts_.push_back(Mount{Mount::Type::kBind, path, target, true, 0});
  return Ok();
}

Expected<std::string> RunMounts::CopyInto(const fs::RootDir& src_root, bool keep_owners,
                                          const std::string& source, const std::string& dir) {
  MF_TRY_VOID(MkdirP(dir, 0755));
  MF_TRY(dest, fs::RootDir::Open(dir));
  MF_TRY(sp, fs::Path::Parse(source));
  MF_TRY(st, src_root.Stat(sp));
  CopySource src;
  src.root = &src_root;
  src.keep_owners = keep_owners;
  if (!keep_owners && session_ && session_->ignore) src.ignore = &*session_->ignore;
  dockerfile::Instruction in;
  in.cmd = dockerfile::Cmd::kCopy;
  in.args = {sp.IsRoot() ? "." : sp.str()};
  in.dest = "/";
  MF_TRY_VOID(Copy(src, dest, "/", in));
  if (S_ISDIR(st.st_mode)) return dir;
  return dir + "/" + std::string(sp.Base());
}

Expected<void> RunMounts::AddBind(const dockerfile::MountSpec& m, InputMounter& mounter) {
  if (!IsAbs(m.target))
    return MakeError(ErrorKind::kInvalidInput, "step.mount.target",
                     "mount target \"" + m.target + "\" must be absolute");
  MF_TRY(dir, StepDir());
  std::string copy_dir = dir + "/bind-" + std::to_string(counter_++);
  std::string source = m.source.empty() ? "/" : m.source;
  if (m.from.empty()) {
    // The context: always a filtered copy, so .dockerignore'd files stay
    // invisible and writes (rw) never reach the user's files.
    if (!session_)
      return MakeError(ErrorKind::kInternal, "step.session.missing", "no build context");
    MF_TRY(ctx, fs::RootDir::Open(session_->context_dir));
    auto path = CopyInto(ctx, false, source, copy_dir);
    if (!path.ok())
      return std::move(path).error().With("mount source \"" + source + "\" in the context");
    mounts_.push_back(Mount{Mount::Type::kBind, *path, m.target, m.readonly, 0});
    return Ok();
  }
  MF_TRY(view, mounter.MountFrom(m.from));
  auto path = [&]() -> Expected<std::string> {
    MF_TRY(root, fs::RootDir::Open(view.rootfs()));
    return CopyInto(root, true, source, copy_dir);
  }();
  (void)view.Discard();
  if (!path.ok())
    return std::move(path).error().With("mount source \"" + source + "\" from " + m.from);
  mounts_.push_back(Mount{Mount::Type::kBind, *path, m.target, m.readonly, 0});
  return Ok();
}

Expected<void> RunMounts::AddCache(const dockerfile::MountSpec& m, InputMounter& mounter) {
  if (!IsAbs(m.target))
    return MakeError(ErrorKind::kInvalidInput, "step.mount.target",
                     "mount target \"" + m.target + "\" must be absolute");
  std::string id = m.id.empty() ? m.target : m.id;
  std::string dir = CacheMountDir(env_.state_dir, id);
  MF_TRY_VOID(MkdirP(env_.state_dir + "/cache-mounts", 0700));
  int lfd = ::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0) return IoError("open " + dir + ".lock", errno);
  fs::UniqueFd lock(lfd);
  // shared: many steps at once; locked: one at a time, the others wait;
  // private: the first user gets the cache, a concurrent one a fresh empty
  // directory of its own, discarded after the step (BuildKit's semantics).
  int op = m.sharing == "locked" || m.sharing == "private" ? LOCK_EX : LOCK_SH;
  if (m.sharing == "private") {
    if (::flock(lfd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) return IoError("flock " + dir + ".lock", errno);
      MF_TRY(step_dir, StepDir());
      std::string fresh = step_dir + "/cache-" + std::to_string(counter_++);
      if (::mkdir(fresh.c_str(), m.mode.value_or(0755)) != 0) return IoError("mkdir " + fresh, errno);
      if (::chown(fresh.c_str(), m.uid.value_or(0), m.gid.value_or(0)) != 0)
        return IoError("chown " + fresh, errno);
      mounts_.push_back(Mount{Mount::Type::kBind, fresh, m.target, false, 0});
      return Ok();
    }
  } else {
    while (::flock(lfd, op) != 0)
      if (errno != EINTR) return IoError("flock " + dir + ".lock", errno);
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    // First use: made under an exclusive lock so it is seeded exactly once.
    if (op == LOCK_SH) {
      ::flock(lfd, LOCK_UN);
      while (::flock(lfd, LOCK_EX) != 0)
        if (errno != EINTR) return IoError("flock " + dir + ".lock", errno);
    }
    if (::lstat(dir.c_str(), &st) != 0) {
      std::string tmp = dir + ".new";
      RemoveTree(tmp);
      if (!m.from.empty()) {
        MF_TRY(view, mounter.MountFrom(m.from));
        auto copied = [&]() -> Expected<std::string> {
          MF_TRY(root, fs::RootDir::Open(view.rootfs()));
          return CopyInto(root, true, m.source.empty() ? "/" : m.source, tmp);
        }();
        (void)view.Discard();
        if (!copied.ok()) return std::move(copied).error();
      } else if (::mkdir(tmp.c_str(), 0755) != 0) {
        return IoError("mkdir " + tmp, errno);
      }
      if (::chmod(tmp.c_str(), m.mode.value_or(0755)) != 0) return IoError("chmod " + tmp, errno);
      if (::chown(tmp.c_str(), m.uid.value_or(0), m.gid.value_or(0)) != 0)
        return IoError("chown " + tmp, errno);
      if (::rename(tmp.c_str(), dir.c_str()) != 0) return IoError("rename " + dir, errno);
    }
    if (op == LOCK_SH) {
      while (::flock(lfd, LOCK_SH) != 0)
        if (errno != EINTR) return IoError("flock " + dir + ".lock", errno);
    }
  }
  locks_.push_back(std::move(lock));
  mounts_.push_back(Mount{Mount::Type::kBind, dir, m.target, m.readonly && false, 0});
  return Ok();
}

Expected<void> RunMounts::AddVolume(const std::string& spec) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (true) {
    auto c = spec.find(':', pos);
    parts.push_back(spec.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || !IsAbs(parts[0]) || !IsAbs(parts[1]) ||
      (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw"))
    return MakeError(ErrorKind::kInvalidInput, "step.volume",
                     "invalid --volume \"" + spec + "\": want HOST:CONTAINER[:ro|rw] with absolute paths");
  struct stat st {};
  if (::stat(parts[0].c_str(), &st) != 0)
    return MakeError(ErrorKind::kInvalidInput, "step.volume",
                     "--volume " + spec + ": " + parts[0] + ": " + std::strerror(errno));
  mounts_.push_back(
      Mount{Mount::Type::kBind, parts[0], parts[1], parts.size() == 3 && parts[2] == "ro", 0});
  return Ok();
}

Expected<void> RunMounts::Finish(const fs::RootDir& rootfs) {
  (void)rootfs;
  if (finished_) return Ok();
  finished_ = true;
  locks_.clear();
  Expected<void> result = Ok();
  for (auto& v : views_) {
    auto r = v.Discard();
    if (!r.ok() && result.ok()) result = std::move(r).error();
  }
  views_.clear();
  RemoveTree(step_dir_);
  return result;
}

}  // namespace manifold::worker
