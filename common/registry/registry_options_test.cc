#include "common/registry/registry_options.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/cas/testing/temp_dir.h"

namespace manifold::registry {
namespace {

void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

TEST(RegistryOptionsTest, HostOf) {
  EXPECT_EQ(HostOf("reg.example.com:5000"), "reg.example.com");
  EXPECT_EQ(HostOf("Reg.Example.com"), "reg.example.com");
  EXPECT_EQ(HostOf("[::1]:5000"), "::1");
  EXPECT_EQ(HostOf("::1"), "::1");
}

TEST(RegistryOptionsTest, LoopbackIsInsecureAsDockerDoes) {
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.200.3.4"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));

  RegistryOptions o;
  EXPECT_TRUE(IsInsecureRegistry(o, "127.0.0.1:5000"));
  EXPECT_TRUE(IsInsecureRegistry(o, "[::1]:5000"));
  EXPECT_TRUE(IsInsecureRegistry(o, "localhost:5000"));
  EXPECT_FALSE(IsInsecureRegistry(o, "reg.example.com"));
  o.loopback_is_insecure = false;
  EXPECT_FALSE(IsInsecureRegistry(o, "127.0.0.1:5000"));
}

TEST(RegistryOptionsTest, InsecureList) {
  RegistryOptions o;
  o.insecure_registries = {"reg.lab:5000", "10.0.0.7", "http://old.lab:8080/"};
  EXPECT_TRUE(IsInsecureRegistry(o, "reg.lab:5000"));
  EXPECT_FALSE(IsInsecureRegistry(o, "reg.lab:5001"));
  EXPECT_FALSE(IsInsecureRegistry(o, "reg.lab"));
  EXPECT_TRUE(IsInsecureRegistry(o, "10.0.0.7:5000"));  // a bare host covers any port
  EXPECT_TRUE(IsInsecureRegistry(o, "10.0.0.7"));
  EXPECT_TRUE(IsInsecureRegistry(o, "old.lab:8080"));
  EXPECT_FALSE(IsInsecureRegistry(o, "10.0.0.8"));
}

TEST(RegistryOptionsTest, CertsDirFiles) {
  cas::testing::TempDir dir;
  std::string host = dir.path() + "/reg.lab:5000";
  Write(host + "/b.crt", "x");
  Write(host + "/a.crt", "x");
  Write(host + "/client.cert", "x");
  Write(host + "/client.key", "x");
  Write(host + "/README", "x");
  auto files = TlsFilesFor(dir.path(), "reg.lab:5000");
  ASSERT_TRUE(files.ok()) << files.error().ToString();
  EXPECT_EQ(files->ca_files, (std::vector<std::string>{host + "/a.crt", host + "/b.crt"}));
  EXPECT_EQ(files->cert_file, host + "/client.cert");
  EXPECT_EQ(files->key_file, host + "/client.key");

  auto none = TlsFilesFor(dir.path(), "other:1");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->ca_files.empty());
  EXPECT_EQ(none->cert_file, "");

  Write(dir.path() + "/bad/lonely.cert", "x");
  auto bad = TlsFilesFor(dir.path(), "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "registry.certs");
  EXPECT_EQ(bad.error().message,
            "missing key lonely.key for client certificate " + dir.path() + "/bad/lonely.cert");
}

TEST(RegistryOptionsTest, DaemonJson) {
  cas::testing::TempDir dir;
  RegistryOptions o;
  ASSERT_TRUE(LoadDaemonConfig(dir.path() + "/missing.json", &o).ok());
  Write(dir.path() + "/daemon.json",
        R"({"insecure-registries":["reg.lab:5000"],"registry-mirrors":["https://mirror.lab"],"debug":true})");
  ASSERT_TRUE(LoadDaemonConfig(dir.path() + "/daemon.json", &o).ok());
  EXPECT_EQ(o.insecure_registries, std::vector<std::string>{"reg.lab:5000"});
  EXPECT_EQ(o.mirrors, std::vector<std::string>{"https://mirror.lab"});
  Write(dir.path() + "/bad.json", R"({"registry-mirrors":"https://x"})");
  auto r = LoadDaemonConfig(dir.path() + "/bad.json", &o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "invalid " + dir.path() + "/bad.json: \"registry-mirrors\" is not a list of strings");
}

}  // namespace
}  // namespace manifold::registry
