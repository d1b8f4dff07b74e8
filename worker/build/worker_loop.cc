#include "worker/build/worker_loop.h"

#include <zmq.hpp>

#include "common/base/log.h"
#include "common/wire/socket_options.h"

namespace manifold::worker {

WorkerLoop::WorkerLoop(zmq::context_t& ctx, WorkerEnv& env, WorkerLoopOptions options)
    : ctx_(ctx), env_(env), options_(std::move(options)) {
  for (unsigned i = 0; i < options_.slots; ++i) states_.push_back(std::make_unique<SlotState>());
  for (unsigned i = 0; i < options_.slots; ++i) threads_.emplace_back([this, i] { Slot(i); });
}

bool WorkerLoop::Cancel(const std::string& job_id, std::uint64_t lease_epoch) {
  std::lock_guard lock(mu_);
  for (auto& st : states_)
    if (st->job_id == job_id && st->lease_epoch == lease_epoch) {
      st->cancel = true;
      return true;
    }
  return false;
}

std::vector<std::pair<std::string, std::uint64_t>> WorkerLoop::Leases() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& st : states_)
    if (!st->job_id.empty()) out.emplace_back(st->job_id, st->lease_epoch);
  return out;
}

WorkerLoop::~WorkerLoop() { Join(); }

void WorkerLoop::Join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void WorkerLoop::Slot(unsigned index) {
  try {
    zmq::socket_t sock(ctx_, zmq::socket_type::dealer);
    std::string id = options_.worker_id + "-s" + std::to_string(index);
    sock.set(zmq::sockopt::routing_id, id);
    sock.set(zmq::sockopt::linger, 0);
    if (options_.configure_socket) options_.configure_socket(sock);
    sock.connect(options_.endpoint);
    auto send = [&](const Expected<std::string>& bytes) {
      if (!bytes.ok()) {
        MF_LOG_ERROR("slot {}: cannot encode a message: {}", id, bytes.error().ToString());
        return;
      }
      sock.send(zmq::buffer(*bytes), zmq::send_flags::none);
    };
    wire::WorkerHelloData hello;
    hello.worker_id = id;
    hello.platforms = options_.platforms;
    hello.slots = 1;
    hello.software_version = "0.1.0";
    // Best effort: a farm coordinator knows the slots from heartbeats, and
    // a slot that cannot reach it must still be able to stop.
    if (auto bytes = wire::EncodeWorkerHello(hello); bytes.ok())
      (void)sock.send(zmq::buffer(*bytes), zmq::send_flags::dontwait);
    while (true) {
      zmq::message_t msg;
      if (options_.draining) {
        // Idle: leave as soon as the worker drains.
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (options_.draining->load()) return;
        if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) <= 0) continue;
      }
      if (!sock.recv(msg)) continue;
      std::string_view bytes(static_cast<const char*>(msg.data()), msg.size());
      auto type = wire::PeekMessageType(bytes);
      if (!type.ok()) {
        MF_LOG_WARN("slot {}: dropped a malformed message: {}", id, type.error().ToString());
        continue;
      }
      if (*type == wire::MessageType::kShutdown) return;
      if (*type != wire::MessageType::kStageJob) continue;
      auto job = wire::DecodeStageJob(bytes);
      if (!job.ok()) {
        MF_LOG_WARN("slot {}: dropped a bad StageJob: {}", id, job.error().ToString());
        continue;
      }
      ProgressFn progress = [&](const wire::ProgressData& p) { send(wire::EncodeProgress(p)); };
      wire::StageResultData result;
      SlotState& state = *states_[index];
      {
        std::lock_guard lock(mu_);
        state.cancel = false;
        state.job_id = job->job_id;
        state.lease_epoch = job->lease_epoch;
      }
      // This job's own env: the slot's cancel flag stops it alone.
      WorkerEnv env = env_;
      env.job_cancel = &state.cancel;
      if (options_.on_start) options_.on_start(*job);
      Expected<wire::StageResultData> r = [&]() -> Expected<wire::StageResultData> {
        try {
          if (options_.prepare) MF_TRY_VOID(options_.prepare(*job));
          if (env.Cancelled()) return MakeError(ErrorKind::kInternal, "step.cancelled", "build cancelled");
          return ExecuteStage(*job, env, progress);
        } catch (const std::exception& e) {
          return MakeError(ErrorKind::kInternal, "worker.exception", e.what());
        }
      }();
      if (r.ok()) {
        result = std::move(*r);
      } else {
        result.job_id = job->job_id;
        result.lease_epoch = job->lease_epoch;
        result.error = std::move(r).error();
      }
      {
        std::lock_guard lock(mu_);
        state.job_id.clear();
      }
      send(wire::EncodeStageResult(result));
      if (options_.on_end) options_.on_end(*job, result);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) MF_LOG_ERROR("worker slot {}: {}", index, e.what());
  }
}

}  // namespace manifold::worker
