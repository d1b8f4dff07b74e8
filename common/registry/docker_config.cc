#include "common/registry/docker_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/base/ascii.h"
#include "common/registry/base64.h"

namespace manifold::registry {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

Error ConfigError(const std::string& path, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "registry.config", "invalid " + path + ": " + why);
}

/// Docker's ConvertToHostname: "https://reg:5000/v1/" -> "reg:5000".
std::string KeyHost(std::string key) {
  key = AsciiLower(key);
  for (std::string_view scheme : {"http://", "https://"})
    if (key.starts_with(scheme)) key = key.substr(scheme.size());
  auto slash = key.find('/');
  if (slash != std::string::npos) key = key.substr(0, slash);
  return key;
}

bool IsHubHost(const std::string& host) {
  return host == "index.docker.io" || host == "docker.io" || host == "registry-1.docker.io";
}

/// Does auths key `key` name `domain`?
bool KeyMatches(const std::string& key, const std::string& domain) {
  std::string host = KeyHost(key);
  if (domain == kDockerHubDomain) return IsHubHost(host);
  return host == AsciiLower(domain);
}

Expected<OrderedJson> ParseDocument(const std::string& path, const std::string& text) {
  if (text.empty()) return OrderedJson::object();
  OrderedJson doc = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return ConfigError(path, "not a JSON object");
  return doc;
}

std::string StringField(const OrderedJson& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Expected<Credentials> FromAuthEntry(const std::string& path, const std::string& key,
                                    const OrderedJson& entry) {
  if (!entry.is_object()) return ConfigError(path, "auths entry \"" + key + "\" is not an object");
  Credentials c;
  c.username = StringField(entry, "username");
  c.password = StringField(entry, "password");
  std::string auth = StringField(entry, "auth");
  if (!auth.empty()) {
    auto decoded = Base64Decode(auth);
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    // The message must not echo the field: it is the password.
    if (colon == std::string::npos)
      return ConfigError(path, "auths entry \"" + key +
                                   "\" has an \"auth\" field that is not base64 of user:password");
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
  }
  c.identity_token = StringField(entry, "identitytoken");
  c.registry_token = StringField(entry, "registrytoken");
  return c;
}

std::string HelperFor(const OrderedJson& doc, const std::string& domain) {
  auto helpers = doc.find("credHelpers");
  if (helpers != doc.end() && helpers->is_object()) {
    for (const auto& [key, value] : helpers->items())
      if (value.is_string() && KeyMatches(key, domain)) return value.get<std::string>();
  }
  return StringField(doc, "credsStore");
}

Error HelperError(const std::string& helper, const std::string& action, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "registry.cred_helper",
                   "credential helper docker-credential-" + helper + " " + action + " " + why);
}

/// The first line of a helper's output, printable ASCII only, for messages.
std::string FirstLine(const std::string& out) {
  std::string line;
  for (char c : out) {
    if (c == '\n' || line.size() >= 200) break;
    if (c >= 0x20 && c < 0x7f) line += c;
  }
  return line;
}

}  // namespace

std::string DockerConfig::DefaultDir() {
  const char* env = std::getenv("DOCKER_CONFIG");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "") + "/.docker";
}

std::string DockerConfig::ServerKey(const std::string& domain) {
  if (domain == kDockerHubDomain) return std::string(kDockerHubAuthKey);
  return domain;
}

Expected<DockerConfig> DockerConfig::Load(const std::string& dir, CredentialHelperRunner runner) {
  std::string path = dir + "/config.json";
  std::ifstream in(path);
  std::string text;
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else if (errno != ENOENT) {
    return MakeError(ErrorKind::kInvalidInput, "registry.config",
                     "cannot read " + path + ": " + std::strerror(errno));
  }
  MF_TRY(doc, ParseDocument(path, text));
  auto auths = doc.find("auths");
  if (auths != doc.end() && !auths->is_null()) {
    if (!auths->is_object()) return ConfigError(path, "\"auths\" is not an object");
    for (const auto& [key, entry] : auths->items()) MF_TRY_VOID(FromAuthEntry(path, key, entry));
  }
  return DockerConfig(dir, text, std::move(runner));
}

Expected<Credentials> DockerConfig::Get(const std::string& domain) const {
  MF_TRY(doc, ParseDocument(path_, json_));
  std::string helper = HelperFor(doc, domain);
  if (!helper.empty()) {
    MF_TRY(result, runner_(helper, "get", ServerKey(domain)));
    if (result.exit_code != 0) {
      // docker-credential-helpers' ErrCredentialsNotFound.
      if (result.out.find("credentials not found") != std::string::npos) return Credentials{};
      return HelperError(helper, "get", "failed (exit " + std::to_string(result.exit_code) +
                                            "): " + FirstLine(result.out));
    }
    Json reply = Json::parse(result.out, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded() || !reply.is_object() || !reply.contains("Secret") ||
        !reply["Secret"].is_string())
      return HelperError(helper, "get", "printed something other than credentials JSON");
    Credentials c;
    std::string user = reply.value("Username", std::string());
    std::string secret = reply["Secret"].get<std::string>();
    // Helpers mark an identity token with the user name "<token>".
    if (user == "<token>") {
      c.identity_token = secret;
    } else {
      c.username = user;
      c.password = secret;
    }
    return c;
  }
  auto auths = doc.find("auths");
  if (auths == doc.end() || !auths->is_object()) return Credentials{};
  std::string key = ServerKey(domain);
  if (auths->contains(key)) return FromAuthEntry(path_, key, (*auths)[key]);
  for (const auto& [k, entry] : auths->items())
    if (KeyMatches(k, domain)) return FromAuthEntry(path_, k, entry);
  return Credentials{};
}

Expected<void> DockerConfig::Store(const std::string& domain, const Credentials& credentials) {
  MF_TRY(doc, ParseDocument(path_, json_));
  std::string key = ServerKey(domain);
  std::string helper = HelperFor(doc, domain);
  if (!helper.empty()) {
    Json input = {{"ServerURL", key},
                  {"Username", credentials.identity_token.empty() ? credentials.username
                                                                  : std::string("<token>")},
                  {"Secret", credentials.identity_token.empty() ? credentials.password
                                                                : credentials.identity_token}};
    MF_TRY(result, runner_(helper, "store", input.dump()));
    if (result.exit_code != 0)
      return HelperError(helper, "store", "failed (exit " + std::to_string(result.exit_code) +
                                              "): " + FirstLine(result.out));
    // Docker keeps an empty auths entry so `docker info` lists the registry.
    doc["auths"][key] = OrderedJson::object();
  } else {
    OrderedJson entry = OrderedJson::object();
    if (!credentials.username.empty() || !credentials.password.empty())
      entry["auth"] = Base64Encode(credentials.username + ":" + credentials.password);
    if (!credentials.identity_token.empty()) entry["identitytoken"] = credentials.identity_token;
    if (!doc.contains("auths") || !doc["auths"].is_object()) doc["auths"] = OrderedJson::object();
    // One entry per registry: drop other spellings of the same key.
    for (auto it = doc["auths"].begin(); it != doc["auths"].end();) {
      if (it.key() != key && KeyMatches(it.key(), domain)) {
        it = doc["auths"].erase(it);
      } else {
        ++it;
      }
    }
    doc["auths"][key] = entry;
  }
  json_ = doc.dump(1, '\t');
  return Write();
}

Expected<bool> DockerConfig::Erase(const std::string& domain) {
  MF_TRY(doc, ParseDocument(path_, json_));
  std::string helper = HelperFor(doc, domain);
  bool removed = false;
  if (!helper.empty()) {
    MF_TRY(result, runner_(helper, "erase", ServerKey(domain)));
    if (result.exit_code == 0) {
      removed = true;
    } else if (result.out.find("credentials not found") == std::string::npos) {
      return HelperError(helper, "erase", "failed (exit " + std::to_string(result.exit_code) +
                                              "): " + FirstLine(result.out));
    }
  }
  if (doc.contains("auths") && doc["auths"].is_object()) {
    for (auto it = doc["auths"].begin(); it != doc["auths"].end();) {
      if (KeyMatches(it.key(), domain)) {
        it = doc["auths"].erase(it);
        removed = true;
      } else {
        ++it;
      }
    }
  }
  if (!removed) return false;
  json_ = doc.dump(1, '\t');
  MF_TRY_VOID(Write());
  return true;
}

Expected<void> DockerConfig::Write() const {
  auto io_error = [this](const std::string& what) {
    return MakeError(errno == ENOSPC ? ErrorKind::kResourceExhausted : ErrorKind::kInvalidInput,
                     "registry.config", what + " " + path_ + ": " + std::strerror(errno));
  };
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error("cannot create the folder of");
  std::mt19937_64 rng(std::random_device{}());
  std::string tmp = path_ + ".tmp" + std::to_string(rng() % 1000000000);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot write");
  std::string data = json_ + "\n";
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = io_error("cannot write");
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    off += static_cast<std::size_t>(n);
  }
  // Readers see the old file or the new one, never half of one.
  bool synced = ::fsync(fd) == 0;
  Error sync_error = io_error("cannot write");
  if (::close(fd) != 0 && synced) {
    synced = false;
    sync_error = io_error("cannot write");
  }
  if (!synced) {
    ::unlink(tmp.c_str());
    return sync_error;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    Error e = io_error("cannot replace");
    ::unlink(tmp.c_str());
    return e;
  }
  return Ok();
}

CredentialSource CredentialsFrom(DockerConfig config) {
  return [config = std::move(config)](const std::string& domain) { return config.Get(domain); };
}

}  // namespace manifold::registry
