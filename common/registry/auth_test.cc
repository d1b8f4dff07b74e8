// Authenticator with a fake token transport and clock: token caching and
// expiry, the refresh-token form POST, and what a 401 can be answered with.
#include "common/registry/auth.h"

#include <gtest/gtest.h>

namespace manifold::registry {
namespace {

using namespace std::chrono_literals;

struct FakeTokenServer {
  std::vector<http::Request> requests;
  std::string reply = R"({"token":"t1","expires_in":120})";
  int status = 200;

  TokenTransport Transport() {
    return [this](const http::Request& req, std::string* body) -> Expected<http::Response> {
      requests.push_back(req);
      *body = reply;
      http::Response r;
      r.status = status;
      r.reason = status == 200 ? "OK" : "Unauthorized";
      return r;
    };
  }
};

const std::vector<std::string> kChallenge = {
    R"(Bearer realm="https://auth.example/token",service="reg.example")"};

TEST(AuthenticatorTest, CachesTokensPerScopeUntilTheyExpire) {
  FakeTokenServer server;
  auto now = std::chrono::system_clock::from_time_t(1700000000);
  Authenticator auth(
      "reg.example",
      [](const std::string&) -> Expected<Credentials> { return Credentials{"u", "p", "", ""}; },
      server.Transport(), [&now] { return now; });
  auto none = auth.Authorization({PullScope("a")});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, std::nullopt);  // nothing learnt yet: anonymous

  auth.Learn(kChallenge);
  EXPECT_EQ(*auth.Authorization({PullScope("a")}), "Bearer t1");
  EXPECT_EQ(*auth.Authorization({PullScope("a")}), "Bearer t1");
  EXPECT_EQ(auth.token_fetches(), 1);
  ASSERT_EQ(server.requests.size(), 1u);
  EXPECT_EQ(server.requests[0].method, "GET");
  EXPECT_EQ(server.requests[0].url,
            "https://auth.example/token?service=reg.example&scope=repository%3Aa%3Apull");
  EXPECT_EQ(server.requests[0].headers,
            (std::vector<std::pair<std::string, std::string>>{{"Authorization", "Basic dTpw"}}));

  server.reply = R"({"access_token":"t2","expires_in":120})";
  EXPECT_EQ(*auth.Authorization({PushScope("a")}), "Bearer t2");  // another scope
  EXPECT_EQ(auth.token_fetches(), 2);

  now += 100s;
  EXPECT_EQ(*auth.Authorization({PullScope("a")}), "Bearer t1");  // still valid
  now += 20s;  // within the renewal margin of expiry
  server.reply = R"({"token":"t3"})";
  EXPECT_EQ(*auth.Authorization({PullScope("a")}), "Bearer t3");
  EXPECT_EQ(auth.token_fetches(), 3);

  // A 401 with a cached token forgets it.
  ASSERT_TRUE(auth.OnUnauthorized(kChallenge, {PullScope("a")}).ok());
  server.reply = R"({"token":"t4"})";
  EXPECT_EQ(*auth.Authorization({PullScope("a")}), "Bearer t4");
}

TEST(AuthenticatorTest, IssuedAtInThePastShortensTheLife) {
  FakeTokenServer server;
  auto now = std::chrono::system_clock::from_time_t(1700000000);  // 2023-11-14T22:13:20Z
  server.reply = R"({"token":"old","expires_in":300,"issued_at":"2023-11-14T22:09:20Z"})";
  Authenticator auth("r", {}, server.Transport(), [&now] { return now; });
  auth.Learn(kChallenge);
  EXPECT_EQ(*auth.Authorization({}), "Bearer old");
  now += 56s;  // issued 4 min before "now": 60 s of life were left
  server.reply = R"({"token":"new"})";
  EXPECT_EQ(*auth.Authorization({}), "Bearer new");
}

TEST(AuthenticatorTest, IdentityTokenIsExchangedWithAFormPost) {
  FakeTokenServer server;
  Authenticator auth(
      "reg.example",
      [](const std::string&) -> Expected<Credentials> {
        return Credentials{"", "", "refresh/token+1", ""};
      },
      server.Transport());
  auth.Learn(kChallenge);
  EXPECT_EQ(*auth.Authorization({PullScope("a"), PullScope("b")}), "Bearer t1");
  ASSERT_EQ(server.requests.size(), 1u);
  const auto& req = server.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://auth.example/token");
  EXPECT_EQ(req.body,
            "grant_type=refresh_token&refresh_token=refresh%2Ftoken%2B1&client_id=manifold"
            "&service=reg.example&scope=repository%3Aa%3Apull%20repository%3Ab%3Apull");
  EXPECT_EQ(req.headers, (std::vector<std::pair<std::string, std::string>>{
                             {"Content-Type", "application/x-www-form-urlencoded"}}));
}

TEST(AuthenticatorTest, RegistryTokenAndBasic) {
  FakeTokenServer server;
  Authenticator bearer(
      "r", [](const std::string&) -> Expected<Credentials> { return Credentials{"", "", "", "rt"}; },
      server.Transport());
  bearer.Learn(kChallenge);
  EXPECT_EQ(*bearer.Authorization({}), "Bearer rt");
  EXPECT_TRUE(server.requests.empty());

  Authenticator basic(
      "r", [](const std::string&) -> Expected<Credentials> { return Credentials{"a", "b", "", ""}; },
      server.Transport());
  ASSERT_TRUE(basic.OnUnauthorized({R"(Basic realm="x")"}, {}).ok());
  EXPECT_EQ(*basic.Authorization({}), "Basic YTpi");
}

TEST(AuthenticatorTest, WhatCannotBeAnswered) {
  FakeTokenServer server;
  Authenticator auth("reg.example", {}, server.Transport());
  auto r = auth.OnUnauthorized({R"(Basic realm="x")"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().message,
            "unauthorized: authentication required for reg.example (no credentials)");
  Authenticator other("reg.example", {}, server.Transport());
  r = other.OnUnauthorized({R"(Negotiate abc)"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "unauthorized: authentication required for reg.example (unsupported authentication "
            "scheme)");

  server.reply = R"({"nothing":1})";
  Authenticator empty("reg.example", {}, server.Transport());
  empty.Learn(kChallenge);
  auto token = empty.Authorization({});
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(token.error().message, "token server for reg.example sent a reply without a token");
}

}  // namespace
}  // namespace manifold::registry
