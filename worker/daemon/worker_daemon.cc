#include "worker/daemon/worker_daemon.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <zmq.hpp>

#include <nlohmann/json.hpp>

#include "common/base/log.h"
#include "common/cache/step_cache.h"
#include "common/dockerfile/dockerignore.h"
#include "common/fs/atomic_file.h"
#include "common/image/image_store.h"
#include "common/image/layer_index.h"
#include "common/oci/reference.h"
#include "common/registry/client.h"
#include "common/registry/parallel.h"
#include "common/wire/beacon.h"
#include "common/wire/blob_transfer.h"
#include "common/wire/cluster.h"
#include "common/wire/context_tree.h"
#include "common/wire/curve.h"
#include "common/wire/socket_options.h"
#include "worker/build/local_worker.h"
#include "worker/build/session.h"
#include "worker/build/worker_loop.h"
#include "worker/platform/platform_detect.h"

namespace manifold::worker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kVersion = "0.1.0";

Expected<std::pair<std::string, std::uint16_t>> SplitHostPort(const std::string& s,
                                                              const std::string& what) {
  auto colon = s.rfind(':');
  auto bad = [&] {
    return MakeError(ErrorKind::kInvalidInput, "worker.address",
                     what + " \"" + s + "\" is not HOST:PORT");
  };
  if (colon == std::string::npos || colon == 0) return bad();
  std::string host = s.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535 || colon + 1 == s.size()) return bad();
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "worker";
  return buf;
}

/// A worker id from the host name: [A-Za-z0-9_-], at most 64.
std::string IdFrom(const std::string& host) {
  std::string id;
  for (char c : host) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    id += ok ? c : '-';
    if (id.size() == 48) break;
  }
  return id.empty() ? "worker" : id;
}

/// The local address this host uses to reach `host` (no packet is sent).
std::string LocalAddressToward(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), "9", &hints, &res) != 0 || !res) return "127.0.0.1";
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  std::string out = "127.0.0.1";
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    char text[INET_ADDRSTRLEN] = {};
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
        ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof text))
      out = text;
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  return out;
}

std::uint64_t DiskFree(const std::string& dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return 0;
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

std::uint32_t LoadMilli() {
  double l[1] = {0};
  if (::getloadavg(l, 1) != 1) return 0;
  return static_cast<std::uint32_t>(l[0] * 1000);
}

std::uint64_t Memory() {
  long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size) : 0;
}

class Daemon {
 public:
  Daemon(const WorkerDaemonConfig& config, const std::atomic<bool>& stop)
      : cfg_(config), stop_(stop) {}

  Expected<void> Run() {
    MF_TRY_VOID(Setup());
    MF_TRY_VOID(StartPeerServer());
    MF_TRY_VOID(Join());
    StartSlots();
    auto r = Control();
    Shutdown();
    return r;
  }

 private:
  // ------------------------------------------------------------ setup

  Expected<void> Setup() {
    std::error_code ec;
    std::filesystem::create_directories(cfg_.state_dir, ec);
    if (ec)
      return MakeError(ErrorKind::kInvalidInput, "worker.state",
                       "cannot create the state dir " + cfg_.state_dir + ": " + ec.message());
    ::chmod(cfg_.state_dir.c_str(), 0700);
    MF_TRY(keys, wire::LoadOrCreateKeyPair(cfg_.state_dir + "/worker.key"));
    keys_ = keys;
    MF_TRY(token, wire::ParseJoinToken(cfg_.token));
    token_ = token;
    MF_TRY(join_pub, wire::PublicKeyOf(token_.join_secret_key));
    join_keys_ = {join_pub, token_.join_secret_key};

    if (cfg_.discover) {
      MF_LOG_INFO("looking for a coordinator beacon on UDP port {}", cfg_.beacon_port);
      auto deadline = Clock::now() + cfg_.discover_timeout;
      while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
          return MakeError(ErrorKind::kTransient, "worker.discover",
                           "no coordinator beacon for this token on UDP port " +
                               std::to_string(cfg_.beacon_port) + " within " +
                               std::to_string(cfg_.discover_timeout.count() / 1000) + " s");
        MF_TRY(ann, wire::DiscoverCoordinator(cfg_.beacon_port, left));
        // The beacon is a hint: only the coordinator of our token counts.
        if (ann.fingerprint != wire::KeyFingerprint(token_.server_public_key)) continue;
        coordinator_host_ = ann.sender_address;
        coordinator_port_ = ann.port;
        break;
      }
    } else {
      if (cfg_.join.empty())
        return MakeError(ErrorKind::kInvalidInput, "worker.join",
                         "no coordinator: give --join HOST:PORT or --discover");
      MF_TRY(hp, SplitHostPort(cfg_.join, "--join"));
      coordinator_host_ = hp.first;
      coordinator_port_ = hp.second;
    }
    coordinator_ = "tcp://" + coordinator_host_ + ":" + std::to_string(coordinator_port_);
    MF_LOG_INFO("coordinator {} (key {})", coordinator_, wire::KeyFingerprint(token_.server_public_key));

    MF_TRY(store, image::ImageStore::Open(cfg_.state_dir));
    store_ = std::move(store);
    MF_TRY(cache, cache::StepCache::Open(cfg_.state_dir));
    cache_.emplace(std::move(cache));
    // Containers of a previous run of this worker (killed) are reclaimed here.
    MF_TRY(local, LocalWorker::Open(cfg_.state_dir, "daemon-" + std::to_string(::getpid()), cfg_.allow_insecure));
    local_ = std::move(local);
    local_->Fill(env_, cfg_.step_timeout);
    env_.store = store_.get();
    env_.cache = &*cache_;
    env_.sessions = &sessions_;

    MF_TRY(native, DetectNativePlatform());
    oci::Platform np{native.os, native.architecture, native.variant};
    platforms_.emplace_back(np, false);
    auto emulated = DetectEmulatedPlatforms();
    if (emulated.ok())
      for (const auto& e : *emulated) {
        oci::Platform p{e.platform.os, e.platform.architecture, e.platform.variant};
        if (!(p == np)) platforms_.emplace_back(p, true);
      }

    MF_TRY(zap, wire::ZapHandler::Start(ctx_, [this](const std::string& key) -> std::optional<std::string> {
      if (key == token_.server_public_key) return std::string("coordinator");
      std::lock_guard lock(mu_);
      if (peer_keys_.count(key)) return std::string("peer");
      return std::nullopt;
    }));
    zap_ = std::move(zap);
    return Ok();
  }

  // ------------------------------------------------------------ blob server

  Expected<void> StartPeerServer() {
    MF_TRY(hp, SplitHostPort(cfg_.listen, "--listen"));
    auto server = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::router);
    wire::MakeCurveServer(*server, keys_);
    MF_TRY_VOID(wire::ApplySocketDefaults(*server));
    std::string bind = "tcp://" + (hp.first == "*" ? std::string("0.0.0.0") : hp.first) + ":" +
                       (hp.second == 0 ? std::string("*") : std::to_string(hp.second));
    try {
      server->bind(bind);
    } catch (const zmq::error_t& e) {
      return MakeError(ErrorKind::kInvalidInput, "worker.listen",
                       "cannot listen on " + cfg_.listen + ": " + e.what());
    }
    std::string bound = server->get(zmq::sockopt::last_endpoint);
    auto port = bound.substr(bound.rfind(':') + 1);
    if (!cfg_.advertise.empty()) {
      MF_TRY_VOID(SplitHostPort(cfg_.advertise, "--advertise"));
      peer_endpoint_ = "tcp://" + cfg_.advertise;
    } else if (hp.first == "0.0.0.0" || hp.first == "*") {
      peer_endpoint_ = "tcp://" + LocalAddressToward(coordinator_host_) + ":" + port;
    } else {
      peer_endpoint_ = "tcp://" + hp.first + ":" + port;
    }
    MF_LOG_INFO("serving blobs on {} (advertised as {})", bound, peer_endpoint_);
    peer_thread_ = std::thread([this, s = std::move(server)]() mutable { ServeBlobs(*s); });
    return Ok();
  }

  void ServeBlobs(zmq::socket_t& server) {
    wire::BlobPathFn path_of = [this](const std::string& digest) -> Expected<std::string> {
      MF_TRY(has, store_->blobs().Has(digest));
      if (!has) return cas::NotFoundError(digest);
      return store_->blobs().BlobPath(digest);
    };
    try {
      while (!peer_stop_) {
        SendPushReplies(server);
        zmq::pollitem_t item{server.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) <= 0) continue;
        zmq::message_t id, body;
        if (!server.recv(id) || !id.more() || !server.recv(body)) continue;
        while (body.more()) {  // drain stray frames
          zmq::message_t extra;
          if (!server.recv(extra)) break;
          if (!extra.more()) break;
        }
        last_served_ = Clock::now().time_since_epoch().count();
        const std::string_view bytes(static_cast<const char*>(body.data()), body.size());
        if (auto type = wire::PeekClusterType(bytes); type.ok() && *type == wire::ClusterType::kPushBlobs) {
          const char* user = nullptr;
          try {
            user = body.gets("User-Id");
          } catch (const zmq::error_t&) {
          }
          if (!user || std::string(user) != "coordinator") {
            MF_LOG_WARN("refused a push request from a peer; only the coordinator may ask");
            continue;
          }
          StartPush(id.to_string(), bytes);
          continue;
        }
        auto frames = wire::AnswerBlobRequest(
            std::string_view(static_cast<const char*>(body.data()), body.size()), path_of);
        if (frames.empty()) continue;
        if (auto sent = wire::SendFrames(server, frames, &id); !sent.ok())
          MF_LOG_WARN("blob answer not sent: {}", sent.error().ToString());
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != ETERM) MF_LOG_ERROR("blob server stopped: {}", e.what());
    }
  }

  // ------------------------------------------------------------ pushes

  /// A push the coordinator asked for runs on its own thread (uploads take
  /// long; the blob server keeps serving); its reply goes out from the blob
  /// server's thread.
  void StartPush(std::string to, std::string_view bytes) {
    auto req = wire::DecodePushBlobs(bytes);
    if (!req.ok()) {
      wire::PushBlobsReplyData bad;
      bad.error = std::move(req).error();
      QueuePushReply(std::move(to), bad);
      return;
    }
    std::lock_guard lock(push_mu_);
    // Those that ended are joined here (a joinable thread keeps its stack).
    for (auto it = push_threads_.begin(); it != push_threads_.end();) {
      if (!*it->second) {
        ++it;
        continue;
      }
      it->first.join();
      it = push_threads_.erase(it);
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    push_threads_.emplace_back(std::thread([this, done, to = std::move(to), r = std::move(*req)]() mutable {
                                 QueuePushReply(std::move(to), PushLayers(r));
                                 *done = true;
                               }),
                               done);
  }

  wire::PushBlobsReplyData PushLayers(const wire::PushBlobsData& req) {
    wire::PushBlobsReplyData reply;
    const auto t0 = Clock::now();
    auto run = [&]() -> Expected<void> {
      MF_TRY(target, oci::ParseReference(req.reference));
      MF_TRY(client, registry::RegistryClient::Create(target.domain, cfg_.registry));
      std::atomic<std::uint32_t> uploaded{0}, mounted{0}, existing{0};
      MF_TRY_VOID(registry::ParallelFor(req.layers.size(), 4, [&](std::size_t i) -> Expected<void> {
        const auto& l = req.layers[i];
        oci::Descriptor d;
        d.media_type = l.media_type;
        MF_TRY(digest, oci::ParseDigest(l.digest));
        d.digest = digest;
        d.size = static_cast<std::int64_t>(l.size);
        MF_TRY(how, client->PushBlob(target.Repository(), d, store_->blobs()));
        if (how == registry::BlobPush::kUploaded) ++uploaded;
        if (how == registry::BlobPush::kMounted) ++mounted;
        if (how == registry::BlobPush::kExisted) ++existing;
        return Ok();
      }));
      reply.uploaded = uploaded;
      reply.mounted = mounted;
      reply.existing = existing;
      return Ok();
    };
    if (auto r = run(); !r.ok()) {
      MF_LOG_WARN("pushing {} layer(s) to {}: {}", req.layers.size(), req.reference, r.error().message);
      reply.error = std::move(r).error();
      return reply;
    }
    MF_LOG_INFO("pushed {} layer(s) to {} ({} uploaded, {} mounted, {} already there) in {} ms", req.layers.size(),
                req.reference, reply.uploaded, reply.mounted, reply.existing,
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    return reply;
  }

  void QueuePushReply(std::string to, const wire::PushBlobsReplyData& reply) {
    auto bytes = wire::EncodePushBlobsReply(reply);
    if (!bytes.ok()) return;
    std::lock_guard lock(push_mu_);
    push_replies_.emplace_back(std::move(to), std::move(*bytes));
  }

  void SendPushReplies(zmq::socket_t& server) {
    std::deque<std::pair<std::string, std::string>> out;
    {
      std::lock_guard lock(push_mu_);
      out.swap(push_replies_);
    }
    for (const auto& [to, bytes] : out) {
      try {
        server.send(zmq::buffer(to), zmq::send_flags::sndmore);
        server.send(zmq::buffer(bytes), zmq::send_flags::none);
      } catch (const zmq::error_t& e) {
        MF_LOG_WARN("push reply not sent: {}", e.what());
      }
    }
  }

  // ------------------------------------------------------------ joining

  std::string IdentityFile() const { return cfg_.state_dir + "/worker.json"; }

  Expected<void> Join() {
    {
      std::ifstream in(IdentityFile());
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object() && j.value("coordinator", "") == token_.server_public_key &&
          wire::IsValidWireId(j.value("id", ""))) {
        worker_id_ = j.value("id", "");
        MF_LOG_INFO("worker {} rejoins", worker_id_);
        return Ok();
      }
    }
    return JoinWithToken();
  }

  Expected<void> JoinWithToken() {
    zmq::socket_t sock(ctx_, zmq::socket_type::dealer);
    wire::MakeCurveClient(sock, join_keys_, token_.server_public_key);
    MF_TRY_VOID(wire::ApplySocketDefaults(sock));
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(coordinator_);
    wire::JoinData j;
    j.worker_id = cfg_.id.empty() ? IdFrom(HostName()) : cfg_.id;
    j.public_key = keys_.public_key;
    j.hostname = HostName();
    j.platforms = platforms_;
    j.slots = std::max(1u, cfg_.slots);
    j.peer_endpoint = peer_endpoint_;
    j.cpus = std::thread::hardware_concurrency();
    j.memory_bytes = Memory();
    j.software_version = kVersion;
    MF_TRY(bytes, wire::EncodeJoin(j));
    sock.send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline && !stop_) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) <= 0) continue;
      zmq::message_t m;
      if (!sock.recv(m)) continue;
      auto reply = wire::DecodeJoinReply(std::string_view(static_cast<const char*>(m.data()), m.size()));
      if (!reply.ok()) return std::move(reply).error().With("joining " + coordinator_);
      if (reply->error)
        return MakeError(ErrorKind::kSecurity, "worker.join.refused",
                         "the coordinator refused to admit this worker: " + reply->error->message);
      worker_id_ = reply->worker_id;
      nlohmann::json rec{{"id", worker_id_}, {"coordinator", token_.server_public_key}};
      MF_TRY_VOID(fs::WriteFileAtomic(IdentityFile(), rec.dump() + "\n"));
      MF_LOG_INFO("joined {} as worker {}", coordinator_, worker_id_);
      return Ok();
    }
    return MakeError(ErrorKind::kTransient, "worker.join.timeout",
                     "no answer from the coordinator at " + coordinator_ +
                         " (wrong address, or a token of another coordinator?)");
  }

  // ------------------------------------------------------------ jobs

  void StartSlots() {
    WorkerLoopOptions wo;
    wo.worker_id = worker_id_;
    wo.endpoint = coordinator_;
    wo.slots = std::max(1u, cfg_.slots);
    wo.platforms = platforms_;
    wo.configure_socket = [this](zmq::socket_t& s) {
      wire::MakeCurveClient(s, keys_, token_.server_public_key);
      (void)wire::ApplySocketDefaults(s);
      // A draining slot closes right after its last StageResult: give it
      // time to leave.
      s.set(zmq::sockopt::linger, 5'000);
      // A coordinator gone for good must not hold a draining slot forever;
      // what is lost is re-leased by the coordinator anyway.
      s.set(zmq::sockopt::sndtimeo, 30'000);
    };
    wo.prepare = [this](const wire::StageJobData& job) { return Prepare(job); };
    wo.on_start = [this](const wire::StageJobData& job) {
      MF_LOG_INFO("job {} started: stage {} for {} (build {})", job.job_id, job.stage,
                  job.target_platform.ToString(), job.build_id);
      std::lock_guard lock(mu_);
      running_.insert(job.job_id);
    };
    wo.on_end = [this](const wire::StageJobData& job, const wire::StageResultData& r) {
      if (r.error)
        MF_LOG_INFO("job {} failed: stage {} for {} (build {}): {}", job.job_id, job.stage,
                    job.target_platform.ToString(), job.build_id, r.error->message);
      else
        MF_LOG_INFO("job {} done: stage {} for {} (build {})", job.job_id, job.stage,
                    job.target_platform.ToString(), job.build_id);
      last_job_end_ = Clock::now().time_since_epoch().count();
      std::lock_guard lock(mu_);
      running_.erase(job.job_id);
      // Out of space (or memory): say so until a job goes through.
      if (r.error && r.error->kind == ErrorKind::kResourceExhausted)
        last_exhausted_ = "its last job ran out of resources: " + r.error->message;
      else if (!r.error)
        last_exhausted_.clear();
    };
    wo.draining = &draining_;
    loop_ = std::make_unique<WorkerLoop>(ctx_, env_, wo);
  }

  /// Why this worker would rather stay idle now ("" = healthy), logged
  /// when it changes (RELIABILITY H8, prefer_being_idle).
  std::string Degraded(std::uint64_t disk_free) {
    std::string why;
    if (disk_free < cfg_.min_free_disk) {
      why = "low disk: " + std::to_string(disk_free >> 20) + " MiB free in " + cfg_.state_dir + " (minimum " +
            std::to_string(cfg_.min_free_disk >> 20) + " MiB)";
    } else {
      std::lock_guard lock(mu_);
      why = last_exhausted_;
    }
    if (why != degraded_) {
      if (why.empty()) MF_LOG_INFO("healthy again");
      else MF_LOG_WARN("degraded: {}", why);
      degraded_ = why;
    }
    return why;
  }

  /// Connections to blob servers, kept for one job's prefetch (a context
  /// of thousands of files is one CURVE handshake per server, not per file).
  using Connections = std::map<std::string, std::unique_ptr<zmq::socket_t>>;

  zmq::socket_t& Connect(Connections& conns, const std::string& endpoint, const std::string& key) {
    auto& sock = conns[endpoint];
    if (!sock) {
      sock = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
      wire::MakeCurveClient(*sock, keys_, key);
      (void)wire::ApplySocketDefaults(*sock);
      sock->set(zmq::sockopt::linger, 0);
      sock->connect(endpoint);
    }
    return *sock;
  }

  /// Fetches `digest` from the first holder that has it. A peer that has
  /// not heard of this worker yet refuses the handshake silently, so the
  /// first round gives each holder a few seconds, the second one more (on a
  /// fresh connection).
  Expected<void> Fetch(const wire::BlobSourceData& src, Connections& conns) {
    std::optional<Error> last;
    std::vector<wire::BlobHolder> holders = src.holders;
    if (holders.empty()) holders.push_back({});  // the coordinator
    for (auto timeout : {std::chrono::seconds(4), std::chrono::seconds(20)}) {
      for (const auto& h : holders) {
        std::string endpoint = h.endpoint.empty() ? coordinator_ : h.endpoint;
        std::string key = h.public_key.empty() ? token_.server_public_key : h.public_key;
        if (endpoint == peer_endpoint_) continue;  // ourselves: we lack it
        wire::DealerChannel ch(Connect(conns, endpoint, key));
        wire::FetchOptions fo;
        fo.idle_timeout = timeout;
        auto t0 = Clock::now();
        auto got = wire::FetchBlob(ch, src.digest, store_->blobs(), fo);
        if (got.ok()) {
          MF_LOG_INFO("fetched {} ({} bytes) from {} in {} ms", src.digest, *got, endpoint,
                      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
          return Ok();
        }
        MF_LOG_WARN("fetching {} from {}: {}", src.digest, endpoint, got.error().message);
        last = std::move(got).error();
        // Answers still in flight would confuse the next fetch: start over.
        if (last->code != "cas.not_found") conns.erase(endpoint);
      }
    }
    return MakeError(ErrorKind::kTransient, "worker.fetch",
                     "no holder could send " + src.digest + (last ? ": " + last->message : ""));
  }

  Expected<void> Prepare(const wire::StageJobData& job) {
    if (!job.supplement) return Ok();
    const auto& sup = *job.supplement;
    image::LayerIndex layers(store_->state_dir() + "/content");
    Connections conns;
    for (const auto& src : sup.sources) {
      MF_TRY(has, store_->blobs().Has(src.digest));
      if (!has) MF_TRY_VOID(Fetch(src, conns));
      if (!src.diff_id.empty()) {
        oci::Descriptor d;
        d.media_type = src.media_type;
        MF_TRY(dg, oci::ParseDigest(src.digest));
        d.digest = dg;
        MF_TRY(size, store_->blobs().Stat(src.digest));
        d.size = static_cast<std::int64_t>(size);
        MF_TRY_VOID(layers.Record(src.diff_id, d));
      }
    }
    for (const auto& cs : sup.cached_steps) {
      cache::StepRecord rec{cs.config_digest, {}};
      for (const auto& l : cs.layers) rec.layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
      MF_TRY_VOID(cache_->Put(cs.key, rec));
    }
    // The build's session: its context (rebuilt once per build on this
    // worker) and the secrets of the steps sent here.
    std::lock_guard lock(session_mu_);
    auto old = sessions_.Get(job.build_id);
    auto session = std::make_shared<BuildSession>(old ? *old : BuildSession{});
    // Each job brings the context entries its steps read; a later job of
    // the build on this worker adds the ones it lacks (a job running here
    // meanwhile reads none of them: they are outside what it may read).
    if ((sup.reads_context || !sup.context.empty()) && session->context_dir.empty()) {
      std::string dir = cfg_.state_dir + "/contexts/" + job.build_id;
      ::mkdir((cfg_.state_dir + "/contexts").c_str(), 0700);
      ForgetOldContexts(job.build_id);
      MF_TRY_VOID(wire::MaterializeContext(dir, sup.context, store_->blobs()));
      session->context_dir = dir;
      for (const auto& f : sup.context) session->context_have.insert(f.path);
      if (sup.dockerignore) {
        MF_TRY(m, dockerfile::IgnoreMatcher::Parse(*sup.dockerignore, ".dockerignore"));
        session->ignore = std::move(m);
      }
    } else if (!sup.context.empty()) {
      std::vector<wire::ContextFileData> more;
      for (const auto& f : sup.context)
        if (S_ISDIR(f.mode) || !session->context_have.count(f.path)) more.push_back(f);
      if (std::any_of(more.begin(), more.end(), [](const auto& f) { return !S_ISDIR(f.mode); })) {
        MF_TRY_VOID(wire::AddToContext(session->context_dir, more, store_->blobs()));
        for (const auto& f : more) session->context_have.insert(f.path);
      }
    }
    if (sup.reads_context)
      MF_LOG_DEBUG("job {}: context entries {} of this build here: {}", job.job_id, sup.context.size(),
                   session->context_have.size());
    for (const auto& [id, data] : sup.secrets) session->secrets[id] = data;
    sessions_.Put(job.build_id, session);
    last_used_[job.build_id] = Clock::now();
    return Ok();
  }

  /// Contexts (and sessions) of builds that last used this worker over an
  /// hour ago: their build is over. Called with session_mu_ held.
  void ForgetOldContexts(const std::string& keep) {
    auto now = Clock::now();
    last_used_[keep] = now;
    for (auto it = last_used_.begin(); it != last_used_.end();) {
      if (it->first == keep || now - it->second < std::chrono::hours(1)) {
        ++it;
        continue;
      }
      std::error_code ec;
      std::filesystem::remove_all(cfg_.state_dir + "/contexts/" + it->first, ec);
      sessions_.Remove(it->first);
      it = last_used_.erase(it);
    }
  }

  // ------------------------------------------------------------ control

  Expected<void> Control() {
    zmq::socket_t sock(ctx_, zmq::socket_type::dealer);
    wire::MakeCurveClient(sock, keys_, token_.server_public_key);
    (void)wire::ApplySocketDefaults(sock);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::routing_id, worker_id_ + "-ctl");
    sock.connect(coordinator_);
    auto interval = std::chrono::milliseconds(1000);
    auto next = Clock::now();
    auto last_reply = Clock::now();
    bool answered = false;
    std::optional<Error> failure;
    while (true) {
      // Never answered: the coordinator does not know this key (its state
      // was reset, or the worker was removed). Join again with the token;
      // a removed worker is refused there, with the reason.
      if (!answered && !draining_ && Clock::now() - last_reply > std::chrono::seconds(8)) {
        MF_LOG_WARN("the coordinator does not answer this worker's key; joining again with the token");
        auto j = JoinWithToken();
        if (!j.ok() && j.error().code == "worker.join.refused") {
          MF_LOG_ERROR("{}", j.error().message);
          failure = std::move(j).error();
          draining_ = true;
        }
        last_reply = Clock::now();
      }
      if (stop_ && !draining_) {
        MF_LOG_INFO("draining: finishing running jobs, taking no new ones");
        draining_ = true;
        next = Clock::now();
      }
      if (draining_) {
        std::lock_guard lock(mu_);
        if (running_.empty()) break;
      }
      if (Clock::now() >= next) {
        wire::HeartbeatData h;
        h.worker_id = worker_id_;
        h.platforms = platforms_;
        h.slots = std::max(1u, cfg_.slots);
        {
          std::lock_guard lock(mu_);
          h.running_jobs.assign(running_.begin(), running_.end());
        }
        for (auto& [job, epoch] : loop_->Leases()) h.running_leases.push_back({std::move(job), epoch});
        h.disk_free_bytes = DiskFree(cfg_.state_dir);
        h.load_milli = LoadMilli();
        h.draining = draining_;
        h.peer_endpoint = peer_endpoint_;
        h.cpus = std::thread::hardware_concurrency();
        h.memory_bytes = Memory();
        h.hostname = HostName();
        h.degraded = Degraded(h.disk_free_bytes);
        h.members_version = members_version_;
        auto bytes = wire::EncodeHeartbeat(h);
        if (bytes.ok()) sock.send(zmq::buffer(*bytes), zmq::send_flags::dontwait);
        next = Clock::now() + interval;
      }
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) {
        if (Clock::now() - last_reply > std::chrono::seconds(30)) {
          MF_LOG_WARN("no answer from the coordinator for 30 s; still trying");
          last_reply = Clock::now();
        }
        continue;
      }
      zmq::message_t m;
      if (!sock.recv(m)) continue;
      auto reply = wire::DecodeHeartbeatReply(std::string_view(static_cast<const char*>(m.data()), m.size()));
      if (!reply.ok()) {
        MF_LOG_WARN("bad heartbeat reply: {}", reply.error().message);
        continue;
      }
      last_reply = Clock::now();
      answered = true;
      if (reply->error) {
        if (reply->error->code == "coordinator.worker.revoked") {
          MF_LOG_ERROR("this worker was removed from the cluster: {}", reply->error->message);
          draining_ = true;
          continue;
        }
        MF_LOG_WARN("coordinator: {}", reply->error->message);
        continue;
      }
      // Drained by the operator: the coordinator sends no new jobs; this
      // worker stays up and keeps serving its blobs to peers.
      if (reply->drain && !drained_) MF_LOG_INFO("drained by the operator: no new jobs; still serving blobs");
      drained_ = reply->drain;
      // Runs the coordinator no longer wants (the build failed or was
      // cancelled, or the lease went to another worker while this one was
      // out of reach): stopped now rather than finished for nothing.
      for (const auto& lease : reply->cancel)
        if (loop_->Cancel(lease.job_id, lease.lease_epoch))
          MF_LOG_INFO("job {} (lease {}) cancelled: {}", lease.job_id, lease.lease_epoch, reply->cancel_reason);
      // The whole list now and then (it drops who left), else who joined.
      std::lock_guard lock(mu_);
      if (reply->members_full) {
        peer_keys_.clear();
        members_version_ = reply->members_version;
      }
      for (const auto& mb : reply->members) peer_keys_.insert(mb.public_key);
    }
    if (failure) return std::move(*failure);
    return Ok();
  }

  void Shutdown() {
    draining_ = true;
    if (loop_) loop_->Join();
    loop_.reset();
    // The results of the last jobs may still be fetched from here: serve
    // until neither a job ended nor a blob was asked for in the last 2 s
    // (at most a minute).
    auto deadline = Clock::now() + std::chrono::seconds(60);
    auto busy_until = [&] {
      return Clock::time_point(Clock::duration(std::max(last_served_.load(), last_job_end_.load()))) +
             std::chrono::seconds(2);
    };
    while (Clock::now() < deadline && Clock::now() < busy_until())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Pushes in progress end first, and their replies go out.
    std::vector<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> pushes;
    {
      std::lock_guard lock(push_mu_);
      pushes.swap(push_threads_);
    }
    for (auto& [t, done] : pushes) t.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    peer_stop_ = true;
    if (peer_thread_.joinable()) peer_thread_.join();
    zap_.reset();
    local_.reset();
    std::error_code ec;
    std::filesystem::remove_all(cfg_.state_dir + "/contexts", ec);
    MF_LOG_INFO("worker {} stopped", worker_id_);
  }

  const WorkerDaemonConfig& cfg_;
  const std::atomic<bool>& stop_;
  zmq::context_t ctx_{1};
  wire::CurveKeyPair keys_, join_keys_;
  wire::JoinToken token_;
  std::string coordinator_host_;
  std::uint16_t coordinator_port_ = 0;
  std::string coordinator_;
  std::string peer_endpoint_;
  std::string worker_id_;
  std::vector<std::pair<oci::Platform, bool>> platforms_;

  std::unique_ptr<image::ImageStore> store_;
  std::optional<cache::StepCache> cache_;
  std::unique_ptr<LocalWorker> local_;
  SessionRegistry sessions_;
  std::mutex session_mu_;
  std::map<std::string, Clock::time_point> last_used_;  ///< build id -> last job here
  WorkerEnv env_;
  std::unique_ptr<wire::ZapHandler> zap_;
  std::unique_ptr<WorkerLoop> loop_;
  std::thread peer_thread_;
  std::atomic<bool> peer_stop_{false};
  std::mutex push_mu_;
  /// Push threads and whether each has ended; guarded by push_mu_.
  std::vector<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> push_threads_;
  std::deque<std::pair<std::string, std::string>> push_replies_;  ///< (peer identity, reply); push_mu_
  std::atomic<Clock::rep> last_served_{0};
  std::atomic<Clock::rep> last_job_end_{0};
  std::atomic<bool> draining_{false};
  bool drained_ = false;

  std::mutex mu_;
  std::set<std::string> peer_keys_;
  std::set<std::string> running_;
  std::string last_exhausted_;  ///< guarded by mu_
  std::string degraded_;        ///< as last reported (heartbeat thread)
  std::uint64_t members_version_ = 0;  ///< of the full member list held (control thread)
};

}  // namespace

Expected<void> RunWorkerDaemon(const WorkerDaemonConfig& config, const std::atomic<bool>& stop) {
  Daemon d(config, stop);
  return d.Run();
}

}  // namespace manifold::worker
