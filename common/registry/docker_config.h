// Docker's client configuration, `$DOCKER_CONFIG/config.json` or
// `~/.docker/config.json`: the same file `docker login` writes, so one login
// serves both tools. Credentials come from, in Docker's order:
// credHelpers[registry], else credsStore, else auths[registry] ("auth" =
// base64 "user:password", or "username"/"password"; "identitytoken";
// "registrytoken"). Login/logout rewrite the file atomically with mode 0600,
// keeping every field they do not own.
#pragma once

#include <string>

#include "common/base/expected.h"
#include "common/registry/credential_helper.h"
#include "common/registry/registry_options.h"

namespace manifold::registry {

class DockerConfig {
 public:
  /// $DOCKER_CONFIG, else $HOME/.docker.
  static std::string DefaultDir();

  /// Reads <dir>/config.json; a missing file is an empty configuration.
  /// Errors: kInvalidInput "registry.config" naming the file (not JSON, an
  /// "auths" entry that is not an object, "auth" that is not base64 of
  /// "user:password"). Never includes a secret in a message.
  static Expected<DockerConfig> Load(const std::string& dir,
                                     CredentialHelperRunner runner = DefaultCredentialHelperRunner());

  /// The key Docker files a registry under: "https://index.docker.io/v1/"
  /// for docker.io, else the domain ("reg.example.com:5000").
  static std::string ServerKey(const std::string& domain);

  /// Credentials for `domain` (a reference's domain). Empty when none. A
  /// helper answering "credentials not found" is not an error. Errors:
  /// kInvalidInput "registry.cred_helper" (helper missing, failing or
  /// printing something that is not its JSON).
  Expected<Credentials> Get(const std::string& domain) const;

  /// `manifold login`: into the registry's helper when one is configured,
  /// else auths[ServerKey(domain)] = {"auth": base64(user:password)} (and
  /// "identitytoken" when set), then the file is replaced atomically (0600).
  Expected<void> Store(const std::string& domain, const Credentials& credentials);

  /// `manifold logout`: removes the entry (helper erase, or from auths, under
  /// any spelling of the key). Returns false when there was none.
  Expected<bool> Erase(const std::string& domain);

  const std::string& path() const { return path_; }

 private:
  DockerConfig(std::string dir, std::string json, CredentialHelperRunner runner)
      : dir_(std::move(dir)), path_(dir_ + "/config.json"), json_(std::move(json)),
        runner_(std::move(runner)) {}
  Expected<void> Write() const;

  std::string dir_;
  std::string path_;
  std::string json_;  ///< the whole document, re-parsed on use (keeps the header light)
  CredentialHelperRunner runner_;
};

/// A CredentialSource over a loaded configuration (copied into the function).
CredentialSource CredentialsFrom(DockerConfig config);

}  // namespace manifold::registry
