#include "tests/integration/registry_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/http/testing/test_cert.h"
#include "common/http/testing/test_server.h"

extern char** environ;

namespace manifold::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool PortOpen(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string Base64(const unsigned char* data, std::size_t n, bool url) {
  static const char* std_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char* url_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* t = url ? url_chars : std_chars;
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i < n) {
    unsigned v = data[i] << 16;
    if (i + 1 < n) v |= data[i + 1] << 8;
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    if (i + 1 < n) out += t[(v >> 6) & 63];
    else if (!url) out += '=';
    if (!url) out += '=';
  }
  return out;
}

std::string B64Url(const std::string& s) {
  return Base64(reinterpret_cast<const unsigned char*>(s.data()), s.size(), true);
}

std::string B64Decode(const std::string& in) {
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
    else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '+' || c == '-') d = 62;
    else if (c == '/' || c == '_') d = 63;
    else break;
    val = (val << 6) | d;
    bits += 6;
    if (bits >= 0) {
      out += static_cast<char>((val >> bits) & 0xff);
      bits -= 8;
    }
  }
  return out;
}

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

/// Issues ES256 JWTs for the registry's token auth: a valid Basic
/// user/password gets what the scope asks for; anyone else gets no access.
struct TestRegistry::TokenServer {
  http::testing::TestCert cert = http::testing::MakeSelfSignedCert("manifold-token", {});
  std::string service = "manifold-registry";
  std::string issuer = "manifold-test-issuer";
  std::atomic<int> issued{0};
  std::unique_ptr<http::testing::TestServer> server;

  std::string Sign(const std::string& input) const {
    BIO* bio = BIO_new_mem_buf(cert.key_pem.data(), static_cast<int>(cert.key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    std::size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::vector<unsigned char> der(len);
    EVP_DigestSign(ctx, der.data(), &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    const unsigned char* p = der.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
    ECDSA_SIG_free(sig);
    return Base64(raw, 64, true);
  }

  std::string CertDerBase64() const {
    BIO* bio = BIO_new_mem_buf(cert.cert_pem.data(), static_cast<int>(cert.cert_pem.size()));
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    unsigned char* der = nullptr;
    int n = i2d_X509(x, &der);
    std::string out = Base64(der, static_cast<std::size_t>(n), false);
    OPENSSL_free(der);
    X509_free(x);
    return out;
  }

  std::optional<std::string> Handle(const http::testing::ReceivedRequest& r) {
    // /token?service=...&scope=repository:app:pull,push[&scope=...]
    std::string target = r.target;
    auto q = target.find('?');
    std::vector<std::string> scopes;
    if (q != std::string::npos) {
      std::stringstream ss(target.substr(q + 1));
      std::string kv;
      while (std::getline(ss, kv, '&')) {
        auto eq = kv.find('=');
        if (eq != std::string::npos && kv.substr(0, eq) == "scope")
          scopes.push_back(UrlDecode(kv.substr(eq + 1)));
      }
    }
    bool authed = false;
    if (auto a = r.Header("authorization"); a && a->rfind("Basic ", 0) == 0)
      authed = B64Decode(a->substr(6)) == std::string(kUser) + ":" + kPassword;
    if (auto a = r.Header("authorization"); a && !authed)
      return http::testing::RawResponse(401, "Unauthorized", "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
                                        "Content-Type: application/json\r\n");
    nlohmann::json access = nlohmann::json::array();
    if (authed)
      for (const auto& s : scopes) {
        // type:name:actions, name may contain ':' only before the last one
        auto first = s.find(':');
        auto last = s.rfind(':');
        if (first == std::string::npos || last == first) continue;
        nlohmann::json actions = nlohmann::json::array();
        std::stringstream as(s.substr(last + 1));
        std::string a;
        while (std::getline(as, a, ',')) actions.push_back(a);
        access.push_back({{"type", s.substr(0, first)},
                          {"name", s.substr(first + 1, last - first - 1)},
                          {"actions", actions}});
      }
    std::int64_t now = std::time(nullptr);
    nlohmann::json header = {{"typ", "JWT"}, {"alg", "ES256"}, {"x5c", {CertDerBase64()}}};
    nlohmann::json claims = {{"iss", issuer},
                             {"sub", authed ? kUser : ""},
                             {"aud", service},
                             {"exp", now + 300},
                             {"nbf", now - 10},
                             {"iat", now},
                             {"jti", std::to_string(now) + "-" + std::to_string(issued.load())},
                             {"access", access}};
    std::string input = B64Url(header.dump()) + "." + B64Url(claims.dump());
    std::string token = input + "." + Sign(input);
    ++issued;
    nlohmann::json body = {{"token", token}, {"access_token", token}, {"expires_in", 300}};
    return http::testing::RawResponse(200, "OK", body.dump(), "Content-Type: application/json\r\n");
  }
};

std::unique_ptr<TestRegistry> TestRegistry::Start(Mode mode, const std::string& dir) {
  std::unique_ptr<TestRegistry> r(new TestRegistry());
  r->mode_ = mode;
  r->dir_ = dir;
  int port = FreePort();
  r->host_ = "127.0.0.1:" + std::to_string(port);
  r->log_path_ = dir + "/registry.log";
  std::filesystem::create_directories(dir + "/storage");

  std::ostringstream cfg;
  cfg << "version: 0.1\n"
      << "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n"
      << "storage:\n  filesystem:\n    rootdirectory: " << dir << "/storage\n"
      << "  delete:\n    enabled: true\n"
      << "http:\n  addr: " << r->host_ << "\n  secret: manifold-test-secret\n";
  if (mode == Mode::kBasicTls) {
    auto cert = http::testing::MakeSelfSignedCert("127.0.0.1", {"IP:127.0.0.1"});
    std::ofstream(dir + "/server.crt") << cert.cert_pem;
    std::ofstream(dir + "/server.key") << cert.key_pem;
    r->ca_file_ = dir + "/server.crt";
    r->certs_dir_ = dir + "/certs.d";
    std::filesystem::create_directories(r->certs_dir_ + "/" + r->host_);
    std::ofstream(r->certs_dir_ + "/" + r->host_ + "/ca.crt") << cert.cert_pem;
    cfg << "  tls:\n    certificate: " << dir << "/server.crt\n    key: " << dir << "/server.key\n";
    std::string cmd = "htpasswd -Bbn " + std::string(kUser) + " " + kPassword + " > " + dir +
                      "/htpasswd 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "htpasswd failed (package apache2-utils)";
      return nullptr;
    }
    cfg << "auth:\n  htpasswd:\n    realm: manifold-test\n    path: " << dir << "/htpasswd\n";
  } else if (mode == Mode::kToken) {
    r->token_ = std::make_unique<TokenServer>();
    auto* ts = r->token_.get();
    ts->server = std::make_unique<http::testing::TestServer>(
        [ts](const http::testing::ReceivedRequest& req) { return ts->Handle(req); });
    std::ofstream(dir + "/token.crt") << ts->cert.cert_pem;
    cfg << "auth:\n  token:\n    realm: " << ts->server->Url("/token") << "\n"
        << "    service: " << ts->service << "\n    issuer: " << ts->issuer << "\n"
        << "    rootcertbundle: " << dir << "/token.crt\n";
  }
  std::ofstream(dir + "/config.yml") << cfg.str();

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, r->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::string config = dir + "/config.yml";
  const char* argv[] = {"/usr/bin/docker-registry", "serve", config.c_str(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start docker-registry: " << std::strerror(rc);
    return nullptr;
  }
  r->pid_ = pid;
  for (int i = 0; i < 200; ++i) {
    if (PortOpen(port)) return r;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      r->pid_ = -1;
      ADD_FAILURE() << "docker-registry exited:\n" << ReadAll(r->log_path_);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "docker-registry did not listen on " << r->host_ << ":\n" << ReadAll(r->log_path_);
  return nullptr;
}

TestRegistry::~TestRegistry() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
}

int TestRegistry::CountRequests(const std::string& method, const std::string& path_part) const {
  std::istringstream in(ReadAll(log_path_));
  std::string line;
  int n = 0;
  const std::string needle = "\"" + method + " ";
  while (std::getline(in, line)) {
    auto at = line.find(needle);
    if (at == std::string::npos) continue;
    auto end = line.find(" HTTP/", at);
    if (line.substr(at, end - at).find(path_part) != std::string::npos) ++n;
  }
  return n;
}

std::string TestRegistry::Log() const { return ReadAll(log_path_); }

int TestRegistry::TokensIssued() const { return token_ ? token_->issued.load() : 0; }

}  // namespace manifold::testing
