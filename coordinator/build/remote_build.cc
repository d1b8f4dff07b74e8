#include "coordinator/build/remote_build.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <zmq.hpp>

#include "common/dockerfile/dockerignore.h"
#include "common/dockerfile/mount.h"
#include "common/dockerfile/stage_graph.h"
#include "common/dockerfile/parser.h"
#include "common/image/image_store.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/wire/blob_transfer.h"
#include "common/wire/curve.h"
#include "common/wire/socket_options.h"
#include "coordinator/build/context_manifest.h"
#include "coordinator/build/outputs.h"
#include "coordinator/plan/plan.h"

namespace manifold::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_interrupted = 0;
extern "C" void OnInterrupt(int sig) { g_interrupted = sig; }

/// While a farm build runs, Ctrl-C (or SIGTERM) cancels it on the farm
/// instead of leaving it running there; restored after.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

/// zmq::poll that returns 0 when a signal interrupts it.
int PollOnce(zmq::pollitem_t& item, std::chrono::milliseconds timeout) {
  try {
    return zmq::poll(&item, 1, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

std::string DefaultClientKeyFile() {
  if (const char* f = std::getenv("MANIFOLD_CLIENT_KEY"); f && *f) return f;
  const char* home = std::getenv("HOME");
  std::string dir = std::string(home && *home ? home : "/root") + "/.config/manifold";
  ::mkdir((std::string(home && *home ? home : "/root") + "/.config").c_str(), 0700);
  ::mkdir(dir.c_str(), 0700);
  return dir + "/client.key";
}

/// A DEALER connected to the coordinator with the token's join key or this
/// client's admitted key.
Expected<std::unique_ptr<zmq::socket_t>> Connect(zmq::context_t& ctx, const RemoteTarget& t) {
  if (t.address.empty() || t.address.find(':') == std::string::npos)
    return MakeError(ErrorKind::kInvalidInput, "remote.target",
                     "--coordinator \"" + t.address + "\" is not HOST:PORT");
  wire::CurveKeyPair keys;
  std::string server;
  if (!t.token.empty()) {
    MF_TRY(token, wire::ParseJoinToken(t.token));
    MF_TRY(pub, wire::PublicKeyOf(token.join_secret_key));
    keys = {pub, token.join_secret_key};
    server = token.server_public_key;
  } else if (!t.coordinator_key.empty()) {
    if (!wire::IsZ85Key(t.coordinator_key))
      return MakeError(ErrorKind::kInvalidInput, "remote.target",
                       "--coordinator-key is not a CURVE public key (40 Z85 characters)");
    MF_TRY(k, wire::LoadOrCreateKeyPair(t.client_key_file.empty() ? DefaultClientKeyFile() : t.client_key_file));
    keys = k;
    server = t.coordinator_key;
  } else {
    return MakeError(ErrorKind::kInvalidInput, "remote.target",
                     "no --token (or MANIFOLD_TOKEN) and no --coordinator-key for " + t.address);
  }
  auto sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  wire::MakeCurveClient(*sock, keys, server);
  MF_TRY_VOID(wire::ApplySocketDefaults(*sock));
  sock->set(zmq::sockopt::linger, 0);
  sock->connect("tcp://" + t.address);
  return sock;
}

std::vector<std::string> RecvFrames(zmq::socket_t& s) {
  std::vector<std::string> out;
  while (true) {
    zmq::message_t m;
    if (!s.recv(m)) break;
    out.emplace_back(static_cast<const char*>(m.data()), m.size());
    if (!m.more()) break;
  }
  return out;
}

/// The images a build names (bases, COPY --from, RUN --mount from=) for
/// these platforms, as the coordinator's planner will expand them. Empty
/// when the Dockerfile does not plan: the coordinator reports why.
std::set<std::string> NamedImages(const wire::SubmitBuildData& s) {
  std::set<std::string> out;
  dockerfile::ParseLimits limits;
  auto tree = dockerfile::Parse(s.dockerfile, s.dockerfile_name, limits);
  if (!tree.ok()) return out;
  auto df = dockerfile::ParseInstructions(*tree);
  if (!df.ok()) return out;
  plan::PlanOptions opts;
  opts.build_platform = oci::NativePlatform();
  opts.platforms = s.platforms;
  opts.target = s.target;
  opts.build_args = s.build_args;
  auto p = plan::MakePlan(*df, tree->escape, opts);
  if (!p.ok()) return out;
  auto add = [&](const std::string& ref) {
    if (ref.empty() || ref == "scratch") return;
    auto stage = dockerfile::ResolveStageRef(*df, ref);
    if (stage.ok() && !*stage) out.insert(ref);
  };
  for (const auto& job : p->jobs) {
    if (job.base_job.empty()) add(job.base);
    for (const auto& in : job.instructions) {
      if (in.cmd == dockerfile::Cmd::kCopy || in.cmd == dockerfile::Cmd::kAdd) add(in.from);
      if (in.cmd != dockerfile::Cmd::kRun) continue;
      for (const auto& m : in.mounts) {
        auto spec = dockerfile::ParseExpandedMount(m);
        if (spec.ok()) add(spec->from);
      }
    }
  }
  return out;
}

Error Silent(const RemoteTarget& t) {
  return MakeError(ErrorKind::kDisconnected, "remote.silent",
                   "no answer from the coordinator at " + t.address +
                       " (is it running, and is the token or key its own?)");
}

}  // namespace

Expected<BuildSummary> RunRemoteBuild(const RemoteTarget& target, const BuildRequest& req,
                                      std::ostream& out) {
  auto t0 = Clock::now();
  // The context and the Dockerfile, as the embedded build reads them.
  struct stat st {};
  if (::stat(req.context_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return MakeError(ErrorKind::kInvalidInput, "context.missing",
                     "build context \"" + req.context_dir + "\" is not a directory");
  char* real = ::realpath(req.context_dir.c_str(), nullptr);
  std::string context_dir = real ? real : req.context_dir;
  std::free(real);
  wire::SubmitBuildData s;
  dockerfile::ParseLimits limits;
  if (req.dockerfile == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    s.dockerfile = ss.str();
    s.dockerfile_name = "<stdin>";
  } else {
    std::string path = req.dockerfile.empty() ? context_dir + "/Dockerfile" : req.dockerfile;
    MF_TRY(content, ReadWholeFile(path, limits.max_file_bytes));
    s.dockerfile = std::move(content);
    s.dockerfile_name = req.dockerfile.empty() ? "Dockerfile" : req.dockerfile;
  }
  std::optional<dockerfile::IgnoreMatcher> ignore;
  if (auto ignore_file = dockerfile::FindIgnoreFile(context_dir, req.dockerfile)) {
    MF_TRY(text, ReadWholeFile(*ignore_file, 1 << 20));
    MF_TRY(m, dockerfile::IgnoreMatcher::Parse(text, *ignore_file));
    ignore = std::move(m);
    s.dockerignore = text;
  }
  MF_TRY(manifest, ScanContext(context_dir, ignore ? &*ignore : nullptr));
  std::map<std::string, std::string> path_of;  // digest -> host path
  for (const auto& e : manifest.entries) {
    wire::ContextFileData f;
    f.path = e.path;
    f.mode = e.mode;
    f.uid = e.uid;
    f.gid = e.gid;
    f.link_target = e.link_target;
    std::string host = context_dir + "/" + e.path;
    struct stat fst {};
    if (::lstat(host.c_str(), &fst) == 0) {
      f.size = static_cast<std::uint64_t>(fst.st_size);
      f.mtime_ns = static_cast<std::int64_t>(fst.st_mtim.tv_sec) * 1'000'000'000 + fst.st_mtim.tv_nsec;
    }
    if (!e.digest.hex.empty()) {
      f.digest = e.digest.ToString();
      path_of.emplace(f.digest, host);
    }
    s.context.push_back(std::move(f));
  }
  s.platforms = req.platforms;
  if (s.platforms.empty()) s.platforms.push_back(oci::NativePlatform());
  s.target = req.target;
  s.build_args = req.build_args;
  s.tags = req.tags;
  s.no_cache = req.no_cache;
  s.no_cache_filter = req.no_cache_filter;
  s.secrets = req.secrets;
  s.allow = req.allow;
  s.source_date_epoch = req.source_date_epoch;
  s.compression = req.compression;
  s.pull = req.pull;
  s.push = req.push;
  s.progress = req.progress == "json" ? "json" : "plain";
  // A push with no local output (as buildx --push): the image goes to the
  // registry from the farm and does not come down here.
  s.no_result = req.push && req.outputs.empty();
  // Images this machine holds that the build names go up too (only the
  // blobs the coordinator lacks).
  MF_TRY(store, image::ImageStore::Open(req.state_dir));
  for (const auto& ref : NamedImages(s)) {
    auto resolved = store->Resolve(ref);
    if (!resolved.ok()) continue;
    const auto& root = resolved->root;
    s.images.push_back({ref, root.media_type, root.digest.ToString(), static_cast<std::uint64_t>(root.size)});
    auto serve_blob = [&](const std::string& digest) {
      auto has = store->blobs().Has(digest);
      auto path = store->blobs().BlobPath(digest);
      if (has.ok() && *has && path.ok()) path_of.emplace(digest, *path);
    };
    serve_blob(root.digest.ToString());
    for (const auto& pi : resolved->platforms) {
      serve_blob(pi.manifest_desc.digest.ToString());
      serve_blob(pi.manifest.config.digest.ToString());
      for (const auto& l : pi.manifest.layers) serve_blob(l.digest.ToString());
    }
  }
  if (!req.volumes.empty())
    return MakeError(ErrorKind::kInvalidInput, "remote.volume",
                     "-v mounts a host path of the machine that runs the step; a farm build cannot");
  MF_TRY(submit, wire::EncodeSubmitBuild(s));

  zmq::context_t ctx(1);
  MF_TRY(sock, Connect(ctx, target));
  InterruptGuard interrupts;
  sock->send(zmq::buffer(submit), zmq::send_flags::none);
  const bool quiet = req.progress == "quiet";
  wire::BlobPathFn serve = [&](const std::string& digest) -> Expected<std::string> {
    auto it = path_of.find(digest);
    if (it == path_of.end()) return cas::NotFoundError(digest);
    return it->second;
  };
  std::optional<wire::BuildEventData> done;
  auto last = Clock::now();
  auto first_silence = Clock::now();
  int resubmits = 0;
  bool heard = false;
  std::optional<Clock::time_point> cancelled_at;
  while (!done) {
    if (g_interrupted && !cancelled_at) {
      const std::string why = g_interrupted == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
      out << "cancelling the build on the farm: " << why << "\n" << std::flush;
      MF_TRY(cancel, wire::EncodeCancelBuild({why}));
      sock->send(zmq::buffer(cancel), zmq::send_flags::none);
      cancelled_at = Clock::now();
    }
    // The coordinator confirms with the build's failure; do not wait long.
    if (cancelled_at && Clock::now() - *cancelled_at > std::chrono::seconds(10))
      return MakeError(ErrorKind::kInvalidInput, "build.cancelled",
                       "build cancelled; the coordinator did not confirm within 10 s");
    zmq::pollitem_t item{sock->handle(), 0, ZMQ_POLLIN, 0};
    if (PollOnce(item, std::chrono::milliseconds(500)) <= 0) {
      if (cancelled_at) continue;
      // The coordinator speaks at least every 2 s during a build. Silence
      // means it restarted (and forgot the build) or is gone: submit
      // again; what finished is in its index and the workers' caches.
      if (heard && Clock::now() - last > target.resubmit_after && resubmits < 5) {
        ++resubmits;
        out << "no word from the coordinator for "
            << std::chrono::duration_cast<std::chrono::seconds>(target.resubmit_after).count()
            << " s; submitting the build again (finished steps are not run again)\n";
        sock->send(zmq::buffer(submit), zmq::send_flags::none);
        last = Clock::now();
        heard = false;
        first_silence = Clock::now();
        continue;
      }
      // Never a word after the submission: wrong address, token or key.
      if (!heard && Clock::now() - first_silence > std::chrono::seconds(15)) return Silent(target);
      if (Clock::now() - (heard ? last : first_silence) > target.idle_timeout) return Silent(target);
      continue;
    }
    last = Clock::now();
    heard = true;
    auto frames = RecvFrames(*sock);
    if (frames.empty()) continue;
    auto type = wire::PeekClusterType(frames[0]);
    if (!type.ok()) return std::move(type).error().With("from the coordinator");
    if (*type == wire::ClusterType::kBlobRequest) {
      auto answer = wire::AnswerBlobRequest(frames[0], serve);
      MF_TRY_VOID(wire::SendFrames(*sock, answer));
      continue;
    }
    if (*type != wire::ClusterType::kBuildEvent) continue;
    MF_TRY(ev, wire::DecodeBuildEvent(frames[0]));
    switch (ev.kind) {
      case wire::BuildEventData::Kind::kLine:
        if (!quiet && !ev.text.empty()) out << ev.text << std::flush;
        break;
      case wire::BuildEventData::Kind::kTrace:
        if (!req.trace_file.empty()) {
          std::ofstream tf(req.trace_file, std::ios::trunc);
          tf << ev.text;
          if (!tf)
            return MakeError(ErrorKind::kInvalidInput, "build.trace", "cannot write " + req.trace_file);
        }
        break;
      case wire::BuildEventData::Kind::kFailed:
        return std::move(*ev.error);
      case wire::BuildEventData::Kind::kDone:
        done = std::move(ev);
        break;
    }
  }

  BuildSummary summary;
  summary.index_digest = done->index_digest;
  summary.manifests = done->manifests;
  summary.pushed = done->pushed;
  summary.steps_executed = static_cast<int>(done->steps_executed);
  summary.steps_cached = static_cast<int>(done->steps_cached);
  summary.jobs_run = static_cast<int>(done->jobs_run);
  summary.jobs_cached = static_cast<int>(done->jobs_cached);
  if (s.no_result) {
    summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return summary;
  }
  // The result into the local store: the index, then each manifest, config
  // and layer this machine lacks, verified.
  wire::DealerChannel channel(*sock);
  auto fetch = [&](const std::string& digest) -> Expected<void> {
    MF_TRY(has, store->blobs().Has(digest));
    if (has) return Ok();
    MF_TRY_VOID(wire::FetchBlob(channel, digest, store->blobs()));
    return Ok();
  };
  MF_TRY_VOID(fetch(done->index_digest));
  MF_TRY(ibytes, store->blobs().ReadAll(done->index_digest));
  MF_TRY(index, oci::ParseIndex(ibytes));
  for (const auto& m : index.manifests) {
    MF_TRY_VOID(fetch(m.digest.ToString()));
    MF_TRY(mbytes, store->blobs().ReadAll(m.digest.ToString()));
    MF_TRY(man, oci::ParseManifest(mbytes));
    MF_TRY_VOID(fetch(man.config.digest.ToString()));
    for (const auto& l : man.layers) MF_TRY_VOID(fetch(l.digest.ToString()));
  }
  oci::Descriptor root;
  root.media_type = std::string(oci::kOciImageIndex);
  MF_TRY(rd, oci::ParseDigest(done->index_digest));
  root.digest = rd;
  root.size = static_cast<std::int64_t>(ibytes.size());
  std::vector<std::string> names;
  for (const auto& t : req.tags) {
    MF_TRY(n, image::ImageStore::NormalizeName(t));
    names.push_back(n);
    MF_TRY_VOID(store->Tag(n, root));
  }
  for (const auto& o : req.outputs)
    if (o.type == OutputSpec::Type::kImage) {
      MF_TRY(n, image::ImageStore::NormalizeName(o.name));
      MF_TRY_VOID(store->Tag(n, root));
    }
  MF_TRY_VOID(WriteOutputs(*store, root, names.empty() ? "" : names.front(), req.outputs,
                           req.source_date_epoch));
  summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary;
}

namespace {
/// One request, one reply (the operator's commands).
Expected<std::string> Ask(const RemoteTarget& target, const std::string& request) {
  zmq::context_t ctx(1);
  MF_TRY(sock, Connect(ctx, target));
  sock->send(zmq::buffer(request), zmq::send_flags::none);
  zmq::pollitem_t item{sock->handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::seconds(10)) <= 0) return Silent(target);
  auto frames = RecvFrames(*sock);
  if (frames.empty()) return Silent(target);
  return std::move(frames[0]);
}
}  // namespace

Expected<wire::WorkersReplyData> RemoteWorkers(const RemoteTarget& target,
                                               const wire::WorkersRequestData& request) {
  MF_TRY(bytes, wire::EncodeWorkersRequest(request));
  MF_TRY(answer, Ask(target, bytes));
  MF_TRY(reply, wire::DecodeWorkersReply(answer));
  if (reply.error) return std::move(*reply.error);
  return reply;
}

Expected<wire::BuildsReplyData> RemoteBuilds(const RemoteTarget& target, const wire::BuildsRequestData& request) {
  MF_TRY(bytes, wire::EncodeBuildsRequest(request));
  MF_TRY(answer, Ask(target, bytes));
  MF_TRY(reply, wire::DecodeBuildsReply(answer));
  if (reply.error) return std::move(*reply.error);
  return reply;
}

Expected<std::string> ClientPublicKey(const std::string& key_file) {
  MF_TRY(k, wire::LoadOrCreateKeyPair(key_file.empty() ? DefaultClientKeyFile() : key_file));
  return k.public_key;
}

}  // namespace manifold::coordinator
