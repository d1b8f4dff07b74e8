// Farm benchmarks (issue 6), reported as ratios against a peer measured in
// the same run:
//   blob   — a blob fetched between two nodes over loopback TCP with CURVE,
//            as workers fetch layers from each other (FetchBlob with credit),
//            against `cat FILE | cat > /dev/null` (a plain pipe).
//   place  — the scheduler's placement over 1,000 simulated workers (2 slots
//            each, amd64 and arm64, native and emulated) for 10,000 queued
//            jobs with inputs held by random workers: latency p50/p99 and
//            the process's RSS.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/cas/local_blob_store.h"
#include "common/crypto/sha256.h"
#include "common/wire/blob_transfer.h"
#include "common/wire/cluster.h"
#include "common/wire/curve.h"
#include "common/wire/socket_options.h"
#include "coordinator/build/placement.h"

using namespace manifold;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

int Blob(std::size_t mib, std::uint32_t chunk_kib, unsigned credit, bool curve) {
  std::string dir = std::filesystem::temp_directory_path() / ("mf-farm-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto server_store = cas::LocalBlobStore::Open(dir + "/server");
  auto client_store = cas::LocalBlobStore::Open(dir + "/client");
  if (!server_store.ok() || !client_store.ok()) return 1;
  // Incompressible content, ingested into the server's store.
  std::mt19937_64 rng(42);
  auto writer = (*server_store)->BeginIngest();
  std::string chunk(1 << 20, '\0');
  for (std::size_t i = 0; i < mib; ++i) {
    for (std::size_t j = 0; j < chunk.size(); j += 8) {
      std::uint64_t v = rng();
      std::memcpy(&chunk[j], &v, 8);
    }
    (void)(*writer)->Write(chunk);
  }
  auto digest = (*writer)->Commit();
  if (!digest.ok()) return 1;
  auto path = (*server_store)->BlobPath(*digest);

  // The peer: a blob server as a worker runs it.
  // Two contexts, as two processes would have: each side encrypts or
  // decrypts in its own I/O thread.
  zmq::context_t ctx(1), client_ctx(1);
  auto server_keys = wire::GenerateKeyPair();
  auto client_keys = wire::GenerateKeyPair();
  auto zap = wire::ZapHandler::Start(ctx, [&](const std::string& k) -> std::optional<std::string> {
    if (k == client_keys->public_key) return std::string("peer");
    return std::nullopt;
  });
  zmq::socket_t server(ctx, zmq::socket_type::router);
  if (curve) wire::MakeCurveServer(server, *server_keys);
  (void)wire::ApplySocketDefaults(server);
  server.bind("tcp://127.0.0.1:*");
  std::string endpoint = server.get(zmq::sockopt::last_endpoint);
  std::atomic<bool> stop{false};
  std::thread serve([&] {
    wire::BlobPathFn path_of = [&](const std::string&) -> Expected<std::string> { return *path; };
    while (!stop) {
      zmq::pollitem_t item{server.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
      zmq::message_t id, body;
      if (!server.recv(id) || !server.recv(body)) continue;
      auto frames = wire::AnswerBlobRequest(std::string_view(static_cast<const char*>(body.data()), body.size()), path_of);
      (void)wire::SendFrames(server, frames, &id);
    }
  });
  zmq::socket_t client(client_ctx, zmq::socket_type::dealer);
  if (curve) wire::MakeCurveClient(client, *client_keys, server_keys->public_key);
  (void)wire::ApplySocketDefaults(client);
  client.connect(endpoint);
  wire::DealerChannel ch(client);
  wire::FetchOptions fo;
  fo.chunk_bytes = chunk_kib * 1024;
  fo.credit = credit;
  auto t0 = Clock::now();
  auto got = wire::FetchBlob(ch, *digest, **client_store, fo);
  double fetch_s = Seconds(t0);
  stop = true;
  serve.join();
  if (!got.ok()) {
    std::fprintf(stderr, "fetch failed: %s\n", got.error().ToString().c_str());
    return 1;
  }
  // The peer: the same bytes through a pipe.
  t0 = Clock::now();
  int rc = std::system(("cat " + *path + " | cat > /dev/null").c_str());
  double cat_s = Seconds(t0);
  std::filesystem::remove_all(dir);
  if (rc != 0) return 1;
  double mb = static_cast<double>(mib) * 1048576.0 / 1e6;
  std::printf("blob transfer, %zu MiB, loopback, %s, chunks %u KiB x credit %u (digest verified):\n", mib,
              curve ? "CURVE" : "no encryption", chunk_kib, credit);
  std::printf("  manifold FetchBlob to disk   : %6.3f s  %7.0f MB/s\n", fetch_s, mb / fetch_s);
  std::printf("  cat FILE | cat > /dev/null   : %6.3f s  %7.0f MB/s\n", cat_s, mb / cat_s);
  std::printf("  time ratio vs cat: %.2f\n", fetch_s / cat_s);
  return 0;
}

int Place(int workers, int jobs) {
  using coordinator::PlacementRequest;
  using coordinator::SlotView;
  const oci::Platform amd{"linux", "amd64", ""}, arm{"linux", "arm64", ""};
  const std::vector<std::pair<oci::Platform, bool>> amd_host{{amd, false}, {arm, true}};
  const std::vector<std::pair<oci::Platform, bool>> arm_host{{arm, false}};
  std::vector<std::string> ids;
  std::vector<SlotView> slots;
  std::mt19937 rng(7);
  for (int w = 0; w < workers; ++w) {
    ids.push_back("worker-" + std::to_string(w));
    for (int s = 0; s < 2; ++s)
      slots.push_back({ids.back() + "-s" + std::to_string(s), ids.back(), w % 3 == 0 ? &arm_host : &amd_host, true});
  }
  // Each job: a platform and 3..10 inputs, each held by 1..3 random workers.
  struct Job {
    oci::Platform platform;
    std::map<std::string, int> held;
  };
  std::vector<Job> queue(static_cast<std::size_t>(jobs));
  for (auto& j : queue) {
    j.platform = rng() % 2 ? amd : arm;
    int inputs = 3 + static_cast<int>(rng() % 8);
    for (int i = 0; i < inputs; ++i)
      for (int h = 0, n = 1 + static_cast<int>(rng() % 3); h < n; ++h) ++j.held[ids[rng() % ids.size()]];
  }
  std::map<std::string, int> load;
  std::vector<double> us;
  us.reserve(queue.size());
  std::size_t busy = 0;
  for (auto& j : queue) {
    // Keep the farm about half busy: free a random busy slot now and then.
    if (busy > slots.size() / 2) {
      for (auto& s : slots)
        if (!s.idle && rng() % 2) {
          s.idle = true;
          --load[s.worker];
          --busy;
          break;
        }
    }
    auto t0 = Clock::now();
    auto placed = coordinator::Place(PlacementRequest{j.platform, true, &j.held, &load}, slots);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    for (auto& s : slots)
      if (s.id == placed.slot) {
        s.idle = false;
        ++load[s.worker];
        ++busy;
        break;
      }
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<std::size_t>(p * static_cast<double>(us.size() - 1))]; };
  std::printf("placement, %d workers x 2 slots, %d queued jobs (3-10 inputs each):\n", workers, jobs);
  std::printf("  p50 %.1f us  p99 %.1f us  max %.1f us  RSS %ld KiB\n", pct(0.5), pct(0.99), us.back(), RssKiB());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "all";
  int rc = 0;
  auto arg = [&](int i, int def) { return argc > i ? std::atoi(argv[i]) : def; };
  if (what == "blob" || what == "all")
    rc |= Blob(static_cast<std::size_t>(arg(2, 1024)), static_cast<std::uint32_t>(arg(3, 256)),
               static_cast<unsigned>(arg(4, 16)), arg(5, 1) != 0);
  if (what == "place" || what == "all") rc |= Place(1000, 10000);
  return rc;
}
