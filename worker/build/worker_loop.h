// A worker's job slots on the wire: each slot is a thread with its own
// ZeroMQ DEALER socket connected to the coordinator's ROUTER. A slot says
// hello (schema Register, one slot each), then runs the StageJobs it is sent,
// streaming Progress and ending each with a StageResult, until Shutdown. The
// embedded mode connects over inproc://; the cluster mode over tcp://, with
// the same code.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "common/base/expected.h"
#include "worker/build/stage_executor.h"

namespace zmq {
class context_t;
class socket_t;
}

namespace manifold::worker {

struct WorkerLoopOptions {
  std::string worker_id = "local";  ///< [A-Za-z0-9_-]; slot ids append "-s<N>"
  std::string endpoint;             ///< the coordinator's ROUTER
  unsigned slots = 2;
  std::vector<std::pair<oci::Platform, bool>> platforms;  ///< (platform, emulated)

  /// Farm workers: sets CURVE and socket defaults before connect.
  std::function<void(zmq::socket_t&)> configure_socket;
  /// Farm workers: fetches what the job needs (blobs, context, secrets)
  /// before it runs; an error fails the job.
  std::function<Expected<void>(const wire::StageJobData&)> prepare;
  /// Called when a job starts and when it ends (ok = result without error).
  std::function<void(const wire::StageJobData&)> on_start;
  std::function<void(const wire::StageJobData&, const wire::StageResultData&)> on_end;
  /// When set, a slot takes no new job and exits once idle (drain).
  const std::atomic<bool>* draining = nullptr;
};

class WorkerLoop {
 public:
  /// Starts the slot threads. `ctx` and `env` must outlive the loop.
  WorkerLoop(zmq::context_t& ctx, WorkerEnv& env, WorkerLoopOptions options);
  /// Joins the slots (they stop on Shutdown or when the context terminates).
  ~WorkerLoop();
  void Join();

  /// Stops the run of `job_id` at `lease_epoch` if a slot is running it:
  /// its RUN is killed, no further step starts, and the job ends with
  /// "step.cancelled". False when no slot runs that lease (it ended).
  bool Cancel(const std::string& job_id, std::uint64_t lease_epoch);
  /// The leases the slots are running now.
  std::vector<std::pair<std::string, std::uint64_t>> Leases() const;

 private:
  struct SlotState {
    std::atomic<bool> cancel{false};
    std::string job_id;  ///< guarded by mu_; empty when idle
    std::uint64_t lease_epoch = 0;
  };
  void Slot(unsigned index);
  zmq::context_t& ctx_;
  WorkerEnv& env_;
  WorkerLoopOptions options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<SlotState>> states_;
  std::vector<std::thread> threads_;
};

}  // namespace manifold::worker
