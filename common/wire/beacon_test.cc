#include "common/wire/beacon.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

namespace manifold::wire {
namespace {

// A UDP port that was free a moment ago on 127.0.0.1.
std::uint16_t FreeUdpPort() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void SendRawToLoopback(std::uint16_t port, std::string_view payload) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

TEST(BeaconTest, FormatsAndParses) {
  EXPECT_EQ(FormatAnnouncement(7700, "SHA256:abc+/="), "MANIFOLD1 7700 SHA256:abc+/=");
  auto a = ParseAnnouncement("MANIFOLD1 7700 SHA256:abc+/=");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->port, 7700);
  EXPECT_EQ(a->fingerprint, "SHA256:abc+/=");
}

TEST(BeaconTest, RejectsMalformedAnnouncements) {
  const struct {
    std::string datagram;
    std::string message;
  } cases[] = {
      {"HELLO 7700 abc", "not a Manifold announcement"},
      {"MANIFOLD2 7700 abc", "not a Manifold announcement"},
      {"MANIFOLD1 7700", "announcement has no fingerprint"},
      {"MANIFOLD1 0 abc", "bad port in announcement"},
      {"MANIFOLD1 65536 abc", "bad port in announcement"},
      {"MANIFOLD1 -1 abc", "bad port in announcement"},
      {"MANIFOLD1 7700 ", "bad fingerprint in announcement"},
      {"MANIFOLD1 7700 a b", "bad fingerprint in announcement"},
      {"MANIFOLD1 7700 abc\n", "bad fingerprint in announcement"},
      {"MANIFOLD1 7700 " + std::string(129, 'f'), "bad fingerprint in announcement"},
      {"MANIFOLD1 7700 " + std::string(300, 'f'), "announcement is 315 bytes, limit is 256"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseAnnouncement(c.datagram);
    ASSERT_FALSE(parsed.ok()) << c.datagram;
    EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(parsed.error().code, "wire.beacon.malformed");
    EXPECT_EQ(parsed.error().message, c.message) << c.datagram;
  }
}

TEST(BeaconTest, DiscoversAnnouncementOnLoopback) {
  const std::uint16_t port = FreeUdpPort();
  auto sender = BeaconSender::Create("127.0.0.1", port, 7700, "SHA256:q1w2e3");
  ASSERT_TRUE(sender.ok()) << sender.error().ToString();

  auto found = std::async(std::launch::async, [port] {
    return DiscoverCoordinator(port, std::chrono::seconds(5), "127.0.0.1");
  });
  // Announce periodically, as the coordinator does, until the listener got one;
  // stray traffic on the port comes first and must be skipped.
  while (found.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    SendRawToLoopback(port, "not a beacon");
    ASSERT_TRUE((*sender)->Announce().ok());
  }
  auto announcement = found.get();
  ASSERT_TRUE(announcement.ok()) << announcement.error().ToString();
  EXPECT_EQ(announcement->port, 7700);
  EXPECT_EQ(announcement->fingerprint, "SHA256:q1w2e3");
  EXPECT_EQ(announcement->sender_address, "127.0.0.1");
}

TEST(BeaconTest, TimesOutWithoutAnnouncement) {
  const std::uint16_t port = FreeUdpPort();
  auto start = std::chrono::steady_clock::now();
  auto result = DiscoverCoordinator(port, std::chrono::milliseconds(100), "127.0.0.1");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(result.error().code, "wire.beacon.timeout");
  EXPECT_EQ(result.error().message,
            "no coordinator announcement on UDP port " + std::to_string(port) + " within 100 ms");
  EXPECT_GE(elapsed, std::chrono::milliseconds(100));
}

TEST(BeaconTest, RejectsBadAddresses) {
  auto sender = BeaconSender::Create("coordinator.local", 7699, 7700, "abc");
  ASSERT_FALSE(sender.ok());
  EXPECT_EQ(sender.error().code, "wire.beacon.address");
  EXPECT_EQ(sender.error().message, "\"coordinator.local\" is not an IP address");
  auto bad_fp = BeaconSender::Create("127.0.0.1", 7699, 7700, "has space");
  ASSERT_FALSE(bad_fp.ok());
  EXPECT_EQ(bad_fp.error().code, "wire.beacon.malformed");
}

}  // namespace
}  // namespace manifold::wire
