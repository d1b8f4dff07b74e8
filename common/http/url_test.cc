#include "common/http/url.h"

#include <gtest/gtest.h>

namespace manifold::http {
namespace {

Url MustParse(std::string_view text) {
  auto url = ParseUrl(text);
  MF_ASSERT(url.ok(), url.ok() ? "" : url.error().ToString());
  return *url;
}

TEST(UrlTest, ParsesDefaults) {
  Url u = MustParse("http://example.com");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.userinfo, "");
  EXPECT_FALSE(u.IsTls());
  EXPECT_EQ(u.HostPort(), "example.com:80");
  EXPECT_EQ(u.HostHeader(), "example.com");
  EXPECT_EQ(u.ToString(), "http://example.com/");

  Url s = MustParse("HTTPS://Example.COM/A/b?X=1#frag");
  EXPECT_EQ(s.scheme, "https");
  EXPECT_EQ(s.host, "example.com");
  EXPECT_EQ(s.port, 443);
  EXPECT_EQ(s.target, "/A/b?X=1");
  EXPECT_TRUE(s.IsTls());
  EXPECT_EQ(s.ToString(), "https://example.com/A/b?X=1");
}

TEST(UrlTest, ParsesPortsQueriesAndEmptyPort) {
  Url u = MustParse("http://h.example:8080?q=1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/?q=1");
  EXPECT_EQ(u.HostHeader(), "h.example:8080");
  EXPECT_EQ(u.ToString(), "http://h.example:8080/?q=1");
  EXPECT_EQ(MustParse("https://h:/x").port, 443);
  EXPECT_EQ(MustParse("https://h:443/x").HostHeader(), "h");
}

TEST(UrlTest, ParsesIpv6Literals) {
  Url u = MustParse("http://[::1]:8080/v2/");
  EXPECT_EQ(u.host, "::1");
  EXPECT_TRUE(u.IsIpv6());
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.HostPort(), "[::1]:8080");
  EXPECT_EQ(u.HostHeader(), "[::1]:8080");
  EXPECT_EQ(u.ToString(), "http://[::1]:8080/v2/");
  Url d = MustParse("https://[2001:DB8::1]/");
  EXPECT_EQ(d.host, "2001:db8::1");
  EXPECT_EQ(d.HostHeader(), "[2001:db8::1]");
}

TEST(UrlTest, KeepsUserinfoButNeverPrintsIt) {
  Url u = MustParse("https://user:pa%40ss@registry.example/v2/");
  EXPECT_EQ(u.userinfo, "user:pa%40ss");
  EXPECT_EQ(u.host, "registry.example");
  EXPECT_EQ(u.ToString(), "https://registry.example/v2/");
  auto decoded = PercentDecode(u.userinfo);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "user:pa@ss");
}

struct BadUrl {
  const char* text;
  const char* message;
};

TEST(UrlTest, RejectsBadUrlsNamingThem) {
  const BadUrl cases[] = {
      {"", "invalid URL \"\": empty"},
      {"example.com/x", "invalid URL \"example.com/x\": no scheme (expected http:// or https://)"},
      {"ftp://example.com/x",
       "invalid URL \"ftp://example.com/x\": unsupported scheme \"ftp\" (expected http or https)"},
      {"http:example.com", "invalid URL \"http:example.com\": expected \"//\" after the scheme"},
      {"http://", "invalid URL \"http://\": no host"},
      {"http:///path", "invalid URL \"http:///path\": no host"},
      {"http://h:99999/", "invalid URL \"http://h:99999/\": port out of range"},
      {"http://h:123456/", "invalid URL \"http://h:123456/\": invalid port"},
      {"http://h:65536/", "invalid URL \"http://h:65536/\": port out of range"},
      {"http://h:0/", "invalid URL \"http://h:0/\": port out of range"},
      {"http://h:8a/", "invalid URL \"http://h:8a/\": invalid port"},
      {"http://h%41/", "invalid URL \"http://h%41/\": invalid character in host"},
      {"http://[::1/", "invalid URL \"http://[::1/\": unterminated IPv6 address"},
      {"http://[zz::1]/", "invalid URL \"http://[zz::1]/\": invalid IPv6 address"},
      {"http://[::1]x/",
       "invalid URL \"http://[::1]x/\": unexpected characters after IPv6 address"},
      {"http://h/a b",
       "invalid URL \"http://h/a b\": spaces, control characters and non-ASCII bytes must be "
       "%-encoded"},
      {"http://h/\r\nX: y",
       "invalid URL \"http://h/\\x0d\\x0aX: y\": spaces, control characters and non-ASCII bytes "
       "must be %-encoded"},
      {"http://u:secret@h:0/", "invalid URL \"http://u:xxxxx@h:0/\": port out of range"},
  };
  for (const auto& c : cases) {
    auto url = ParseUrl(c.text);
    ASSERT_FALSE(url.ok()) << c.text;
    EXPECT_EQ(url.error().kind, ErrorKind::kInvalidInput) << c.text;
    EXPECT_EQ(url.error().code, "http.url") << c.text;
    EXPECT_EQ(url.error().message, c.message) << c.text;
  }
}

TEST(UrlTest, RejectsOverlongUrls) {
  auto url = ParseUrl("http://h/" + std::string(9000, 'a'));
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.error().code, "http.url");
  EXPECT_EQ(url.error().message,
            "invalid URL \"http://h/" + std::string(503, 'a') + "...\": longer than 8192 bytes");
}

TEST(UrlTest, ResolvesReferencesPerRfc3986) {
  // RFC 3986 section 5.4.1 (normal examples), on an http base.
  Url base = MustParse("http://a/b/c/d;p?q");
  const std::pair<const char*, const char*> cases[] = {
      {"g", "http://a/b/c/g"},
      {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},
      {"//g", "http://g/"},
      {"?y", "http://a/b/c/d;p?y"},
      {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q"},
      {"g#s", "http://a/b/c/g"},
      {"g?y#s", "http://a/b/c/g?y"},
      {";x", "http://a/b/c/;x"},
      {"g;x", "http://a/b/c/g;x"},
      {".", "http://a/b/c/"},
      {"./", "http://a/b/c/"},
      {"..", "http://a/b/"},
      {"../", "http://a/b/"},
      {"../g", "http://a/b/g"},
      {"../..", "http://a/"},
      {"../../", "http://a/"},
      {"../../g", "http://a/g"},
      {"../../../g", "http://a/g"},
      {"/./g", "http://a/g"},
      {"/../g", "http://a/g"},
      {"g/../h", "http://a/b/c/h"},
      {"https://other:8443/x?y", "https://other:8443/x?y"},
      {"HTTP://Other/", "http://other/"},
  };
  for (const auto& [ref, want] : cases) {
    auto got = base.Resolve(ref);
    ASSERT_TRUE(got.ok()) << ref << ": " << got.error().ToString();
    EXPECT_EQ(got->ToString(), want) << ref;
  }
}

TEST(UrlTest, ResolveKeepsOriginAndUserinfoForRelativeReferences) {
  Url base = MustParse("https://u:p@reg.example:5000/v2/x/blobs/uploads/");
  auto rel = base.Resolve("/v2/x/blobs/uploads/123?_state=abc");
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->userinfo, "u:p");
  EXPECT_EQ(rel->ToString(), "https://reg.example:5000/v2/x/blobs/uploads/123?_state=abc");
  auto scheme_relative = base.Resolve("//cdn.example/blob");
  ASSERT_TRUE(scheme_relative.ok());
  EXPECT_EQ(scheme_relative->ToString(), "https://cdn.example/blob");
  EXPECT_EQ(scheme_relative->userinfo, "");
}

TEST(UrlTest, ResolveRejectsOtherSchemes) {
  Url base = MustParse("http://a/b");
  auto got = base.Resolve("file:///etc/passwd");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(got.error().code, "http.url");
  EXPECT_EQ(got.error().message,
            "invalid URL \"file:///etc/passwd\": unsupported scheme \"file\" (expected http or "
            "https)");
}

TEST(UrlTest, PercentDecodeRejectsBadEscapes) {
  EXPECT_EQ(*PercentDecode("a%2Fb%3a"), "a/b:");
  for (const char* bad : {"%", "%4", "%zz", "a%g1"}) {
    auto got = PercentDecode(bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.error().code, "http.url");
    EXPECT_EQ(got.error().message, "invalid %-escape in URL");
  }
}

}  // namespace
}  // namespace manifold::http
