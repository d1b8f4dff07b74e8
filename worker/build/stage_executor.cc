#include "worker/build/stage_executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/base/log.h"
#include "common/http/url_source.h"
#include "common/cache/cache_key.h"
#include "common/fs/root_dir.h"
#include "common/image/blob_stream.h"
#include "common/dockerfile/heredoc.h"
#include "common/image/import.h"
#include "common/image/layer_index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "worker/build/config_step.h"
#include "worker/build/run_mounts.h"
#include "worker/snapshot/step_snapshot.h"
#include "worker/step/copy_step.h"
#include "worker/step/user_db.h"

namespace manifold::worker {
namespace {

using dockerfile::Cmd;
using dockerfile::Instruction;
using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::uint64_t MsSince(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

std::string NowRfc3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09ldZ", static_cast<long>(ts.tv_nsec));
  return std::string(buf) + frac;
}

/// Locates a step's error at its Dockerfile line (the coordinator knows the
/// file and prints the source line).
Error AtLine(Error e, const Instruction& in) {
  if (!e.where) e.where = SourceRange{"", in.line, 0, in.end_line};
  return e;
}

layer::Compression CompressionOf(const std::string& name) {
  if (name == "zstd") return layer::Compression::kZstd;
  if (name == "none") return layer::Compression::kNone;
  return layer::Compression::kGzip;
}

/// The state of a stage between steps.
struct StageState {
  oci::ImageConfig config;
  std::vector<wire::LayerData> layers;  ///< descriptors of config.rootfs.diff_ids
  std::map<std::string, std::string> args;  ///< ARGs in scope (RUN environment)
  bool cmd_set = false;                     ///< CMD set in this stage
};

std::vector<std::string> ChainOf(const StageState& s) {
  std::vector<std::string> out;
  for (const auto& l : s.layers) out.push_back(l.diff_id);
  return out;
}

class StageRunner : public InputMounter {
 public:
  StageRunner(const wire::StageJobData& job, WorkerEnv& env, const ProgressFn& progress)
      : job_(job), env_(env), progress_(progress),
        layers_(env.store->state_dir() + "/content") {}

  Expected<wire::StageResultData> Run() {
    session_ = env_.sessions ? env_.sessions->Get(job_.build_id) : nullptr;
    for (const auto& [name, value] : job_.inputs) inputs_[name] = value;
    MF_TRY_VOID(LoadBase());
    const auto& ins = job_.instructions;
    std::vector<wire::StepResultData> steps(ins.size());

    // Resume after the last step whose key is cached (earlier ones are not
    // needed at all); ARGs are still tracked through the skipped steps.
    std::size_t start = 0;
    if (!job_.options.no_cache && !job_.cache_keys.empty()) {
      for (std::size_t i = ins.size(); i-- > 0;) {
        if (job_.cache_keys[i].empty()) continue;
        MF_TRY(hit, Lookup(job_.cache_keys[i]));
        if (!hit) continue;
        state_.config = std::move(hit->first);
        state_.layers = std::move(hit->second);
        start = i + 1;
        break;
      }
    }
    // Effective keys: the planned ones until a COPY --from is executed; from
    // then on, keys chain from what that step produced (cache::RefinedKey),
    // so an upstream change that leaves the copied files alone still hits.
    const bool can_refine = !job_.step_digests.empty() && !job_.cache_keys.empty();
    std::string effective;  // effective key of the previous step; "" = planned
    for (std::size_t i = 0; i < ins.size(); ++i) {
      auto& sr = steps[i];
      sr.index = static_cast<std::uint32_t>(i);
      sr.cache_key = job_.cache_keys.empty() ? "" : job_.cache_keys[i];
      if (i < start) {
        TrackArgs(ins[i]);
        sr.cached = true;
        Progress(static_cast<int>(i), wire::ProgressData::Kind::kCached, Title(ins[i]), 0);
        continue;
      }
      const bool copy_from =
          (ins[i].cmd == Cmd::kCopy || ins[i].cmd == Cmd::kAdd) && !ins[i].from.empty();
      const std::string parent_effective =
          !effective.empty() ? effective
                             : (i == 0 ? BaseIdentity() : job_.cache_keys.empty() ? "" : job_.cache_keys[i - 1]);
      // A COPY --from's step digest leaves its source out (the content
      // stands in for it), so it is never looked up by one: it runs, then
      // is keyed by what it copied.
      std::string key = sr.cache_key;
      if (can_refine && !effective.empty() && !copy_from)
        key = cache::ChainKey({cache::Parent::Kind::kStep, effective}, job_.step_digests[i]);
      if (key != sr.cache_key && !key.empty() && !job_.options.no_cache) {
        MF_TRY(hit, Lookup(key));
        if (hit) {
          TrackArgs(ins[i]);
          state_.config = std::move(hit->first);
          state_.layers = std::move(hit->second);
          sr.cached = true;
          effective = key;
          MF_TRY_VOID(Record(sr.cache_key, &sr));  // the planned key answers next time
          Progress(static_cast<int>(i), wire::ProgressData::Kind::kCached, Title(ins[i]), 0);
          continue;
        }
      }
      if (env_.Cancelled()) return MakeError(ErrorKind::kInternal, "step.cancelled", "build cancelled");
      auto t0 = Clock::now();
      Progress(static_cast<int>(i), wire::ProgressData::Kind::kStart, Title(ins[i]), 0);
      auto layer = Execute(ins[i], static_cast<int>(i));
      if (!layer.ok()) return AtLine(std::move(layer).error(), ins[i]);
      sr.layer = std::move(*layer);
      sr.duration_ms = MsSince(t0);
      if (can_refine && !parent_effective.empty() && sr.layer && copy_from) {
        MF_TRY(content, ContentDigest(sr.layer->diff_id));
        key = cache::RefinedKey(parent_effective, job_.step_digests[i], content);
      }
      MF_TRY_VOID(Record(sr.cache_key, &sr));
      if (key != sr.cache_key) {
        MF_TRY_VOID(Record(key));
        effective = key;
      }
      Progress(static_cast<int>(i), wire::ProgressData::Kind::kDone, "", sr.duration_ms);
    }
    wire::StageResultData result;
    result.job_id = job_.job_id;
    result.lease_epoch = job_.lease_epoch;
    result.layers = state_.layers;
    result.steps = std::move(steps);
    MF_TRY(config_digest, StoreConfig());
    result.config_digest = config_digest;
    return result;
  }

 private:
  // ------------------------------------------------------------ helpers

  /// Records the current state (config and chain) under `key`, if any.
  Expected<void> Record(const std::string& key, wire::StepResultData* step = nullptr) {
    if (key.empty()) return Ok();
    MF_TRY(config_digest, StoreConfig());
    if (step) {
      step->config_digest = config_digest;
      step->chain_length = static_cast<std::uint32_t>(state_.layers.size());
    }
    cache::StepRecord rec{config_digest, {}};
    for (const auto& l : state_.layers) rec.layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
    return env_.cache->Put(key, rec);
  }

  /// What a step's layer holds regardless of when it was made: its tree
  /// archived with every mtime clamped to 0 (BuildKit's content checksums
  /// ignore times too), hashed.
  Expected<std::string> ContentDigest(const std::string& diff_id) {
    class Discard : public layer::ByteSink {
     public:
      Expected<void> Write(std::string_view) override { return Ok(); }
    } sink;
    MF_TRY(path, env_.snapshots->Unpacked(diff_id));
    layer::DiffOptions opts;
    opts.source_date_epoch = 0;
    opts.overlay_upper = true;
    MF_TRY(info, layer::WriteLayer(path, sink, layer::Compression::kNone, opts));
    return info.diff_id;
  }

  /// What the first step builds on, by content: the base image's manifest
  /// digest, the upstream stage's config digest, or scratch and the platform.
  std::string BaseIdentity() const {
    if (!job_.base_job.empty()) {
      auto it = inputs_.find(job_.base_job);
      return it == inputs_.end() ? "" : it->second;
    }
    if (job_.base == "scratch") return "scratch:" + job_.target_platform.ToString();
    return "image:" + job_.base_manifest_digest;
  }

  void Progress(int step, wire::ProgressData::Kind kind, std::string text, std::uint64_t ms) {
    if (!progress_) return;
    wire::ProgressData p;
    p.job_id = job_.job_id;
    p.lease_epoch = job_.lease_epoch;
    p.step = step;
    p.kind = kind;
    p.text = std::move(text);
    p.duration_ms = ms;
    progress_(p);
  }

  static std::string Title(const Instruction& in) {
    std::string t = in.original;
    auto nl = t.find('\n');
    if (nl != std::string::npos) t = t.substr(0, nl) + " ...";
    if (t.size() > 200) t = t.substr(0, 197) + "...";
    return t;
  }

  std::string Created() const {
    if (job_.options.source_date_epoch) return image::Rfc3339(*job_.options.source_date_epoch);
    return NowRfc3339();
  }

  void AddHistory(std::string created_by, bool empty_layer) {
    oci::HistoryEntry h;
    h.created = Created();
    h.created_by = std::move(created_by);
    h.comment = "buildkit.dockerfile.v0";
    h.empty_layer = empty_layer;
    state_.config.history.push_back(std::move(h));
  }

  Expected<std::string> StoreConfig() {
    state_.config.created = Created();
    if (!state_.config.history.empty() && state_.config.history.back().created)
      state_.config.created = state_.config.history.back().created;
    std::string json = state_.config.ToJson();
    MF_TRY(desc, env_.store->PutDocument(std::string(oci::kOciImageConfig), json));
    return desc.digest.ToString();
  }

  /// A cache record whose blobs are all present, as (config, layers).
  Expected<std::optional<std::pair<oci::ImageConfig, std::vector<wire::LayerData>>>> Lookup(
      const std::string& key) {
    using R = std::optional<std::pair<oci::ImageConfig, std::vector<wire::LayerData>>>;
    MF_TRY(rec, env_.cache->Get(key));
    if (!rec) return R();
    MF_TRY(has_config, env_.store->blobs().Has(rec->config_digest));
    if (!has_config) return R();
    std::vector<wire::LayerData> layers;
    for (const auto& l : rec->layers) {
      MF_TRY(has, env_.store->blobs().Has(l.digest));
      if (!has) return R();
      layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
    }
    MF_TRY(bytes, env_.store->blobs().ReadAll(rec->config_digest));
    auto config = oci::ParseImageConfig(bytes);
    if (!config.ok()) return R();
    return R(std::make_pair(std::move(*config), std::move(layers)));
  }

  // ------------------------------------------------------------ inputs

  Expected<std::string> InputValue(const std::string& name) const {
    auto it = inputs_.find(name);
    if (it == inputs_.end())
      return MakeError(ErrorKind::kInternal, "step.input.missing",
                       "the job has no resolved input for \"" + name + "\"");
    return it->second;
  }

  /// Config and layers of a stage result (config digest) or an image
  /// (manifest digest).
  Expected<std::pair<oci::ImageConfig, std::vector<wire::LayerData>>> LoadInput(
      const std::string& value) {
    bool is_stage = value.starts_with("stage:");
    std::string digest = value.substr(6);
    std::vector<wire::LayerData> layers;
    if (is_stage) {
      MF_TRY(bytes, env_.store->blobs().ReadAll(digest));
      MF_TRY(config, oci::ParseImageConfig(bytes));
      for (const auto& d : config.rootfs.diff_ids) {
        MF_TRY(descs, layers_.Lookup(d.ToString()));
        // A recorded blob may have been pruned since: take one that is here.
        const oci::Descriptor* found = nullptr;
        for (const auto& desc : descs) {
          MF_TRY(has, env_.store->blobs().Has(desc.digest.ToString()));
          if (has) {
            found = &desc;
            break;
          }
        }
        if (!found)
          return MakeError(ErrorKind::kInternal, "step.input.missing",
                           "no stored blob for layer " + d.ToString());
        const auto& x = *found;
        layers.push_back({x.media_type, x.digest.ToString(), d.ToString(),
                          static_cast<std::uint64_t>(x.size)});
      }
      return std::make_pair(std::move(config), std::move(layers));
    }
    MF_TRY(mbytes, env_.store->blobs().ReadAll(digest));
    MF_TRY(manifest, oci::ParseManifest(mbytes));
    MF_TRY(cbytes, env_.store->blobs().ReadAll(manifest.config.digest.ToString()));
    MF_TRY(config, oci::ParseImageConfig(cbytes));
    if (config.rootfs.diff_ids.size() != manifest.layers.size())
      return MakeError(ErrorKind::kIntegrity, "step.base.layers",
                       "image " + digest + ": the config lists " +
                           std::to_string(config.rootfs.diff_ids.size()) +
                           " diff_ids for " + std::to_string(manifest.layers.size()) + " layers");
    for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
      const auto& x = manifest.layers[i];
      layers.push_back({x.media_type, x.digest.ToString(), config.rootfs.diff_ids[i].ToString(),
                        static_cast<std::uint64_t>(x.size)});
    }
    return std::make_pair(std::move(config), std::move(layers));
  }

  Expected<void> LoadBase() {
    const auto& tp = job_.target_platform;
    if (!job_.base_job.empty()) {
      MF_TRY(value, InputValue(job_.base_job));
      MF_TRY(in, LoadInput(value));
      state_.config = std::move(in.first);
      state_.layers = std::move(in.second);
    } else if (job_.base == "scratch") {
      state_.config.os = tp.os;
      state_.config.architecture = tp.architecture;
      state_.config.variant = tp.variant;
    } else {
      std::string value;
      if (!job_.base_manifest_digest.empty()) {
        value = "image:" + job_.base_manifest_digest;
      } else {
        MF_TRY(v, InputValue(job_.base));
        value = v;
      }
      MF_TRY(in, LoadInput(value));
      state_.config = std::move(in.first);
      state_.layers = std::move(in.second);
      // Triggers of the base ran as this stage's first instructions (the
      // coordinator inlined them); they are not inherited, as in Docker.
      state_.config.config.on_build.clear();
    }
    if (state_.config.os.empty()) state_.config.os = tp.os;
    if (state_.config.architecture.empty()) {
      state_.config.architecture = tp.architecture;
      state_.config.variant = tp.variant;
    }
    return Ok();
  }

  void TrackArgs(const Instruction& in) { worker::TrackArgs(in, job_.args, state_.args); }

  // ------------------------------------------------------------ snapshots

  /// Makes sure every layer of `layers` is unpacked in the snapshotter.
  Expected<void> EnsureUnpacked(const std::vector<wire::LayerData>& layers) {
    for (const auto& l : layers) {
      MF_TRY(have, env_.snapshots->TryUnpacked(l.diff_id));
      if (have) continue;
      MF_TRY(reader, env_.store->blobs().OpenBlob(l.digest, true));
      image::BlobSource src(*reader);
      MF_TRY_VOID(env_.snapshots->Unpack(l.diff_id, src));
    }
    return Ok();
  }

  /// A read-only view of an input's root filesystem (a stage or an image).
  Expected<StepSnapshot> MountInput(const std::string& value) {
    MF_TRY(in, LoadInput(value));
    MF_TRY_VOID(EnsureUnpacked(in.second));
    std::vector<std::string> chain;
    for (const auto& l : in.second) chain.push_back(l.diff_id);
    return StepSnapshot::Prepare(*env_.snapshots, chain);
  }

  /// Commits the snapshot as the next layer of the stage.
  Expected<wire::LayerData> CommitLayer(StepSnapshot& snap) {
    MF_TRY(writer, env_.store->blobs().BeginIngest());
    image::BlobSink sink(*writer);
    // A container of another job started while this overlay was mounted
    // gets a copy of it in its mount namespace, and the kernel reports the
    // unmount busy until that copy goes (runc detaches it at pivot_root).
    // Commit changes nothing when busy, so it is retried for up to 2 s.
    auto info = snap.Commit(CompressionOf(job_.options.compression),
                            job_.options.source_date_epoch, sink);
    for (int attempt = 0; !info.ok() && info.error().code == "snapshot.mount.busy" && attempt < 100;
         ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      info = snap.Commit(CompressionOf(job_.options.compression), job_.options.source_date_epoch,
                         sink);
    }
    if (!info.ok()) {
      writer->Abort();
      (void)snap.Discard();
      return std::move(info).error();
    }
    MF_TRY(digest, writer->Commit());
    oci::Descriptor desc;
    desc.media_type = info->media_type;
    MF_TRY(d, oci::ParseDigest(digest));
    desc.digest = d;
    desc.size = static_cast<std::int64_t>(info->size);
    MF_TRY_VOID(layers_.Record(info->diff_id, desc));
    wire::LayerData l{info->media_type, digest, info->diff_id, info->size};
    MF_TRY(diff, oci::ParseDigest(info->diff_id));
    state_.config.rootfs.diff_ids.push_back(diff);
    state_.layers.push_back(l);
    return l;
  }

  // ------------------------------------------------------------ steps

  Expected<std::optional<wire::LayerData>> Execute(const Instruction& in, int index) {
    using R = std::optional<wire::LayerData>;
    switch (in.cmd) {
      case Cmd::kRun: {
        MF_TRY(l, RunStep(in, index));
        return R(std::move(l));
      }
      case Cmd::kCopy:
      case Cmd::kAdd: {
        MF_TRY(l, CopyStep(in));
        return R(std::move(l));
      }
      case Cmd::kFrom:
        break;
      default: {
        MF_TRY(by, ApplyMetadata(in, job_.args, state_.config, state_.args, state_.cmd_set));
        AddHistory(by, true);
        return R();
      }
    }
    return MakeError(ErrorKind::kInternal, "step.unexpected",
                     std::string("unexpected instruction ") + dockerfile::CmdName(in.cmd));
  }

  // RUN ----------------------------------------------------------------

  /// Build args a RUN sees: the ARGs in scope, plus the predefined proxy
  /// args given with --build-arg, which need no ARG (as in Docker).
  std::map<std::string, std::string> RunArgs() const {
    auto args = state_.args;
    for (const auto& [k, v] : job_.args)
      if (cache::IsProxyBuildArg(k)) args.emplace(k, v);
    return args;
  }

  Expected<wire::LayerData> RunStep(const Instruction& in, int index) {
    if (in.security == "insecure" && !(job_.options.allow_insecure && env_.policy.allow_insecure))
      return MakeError(ErrorKind::kSecurity, "step.entitlement",
                       "RUN --security=insecure needs the build's `--allow security.insecure` "
                       "and a worker that permits it");
    MF_TRY_VOID(EnsureUnpacked(state_.layers));
    auto chain = ChainOf(state_);
    MF_TRY(snap, StepSnapshot::Prepare(*env_.snapshots, chain));
    auto result = RunInSnapshot(in, index, snap);
    if (!result.ok()) {
      (void)snap.Discard();
      return std::move(result).error();
    }
    return CommitLayer(snap);
  }

  Expected<void> RunInSnapshot(const Instruction& in, int index, StepSnapshot& snap) {
    auto& c = state_.config.config;
    MF_TRY(root, fs::RootDir::Open(snap.rootfs()));
    RunSpec spec;
    spec.rootfs = snap.rootfs();
    // Checked before anything is created for it (RELIABILITY A5: a WORKDIR
    // in /proc forced through the wire is refused here too).
    MF_TRY(cwd, ValidateCwd(c.working_dir.empty() ? "/" : c.working_dir));
    spec.cwd = cwd;
    if (spec.cwd != "/") {
      MF_TRY(wd, fs::Path::Parse(spec.cwd));
      MF_TRY_VOID(root.MkdirAll(wd, 0755));
    }
    if (!c.user.empty()) {
      MF_TRY(ug, ResolveUser(root, c.user));
      spec.uid = ug.uid;
      spec.gid = ug.gid;
      MF_TRY(gids, AdditionalGids(root, c.user));
      spec.additional_gids = std::move(gids);
    }
    // Environment: build args in scope, then the image's env (which wins).
    std::vector<std::string> env;
    for (const auto& [k, v] : RunArgs()) env.push_back(k + "=" + v);
    for (const auto& e : c.env) {
      auto eq = e.find('=');
      SetEnv(env, e.substr(0, eq), eq == std::string::npos ? "" : e.substr(eq + 1));
    }
    if (EnvValue(env, "PATH").empty()) SetEnv(env, "PATH", kDefaultPath);
    if (in.network == "none") spec.network = RunSpec::Network::kNone;
    spec.insecure = in.security == "insecure";

    // argv: shell form through the image's shell; heredocs as BuildKit.
    RunMounts mounts(env_, job_, session_.get(), index);
    std::vector<std::string> argv;
    if (in.prepend_shell && in.files.size() == 1 && in.args.size() == 1 &&
        IsSoleHeredoc(in.args[0])) {
      const auto& f = in.files[0];
      std::string data = f.content;
      if (f.chomp) data = dockerfile::ChompHeredocContent(data);
      MF_TRY(path, mounts.AddScript(f.name, data));
      argv = ShellOf(state_.config);
      argv.push_back(path);
    } else if (in.prepend_shell) {
      argv = RunArgv(in, ShellOf(state_.config));
    } else {
      argv = in.args;
    }
    spec.args = argv;
    for (const auto& m : in.mounts) MF_TRY_VOID(mounts.AddMountSpec(m, *this));
    for (const auto& v : job_.options.volumes) MF_TRY_VOID(mounts.AddVolume(v));
    for (auto& m : mounts.mounts()) spec.mounts.push_back(m);
    for (const auto& [k, v] : mounts.env()) SetEnv(env, k, v);
    spec.env = std::move(env);

    RunRequest req;
    req.id = StepId(index);
    req.spec = std::move(spec);
    req.platform = PlatformTriple{job_.platform.os, job_.platform.architecture,
                                  job_.platform.variant};
    req.timeout = env_.step_timeout;
    if (env_.cancel || env_.job_cancel) req.cancelled = [this] { return env_.Cancelled(); };
    req.on_output = [this, index](std::string_view chunk) {
      Progress(index, wire::ProgressData::Kind::kOutput, std::string(chunk), 0);
    };
    auto run = env_.runtime->Run(req);
    if (!run.ok() && run.error().code == "executor.timeout") {
      Error e = std::move(run).error();
      char secs[32];
      std::snprintf(secs, sizeof secs, "%g", static_cast<double>(env_.step_timeout.count()) / 1000.0);
      e.message = std::string("RUN timed out after ") + secs + "s (--step-timeout) and was killed";
      if (!e.detail.empty()) e.detail = "output (last bytes):\n" + e.detail;
      return e;
    }
    MF_TRY(res, std::move(run));
    MF_TRY_VOID(mounts.Finish(root));
    if (res.exit_code != 0) {
      std::string cmd = Join(argv);
      std::string msg = "process \"" + cmd + "\" did not complete successfully: exit code: " +
                        std::to_string(res.exit_code);
      if (!res.runtime_error.empty()) msg += " (" + res.runtime_error + ")";
      Error e = MakeError(ErrorKind::kInvalidInput, "step.run.failed", msg);
      if (!res.output_tail.empty()) e.detail = "output (last bytes):\n" + res.output_tail;
      return e;
    }
    // History: BuildKit's "RUN |N K=V ... <argv>" (proxy args left out).
    std::vector<std::string> shown;
    for (const auto& [k, v] : RunArgs())
      if (!cache::IsProxyBuildArg(k)) shown.push_back(k + "=" + v);
    std::string by = "RUN ";
    if (!shown.empty()) by += "|" + std::to_string(shown.size()) + " " + Join(shown) + " ";
    by += Join(argv);
    AddHistory(by, false);
    return Ok();
  }

  std::string StepId(int index) const {
    std::string id = job_.build_id.substr(0, 24) + "-" + job_.job_id.substr(0, 30) + "-" +
                     std::to_string(index);
    return id.substr(0, 64);
  }

  static bool IsSoleHeredoc(const std::string& cmd) {
    // "<<EOF", "<<-EOF", "<<'EOF'", "<<\"EOF\"" and nothing else.
    std::string s = cmd;
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (s.compare(i, 2, "<<") != 0) return false;
    i += 2;
    if (i < s.size() && s[i] == '-') ++i;
    for (; i < s.size(); ++i)
      if (s[i] == ' ' || s[i] == '\t' || s[i] == '|' || s[i] == '&' || s[i] == ';' ||
          s[i] == '>' || s[i] == '<')
        return false;
    return true;
  }

  // COPY / ADD -----------------------------------------------------------

  Expected<wire::LayerData> CopyStep(const Instruction& in) {
    MF_TRY_VOID(EnsureUnpacked(state_.layers));
    std::optional<StepSnapshot> from_snap;
    std::optional<fs::RootDir> src_root;
    CopySource src;
    if (!in.from.empty()) {
      MF_TRY(value, InputValue(in.from));
      MF_TRY(s, MountInput(value));
      from_snap.emplace(std::move(s));
      MF_TRY(r, fs::RootDir::Open(from_snap->rootfs()));
      src_root.emplace(std::move(r));
      src.keep_owners = true;
    } else {
      if (!session_)
        return MakeError(ErrorKind::kInternal, "step.session.missing",
                         "no build context for build " + job_.build_id);
      MF_TRY(r, fs::RootDir::Open(session_->context_dir));
      src_root.emplace(std::move(r));
      if (session_->ignore) src.ignore = &*session_->ignore;
    }
    if (src_root) src.root = &*src_root;
    auto chain = ChainOf(state_);
    MF_TRY(snap, StepSnapshot::Prepare(*env_.snapshots, chain));
    auto copied = [&]() -> Expected<void> {
      MF_TRY(dest, fs::RootDir::Open(snap.rootfs()));
      std::string workdir = state_.config.config.working_dir.empty()
                                ? "/" : state_.config.config.working_dir;
      Instruction local = in;
      local.args.clear();
      std::vector<std::string> urls;
      for (const auto& a : in.args) (in.cmd == Cmd::kAdd && http::IsAddUrl(a) ? urls : local.args).push_back(a);
      if (!in.checksum.empty() && (urls.size() != 1 || in.args.size() != 1))
        return MakeError(ErrorKind::kInvalidInput, "step.add.checksum_source",
                         "checksum can't be specified for non-HTTP(S) sources");
      if (!urls.empty()) MF_TRY_VOID(AddUrls(in, urls, dest, workdir));
      if (!local.args.empty() || !local.heredoc_sources.empty())
        MF_TRY_VOID(Copy(src, dest, workdir, local));
      return Ok();
    }();
    src_root.reset();  // its fd pins the view's mount
    if (from_snap) (void)from_snap->Discard();
    if (!copied.ok()) {
      (void)snap.Discard();
      return std::move(copied).error();
    }
    MF_TRY(layer, CommitLayer(snap));
    std::string by = std::string(dockerfile::CmdName(in.cmd)) + " ";
    if (!in.from.empty()) by += "--from=" + in.from + " ";
    std::vector<std::string> srcs = in.args;
    for (const auto& h : in.heredoc_sources) srcs.push_back("<<" + h.name);
    by += Join(srcs) + " " + in.dest + " # buildkit";
    AddHistory(by, false);
    return layer;
  }

  /// ADD's URL sources: each fetched into its own download dir, then copied
  /// like a context file (owner 0:0 unless --chown, mode 0600 unless --chmod).
  Expected<void> AddUrls(const Instruction& in, const std::vector<std::string>& urls,
                         const fs::RootDir& dest, const std::string& workdir) {
    const std::string& d = in.dest;
    bool dest_is_dir = d.ends_with("/") || d == "." || d.ends_with("/.") || d.empty();
    if (in.args.size() + in.heredoc_sources.size() > 1 && !dest_is_dir)
      return MakeError(ErrorKind::kInvalidInput, "copy.dest.not_dir",
                       "When using ADD with more than one source file, the destination must be "
                       "a directory and end with a /");
    std::string base = env_.state_dir + "/downloads";
    ::mkdir(base.c_str(), 0700);
    std::string tmpl = base + "/XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      return MakeError(ErrorKind::kInternal, "step.add.io", "mkdtemp " + tmpl + ": " + std::strerror(errno));
    struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
    } cleanup{tmpl};
    for (std::size_t i = 0; i < urls.size(); ++i) {
      std::string sub = tmpl + "/" + std::to_string(i);
      ::mkdir(sub.c_str(), 0700);
      MF_TRY(got, http::DownloadUrl(urls[i], in.checksum, sub));
      MF_TRY(root, fs::RootDir::Open(sub));
      CopySource src;
      src.root = &root;
      Instruction one = in;
      one.cmd = Cmd::kCopy;  // a fetched archive is not extracted
      one.args = {http::UrlFileName(urls[i])};
      one.heredoc_sources.clear();
      MF_TRY_VOID(Copy(src, dest, workdir, one));
    }
    return Ok();
  }

  Expected<StepSnapshot> MountFrom(const std::string& ref) override {
    MF_TRY(value, InputValue(ref));
    return MountInput(value);
  }

  const wire::StageJobData& job_;
  WorkerEnv& env_;
  const ProgressFn& progress_;
  image::LayerIndex layers_;
  std::shared_ptr<const BuildSession> session_;
  std::map<std::string, std::string> inputs_;
  StageState state_;
};

}  // namespace

std::vector<std::string> RunArgv(const Instruction& in, const std::vector<std::string>& shell) {
  std::vector<std::string> argv = shell;
  std::string cmd = Join(in.args);
  for (const auto& f : in.files) cmd += "\n" + f.content + f.name;
  argv.push_back(cmd);
  return argv;
}

Expected<wire::StageResultData> ExecuteStage(const wire::StageJobData& job, WorkerEnv& env,
                                             const ProgressFn& progress) {
  StageRunner runner(job, env, progress);
  return runner.Run();
}

}  // namespace manifold::worker
