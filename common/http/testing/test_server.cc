#include "common/http/testing/test_server.h"

// clang-format off
// <utility> must come before any Boost.Asio header (Boost 1.74, C++20, g++ 12).
#include <utility>
// clang-format on

#include <array>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "common/base/ascii.h"
#include "common/base/error.h"

namespace manifold::http::testing {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

/// An io_context on its own thread with an acceptor on 127.0.0.1:0.
struct Loop {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  mutable std::mutex mu;
  std::vector<ReceivedRequest> requests;  ///< guarded by mu

  Loop() {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(endpoint.protocol());
    acceptor.bind(endpoint);
    acceptor.listen();
  }
  void Start() {
    thread = std::thread([this] { ioc.run(); });
  }
  void Stop() {
    ioc.stop();
    if (thread.joinable()) thread.join();
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  void Record(ReceivedRequest r) {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(std::move(r));
  }
  std::vector<ReceivedRequest> Requests() const {
    std::lock_guard<std::mutex> lock(mu);
    return requests;
  }
};

ReceivedRequest Convert(const bhttp::request<bhttp::string_body>& req) {
  ReceivedRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  for (const auto& f : req)
    r.headers.emplace_back(AsciiLower(std::string(f.name_string())), std::string(f.value()));
  r.body = req.body();
  return r;
}

}  // namespace

// The loop is the last member: it goes first, with the sessions it owns.
struct TestServer::State {
  Handler handler;
  std::optional<asio::ssl::context> tls;
  Loop loop;
};

struct TestProxy::State {
  std::map<std::string, std::uint16_t> routes;
  Loop loop;
};

namespace {

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, TestServer::State* state) : stream_(std::move(stream)), state_(state) {}

  void Start() {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      Read();
    } else {
      auto self = this->shared_from_this();
      stream_.async_handshake(asio::ssl::stream_base::server, [self](error_code ec) {
        if (!ec) self->Read();
      });
    }
  }

 private:
  void Read() {
    auto self = this->shared_from_this();
    bhttp::async_read(stream_, buffer_, request_, [self](error_code ec, std::size_t) {
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) return;
      if (ec) {  // like nginx: garbage (a TLS ClientHello, say) gets a plain 400
        self->out_ = RawResponse(400, "Bad Request", "");
        asio::async_write(self->stream_, asio::buffer(self->out_),
                          [self](error_code, std::size_t) { self->Close(); });
        return;
      }
      ReceivedRequest r = Convert(self->request_);
      self->state_->loop.Record(r);
      std::optional<std::string> response = self->state_->handler(r);
      if (!response) return self->WaitForClose();
      self->out_ = std::move(*response);
      asio::async_write(self->stream_, asio::buffer(self->out_),
                        [self](error_code, std::size_t) { self->Close(); });
    });
  }

  void WaitForClose() {
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(scratch_), [self](error_code ec, std::size_t) {
      if (!ec) self->WaitForClose();
    });
  }

  void Close() {
    error_code ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.lowest_layer().close(ignored);
  }

  Stream stream_;
  TestServer::State* state_;
  boost::beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  std::string out_;
  std::array<char, 512> scratch_;
};

void Accept(TestServer::State* state) {
  state->loop.acceptor.async_accept([state](error_code ec, tcp::socket socket) {
    if (ec) return;
    if (state->tls) {
      using TlsStream = asio::ssl::stream<tcp::socket>;
      std::make_shared<Session<TlsStream>>(TlsStream(std::move(socket), *state->tls), state)
          ->Start();
    } else {
      std::make_shared<Session<tcp::socket>>(std::move(socket), state)->Start();
    }
    Accept(state);
  });
}

class ProxySession : public std::enable_shared_from_this<ProxySession> {
 public:
  ProxySession(tcp::socket client, TestProxy::State* state)
      : client_(std::move(client)), upstream_(client_.get_executor()), state_(state) {}

  void Start() {
    auto self = shared_from_this();
    bhttp::async_read(client_, buffer_, request_, [self](error_code ec, std::size_t) {
      if (!ec) self->OnRequest();
    });
  }

 private:
  void OnRequest() {
    ReceivedRequest r = Convert(request_);
    state_->loop.Record(r);
    if (r.method != "CONNECT")
      return Reply(RawResponse(200, "OK", "via proxy: " + r.method + " " + r.target), false);
    auto route = state_->routes.find(r.target);
    if (route == state_->routes.end()) return Reply(RawResponse(502, "Bad Gateway", ""), false);
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), route->second);
    auto self = shared_from_this();
    upstream_.async_connect(endpoint, [self](error_code ec) {
      if (ec) return self->Reply(RawResponse(502, "Bad Gateway", ""), false);
      self->Reply("HTTP/1.1 200 Connection established\r\n\r\n", true);
    });
  }

  void Reply(std::string bytes, bool tunnel) {
    out_ = std::move(bytes);
    auto self = shared_from_this();
    asio::async_write(client_, asio::buffer(out_), [self, tunnel](error_code ec, std::size_t) {
      if (ec || !tunnel) {
        error_code ignored;
        self->client_.shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      MF_ASSERT(self->buffer_.size() == 0, "client spoke before the tunnel was up");
      Pump(self, self->client_, self->upstream_, self->up_buf_);
      Pump(self, self->upstream_, self->client_, self->down_buf_);
    });
  }

  static void Pump(std::shared_ptr<ProxySession> self, tcp::socket& from, tcp::socket& to,
                   std::array<char, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [self, &from, &to, &buf](error_code ec, std::size_t n) {
      if (ec) {
        error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [self, &from, &to, &buf](error_code wec, std::size_t) {
                          if (!wec) Pump(self, from, to, buf);
                        });
    });
  }

  tcp::socket client_;
  tcp::socket upstream_;
  TestProxy::State* state_;
  boost::beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  std::string out_;
  std::array<char, 16384> up_buf_;
  std::array<char, 16384> down_buf_;
};

void AcceptProxy(TestProxy::State* state) {
  state->loop.acceptor.async_accept([state](error_code ec, tcp::socket socket) {
    if (ec) return;
    std::make_shared<ProxySession>(std::move(socket), state)->Start();
    AcceptProxy(state);
  });
}

}  // namespace

std::optional<std::string> ReceivedRequest::Header(std::string_view lower_name) const {
  for (const auto& [n, v] : headers) {
    if (n == lower_name) return v;
  }
  return std::nullopt;
}

std::string RawResponse(int status, std::string_view reason, std::string_view body,
                        std::string_view extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra_headers) + "\r\n" + std::string(body);
}

TestServer::TestServer(Handler handler) : state_(std::make_unique<State>()) {
  state_->handler = std::move(handler);
  Accept(state_.get());
  state_->loop.Start();
}

TestServer::TestServer(Handler handler, const TestCert& cert) : state_(std::make_unique<State>()) {
  state_->handler = std::move(handler);
  state_->tls.emplace(asio::ssl::context::tls_server);
  state_->tls->use_certificate_chain(asio::buffer(cert.cert_pem));
  state_->tls->use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
  Accept(state_.get());
  state_->loop.Start();
}

TestServer::~TestServer() { state_->loop.Stop(); }

std::uint16_t TestServer::port() const { return state_->loop.port(); }

std::string TestServer::Url(std::string_view path) const {
  return std::string(state_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) +
         std::string(path);
}

std::vector<ReceivedRequest> TestServer::requests() const { return state_->loop.Requests(); }

TestProxy::TestProxy(std::map<std::string, std::uint16_t> routes)
    : state_(std::make_unique<State>()) {
  state_->routes = std::move(routes);
  AcceptProxy(state_.get());
  state_->loop.Start();
}

TestProxy::~TestProxy() { state_->loop.Stop(); }

std::uint16_t TestProxy::port() const { return state_->loop.port(); }

std::vector<ReceivedRequest> TestProxy::requests() const { return state_->loop.Requests(); }

}  // namespace manifold::http::testing
