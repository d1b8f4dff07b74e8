#include "common/wire/socket_options.h"

#include <gtest/gtest.h>

namespace manifold::wire {
namespace {

TEST(SocketOptionsTest, AppliesManifoldDefaults) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::router);
  auto applied = ApplySocketDefaults(socket);
  ASSERT_TRUE(applied.ok()) << applied.error().ToString();
  EXPECT_EQ(socket.get(zmq::sockopt::maxmsgsize), 16 << 20);
  EXPECT_EQ(socket.get(zmq::sockopt::linger), 1000);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ivl), 2000);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_timeout), 6000);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ttl), 10000);
  EXPECT_EQ(socket.get(zmq::sockopt::handshake_ivl), 10000);
}

TEST(SocketOptionsTest, OverridesAreApplied) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  SocketDefaults d;
  d.linger = std::chrono::milliseconds(0);
  d.heartbeat_interval = std::chrono::milliseconds(500);
  ASSERT_TRUE(ApplySocketDefaults(socket, d).ok());
  EXPECT_EQ(socket.get(zmq::sockopt::linger), 0);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ivl), 500);
}

TEST(SocketOptionsTest, RefusedOptionBecomesError) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  SocketDefaults d;
  d.heartbeat_ttl = std::chrono::milliseconds(100'000'000);  // above libzmq's 6553599 ms cap
  auto applied = ApplySocketDefaults(socket, d);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(applied.error().code, "wire.sockopt");
  EXPECT_EQ(applied.error().message.rfind("setting ZMQ_HEARTBEAT_TTL failed: ", 0), 0u)
      << applied.error().message;
}

}  // namespace
}  // namespace manifold::wire
