// `manifold pull`, `push`, `login`, `logout`, and the registry flags they
// share with `build`.
#include "cli/registry_flags.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "common/image/image_store.h"
#include "common/oci/digest.h"
#include "common/oci/reference.h"
#include "common/registry/client.h"
#include "common/registry/docker_config.h"
#include "common/registry/pull.h"
#include "common/registry/push.h"

namespace manifold::cli {

void AddRegistryFlags(CLI::App* cmd, RegistryFlags* f) {
  cmd->add_option("--insecure-registry", f->insecure,
                  "Registry HOST[:PORT] reached over plain HTTP or unverified TLS")
      ->allow_extra_args(false);
  cmd->add_option("--registry-mirror", f->mirrors, "Mirror tried before Docker Hub (URL or host)")
      ->allow_extra_args(false);
  cmd->add_option("--certs-dir", f->certs_dir,
                  "Per-registry CAs and client certificates: DIR/HOST[:PORT]/{*.crt,*.cert,*.key} "
                  "(default /etc/docker/certs.d)");
}

Expected<registry::RegistryOptions> MakeRegistryOptions(const RegistryFlags& f) {
  registry::RegistryOptions o;
  const char* daemon = std::getenv("MANIFOLD_DAEMON_CONFIG");
  MF_TRY_VOID(registry::LoadDaemonConfig(daemon && *daemon ? daemon : "/etc/docker/daemon.json", &o));
  for (const auto& i : f.insecure) o.insecure_registries.push_back(i);
  for (const auto& m : f.mirrors) o.mirrors.push_back(m);
  if (!f.certs_dir.empty()) o.certs_dir = f.certs_dir;
  MF_TRY(config, registry::DockerConfig::Load(registry::DockerConfig::DefaultDir()));
  o.credentials = registry::CredentialsFrom(std::move(config));
  return o;
}

namespace {

struct PullFlags {
  std::string ref;
  std::vector<std::string> platforms;
  RegistryFlags registry;
};

struct PushFlags {
  std::string name;
  std::string ref;
  RegistryFlags registry;
};

struct LoginFlags {
  std::string server;
  std::string user;
  std::string password;
  bool password_stdin = false;
  RegistryFlags registry;
};

/// "docker.io" for Docker Hub spellings, else the host as given.
std::string LoginDomain(const std::string& server) {
  std::string s = server;
  for (const char* prefix : {"https://", "http://"})
    if (s.rfind(prefix, 0) == 0) s = s.substr(std::string(prefix).size());
  auto slash = s.find('/');
  if (slash != std::string::npos) s = s.substr(0, slash);
  if (s.empty() || s == "index.docker.io" || s == "registry-1.docker.io" || s == "docker.io")
    return "docker.io";
  return s;
}

Expected<std::string> RunPull(const PullFlags& f) {
  MF_TRY(opts, MakeRegistryOptions(f.registry));
  registry::PullOptions po;
  po.registry = std::move(opts);
  for (const auto& p : f.platforms) {
    MF_TRY(list, oci::ParsePlatformList(p).With("--platform"));
    po.platforms.insert(po.platforms.end(), list.begin(), list.end());
  }
  MF_TRY(store, image::ImageStore::Open(image::DefaultStateDir()));
  MF_TRY(r, registry::Pull(*store, f.ref, po));
  return r.name + "@" + r.root.digest.ToString() + " (" + std::to_string(r.blobs_fetched) +
         " blobs fetched, " + std::to_string(r.blobs_present) + " already here)\n";
}

Expected<std::string> RunPush(const PushFlags& f) {
  MF_TRY(opts, MakeRegistryOptions(f.registry));
  registry::PushOptions po;
  po.registry = std::move(opts);
  MF_TRY(store, image::ImageStore::Open(image::DefaultStateDir()));
  MF_TRY(r, registry::Push(*store, f.name, f.ref, po));
  std::string target = f.ref.empty() ? f.name : f.ref;
  return target + "@" + r.digest.ToString() + " (" + std::to_string(r.blobs_uploaded) +
         " blobs uploaded, " + std::to_string(r.blobs_mounted) + " mounted, " +
         std::to_string(r.blobs_existing) + " already there)\n";
}

Expected<std::string> RunLogin(LoginFlags f) {
  if (f.password_stdin) {
    if (!f.password.empty())
      return MakeError(ErrorKind::kInvalidInput, "cli.login",
                       "--password and --password-stdin are mutually exclusive");
    std::getline(std::cin, f.password);
    while (!f.password.empty() && (f.password.back() == '\n' || f.password.back() == '\r'))
      f.password.pop_back();
  }
  if (f.user.empty() || f.password.empty())
    return MakeError(ErrorKind::kInvalidInput, "cli.login",
                     "login needs -u USER and a password (-p or --password-stdin)");
  const std::string domain = LoginDomain(f.server);
  // Check the credentials against the registry before storing them.
  MF_TRY(opts, MakeRegistryOptions(f.registry));
  registry::Credentials creds;
  creds.username = f.user;
  creds.password = f.password;
  opts.credentials = [creds](const std::string&) -> Expected<registry::Credentials> { return creds; };
  MF_TRY(client, registry::RegistryClient::Create(domain, opts));
  auto probe = client->HeadBlob("manifold/login-check", oci::Digest::Sha256Of(""));
  if (!probe.ok()) return std::move(probe).error().With("login to " + domain);
  MF_TRY(config, registry::DockerConfig::Load(registry::DockerConfig::DefaultDir()));
  MF_TRY_VOID(config.Store(domain, creds));
  return "Login Succeeded (" + domain + ", saved in " + config.path() + ")\n";
}

}  // namespace

void AddRegistryCommands(CLI::App& app, int* exit_code) {
  auto report = [exit_code](const Expected<std::string>& out) {
    if (!out.ok()) {
      PrintError(out.error());
      *exit_code = 1;
      return;
    }
    std::cout << *out;
  };
  {
    auto* cmd = app.add_subcommand("pull", "Pull an image from a registry into the local store");
    auto f = std::make_shared<PullFlags>();
    cmd->add_option("REF", f->ref, "name[:tag][@digest]")->required();
    cmd->add_option("--platform", f->platforms, "Platforms to pull (default: all)")->allow_extra_args(false);
    AddRegistryFlags(cmd, &f->registry);
    cmd->callback([f, report] { report(RunPull(*f)); });
  }
  {
    auto* cmd = app.add_subcommand("push", "Push a local image (every platform) to a registry");
    auto f = std::make_shared<PushFlags>();
    cmd->add_option("NAME", f->name, "Local image name")->required();
    cmd->add_option("REF", f->ref, "Destination (default: NAME)");
    AddRegistryFlags(cmd, &f->registry);
    cmd->callback([f, report] { report(RunPush(*f)); });
  }
  {
    auto* cmd = app.add_subcommand("login", "Store registry credentials in Docker's config.json");
    auto f = std::make_shared<LoginFlags>();
    cmd->add_option("SERVER", f->server, "Registry host (default: Docker Hub)");
    cmd->add_option("-u,--username", f->user, "User name");
    cmd->add_option("-p,--password", f->password, "Password (prefer --password-stdin)");
    cmd->add_flag("--password-stdin", f->password_stdin, "Read the password from stdin");
    AddRegistryFlags(cmd, &f->registry);
    cmd->callback([f, report] { report(RunLogin(*f)); });
  }
  {
    auto* cmd = app.add_subcommand("logout", "Remove stored registry credentials");
    auto server = std::make_shared<std::string>();
    cmd->add_option("SERVER", *server, "Registry host (default: Docker Hub)");
    cmd->callback([server, report] {
      report([&]() -> Expected<std::string> {
        const std::string domain = LoginDomain(*server);
        MF_TRY(config, registry::DockerConfig::Load(registry::DockerConfig::DefaultDir()));
        MF_TRY(erased, config.Erase(domain));
        return erased ? "Removed login credentials for " + domain + "\n"
                      : "Not logged in to " + domain + "\n";
      }());
    });
  }
}

}  // namespace manifold::cli
