#include "common/registry/credential_helper.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

namespace manifold::registry {
namespace {

constexpr std::size_t kMaxHelperOutput = 64 * 1024;

bool IsPlainWord(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return s != "." && s != "..";
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace

Expected<HelperOutput> RunCredentialHelper(const std::string& name, const std::string& action,
                                           const std::string& input,
                                           const std::string& search_path) {
  std::string program = "docker-credential-" + name;
  if (!IsPlainWord(name))
    return MakeError(ErrorKind::kInvalidInput, "registry.cred_helper",
                     "invalid credential helper name \"" + name + "\"");
  std::string path;
  std::size_t start = 0;
  while (start <= search_path.size()) {
    std::size_t end = search_path.find(':', start);
    if (end == std::string::npos) end = search_path.size();
    std::string dir = search_path.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + program;
      if (::access(candidate.c_str(), X_OK) == 0) {
        path = candidate;
        break;
      }
    }
    start = end + 1;
  }
  if (path.empty())
    return MakeError(ErrorKind::kInvalidInput, "registry.cred_helper",
                     "credential helper " + program + " not found in PATH");

  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0)
    return MakeError(ErrorKind::kInternal, "registry.cred_helper",
                     std::string("pipe: ") + std::strerror(errno));
  Fd in_read(in_pipe[0]), in_write(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    return MakeError(ErrorKind::kInternal, "registry.cred_helper",
                     std::string("pipe: ") + std::strerror(errno));
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  std::vector<char*> argv = {program.data(), const_cast<char*>(action.c_str()), nullptr};
  // The helper gets the usual signals even from a daemon that blocks them.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return MakeError(ErrorKind::kInternal, "registry.cred_helper",
                     "cannot run " + path + ": " + std::strerror(rc));
  in_read.Close();
  out_write.Close();

  // The input is small (a URL or one JSON object): it fits the pipe buffer,
  // so writing it all before reading cannot deadlock. A helper that exits
  // without reading must not kill us with SIGPIPE: block it in this thread
  // only, and swallow one that became pending.
  sigset_t pipe_only, old_mask;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  bool broken = false;
  std::size_t off = 0;
  while (off < input.size()) {
    ssize_t n = ::write(in_write.get(), input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken = n < 0 && errno == EPIPE;
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  if (broken) {
    timespec zero{};
    ::sigtimedwait(&pipe_only, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  in_write.Close();

  HelperOutput result;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.out.size() < kMaxHelperOutput)
      result.out.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n),
                                                   kMaxHelperOutput - result.out.size()));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CredentialHelperRunner DefaultCredentialHelperRunner() {
  return [](const std::string& name, const std::string& action, const std::string& input) {
    const char* path = std::getenv("PATH");
    return RunCredentialHelper(name, action, input,
                               path ? path : "/usr/local/bin:/usr/bin:/bin");
  };
}

}  // namespace manifold::registry
