#include "worker/executor/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace manifold::worker {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kCommandOutputBytes = 64 * 1024;
// After the child exited, output still buffered in the pipe is read; a
// grandchild that kept the pipe open is not waited for longer than this.
constexpr int kDrainGraceMs = 2000;
// Without pidfd_open (Linux < 5.3) the child's exit is polled this often.
constexpr int kPollFallbackMs = 50;

Error SpawnError(std::string_view what, int err) {
  return MakeError(ErrorKind::kInternal, "executor.spawn",
                   std::string(what) + ": " + std::strerror(err));
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

int MsUntil(Subprocess::Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Subprocess::Clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

// In the forked child: only async-signal-safe calls until execve.
[[noreturn]] void ExecChild(int devnull, int out_w, int err_w, char* const* argv, char* const* envp,
                            const struct rlimit* nofile) {
  // Lift the three fds above the standard ones so dup2 cannot clobber one of
  // them (the parent may have had 0-2 closed).
  const int in_hi = fcntl(devnull, F_DUPFD, 10);
  const int out_hi = fcntl(out_w, F_DUPFD, 10);
  const int err_hi = fcntl(err_w, F_DUPFD, 10);
  if (in_hi < 0 || out_hi < 0 || err_hi < 0) _exit(127);
  if (dup2(in_hi, 0) < 0 || dup2(out_hi, 1) < 0 || dup2(out_hi, 2) < 0 || dup2(err_hi, 3) < 0) {
    _exit(127);
  }
  // fd 3 reports an exec failure to the parent; CLOEXEC closes it on success.
  if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) _exit(127);
  // Everything else goes: whatever another thread opened without O_CLOEXEC,
  // the worker's sockets, the CAS files. runc sees exactly 0, 1 and 2.
  if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
    for (int fd = 4; fd < 65536; ++fd) close(fd);
  }
  setpgid(0, 0);  // terminal signals aimed at the worker do not hit runc
  if (nofile != nullptr) setrlimit(RLIMIT_NOFILE, nofile);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(argv[0], argv, envp);
  const int e = errno;
  ssize_t ignored = write(3, &e, sizeof e);
  (void)ignored;
  _exit(127);
}

}  // namespace

void OutputTail::Append(std::string_view chunk) {
  if (chunk.size() >= max_bytes_) {
    buf_.assign(chunk.substr(chunk.size() - max_bytes_));
    return;
  }
  buf_.append(chunk);
  // Trim lazily: at most twice the limit is ever held.
  if (buf_.size() > 2 * max_bytes_) buf_.erase(0, buf_.size() - max_bytes_);
}

const std::string& OutputTail::str() {
  if (buf_.size() > max_bytes_) buf_.erase(0, buf_.size() - max_bytes_);
  return buf_;
}

std::string OutputTail::Take() && {
  str();
  return std::move(buf_);
}

Expected<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& env,
                                       const SpawnOptions& options) {
  MF_ASSERT(!argv.empty() && !argv[0].empty() && argv[0][0] == '/',
            "Subprocess::Start needs an absolute argv[0]");
  std::vector<char*> c_argv;
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const std::string& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return SpawnError("pipe2", errno);
  fs::UniqueFd out_r(out[0]);
  fs::UniqueFd out_w(out[1]);
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return SpawnError("pipe2", errno);
  fs::UniqueFd err_r(err[0]);
  fs::UniqueFd err_w(err[1]);
  fs::UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) return SpawnError("open /dev/null", errno);

  struct rlimit nofile {};
  if (options.nofile_limit) {
    nofile.rlim_cur = static_cast<rlim_t>(*options.nofile_limit);
    nofile.rlim_max = static_cast<rlim_t>(*options.nofile_limit);
  }
  const pid_t pid = fork();
  if (pid < 0) return SpawnError("fork", errno);
  if (pid == 0) {
    ExecChild(devnull.get(), out_w.get(), err_w.get(), c_argv.data(), c_env.data(),
              options.nofile_limit ? &nofile : nullptr);
  }

  out_w.Reset();
  err_w.Reset();
  devnull.Reset();
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(err_r.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return SpawnError("exec " + argv[0], exec_errno);
  }
  fs::UniqueFd pidfd(
      static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));  // -1: fall back to polling
  return Subprocess(pid, std::move(pidfd), std::move(out_r));
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_),
      pidfd_(std::move(other.pidfd_)),
      out_(std::move(other.out_)),
      status_(other.status_) {
  other.pid_ = -1;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) {
    kill(pid_, SIGKILL);
    Reap();
  }
}

void Subprocess::Kill() {
  if (pid_ > 0 && !status_) kill(pid_, SIGKILL);
}

int Subprocess::Reap() {
  if (status_) return *status_;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  status_ = r == pid_ ? DecodeStatus(status) : 255;
  return *status_;
}

Expected<void> Subprocess::Drain(const OutputSink& sink, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[kReadChunk];
  while (out_.valid()) {
    pollfd p{out_.get(), POLLIN, 0};
    const int r = poll(&p, 1, MsUntil(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return MakeError(ErrorKind::kInternal, "executor.io",
                       std::string("poll: ") + std::strerror(errno));
    }
    if (r == 0) break;  // a descendant still holds the pipe; stop waiting for it
    const ssize_t n = read(out_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      out_.Reset();
      break;
    }
    if (sink) sink(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  return Ok();
}

Expected<std::optional<int>> Subprocess::Wait(Clock::time_point deadline, const OutputSink& sink) {
  if (status_) return std::optional<int>(*status_);
  char buf[kReadChunk];
  for (;;) {
    pollfd fds[2];
    nfds_t n = 0;
    int out_index = -1;
    int pid_index = -1;
    if (out_.valid()) {
      out_index = static_cast<int>(n);
      fds[n++] = pollfd{out_.get(), POLLIN, 0};
    }
    if (pidfd_.valid()) {
      pid_index = static_cast<int>(n);
      fds[n++] = pollfd{pidfd_.get(), POLLIN, 0};
    }
    int timeout_ms = MsUntil(deadline);
    if (!pidfd_.valid()) timeout_ms = std::min(timeout_ms, kPollFallbackMs);
    const int r = poll(fds, n, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return MakeError(ErrorKind::kInternal, "executor.io",
                       std::string("poll: ") + std::strerror(errno));
    }
    if (out_index >= 0 && fds[out_index].revents != 0) {
      const ssize_t got = read(out_.get(), buf, sizeof buf);
      if (got > 0) {
        if (sink) sink(std::string_view(buf, static_cast<std::size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        out_.Reset();  // EOF: every writer is gone
      }
    }
    bool exited = pid_index >= 0 && fds[pid_index].revents != 0;
    if (!pidfd_.valid()) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = DecodeStatus(status);
        exited = true;
      }
    }
    if (exited) {
      MF_TRY_VOID(Drain(sink, kDrainGraceMs));
      return std::optional<int>(Reap());
    }
    if (r == 0 && Clock::now() >= deadline) return std::optional<int>();
  }
}

Expected<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   const std::vector<std::string>& env,
                                   std::chrono::milliseconds timeout) {
  MF_TRY(proc, Subprocess::Start(argv, env));
  OutputTail tail(kCommandOutputBytes);
  const OutputSink sink = [&tail](std::string_view chunk) { tail.Append(chunk); };
  MF_TRY(status, proc.Wait(Subprocess::Clock::now() + timeout, sink));
  if (!status) {
    proc.Kill();
    MF_TRY_VOID(proc.Wait(Subprocess::Clock::time_point::max(), sink));
    return MakeError(ErrorKind::kTransient, "executor.command.timeout",
                     argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms");
  }
  return CommandResult{*status, std::move(tail).Take()};
}

}  // namespace manifold::worker
