// CURVE security for the farm (DESIGN.md "Membership and security"): key
// pairs kept in state dirs, the join token, and the ZAP handler that admits
// only known keys. Every server socket enforces the ZAP domain, so a missing
// or dead handler refuses connections instead of accepting everyone
// (RELIABILITY G2).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "common/base/expected.h"

namespace manifold::wire {

struct CurveKeyPair {
  std::string public_key;  ///< Z85, 40 characters
  std::string secret_key;  ///< Z85, 40 characters
};

/// A fresh key pair. Errors: kInternal "wire.curve" (libzmq without CURVE).
Expected<CurveKeyPair> GenerateKeyPair();

/// The public key of a Z85 secret key. Errors: kInvalidInput "wire.curve.key".
Expected<std::string> PublicKeyOf(const std::string& secret_key);

/// Reads the key pair kept at `path` ("public\nsecret\n", mode 0600), creating
/// it on first use. Errors: kInvalidInput "wire.curve.file" (unreadable or
/// malformed, with the path), kInternal "wire.curve.io".
Expected<CurveKeyPair> LoadOrCreateKeyPair(const std::string& path);

/// Short, printable identity of a key for logs and listings: the first 12
/// hex digits of its SHA-256.
std::string KeyFingerprint(const std::string& public_key);

/// The join token: "MF1" + the coordinator's public key + the join secret
/// key, 83 characters. Whoever completes a CURVE handshake with the join key
/// proves they hold the token.
struct JoinToken {
  std::string server_public_key;
  std::string join_secret_key;
  std::string ToString() const { return "MF1" + server_public_key + join_secret_key; }
};
/// Errors: kInvalidInput "wire.token" ("not a Manifold join token").
Expected<JoinToken> ParseJoinToken(const std::string& text);

/// Makes `socket` a CURVE server with `keys` in the ZAP domain "manifold",
/// enforced. Call before bind.
void MakeCurveServer(zmq::socket_t& socket, const CurveKeyPair& keys);
/// Makes `socket` a CURVE client of `server_public_key`. Call before connect.
void MakeCurveClient(zmq::socket_t& socket, const CurveKeyPair& keys,
                     const std::string& server_public_key);

/// The ZAP handler (RFC 27) of one ZeroMQ context: answers every CURVE
/// handshake with `authorize(public key)`: a user id admits it (the id is
/// then readable on each message as the "User-Id" property), nullopt refuses
/// it (status 400, logged with the key's fingerprint). Anything but CURVE is
/// refused.
class ZapHandler {
 public:
  using Authorize = std::function<std::optional<std::string>(const std::string& public_key)>;
  /// Binds inproc://zeromq.zap.01 in `ctx`. Errors: kInternal "wire.zap".
  static Expected<std::unique_ptr<ZapHandler>> Start(zmq::context_t& ctx, Authorize authorize);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

 private:
  ZapHandler(zmq::context_t& ctx, Authorize authorize);
  void Loop();
  zmq::socket_t socket_;
  Authorize authorize_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace manifold::wire
