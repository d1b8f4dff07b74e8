// Manifold's ZeroMQ socket defaults, applied to every socket we create.
#pragma once

#include <chrono>
#include <cstdint>

#include <zmq.hpp>

#include "common/base/expected.h"

namespace manifold::wire {

struct SocketDefaults {
  /// Larger frames are dropped by libzmq before they reach Decode(); equals
  /// kMaxMessageBytes in codec.h. Blob bytes travel in smaller chunks.
  std::int64_t max_message_bytes = 16 << 20;
  /// ZMTP heartbeats: PING every interval, drop the peer after timeout without
  /// traffic; ttl tells the remote side how long to wait for us.
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds heartbeat_timeout{6000};
  std::chrono::milliseconds heartbeat_ttl{10000};
  /// A peer that has not completed the ZMTP/CURVE handshake by then is
  /// dropped (slow-loris handshakes, RELIABILITY G4).
  std::chrono::milliseconds handshake_interval{10000};
  /// How long close() may wait to flush queued messages; never forever.
  std::chrono::milliseconds linger{1000};
};

/// Applies `defaults` to `socket`. Call before bind/connect (heartbeat options
/// only affect connections made afterwards).
/// Errors: kInternal ("wire.sockopt") if libzmq refuses an option.
Expected<void> ApplySocketDefaults(zmq::socket_t& socket, const SocketDefaults& defaults = {});

}  // namespace manifold::wire
