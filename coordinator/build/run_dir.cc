#include "coordinator/build/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/base/log.h"
#include "worker/executor/runc_runtime.h"

namespace manifold::coordinator {

Expected<RunDir> ClaimRunDir(const std::string& wstate, const std::string& build_id) {
  std::string runs = wstate + "/run";
  ::mkdir(runs.c_str(), 0700);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(runs, ec)) {
    std::string d = e.path().string();
    int fd = ::open((d + "/lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    fs::UniqueFd lock(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) continue;  // a live build
    worker::RuncConfig stale;
    stale.state_dir = d;
    auto rt = worker::RuncRuntime::Create(stale);
    if (rt.ok()) (void)(*rt)->RemoveStale();
    std::filesystem::remove_all(d, ec);
    MF_LOG_INFO("removed the run dir of a dead build: {}", d);
  }
  std::string mine = runs + "/" + build_id;
  if (::mkdir(mine.c_str(), 0700) != 0)
    return MakeError(ErrorKind::kInternal, "build.state", "mkdir " + mine + ": " + std::strerror(errno));
  int fd = ::open((mine + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX) != 0)
    return MakeError(ErrorKind::kInternal, "build.state", "lock " + mine + ": " + std::strerror(errno));
  return RunDir{mine, fs::UniqueFd(fd)};
}

}  // namespace manifold::coordinator
