#include "coordinator/build/builder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iomanip>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <sstream>
#include <utility>
#include <zmq.hpp>

#include <nlohmann/json.hpp>

#include "common/base/log.h"
#include "common/fs/unique_fd.h"
#include "common/cache/cache_key.h"
#include "common/cache/step_cache.h"
#include "common/dockerfile/dockerignore.h"
#include "common/dockerfile/instruction.h"
#include "common/dockerfile/mount.h"
#include "common/dockerfile/parser.h"
#include "common/dockerfile/source_error.h"
#include "common/dockerfile/stage_graph.h"
#include "common/http/url_source.h"
#include "common/image/image_store.h"
#include "common/registry/pull.h"
#include "common/registry/push.h"
#include "common/image/oci_layout.h"
#include "common/image/unpack.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/media_types.h"
#include "common/wire/stage_job.h"
#include "coordinator/build/cluster_backend.h"
#include "coordinator/build/context_manifest.h"
#include "coordinator/build/job_state.h"
#include "coordinator/build/outputs.h"
#include "coordinator/build/placement.h"
#include "coordinator/build/progress_printer.h"
#include "coordinator/plan/job_message.h"
#include "coordinator/plan/plan.h"
#include "worker/build/local_worker.h"
#include "worker/build/session.h"
#include "worker/build/worker_loop.h"
#include "worker/platform/platform_detect.h"
#include "worker/snapshot/snapshotter.h"

namespace manifold::coordinator {
namespace {

using dockerfile::Cmd;
using Clock = std::chrono::steady_clock;

std::string RandomId() {
  std::random_device rd;
  std::uniform_int_distribution<int> d(0, 15);
  std::string s;
  for (int i = 0; i < 16; ++i) s += "0123456789abcdef"[d(rd)];
  return s;
}

class Build {
 public:
  Build(const BuildRequest& req, std::ostream& out)
      : req_(req), printer_(out, req.progress == "auto" || req.progress == "tty" ? "plain"
                                                                                 : req.progress) {}

  Expected<BuildSummary> Run() {
    auto t0 = Clock::now();
    MF_TRY_VOID(Prepare());
    MF_TRY_VOID(ComputeKeys());
    MF_TRY_VOID(MarkCached());
    MF_TRY_VOID(CheckPlatforms());
    MF_TRY_VOID(Schedule());
    if (req_.cluster) MF_TRY_VOID(FetchTargets());
    MF_TRY(summary, Assemble());
    if (!req_.trace_file.empty() || req_.trace_out) MF_TRY_VOID(WriteTrace(t0));
    MF_TRY_VOID(Export(summary));
    summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return summary;
  }

 private:
  // ------------------------------------------------------------ planning

  Expected<void> Prepare() {
    if (req_.state_dir.empty())
      return MakeError(ErrorKind::kInvalidInput, "build.state", "no state directory");
    // Held shared for the whole build, so `prune --build-cache` cannot take
    // records, snapshots or cache mounts from under it.
    ::mkdir(req_.state_dir.c_str(), 0700);
    int lfd = ::open(BuildCacheLockPath(req_.state_dir).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || ::flock(lfd, LOCK_SH) != 0)
      return MakeError(ErrorKind::kInternal, "build.state",
                       "lock " + BuildCacheLockPath(req_.state_dir) + ": " + std::strerror(errno));
    cache_lock_ = fs::UniqueFd(lfd);
    for (const auto& a : req_.allow)
      if (a != "security.insecure" && a != "network.host")
        return MakeError(ErrorKind::kInvalidInput, "build.entitlement",
                         "unknown entitlement \"" + a + "\" (known: security.insecure, network.host)");
    struct stat st {};
    if (::stat(req_.context_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return MakeError(ErrorKind::kInvalidInput, "context.missing",
                       "build context \"" + req_.context_dir + "\" is not a directory");
    char* real = ::realpath(req_.context_dir.c_str(), nullptr);
    context_dir_ = real ? real : req_.context_dir;
    std::free(real);
    dockerfile_path_ = req_.dockerfile.empty() ? context_dir_ + "/Dockerfile" : req_.dockerfile;
    std::string shown = dockerfile_shown();
    dockerfile::ParseLimits limits;
    std::string content;
    if (req_.dockerfile_content) {
      content = *req_.dockerfile_content;
    } else if (req_.dockerfile == "-") {  // -f -: the Dockerfile on stdin
      std::stringstream ss;
      ss << std::cin.rdbuf();
      content = ss.str();
      if (content.size() > limits.max_file_bytes)
        return MakeError(ErrorKind::kInvalidInput, "build.file",
                         "Dockerfile on stdin is larger than " + std::to_string(limits.max_file_bytes) + " bytes");
    } else {
      MF_TRY(c, ReadWholeFile(dockerfile_path_, limits.max_file_bytes));
      content = std::move(c);
    }
    MF_TRY(tree, dockerfile::Parse(content, shown, limits));
    MF_TRY(df, dockerfile::ParseInstructions(tree));
    df_ = std::move(df);
    escape_ = tree.escape;

    if (req_.dockerignore_content) {
      MF_TRY(m, dockerfile::IgnoreMatcher::Parse(*req_.dockerignore_content, ".dockerignore"));
      ignore_ = std::move(m);
      dockerignore_text_ = *req_.dockerignore_content;
    } else if (auto ignore_file = dockerfile::FindIgnoreFile(context_dir_, req_.dockerfile)) {
      MF_TRY(text, ReadWholeFile(*ignore_file, 1 << 20));
      MF_TRY(m, dockerfile::IgnoreMatcher::Parse(text, *ignore_file));
      ignore_ = std::move(m);
      dockerignore_text_ = text;
    }

    plan::PlanOptions opts;
    opts.build_platform = oci::NativePlatform();
    opts.platforms = req_.platforms;
    opts.target = req_.target;
    opts.build_args = req_.build_args;
    MF_TRY(p, plan::MakePlan(df_, escape_, opts));
    plan_ = std::move(p);
    for (const auto& w : plan_.warnings) printer_.Line("warning: " + w);

    MF_TRY(store, image::ImageStore::Open(req_.state_dir));
    store_ = std::move(store);
    MF_TRY(cache, cache::StepCache::Open(req_.state_dir));
    cache_.emplace(std::move(cache));

    std::set<std::string> filter(req_.no_cache_filter.begin(), req_.no_cache_filter.end());
    for (const auto& job : plan_.jobs) {
      JobState js;
      js.job = job;
      js.no_cache = req_.no_cache || filter.count(job.stage) > 0;
      index_[job.id] = jobs_.size();
      jobs_.push_back(std::move(js));
    }
    MF_TRY_VOID(PullImages());
    for (auto& js : jobs_) MF_TRY_VOID(ResolveInputs(js));
    return Ok();
  }

  /// Pulls, for the platforms that need them, the images the build names
  /// (bases, COPY --from and mount sources) that the local store lacks, or
  /// all of them with --pull.
  Expected<void> PullImages() {
    std::map<std::string, std::vector<oci::Platform>> wanted;
    std::map<std::string, int> line_of;
    auto want = [&](const std::string& ref, const oci::Platform& p, int line) -> Expected<void> {
      if (ref.empty() || ref == "scratch") return Ok();
      MF_TRY(stage, dockerfile::ResolveStageRef(df_, ref));
      if (stage) return Ok();
      auto& v = wanted[ref];
      if (std::find(v.begin(), v.end(), p) == v.end()) v.push_back(p);
      line_of.emplace(ref, line);
      return Ok();
    };
    for (const auto& js : jobs_) {
      const auto& job = js.job;
      if (job.base_job.empty())
        MF_TRY_VOID(want(job.base, job.platform,
                         df_.stages[static_cast<std::size_t>(job.stage_index)].from.line));
      for (const auto& in : job.instructions) {
        if (in.cmd == Cmd::kCopy || in.cmd == Cmd::kAdd) MF_TRY_VOID(want(in.from, job.platform, in.line));
        if (in.cmd != Cmd::kRun) continue;
        for (const auto& m : in.mounts) {
          auto spec = dockerfile::ParseExpandedMount(m);
          if (spec.ok()) MF_TRY_VOID(want(spec->from, job.platform, in.line));
        }
      }
    }
    for (const auto& [ref, platforms] : wanted) {
      bool have = !req_.pull;
      for (const auto& p : platforms) have = have && ResolveLocal(ref, p).ok();
      if (have) continue;
      printer_.Line("pulling " + ref);
      registry::PullOptions po;
      po.registry = req_.registry;
      po.platforms = platforms;
      auto pulled = registry::Pull(*store_, ref, po);
      if (!pulled.ok()) {
        Error e = std::move(pulled).error();
        std::string why = e.message;
        for (const auto& c : e.context) why = c + ": " + why;
        e.context.clear();
        e.message = "image \"" + ref + "\" is not in the local image store and pulling it failed: " + why;
        return Locate(std::move(e), line_of[ref], "");
      }
      printer_.Line("pulled " + pulled->name + "@" + pulled->root.digest.ToString() + " (" +
                    std::to_string(pulled->blobs_fetched) + " blobs fetched)");
    }
    return Ok();
  }

  /// The manifest digest of image `ref` for `platform` in the local store.
  Expected<std::string> ResolveLocal(const std::string& ref, const oci::Platform& platform) {
    auto resolved = store_->Resolve(ref);
    if (!resolved.ok()) {
      if (resolved.error().code == "image.not_found" || resolved.error().code == "reference.invalid")
        return MakeError(ErrorKind::kInvalidInput, "build.base.not_found",
                         "image \"" + ref + "\" is not in the local image store (state " +
                             req_.state_dir +
                             "); add it with `manifold import` or `manifold load` (pulling from a "
                             "registry is not supported yet)");
      return std::move(resolved).error();
    }
    for (const auto& p : resolved->platforms)
      if (p.manifest_desc.platform && oci::PlatformMatches(platform, *p.manifest_desc.platform))
        return p.manifest_desc.digest.ToString();
    // A single manifest without a platform in its descriptor: its config says.
    for (const auto& p : resolved->platforms) {
      oci::Platform have{p.config.os, p.config.architecture, p.config.variant};
      if (oci::PlatformMatches(platform, have)) return p.manifest_desc.digest.ToString();
    }
    std::string have;
    for (const auto& p : resolved->platforms)
      have += (have.empty() ? "" : ", ") +
              oci::Platform{p.config.os, p.config.architecture, p.config.variant}.ToString();
    return MakeError(ErrorKind::kInvalidInput, "build.base.platform",
                     "image \"" + ref + "\" has no " + platform.ToString() + " variant (it has: " +
                         have + ")");
  }

  Expected<void> ResolveInputs(JobState& js) {
    auto& job = js.job;
    auto at_line = [&](Error e, int line) { return Locate(std::move(e), line, ""); };
    if (job.base_job.empty() && job.base != "scratch") {
      auto d = ResolveLocal(job.base, job.platform);
      if (!d.ok()) {
        int line = df_.stages[static_cast<std::size_t>(job.stage_index)].from.line;
        return at_line(std::move(d).error(), line);
      }
      js.base_manifest = *d;
      MF_TRY_VOID(InlineOnBuild(js));
    }
    auto add_ref = [&](const std::string& ref, int line) -> Expected<void> {
      if (ref.empty() || js.stage_inputs.count(ref) || js.image_inputs.count(ref)) return Ok();
      MF_TRY(idx, dockerfile::ResolveStageRef(df_, ref));
      if (idx) {
        for (const auto& other : jobs_)
          if (other.job.stage_index == *idx &&
              other.job.target_platform == job.target_platform) {
            js.stage_inputs[ref] = other.job.id;
            return Ok();
          }
        return MakeError(ErrorKind::kInternal, "build.input", "no job for stage " + ref);
      }
      auto d = ResolveLocal(ref, job.platform);
      if (!d.ok()) return at_line(std::move(d).error(), line);
      js.image_inputs[ref] = "image:" + *d;
      return Ok();
    };
    for (const auto& in : job.instructions) {
      if (in.cmd == Cmd::kCopy || in.cmd == Cmd::kAdd) MF_TRY_VOID(add_ref(in.from, in.line));
      if (in.cmd == Cmd::kRun)
        for (const auto& m : in.mounts) {
          auto spec = dockerfile::ParseExpandedMount(m);
          if (!spec.ok()) return at_line(std::move(spec).error(), in.line);
          if (spec->type == "secret" && spec->required) {
            std::string id = spec->id.empty() ? spec->target.substr(spec->target.rfind('/') + 1)
                                              : spec->id;
            if (!req_.secrets.count(id))
              return at_line(MakeError(ErrorKind::kInvalidInput, "build.secret.missing",
                                       "secret " + id + " is required but was not given "
                                       "(--secret id=" + id + ",src=FILE)"),
                             in.line);
          }
          MF_TRY_VOID(add_ref(spec->from, in.line));
        }
      if (in.cmd == Cmd::kRun && in.security == "insecure" &&
          std::find(req_.allow.begin(), req_.allow.end(), "security.insecure") == req_.allow.end())
        return at_line(MakeError(ErrorKind::kSecurity, "build.entitlement",
                                 "RUN --security=insecure needs `--allow security.insecure`"),
                       in.line);
    }
    return Ok();
  }

  /// "Dockerfile:N: [prefix] message", the source line and a caret, then
  /// the error's own detail (a failed RUN's output).
  Error Locate(Error e, int line, const std::string& prefix) const {
    if (line <= 0) return e;
    std::string msg = e.message;
    for (const auto& c : e.context) msg = c + ": " + msg;
    Error s = dockerfile::SourceError(dockerfile_shown(), df_.lines, line, 0, e.code,
                                      prefix.empty() ? msg : prefix + " " + msg, e.kind);
    if (!e.detail.empty()) s.detail += (s.detail.empty() ? "" : "\n") + e.detail;
    return s;
  }

  std::string dockerfile_shown() const {
    if (!req_.dockerfile_name.empty()) return req_.dockerfile_name;
    if (req_.dockerfile == "-") return "<stdin>";
    return req_.dockerfile.empty() ? "Dockerfile" : req_.dockerfile;
  }

  /// ONBUILD triggers of an image base run first, as if written after FROM.
  Expected<void> InlineOnBuild(JobState& js) {
    MF_TRY(mbytes, store_->blobs().ReadAll(js.base_manifest));
    MF_TRY(manifest, oci::ParseManifest(mbytes));
    MF_TRY(cbytes, store_->blobs().ReadAll(manifest.config.digest.ToString()));
    MF_TRY(config, oci::ParseImageConfig(cbytes));
    if (config.config.on_build.empty()) return Ok();
    std::vector<dockerfile::Instruction> triggers;
    for (const auto& t : config.config.on_build) {
      std::string text = "FROM scratch\n" + t + "\n";
      auto tree = dockerfile::Parse(text, "ONBUILD trigger of " + js.job.base, {});
      if (!tree.ok()) return std::move(tree).error();
      auto df = dockerfile::ParseInstructions(*tree);
      if (!df.ok()) return std::move(df).error();
      for (auto& in : df->stages[0].instructions) {
        if (in.cmd == Cmd::kFrom || in.cmd == Cmd::kOnbuild || in.cmd == Cmd::kMaintainer)
          return MakeError(ErrorKind::kInvalidInput, "build.onbuild",
                           "ONBUILD trigger \"" + t + "\" of " + js.job.base + " is not allowed");
        in.line = df_.stages[static_cast<std::size_t>(js.job.stage_index)].from.line;
        triggers.push_back(std::move(in));
      }
    }
    js.job.instructions.insert(js.job.instructions.begin(), triggers.begin(), triggers.end());
    return Ok();
  }

  // ------------------------------------------------------------ keys

  Expected<void> ComputeKeys() {
    bool needs_context = false;
    for (const auto& js : jobs_)
      for (const auto& in : js.job.instructions)
        if (((in.cmd == Cmd::kCopy || in.cmd == Cmd::kAdd) && in.from.empty()) ||
            (in.cmd == Cmd::kRun && !in.mounts.empty()))
          needs_context = true;
    if (needs_context) {
      MF_TRY(m, ScanContext(context_dir_, ignore_ ? &*ignore_ : nullptr));
      context_ = std::move(m);
    }
    for (auto& js : jobs_) {
      const auto& job = js.job;
      cache::Parent parent;
      // The target platform reaches a result only through the TARGET* args
      // (in the expanded instructions and RUN's args, both keyed) and the
      // config of a stage rooted at scratch. Elsewhere it stays out of the
      // key, so a FROM --platform=$BUILDPLATFORM stage that does not use
      // them is one job for all targets.
      js.rooted_at_scratch = job.base == "scratch" ||
                             (!job.base_job.empty() && jobs_[index_.at(job.base_job)].rooted_at_scratch);
      const oci::Platform& keyed_target = js.rooted_at_scratch ? job.target_platform : job.platform;
      if (!job.base_job.empty()) {
        parent = {cache::Parent::Kind::kStage, jobs_[index_.at(job.base_job)].final_key};
      } else if (job.base == "scratch") {
        parent = {cache::Parent::Kind::kScratch, ""};
      } else {
        parent = {cache::Parent::Kind::kImage, js.base_manifest};
      }
      std::map<std::string, std::string> args;
      for (const auto& in : job.instructions) {
        if (in.cmd == Cmd::kArg)
          for (const auto& d : in.arg_decls) {
            auto it = job.args.find(d.name);
            if (it != job.args.end()) args[d.name] = it->second;
            else if (d.value) args[d.name] = *d.value;
            else args.erase(d.name);
          }
        cache::StepInputs si;
        si.parent = parent;
        si.target_platform = keyed_target;
        si.exec_platform = job.platform;
        si.instruction = in;
        si.source_date_epoch = req_.source_date_epoch;
        if (in.cmd == Cmd::kRun) {
          for (const auto& [k, v] : args)
            if (!cache::IsProxyBuildArg(k)) si.build_args[k] = v;
          for (const auto& m : in.mounts) {
            auto spec = dockerfile::ParseExpandedMount(m);
            if (!spec.ok()) continue;
            if (spec->type == "bind" && spec->from.empty()) {
              auto sel = SelectSources(context_, spec->source.empty() ? "." : spec->source);
              for (const auto& e : sel) js.context_paths.insert(e.path);
              si.sources.insert(si.sources.end(), sel.begin(), sel.end());
            }
            if (!spec->from.empty()) si.from_inputs.push_back({spec->from, InputKey(js, spec->from)});
          }
        }
        if ((in.cmd == Cmd::kCopy || in.cmd == Cmd::kAdd)) {
          if (in.from.empty()) {
            for (const auto& a : in.args) {
              if (in.cmd == Cmd::kAdd && http::IsAddUrl(a)) {
                // A checksum pins the content; without one, ask the server.
                if (!in.checksum.empty()) continue;
                auto known = url_fingerprints_.find(a);
                if (known == url_fingerprints_.end()) {
                  auto fp = http::UrlFingerprint(a);
                  if (!fp.ok()) return Locate(std::move(fp).error(), in.line, "");
                  known = url_fingerprints_.emplace(a, *fp).first;
                }
                cache::SourceDigest sd;
                sd.path = a;
                sd.link_target = known->second;
                si.sources.push_back(std::move(sd));
                continue;
              }
              auto sel = SelectSources(context_, a);
              for (const auto& e : sel) js.context_paths.insert(e.path);
              si.sources.insert(si.sources.end(), sel.begin(), sel.end());
            }
          } else {
            si.from_inputs.push_back({in.from, InputKey(js, in.from)});
          }
        }
        std::string key = cache::ComputeKey(si);
        // What a worker refines with (cache::RefinedKey): for a COPY --from,
        // the step without the upstream's key, since the copied content
        // stands in for it; for any other step, the step without its parent.
        cache::StepInputs digest_inputs = si;
        if ((in.cmd == Cmd::kCopy || in.cmd == Cmd::kAdd) && !in.from.empty())
          digest_inputs.from_inputs.clear();
        js.step_digests.push_back(cache::StepDigest(digest_inputs));
        js.keys.push_back(key);
        parent = {cache::Parent::Kind::kStep, key};
      }
      if (js.keys.empty()) {
        cache::StepInputs si;
        si.parent = parent;
        si.target_platform = keyed_target;
        si.exec_platform = job.platform;
        si.instruction.cmd = Cmd::kFrom;
        si.source_date_epoch = req_.source_date_epoch;
        js.final_key = cache::ComputeKey(si);
      } else {
        js.final_key = js.keys.back();
      }
    }
    return Ok();
  }

  std::string InputKey(const JobState& js, const std::string& ref) const {
    auto s = js.stage_inputs.find(ref);
    if (s != js.stage_inputs.end()) return jobs_[index_.at(s->second)].final_key;
    auto i = js.image_inputs.find(ref);
    return i == js.image_inputs.end() ? "" : i->second;
  }

  // ------------------------------------------------------------ cache

  /// A record whose blobs are all present, else nullopt.
  Expected<std::optional<cache::StepRecord>> Usable(const std::string& key) {
    if (req_.cluster) return req_.cluster->Lookup(key);
    MF_TRY(rec, cache_->Get(key));
    if (!rec) return rec;
    MF_TRY(has, store_->blobs().Has(rec->config_digest));
    if (!has) return std::optional<cache::StepRecord>();
    for (const auto& l : rec->layers) {
      MF_TRY(h, store_->blobs().Has(l.digest));
      if (!h) return std::optional<cache::StepRecord>();
    }
    return rec;
  }

  Expected<void> MarkCached() {
    for (auto& js : jobs_) {
      js.step_cached.assign(js.job.instructions.size(), false);
      if (js.no_cache) continue;
      MF_TRY(rec, Usable(js.final_key));
      if (!rec) continue;
      js.status = JobState::Status::kDone;
      js.cached_whole = true;
      js.config_digest = rec->config_digest;
      for (const auto& l : rec->layers)
        js.layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
      js.step_cached.assign(js.job.instructions.size(), true);
    }
    for (auto& js : jobs_) {
      js.deps.clear();
      for (const auto& dep : js.job.depends_on) js.deps.push_back(index_.at(dep));
      js.has_run = false;
      for (const auto& in : js.job.instructions) js.has_run = js.has_run || in.cmd == Cmd::kRun;
    }
    // Only jobs that the targets need, through jobs that must run, run.
    for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
      if (IsTarget(*it) || it->no_cache) it->needed = true;
      if (!it->needed || it->cached_whole) continue;
      for (const auto& dep : it->job.depends_on) jobs_[index_.at(dep)].needed = true;
    }
    return Ok();
  }

  bool IsTarget(const JobState& js) const { return js.job.stage == plan_.target_stage; }

  // ------------------------------------------------------------ platforms

  Expected<void> CheckPlatforms() {
    if (req_.cluster) return Ok();  // the farm's workers say what they run
    MF_TRY(native, worker::DetectNativePlatform());
    native_ = oci::Platform{native.os, native.architecture, native.variant};
    platforms_.emplace_back(native_, false);
    auto emulated = worker::DetectEmulatedPlatforms();
    if (emulated.ok())
      for (const auto& e : *emulated) {
        oci::Platform p{e.platform.os, e.platform.architecture, e.platform.variant};
        if (!(p == native_)) platforms_.emplace_back(p, true);
      }
    for (const auto& js : jobs_) {
      if (!js.needed || js.status == JobState::Status::kDone) continue;
      bool runs = false;
      for (const auto& in : js.job.instructions) runs = runs || in.cmd == Cmd::kRun;
      if (!runs) continue;
      if (!Supported(js.job.platform)) {
        std::string have;
        for (const auto& [p, emu] : platforms_)
          have += (have.empty() ? "" : ", ") + p.ToString() + (emu ? " (emulated)" : "");
        return MakeError(ErrorKind::kUnimplemented, "build.platform",
                         "no worker can run " + js.job.platform.ToString() + " steps (stage " +
                             js.job.stage + "): no emulator for " + js.job.platform.ToString() +
                             "; register a binfmt_misc handler (qemu-user-static). Available: " +
                             have);
      }
    }
    return Ok();
  }

  bool Supported(const oci::Platform& p) const {
    for (const auto& [have, emu] : platforms_)
      if (oci::PlatformMatches(p, have)) return true;
    return false;
  }

  // ------------------------------------------------------------ scheduling

  bool Ready(const JobState& js) const {
    if (!js.needed || js.status != JobState::Status::kPending) return false;
    for (std::size_t dep : js.deps)
      if (jobs_[dep].status != JobState::Status::kDone) return false;
    return true;
  }

  Expected<wire::StageJobData> MakeJob(const JobState& js, std::uint64_t epoch) {
    auto data = plan::MakeStageJobData(build_id_, js.job, epoch, js.keys);
    if (!js.base_manifest.empty()) data.base_manifest_digest = js.base_manifest;
    for (const auto& [k, v] : req_.build_args)
      if (cache::IsProxyBuildArg(k)) data.args.emplace(k, v);
    if (!js.job.base_job.empty())
      data.inputs.emplace_back(js.job.base_job,
                               "stage:" + jobs_[index_.at(js.job.base_job)].config_digest);
    for (const auto& [ref, id] : js.stage_inputs)
      data.inputs.emplace_back(ref, "stage:" + jobs_[index_.at(id)].config_digest);
    for (const auto& [ref, v] : js.image_inputs) data.inputs.emplace_back(ref, v);
    data.step_digests = js.step_digests;
    data.options.no_cache = js.no_cache;
    data.options.source_date_epoch = req_.source_date_epoch;
    data.options.allow_insecure =
        std::find(req_.allow.begin(), req_.allow.end(), "security.insecure") != req_.allow.end();
    data.options.volumes = req_.volumes;
    data.options.compression = req_.compression;
    for (const auto& [id, v] : req_.secrets) data.options.secret_ids.push_back(id);
    if (req_.cluster) {
      MF_TRY(sup, MakeSupplement(js));
      data.supplement = std::move(sup);
    }
    return data;
  }

  Expected<void> Schedule() {
    bool any = false;
    for (const auto& js : jobs_) any = any || (js.needed && js.status != JobState::Status::kDone);
    for (const auto& js : jobs_)
      if (js.needed && js.cached_whole)
        for (std::size_t i = 0; i < js.job.instructions.size(); ++i)
          printer_.Step(js, static_cast<int>(i), "cached", Title(js.job.instructions[i]), 0);
    if (!any) return Ok();

    build_id_ = RandomId();
    ClusterBackend* cluster = req_.cluster;
    zmq::context_t ctx(1);
    std::optional<zmq::socket_t> router;
    std::unique_ptr<worker::WorkerLoop> loop;
    if (!cluster) {
      auto session = std::make_shared<worker::BuildSession>();
      session->context_dir = context_dir_;
      session->ignore = ignore_;
      session->secrets = req_.secrets;
      sessions_.Put(build_id_, session);

      // The embedded worker.
      MF_TRY(local, worker::LocalWorker::Open(req_.state_dir, build_id_, req_.worker_allows_insecure));
      local_ = std::move(local);
      local_->Fill(wenv_, req_.step_timeout);
      wenv_.store = store_.get();
      wenv_.cache = &*cache_;
      wenv_.sessions = &sessions_;
      wenv_.cancel = &cancel_;

      router.emplace(ctx, zmq::socket_type::router);
      router->set(zmq::sockopt::linger, 0);
      std::string endpoint = "inproc://manifold-coordinator-" + build_id_;
      router->bind(endpoint);
      worker::WorkerLoopOptions wo;
      wo.endpoint = endpoint;
      wo.slots = std::max(1u, req_.slots);
      wo.platforms = platforms_;
      loop = std::make_unique<worker::WorkerLoop>(ctx, wenv_, wo);
    }

    struct Slot {
      std::vector<std::pair<oci::Platform, bool>> platforms;
      std::string job;     ///< running job id, empty when idle
      std::string worker;  ///< the worker it belongs to (farm)
    };
    std::map<std::string, Slot> slots;
    std::optional<Error> failure;
    int running = 0;
    std::map<std::string, std::uint64_t> epochs;  // job id -> lease epoch
    std::map<std::string, int> attempts;           // job id -> runs failed by a worker
    std::map<std::string, int> worker_failures;    // worker -> jobs failed in a row
    std::set<std::string> quarantined;             // workers out of rotation
    std::optional<Clock::time_point> waiting_since;  // a ready job no slot can take
    std::set<std::string> degraded;                   // degraded workers, refreshed each second
    std::unordered_map<std::string_view, int> running_keys;  // final key -> running jobs
    // Final keys this build claimed in the farm (no other build runs them).
    std::set<std::string> claimed;
    struct Unclaim {
      ClusterBackend* cluster;
      std::set<std::string>& keys;
      ~Unclaim() {
        for (const auto& k : keys) cluster->ReleaseKey(k);
      }
    } unclaim{cluster, claimed};
    std::set<std::string> told_waiting;  // jobs said to wait for another build
    auto stop_running = [&](JobState& js) {
      auto it = running_keys.find(js.final_key);
      if (it != running_keys.end() && --it->second == 0) {
        if (claimed.erase(js.final_key)) cluster->ReleaseKey(js.final_key);
        running_keys.erase(it);
      }
    };
    Clock::time_point degraded_at{};

    auto send = [&](const std::string& slot, const std::string& bytes) {
      if (cluster) return cluster->Send(slot, bytes);
      router->send(zmq::buffer(slot), zmq::send_flags::sndmore);
      router->send(zmq::buffer(bytes), zmq::send_flags::none);
    };
    auto receive = [&]() -> std::optional<ClusterBackend::Incoming> {
      if (cluster) return cluster->Receive(std::chrono::milliseconds(250));
      zmq::message_t ident, body;
      if (!router->recv(ident) || !router->recv(body)) return std::nullopt;
      return ClusterBackend::Incoming{std::string(static_cast<const char*>(ident.data()), ident.size()),
                                      std::string(static_cast<const char*>(body.data()), body.size())};
    };
    auto worker_of = [&](const std::string& slot) {
      return cluster ? cluster->WorkerOf(slot) : std::string();
    };
    auto done = [&] {
      for (const auto& js : jobs_)
        if (js.needed && js.status != JobState::Status::kDone) return false;
      return true;
    };

    // A pass runs when something it could act on changed (a slot came or
    // freed, a job finished), and every second for the waits; not for each
    // progress line, which are most messages.
    bool dirty = true;
    Clock::time_point last_pass{};
    while (true) {
      if (!failure && (dirty || Clock::now() - last_pass > std::chrono::seconds(1))) {
        dirty = false;
        last_pass = Clock::now();
        bool unplaced = false;
        // One view of the slots per pass (a farm has thousands, the queue
        // thousands of jobs: nothing here may cost jobs x slots).
        if (cluster && Clock::now() - degraded_at > std::chrono::seconds(1)) {
          degraded = cluster->DegradedWorkers();
          degraded_at = Clock::now();
        }
        std::vector<SlotView> views;
        views.reserve(slots.size());
        std::size_t idle = 0;
        for (const auto& [id, s] : slots)
          if (quarantined.empty() || !quarantined.count(s.worker)) {
            views.push_back({id, s.worker, &s.platforms, s.job.empty(), !degraded.empty() && degraded.count(s.worker)});
            idle += s.job.empty() ? 1 : 0;
          }
        // (platform, runs, some slot runs it): a handful of distinct ones.
        std::vector<std::tuple<const oci::Platform*, bool, bool>> capable;
        std::map<std::string, int> load;  // worker -> running jobs, idle workers only (farm)
        std::vector<std::string> candidates;  // the workers in `load`
        // Dispatch ready jobs: native slots first (emulation is 5-20x slower),
        // then (farm) the worker holding most of the job's inputs, then the
        // least loaded one.
        for (auto& js : jobs_) {
          if (!Ready(js)) continue;
          if (idle == 0) {
            // Every slot busy: only whether one could ever run it matters.
            std::optional<bool> can;
            for (const auto& [p, runs, c] : capable)
              if (runs == js.has_run && *p == js.job.platform) can = c;
            if (!can) {
              can = Place(PlacementRequest{js.job.platform, js.has_run, nullptr, nullptr}, views).capable;
              capable.emplace_back(&js.job.platform, js.has_run, *can);
            }
            if (!*can) unplaced = true;
            continue;
          }
          // A job with the same final key as a running one (a
          // FROM --platform=$BUILDPLATFORM stage planned for each target)
          // waits and takes its result.
          if (!js.no_cache && running_keys.count(js.final_key)) continue;
          // Whether any slot can take it now, before asking the index who
          // holds what (a long queue waits on busy slots every pass).
          Placement placed = Place(PlacementRequest{js.job.platform, js.has_run, nullptr, nullptr}, views);
          if (placed.slot.empty()) {
            if (!placed.capable) unplaced = true;
            continue;
          }
          if (cluster) {
            if (ReviveLostInputs(js)) continue;
            // The same job running in another build: wait for it and take
            // its result from the index (RELIABILITY H6).
            if (!js.no_cache) {
              if (!cluster->ClaimKey(js.final_key)) {
                if (told_waiting.insert(js.job.id).second)
                  printer_.Line("[" + js.job.target_platform.ToString() + " " + js.job.stage +
                                "] the same steps are running for another build; waiting for their result");
                continue;
              }
              claimed.insert(js.final_key);
            }
            if (load.empty()) {  // once per pass, then kept up to date
              for (const auto& v : views)
                if (v.idle) load.emplace(v.worker, cluster->Load(v.worker));
              candidates.clear();
              for (const auto& [w, n] : load) candidates.push_back(w);
            }
            // Only the workers that could take it count (a base layer is held
            // by every worker of the farm).
            std::map<std::string, int> held;
            for (const auto& d : InputBlobs(js))
              for (const auto& w : cluster->HeldBy(d, candidates)) ++held[w];
            placed = Place(PlacementRequest{js.job.platform, js.has_run, &held, &load}, views);
          }
          const std::string best = placed.slot;
          std::uint64_t epoch = epochs[js.job.id] = cluster ? cluster->NextEpoch() : epochs[js.job.id] + 1;
          MF_TRY(data, MakeJob(js, epoch));
          MF_TRY(bytes, wire::EncodeStageJob(data));
          if (cluster) cluster->Dispatch(best, {js.job.id, epoch}, bytes);
          else send(best, bytes);
          slots[best].job = js.job.id;
          js.status = JobState::Status::kRunning;
          js.slot = best;
          ++running;
          ++running_keys[js.final_key];
          if (cluster) ++load[worker_of(best)];
          for (auto& v : views)
            if (v.id == best) v.idle = false;
          --idle;
          if (cluster)
            printer_.Line("[" + js.job.target_platform.ToString() + " " + js.job.stage +
                          "] scheduled on " + worker_of(best));
        }
        // The farm: a job no connected worker can run waits for one, then
        // fails (RELIABILITY H4); what finished stays cached.
        if (cluster && unplaced) {
          if (!waiting_since) waiting_since = Clock::now();
          if (Clock::now() - *waiting_since > cluster->worker_wait()) {
            for (const auto& js : jobs_) {
              if (!Ready(js)) continue;
              failure = MakeError(ErrorKind::kResourceExhausted, "build.no_worker",
                                  "no worker for " + js.job.platform.ToString() + " (stage " +
                                      js.job.stage + ") joined within " +
                                      std::to_string(cluster->worker_wait().count() / 1000) + " s");
              break;
            }
            cancel_ = true;
          }
        } else {
          waiting_since.reset();
        }
      }
      // A failed farm build stops at once: the coordinator cancels the
      // jobs still out when the build ends. The embedded one waits for its
      // slots, whose RUNs the cancel flag kills.
      if ((failure && (running == 0 || cluster)) || (!failure && done())) break;

      auto in = receive();
      if (!in) continue;
      const std::string& slot_id = in->slot;
      using Kind = ClusterBackend::Incoming::Kind;
      if (in->kind != Kind::kMessage) dirty = true;
      if (in->kind == Kind::kCancelled) {
        if (!failure) failure = BuildCancelled(in->bytes);
        cancel_ = true;
        continue;
      }
      if (in->kind == Kind::kLost || in->kind == Kind::kTaken) {
        auto it = slots.find(slot_id);
        if (it == slots.end()) continue;
        if (!it->second.job.empty()) {
          auto& js = jobs_[index_.at(it->second.job)];
          if (in->kind == Kind::kLost)
            printer_.Line("[" + js.job.target_platform.ToString() + " " + js.job.stage + "] worker " +
                          worker_of(slot_id) + " lost; the job runs again elsewhere");
          stop_running(js);
          js.status = JobState::Status::kPending;
          js.slot.clear();
          --running;
        }
        slots.erase(it);
        continue;
      }
      std::string_view bytes = in->bytes;
      auto type = wire::PeekMessageType(bytes);
      if (!type.ok()) {
        MF_LOG_WARN("coordinator: dropped a malformed message from {}", slot_id);
        continue;
      }
      // A message about a job must come from the slot holding its current
      // lease (RELIABILITY G7, G8): late results of a lost worker and
      // results for other slots' jobs are dropped.
      auto current = [&](const std::string& job_id, std::uint64_t epoch) -> JobState* {
        auto it = index_.find(job_id);
        if (it == index_.end()) return nullptr;
        auto& js = jobs_[it->second];
        if (js.status != JobState::Status::kRunning || js.slot != slot_id ||
            epochs[job_id] != epoch) {
          MF_LOG_WARN("coordinator: {} reported on job {} (epoch {}) it does not hold; dropped",
                      slot_id, job_id, epoch);
          return nullptr;
        }
        return &js;
      };
      switch (*type) {
        case wire::MessageType::kWorkerHello: {
          dirty = true;
          auto hello = wire::DecodeWorkerHello(bytes);
          if (hello.ok() && !slots.count(slot_id) && !quarantined.count(worker_of(slot_id)))
            slots[slot_id] = Slot{hello->platforms, "", worker_of(slot_id)};
          break;
        }
        case wire::MessageType::kProgress: {
          auto p = wire::DecodeProgress(bytes);
          if (!p.ok()) break;
          JobState* jsp = current(p->job_id, p->lease_epoch);
          if (!jsp) break;
          auto& js = *jsp;
          const char* what = "info";
          switch (p->kind) {
            case wire::ProgressData::Kind::kStart: what = "start"; break;
            case wire::ProgressData::Kind::kOutput: what = "output"; break;
            case wire::ProgressData::Kind::kCached: what = "cached"; break;
            case wire::ProgressData::Kind::kDone: what = "done"; break;
            case wire::ProgressData::Kind::kInfo: what = "info"; break;
          }
          printer_.Step(js, p->step, what, p->text, p->duration_ms, worker_of(slot_id));
          if (p->kind == wire::ProgressData::Kind::kStart) {
            started_[{js.job.id, p->step}] = Clock::now();
          } else if (p->kind == wire::ProgressData::Kind::kDone) {
            auto st = started_.find({js.job.id, p->step});
            if (st != started_.end()) {
              trace_.push_back(TraceSlice{slot_id, worker_of(slot_id),
                                          js.job.target_platform.ToString() + " " + js.job.stage,
                                          p->step >= 0 && static_cast<std::size_t>(p->step) < js.job.instructions.size()
                                              ? Title(js.job.instructions[static_cast<std::size_t>(p->step)])
                                              : "",
                                          st->second, Clock::now()});
              started_.erase(st);
            }
          }
          break;
        }
        case wire::MessageType::kStageResult: {
          dirty = true;
          auto r = wire::DecodeStageResult(bytes);
          if (!r.ok()) {
            MF_LOG_WARN("coordinator: bad StageResult from {}: {}", slot_id, r.error().ToString());
            break;
          }
          JobState* jsp = current(r->job_id, r->lease_epoch);
          if (!jsp) break;
          auto& js = *jsp;
          slots[slot_id].job.clear();
          js.slot.clear();
          --running;
          // Its key stays claimed until its steps are in the index: a build
          // waiting for it then finds them there.
          if (r->error) stop_running(js);
          if (r->error && cluster && WorkerFault(*r->error) && attempts[js.job.id] < kMaxAttempts) {
            // The worker failed, not the build (disk full, a fetch, runc):
            // the job runs elsewhere; a worker failing again and again is
            // taken out of rotation for this build (RELIABILITY H5, H8).
            ++attempts[js.job.id];
            const std::string w = worker_of(slot_id);
            printer_.Line("[" + js.job.target_platform.ToString() + " " + js.job.stage + "] failed on " + w +
                          " (" + r->error->message + "); the job runs again elsewhere");
            js.status = JobState::Status::kPending;
            if (++worker_failures[w] >= kQuarantineAfter && !quarantined.count(w)) {
              quarantined.insert(w);
              const std::string why =
                  "failed " + std::to_string(worker_failures[w]) + " jobs in a row: " + r->error->message;
              auto quarantine = cluster->Quarantine(w, why);
              printer_.Line("worker " + w + " " + why + "; taken out of rotation (quarantined for " +
                            std::to_string(quarantine.count() / 1000) + " s)");
              for (auto it = slots.begin(); it != slots.end();)
                it = worker_of(it->first) == w && it->second.job.empty() ? slots.erase(it) : std::next(it);
            }
            break;
          }
          if (cluster) worker_failures[worker_of(slot_id)] = 0;
          if (r->error) {
            Error e = std::move(*r->error);
            std::string tag = "[" + js.job.target_platform.ToString() + " " + js.job.stage + "]";
            if (cluster) tag += " on " + worker_of(slot_id);
            if (e.where && e.where->line > 0) e = Locate(std::move(e), e.where->line, tag);
            else e = std::move(e).With(tag);
            if (!failure) failure = std::move(e);
            cancel_ = true;
            js.status = JobState::Status::kPending;
            break;
          }
          js.status = JobState::Status::kDone;
          js.config_digest = r->config_digest;
          js.layers = r->layers;
          for (const auto& s : r->steps)
            if (s.index < js.step_cached.size()) js.step_cached[s.index] = s.cached;
          if (cluster) MF_TRY_VOID(RecordResult(js, *r, worker_of(slot_id)));
          stop_running(js);
          if (cluster) {
            // A target's blobs come here at once, while their worker is
            // surely still up (a draining one leaves soon after).
            if (IsTarget(js)) {
              auto fetched = cluster->FetchToStore(ResultBlobs(js));
              if (!fetched.ok())
                MF_LOG_WARN("fetching the result of {} now: {}", js.job.id, fetched.error().message);
            }
          }
          ++jobs_run_;
          for (auto& twin : jobs_) {
            if (twin.status != JobState::Status::kPending || twin.no_cache ||
                twin.final_key != js.final_key)
              continue;
            twin.status = JobState::Status::kDone;
            twin.cached_whole = true;
            twin.config_digest = js.config_digest;
            twin.layers = js.layers;
            twin.step_cached.assign(twin.job.instructions.size(), true);
            for (std::size_t i = 0; i < twin.job.instructions.size(); ++i)
              printer_.Step(twin, static_cast<int>(i), "cached", Title(twin.job.instructions[i]), 0);
          }
          break;
        }
        default:
          break;
      }
      // A job nobody can take (no slot offers its platform) would wait forever.
      if (!cluster && !failure && running == 0 && !slots.empty()) {
        bool any_ready = false;
        for (const auto& js : jobs_) any_ready = any_ready || Ready(js);
        if (!any_ready && !done()) {
          failure = MakeError(ErrorKind::kInternal, "build.stuck", "no job can make progress");
        }
      }
    }
    if (!cluster) {
      for (const auto& [id, s] : slots) {
        auto bytes = wire::EncodeShutdown("build finished");
        if (bytes.ok()) send(id, *bytes);
      }
      loop->Join();
      loop.reset();
      router->close();
      sessions_.Remove(build_id_);
      local_.reset();
    }
    if (failure) return std::move(*failure);
    return Ok();
  }

  // ------------------------------------------------------------ the farm

  static constexpr int kMaxAttempts = 3;
  static constexpr int kQuarantineAfter = 3;

  /// A failure of the machine rather than of the build: worth another worker.
  /// A command that failed, a missing file, a refused entitlement, a step
  /// timeout are the build's and are never retried (RELIABILITY D4, D5).
  static bool WorkerFault(const Error& e) {
    if (e.code == "step.cancelled" || e.code == "executor.timeout" || e.code == "step.run.failed") return false;
    switch (e.kind) {
      case ErrorKind::kTransient:
      case ErrorKind::kDisconnected:
      case ErrorKind::kResourceExhausted:
      case ErrorKind::kIntegrity:
        return true;
      case ErrorKind::kInternal:
        return e.code.starts_with("executor.") || e.code.starts_with("worker.") ||
               e.code.starts_with("snapshot.") || e.code.starts_with("cas.");
      default:
        return false;
    }
  }

  /// A finished stage whose result no live node holds any more (its worker
  /// left before anyone fetched it) is built again before the jobs that
  /// read it: a step is built again only when no copy survives. True when
  /// `js` must wait for that.
  bool ReviveLostInputs(const JobState& js) {
    std::vector<std::string> inputs;
    if (!js.job.base_job.empty()) inputs.push_back(js.job.base_job);
    for (const auto& [ref, id] : js.stage_inputs) inputs.push_back(id);
    bool revived = false;
    std::map<std::string, bool> held;  // digest -> some node has it (stages share base layers)
    auto gone = [&](const std::string& digest) {
      auto [it, fresh] = held.try_emplace(digest, true);
      if (fresh) it->second = !req_.cluster->Holders(digest, 1).empty();
      return !it->second;
    };
    for (const auto& id : inputs) {
      auto& up = jobs_[index_.at(id)];
      if (up.status != JobState::Status::kDone) continue;
      bool lost = gone(up.config_digest);
      for (const auto& l : up.layers) lost = lost || gone(l.digest);
      if (!lost) continue;
      printer_.Line("[" + up.job.target_platform.ToString() + " " + up.job.stage +
                    "] its result left the farm with its worker; the stage is built again");
      up.status = JobState::Status::kPending;
      up.cached_whole = false;
      up.config_digest.clear();
      up.layers.clear();
      up.step_cached.assign(up.job.instructions.size(), false);
      revived = true;
    }
    return revived;
  }

  /// Blobs a job reads: its base image's, its input stages' and images',
  /// and the context files it may copy.
  std::vector<std::string> InputBlobs(const JobState& js) {
    std::set<std::string> seen;  // stages built on one base share its layers
    std::vector<std::string> out;
    for (auto& src : SourcesOf(js))
      if (seen.insert(src.digest).second) out.push_back(std::move(src.digest));
    return out;
  }

  /// Manifest, config and layers of image `manifest_digest` (coordinator
  /// store), read once per build: content under a digest does not change.
  Expected<void> AddImageSources(const std::string& manifest_digest,
                                 std::vector<wire::BlobSourceData>& out) {
    auto known = image_sources_.find(manifest_digest);
    if (known == image_sources_.end()) {
      std::vector<wire::BlobSourceData> sources;
      MF_TRY_VOID(ReadImageSources(manifest_digest, sources));
      known = image_sources_.emplace(manifest_digest, std::move(sources)).first;
    }
    out.insert(out.end(), known->second.begin(), known->second.end());
    return Ok();
  }

  Expected<void> ReadImageSources(const std::string& manifest_digest,
                                  std::vector<wire::BlobSourceData>& out) {
    MF_TRY(size, store_->blobs().Stat(manifest_digest));
    MF_TRY(mbytes, store_->blobs().ReadAll(manifest_digest));
    MF_TRY(manifest, oci::ParseManifest(mbytes));
    out.push_back({std::string(oci::kOciImageManifest), manifest_digest, size, "", {}});
    out.push_back({manifest.config.media_type, manifest.config.digest.ToString(),
                   static_cast<std::uint64_t>(manifest.config.size), "", {}});
    MF_TRY(cbytes, store_->blobs().ReadAll(manifest.config.digest.ToString()));
    MF_TRY(config, oci::ParseImageConfig(cbytes));
    for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
      const auto& l = manifest.layers[i];
      out.push_back({l.media_type, l.digest.ToString(), static_cast<std::uint64_t>(l.size),
                     i < config.rootfs.diff_ids.size() ? config.rootfs.diff_ids[i].ToString() : "",
                     {}});
    }
    return Ok();
  }

  void AddStageSources(const std::string& config_digest, const std::vector<wire::LayerData>& layers,
                       std::vector<wire::BlobSourceData>& out) {
    out.push_back({std::string(oci::kOciImageConfig), config_digest, 0, "", {}});
    for (const auto& l : layers) out.push_back({l.media_type, l.digest, l.size, l.diff_id, {}});
  }

  static bool ReadsContext(const JobState& js) {
    for (const auto& in : js.job.instructions) {
      if ((in.cmd == Cmd::kCopy || in.cmd == Cmd::kAdd) && in.from.empty()) return true;
      if (in.cmd != Cmd::kRun) continue;
      for (const auto& m : in.mounts) {
        auto spec = dockerfile::ParseExpandedMount(m);
        if (spec.ok() && spec->type == "bind" && spec->from.empty()) return true;
      }
    }
    return false;
  }

  std::vector<wire::BlobSourceData> SourcesOf(const JobState& js) {
    std::vector<wire::BlobSourceData> out;
    if (!js.base_manifest.empty()) (void)AddImageSources(js.base_manifest, out);
    if (!js.job.base_job.empty()) {
      const auto& up = jobs_[index_.at(js.job.base_job)];
      AddStageSources(up.config_digest, up.layers, out);
    }
    for (const auto& [ref, id] : js.stage_inputs) {
      const auto& up = jobs_[index_.at(id)];
      AddStageSources(up.config_digest, up.layers, out);
    }
    for (const auto& [ref, v] : js.image_inputs)
      if (v.starts_with("image:")) (void)AddImageSources(v.substr(6), out);
    for (const auto* e : ContextOf(js))
      if (!e->digest.hex.empty()) out.push_back({"application/octet-stream", e->digest.ToString(), 0, "", {}});
    return out;
  }

  /// The context entries `js` may read and the directories above them.
  std::vector<const cache::SourceDigest*> ContextOf(const JobState& js) const {
    std::vector<const cache::SourceDigest*> out;
    if (js.context_paths.empty()) return out;
    std::set<std::string_view> wanted(js.context_paths.begin(), js.context_paths.end());
    for (const auto& p : js.context_paths)
      for (auto slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1))
        wanted.insert(std::string_view(p).substr(0, slash));
    for (const auto& e : context_.entries)
      if (wanted.count(e.path)) out.push_back(&e);
    return out;
  }

  Expected<wire::JobSupplement> MakeSupplement(const JobState& js) {
    wire::JobSupplement sup;
    auto sources = SourcesOf(js);
    // The deepest planned step the shared index already answers: the
    // worker resumes after it, whoever built it.
    if (!js.no_cache)
      for (std::size_t i = js.keys.size(); i-- > 0;) {
        if (js.keys[i].empty()) continue;
        MF_TRY(rec, req_.cluster->Lookup(js.keys[i]));
        if (!rec) continue;
        wire::JobSupplement::CachedStep cs;
        cs.key = js.keys[i];
        cs.config_digest = rec->config_digest;
        for (const auto& l : rec->layers) cs.layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
        AddStageSources(cs.config_digest, cs.layers, sources);
        sup.cached_steps.push_back(std::move(cs));
        break;
      }
    std::set<std::string> seen;
    for (auto& src : sources) {
      if (!seen.insert(src.digest).second) continue;
      src.holders = req_.cluster->Holders(src.digest, kHoldersPerBlob, std::hash<std::string>{}(js.job.id + src.digest));
      sup.sources.push_back(std::move(src));
    }
    if (ReadsContext(js)) {
      // Only what its steps may read: a job copying one file fetches one.
      sup.reads_context = true;
      for (const auto* e : ContextOf(js)) {
        wire::ContextFileData f;
        f.path = e->path;
        f.mode = e->mode;
        f.uid = e->uid;
        f.gid = e->gid;
        f.digest = e->digest.hex.empty() ? "" : e->digest.ToString();
        f.link_target = e->link_target;
        struct stat st {};
        if (::lstat((context_dir_ + "/" + e->path).c_str(), &st) == 0)
          f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
        sup.context.push_back(std::move(f));
      }
      if (ignore_) sup.dockerignore = dockerignore_text_;
    }
    // Secrets travel only to the worker running a step that mounts them.
    for (const auto& in : js.job.instructions) {
      if (in.cmd != Cmd::kRun) continue;
      for (const auto& m : in.mounts) {
        auto spec = dockerfile::ParseExpandedMount(m);
        if (!spec.ok() || spec->type != "secret") continue;
        std::string id = spec->id;
        if (id.empty()) id = spec->target.substr(spec->target.find_last_of('/') + 1);
        auto it = req_.secrets.find(id);
        if (it != req_.secrets.end()) sup.secrets.insert(*it);
      }
    }
    return sup;
  }

  /// Peer holders listed per blob in a StageJob: a base layer every worker
  /// holds would not fit; a different few for each job spread the fetches.
  static constexpr std::size_t kHoldersPerBlob = 8;

  /// Every keyed step of a finished job goes into the shared index, held by
  /// the worker that ran it (one transaction).
  Expected<void> RecordResult(const JobState& js, const wire::StageResultData& r,
                              const std::string& worker) {
    std::vector<std::pair<std::string, cache::StepRecord>> records;
    for (const auto& s : r.steps) {
      if (s.cache_key.empty() || s.config_digest.empty()) continue;
      cache::StepRecord rec{s.config_digest, {}};
      if (s.chain_length > r.layers.size()) continue;
      for (std::size_t i = 0; i < s.chain_length; ++i) {
        const auto& l = r.layers[i];
        rec.layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
      }
      records.emplace_back(s.cache_key, std::move(rec));
    }
    cache::StepRecord fin{r.config_digest, {}};
    for (const auto& l : r.layers) fin.layers.push_back({l.media_type, l.digest, l.diff_id, l.size});
    if (!js.final_key.empty()) records.emplace_back(js.final_key, std::move(fin));
    return req_.cluster->Record(records, worker);
  }

  /// The target stages' configs and layers, into the coordinator's store
  /// for the index, the export and the push. Layers stay on the workers when
  /// the client takes no result and they push them (their holders push).
  Expected<void> FetchTargets() {
    std::vector<std::string> digests;
    for (const auto& js : jobs_) {
      if (!js.needed || !IsTarget(js)) continue;
      auto blobs = ResultBlobs(js);
      digests.insert(digests.end(), blobs.begin(), blobs.end());
    }
    return req_.cluster->FetchToStore(digests);
  }

  /// What of a target's result the coordinator needs: its config, and its
  /// layers unless they stay on the workers.
  std::vector<std::string> ResultBlobs(const JobState& js) const {
    std::vector<std::string> out{js.config_digest};
    if (!LayersStay())
      for (const auto& l : js.layers) out.push_back(l.digest);
    return out;
  }

  /// A farm --push whose client takes no copy: the target layers stay on
  /// the workers, which push them.
  bool LayersStay() const { return req_.cluster && req_.push && req_.no_result; }

  /// Farm push: the layers the coordinator lacks are pushed by a live worker
  /// holding each, to `ref`'s repository; what no worker could push comes
  /// here and goes up with the rest. Returns the layers workers pushed.
  Expected<std::set<std::string>> PushFromWorkers(const std::string& ref) {
    std::map<std::string, std::vector<wire::LayerData>> by_worker;
    std::vector<std::string> fallback;
    std::set<std::string> seen;
    for (const auto& js : jobs_) {
      if (!js.needed || !IsTarget(js)) continue;
      for (const auto& l : js.layers) {
        if (!seen.insert(l.digest).second) continue;
        MF_TRY(has, store_->blobs().Has(l.digest));
        if (has) continue;
        std::string holder;
        for (const auto& w : req_.cluster->HolderIds(l.digest))
          if (req_.cluster->IsLive(w)) {
            holder = w;
            break;
          }
        if (holder.empty()) fallback.push_back(l.digest);
        else by_worker[holder].push_back(l);
      }
    }
    std::set<std::string> pushed;
    if (!by_worker.empty()) {
      for (const auto& r : req_.cluster->PushFromWorkers(ref, by_worker)) {
        if (r.error) {
          printer_.Line(r.worker + " could not push its " + std::to_string(r.layers.size()) + " layer(s) (" +
                        r.error->message + "); the coordinator pushes them");
          for (const auto& l : r.layers) fallback.push_back(l.digest);
          continue;
        }
        printer_.Line(r.worker + " pushed " + std::to_string(r.layers.size()) + " layer(s) (" +
                      std::to_string(r.uploaded) + " uploaded, " + std::to_string(r.mounted) + " mounted, " +
                      std::to_string(r.existing) + " already there)");
        for (const auto& l : r.layers) pushed.insert(l.digest);
      }
    }
    if (!fallback.empty()) MF_TRY_VOID(req_.cluster->FetchToStore(fallback));
    return pushed;
  }

  static std::string Title(const dockerfile::Instruction& in) {
    std::string t = in.original;
    auto nl = t.find('\n');
    if (nl != std::string::npos) t = t.substr(0, nl) + " ...";
    return t;
  }

  // ------------------------------------------------------------ trace

  struct TraceSlice {
    std::string slot;
    std::string worker;  ///< farm builds; "" = the embedded worker
    std::string job;
    std::string step;
    Clock::time_point start, end;
  };

  /// Chrome trace event format: "X" (complete) events, microseconds since the
  /// build started; a process per worker and a thread per job slot, named by
  /// process_name / thread_name metadata.
  Expected<void> WriteTrace(Clock::time_point t0) const {
    nlohmann::json events = nlohmann::json::array();
    std::map<std::string, int> pids;
    std::map<std::string, int> tids;
    for (const auto& sl : trace_) {
      pids.emplace(sl.worker, 0);
      tids.emplace(sl.slot, 0);
    }
    int next = 1;
    for (auto& [w, pid] : pids) {
      pid = next++;
      events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid},
                        {"args", {{"name", w.empty() ? std::string("embedded worker") : "worker " + w}}}});
    }
    next = 1;
    for (auto& [slot, tid] : tids) tid = next++;
    std::set<std::string> named;
    for (const auto& sl : trace_)
      if (named.insert(sl.slot).second)
        events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pids.at(sl.worker)},
                          {"tid", tids.at(sl.slot)}, {"args", {{"name", sl.slot}}}});
    auto us = [&](Clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::microseconds>(t - t0).count();
    };
    for (const auto& sl : trace_) {
      nlohmann::json args{{"job", sl.job}};
      if (!sl.worker.empty()) args["worker"] = sl.worker;
      events.push_back({{"name", sl.step}, {"cat", sl.job}, {"ph", "X"}, {"pid", pids.at(sl.worker)},
                        {"tid", tids.at(sl.slot)}, {"ts", us(sl.start)},
                        {"dur", us(sl.end) - us(sl.start)}, {"args", args}});
    }
    std::string text = nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() + "\n";
    if (req_.trace_out) {
      *req_.trace_out = std::move(text);
      return Ok();
    }
    std::ofstream out(req_.trace_file, std::ios::trunc);
    out << text;
    if (!out)
      return MakeError(ErrorKind::kInvalidInput, "build.trace", "cannot write " + req_.trace_file);
    return Ok();
  }

  // ------------------------------------------------------------ the image

  Expected<BuildSummary> Assemble() {
    BuildSummary s;
    oci::ImageIndex index;
    for (auto& js : jobs_) {
      if (!js.needed) continue;
      for (bool c : js.step_cached) (c ? s.steps_cached : s.steps_executed)++;
      if (js.cached_whole) ++s.jobs_cached;
      if (!IsTarget(js)) continue;
      MF_TRY(csize, store_->blobs().Stat(js.config_digest));
      oci::ImageManifest m;
      m.config.media_type = std::string(oci::kOciImageConfig);
      MF_TRY(cd, oci::ParseDigest(js.config_digest));
      m.config.digest = cd;
      m.config.size = static_cast<std::int64_t>(csize);
      for (const auto& l : js.layers) {
        oci::Descriptor d;
        d.media_type = l.media_type;
        MF_TRY(ld, oci::ParseDigest(l.digest));
        d.digest = ld;
        d.size = static_cast<std::int64_t>(l.size);
        m.layers.push_back(std::move(d));
      }
      MF_TRY(mdesc, store_->PutDocument(std::string(oci::kOciImageManifest), m.ToJson()));
      MF_TRY(cbytes, store_->blobs().ReadAll(js.config_digest));
      MF_TRY(config, oci::ParseImageConfig(cbytes));
      mdesc.platform = oci::Platform{config.os, config.architecture, config.variant};
      s.manifests.emplace_back(mdesc.platform->ToString(), mdesc.digest.ToString());
      index.manifests.push_back(std::move(mdesc));
    }
    s.jobs_run = jobs_run_;
    MF_TRY(idesc, store_->PutDocument(std::string(oci::kOciImageIndex), index.ToJson()));
    s.index_digest = idesc.digest.ToString();
    root_ = idesc;
    return s;
  }

  Expected<void> Export(BuildSummary& summary) {
    std::vector<std::string> names;
    for (const auto& t : req_.tags) {
      MF_TRY(n, image::ImageStore::NormalizeName(t));
      names.push_back(n);
    }
    std::vector<std::string> push_refs;
    if (req_.cluster) {  // the client tags and writes outputs; the farm pushes
      if (req_.push) push_refs = req_.tags;
      return Push(summary, push_refs);
    }
    for (const auto& n : names) MF_TRY_VOID(store_->Tag(n, root_));
    if (req_.push) push_refs = req_.tags;
    for (const auto& o : req_.outputs)
      if (o.type == OutputSpec::Type::kImage) {
        MF_TRY(n, image::ImageStore::NormalizeName(o.name));
        MF_TRY_VOID(store_->Tag(n, root_));
        if (o.push) push_refs.push_back(o.name);
      }
    MF_TRY_VOID(WriteOutputs(*store_, root_, names.empty() ? "" : names.front(), req_.outputs,
                             req_.source_date_epoch));
    return Push(summary, push_refs);
  }

  Expected<void> Push(BuildSummary& summary, const std::vector<std::string>& refs) {
    for (const auto& ref : refs) {
      registry::PushOptions po;
      po.registry = req_.registry;
      printer_.Line("pushing " + ref);
      if (req_.cluster) {
        MF_TRY(by_workers, PushFromWorkers(ref));
        po.pushed_elsewhere = std::move(by_workers);
      }
      auto pushed = registry::Push(*store_, root_, ref, po);
      if (!pushed.ok()) return std::move(pushed).error().With("pushing " + ref);
      printer_.Line("pushed " + ref + "@" + pushed->digest.ToString() + " (" +
                    std::to_string(pushed->blobs_uploaded) + " blobs uploaded, " +
                    std::to_string(pushed->blobs_mounted) + " mounted, " +
                    std::to_string(pushed->blobs_existing) + " already there)");
      summary.pushed.emplace_back(ref, pushed->digest.ToString());
    }
    return Ok();
  }

  const BuildRequest& req_;
  Printer printer_;
  std::string context_dir_;
  std::string dockerfile_path_;
  dockerfile::Dockerfile df_;
  char escape_ = '\\';
  std::optional<dockerfile::IgnoreMatcher> ignore_;
  plan::Plan plan_;
  std::unique_ptr<image::ImageStore> store_;
  std::optional<cache::StepCache> cache_;
  std::vector<JobState> jobs_;
  std::map<std::string, std::size_t> index_;
  ContextManifest context_;
  oci::Platform native_;
  std::vector<std::pair<oci::Platform, bool>> platforms_;
  std::string build_id_;
  worker::SessionRegistry sessions_;
  std::unique_ptr<worker::LocalWorker> local_;  ///< the embedded worker
  worker::WorkerEnv wenv_;
  std::atomic<bool> cancel_{false};
  int jobs_run_ = 0;
  oci::Descriptor root_;
  fs::UniqueFd cache_lock_;
  std::map<std::pair<std::string, int>, Clock::time_point> started_;
  std::map<std::string, std::vector<wire::BlobSourceData>> image_sources_;  ///< manifest digest -> its blobs
  std::vector<TraceSlice> trace_;
  std::map<std::string, std::string> url_fingerprints_;
  std::string dockerignore_text_;
};

}  // namespace

std::string BuildCacheLockPath(const std::string& state_dir) {
  return state_dir + "/build-cache.lock";
}

Expected<BuildCachePruneStats> PruneBuildCache(const std::string& state_dir) {
  int lfd = ::open(BuildCacheLockPath(state_dir).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0)
    return MakeError(ErrorKind::kInternal, "prune.io",
                     "open " + BuildCacheLockPath(state_dir) + ": " + std::strerror(errno));
  fs::UniqueFd lock(lfd);
  if (::flock(lfd, LOCK_EX | LOCK_NB) != 0)
    return MakeError(ErrorKind::kTransient, "prune.busy",
                     "a build is running on " + state_dir + "; prune the build cache when it has finished");
  // Dead builds' containers and overlays first, so nothing below is mounted.
  std::string wstate = state_dir + "/worker";
  if (std::filesystem::exists(wstate)) {
    MF_TRY(rd, worker::ClaimRunDir(wstate, "prune"));
    std::error_code ec;
    std::filesystem::remove_all(rd.path, ec);
  }
  if (std::filesystem::exists(state_dir + "/snapshots"))
    MF_TRY_VOID(worker::Snapshotter::Open(state_dir));
  BuildCachePruneStats stats;
  auto size_of = [](const std::filesystem::path& p) {
    std::uint64_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(
             p, std::filesystem::directory_options::skip_permission_denied, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) n += it->file_size(ec);
    }
    return n;
  };
  auto clear = [&](const std::string& dir, std::uint64_t* count, bool measure) -> Expected<void> {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) return Ok();
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.ends_with(".lock")) continue;
      if (measure) stats.bytes += size_of(e.path());
      std::filesystem::remove_all(e.path(), ec);
      if (ec)
        return MakeError(ErrorKind::kInternal, "prune.io",
                         "remove " + e.path().string() + ": " + ec.message());
      ++*count;
    }
    return Ok();
  };
  MF_TRY_VOID(clear(state_dir + "/cache/steps", &stats.step_records, false));
  MF_TRY_VOID(clear(state_dir + "/snapshots", &stats.snapshots, true));
  MF_TRY_VOID(clear(wstate + "/cache-mounts", &stats.cache_mounts, true));
  return stats;
}

Error BuildCancelled(const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "build.cancelled", "build cancelled: " + why);
}

Expected<BuildSummary> RunBuild(const BuildRequest& request, std::ostream& out) {
  Build b(request, out);
  return b.Run();
}

}  // namespace manifold::coordinator
