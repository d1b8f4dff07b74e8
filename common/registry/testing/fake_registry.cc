#include "common/registry/testing/fake_registry.h"

#include <map>
#include <mutex>
#include <set>

#include "common/crypto/sha256.h"
#include "common/http/url.h"
#include "common/registry/base64.h"

namespace manifold::registry::testing {

using http::testing::RawResponse;
using http::testing::ReceivedRequest;
using http::testing::TestServer;

namespace {

std::string Sha(const std::string& bytes) { return "sha256:" + crypto::Sha256Hex(bytes); }

std::string HeadResponse(int status, const std::string& reason, std::size_t length,
                         const std::string& extra) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Length: " + std::to_string(length) + "\r\n" + extra + "\r\n";
}

std::string ErrorBody(const std::string& code, const std::string& message) {
  return R"({"errors":[{"code":")" + code + R"(","message":")" + message + R"("}]})";
}

std::map<std::string, std::string> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string part = query.substr(start, end - start);
    auto eq = part.find('=');
    std::string key = part.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
    auto decoded = http::PercentDecode(value);
    out[key] = decoded.ok() ? *decoded : value;
    start = end + 1;
  }
  return out;
}

}  // namespace

struct FakeRegistry::State {
  Options options;
  mutable std::mutex mu;
  std::map<std::string, std::string> blobs;                   // digest -> bytes
  std::set<std::pair<std::string, std::string>> repo_blobs;   // (repo, digest)
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> manifests;
  struct Session {
    std::string repo;
    std::string data;
  };
  std::map<std::string, Session> sessions;
  std::map<std::string, std::string> tokens;  // token -> space-separated scopes
  int next_id = 0;
  Script script;
  std::unique_ptr<TestServer> token_server;
  std::unique_ptr<TestServer> server;

  std::optional<std::string> Handle(const ReceivedRequest& req);
  std::optional<std::string> Authorize(const ReceivedRequest& req, const std::string& repo,
                                       bool push);
  std::string Token(const ReceivedRequest& req);
};

std::string FakeRegistry::State::Token(const ReceivedRequest& req) {
  std::string expected =
      "Basic " + Base64Encode(options.username + ":" + options.password);
  if (req.Header("authorization").value_or("") != expected)
    return RawResponse(401, "Unauthorized", ErrorBody("UNAUTHORIZED", "bad credentials"));
  auto q = req.target.find('?');
  std::string scopes;
  if (q != std::string::npos) {
    std::string query = req.target.substr(q + 1);
    std::size_t start = 0;
    while (start < query.size()) {
      std::size_t end = query.find('&', start);
      if (end == std::string::npos) end = query.size();
      std::string part = query.substr(start, end - start);
      if (part.starts_with("scope=")) {
        auto decoded = http::PercentDecode(part.substr(6));
        scopes += " " + (decoded.ok() ? *decoded : part.substr(6));
      }
      start = end + 1;
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  std::string token = "tok-" + std::to_string(++next_id);
  tokens[token] = scopes + " ";
  return RawResponse(200, "OK",
                     R"({"token":")" + token + R"(","expires_in":)" +
                         std::to_string(options.token_expires_in) + "}",
                     "Content-Type: application/json\r\n");
}

std::optional<std::string> FakeRegistry::State::Authorize(const ReceivedRequest& req,
                                                          const std::string& repo, bool push) {
  std::string auth = req.Header("authorization").value_or("");
  if (options.auth == Auth::kBasic) {
    if (auth == "Basic " + Base64Encode(options.username + ":" + options.password))
      return std::nullopt;
    return RawResponse(401, "Unauthorized",
                       ErrorBody("UNAUTHORIZED", "authentication required"),
                       "WWW-Authenticate: Basic realm=\"fake\"\r\n");
  }
  if (options.auth == Auth::kBearer) {
    std::string need = repo.empty() ? "" : "repository:" + repo + (push ? ":pull,push" : ":pull");
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auth.starts_with("Bearer ")) {
        auto it = tokens.find(auth.substr(7));
        if (it != tokens.end()) {
          bool covered = need.empty() || it->second.find(" " + need + " ") != std::string::npos ||
                         (!push && it->second.find(" repository:" + repo + ":pull,push ") !=
                                       std::string::npos);
          if (covered) return std::nullopt;
        }
      }
    }
    std::string challenge = "Bearer realm=\"" + token_server->Url("/token") +
                            "\",service=\"fake-registry\"";
    if (!need.empty()) challenge += ",scope=\"" + need + "\"";
    return RawResponse(401, "Unauthorized", ErrorBody("UNAUTHORIZED", "authentication required"),
                       "WWW-Authenticate: " + challenge + "\r\n");
  }
  return std::nullopt;
}

std::string FakeRegistry::BlobResponse(const std::string& content, const ReceivedRequest& req) {
  auto range = req.Header("range");
  if (range && range->starts_with("bytes=")) {
    std::size_t start = std::stoul(range->substr(6));
    if (start >= content.size()) return RawResponse(416, "Range Not Satisfiable", "");
    return RawResponse(206, "Partial Content", content.substr(start),
                       "Content-Range: bytes " + std::to_string(start) + "-" +
                           std::to_string(content.size() - 1) + "/" +
                           std::to_string(content.size()) + "\r\n");
  }
  return RawResponse(200, "OK", content, "Content-Type: application/octet-stream\r\n");
}

std::optional<std::string> FakeRegistry::State::Handle(const ReceivedRequest& req) {
  Script current;
  {
    std::lock_guard<std::mutex> lock(mu);
    current = script;
  }
  if (current) {
    if (auto o = current(req)) {
      if (o->stall) return std::nullopt;
      return o->raw;
    }
  }
  std::string path = req.target, query;
  if (auto q = path.find('?'); q != std::string::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  auto params = ParseQuery(query);
  bool head = req.method == "HEAD";
  if (path == "/v2/" || path == "/v2") {
    if (auto denied = Authorize(req, "", false)) return denied;
    return RawResponse(200, "OK", "{}");
  }
  if (!path.starts_with("/v2/")) return RawResponse(404, "Not Found", "");
  std::string rest = path.substr(4);

  if (auto m = rest.rfind("/manifests/"); m != std::string::npos) {
    std::string repo = rest.substr(0, m), ref = rest.substr(m + 11);
    bool push = req.method == "PUT";
    if (auto denied = Authorize(req, repo, push)) return denied;
    std::lock_guard<std::mutex> lock(mu);
    if (push) {
      std::string digest = Sha(req.body);
      std::string mt = req.Header("content-type").value_or("");
      manifests[{repo, digest}] = {mt, req.body};
      if (ref != digest) manifests[{repo, ref}] = {mt, req.body};
      return RawResponse(201, "Created", "",
                         "Docker-Content-Digest: " + digest + "\r\nLocation: /v2/" + repo +
                             "/manifests/" + digest + "\r\n");
    }
    auto it = manifests.find({repo, ref});
    if (it == manifests.end())
      return RawResponse(404, "Not Found", ErrorBody("MANIFEST_UNKNOWN", "manifest unknown"),
                         "Content-Type: application/json\r\n");
    std::string extra = "Content-Type: " + it->second.first +
                        "\r\nDocker-Content-Digest: " + Sha(it->second.second) + "\r\n";
    if (head) return HeadResponse(200, "OK", it->second.second.size(), extra);
    return RawResponse(200, "OK", it->second.second, extra);
  }

  if (auto u = rest.find("/blobs/uploads/"); u != std::string::npos) {
    std::string repo = rest.substr(0, u), id = rest.substr(u + 15);
    if (auto denied = Authorize(req, repo, true)) return denied;
    std::lock_guard<std::mutex> lock(mu);
    if (req.method == "POST" && id.empty()) {
      if (params.count("mount") && params.count("from")) {
        std::string digest = params["mount"];
        if (repo_blobs.count({params["from"], digest})) {
          repo_blobs.insert({repo, digest});
          return RawResponse(201, "Created", "",
                             "Location: /v2/" + repo + "/blobs/" + digest +
                                 "\r\nDocker-Content-Digest: " + digest + "\r\n");
        }
      }
      std::string session = "u" + std::to_string(++next_id);
      sessions[session] = Session{repo, ""};
      return RawResponse(202, "Accepted", "",
                         "Location: /v2/" + repo + "/blobs/uploads/" + session +
                             "?_state=0\r\nRange: 0-0\r\nDocker-Upload-UUID: " + session + "\r\n");
    }
    auto it = sessions.find(id);
    if (it == sessions.end())
      return RawResponse(404, "Not Found", ErrorBody("BLOB_UPLOAD_UNKNOWN", "upload unknown"));
    if (req.method == "PATCH") {
      if (auto range = req.Header("content-range")) {
        if (std::stoul(*range) != it->second.data.size())
          return RawResponse(416, "Range Not Satisfiable", "");
      }
      it->second.data += req.body;
      return RawResponse(202, "Accepted", "",
                         "Location: /v2/" + repo + "/blobs/uploads/" + id + "?_state=" +
                             std::to_string(it->second.data.size()) + "\r\nRange: 0-" +
                             std::to_string(it->second.data.size() - 1) + "\r\n");
    }
    if (req.method == "PUT") {
      std::string data = it->second.data + req.body;
      std::string digest = params["digest"];
      if (Sha(data) != digest)
        return RawResponse(400, "Bad Request",
                           ErrorBody("DIGEST_INVALID", "provided digest did not match uploaded content"));
      sessions.erase(it);
      blobs[digest] = data;
      repo_blobs.insert({repo, digest});
      return RawResponse(201, "Created", "",
                         "Location: /v2/" + repo + "/blobs/" + digest +
                             "\r\nDocker-Content-Digest: " + digest + "\r\n");
    }
    return RawResponse(405, "Method Not Allowed", "");
  }

  if (auto b = rest.rfind("/blobs/"); b != std::string::npos) {
    std::string repo = rest.substr(0, b), digest = rest.substr(b + 7);
    if (auto denied = Authorize(req, repo, false)) return denied;
    std::lock_guard<std::mutex> lock(mu);
    auto it = blobs.find(digest);
    if (it == blobs.end() || !repo_blobs.count({repo, digest}))
      return head ? HeadResponse(404, "Not Found", 0, "")
                  : RawResponse(404, "Not Found", ErrorBody("BLOB_UNKNOWN", "blob unknown"));
    if (head)
      return HeadResponse(200, "OK", it->second.size(), "Docker-Content-Digest: " + digest + "\r\n");
    if (!options.blob_redirect_base.empty())
      return RawResponse(307, "Temporary Redirect", "",
                         "Location: " + options.blob_redirect_base + "/storage/" + digest +
                             "?X-Amz-Signature=SIGNED\r\n");
    if (!options.support_range) {
      ReceivedRequest plain = req;
      plain.headers.clear();
      return BlobResponse(it->second, plain);
    }
    return BlobResponse(it->second, req);
  }
  return RawResponse(404, "Not Found", "");
}

FakeRegistry::FakeRegistry() : FakeRegistry(Options()) {}

FakeRegistry::FakeRegistry(Options options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  State* s = state_.get();
  s->token_server = std::make_unique<TestServer>(
      [s](const ReceivedRequest& req) -> std::optional<std::string> { return s->Token(req); });
  auto handler = [s](const ReceivedRequest& req) { return s->Handle(req); };
  if (s->options.tls) {
    s->server = std::make_unique<TestServer>(handler, *s->options.tls);
  } else {
    s->server = std::make_unique<TestServer>(handler);
  }
}

FakeRegistry::~FakeRegistry() {
  // Servers first: their threads call into the state.
  state_->server.reset();
  state_->token_server.reset();
}

std::string FakeRegistry::domain() const {
  return "127.0.0.1:" + std::to_string(state_->server->port());
}

std::string FakeRegistry::AddBlob(const std::string& repo, const std::string& bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::string digest = Sha(bytes);
  state_->blobs[digest] = bytes;
  state_->repo_blobs.insert({repo, digest});
  return digest;
}

std::string FakeRegistry::AddManifest(const std::string& repo, const std::string& tag,
                                      const std::string& media_type, const std::string& bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::string digest = Sha(bytes);
  state_->manifests[{repo, digest}] = {media_type, bytes};
  if (!tag.empty()) state_->manifests[{repo, tag}] = {media_type, bytes};
  return digest;
}

std::optional<std::string> FakeRegistry::Blob(const std::string& digest) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->blobs.find(digest);
  if (it == state_->blobs.end()) return std::nullopt;
  return it->second;
}

bool FakeRegistry::RepoHasBlob(const std::string& repo, const std::string& digest) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->repo_blobs.count({repo, digest}) > 0;
}

std::optional<std::pair<std::string, std::string>> FakeRegistry::Manifest(
    const std::string& repo, const std::string& ref) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->manifests.find({repo, ref});
  if (it == state_->manifests.end()) return std::nullopt;
  return it->second;
}

void FakeRegistry::SetScript(Script script) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->script = std::move(script);
}

std::vector<ReceivedRequest> FakeRegistry::requests() const { return state_->server->requests(); }

int FakeRegistry::Count(const std::string& method, const std::string& prefix) const {
  int n = 0;
  for (const auto& r : requests())
    if (r.method == method && r.target.starts_with(prefix)) ++n;
  return n;
}

std::vector<ReceivedRequest> FakeRegistry::token_requests() const {
  return state_->token_server->requests();
}

}  // namespace manifold::registry::testing
