#include "coordinator/daemon/coordinator_daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <streambuf>
#include <thread>
#include <utility>
#include <zmq.hpp>

#include <nlohmann/json.hpp>

#include "common/base/log.h"
#include "common/fs/atomic_file.h"
#include "common/image/image_store.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/wire/beacon.h"
#include "common/wire/blob_transfer.h"
#include "common/wire/cluster.h"
#include "common/wire/context_tree.h"
#include "common/wire/curve.h"
#include "common/wire/socket_options.h"
#include "coordinator/build/builder.h"
#include "coordinator/build/cluster_backend.h"
#include "coordinator/state/cache_index.h"

namespace manifold::coordinator {
namespace {

using Clock = std::chrono::steady_clock;
using Frames = std::vector<std::string>;

std::string Str(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

/// Receives one multipart message.
bool RecvAll(zmq::socket_t& s, Frames& out, std::string* user_id = nullptr) {
  out.clear();
  while (true) {
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) return !out.empty();
    if (user_id && out.size() == 1) {
      const char* u = nullptr;
      try {
        u = m.gets("User-Id");
      } catch (const zmq::error_t&) {
      }
      *user_id = u ? u : "";
    }
    out.push_back(Str(m));
    if (!m.more()) return true;
  }
}

void SendAll(zmq::socket_t& s, const Frames& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i)
    s.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::string StripPrefix(const std::string& s, const std::string& p) {
  return s.starts_with(p) ? s.substr(p.size()) : "";
}

struct Keys {
  wire::CurveKeyPair server, join;
};

Expected<Keys> LoadKeys(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec)
    return MakeError(ErrorKind::kInvalidInput, "coordinator.state",
                     "cannot create the state dir " + state_dir + ": " + ec.message());
  ::chmod(state_dir.c_str(), 0700);
  Keys k;
  MF_TRY(server, wire::LoadOrCreateKeyPair(state_dir + "/coordinator.key"));
  MF_TRY(join, wire::LoadOrCreateKeyPair(state_dir + "/join.key"));
  k.server = server;
  k.join = join;
  return k;
}

Expected<std::set<std::string>> LoadClients(const std::string& state_dir) {
  std::set<std::string> out;
  std::ifstream in(state_dir + "/clients");
  std::string line;
  while (std::getline(in, line))
    if (wire::IsZ85Key(line)) out.insert(line);
  return out;
}

// ---------------------------------------------------------------- state

struct WorkerState {
  std::string id, key, hostname, endpoint;
  wire::PlatformList platforms;
  std::uint32_t slots = 0, cpus = 0, load_milli = 0;
  std::uint64_t memory = 0, disk_free = 0;
  bool revoked = false;
  bool drain = false;     ///< the operator asked (persisted)
  bool draining = false;  ///< the worker says so
  bool connected = false;
  Clock::time_point last_seen;
  std::set<std::string> busy;  ///< slot ids running a job
  std::set<std::string> withdrawn;  ///< slots told to the build as gone
  /// Slots a job could not be sent to (not connected yet): offered to the
  /// build again with the next heartbeat.
  std::set<std::string> unreachable;
  /// Why the worker would rather stay idle (it says so); "" = healthy.
  std::string degraded;
  /// Out of rotation until then after failing job after job (kept in
  /// workers.json across coordinator restarts).
  Clock::time_point quarantined_until{};
  std::string quarantine_note;
  /// When it was last sent the whole member list.
  Clock::time_point members_sent{};

  /// A member of the farm: its key is admitted by the other workers.
  bool Live() const { return connected && !revoked; }
  bool Quarantined() const { return Clock::now() < quarantined_until; }
  bool Takes() const { return Live() && !drain && !draining && !Quarantined(); }
};

/// Idle slots of a worker that takes no new jobs, not yet withdrawn.
std::vector<std::string> Withdraw(WorkerState& w) {
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < w.slots; ++i) {
    std::string s = w.id + "-s" + std::to_string(i);
    if (w.busy.count(s) || w.withdrawn.count(s)) continue;
    w.withdrawn.insert(s);
    out.push_back(s);
  }
  return out;
}

/// Everything the reactor, the ZAP handler and the build thread share.
struct Shared {
  std::mutex mu;
  std::map<std::string, WorkerState> workers;
  /// Bumped whenever the set of live members changes (SetMembership).
  std::uint64_t members_version = 1;

  /// The one way a worker's connected/revoked state changes: the member
  /// list's version follows whether it is a member (Live) now.
  void SetMembership(WorkerState& w, bool connected, bool revoked) {
    const bool was = w.Live();
    w.connected = connected;
    w.revoked = revoked;
    if (w.Live() != was) ++members_version;
  }
  std::set<std::string> clients;
  Keys keys;
  std::string state_dir;

  std::mutex index_mu;
  std::unique_ptr<CacheIndex> index;

  /// Lease epochs, unique across builds and restarts (they start from the
  /// clock): a late result of one lease never passes for another's.
  const std::uint64_t first_epoch = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::atomic<std::uint64_t> next_epoch{first_epoch};
  /// Final cache keys a build's job is running for (RELIABILITY H6).
  std::set<std::string> running_keys;

  Expected<void> SaveWorkers() {
    nlohmann::json j = nlohmann::json::array();
    const auto now = Clock::now();
    const auto wall = std::chrono::system_clock::now();
    for (const auto& [id, w] : workers) {
      nlohmann::json e{{"id", id}, {"key", w.key}, {"hostname", w.hostname}, {"revoked", w.revoked},
                       {"drain", w.drain}};
      if (w.Quarantined()) {
        const auto until = wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(w.quarantined_until - now);
        e["quarantined_until"] = std::chrono::duration_cast<std::chrono::seconds>(until.time_since_epoch()).count();
        e["quarantine_note"] = w.quarantine_note;
      }
      j.push_back(std::move(e));
    }
    return fs::WriteFileAtomic(state_dir + "/workers.json", j.dump(1) + "\n");
  }

  Expected<void> LoadWorkers() {
    std::ifstream in(state_dir + "/workers.json");
    if (!in) return Ok();
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_array())
      return MakeError(ErrorKind::kInvalidInput, "coordinator.state",
                       state_dir + "/workers.json is not a JSON array");
    for (const auto& w : j) {
      if (!w.is_object()) continue;
      WorkerState s;
      s.id = w.value("id", "");
      s.key = w.value("key", "");
      s.hostname = w.value("hostname", "");
      s.revoked = w.value("revoked", false);
      s.drain = w.value("drain", false);
      // A quarantine outlives a restart, for the time it had left.
      const auto until = std::chrono::system_clock::time_point(std::chrono::seconds(w.value("quarantined_until", 0LL)));
      const auto left = until - std::chrono::system_clock::now();
      if (left > std::chrono::system_clock::duration::zero()) {
        s.quarantined_until = Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
        s.quarantine_note = w.value("quarantine_note", "");
      }
      if (wire::IsValidWireId(s.id) && wire::IsZ85Key(s.key)) workers[s.id] = s;
    }
    return Ok();
  }
};

// ---------------------------------------------------------------- build thread

/// A pipe to the reactor: frames out ("send", identity, body...), frames in
/// ("msg", identity, body... | "lost", slot).
class Pipe {
 public:
  /// `sock` is connected to the reactor's end already (created on the
  /// reactor thread, handed over before this thread started).
  explicit Pipe(std::unique_ptr<zmq::socket_t> sock) : sock_(std::move(sock)) {}
  void Send(const Frames& f) {
    std::lock_guard lock(mu_);
    SendAll(*sock_, f);
  }
  /// The next message: set aside ones first. nullopt on timeout.
  std::optional<Frames> Receive(std::chrono::milliseconds timeout) {
    if (!backlog_.empty()) {
      Frames f = std::move(backlog_.front());
      backlog_.pop_front();
      return f;
    }
    return ReceiveFresh(timeout);
  }
  std::optional<Frames> ReceiveFresh(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{sock_->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    Frames f;
    if (!RecvAll(*sock_, f)) return std::nullopt;
    return f;
  }
  /// Keeps a message for a later Receive (slot news during the upload).
  void SetAside(Frames f) { backlog_.push_back(std::move(f)); }

 private:
  std::mutex mu_;
  std::unique_ptr<zmq::socket_t> sock_;
  std::deque<Frames> backlog_;
};

/// Fetches from the client through the reactor.
class ClientChannel : public wire::ChunkChannel {
 public:
  ClientChannel(Pipe& pipe, std::string client) : pipe_(pipe), client_(std::move(client)) {}
  Expected<void> Send(const std::string& request) override {
    pipe_.Send({"send", client_, request});
    return Ok();
  }
  Expected<wire::ChunkAnswer> Receive(std::chrono::milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto f = pipe_.ReceiveFresh(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      if (!f) break;
      if (f->size() >= 3 && (*f)[0] == "msg" && (*f)[1] == client_) {
        wire::ChunkAnswer answer{std::move((*f)[2]), {}};
        if (f->size() > 3) answer.payload.rebuild((*f)[3].data(), (*f)[3].size());
        return answer;
      }
      pipe_.SetAside(std::move(*f));
    }
    return MakeError(ErrorKind::kTransient, "wire.blob.timeout",
                     "the client sent nothing for " + std::to_string(timeout.count() / 1000) + " s");
  }

 private:
  Pipe& pipe_;
  std::string client_;
};

/// Progress lines to the client, one BuildEvent per line.
class EventBuf : public std::streambuf {
 public:
  EventBuf(Pipe& pipe, std::string client) : pipe_(pipe), client_(std::move(client)) {}
  ~EventBuf() override { Flush(); }
  void Flush() {
    if (line_.empty()) return;
    wire::BuildEventData e;
    e.kind = wire::BuildEventData::Kind::kLine;
    e.text = std::move(line_);
    line_.clear();
    auto bytes = wire::EncodeBuildEvent(e);
    if (bytes.ok()) pipe_.Send({"send", client_, *bytes});
  }

 protected:
  int overflow(int c) override {
    if (c == EOF) return 0;
    line_ += static_cast<char>(c);
    if (c == '\n' || line_.size() > 64 * 1024) Flush();
    return c;
  }

 private:
  Pipe& pipe_;
  std::string client_;
  std::string line_;
};

class FarmBackend : public ClusterBackend {
 public:
  FarmBackend(Shared& shared, Pipe& pipe, zmq::context_t& ctx, image::ImageStore& store,
              const CoordinatorConfig& cfg)
      : shared_(shared), pipe_(pipe), ctx_(ctx), store_(store), cfg_(cfg) {}

  void Send(const std::string& slot, const std::string& bytes) override {
    pipe_.Send({"send", slot, bytes});
  }
  void Dispatch(const std::string& slot, const wire::LeaseData& lease, const std::string& bytes) override {
    pipe_.Send({"job", slot, bytes, lease.job_id, std::to_string(lease.lease_epoch)});
  }
  std::uint64_t NextEpoch() override { return ++shared_.next_epoch; }
  bool ClaimKey(const std::string& key) override {
    std::lock_guard lock(shared_.mu);
    return shared_.running_keys.insert(key).second;
  }
  void ReleaseKey(const std::string& key) override {
    std::lock_guard lock(shared_.mu);
    shared_.running_keys.erase(key);
  }
  std::optional<Incoming> Receive(std::chrono::milliseconds timeout) override {
    auto f = pipe_.Receive(timeout);
    if (!f || f->size() < 2) return std::nullopt;
    const std::string& what = (*f)[0];
    if (what == "lost") return Incoming{(*f)[1], "", Incoming::Kind::kLost};
    if (what == "taken") return Incoming{(*f)[1], "", Incoming::Kind::kTaken};
    if (what == "cancel") return Incoming{"", (*f)[1], Incoming::Kind::kCancelled};
    if (what == "msg" && f->size() >= 3) return Incoming{(*f)[1], (*f)[2], Incoming::Kind::kMessage};
    return std::nullopt;
  }
  std::string WorkerOf(const std::string& slot) const override {
    auto p = slot.rfind("-s");
    return p == std::string::npos ? slot : slot.substr(0, p);
  }
  int Load(const std::string& worker) const override {
    std::lock_guard lock(shared_.mu);
    auto it = shared_.workers.find(worker);
    return it == shared_.workers.end() ? 0 : static_cast<int>(it->second.busy.size());
  }

  Expected<std::optional<cache::StepRecord>> Lookup(const std::string& key) override {
    std::optional<cache::StepRecord> rec;
    {
      std::lock_guard lock(shared_.index_mu);
      MF_TRY(r, shared_.index->GetStep(key));
      rec = std::move(r);
    }
    if (!rec) return rec;
    if (Holders(rec->config_digest, 1, 0).empty()) return std::optional<cache::StepRecord>();
    for (const auto& l : rec->layers)
      if (Holders(l.digest, 1, 0).empty()) return std::optional<cache::StepRecord>();
    return rec;
  }

  Expected<void> Record(const std::vector<std::pair<std::string, cache::StepRecord>>& records,
                        const std::string& worker) override {
    std::lock_guard lock(shared_.index_mu);
    return shared_.index->PutStepsHeldBy(records, worker);
  }

  std::vector<wire::BlobHolder> Holders(const std::string& digest, std::size_t limit, std::size_t salt) override {
    // Peers first: workers fetch from each other directly and the
    // coordinator serves only what no live worker holds.
    std::vector<wire::BlobHolder> out;
    auto live = [&](const std::vector<std::string>& ids) {
      std::lock_guard lock(shared_.mu);
      for (const auto& id : ids) {
        if (limit > 0 && out.size() >= limit) break;
        auto it = shared_.workers.find(id);
        if (it == shared_.workers.end() || !it->second.Live() || it->second.endpoint.empty()) continue;
        out.push_back({it->second.endpoint, it->second.key});
      }
    };
    std::vector<std::string> ids;
    bool all = true;
    {
      std::lock_guard lock(shared_.index_mu);
      auto count = shared_.index->HolderCount(digest);
      if (limit > 0 && count.ok() && *count > 2 * limit) {
        // A window of twice the limit from a place the salt picks (then
        // around from the start); all of them only if too few are live.
        const std::size_t from = salt % *count;
        auto some = shared_.index->HoldersFrom(digest, from, 2 * limit);
        if (some.ok()) ids = std::move(*some);
        if (ids.size() < 2 * limit) {
          auto more = shared_.index->HoldersFrom(digest, 0, 2 * limit - ids.size());
          if (more.ok()) ids.insert(ids.end(), more->begin(), more->end());
        }
        all = false;
      } else {
        auto h = shared_.index->Holders(digest);
        if (h.ok()) ids = std::move(*h);
        if (limit > 0 && !ids.empty()) std::rotate(ids.begin(), ids.begin() + static_cast<long>(salt % ids.size()), ids.end());
      }
    }
    live(ids);
    if (!all && out.size() < limit) {
      out.clear();
      {
        std::lock_guard lock(shared_.index_mu);
        auto h = shared_.index->Holders(digest);
        ids = h.ok() ? std::move(*h) : std::vector<std::string>();
      }
      live(ids);
    }
    auto has = store_.blobs().Has(digest);
    if (has.ok() && *has) out.push_back({});
    return out;
  }

  std::vector<std::string> HeldBy(const std::string& digest, const std::vector<std::string>& candidates) override {
    std::vector<std::string> out;
    std::lock_guard lock(shared_.index_mu);
    auto count = shared_.index->HolderCount(digest);
    if (!count.ok() || *count == 0) return out;
    if (*count <= candidates.size()) {
      // Fewer holders than candidates: the holders, filtered.
      auto h = shared_.index->Holders(digest);
      if (!h.ok()) return out;
      std::set<std::string_view> want(candidates.begin(), candidates.end());
      for (auto& id : *h)
        if (want.count(id)) out.push_back(std::move(id));
      return out;
    }
    for (const auto& c : candidates) {
      auto held = shared_.index->Holds(digest, c);
      if (held.ok() && *held) out.push_back(c);
    }
    return out;
  }

  std::vector<std::string> HolderIds(const std::string& digest) override {
    std::lock_guard lock(shared_.index_mu);
    auto h = shared_.index->Holders(digest);
    return h.ok() ? std::move(*h) : std::vector<std::string>();
  }

  Expected<void> FetchToStore(const std::vector<std::string>& digests) override {
    for (const auto& d : digests) {
      MF_TRY(has, store_.blobs().Has(d));
      if (has) continue;
      std::optional<Error> last;
      bool ok = false;
      for (const auto& h : Holders(d, 8, std::hash<std::string>{}(d))) {
        if (h.endpoint.empty()) continue;
        auto sock = DealerTo(h.endpoint, h.public_key);
        wire::DealerChannel ch(*sock);
        wire::FetchOptions fo;
        fo.idle_timeout = std::chrono::seconds(20);
        auto got = wire::FetchBlob(ch, d, store_.blobs(), fo);
        if (got.ok()) {
          ok = true;
          break;
        }
        last = std::move(got).error();
      }
      if (!ok)
        return MakeError(ErrorKind::kTransient, "coordinator.fetch",
                         "no worker could send " + d + (last ? ": " + last->message : ""));
    }
    return Ok();
  }

  bool IsLive(const std::string& worker) const override {
    std::lock_guard lock(shared_.mu);
    auto it = shared_.workers.find(worker);
    return it != shared_.workers.end() && it->second.Live() && !it->second.endpoint.empty();
  }

  std::vector<WorkerPush> PushFromWorkers(
      const std::string& reference, const std::map<std::string, std::vector<wire::LayerData>>& layers) override {
    std::vector<WorkerPush> out;
    std::vector<std::unique_ptr<zmq::socket_t>> socks;
    for (const auto& [worker, ls] : layers) {
      WorkerPush p;
      p.worker = worker;
      p.layers = ls;
      std::string endpoint, key;
      {
        std::lock_guard lock(shared_.mu);
        auto it = shared_.workers.find(worker);
        if (it != shared_.workers.end() && it->second.Live()) {
          endpoint = it->second.endpoint;
          key = it->second.key;
        }
      }
      wire::PushBlobsData req{reference, ls};
      auto bytes = wire::EncodePushBlobs(req);
      if (endpoint.empty() || !bytes.ok()) {
        p.error = bytes.ok() ? MakeError(ErrorKind::kDisconnected, "coordinator.push", "it left the farm")
                             : std::move(bytes).error();
        socks.push_back(nullptr);
      } else {
        // To its blob server, with the coordinator's own key: only that key
        // may ask a worker to push.
        auto sock = DealerTo(endpoint, key);
        sock->send(zmq::buffer(*bytes), zmq::send_flags::none);
        socks.push_back(std::move(sock));
      }
      out.push_back(std::move(p));
    }
    // Uploads take as long as they take; a worker that leaves the farm
    // meanwhile has failed.
    const auto deadline = Clock::now() + std::chrono::hours(1);
    std::size_t waiting = 0;
    for (const auto& s : socks) waiting += s ? 1 : 0;
    while (waiting > 0 && Clock::now() < deadline) {
      std::vector<zmq::pollitem_t> items;
      std::vector<std::size_t> which;
      for (std::size_t i = 0; i < socks.size(); ++i)
        if (socks[i]) {
          items.push_back({socks[i]->handle(), 0, ZMQ_POLLIN, 0});
          which.push_back(i);
        }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
      for (std::size_t k = 0; k < items.size(); ++k) {
        const std::size_t i = which[k];
        auto& p = out[i];
        if (items[k].revents & ZMQ_POLLIN) {
          zmq::message_t m;
          if (!socks[i]->recv(m, zmq::recv_flags::dontwait)) continue;
          auto r = wire::DecodePushBlobsReply(std::string_view(static_cast<const char*>(m.data()), m.size()));
          if (!r.ok()) {
            p.error = std::move(r).error();
          } else {
            p.error = r->error;
            p.uploaded = r->uploaded;
            p.mounted = r->mounted;
            p.existing = r->existing;
          }
        } else if (!IsLive(p.worker)) {
          p.error = MakeError(ErrorKind::kDisconnected, "coordinator.push", "it left the farm while pushing");
        } else {
          continue;
        }
        socks[i].reset();
        --waiting;
      }
    }
    for (std::size_t i = 0; i < socks.size(); ++i)
      if (socks[i]) out[i].error = MakeError(ErrorKind::kTransient, "coordinator.push", "no answer within an hour");
    return out;
  }

  std::chrono::milliseconds worker_wait() const override { return cfg_.worker_wait; }

  std::set<std::string> DegradedWorkers() const override {
    std::set<std::string> out;
    std::lock_guard lock(shared_.mu);
    for (const auto& [id, w] : shared_.workers)
      if (!w.degraded.empty()) out.insert(id);
    return out;
  }

  std::chrono::milliseconds Quarantine(const std::string& worker, const std::string& why) override {
    std::lock_guard lock(shared_.mu);
    auto it = shared_.workers.find(worker);
    if (it == shared_.workers.end()) return cfg_.quarantine;
    auto& w = it->second;
    w.quarantined_until = Clock::now() + cfg_.quarantine;
    w.quarantine_note = why;
    MF_LOG_WARN("worker {} quarantined for {} s: {}", worker, cfg_.quarantine.count() / 1000, why);
    if (auto saved = shared_.SaveWorkers(); !saved.ok())
      MF_LOG_WARN("the quarantine of {} will not outlive a restart: {}", worker, saved.error().message);
    // Its idle slots are gone from this build already; the reactor takes
    // them from the others with the worker's next heartbeat, and gives them
    // back with the first one after the quarantine.
    return cfg_.quarantine;
  }

 private:
  /// A connection to a worker's blob server, with the coordinator's key.
  std::unique_ptr<zmq::socket_t> DealerTo(const std::string& endpoint, const std::string& public_key) {
    auto sock = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
    wire::MakeCurveClient(*sock, shared_.keys.server, public_key);
    (void)wire::ApplySocketDefaults(*sock);
    sock->set(zmq::sockopt::linger, 0);
    sock->connect(endpoint);
    return sock;
  }

  Shared& shared_;
  Pipe& pipe_;
  zmq::context_t& ctx_;
  image::ImageStore& store_;
  const CoordinatorConfig& cfg_;
};

/// What `manifold builds` lists of a build.
struct BuildSummaryLine {
  std::string platforms, tags;  ///< comma-separated
  Clock::time_point since;      ///< submitted (queued) or started (running)
};

std::string JoinComma(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

BuildSummaryLine SummaryOf(const wire::SubmitBuildData& s) {
  std::vector<std::string> platforms;
  for (const auto& p : s.platforms) platforms.push_back(p.ToString());
  return {JoinComma(platforms), JoinComma(s.tags), Clock::now()};
}

/// A submitted build waiting for --max-builds to let it start.
struct QueuedBuild {
  std::string client;  ///< ROUTER identity
  wire::SubmitBuildData submit;
  int number = 0;
  BuildSummaryLine line;
};

struct ActiveBuild {
  int number = 0;
  BuildSummaryLine line;
  std::string client;  ///< ROUTER identity
  std::unique_ptr<zmq::socket_t> pipe;  ///< reactor side
  std::thread thread;
  bool cancelled = false;  ///< told to stop already
};

/// What a job slot runs: one lease of one build's job.
struct SlotLease {
  int build = 0;
  wire::LeaseData lease;
};

void RunBuildThread(Shared& shared, const CoordinatorConfig& cfg, zmq::context_t& ctx,
                    std::unique_ptr<zmq::socket_t> pipe_socket, const std::string& client,
                    wire::SubmitBuildData submit, int number) {
  Pipe pipe(std::move(pipe_socket));
  auto send_event = [&](const wire::BuildEventData& e) {
    auto bytes = wire::EncodeBuildEvent(e);
    if (bytes.ok()) pipe.Send({"send", client, *bytes});
  };
  auto fail = [&](Error e) {
    MF_LOG_INFO("build {} failed: {}", number, e.message);
    wire::BuildEventData ev;
    ev.kind = wire::BuildEventData::Kind::kFailed;
    ev.error = std::move(e);
    send_event(ev);
  };
  std::string context_dir = cfg.state_dir + "/contexts/build-" + std::to_string(number);
  auto run = [&]() -> Expected<void> {
    MF_TRY(store, image::ImageStore::Open(cfg.state_dir));
    // 1. The context: only the files this coordinator lacks come up.
    std::set<std::string> missing;
    for (const auto& f : submit.context)
      if (S_ISREG(f.mode) && !f.digest.empty()) {
        MF_TRY(has, store->blobs().Has(f.digest));
        if (!has) missing.insert(f.digest);
      }
    std::uint64_t bytes = 0;
    ClientChannel channel(pipe, client);
    for (const auto& d : missing) {
      wire::FetchOptions fo;
      fo.idle_timeout = std::chrono::seconds(60);
      MF_TRY(n, wire::FetchBlob(channel, d, store->blobs(), fo));
      bytes += n;
    }
    // Images the client holds: the blobs this coordinator lacks come up, and
    // the client's names point at them here.
    std::uint64_t image_bytes = 0;
    int image_blobs = 0;
    auto fetch = [&](const std::string& digest, bool optional) -> Expected<bool> {
      MF_TRY(has, store->blobs().Has(digest));
      if (has) return true;
      wire::FetchOptions fo;
      fo.idle_timeout = std::chrono::seconds(60);
      auto n = wire::FetchBlob(channel, digest, store->blobs(), fo);
      if (!n.ok()) {
        if (optional && n.error().code == "cas.not_found") return false;
        return std::move(n).error();
      }
      image_bytes += *n;
      ++image_blobs;
      return true;
    };
    for (const auto& im : submit.images) {
      MF_TRY_VOID(fetch(im.digest, false));
      MF_TRY(bytes_root, store->blobs().ReadAll(im.digest));
      std::vector<std::string> manifests;
      if (im.media_type == oci::kOciImageIndex || im.media_type == oci::kDockerManifestList) {
        MF_TRY(index, oci::ParseIndex(bytes_root));
        for (const auto& m : index.manifests) {
          MF_TRY(got, fetch(m.digest.ToString(), true));  // the client may hold only some platforms
          if (got) manifests.push_back(m.digest.ToString());
        }
      } else {
        manifests.push_back(im.digest);
      }
      for (const auto& md : manifests) {
        MF_TRY(mbytes, store->blobs().ReadAll(md));
        MF_TRY(man, oci::ParseManifest(mbytes));
        MF_TRY_VOID(fetch(man.config.digest.ToString(), false));
        for (const auto& l : man.layers) MF_TRY_VOID(fetch(l.digest.ToString(), false));
      }
      oci::Descriptor root;
      root.media_type = im.media_type;
      MF_TRY(rd, oci::ParseDigest(im.digest));
      root.digest = rd;
      root.size = static_cast<std::int64_t>(im.size);
      MF_TRY(name, image::ImageStore::NormalizeName(im.reference));
      MF_TRY_VOID(store->Tag(name, root));
    }
    {
      wire::BuildEventData ev;
      if (!submit.images.empty())
        ev.text = "images: " + std::to_string(submit.images.size()) + " from the client, " +
                  std::to_string(image_blobs) + " blobs uploaded (" + std::to_string(image_bytes) + " bytes)\n";
      ev.text += "context: " + std::to_string(submit.context.size()) + " entries, " +
                std::to_string(missing.size()) + " files uploaded (" + std::to_string(bytes) +
                " bytes)\n";
      send_event(ev);
    }
    ::mkdir((cfg.state_dir + "/contexts").c_str(), 0700);
    MF_TRY_VOID(wire::MaterializeContext(context_dir, submit.context, store->blobs()));

    // 2. The build, as the embedded one, with the farm behind it.
    FarmBackend backend(shared, pipe, ctx, *store, cfg);
    BuildRequest req;
    req.context_dir = context_dir;
    req.dockerfile_content = submit.dockerfile;
    req.dockerfile_name = submit.dockerfile_name;
    req.dockerignore_content = submit.dockerignore;
    req.platforms = submit.platforms;
    req.target = submit.target;
    req.build_args = submit.build_args;
    req.tags = submit.tags;
    req.no_cache = submit.no_cache;
    req.no_cache_filter = submit.no_cache_filter;
    req.secrets = submit.secrets;
    req.allow = submit.allow;
    req.source_date_epoch = submit.source_date_epoch;
    req.compression = submit.compression;
    req.pull = submit.pull;
    req.push = submit.push;
    req.no_result = submit.no_result;
    req.progress = submit.progress;
    req.state_dir = cfg.state_dir;
    req.registry = cfg.registry;
    req.cluster = &backend;
    std::string trace;
    req.trace_out = &trace;
    EventBuf buf(pipe, client);
    std::ostream out(&buf);
    auto summary = RunBuild(req, out);
    out.flush();
    buf.Flush();
    if (!summary.ok()) return std::move(summary).error();
    if (!trace.empty()) {
      wire::BuildEventData ev;
      ev.kind = wire::BuildEventData::Kind::kTrace;
      ev.text = trace;
      send_event(ev);
    }
    wire::BuildEventData done;
    done.kind = wire::BuildEventData::Kind::kDone;
    done.index_digest = summary->index_digest;
    done.manifests = summary->manifests;
    done.pushed = summary->pushed;
    done.steps_executed = static_cast<std::uint32_t>(summary->steps_executed);
    done.steps_cached = static_cast<std::uint32_t>(summary->steps_cached);
    done.jobs_run = static_cast<std::uint32_t>(summary->jobs_run);
    done.jobs_cached = static_cast<std::uint32_t>(summary->jobs_cached);
    send_event(done);
    MF_LOG_INFO("build {} done: {} ({} steps run, {} cached)", number, summary->index_digest,
                summary->steps_executed, summary->steps_cached);
    return Ok();
  };
  auto r = run();
  if (!r.ok()) fail(std::move(r).error());
  std::error_code ec;
  std::filesystem::remove_all(context_dir, ec);
  pipe.Send({"done"});
}

// ---------------------------------------------------------------- reactor

class Coordinator {
 public:
  Coordinator(const CoordinatorConfig& cfg, const std::atomic<bool>& stop) : cfg_(cfg), stop_(stop) {}

  Expected<void> Run() {
    MF_TRY(keys, LoadKeys(cfg_.state_dir));
    shared_.keys = keys;
    shared_.state_dir = cfg_.state_dir;
    MF_TRY(clients, LoadClients(cfg_.state_dir));
    shared_.clients = std::move(clients);
    MF_TRY_VOID(shared_.LoadWorkers());
    MF_TRY(index, CacheIndex::Open(cfg_.state_dir + "/index.db"));
    shared_.index = std::move(index);
    MF_TRY(store, image::ImageStore::Open(cfg_.state_dir));
    store_ = std::move(store);
    // Leftovers of builds that were running when the coordinator died.
    std::error_code ec;
    std::filesystem::remove_all(cfg_.state_dir + "/contexts", ec);

    MF_TRY(zap, wire::ZapHandler::Start(ctx_, [this](const std::string& key) { return Authorize(key); }));
    zap_ = std::move(zap);

    auto colon = cfg_.listen.rfind(':');
    if (colon == std::string::npos)
      return MakeError(ErrorKind::kInvalidInput, "coordinator.listen",
                       "--listen \"" + cfg_.listen + "\" is not ADDR:PORT");
    router_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::router);
    wire::MakeCurveServer(*router_, shared_.keys.server);
    MF_TRY_VOID(wire::ApplySocketDefaults(*router_));
    router_->set(zmq::sockopt::router_mandatory, 1);
    router_->set(zmq::sockopt::linger, 0);
    try {
      router_->bind("tcp://" + cfg_.listen);
    } catch (const zmq::error_t& e) {
      return MakeError(ErrorKind::kInvalidInput, "coordinator.listen",
                       "cannot listen on " + cfg_.listen + ": " + e.what());
    }
    std::string bound = router_->get(zmq::sockopt::last_endpoint);
    port_ = static_cast<std::uint16_t>(std::atoi(bound.substr(bound.rfind(':') + 1).c_str()));
    MF_LOG_INFO("coordinator listening on {} (key {})", bound, wire::KeyFingerprint(shared_.keys.server.public_key));
    if (!cfg_.beacon_address.empty()) {
      MF_TRY(beacon, wire::BeaconSender::Create(cfg_.beacon_address, cfg_.beacon_port, port_,
                                                wire::KeyFingerprint(shared_.keys.server.public_key)));
      beacon_ = std::move(beacon);
      MF_LOG_INFO("announcing on UDP {}:{}", cfg_.beacon_address, cfg_.beacon_port);
    }
    Loop();
    for (auto& [n, b] : builds_) b->thread.join();
    builds_.clear();
    router_.reset();
    zap_.reset();
    return Ok();
  }

 private:
  std::optional<std::string> Authorize(const std::string& key) {
    if (key == shared_.keys.join.public_key) return std::string("join");
    std::lock_guard lock(shared_.mu);
    for (const auto& [id, w] : shared_.workers)
      if (w.key == key) {
        if (w.revoked) return std::nullopt;
        return "worker:" + id;
      }
    if (shared_.clients.count(key)) return std::string("client");
    // `manifold-coordinator allow-client` may have added it since.
    auto clients = LoadClients(shared_.state_dir);
    if (clients.ok()) shared_.clients = std::move(*clients);
    if (shared_.clients.count(key)) return std::string("client");
    return std::nullopt;
  }

  void Loop() {
    auto next_tick = Clock::now();
    while (!stop_) {
      std::vector<zmq::pollitem_t> items{{router_->handle(), 0, ZMQ_POLLIN, 0}};
      std::vector<int> numbers;
      for (const auto& [n, b] : builds_) {
        items.push_back({b->pipe->handle(), 0, ZMQ_POLLIN, 0});
        numbers.push_back(n);
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
      try {
        if (items[0].revents & ZMQ_POLLIN) {
          Frames f;
          std::string user;
          for (int i = 0; i < 256 && RecvAll(*router_, f, &user); ++i) OnRouter(f, user);
        }
        for (std::size_t i = 0; i < numbers.size(); ++i) {
          if (!(items[i + 1].revents & ZMQ_POLLIN)) continue;
          Frames f;
          while (true) {
            auto it = builds_.find(numbers[i]);  // "done" ends it
            if (it == builds_.end() || !RecvAll(*it->second->pipe, f)) break;
            OnPipe(numbers[i], f);
          }
        }
      } catch (const zmq::error_t& e) {
        MF_LOG_ERROR("reactor: {}", e.what());
      }
      if (!backlog_.empty()) FlushBacklogs();
      if (Clock::now() >= next_tick) {
        Tick();
        next_tick = Clock::now() + std::chrono::milliseconds(250);
      }
      while (!queue_.empty() && static_cast<int>(builds_.size()) < cfg_.max_builds) StartBuild();
    }
  }

  // ------------------------------------------------------------ timers

  void Tick() {
    auto now = Clock::now();
    std::vector<std::string> lost_slots;
    {
      std::lock_guard lock(shared_.mu);
      for (auto& [id, w] : shared_.workers) {
        if (!w.connected || now - w.last_seen < cfg_.heartbeat_timeout) continue;
        shared_.SetMembership(w, false, w.revoked);
        MF_LOG_WARN("worker {} lost (silent for {} ms); its jobs run elsewhere", id,
                    cfg_.heartbeat_timeout.count());
        for (std::uint32_t i = 0; i < w.slots; ++i) lost_slots.push_back(id + "-s" + std::to_string(i));
        w.busy.clear();
      }
    }
    for (const auto& s : lost_slots) {
      leases_.erase(s);
      ToBuilds({"lost", s});
    }
    // Clients waiting on a build hear from us at least every 2 s, so a
    // silent coordinator (restarted, or gone) is noticed quickly.
    if (now >= next_keepalive_) {
      next_keepalive_ = now + std::chrono::seconds(2);
      wire::BuildEventData alive;
      auto bytes = wire::EncodeBuildEvent(alive);
      if (bytes.ok()) {
        // A client that went away (killed, Ctrl-C) takes its build with it.
        for (const auto& [n, b] : builds_)
          if (!Send({b->client, *bytes}) && !b->cancelled) {
            MF_LOG_INFO("build {}: its client is gone; cancelling it", n);
            Cancel(*b, "the client went away");
          }
        for (const auto& q : queue_) Send({q.client, *bytes});
      }
    }
    if (beacon_ && now >= next_beacon_) {
      auto r = beacon_->Announce();
      if (!r.ok()) MF_LOG_DEBUG("beacon: {}", r.error().message);
      next_beacon_ = now + std::chrono::seconds(2);
    }
  }

  // ------------------------------------------------------------ dispatch

  void Reply(const std::string& identity, const Expected<std::string>& bytes) {
    if (!bytes.ok()) {
      MF_LOG_ERROR("cannot encode a reply: {}", bytes.error().ToString());
      return;
    }
    Send({identity, *bytes});
  }

  /// A message for one peer (f[0] is its identity). Never blocks the
  /// reactor: a peer whose queue is full (a client reading slowly, a hung
  /// worker) gets it later, in order, while everyone else is served. False
  /// when the peer is not connected.
  bool Send(const Frames& f) {
    auto queued = backlog_.find(f[0]);
    if (queued != backlog_.end()) {
      Queue(queued->second, f);
      return true;
    }
    switch (TrySend(f)) {
      case Sent::kYes:
        return true;
      case Sent::kUnreachable:
        return false;
      case Sent::kFull:
        Queue(backlog_[f[0]], f);
        return true;
    }
    return true;
  }

  enum class Sent { kYes, kFull, kUnreachable };
  Sent TrySend(const Frames& f) {
    try {
      for (std::size_t i = 0; i < f.size(); ++i) {
        auto flags = zmq::send_flags::dontwait | (i + 1 < f.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
        // Only the identity frame can meet a full queue: the rest follow.
        if (!router_->send(zmq::buffer(f[i]), flags)) return Sent::kFull;
      }
      return Sent::kYes;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return Sent::kUnreachable;
      throw;
    }
  }

  void Queue(std::deque<Frames>& q, const Frames& f) {
    if (q.size() >= kMaxBacklog) {
      MF_LOG_WARN("peer {} has not read {} messages; dropping the oldest", f[0].substr(0, 64), q.size());
      q.pop_front();
    }
    q.push_back(f);
  }

  /// What full queues held back, as far as they take it now. Messages for
  /// a peer that left go nowhere (its jobs come back when it is lost).
  void FlushBacklogs() {
    for (auto it = backlog_.begin(); it != backlog_.end();) {
      auto& q = it->second;
      while (!q.empty() && TrySend(q.front()) != Sent::kFull) q.pop_front();
      it = q.empty() ? backlog_.erase(it) : std::next(it);
    }
  }

  void ToBuild(int number, const Frames& f) {
    auto it = builds_.find(number);
    if (it != builds_.end()) SendAll(*it->second->pipe, f);
  }
  /// To every running build but `except`.
  void ToBuilds(const Frames& f, int except = 0) {
    for (const auto& [n, b] : builds_)
      if (n != except) SendAll(*b->pipe, f);
  }

  void OnRouter(const Frames& f, const std::string& user) {
    if (f.size() < 2) return;
    const std::string& identity = f[0];
    const std::string& body = f[1];
    auto type = wire::PeekClusterType(body);
    if (!type.ok()) {
      MF_LOG_WARN("dropped a message from {}: {}", user, type.error().message);
      return;
    }
    const std::string worker = StripPrefix(user, "worker:");
    const bool client = user == "join" || user == "client";
    switch (*type) {
      case wire::ClusterType::kJoin:
        if (user == "join") return OnJoin(identity, body);
        break;
      case wire::ClusterType::kHeartbeat:
        if (!worker.empty()) return OnHeartbeat(identity, worker, body);
        break;
      case wire::ClusterType::kBlobRequest:
        return OnBlobRequest(identity, body);
      case wire::ClusterType::kBlobChunk:
        if (ActiveBuild* b = BuildOf(identity)) {
          Frames fw{"msg", identity, body};
          if (f.size() > 2) fw.push_back(f[2]);
          SendAll(*b->pipe, fw);
        }
        return;
      case wire::ClusterType::kSubmitBuild:
        if (client) return OnSubmit(identity, body);
        break;
      case wire::ClusterType::kCancelBuild:
        if (client) return OnCancel(identity, body);
        break;
      case wire::ClusterType::kBuildsRequest:
        if (client) return OnBuilds(identity, body);
        break;
      case wire::ClusterType::kWorkersRequest:
        if (client) return OnWorkers(identity, body);
        break;
      case wire::ClusterType::kOther:
        if (!worker.empty()) return OnSlot(identity, worker, body);
        break;
      default:
        break;
    }
    MF_LOG_WARN("refused a message of this type from {} ({})", user.empty() ? "?" : user, identity.size());
  }

  void OnJoin(const std::string& identity, const std::string& body) {
    auto j = wire::DecodeJoin(body);
    wire::JoinReplyData reply;
    reply.heartbeat_interval_ms = 1000;
    if (!j.ok()) {
      reply.error = std::move(j).error();
      return Reply(identity, wire::EncodeJoinReply(reply));
    }
    std::lock_guard lock(shared_.mu);
    std::string id;
    for (auto& [wid, w] : shared_.workers)
      if (w.key == j->public_key) id = wid;
    if (!id.empty() && shared_.workers[id].revoked) {
      reply.error = MakeError(ErrorKind::kSecurity, "coordinator.worker.revoked",
                              "worker " + id + " was removed (manifold workers rm); use a new key");
      MF_LOG_WARN("refused the join of revoked worker {} (key {})", id, wire::KeyFingerprint(j->public_key));
      return Reply(identity, wire::EncodeJoinReply(reply));
    }
    if (id.empty()) {
      id = j->worker_id.empty() ? "w-" + wire::KeyFingerprint(j->public_key).substr(0, 8) : j->worker_id;
      if (shared_.workers.count(id)) id = id.substr(0, 40) + "-" + wire::KeyFingerprint(j->public_key).substr(0, 8);
      WorkerState w;
      w.id = id;
      w.key = j->public_key;
      w.hostname = j->hostname;
      shared_.workers[id] = w;
      auto saved = shared_.SaveWorkers();
      if (!saved.ok()) {
        shared_.workers.erase(id);
        reply.error = std::move(saved).error();
        return Reply(identity, wire::EncodeJoinReply(reply));
      }
      MF_LOG_INFO("admitted worker {} ({}, key {})", id, j->hostname, wire::KeyFingerprint(j->public_key));
    }
    reply.worker_id = id;
    Reply(identity, wire::EncodeJoinReply(reply));
  }

  void OnHeartbeat(const std::string& identity, const std::string& worker, const std::string& body) {
    auto h = wire::DecodeHeartbeat(body);
    if (!h.ok() || h->worker_id != worker) {
      MF_LOG_WARN("bad heartbeat from worker {}: {}", worker, h.ok() ? "id mismatch" : h.error().message);
      return;
    }
    wire::HeartbeatReplyData reply;
    Frames hellos;
    bool fresh = false;
    wire::PlatformList platforms;
    std::vector<std::string> withdraw;
    {
      std::lock_guard lock(shared_.mu);
      auto& w = shared_.workers[worker];
      if (w.revoked) {
        reply.error = MakeError(ErrorKind::kSecurity, "coordinator.worker.revoked", "worker " + worker + " was removed");
      } else {
        bool was = w.Takes();
        if (!w.connected) MF_LOG_INFO("worker {} ready: {} slots, {}", worker, h->slots, h->peer_endpoint);
        shared_.SetMembership(w, true, false);
        w.last_seen = Clock::now();
        w.platforms = h->platforms;
        w.slots = h->slots;
        w.cpus = h->cpus;
        w.memory = h->memory_bytes;
        w.disk_free = h->disk_free_bytes;
        w.load_milli = h->load_milli;
        w.endpoint = h->peer_endpoint;
        w.hostname = h->hostname;
        if (h->draining && !w.draining) MF_LOG_INFO("worker {} is draining", worker);
        w.draining = h->draining;
        if (h->degraded != w.degraded) {
          if (h->degraded.empty()) MF_LOG_INFO("worker {} is healthy again", worker);
          else MF_LOG_WARN("worker {} degraded: {}", worker, h->degraded);
          w.degraded = h->degraded;
        }
        // Back in rotation: new, reconnected, or out of quarantine.
        if (w.Takes() && (!was || !w.withdrawn.empty())) {
          fresh = true;
          w.withdrawn.clear();
          w.unreachable.clear();
          for (std::uint32_t i = 0; i < w.slots; ++i) hellos.push_back(worker + "-s" + std::to_string(i));
        } else if (w.Takes()) {
          for (const auto& slot : w.unreachable) hellos.push_back(slot);
          w.unreachable.clear();
        }
        if (!w.Takes()) withdraw = Withdraw(w);
        reply.drain = w.drain;
        // The whole member list when the worker's is out of date, at most
        // every 10 s (who joined reaches everyone at once through
        // PushMember; this drops who left): a farm of N workers must not
        // cost N x N entries a second.
        const auto now = Clock::now();
        if (fresh || h->members_version == 0 ||
            (h->members_version != shared_.members_version && now - w.members_sent >= std::chrono::seconds(10))) {
          for (const auto& [id, m] : shared_.workers)
            if (m.Live()) reply.members.push_back({id, m.key, m.endpoint});
          reply.members_full = true;
          reply.members_version = shared_.members_version;
          w.members_sent = now;
        }
      }
      platforms = w.platforms;
    }
    // Runs no build wants any more: a lease that went to another worker
    // while this one was out of reach, or one of a build that has ended
    // (cancelled then already, unless that message was lost). Leases from
    // before a restart of this coordinator are left to finish: the worker's
    // step cache keeps their steps for the build its client submits again.
    if (!h->running_leases.empty()) {
      std::set<wire::LeaseData> wanted;
      for (std::uint32_t i = 0; i < h->slots; ++i) {
        auto held = leases_.find(worker + "-s" + std::to_string(i));
        if (held != leases_.end() && builds_.count(held->second.build)) wanted.insert(held->second.lease);
      }
      for (const auto& lease : h->running_leases)
        if (lease.lease_epoch > shared_.first_epoch && !wanted.count(lease)) reply.cancel.push_back(lease);
    }
    if (!reply.cancel.empty()) {
      reply.cancel_reason = "no build wants this run any more";
      MF_LOG_INFO("worker {} runs {} lease(s) no build wants; cancelling them", worker, reply.cancel.size());
    }
    Reply(identity, wire::EncodeHeartbeatReply(reply));
    // A worker that just came up: every other one learns its key now, so
    // their blob servers admit it before it asks them for anything.
    if (fresh) PushMember(worker);
    for (const auto& slot : hellos) HelloToBuilds(slot, platforms);
    for (const auto& slot : withdraw) ToBuilds({"lost", slot});
  }

  /// Stops `leases` on `worker` now (pushed on its control connection).
  void PushCancel(const std::string& worker, const std::vector<wire::LeaseData>& leases, const std::string& why) {
    wire::HeartbeatReplyData r;
    r.cancel = leases;
    r.cancel_reason = why;
    {
      std::lock_guard lock(shared_.mu);
      auto it = shared_.workers.find(worker);
      if (it == shared_.workers.end() || !it->second.Live()) return;
      r.drain = it->second.drain;
    }
    auto bytes = wire::EncodeHeartbeatReply(r);
    if (bytes.ok()) Send({worker + "-ctl", *bytes});
  }

  /// Tells every other live worker about `joined` (one entry each).
  void PushMember(const std::string& joined) {
    std::vector<Frames> out;
    {
      std::lock_guard lock(shared_.mu);
      const auto& j = shared_.workers[joined];
      for (const auto& [id, m] : shared_.workers) {
        if (id == joined || !m.Live()) continue;
        wire::HeartbeatReplyData r;
        r.members = {{joined, j.key, j.endpoint}};
        r.drain = m.drain;
        auto bytes = wire::EncodeHeartbeatReply(r);
        if (bytes.ok()) out.push_back({id + "-ctl", *bytes});
      }
    }
    for (const auto& f : out) Send(f);
  }

  /// Offers a free slot to every running build but `except` (the first to
  /// send it a job gets it; the others hear "taken").
  void HelloToBuilds(const std::string& slot, const wire::PlatformList& platforms, int except = 0) {
    if (builds_.empty() || leases_.count(slot)) return;
    if (auto f = HelloFrames(slot, platforms)) ToBuilds(*f, except);
  }

  /// A slot offered to a build: its WorkerHello, as a pipe message.
  static std::optional<Frames> HelloFrames(const std::string& slot, const wire::PlatformList& platforms) {
    wire::WorkerHelloData hello;
    hello.worker_id = slot;
    hello.platforms = platforms;
    hello.slots = 1;
    auto bytes = wire::EncodeWorkerHello(hello);
    if (!bytes.ok()) return std::nullopt;
    return Frames{"msg", slot, *bytes};
  }

  void OnSlot(const std::string& identity, const std::string& worker, const std::string& body) {
    // A job slot speaks for its own worker only (RELIABILITY G8).
    if (!identity.starts_with(worker + "-s")) {
      MF_LOG_WARN("worker {} sent a job message as \"{}\"; refused", worker, identity.substr(0, 64));
      return;
    }
    auto type = wire::PeekMessageType(body);
    if (!type.ok()) return;
    // Job messages go to the build whose lease the slot runs; a late one
    // (its lease went elsewhere, or its build ended) goes nowhere.
    wire::LeaseData lease;
    const bool result = *type == wire::MessageType::kStageResult;
    if (result) {
      auto r = wire::DecodeStageResult(body);
      if (!r.ok()) {
        MF_LOG_WARN("bad StageResult from {}: {}", identity, r.error().message);
        return;
      }
      lease = {r->job_id, r->lease_epoch};
    } else if (*type == wire::MessageType::kProgress) {
      auto p = wire::DecodeProgress(body);
      if (!p.ok()) return;
      lease = {p->job_id, p->lease_epoch};
    } else {
      return;  // slots are known from heartbeats
    }
    auto held = leases_.find(identity);
    if (held == leases_.end() || !(held->second.lease == lease)) {
      if (result)
        MF_LOG_WARN("{} reported on job {} (epoch {}) it does not hold; dropped", identity, lease.job_id,
                    lease.lease_epoch);
      return;
    }
    const int owner = held->second.build;
    ToBuild(owner, {"msg", identity, body});
    if (!result) return;
    leases_.erase(held);
    std::vector<std::string> withdraw;
    bool takes = false;
    wire::PlatformList platforms;
    {
      std::lock_guard lock(shared_.mu);
      auto& w = shared_.workers[worker];
      w.busy.erase(identity);
      takes = w.Takes();
      platforms = w.platforms;
      if (!takes) withdraw = Withdraw(w);
    }
    if (takes) HelloToBuilds(identity, platforms, owner);
    for (const auto& s : withdraw) ToBuilds({"lost", s});
  }

  void OnBlobRequest(const std::string& identity, const std::string& body) {
    auto frames = wire::AnswerBlobRequest(body, [this](const std::string& digest) -> Expected<std::string> {
      MF_TRY(has, store_->blobs().Has(digest));
      if (!has) return cas::NotFoundError(digest);
      return store_->blobs().BlobPath(digest);
    });
    if (frames.empty()) return;
    Frames out{identity};
    for (auto& fr : frames) out.push_back(fr.to_string());
    Send(out);
  }

  void OnSubmit(const std::string& identity, const std::string& body) {
    auto s = wire::DecodeSubmitBuild(body);
    if (!s.ok()) {
      wire::BuildEventData ev;
      ev.kind = wire::BuildEventData::Kind::kFailed;
      ev.error = std::move(s).error();
      return Reply(identity, wire::EncodeBuildEvent(ev));
    }
    auto line = SummaryOf(*s);
    queue_.push_back({identity, std::move(*s), ++last_build_number_, std::move(line)});
    if (static_cast<int>(builds_.size()) >= cfg_.max_builds) {
      wire::BuildEventData ev;
      ev.text = "waiting: " + std::to_string(builds_.size()) + " builds running (--max-builds " +
                std::to_string(cfg_.max_builds) + "), " + std::to_string(queue_.size() - 1) +
                " queued before this one\n";
      Reply(identity, wire::EncodeBuildEvent(ev));
    }
  }

  /// The client of a running or queued build asks to stop it (Ctrl-C).
  void OnCancel(const std::string& identity, const std::string& body) {
    auto c = wire::DecodeCancelBuild(body);
    const std::string why = c.ok() && !c->reason.empty() ? c->reason : "the client asked";
    if (ActiveBuild* b = BuildOf(identity)) {
      MF_LOG_INFO("build {} cancelled by its client: {}", b->number, why);
      return Cancel(*b, why);
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (it->client == identity) return CancelQueued(it, why);
  }

  void CancelQueued(std::deque<QueuedBuild>::iterator it, const std::string& why) {
    MF_LOG_INFO("queued build {} cancelled: {}", it->number, why);
    const std::string client = it->client;
    queue_.erase(it);
    wire::BuildEventData ev;
    ev.kind = wire::BuildEventData::Kind::kFailed;
    ev.error = BuildCancelled(why);
    Reply(client, wire::EncodeBuildEvent(ev));
  }

  /// Tells a running build to stop; it ends, and its leases are cancelled
  /// on the workers (EndBuild).
  void Cancel(ActiveBuild& b, const std::string& why) {
    b.cancelled = true;
    SendAll(*b.pipe, {"cancel", why});
  }

  /// The running build `client` submitted, if any (a handful run at once).
  ActiveBuild* BuildOf(const std::string& client) {
    for (auto& [n, b] : builds_)
      if (b->client == client) return b.get();
    return nullptr;
  }

  /// `manifold builds [cancel N]`: what runs and waits, or stop one.
  void OnBuilds(const std::string& identity, const std::string& body) {
    auto req = wire::DecodeBuildsRequest(body);
    wire::BuildsReplyData reply;
    if (!req.ok()) {
      reply.error = std::move(req).error();
      return Reply(identity, wire::EncodeBuildsReply(reply));
    }
    if (req->action == "cancel") {
      const int n = static_cast<int>(req->number);
      const std::string why = "by the operator (manifold builds cancel)";
      if (auto b = builds_.find(n); b != builds_.end()) {
        MF_LOG_INFO("build {} cancelled {}", n, why);
        Cancel(*b->second, why);
      } else if (auto q = std::find_if(queue_.begin(), queue_.end(), [&](const QueuedBuild& x) { return x.number == n; });
                 q != queue_.end()) {
        CancelQueued(q, why);
      } else {
        reply.error = MakeError(ErrorKind::kInvalidInput, "coordinator.build.unknown",
                                "no build " + std::to_string(n) + " is running or queued");
      }
    }
    const auto now = Clock::now();
    auto seconds = [&](Clock::time_point t) {
      return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
    };
    std::map<int, std::uint32_t> jobs;
    for (const auto& [slot, held] : leases_) ++jobs[held.build];
    for (const auto& [n, b] : builds_)
      reply.builds.push_back({static_cast<std::uint32_t>(n), b->cancelled ? "cancelling" : "running", b->line.platforms,
                              b->line.tags, seconds(b->line.since), jobs[n]});
    for (const auto& q : queue_)
      reply.builds.push_back({static_cast<std::uint32_t>(q.number), "queued", q.line.platforms, q.line.tags,
                              seconds(q.line.since), 0});
    Reply(identity, wire::EncodeBuildsReply(reply));
  }

  void StartBuild() {
    QueuedBuild next = std::move(queue_.front());
    queue_.pop_front();
    const std::string client = std::move(next.client);
    wire::SubmitBuildData submit = std::move(next.submit);
    const int number = next.number;
    auto build = std::make_unique<ActiveBuild>();
    build->number = number;
    build->line = std::move(next.line);
    build->line.since = Clock::now();
    build->client = client;
    const std::string endpoint = "inproc://build-" + std::to_string(number);
    build->pipe = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
    // No high-water mark on the pipe: each side may be busy sending to the
    // other (progress bursts), and a bounded pipe could block both at once.
    build->pipe->set(zmq::sockopt::linger, 0);
    build->pipe->set(zmq::sockopt::sndhwm, 0);
    build->pipe->set(zmq::sockopt::rcvhwm, 0);
    build->pipe->bind(endpoint);
    auto build_end = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
    build_end->set(zmq::sockopt::linger, 0);
    build_end->set(zmq::sockopt::sndhwm, 0);
    build_end->set(zmq::sockopt::rcvhwm, 0);
    build_end->connect(endpoint);
    MF_LOG_INFO("build {} started ({} platforms, {} context entries, {} running)", number, submit.platforms.size(),
                submit.context.size(), builds_.size() + 1);
    build->thread = std::thread(RunBuildThread, std::ref(shared_), std::cref(cfg_), std::ref(ctx_),
                                std::move(build_end), client, std::move(submit), number);
    builds_[number] = std::move(build);
    // The build learns the free slots it may use.
    std::vector<std::pair<std::string, wire::PlatformList>> slots;
    {
      std::lock_guard lock(shared_.mu);
      for (auto& [id, w] : shared_.workers) {
        if (!w.Takes()) continue;
        for (std::uint32_t i = 0; i < w.slots; ++i) {
          std::string slot = id + "-s" + std::to_string(i);
          if (!leases_.count(slot) && !w.unreachable.count(slot)) slots.emplace_back(slot, w.platforms);
        }
      }
    }
    for (const auto& [slot, platforms] : slots)
      if (auto f = HelloFrames(slot, platforms)) ToBuild(number, *f);
  }

  void OnPipe(int number, const Frames& f) {
    if (f.empty()) return;
    if (f[0] == "done") return EndBuild(number);
    if (f[0] == "send" && f.size() >= 3) {
      Send(Frames(f.begin() + 1, f.end()));
      return;
    }
    if (f[0] != "job" || f.size() < 5) return;
    const std::string& slot = f[1];
    const std::string worker = slot.substr(0, slot.rfind("-s"));
    SlotLease held{number, {f[3], std::strtoull(f[4].c_str(), nullptr, 10)}};
    bool takes = false;
    {
      std::lock_guard lock(shared_.mu);
      auto it = shared_.workers.find(worker);
      takes = it != shared_.workers.end() && it->second.Takes();
    }
    // Another build was first, or the worker left since the offer.
    if (leases_.count(slot) || !takes) {
      ToBuild(number, {takes ? "taken" : "lost", slot});
      return;
    }
    leases_[slot] = held;
    {
      std::lock_guard lock(shared_.mu);
      shared_.workers[worker].busy.insert(slot);
    }
    if (!Send({slot, f[2]})) {
      leases_.erase(slot);
      {
        std::lock_guard lock(shared_.mu);
        shared_.workers[worker].busy.erase(slot);
        shared_.workers[worker].unreachable.insert(slot);
      }
      MF_LOG_WARN("job slot {} is not connected; the job goes elsewhere", slot);
      ToBuilds({"lost", slot});
      return;
    }
    ToBuilds({"taken", slot}, number);
  }

  /// A build's thread is over: the jobs it left running are stopped (their
  /// slots come back with their StageResults).
  void EndBuild(int number) {
    auto it = builds_.find(number);
    if (it == builds_.end()) return;
    it->second->thread.join();
    builds_.erase(it);
    std::map<std::string, std::vector<wire::LeaseData>> left;
    for (const auto& [slot, held] : leases_)
      if (held.build == number) left[slot.substr(0, slot.rfind("-s"))].push_back(held.lease);
    for (const auto& [worker, leases] : left) {
      MF_LOG_INFO("build {} ended with {} job(s) still running on {}; cancelling them", number, leases.size(), worker);
      PushCancel(worker, leases, "build " + std::to_string(number) + " ended");
    }
  }

  void OnWorkers(const std::string& identity, const std::string& body) {
    auto req = wire::DecodeWorkersRequest(body);
    wire::WorkersReplyData reply;
    if (!req.ok()) {
      reply.error = std::move(req).error();
      return Reply(identity, wire::EncodeWorkersReply(reply));
    }
    std::vector<std::string> withdraw;
    {
      std::lock_guard lock(shared_.mu);
      if (req->action != "list") {
        auto it = shared_.workers.find(req->worker_id);
        if (it == shared_.workers.end()) {
          reply.error = MakeError(ErrorKind::kInvalidInput, "coordinator.worker.unknown",
                                  "no worker \"" + req->worker_id + "\"");
          return Reply(identity, wire::EncodeWorkersReply(reply));
        }
        auto& w = it->second;
        if (req->action == "drain") {
          w.drain = true;
          MF_LOG_INFO("worker {} drained by the operator", w.id);
          withdraw = Withdraw(w);
        } else {
          shared_.SetMembership(w, false, true);
          MF_LOG_INFO("worker {} removed by the operator (key {} refused from now on)", w.id,
                      wire::KeyFingerprint(w.key));
          for (std::uint32_t i = 0; i < w.slots; ++i) withdraw.push_back(w.id + "-s" + std::to_string(i));
          w.busy.clear();
          std::lock_guard ilock(shared_.index_mu);
          (void)shared_.index->RemoveWorker(w.id);
        }
        auto saved = shared_.SaveWorkers();
        if (!saved.ok()) reply.error = std::move(saved).error();
      }
      for (const auto& [id, w] : shared_.workers) {
        wire::WorkerInfoData i;
        i.worker_id = id;
        i.address = StripPrefix(w.endpoint, "tcp://");
        i.platforms = w.platforms;
        i.state = w.revoked ? "revoked"
                  : !w.connected ? "lost"
                  : (w.drain || w.draining) ? "draining"
                  : w.Quarantined() ? "quarantined"
                  : !w.busy.empty() ? "busy"
                  : !w.degraded.empty() ? "degraded"
                                        : "ready";
        i.note = w.Quarantined() ? w.quarantine_note : w.degraded;
        i.running_jobs = static_cast<std::uint32_t>(w.busy.size());
        i.slots = w.slots;
        i.cpus = w.cpus;
        i.memory_bytes = w.memory;
        i.disk_free_bytes = w.disk_free;
        i.hostname = w.hostname;
        reply.workers.push_back(std::move(i));
      }
    }
    Reply(identity, wire::EncodeWorkersReply(reply));
    for (const auto& s : withdraw) {
      if (req->action == "rm") leases_.erase(s);
      ToBuilds({"lost", s});
    }
  }

  const CoordinatorConfig& cfg_;
  const std::atomic<bool>& stop_;
  /// Several I/O threads: libzmq keeps each one's timers (a ZMTP heartbeat
  /// timer per connection) in one multimap whose cancel is a linear scan, run
  /// for nearly every message received. With thousands of connections on one
  /// thread that scan took 40% of the coordinator's CPU (bench/farm_scale);
  /// split eight ways, each scan is an eighth as long.
  zmq::context_t ctx_{kIoThreads};
  static constexpr int kIoThreads = 8;
  Shared shared_;
  std::unique_ptr<image::ImageStore> store_;
  std::unique_ptr<wire::ZapHandler> zap_;
  std::unique_ptr<zmq::socket_t> router_;
  /// Messages held back from peers whose queue was full, per identity.
  std::map<std::string, std::deque<Frames>> backlog_;
  static constexpr std::size_t kMaxBacklog = 100000;
  std::uint16_t port_ = 0;
  std::unique_ptr<wire::BeaconSender> beacon_;
  Clock::time_point next_beacon_;
  Clock::time_point next_keepalive_;
  std::deque<QueuedBuild> queue_;
  std::map<int, std::unique_ptr<ActiveBuild>> builds_;
  /// slot -> the lease it runs (a slot runs one at a time; the reactor's
  /// own account, whichever build sent the job).
  std::map<std::string, SlotLease> leases_;
  int last_build_number_ = 0;
};

}  // namespace

Expected<void> RunCoordinator(const CoordinatorConfig& config, const std::atomic<bool>& stop) {
  Coordinator c(config, stop);
  return c.Run();
}

Expected<std::string> CoordinatorToken(const std::string& state_dir) {
  MF_TRY(keys, LoadKeys(state_dir));
  return wire::JoinToken{keys.server.public_key, keys.join.secret_key}.ToString();
}

Expected<void> AllowClient(const std::string& state_dir, const std::string& public_key) {
  if (!wire::IsZ85Key(public_key))
    return MakeError(ErrorKind::kInvalidInput, "coordinator.key",
                     "\"" + public_key.substr(0, 60) + "\" is not a CURVE public key (40 Z85 characters)");
  MF_TRY_VOID(LoadKeys(state_dir));
  MF_TRY(clients, LoadClients(state_dir));
  clients.insert(public_key);
  std::string text;
  for (const auto& c : clients) text += c + "\n";
  return fs::WriteFileAtomic(state_dir + "/clients", text);
}

}  // namespace manifold::coordinator
