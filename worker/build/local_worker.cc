#include "worker/build/local_worker.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/base/log.h"

namespace manifold::worker {

Expected<RunDir> ClaimRunDir(const std::string& wstate, const std::string& owner) {
  std::string runs = wstate + "/run";
  ::mkdir(runs.c_str(), 0700);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(runs, ec)) {
    std::string d = e.path().string();
    int fd = ::open((d + "/lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    fs::UniqueFd lock(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) continue;  // a live owner
    RuncConfig stale;
    stale.state_dir = d;
    auto rt = RuncRuntime::Create(stale);
    if (rt.ok()) (void)(*rt)->RemoveStale();
    std::filesystem::remove_all(d, ec);
    MF_LOG_INFO("removed the run dir of a dead build or worker: {}", d);
  }
  std::string mine = runs + "/" + owner;
  if (::mkdir(mine.c_str(), 0700) != 0)
    return MakeError(ErrorKind::kInternal, "build.state", "mkdir " + mine + ": " + std::strerror(errno));
  int fd = ::open((mine + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX) != 0)
    return MakeError(ErrorKind::kInternal, "build.state", "lock " + mine + ": " + std::strerror(errno));
  return RunDir{mine, fs::UniqueFd(fd)};
}

Expected<std::unique_ptr<LocalWorker>> LocalWorker::Open(const std::string& state_dir, const std::string& owner,
                                                        bool allow_insecure) {
  std::unique_ptr<LocalWorker> w(new LocalWorker());
  w->wstate_ = state_dir + "/worker";
  ::mkdir(w->wstate_.c_str(), 0700);
  ::chmod(w->wstate_.c_str(), 0700);
  MF_TRY(snapshots, Snapshotter::Open(state_dir));
  w->snapshots_.emplace(std::move(snapshots));
  MF_TRY(run_dir, ClaimRunDir(w->wstate_, owner));
  w->run_dir_ = std::move(run_dir);
  RuncConfig rc;
  rc.state_dir = w->run_dir_.path;
  rc.policy.allow_insecure = allow_insecure;
  MF_TRY(runtime, RuncRuntime::Create(rc));
  w->runtime_ = std::move(runtime);
  w->policy_ = rc.policy;
  return w;
}

LocalWorker::~LocalWorker() {
  runtime_.reset();
  std::error_code ec;
  if (!run_dir_.path.empty()) std::filesystem::remove_all(run_dir_.path, ec);
}

void LocalWorker::Fill(WorkerEnv& env, std::chrono::milliseconds step_timeout) {
  env.snapshots = &*snapshots_;
  env.runtime = runtime_.get();
  env.policy = policy_;
  env.state_dir = wstate_;
  env.step_timeout = step_timeout;
}

}  // namespace manifold::worker
