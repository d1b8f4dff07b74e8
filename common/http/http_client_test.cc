// Client::Fetch against in-process servers on 127.0.0.1 (testing/test_server.h):
// framing, redirects, limits, TLS verification, timeouts and proxies.
#include "common/http/http_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "common/http/testing/test_cert.h"
#include "common/http/testing/test_server.h"

namespace manifold::http {
namespace {

using testing::MakeSelfSignedCert;
using testing::RawResponse;
using testing::ReceivedRequest;
using testing::TempFile;
using testing::TestCert;
using testing::TestProxy;
using testing::TestServer;

/// No environment proxy, short timeouts: a hanging test fails fast.
ClientOptions TestOptions() {
  ClientOptions o;
  o.use_env_proxy = false;
  o.connect_timeout = std::chrono::milliseconds(5000);
  o.io_timeout = std::chrono::milliseconds(5000);
  return o;
}

Request Get(std::string url) {
  Request r;
  r.url = std::move(url);
  return r;
}

std::string Port(const TestServer& s) { return std::to_string(s.port()); }

/// Counts writes, to show the body arrives in pieces.
class CountingSink : public layer::ByteSink {
 public:
  Expected<void> Write(std::string_view data) override {
    ++writes;
    data_.append(data);
    return Ok();
  }
  int writes = 0;
  std::string data_;
};

TEST(HttpClientTest, ContentLengthBody) {
  TestServer server([](const ReceivedRequest&) {
    return RawResponse(200, "OK", "hello", "X-Thing: A\r\nX-Thing: B\r\n");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/file?x=1")), &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->reason, "OK");
  EXPECT_EQ(body, "hello");
  EXPECT_EQ(r->body_bytes, 5u);
  EXPECT_EQ(r->final_url, server.Url("/file?x=1"));
  EXPECT_EQ(r->Header("X-THING"), "A");
  EXPECT_EQ(r->Header("content-length"), "5");
  EXPECT_EQ(r->Header("missing"), std::nullopt);
  const std::vector<std::pair<std::string, std::string>> want_headers = {
      {"content-length", "5"}, {"x-thing", "A"}, {"x-thing", "B"}};
  EXPECT_EQ(r->headers, want_headers);

  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/file?x=1");
  EXPECT_EQ(seen[0].Header("host"), "127.0.0.1:" + Port(server));
  EXPECT_EQ(seen[0].Header("user-agent"), "manifold");
  EXPECT_EQ(seen[0].Header("connection"), "close");
  EXPECT_EQ(seen[0].Header("content-length"), std::nullopt);
}

TEST(HttpClientTest, ChunkedBody) {
  TestServer server([](const ReceivedRequest&) {
    return std::string(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/c")), &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body, "hello world");
  EXPECT_EQ(r->body_bytes, 11u);
}

TEST(HttpClientTest, StreamsLargeAndCloseDelimitedBodies) {
  std::string big(300 * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  TestServer server([&big](const ReceivedRequest& req) -> std::optional<std::string> {
    if (req.target == "/big") return RawResponse(200, "OK", big);
    // No Content-Length, not chunked: the body ends when the server closes.
    return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big;
  });
  for (const char* path : {"/big", "/eof"}) {
    CountingSink sink;
    auto r = Fetch(Get(server.Url(path)), sink, TestOptions());
    ASSERT_TRUE(r.ok()) << path << ": " << r.error().ToString();
    EXPECT_EQ(sink.data_, big) << path;
    EXPECT_EQ(r->body_bytes, big.size()) << path;
    EXPECT_GE(sink.writes, 5) << path;  // 64 KiB pieces, never the whole body at once
  }
}

TEST(HttpClientTest, SkipsInterimResponses) {
  TestServer server([](const ReceivedRequest&) {
    return "HTTP/1.1 100 Continue\r\n\r\n" + RawResponse(200, "OK", "ok");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body, "ok");
}

TEST(HttpClientTest, FollowsRelativeRedirects) {
  TestServer server([](const ReceivedRequest& req) {
    if (req.target == "/dir/a") return RawResponse(302, "Found", "moved", "Location: b?x=1\r\n");
    if (req.target == "/dir/b?x=1")
      return RawResponse(301, "Moved", "moved again", "Location: /final#frag\r\n");
    return RawResponse(200, "OK", "final body");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/dir/a")), &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body, "final body");  // redirect bodies are not streamed
  EXPECT_EQ(r->final_url, server.Url("/final"));
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].target, "/dir/b?x=1");
  EXPECT_EQ(seen[2].target, "/final");
}

TEST(HttpClientTest, FollowsAbsoluteRedirectsAndDropsCredentialsAcrossOrigins) {
  TestServer other([](const ReceivedRequest&) { return RawResponse(200, "OK", "elsewhere"); });
  std::string other_url = other.Url("/there");
  TestServer server([&other_url](const ReceivedRequest& req) {
    if (req.target == "/start")
      return RawResponse(307, "Temporary Redirect", "", "Location: /again\r\n");
    return RawResponse(308, "Permanent Redirect", "", "Location: " + other_url + "\r\n");
  });
  Request req = Get(server.Url("/start"));
  req.headers = {{"Authorization", "Bearer secret"}, {"Cookie", "c=1"}, {"X-Keep", "yes"}};
  std::string body;
  auto r = FetchToString(req, &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "elsewhere");
  EXPECT_EQ(r->final_url, other_url);

  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].Header("authorization"), "Bearer secret");  // same origin
  auto moved = other.requests();
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].Header("authorization"), std::nullopt);  // other port: other origin
  EXPECT_EQ(moved[0].Header("cookie"), std::nullopt);
  EXPECT_EQ(moved[0].Header("x-keep"), "yes");
}

TEST(HttpClientTest, RedirectLoopIsAnError) {
  TestServer server(
      [](const ReceivedRequest&) { return RawResponse(302, "Found", "", "Location: /loop\r\n"); });
  std::string body;
  auto r = FetchToString(Get(server.Url("/loop")), &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "http.redirect");
  EXPECT_EQ(r.error().message, "too many redirects (more than 10) fetching " + server.Url("/loop"));
  EXPECT_EQ(server.requests().size(), 11u);
}

TEST(HttpClientTest, RedirectToAnotherSchemeIsAnError) {
  TestServer server([](const ReceivedRequest&) {
    return RawResponse(302, "Found", "", "Location: ftp://files.example/x\r\n");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "http.redirect");
  EXPECT_EQ(r.error().message,
            "bad redirect from " + server.Url("/") +
                ": invalid URL \"ftp://files.example/x\": unsupported scheme \"ftp\" (expected "
                "http or https)");
}

TEST(HttpClientTest, RedirectsAreReturnedWhenNotFollowed) {
  TestServer server([](const ReceivedRequest& req) {
    return RawResponse(303, "See Other", "posted " + req.body, "Location: /elsewhere\r\n");
  });
  Request post = Get(server.Url("/upload"));
  post.method = "POST";
  post.body = "data";
  std::string body;
  auto r = FetchToString(post, &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 303);
  EXPECT_EQ(r->Header("location"), "/elsewhere");
  EXPECT_EQ(body, "posted data");
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].Header("content-length"), "4");

  ClientOptions no_follow = TestOptions();
  no_follow.follow_redirects = false;
  r = FetchToString(Get(server.Url("/get")), &body, no_follow);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 303);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(HttpClientTest, NotFoundIsAResponseNotAnError) {
  TestServer server(
      [](const ReceivedRequest&) { return RawResponse(404, "Not Found", "no such file"); });
  std::string body;
  auto r = FetchToString(Get(server.Url("/missing")), &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->reason, "Not Found");
  EXPECT_EQ(body, "no such file");
}

TEST(HttpClientTest, HeadReadsNoBody) {
  TestServer server([](const ReceivedRequest&) {
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
  });
  Request head = Get(server.Url("/blob"));
  head.method = "HEAD";
  std::string body;
  ClientOptions o = TestOptions();
  o.max_body_bytes = 10;  // the announced length is not a body
  auto r = FetchToString(head, &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->Header("content-length"), "1000");
  EXPECT_EQ(r->body_bytes, 0u);
  EXPECT_EQ(server.requests().at(0).method, "HEAD");
}

TEST(HttpClientTest, MaxBodyBytesWithContentLength) {
  TestServer server([](const ReceivedRequest&) { return RawResponse(200, "OK", "hello"); });
  ClientOptions o = TestOptions();
  o.max_body_bytes = 4;
  std::string body;
  auto r = FetchToString(Get(server.Url("/big")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(r.error().code, "http.too_large");
  EXPECT_EQ(r.error().message, "response body of " + server.Url("/big") +
                                   " is over the limit of 4 bytes (at least 5)");
  EXPECT_EQ(body, "");  // refused before reading

  o.max_body_bytes = 5;
  r = FetchToString(Get(server.Url("/big")), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "hello");
}

TEST(HttpClientTest, MaxBodyBytesWhileStreaming) {
  TestServer server([](const ReceivedRequest&) {
    return std::string(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  });
  ClientOptions o = TestOptions();
  o.max_body_bytes = 8;
  std::string body;
  auto r = FetchToString(Get(server.Url("/chunks")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(r.error().code, "http.too_large");
  EXPECT_EQ(r.error().message, "response body of " + server.Url("/chunks") +
                                   " is over the limit of 8 bytes (at least 11)");
  EXPECT_LE(body.size(), 8u);
}

TEST(HttpClientTest, TruncatedBodyIsTransient) {
  TestServer server([](const ReceivedRequest&) {
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/t")), &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.io");
  EXPECT_EQ(r.error().message, "reading the response body from 127.0.0.1:" + Port(server) +
                                   " failed: connection closed early");
  EXPECT_EQ(body, "short");  // what did arrive is delivered (a Range resume starts after it)
}

TEST(HttpClientTest, MalformedResponseIsAProtocolError) {
  TestServer server([](const ReceivedRequest&) { return std::string("SPDY/9 banana\r\n\r\n"); });
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.protocol");
  EXPECT_EQ(r.error().message, "reading the response from 127.0.0.1:" + Port(server) +
                                   " failed: malformed HTTP (bad version)");
}

TEST(HttpClientTest, HeadersOverTheLimitAreAProtocolError) {
  TestServer server([](const ReceivedRequest&) {
    return RawResponse(200, "OK", "", "X-Big: " + std::string(70 * 1024, 'h') + "\r\n");
  });
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.protocol");
  EXPECT_EQ(r.error().message, "reading the response from 127.0.0.1:" + Port(server) +
                                   " failed: malformed HTTP (header limit exceeded)");
}

TEST(HttpClientTest, TimesOutOnASilentServer) {
  TestServer server([](const ReceivedRequest&) { return std::nullopt; });
  ClientOptions o = TestOptions();
  o.io_timeout = std::chrono::milliseconds(200);
  std::string body;
  auto start = std::chrono::steady_clock::now();
  auto r = FetchToString(Get(server.Url("/hang")), &body, o);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.timeout");
  EXPECT_EQ(r.error().message,
            "reading the response from 127.0.0.1:" + Port(server) + " timed out after 200ms");
  EXPECT_GE(elapsed, std::chrono::milliseconds(200));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

/// A port on 127.0.0.1 with nothing listening: bound, then released.
std::uint16_t UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  MF_ASSERT(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  MF_ASSERT(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpClientTest, ConnectionRefusedIsTransient) {
  std::string port = std::to_string(UnusedPort());
  std::string body;
  auto r = FetchToString(Get("http://127.0.0.1:" + port + "/"), &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.connect");
  EXPECT_EQ(r.error().message, "cannot connect to 127.0.0.1:" + port + ": Connection refused");
}

TEST(HttpClientTest, ConnectTimeoutOnAFullListenQueue) {
  // A listener on 127.0.0.1 that never accepts, its queue filled: Linux drops
  // further SYNs, so a connect hangs until our deadline.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::string port = std::to_string(ntohs(addr.sin_port));
  ClientOptions o = TestOptions();
  o.connect_timeout = std::chrono::milliseconds(300);
  std::string body;
  auto start = std::chrono::steady_clock::now();
  auto r = FetchToString(Get("http://127.0.0.1:" + port + "/"), &body, o);
  auto elapsed = std::chrono::steady_clock::now() - start;
  for (int fd : fillers) ::close(fd);
  ::close(listener);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.timeout");
  EXPECT_EQ(r.error().message, "connecting to 127.0.0.1:" + port + " timed out after 300ms");
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(HttpClientTest, RejectsBadRequests) {
  struct Case {
    Request request;
    const char* code;
    const char* message;
  };
  std::vector<Case> cases = {
      {{"GE T", "http://127.0.0.1:1/", {}, "", nullptr, 0, {}},
       "http.method",
       "invalid HTTP method \"GE T\""},
      {{"GET", "http://127.0.0.1:1/", {{"X-A", "ok\r\nInjected: yes"}}, "", nullptr, 0, {}},
       "http.header",
       "invalid characters in the value of header X-A"},
      {{"GET", "http://127.0.0.1:1/", {{"Bad Name", "v"}}, "", nullptr, 0, {}},
       "http.header",
       "invalid header name \"Bad Name\""},
      {{"GET", "http://127.0.0.1:1/", {{"host", "evil"}}, "", nullptr, 0, {}},
       "http.header",
       "header host is set by the HTTP client"},
      {{"GET", "file:///etc/passwd", {}, "", nullptr, 0, {}},
       "http.url",
       "invalid URL \"file:///etc/passwd\": unsupported scheme \"file\" (expected http or https)"},
  };
  for (const auto& c : cases) {
    std::string body;
    auto r = FetchToString(c.request, &body, TestOptions());
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput) << c.message;
    EXPECT_EQ(r.error().code, c.code) << c.message;
    EXPECT_EQ(r.error().message, c.message);
  }
}

TEST(HttpClientTest, SendsUserinfoAsBasicAuthAndHonoursCallerHeaders) {
  TestServer server([](const ReceivedRequest&) { return RawResponse(200, "OK", ""); });
  Request req = Get("http://user:p%40ss@127.0.0.1:" + Port(server) + "/private");
  req.headers = {{"User-Agent", "custom/1.0"}, {"Accept", "application/json"}};
  std::string body;
  auto r = FetchToString(req, &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->final_url, server.Url("/private"));  // no credentials in what we report
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].Header("authorization"), "Basic dXNlcjpwQHNz");  // user:p@ss
  EXPECT_EQ(seen[0].Header("user-agent"), "custom/1.0");
  EXPECT_EQ(seen[0].Header("accept"), "application/json");
}

TEST(HttpClientTest, SinkErrorsPropagate) {
  class FullSink : public layer::ByteSink {
   public:
    Expected<void> Write(std::string_view) override {
      return MakeError(ErrorKind::kResourceExhausted, "io.write", "disk full");
    }
  };
  TestServer server([](const ReceivedRequest&) { return RawResponse(200, "OK", "data"); });
  FullSink sink;
  auto r = Fetch(Get(server.Url("/")), sink, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(r.error().code, "io.write");
  EXPECT_EQ(r.error().message, "disk full");
}

TEST(HttpClientTest, StreamsARequestBodyFromASource) {
  TestServer server([](const ReceivedRequest& req) {
    return RawResponse(201, "Created", std::to_string(req.body.size()) + " " +
                                           req.Header("content-length").value_or("?"));
  });
  std::string payload(300 * 1024 + 7, 'x');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  layer::StringSource source(payload, 1000);  // short reads
  Request req;
  req.method = "PATCH";
  req.url = server.Url("/upload");
  req.body_source = &source;
  req.body_length = payload.size();
  std::string body;
  auto r = FetchToString(req, &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(body, "307207 307207");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].body, payload);
}

TEST(HttpClientTest, StreamedBodyOfLengthZero) {
  TestServer server([](const ReceivedRequest& req) {
    return RawResponse(201, "Created", req.Header("content-length").value_or("none"));
  });
  layer::StringSource source("");
  Request req;
  req.method = "PUT";
  req.url = server.Url("/x");
  req.body_source = &source;
  std::string body;
  auto r = FetchToString(req, &body, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "0");
}

TEST(HttpClientTest, ShortBodySourceFails) {
  TestServer server([](const ReceivedRequest&) { return RawResponse(201, "Created", ""); });
  layer::StringSource source("abc");
  Request req;
  req.method = "PUT";
  req.url = server.Url("/x");
  req.body_source = &source;
  req.body_length = 10;
  std::string body;
  auto r = FetchToString(req, &body, TestOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "http.body");
  EXPECT_EQ(r.error().message,
            "request body for 127.0.0.1:" + Port(server) + " ended 7 bytes short of its length");
}

TEST(HttpClientTest, OnHeadSeesTheFinalResponseOnlyBeforeItsBody) {
  TestServer server([](const ReceivedRequest& req) -> std::optional<std::string> {
    if (req.target == "/old") return RawResponse(302, "Found", "moved", "Location: /new\r\n");
    return RawResponse(206, "Partial Content", "tail", "Content-Range: bytes 4-7/8\r\n");
  });
  std::vector<std::string> seen;
  CountingSink sink;
  Request req = Get(server.Url("/old"));
  req.on_head = [&seen, &sink](const Response& head) {
    seen.push_back(std::to_string(head.status) + " " + head.Header("content-range").value_or("") +
                   " writes=" + std::to_string(sink.writes));
  };
  auto r = Fetch(req, sink, TestOptions());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(seen, std::vector<std::string>{"206 bytes 4-7/8 writes=0"});
  EXPECT_EQ(sink.data_, "tail");
}

// --- TLS -------------------------------------------------------------------

class HttpsTest : public ::testing::Test {
 protected:
  static std::optional<std::string> Hello(const ReceivedRequest& req) {
    return RawResponse(200, "OK", "secret for " + req.Header("host").value_or("?"));
  }
  ClientOptions WithCa(const TempFile& ca) {
    ClientOptions o = TestOptions();
    o.ca_file = ca.path();
    return o;
  }

  TestCert cert_ =
      MakeSelfSignedCert("test server", {"DNS:localhost", "DNS:origin.test", "IP:127.0.0.1"});
  TempFile ca_{cert_.cert_pem};
};

TEST_F(HttpsTest, VerifiesAgainstTheGivenCa) {
  TestServer server(Hello, cert_);
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, WithCa(ca_));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body, "secret for 127.0.0.1:" + Port(server));

  r = FetchToString(Get("https://localhost:" + Port(server) + "/"), &body, WithCa(ca_));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "secret for localhost:" + Port(server));
}

TEST_F(HttpsTest, ExtraCaFilesAddToTheBundle) {
  TestServer server(Hello, cert_);
  ClientOptions o = TestOptions();  // the system bundle does not trust cert_...
  o.extra_ca_files = {ca_.path()};  // ...but this does
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "secret for 127.0.0.1:" + Port(server));

  o.extra_ca_files = {"/nonexistent/ca.crt"};
  r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "http.tls_config");
  EXPECT_EQ(r.error().message,
            "cannot load CA certificates from /nonexistent/ca.crt: No such file or directory");
}

TEST_F(HttpsTest, ClientCertificateNeedsItsKey) {
  TestServer server(Hello, cert_);
  TempFile key(cert_.key_pem);
  ClientOptions o = WithCa(ca_);
  o.client_cert_file = ca_.path();
  o.client_key_file = key.path();
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();

  o.client_key_file = "";
  r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "a client certificate needs both a certificate and a key file");
}

TEST_F(HttpsTest, ClientReusesItsTlsContext) {
  TestServer server(Hello, cert_);
  Client client(WithCa(ca_));
  for (int i = 0; i < 3; ++i) {
    layer::StringSink sink;
    auto r = client.Fetch(Get(server.Url("/")), sink);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(sink.data(), "secret for 127.0.0.1:" + Port(server));
  }
}

TEST_F(HttpsTest, WrongCaIsASecurityError) {
  TestServer server(Hello, cert_);
  TestCert other = MakeSelfSignedCert("someone else", {"IP:127.0.0.1"});
  TempFile other_ca(other.cert_pem);
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, WithCa(other_ca));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_EQ(r.error().message,
            "TLS certificate of 127.0.0.1:" + Port(server) + " rejected: self-signed certificate");
  EXPECT_EQ(body, "");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpsTest, SystemCaDoesNotTrustTheTestCert) {
  TestServer server(Hello, cert_);
  ClientOptions o = TestOptions();  // default ca_file: the system bundle
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
}

TEST_F(HttpsTest, HostnameMismatchIsASecurityError) {
  TestCert named = MakeSelfSignedCert("other", {"DNS:other.example"});
  TempFile named_ca(named.cert_pem);
  TestServer server(Hello, named);
  std::string body;
  auto r = FetchToString(Get("https://localhost:" + Port(server) + "/"), &body, WithCa(named_ca));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_EQ(r.error().message,
            "TLS certificate of localhost:" + Port(server) + " rejected: hostname mismatch");

  r = FetchToString(Get(server.Url("/")), &body, WithCa(named_ca));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_EQ(r.error().message,
            "TLS certificate of 127.0.0.1:" + Port(server) + " rejected: IP address mismatch");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpsTest, InsecureSkipVerifyAcceptsAnyCertificate) {
  TestCert named = MakeSelfSignedCert("other", {"DNS:other.example"});
  TestServer server(Hello, named);
  ClientOptions o = TestOptions();
  o.insecure_skip_verify = true;
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "secret for 127.0.0.1:" + Port(server));
}

TEST_F(HttpsTest, PlainHttpServerIsAHandshakeFailure) {
  TestServer plain([](const ReceivedRequest&) { return RawResponse(400, "Bad Request", ""); });
  std::string body;
  auto r = FetchToString(Get("https://127.0.0.1:" + Port(plain) + "/"), &body, WithCa(ca_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_EQ(r.error().message,
            "TLS handshake with 127.0.0.1:" + Port(plain) + " failed: wrong version number");
}

TEST_F(HttpsTest, MissingCaFileIsAConfigError) {
  TestServer server(Hello, cert_);
  ClientOptions o = TestOptions();
  o.ca_file = "/nonexistent/ca.pem";
  std::string body;
  auto r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "http.tls_config");
  EXPECT_EQ(r.error().message,
            "cannot load CA certificates from /nonexistent/ca.pem: No such file or directory");
  TempFile not_pem("this is not a certificate\n");
  o.ca_file = not_pem.path();
  r = FetchToString(Get(server.Url("/")), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "http.tls_config");
  EXPECT_EQ(r.error().message,
            "cannot load CA certificates from " + not_pem.path() + ": no certificate or crl found");

  // Plain http never needs the bundle.
  TestServer plain([](const ReceivedRequest&) { return RawResponse(200, "OK", "plain"); });
  r = FetchToString(Get(plain.Url("/")), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "plain");
}

TEST_F(HttpsTest, RefusesRedirectFromHttpsToHttp) {
  TestServer plain([](const ReceivedRequest&) { return RawResponse(200, "OK", "plain"); });
  std::string target = plain.Url("/down");
  TestServer server(
      [&target](const ReceivedRequest&) {
        return RawResponse(302, "Found", "", "Location: " + target + "\r\n");
      },
      cert_);
  std::string body;
  auto r = FetchToString(Get(server.Url("/up")), &body, WithCa(ca_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.redirect_downgrade");
  EXPECT_EQ(r.error().message,
            "refusing redirect from " + server.Url("/up") + " to " + target + " (https to http)");
  EXPECT_TRUE(plain.requests().empty());
}

// --- Proxies ---------------------------------------------------------------

TEST(HttpProxyTest, PlainProxyGetsAbsoluteFormAndCredentials) {
  TestProxy proxy({});
  ClientOptions o = TestOptions();
  std::string proxy_url = "http://alice:s%3Acret@127.0.0.1:" + std::to_string(proxy.port());
  o.proxy = ProxyConfig{proxy_url, "", ""};
  std::string body;
  // origin.test is never resolved by the client: only the proxy sees it.
  auto r = FetchToString(Get("http://origin.test/path?q=1"), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "via proxy: GET http://origin.test/path?q=1");
  EXPECT_EQ(r->final_url, "http://origin.test/path?q=1");
  auto seen = proxy.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].Header("host"), "origin.test");
  EXPECT_EQ(seen[0].Header("proxy-authorization"), "Basic YWxpY2U6czpjcmV0");  // alice:s:cret
}

TEST(HttpProxyTest, UsesEnvironmentProxy) {
  TestProxy proxy({});
  std::string value = "127.0.0.1:" + std::to_string(proxy.port());
  std::optional<std::string> saved;
  if (const char* old = std::getenv("HTTP_PROXY")) saved = old;
  ::setenv("HTTP_PROXY", value.c_str(), 1);
  ClientOptions o = TestOptions();
  o.use_env_proxy = true;
  std::string body;
  auto r = FetchToString(Get("http://origin.test:8080/x"), &body, o);
  if (saved) {
    ::setenv("HTTP_PROXY", saved->c_str(), 1);
  } else {
    ::unsetenv("HTTP_PROXY");
  }
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(body, "via proxy: GET http://origin.test:8080/x");
}

TEST_F(HttpsTest, TunnelsThroughConnectProxy) {
  TestServer origin(Hello, cert_);
  TestProxy proxy({{"origin.test:443", origin.port()}});
  ClientOptions o = WithCa(ca_);
  o.proxy = ProxyConfig{"", "127.0.0.1:" + std::to_string(proxy.port()), ""};
  std::string body;
  auto r = FetchToString(Get("https://origin.test/secret"), &body, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body, "secret for origin.test");  // TLS to the origin, checked for origin.test
  auto seen = proxy.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "CONNECT");
  EXPECT_EQ(seen[0].target, "origin.test:443");
  EXPECT_EQ(seen[0].Header("host"), "origin.test:443");
  ASSERT_EQ(origin.requests().size(), 1u);
  EXPECT_EQ(origin.requests()[0].target, "/secret");
}

TEST_F(HttpsTest, ConnectProxyStillVerifiesTheOrigin) {
  TestServer origin(Hello, cert_);
  TestProxy proxy({{"evil.test:443", origin.port()}});  // cert_ does not name evil.test
  ClientOptions o = WithCa(ca_);
  o.proxy = ProxyConfig{"", "127.0.0.1:" + std::to_string(proxy.port()), ""};
  std::string body;
  auto r = FetchToString(Get("https://evil.test/"), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_EQ(r.error().message, "TLS certificate of evil.test:443 rejected: hostname mismatch");
}

TEST(HttpProxyTest, RefusedConnectIsReported) {
  TestProxy proxy({});
  std::string proxy_port = std::to_string(proxy.port());
  ClientOptions o = TestOptions();
  o.proxy = ProxyConfig{"", "127.0.0.1:" + proxy_port, ""};
  std::string body;
  auto r = FetchToString(Get("https://nowhere.test/"), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.proxy");
  EXPECT_EQ(r.error().message, "proxy 127.0.0.1:" + proxy_port +
                                   " refused to connect to nowhere.test:443: 502 Bad Gateway");
}

TEST(HttpProxyTest, UnreachableProxyNamesTheProxy) {
  std::string port = std::to_string(UnusedPort());
  ClientOptions o = TestOptions();
  o.proxy = ProxyConfig{"127.0.0.1:" + port, "", ""};
  std::string body;
  auto r = FetchToString(Get("http://origin.test/"), &body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "http.connect");
  EXPECT_EQ(r.error().message,
            "cannot connect to proxy 127.0.0.1:" + port + ": Connection refused");
}

}  // namespace
}  // namespace manifold::http
