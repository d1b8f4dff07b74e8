// `manifold build`: buildx's flags, the embedded coordinator and worker.
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/registry_flags.h"
#include "common/image/image_store.h"
#include "coordinator/build/builder.h"
#include "coordinator/build/remote_build.h"

namespace manifold::cli {

namespace {

struct BuildFlags {
  std::string context;
  std::string file;
  std::string platforms;
  std::string target;
  std::vector<std::string> build_args;
  std::vector<std::string> tags;
  std::vector<std::string> outputs;
  bool no_cache = false;
  std::vector<std::string> no_cache_filter;
  std::vector<std::string> secrets;
  std::vector<std::string> volumes;
  std::vector<std::string> allow;
  std::string progress = "auto";
  std::string compression = "gzip";
  unsigned slots = 2;
  double step_timeout = 0;
  bool quiet = false;
  bool push = false;
  bool pull = false;
  std::string trace;
  RegistryFlags registry;
  std::string coordinator;
  std::string token;
  std::string coordinator_key;
};

Expected<coordinator::BuildRequest> MakeRequest(const BuildFlags& f) {
  coordinator::BuildRequest r;
  r.context_dir = f.context;
  r.dockerfile = f.file;
  r.state_dir = image::DefaultStateDir();
  if (!f.platforms.empty()) {
    MF_TRY(ps, oci::ParsePlatformList(f.platforms).With("--platform"));
    r.platforms = ps;
  }
  r.target = f.target;
  for (const auto& a : f.build_args) {
    auto eq = a.find('=');
    std::string key = a.substr(0, eq);
    if (key.empty())
      return MakeError(ErrorKind::kInvalidInput, "cli.build_arg",
                       "invalid --build-arg \"" + a + "\": empty name");
    if (eq != std::string::npos) r.build_args[key] = a.substr(eq + 1);
    else if (const char* v = std::getenv(key.c_str())) r.build_args[key] = v;
  }
  for (const auto& t : f.tags) MF_TRY_VOID(image::ImageStore::NormalizeName(t).With("-t " + t));
  r.tags = f.tags;
  for (const auto& o : f.outputs) {
    MF_TRY(spec, coordinator::ParseOutputSpec(o));
    r.outputs.push_back(spec);
  }
  r.no_cache = f.no_cache;
  r.no_cache_filter = f.no_cache_filter;
  for (const auto& s : f.secrets) {
    MF_TRY(kv, coordinator::ParseSecretSpec(s));
    r.secrets[kv.first] = kv.second;
  }
  r.volumes = f.volumes;
  r.allow = f.allow;
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
    char* end = nullptr;
    long long v = std::strtoll(sde, &end, 10);
    if (*end != '\0' || v < 0)
      return MakeError(ErrorKind::kInvalidInput, "cli.source_date_epoch",
                       std::string("invalid SOURCE_DATE_EPOCH \"") + sde + "\": want seconds since 1970");
    r.source_date_epoch = v;
  }
  if (f.progress != "auto" && f.progress != "tty" && f.progress != "plain" && f.progress != "json" &&
      f.progress != "quiet")
    return MakeError(ErrorKind::kInvalidInput, "cli.progress",
                     "invalid --progress \"" + f.progress + "\" (auto, tty, plain, json, quiet)");
  r.progress = f.quiet ? "quiet" : f.progress;
  if (f.compression != "gzip" && f.compression != "zstd" && f.compression != "none")
    return MakeError(ErrorKind::kInvalidInput, "cli.compression",
                     "invalid --compression \"" + f.compression + "\" (gzip, zstd, none)");
  r.compression = f.compression;
  MF_TRY(registry, MakeRegistryOptions(f.registry));
  r.registry = std::move(registry);
  r.push = f.push;
  r.trace_file = f.trace;
  r.pull = f.pull;
  if (f.push && f.tags.empty())
    return MakeError(ErrorKind::kInvalidInput, "cli.push", "--push needs at least one -t REF");
  r.slots = f.slots == 0 ? 1 : f.slots;
  if (f.step_timeout < 0)
    return MakeError(ErrorKind::kInvalidInput, "cli.step_timeout", "--step-timeout must not be negative");
  r.step_timeout = std::chrono::milliseconds(static_cast<long long>(f.step_timeout * 1000));
  return r;
}

}  // namespace

coordinator::RemoteTarget RemoteTargetFrom(std::string address, std::string token, std::string key) {
  if (address.empty())
    if (const char* a = std::getenv("MANIFOLD_COORDINATOR")) address = a;
  if (token.empty())
    if (const char* t = std::getenv("MANIFOLD_TOKEN")) token = t;
  coordinator::RemoteTarget target;
  target.address = address;
  target.token = token;
  target.coordinator_key = key;
  return target;
}

void AddBuildCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("build", "Build a Dockerfile for one or more platforms");
  auto f = std::make_shared<BuildFlags>();
  cmd->add_option("CONTEXT", f->context, "Build context directory")->required();
  cmd->add_option("-f,--file", f->file, "Dockerfile (default: CONTEXT/Dockerfile)");
  cmd->add_option("--platform", f->platforms, "Target platforms, comma separated (default: this machine's)");
  cmd->add_option("--target", f->target, "Stage to build (default: the last)");
  cmd->add_option("--build-arg", f->build_args, "Build-time variable K=V (or K, from the environment)")
      ->allow_extra_args(false);
  cmd->add_option("-t,--tag", f->tags, "Name the result in the local image store")->allow_extra_args(false);
  cmd->add_option("-o,--output", f->outputs,
                  "type=oci,dest=FILE.tar | type=oci-dir,dest=DIR | type=local,dest=DIR")
      ->allow_extra_args(false);
  cmd->add_flag("--no-cache", f->no_cache, "Execute every step");
  cmd->add_option("--no-cache-filter", f->no_cache_filter, "Execute every step of these stages")
      ->allow_extra_args(false)
      ->delimiter(',');
  cmd->add_option("--secret", f->secrets, "id=ID,src=FILE or id=ID,env=VAR")->allow_extra_args(false);
  cmd->add_option("-v,--volume", f->volumes, "HOST:CONTAINER[:ro] bind mount for every RUN (buildah)")
      ->allow_extra_args(false);
  cmd->add_option("--allow", f->allow, "Entitlement: security.insecure")->allow_extra_args(false);
  cmd->add_option("--progress", f->progress, "auto, tty, plain, json, quiet");
  cmd->add_flag("-q,--quiet", f->quiet, "Print only the image index digest");
  cmd->add_option("--compression", f->compression, "Layer compression: gzip, zstd, none");
  cmd->add_option("--jobs", f->slots, "Jobs the embedded worker runs at once (default 2)");
  cmd->add_flag("--push", f->push, "Push the result to every -t reference");
  cmd->add_flag("--pull", f->pull, "Check the registry for newer base images");
  cmd->add_option("--trace", f->trace, "Write the schedule as a Chrome/Perfetto trace (JSON)");
  AddRegistryFlags(cmd, &f->registry);
  cmd->add_option("--step-timeout", f->step_timeout,
                  "Kill a RUN step after this many seconds (default: no limit)");
  cmd->add_option("--coordinator", f->coordinator,
                  "Build on a farm: HOST:PORT of manifold-coordinator (or MANIFOLD_COORDINATOR)");
  cmd->add_option("--token", f->token, "The farm's join token (or MANIFOLD_TOKEN)");
  cmd->add_option("--coordinator-key", f->coordinator_key,
                  "The coordinator's public key, when this client's key was admitted with allow-client");
  cmd->callback([f, exit_code] {
    auto req = MakeRequest(*f);
    if (!req.ok()) {
      PrintError(req.error());
      *exit_code = 1;
      return;
    }
    coordinator::RemoteTarget target = RemoteTargetFrom(f->coordinator, f->token, f->coordinator_key);
    auto summary = target.address.empty() ? coordinator::RunBuild(*req, std::cerr)
                                          : coordinator::RunRemoteBuild(target, *req, std::cerr);
    if (!summary.ok()) {
      PrintError(summary.error());
      *exit_code = 1;
      return;
    }
    const auto& s = *summary;
    if (req->progress != "quiet") {
      std::string plats;
      for (const auto& [p, d] : s.manifests) plats += (plats.empty() ? "" : ", ") + p;
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.2f", s.seconds);
      std::cerr << "built " << plats << ": steps: " << s.steps_executed << " executed, "
                << s.steps_cached << " cached; jobs: " << s.jobs_run << " run, " << s.jobs_cached
                << " cached; " << secs << "s\n";
    }
    for (const auto& [ref, digest] : s.pushed) std::cerr << "pushed " << ref << "@" << digest << "\n";
    std::cout << s.index_digest << "\n";
  });
}

}  // namespace manifold::cli
