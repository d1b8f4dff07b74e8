#include "common/wire/curve.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/cas/testing/temp_dir.h"
#include "common/crypto/sha256.h"
#include "common/wire/stage_job.h"

namespace manifold::wire {
namespace {

using cas::testing::TempDir;
using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::trunc);
  f << data;
}

CurveKeyPair NewKeys() {
  auto keys = GenerateKeyPair();
  EXPECT_TRUE(keys.ok()) << keys.error().ToString();
  return keys.ok() ? *keys : CurveKeyPair{};
}

// ---------------------------------------------------------------- keys

TEST(CurveTest, GeneratesZ85KeyPairs) {
  auto a = GenerateKeyPair();
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->public_key.size(), 40u);
  EXPECT_EQ(a->secret_key.size(), 40u);
  EXPECT_TRUE(IsZ85Key(a->public_key)) << a->public_key;
  EXPECT_TRUE(IsZ85Key(a->secret_key));
  EXPECT_NE(a->public_key, a->secret_key);

  auto derived = PublicKeyOf(a->secret_key);
  ASSERT_TRUE(derived.ok()) << derived.error().ToString();
  EXPECT_EQ(*derived, a->public_key);

  auto b = GenerateKeyPair();
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->public_key, b->public_key);
  EXPECT_NE(a->secret_key, b->secret_key);
}

TEST(CurveTest, PublicKeyOfRefusesNonKeys) {
  const std::string bad_keys[] = {"", "short", std::string(41, 'a'),
                                  std::string(39, 'a') + "\""};
  for (const auto& bad : bad_keys) {
    SCOPED_TRACE(bad);
    auto pub = PublicKeyOf(bad);
    ASSERT_FALSE(pub.ok());
    EXPECT_EQ(pub.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(pub.error().code, "wire.curve.key");
    EXPECT_EQ(pub.error().message, "not a 40-character Z85 key");
  }
}

TEST(CurveTest, FingerprintIsTwelveHexDigitsOfTheKeyHash) {
  const CurveKeyPair keys = NewKeys();
  const std::string fp = KeyFingerprint(keys.public_key);
  EXPECT_EQ(fp.size(), 12u);
  EXPECT_EQ(fp, crypto::Sha256Hex(keys.public_key).substr(0, 12));
  EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos) << fp;
}

TEST(CurveTest, LoadOrCreateKeyPairCreatesAPrivateFileThenReloadsIt) {
  TempDir dir;
  const std::string path = dir.path() + "/node.key";
  auto created = LoadOrCreateKeyPair(path);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_TRUE(IsZ85Key(created->public_key));
  EXPECT_EQ(*PublicKeyOf(created->secret_key), created->public_key);

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadFile(path), created->public_key + "\n" + created->secret_key + "\n");

  auto reloaded = LoadOrCreateKeyPair(path);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().ToString();
  EXPECT_EQ(reloaded->public_key, created->public_key);
  EXPECT_EQ(reloaded->secret_key, created->secret_key);
}

TEST(CurveTest, LoadOrCreateKeyPairRefusesACorruptedFile) {
  TempDir dir;
  const std::string path = dir.path() + "/node.key";
  const std::string want =
      path + ": not a CURVE key pair (expected the public and the secret key, Z85, one per line)";
  const CurveKeyPair a = NewKeys(), b = NewKeys();
  const std::string contents[] = {
      "garbage\n",
      "",
      a.public_key + "\n",                                   // secret missing
      a.public_key.substr(0, 39) + "\n" + a.secret_key + "\n",  // truncated public key
      a.public_key + "\n" + b.secret_key + "\n",             // keys of two different pairs
  };
  for (const auto& content : contents) {
    SCOPED_TRACE(content);
    WriteFile(path, content);
    auto loaded = LoadOrCreateKeyPair(path);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(loaded.error().code, "wire.curve.file");
    EXPECT_EQ(loaded.error().message, want);
    // The bad file is left for the operator, never silently replaced.
    EXPECT_EQ(ReadFile(path), content);
  }
}

// ---------------------------------------------------------------- join token

TEST(CurveTest, JoinTokenRoundTrips) {
  const CurveKeyPair server = NewKeys(), join = NewKeys();
  const JoinToken token{server.public_key, join.secret_key};
  const std::string text = token.ToString();
  EXPECT_EQ(text.size(), 83u);
  EXPECT_EQ(text.rfind("MF1", 0), 0u);

  for (const std::string& t : {text, text + "\n", text + " \r\n"}) {
    auto parsed = ParseJoinToken(t);
    ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
    EXPECT_EQ(parsed->server_public_key, server.public_key);
    EXPECT_EQ(parsed->join_secret_key, join.secret_key);
    EXPECT_EQ(parsed->ToString(), text);
  }
}

TEST(CurveTest, JoinTokenRefusesWrongLengthAndPrefix) {
  const CurveKeyPair server = NewKeys(), join = NewKeys();
  const std::string text = JoinToken{server.public_key, join.secret_key}.ToString();
  const std::string bad[] = {
      "",
      text.substr(0, 82),
      text + "x",
      "MF2" + text.substr(3),
      "mf1" + text.substr(3),
      text.substr(0, 10) + "\"" + text.substr(11),  // not Z85
  };
  for (const auto& t : bad) {
    SCOPED_TRACE(t);
    auto parsed = ParseJoinToken(t);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(parsed.error().code, "wire.token");
    EXPECT_EQ(parsed.error().message,
              "not a Manifold join token (expected 83 characters starting with MF1; "
              "`manifold-coordinator token` prints it)");
  }
}

// ---------------------------------------------------------------- ZAP

/// Waits up to `timeout` for a message on `socket`.
bool Readable(zmq::socket_t& socket, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, timeout) > 0;
}

zmq::socket_t CurveRouter(zmq::context_t& ctx, const CurveKeyPair& keys, std::string& endpoint) {
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  MakeCurveServer(router, keys);
  router.bind("tcp://127.0.0.1:*");
  endpoint = router.get(zmq::sockopt::last_endpoint);
  return router;
}

zmq::socket_t CurveDealer(zmq::context_t& ctx, const CurveKeyPair& keys,
                          const std::string& server_public_key, const std::string& endpoint) {
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  MakeCurveClient(dealer, keys, server_public_key);
  dealer.connect(endpoint);
  return dealer;
}

/// Thread-safe record of the keys the authorizer was asked about.
class SeenKeys {
 public:
  void Add(const std::string& key) {
    std::lock_guard lock(mu_);
    keys_.insert(key);
  }
  bool Has(const std::string& key) const {
    std::lock_guard lock(mu_);
    return keys_.count(key) != 0;
  }
  /// Waits up to `timeout` for `key` to be seen.
  bool WaitFor(const std::string& key, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!Has(key)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> keys_;
};

TEST(ZapHandlerTest, AdmitsAKnownKeyWithItsUserIdAndRefusesAnUnknownOne) {
  const CurveKeyPair server = NewKeys(), admitted = NewKeys(), stranger = NewKeys();
  zmq::context_t ctx;
  SeenKeys seen;
  auto zap = ZapHandler::Start(ctx, [&](const std::string& key) -> std::optional<std::string> {
    seen.Add(key);
    if (key == admitted.public_key) return std::string("worker:w1");
    return std::nullopt;
  });
  ASSERT_TRUE(zap.ok()) << zap.error().ToString();

  std::string endpoint;
  zmq::socket_t router = CurveRouter(ctx, server, endpoint);
  ASSERT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;

  // The admitted key gets through, and the server learns who it is.
  zmq::socket_t good = CurveDealer(ctx, admitted, server.public_key, endpoint);
  good.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  ASSERT_TRUE(Readable(router, 5000ms)) << "the admitted client's message never arrived";
  zmq::message_t identity, payload;
  ASSERT_TRUE(router.recv(identity, zmq::recv_flags::none));
  ASSERT_TRUE(identity.more());
  ASSERT_TRUE(router.recv(payload, zmq::recv_flags::none));
  EXPECT_EQ(payload.to_string(), "hello");
  EXPECT_EQ(std::string(payload.gets("User-Id")), "worker:w1");
  EXPECT_TRUE(seen.Has(admitted.public_key));

  // An unknown key is asked about, refused, and nothing of it arrives.
  zmq::socket_t bad = CurveDealer(ctx, stranger, server.public_key, endpoint);
  bad.send(zmq::str_buffer("intruder"), zmq::send_flags::none);
  EXPECT_FALSE(Readable(router, 1000ms)) << "a message from an unknown key got through";
  EXPECT_TRUE(seen.WaitFor(stranger.public_key, 5000ms))
      << "the ZAP handler was never asked about the unknown key";
  EXPECT_FALSE(Readable(router, 0ms));
}

TEST(ZapHandlerTest, ACurveServerWithoutAZapHandlerRefusesEveryone) {
  // RELIABILITY G2: no handler in the context must mean no connections, not
  // "anyone with the server's public key".
  const CurveKeyPair server = NewKeys(), client = NewKeys();
  zmq::context_t ctx;
  std::string endpoint;
  zmq::socket_t router = CurveRouter(ctx, server, endpoint);
  zmq::socket_t dealer = CurveDealer(ctx, client, server.public_key, endpoint);
  dealer.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  EXPECT_FALSE(Readable(router, 1000ms)) << "a CURVE server without ZAP admitted a client";
}

TEST(ZapHandlerTest, OnlyOneHandlerPerContext) {
  zmq::context_t ctx;
  auto refuse_all = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto first = ZapHandler::Start(ctx, refuse_all);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  // A second handler in the same context cannot bind the ZAP endpoint.
  auto second = ZapHandler::Start(ctx, refuse_all);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(second.error().code, "wire.zap");
  EXPECT_EQ(second.error().message.rfind("cannot start the ZAP handler: ", 0), 0u)
      << second.error().message;
}

}  // namespace
}  // namespace manifold::wire
