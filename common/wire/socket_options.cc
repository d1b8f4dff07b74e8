#include "common/wire/socket_options.h"

#include <string>

#include "common/wire/codec.h"

namespace manifold::wire {

static_assert(SocketDefaults{}.max_message_bytes == kMaxMessageBytes,
              "libzmq and Decode() must agree on the largest message");

namespace {

int ToIntMs(std::chrono::milliseconds d) { return static_cast<int>(d.count()); }

}  // namespace

Expected<void> ApplySocketDefaults(zmq::socket_t& socket, const SocketDefaults& defaults) {
  const char* option = "";
  try {
    option = "ZMQ_MAXMSGSIZE";
    socket.set(zmq::sockopt::maxmsgsize, defaults.max_message_bytes);
    option = "ZMQ_HEARTBEAT_IVL";
    socket.set(zmq::sockopt::heartbeat_ivl, ToIntMs(defaults.heartbeat_interval));
    option = "ZMQ_HEARTBEAT_TIMEOUT";
    socket.set(zmq::sockopt::heartbeat_timeout, ToIntMs(defaults.heartbeat_timeout));
    option = "ZMQ_HEARTBEAT_TTL";
    socket.set(zmq::sockopt::heartbeat_ttl, ToIntMs(defaults.heartbeat_ttl));
    option = "ZMQ_HANDSHAKE_IVL";
    socket.set(zmq::sockopt::handshake_ivl, ToIntMs(defaults.handshake_interval));
    option = "ZMQ_LINGER";
    socket.set(zmq::sockopt::linger, ToIntMs(defaults.linger));
  } catch (const zmq::error_t& e) {
    return MakeError(ErrorKind::kInternal, "wire.sockopt",
                     std::string("setting ") + option + " failed: " + e.what());
  }
  return Ok();
}

}  // namespace manifold::wire
