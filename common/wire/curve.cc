#include "common/wire/curve.h"

#include <sys/stat.h>
#include <zmq.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "common/base/log.h"
#include "common/crypto/sha256.h"
#include "common/fs/atomic_file.h"
#include "common/wire/stage_job.h"

namespace manifold::wire {

Expected<CurveKeyPair> GenerateKeyPair() {
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0)
    return MakeError(ErrorKind::kInternal, "wire.curve",
                     std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()));
  return CurveKeyPair{pub, sec};
}

Expected<std::string> PublicKeyOf(const std::string& secret_key) {
  if (!IsZ85Key(secret_key))
    return MakeError(ErrorKind::kInvalidInput, "wire.curve.key", "not a 40-character Z85 key");
  char pub[41] = {};
  if (zmq_curve_public(pub, secret_key.c_str()) != 0)
    return MakeError(ErrorKind::kInvalidInput, "wire.curve.key",
                     std::string("not a CURVE secret key: ") + zmq_strerror(zmq_errno()));
  return std::string(pub);
}

Expected<CurveKeyPair> LoadOrCreateKeyPair(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0)
      return MakeError(ErrorKind::kInvalidInput, "wire.curve.file", path + ": cannot be read");
    MF_TRY(keys, GenerateKeyPair());
    auto w = fs::WriteFileAtomic(path, keys.public_key + "\n" + keys.secret_key + "\n", 0600);
    if (!w.ok()) return MakeError(ErrorKind::kInternal, "wire.curve.io", w.error().message);
    return keys;
  }
  CurveKeyPair keys;
  std::getline(in, keys.public_key);
  std::getline(in, keys.secret_key);
  auto derived = PublicKeyOf(keys.secret_key);
  if (!IsZ85Key(keys.public_key) || !derived.ok() || *derived != keys.public_key)
    return MakeError(ErrorKind::kInvalidInput, "wire.curve.file",
                     path + ": not a CURVE key pair (expected the public and the secret key, "
                            "Z85, one per line)");
  return keys;
}

std::string KeyFingerprint(const std::string& public_key) {
  return crypto::Sha256Hex(public_key).substr(0, 12);
}

Expected<JoinToken> ParseJoinToken(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() != 83 || !t.starts_with("MF1") || !IsZ85Key(t.substr(3, 40)) ||
      !IsZ85Key(t.substr(43, 40)))
    return MakeError(ErrorKind::kInvalidInput, "wire.token",
                     "not a Manifold join token (expected 83 characters starting with MF1; "
                     "`manifold-coordinator token` prints it)");
  JoinToken tok{t.substr(3, 40), t.substr(43, 40)};
  MF_TRY_VOID(PublicKeyOf(tok.join_secret_key));
  return tok;
}

void MakeCurveServer(zmq::socket_t& socket, const CurveKeyPair& keys) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  socket.set(zmq::sockopt::zap_domain, "manifold");
  // ZMQ_ZAP_ENFORCE_DOMAIN (a draft option in libzmq 4.3, hence the
  // number): without a ZAP handler, refuse rather than accept everyone.
  constexpr int kZapEnforceDomain = 93;
  int one = 1;
  if (zmq_setsockopt(socket.handle(), kZapEnforceDomain, &one, sizeof one) != 0)
    throw zmq::error_t();
}

void MakeCurveClient(zmq::socket_t& socket, const CurveKeyPair& keys,
                     const std::string& server_public_key) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

// ---------------------------------------------------------------- ZAP

Expected<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& ctx, Authorize authorize) {
  try {
    return std::unique_ptr<ZapHandler>(new ZapHandler(ctx, std::move(authorize)));
  } catch (const zmq::error_t& e) {
    return MakeError(ErrorKind::kInternal, "wire.zap",
                     std::string("cannot start the ZAP handler: ") + e.what());
  }
}

ZapHandler::ZapHandler(zmq::context_t& ctx, Authorize authorize)
    : socket_(ctx, zmq::socket_type::rep), authorize_(std::move(authorize)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { Loop(); });
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Loop() {
  try {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
      // version, request id, domain, address, identity, mechanism, credentials...
      std::vector<std::string> frames;
      while (true) {
        zmq::message_t m;
        if (!socket_.recv(m)) break;
        frames.emplace_back(static_cast<const char*>(m.data()), m.size());
        if (!m.more()) break;
      }
      std::string request_id = frames.size() > 1 ? frames[1] : "";
      std::string status = "400", text = "refused", user;
      if (frames.size() >= 7 && frames[0] == "1.0" && frames[5] == "CURVE" && frames[6].size() == 32) {
        char z85[41] = {};
        zmq_z85_encode(z85, reinterpret_cast<const std::uint8_t*>(frames[6].data()), 32);
        std::string key(z85);
        std::optional<std::string> id;
        try {
          id = authorize_(key);
        } catch (const std::exception& e) {
          MF_LOG_ERROR("ZAP: authorizer failed: {}", e.what());
        }
        if (id) {
          status = "200";
          text = "OK";
          user = *id;
        } else {
          MF_LOG_WARN("refused a connection from {} with unknown key {}",
                      frames[3], KeyFingerprint(key));
        }
      } else {
        MF_LOG_WARN("refused a non-CURVE connection from {}", frames.size() > 3 ? frames[3] : "?");
      }
      const std::string reply[] = {"1.0", request_id, status, text, user, ""};
      for (int i = 0; i < 6; ++i)
        socket_.send(zmq::buffer(reply[i]), i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) MF_LOG_ERROR("ZAP handler stopped: {}", e.what());
  }
}

}  // namespace manifold::wire
