// Scheduler scale (issue 6): a real manifold-coordinator process with
// WORKERS simulated workers connected to it (each joined with the token over
// CURVE, heartbeating on its own control connection, with SLOTS job slots
// on their own connections, as manifold-worker does), and one farm build of
// STAGES independent stages per platform for linux/amd64 and linux/arm64
// (plus the final stage of each that copies from all of them): about
// 2 x STAGES jobs queued at once. A simulated slot "runs" each StageJob for
// JOB_MS (uniform between half and one and a half of it; 0 = answers at
// once, which saturates the coordinator and measures its throughput) and
// answers with its base image as the result. Measured:
//   placement latency — from a slot's StageResult leaving to the next
//                       StageJob reaching that slot (the other slots are
//                       busy, so the freed one is the one that gets it):
//                       the coordinator's receive, record, scheduling pass
//                       and send, p50/p99/max; counted while jobs were
//                       still queued (results sent before the last of the
//                       stage jobs was handed out), since at the end of the
//                       build a freed slot has nothing to wait for;
//   coordinator RSS   — VmHWM of its process at the end of the build.
//
//   farm_scale COORDINATOR_BIN MANIFOLD_BIN STATE_DIR [WORKERS] [STAGES] [SLOTS] [JOB_MS]
// STATE_DIR is a coordinator state dir whose store holds busybox:latest for
// both platforms (bench/farm_scale.sh prepares it).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <queue>
#include <random>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/oci/media_types.h"
#include "common/wire/cluster.h"
#include "common/wire/curve.h"
#include "common/wire/socket_options.h"
#include "common/wire/stage_job.h"

using namespace manifold;
using Clock = std::chrono::steady_clock;

namespace {

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

long StatusKiB(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return 0;
}

std::string_view View(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

struct Slot {
  std::unique_ptr<zmq::socket_t> sock;
  std::optional<Clock::time_point> answered;  // when its last result left
};

struct Worker {
  std::string id;
  std::unique_ptr<zmq::socket_t> ctl;
  Clock::time_point next_beat;
  std::uint64_t members_version = 0;  // as manifold-worker keeps it
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: farm_scale COORDINATOR_BIN MANIFOLD_BIN STATE_DIR [WORKERS] [STAGES] [SLOTS]\n");
    return 2;
  }
  const std::string coordinator_bin = argv[1], manifold_bin = argv[2], state = argv[3];
  const int workers = argc > 4 ? std::atoi(argv[4]) : 1000;
  const int stages = argc > 5 ? std::atoi(argv[5]) : 5000;
  const int slots_per = argc > 6 ? std::atoi(argv[6]) : 2;
  const int job_ms = argc > 7 ? std::atoi(argv[7]) : 20000;
  std::mt19937 rng(11);
  // Thousands of connections on both ends.
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);

  std::string token_text = Run(coordinator_bin + " token --state-dir " + state + " | tail -1");
  while (!token_text.empty() && (token_text.back() == '\n' || token_text.back() == ' ')) token_text.pop_back();
  auto token = wire::ParseJoinToken(token_text);
  if (!token.ok()) {
    std::fprintf(stderr, "token: %s\n", token.error().ToString().c_str());
    return 1;
  }
  auto join_pub = wire::PublicKeyOf(token->join_secret_key);
  wire::CurveKeyPair join_keys{*join_pub, token->join_secret_key};
  // A free port: bind 0, read it, let it go.
  int port = 0;
  {
    zmq::context_t probe_ctx(1);
    zmq::socket_t probe(probe_ctx, zmq::socket_type::router);
    probe.bind("tcp://127.0.0.1:*");
    std::string ep = probe.get(zmq::sockopt::last_endpoint);
    port = std::atoi(ep.substr(ep.rfind(':') + 1).c_str());
  }
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string endpoint = "tcp://" + address;

  pid_t coord = ::fork();
  if (coord == 0) {
    std::string log = state + "/coordinator.log";
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    ::dup2(2, 1);
    ::execl(coordinator_bin.c_str(), coordinator_bin.c_str(), "--listen", address.c_str(), "--state-dir",
            state.c_str(), "--heartbeat-timeout", "60", "--log-level", "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  if (int st = 0; ::waitpid(coord, &st, WNOHANG) == coord) {
    std::fprintf(stderr, "the coordinator exited:\n%s\n", Run("tail -5 " + state + "/coordinator.log").c_str());
    return 1;
  }

  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, 65536);
  const wire::PlatformList platforms{{oci::Platform{"linux", "amd64", ""}, false},
                                     {oci::Platform{"linux", "arm64", ""}, false}};

  // 1. Join: every worker proves the token, in parallel.
  auto t0 = Clock::now();
  std::vector<Worker> farm(static_cast<std::size_t>(workers));
  std::vector<wire::CurveKeyPair> keys;
  std::vector<std::unique_ptr<zmq::socket_t>> joins;
  for (int i = 0; i < workers; ++i) {
    keys.push_back(*wire::GenerateKeyPair());
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    wire::MakeCurveClient(*s, join_keys, token->server_public_key);
    (void)wire::ApplySocketDefaults(*s);
    s->set(zmq::sockopt::linger, 0);
    s->connect(endpoint);
    wire::JoinData j;
    j.worker_id = "sim-" + std::to_string(i);
    j.public_key = keys.back().public_key;
    j.hostname = j.worker_id;
    j.platforms = platforms;
    j.slots = static_cast<std::uint32_t>(slots_per);
    j.peer_endpoint = "tcp://127.0.0.1:9";
    j.cpus = 8;
    j.memory_bytes = 16ull << 30;
    j.software_version = "0.1.0";
    s->send(zmq::buffer(*wire::EncodeJoin(j)), zmq::send_flags::none);
    joins.push_back(std::move(s));
  }
  int joined = 0;
  while (joined < workers && Clock::now() - t0 < std::chrono::seconds(120)) {
    std::vector<zmq::pollitem_t> items;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < joins.size(); ++i)
      if (joins[i]) {
        items.push_back({joins[i]->handle(), 0, ZMQ_POLLIN, 0});
        which.push_back(i);
      }
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(200));
    for (std::size_t k = 0; k < items.size(); ++k) {
      if (!(items[k].revents & ZMQ_POLLIN)) continue;
      const std::size_t i = which[k];
      zmq::message_t m;
      if (!joins[i]->recv(m, zmq::recv_flags::dontwait)) continue;
      auto reply = wire::DecodeJoinReply(View(m));
      if (!reply.ok() || reply->error) {
        std::fprintf(stderr, "join refused: %s\n",
                     reply.ok() ? reply->error->message.c_str() : reply.error().ToString().c_str());
        ::kill(coord, SIGKILL);
        return 1;
      }
      farm[i].id = reply->worker_id;
      joins[i].reset();
      ++joined;
    }
  }
  const double join_s = std::chrono::duration<double>(Clock::now() - t0).count();
  joins.clear();
  if (joined < workers) {
    std::fprintf(stderr, "only %d of %d workers joined\n", joined, workers);
    ::kill(coord, SIGKILL);
    return 1;
  }

  // 2. Control connections (heartbeats) and job slots, as manifold-worker.
  std::vector<Slot> slots;
  for (int i = 0; i < workers; ++i) {
    auto& w = farm[static_cast<std::size_t>(i)];
    w.ctl = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    wire::MakeCurveClient(*w.ctl, keys[static_cast<std::size_t>(i)], token->server_public_key);
    (void)wire::ApplySocketDefaults(*w.ctl);
    w.ctl->set(zmq::sockopt::linger, 0);
    w.ctl->set(zmq::sockopt::routing_id, w.id + "-ctl");
    w.ctl->connect(endpoint);
    w.next_beat = Clock::now() + std::chrono::milliseconds(i % 2000);
    for (int s = 0; s < slots_per; ++s) {
      Slot slot;
      slot.sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
      slot.sock->set(zmq::sockopt::routing_id, w.id + "-s" + std::to_string(s));
      wire::MakeCurveClient(*slot.sock, keys[static_cast<std::size_t>(i)], token->server_public_key);
      (void)wire::ApplySocketDefaults(*slot.sock);
      slot.sock->set(zmq::sockopt::linger, 0);
      slot.sock->connect(endpoint);
      slots.push_back(std::move(slot));
    }
  }
  std::uint64_t heartbeats = 0;
  auto beat = [&](Worker& w) {
    wire::HeartbeatData h;
    h.worker_id = w.id;
    h.platforms = platforms;
    h.slots = static_cast<std::uint32_t>(slots_per);
    h.disk_free_bytes = 100ull << 30;
    h.peer_endpoint = "tcp://127.0.0.1:9";
    h.cpus = 8;
    h.memory_bytes = 16ull << 30;
    h.hostname = w.id;
    h.members_version = w.members_version;
    (void)w.ctl->send(zmq::buffer(*wire::EncodeHeartbeat(h)), zmq::send_flags::dontwait);
    w.next_beat = Clock::now() + std::chrono::seconds(2);
    ++heartbeats;
  };
  std::vector<zmq::pollitem_t> items;
  for (auto& w : farm) items.push_back({w.ctl->handle(), 0, ZMQ_POLLIN, 0});
  for (auto& s : slots) items.push_back({s.sock->handle(), 0, ZMQ_POLLIN, 0});
  std::uint64_t member_entries = 0, ctl_replies = 0;
  std::vector<Clock::time_point> answered_at;  // per latency sample: when the slot's result left
  Clock::time_point last_stage_job{};          // the last non-final StageJob arrived
  // Results due later: (when, slot, StageResult bytes).
  using Due = std::tuple<Clock::time_point, std::size_t, std::string>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
  auto serve = [&](std::chrono::milliseconds wait, std::vector<double>* latencies, int* jobs) {
    auto now = Clock::now();
    for (auto& w : farm)
      if (now >= w.next_beat) beat(w);
    while (!due.empty() && std::get<0>(due.top()) <= now) {
      auto& [when, index, bytes] = due.top();
      slots[index].sock->send(zmq::buffer(bytes), zmq::send_flags::none);
      slots[index].answered = Clock::now();
      due.pop();
    }
    if (!due.empty())
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(std::get<0>(due.top()) - now) +
                                std::chrono::milliseconds(1));
    zmq::poll(items.data(), items.size(), wait);
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::socket_t& sock = i < farm.size() ? *farm[i].ctl : *slots[i - farm.size()].sock;
      zmq::message_t m;
      while (sock.recv(m, zmq::recv_flags::dontwait)) {
        if (i < farm.size()) {
          auto r = wire::DecodeHeartbeatReply(View(m));
          ++ctl_replies;
          if (r.ok()) member_entries += r->members.size();
          if (r.ok() && r->members_full) farm[i].members_version = r->members_version;
          continue;
        }
        Slot& slot = slots[i - farm.size()];
        auto type = wire::PeekMessageType(View(m));
        if (!type.ok() || *type != wire::MessageType::kStageJob) continue;
        auto job = wire::DecodeStageJob(View(m));
        if (!job.ok()) {
          std::fprintf(stderr, "bad StageJob: %s\n", job.error().ToString().c_str());
          continue;
        }
        if (slot.answered && latencies) {
          latencies->push_back(std::chrono::duration<double, std::milli>(Clock::now() - *slot.answered).count());
          answered_at.push_back(*slot.answered);
        }
        // The independent stages read nothing; the finals read all of them.
        if (job->inputs.empty()) last_stage_job = Clock::now();
        // Done at once: the stage's result is its base image.
        wire::StageResultData r;
        r.job_id = job->job_id;
        r.lease_epoch = job->lease_epoch;
        if (job->supplement)
          for (const auto& src : job->supplement->sources) {
            if (src.media_type == oci::kOciImageConfig && r.config_digest.empty()) r.config_digest = src.digest;
            else if (!src.diff_id.empty())
              r.layers.push_back({src.media_type, src.digest, src.diff_id, src.size});
          }
        auto bytes = wire::EncodeStageResult(r);
        if (!bytes.ok()) {
          std::fprintf(stderr, "StageResult: %s\n", bytes.error().ToString().c_str());
          continue;
        }
        if (jobs) ++*jobs;
        if (job_ms <= 0) {
          sock.send(zmq::buffer(*bytes), zmq::send_flags::none);
          slot.answered = Clock::now();
          continue;
        }
        auto run = std::chrono::milliseconds(job_ms / 2 + static_cast<int>(rng() % static_cast<unsigned>(job_ms + 1)));
        due.emplace(Clock::now() + run, i - farm.size(), std::move(*bytes));
      }
    }
  };
  // Every worker heard at least once before the build.
  t0 = Clock::now();
  while (Clock::now() - t0 < std::chrono::seconds(4)) serve(std::chrono::milliseconds(50), nullptr, nullptr);
  const long rss_idle = StatusKiB(coord, "VmRSS:");

  // 3. The build: STAGES independent stages per platform and a final stage
  // that copies a file from each.
  std::string ctxdir = state + "/../scale-context";
  std::filesystem::create_directories(ctxdir);
  {
    std::ofstream df(ctxdir + "/Dockerfile");
    for (int s = 0; s < stages; ++s)
      df << "FROM busybox:latest AS s" << s << "\nRUN echo " << s << " > /n\n";
    df << "FROM busybox:latest\n";
    for (int s = 0; s < stages; ++s) df << "COPY --from=s" << s << " /n /n" << s << "\n";
  }
  std::string client_root = state + "/../scale-client";
  std::string cmd = "MANIFOLD_ROOT=" + client_root + " " + manifold_bin + " build -q --coordinator " + address +
                    " --token '" + token_text + "' --platform linux/amd64,linux/arm64 " + ctxdir + " > " + state +
                    "/../scale-build.log 2>&1; echo $? > " + state + "/../scale-build.rc";
  std::filesystem::remove(state + "/../scale-build.rc");
  std::thread client([&] { (void)std::system(cmd.c_str()); });
  std::vector<double> lat;
  int jobs = 0;
  t0 = Clock::now();
  while (!std::filesystem::exists(state + "/../scale-build.rc") && Clock::now() - t0 < std::chrono::minutes(20))
    serve(std::chrono::milliseconds(20), &lat, &jobs);
  const double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
  client.join();
  const long hwm = StatusKiB(coord, "VmHWM:");
  std::ifstream rcf(state + "/../scale-build.rc");
  int rc = -1;
  rcf >> rc;
  ::kill(coord, SIGTERM);
  int st = 0;
  ::waitpid(coord, &st, 0);
  if (rc != 0) {
    std::fprintf(stderr, "the build failed (rc %d):\n%s\n", rc, Run("tail -20 " + state + "/../scale-build.log").c_str());
    return 1;
  }
  const std::size_t all_samples = lat.size();
  std::vector<double> steady;  // after the first minute: the initial burst of dispatches is over
  {
    std::vector<double> queued;
    for (std::size_t i = 0; i < lat.size(); ++i)
      if (answered_at[i] <= last_stage_job) {
        queued.push_back(lat[i]);
        if (answered_at[i] > t0 + std::chrono::seconds(60)) steady.push_back(lat[i]);
      }
    lat = std::move(queued);
  }
  std::sort(lat.begin(), lat.end());
  std::sort(steady.begin(), steady.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))]; };
  std::printf("scheduler scale: manifold-coordinator with %d simulated workers x %d slots (CURVE, each its own\n"
              "connections), a build of %d jobs (%d stages x 2 platforms + 2 finals), each job %s:\n",
              workers, slots_per, jobs, stages,
              job_ms > 0 ? ("running " + std::to_string(job_ms / 2000.0).substr(0, 4) + "-" +
                            std::to_string(job_ms * 3 / 2000.0).substr(0, 4) + " s").c_str()
                         : "answered at once (saturation)");
  std::printf("  %d workers joined in %.2f s; build %.1f s (%.0f jobs/s)\n", workers, join_s, build_s,
              static_cast<double>(jobs) / build_s);
  std::printf("  placement latency (result sent -> next job on that slot, %zu of %zu samples, jobs still queued):\n"
              "    p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
              lat.size(), all_samples, pct(0.5), pct(0.99), lat.empty() ? 0.0 : lat.back());
  if (!steady.empty())
    std::printf("    after the first minute (%zu samples): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", steady.size(),
                steady[steady.size() / 2], steady[static_cast<std::size_t>(0.99 * static_cast<double>(steady.size() - 1))],
                steady.back());
  std::printf("  coordinator RSS: %ld MiB idle with the farm joined, %ld MiB peak (VmHWM)\n", rss_idle / 1024, hwm / 1024);
  std::printf("  heartbeats %llu, member-list entries received %llu (%.1f per reply)\n",
              static_cast<unsigned long long>(heartbeats), static_cast<unsigned long long>(member_entries),
              ctl_replies ? static_cast<double>(member_entries) / static_cast<double>(ctl_replies) : 0.0);
  return 0;
}
