// LAN discovery: the coordinator announces itself in a UDP datagram
// "MANIFOLD1 <port> <pubkey-fingerprint>"; a worker started without --join
// listens for the first announcement. The announcement is only a hint: the
// worker still authenticates the coordinator's CURVE key before trusting it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::wire {

/// UDP port the beacon uses unless configured otherwise.
inline constexpr std::uint16_t kDefaultBeaconPort = 7699;

struct Announcement {
  std::uint16_t port = 0;     ///< coordinator's ZeroMQ ROUTER port
  std::string fingerprint;    ///< fingerprint of the coordinator's CURVE public key
  std::string sender_address; ///< IP the datagram came from (empty when formatted locally)
};

/// "MANIFOLD1 <port> <fingerprint>".
std::string FormatAnnouncement(std::uint16_t port, std::string_view fingerprint);

/// Strict parse of a datagram. Errors: kInvalidInput ("wire.beacon.malformed").
Expected<Announcement> ParseAnnouncement(std::string_view datagram);

/// Sends announcements from one UDP socket. Not thread-safe; the owner calls
/// Announce() from its timer (every few seconds).
class BeaconSender {
 public:
  /// `target_address` is an IPv4/IPv6 literal: a broadcast address on a LAN,
  /// 127.0.0.1 in tests. Errors: kInvalidInput ("wire.beacon.address"),
  /// kTransient ("wire.beacon.socket").
  static Expected<std::unique_ptr<BeaconSender>> Create(std::string_view target_address,
                                                        std::uint16_t udp_port,
                                                        std::uint16_t service_port,
                                                        std::string_view fingerprint);
  ~BeaconSender();
  BeaconSender(const BeaconSender&) = delete;
  BeaconSender& operator=(const BeaconSender&) = delete;

  /// Sends one datagram. Errors: kTransient ("wire.beacon.send").
  Expected<void> Announce();

 private:
  struct Impl;
  explicit BeaconSender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Listens on `bind_address`:`udp_port` until a valid announcement arrives or
/// `timeout` passes; malformed datagrams are skipped.
/// Errors: kTransient ("wire.beacon.timeout", "wire.beacon.socket"),
/// kInvalidInput ("wire.beacon.address").
Expected<Announcement> DiscoverCoordinator(std::uint16_t udp_port,
                                           std::chrono::milliseconds timeout,
                                           std::string_view bind_address = "0.0.0.0");

}  // namespace manifold::wire
