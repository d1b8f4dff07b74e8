#include "common/wire/beacon.h"

// Boost 1.74 Asio under C++20 on g++ 12 uses std::exchange without including
// <utility>: it must come before any asio header.
#include <utility>

#include <array>
#include <functional>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>

namespace manifold::wire {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;

constexpr std::string_view kMagic = "MANIFOLD1";
constexpr std::size_t kMaxFingerprintBytes = 128;
constexpr std::size_t kMaxDatagramBytes = 256;

Error Malformed(std::string message) {
  return MakeError(ErrorKind::kInvalidInput, "wire.beacon.malformed", std::move(message));
}

bool IsFingerprintChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/' || c == '=' || c == ':' || c == '_' || c == '-' || c == '.';
}

Expected<asio::ip::address> ParseAddress(std::string_view text) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(text), ec);
  if (ec) {
    return MakeError(ErrorKind::kInvalidInput, "wire.beacon.address",
                     "\"" + std::string(text) + "\" is not an IP address");
  }
  return address;
}

Error SocketError(const std::string& what, const boost::system::error_code& ec) {
  return MakeError(ErrorKind::kTransient, "wire.beacon.socket", what + ": " + ec.message());
}

}  // namespace

std::string FormatAnnouncement(std::uint16_t port, std::string_view fingerprint) {
  return std::string(kMagic) + " " + std::to_string(port) + " " + std::string(fingerprint);
}

Expected<Announcement> ParseAnnouncement(std::string_view datagram) {
  if (datagram.size() > kMaxDatagramBytes) {
    return Malformed("announcement is " + std::to_string(datagram.size()) + " bytes, limit is " +
                     std::to_string(kMaxDatagramBytes));
  }
  if (datagram.substr(0, kMagic.size() + 1) != std::string(kMagic) + " ") {
    return Malformed("not a Manifold announcement");
  }
  std::string_view rest = datagram.substr(kMagic.size() + 1);
  std::size_t space = rest.find(' ');
  if (space == std::string_view::npos) return Malformed("announcement has no fingerprint");
  std::string_view port_text = rest.substr(0, space);
  std::string_view fingerprint = rest.substr(space + 1);

  if (port_text.empty() || port_text.size() > 5) return Malformed("bad port in announcement");
  std::uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return Malformed("bad port in announcement");
    port = port * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) return Malformed("bad port in announcement");

  if (fingerprint.empty() || fingerprint.size() > kMaxFingerprintBytes) {
    return Malformed("bad fingerprint in announcement");
  }
  for (char c : fingerprint) {
    if (!IsFingerprintChar(c)) return Malformed("bad fingerprint in announcement");
  }
  Announcement a;
  a.port = static_cast<std::uint16_t>(port);
  a.fingerprint = std::string(fingerprint);
  return a;
}

struct BeaconSender::Impl {
  asio::io_context io;
  udp::socket socket{io};
  udp::endpoint target;
  std::string payload;
};

BeaconSender::BeaconSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BeaconSender::~BeaconSender() = default;

Expected<std::unique_ptr<BeaconSender>> BeaconSender::Create(std::string_view target_address,
                                                             std::uint16_t udp_port,
                                                             std::uint16_t service_port,
                                                             std::string_view fingerprint) {
  std::string payload = FormatAnnouncement(service_port, fingerprint);
  MF_TRY_VOID(ParseAnnouncement(payload));  // never send what a worker would reject
  MF_TRY(address, ParseAddress(target_address));
  auto impl = std::make_unique<Impl>();
  impl->target = udp::endpoint(address, udp_port);
  impl->payload = std::move(payload);
  boost::system::error_code ec;
  impl->socket.open(impl->target.protocol(), ec);
  if (ec) return SocketError("opening UDP socket", ec);
  // Needed for LAN broadcast targets; harmless for unicast ones.
  impl->socket.set_option(asio::socket_base::broadcast(true), ec);
  if (ec) return SocketError("enabling broadcast", ec);
  return std::unique_ptr<BeaconSender>(new BeaconSender(std::move(impl)));
}

Expected<void> BeaconSender::Announce() {
  boost::system::error_code ec;
  impl_->socket.send_to(asio::buffer(impl_->payload), impl_->target, 0, ec);
  if (ec) {
    return MakeError(ErrorKind::kTransient, "wire.beacon.send",
                     "sending announcement to " + impl_->target.address().to_string() + ":" +
                         std::to_string(impl_->target.port()) + ": " + ec.message());
  }
  return Ok();
}

Expected<Announcement> DiscoverCoordinator(std::uint16_t udp_port,
                                           std::chrono::milliseconds timeout,
                                           std::string_view bind_address) {
  MF_TRY(address, ParseAddress(bind_address));
  asio::io_context io;
  udp::socket socket(io);
  udp::endpoint local(address, udp_port);
  boost::system::error_code ec;
  socket.open(local.protocol(), ec);
  if (ec) return SocketError("opening UDP socket", ec);
  // Several workers on one host (tests, dev clusters) may listen at once.
  socket.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return SocketError("setting SO_REUSEADDR", ec);
  socket.bind(local, ec);
  if (ec) return SocketError("binding UDP " + std::string(bind_address) + ":" +
                             std::to_string(udp_port), ec);

  std::array<char, kMaxDatagramBytes + 1> buffer{};
  udp::endpoint sender;
  std::optional<Expected<Announcement>> result;
  // The handler re-arms itself; io and every captured local outlive it.
  std::function<void()> receive = [&socket, &buffer, &sender, &result, &receive] {
    socket.async_receive_from(
        asio::buffer(buffer), sender,
        [&buffer, &sender, &result, &receive](const boost::system::error_code& rec, std::size_t n) {
          if (rec) {
            if (rec != asio::error::operation_aborted) result = SocketError("receiving", rec);
            return;
          }
          auto parsed = ParseAnnouncement(std::string_view(buffer.data(), n));
          if (!parsed.ok()) {
            receive();  // someone else's traffic on our port: keep listening
            return;
          }
          parsed->sender_address = sender.address().to_string();
          result = std::move(parsed);
        });
  };
  receive();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!result && std::chrono::steady_clock::now() < deadline) {
    io.run_until(deadline);
    if (io.stopped()) io.restart();
  }
  if (!result) {
    return MakeError(ErrorKind::kTransient, "wire.beacon.timeout",
                     "no coordinator announcement on UDP port " + std::to_string(udp_port) +
                         " within " + std::to_string(timeout.count()) + " ms");
  }
  return std::move(*result);
}

}  // namespace manifold::wire
