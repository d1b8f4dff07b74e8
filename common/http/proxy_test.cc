#include "common/http/proxy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace manifold::http {
namespace {

Url U(std::string_view text) {
  auto url = ParseUrl(text);
  MF_ASSERT(url.ok(), url.ok() ? "" : url.error().ToString());
  return *url;
}

/// The proxy chosen for `url`, as "host:port", or "direct".
std::string Choose(std::string_view url, const ProxyConfig& config) {
  auto proxy = ProxyFor(U(url), config);
  MF_ASSERT(proxy.ok(), proxy.ok() ? "" : proxy.error().ToString());
  return *proxy ? (*proxy)->HostPort() : "direct";
}

TEST(ProxyTest, NoConfigMeansDirect) {
  EXPECT_EQ(Choose("http://example.com/", {}), "direct");
  EXPECT_EQ(Choose("https://example.com/", {}), "direct");
}

TEST(ProxyTest, PicksTheProxyForTheScheme) {
  ProxyConfig c{"proxy.corp:3128", "http://tls-proxy.corp:8080", ""};
  EXPECT_EQ(Choose("http://example.com/", c), "proxy.corp:3128");
  EXPECT_EQ(Choose("https://example.com/", c), "tls-proxy.corp:8080");
  ProxyConfig http_only{"proxy.corp:3128", "", ""};
  EXPECT_EQ(Choose("https://example.com/", http_only), "direct");
  ProxyConfig no_port{"http://proxy.corp", "", ""};
  EXPECT_EQ(Choose("http://example.com/", no_port), "proxy.corp:80");
}

TEST(ProxyTest, KeepsProxyCredentials) {
  ProxyConfig c{"http://alice:s%3Acret@proxy.corp:3128/", "", ""};
  auto proxy = ProxyFor(U("http://example.com/"), c);
  ASSERT_TRUE(proxy.ok());
  ASSERT_TRUE(proxy->has_value());
  EXPECT_EQ((*proxy)->userinfo, "alice:s%3Acret");
}

TEST(ProxyTest, NeverProxiesLoopback) {
  ProxyConfig c{"proxy.corp:3128", "proxy.corp:3128", ""};
  for (const char* url : {"http://localhost:5000/", "http://127.0.0.1/", "http://127.1.2.3:8/",
                          "https://[::1]:5000/", "http://registry.localhost/"}) {
    EXPECT_EQ(Choose(url, c), "direct") << url;
  }
  EXPECT_EQ(Choose("http://128.0.0.1/", c), "proxy.corp:3128");
}

TEST(ProxyTest, HonoursNoProxyEntries) {
  struct Case {
    const char* no_proxy;
    const char* url;
    bool direct;
  };
  const Case cases[] = {
      {"*", "http://anything.example/", true},
      {"example.com", "http://example.com/", true},
      {"example.com", "http://a.b.example.com/", true},
      {"example.com", "http://notexample.com/", false},
      {".example.com", "http://a.example.com/", true},
      {".example.com", "http://example.com/", false},
      {"*.example.com", "http://a.example.com/", true},
      {"*.example.com", "http://example.com/", false},
      {"example.com:8080", "http://example.com:8080/", true},
      {"example.com:8080", "http://example.com/", false},
      {"10.0.0.0/8", "http://10.1.2.3/", true},
      {"10.0.0.0/8", "http://11.0.0.1/", false},
      {"10.0.0.0/8", "http://ten.example/", false},
      {"192.168.1.5", "http://192.168.1.5:81/", true},
      {"192.168.1.5", "http://192.168.1.6/", false},
      {"192.168.1.5:81", "http://192.168.1.5/", false},
      {"2001:db8::/32", "http://[2001:db8::7]/", true},
      {"2001:db8::/32", "http://[2001:db9::7]/", false},
      {"[2001:db8::7]:80", "http://[2001:db8::7]/", true},
      {"2001:db8::7", "http://[2001:db8::7]/", true},
      {" other.test , EXAMPLE.com ", "http://www.example.com/", true},
      {",,", "http://example.com/", false},
      {"10.0.0.0/99", "http://10.1.2.3/", false},
  };
  for (const auto& c : cases) {
    ProxyConfig config{"proxy.corp:3128", "", c.no_proxy};
    EXPECT_EQ(Choose(c.url, config), c.direct ? "direct" : "proxy.corp:3128")
        << c.no_proxy << " / " << c.url;
  }
}

TEST(ProxyTest, RejectsUnsupportedAndMalformedProxies) {
  struct Case {
    const char* proxy;
    ErrorKind kind;
    const char* message;
  };
  const Case cases[] = {
      {"socks5://proxy.corp:1080", ErrorKind::kUnimplemented,
       "proxy scheme \"socks5\" is not supported (only http:// proxies)"},
      {"HTTPS://proxy.corp", ErrorKind::kUnimplemented,
       "proxy scheme \"https\" is not supported (only http:// proxies)"},
      {"http://u:pw@proxy.corp:99999", ErrorKind::kInvalidInput,
       "bad proxy setting: invalid URL \"http://u:xxxxx@proxy.corp:99999\": port out of range"},
      {"proxy corp", ErrorKind::kInvalidInput,
       "bad proxy setting: invalid URL \"http://proxy corp\": spaces, control characters and "
       "non-ASCII bytes must be %-encoded"},
  };
  for (const auto& c : cases) {
    auto proxy = ProxyFor(U("http://example.com/"), ProxyConfig{c.proxy, "", ""});
    ASSERT_FALSE(proxy.ok()) << c.proxy;
    EXPECT_EQ(proxy.error().kind, c.kind) << c.proxy;
    EXPECT_EQ(proxy.error().code, "http.proxy") << c.proxy;
    EXPECT_EQ(proxy.error().message, c.message) << c.proxy;
  }
}

/// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value) {
        ::setenv(name, value, 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(ProxyTest, ReadsEnvironmentUppercaseFirst) {
  ScopedEnv env({{"HTTP_PROXY", "upper:1"},
                 {"http_proxy", "lower:1"},
                 {"HTTPS_PROXY", ""},
                 {"https_proxy", "lower:2"},
                 {"NO_PROXY", nullptr},
                 {"no_proxy", "internal.example"}});
  ProxyConfig c = ProxyConfigFromEnv();
  EXPECT_EQ(c.http_proxy, "upper:1");
  EXPECT_EQ(c.https_proxy, "lower:2");
  EXPECT_EQ(c.no_proxy, "internal.example");
}

}  // namespace
}  // namespace manifold::http
