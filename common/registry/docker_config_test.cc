#include "common/registry/docker_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/cas/testing/temp_dir.h"
#include "common/registry/base64.h"

namespace manifold::registry {
namespace {

using cas::testing::TempDir;

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Base64Test, RoundTrips) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:p@ss:word\xff"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)), s);
  }
  EXPECT_EQ(Base64Encode("alice:s3cret"), "YWxpY2U6czNjcmV0");
  EXPECT_EQ(Base64Decode("not base64!"), std::nullopt);
}

TEST(DockerConfigTest, MissingFileIsEmpty) {
  TempDir dir;
  auto config = DockerConfig::Load(dir.path());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  auto creds = config->Get("docker.io");
  ASSERT_TRUE(creds.ok());
  EXPECT_TRUE(creds->empty());
}

TEST(DockerConfigTest, ReadsAuthsInEveryForm) {
  TempDir dir;
  Write(dir.path() + "/config.json", R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "YWxpY2U6czNjcmV0"},
      "reg.lab:5000": {"username": "bob", "password": "pw"},
      "https://other.lab/v2/": {"auth": "Y2Fyb2w6eA==", "identitytoken": "refresh-me"},
      "tok.lab": {"registrytoken": "bearer-me"}
    },
    "psFormat": "table"
  })");
  auto config = DockerConfig::Load(dir.path());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  auto hub = config->Get("docker.io");
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ(hub->username, "alice");
  EXPECT_EQ(hub->password, "s3cret");
  auto lab = config->Get("reg.lab:5000");
  EXPECT_EQ(lab->username, "bob");
  EXPECT_EQ(lab->password, "pw");
  auto other = config->Get("other.lab");  // found through Docker's key normalisation
  EXPECT_EQ(other->username, "carol");
  EXPECT_EQ(other->identity_token, "refresh-me");
  EXPECT_EQ(config->Get("tok.lab")->registry_token, "bearer-me");
  EXPECT_TRUE(config->Get("reg.lab:5001")->empty());
}

TEST(DockerConfigTest, BadFilesNameTheFileNotTheSecret) {
  TempDir dir;
  Write(dir.path() + "/config.json", R"({"auths": {"reg": {"auth": "c2VjcmV0LW5vLWNvbG9u"}}})");
  auto config = DockerConfig::Load(dir.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(config.error().code, "registry.config");
  EXPECT_EQ(config.error().message,
            "invalid " + dir.path() +
                "/config.json: auths entry \"reg\" has an \"auth\" field that is not base64 of "
                "user:password");
  EXPECT_EQ(config.error().ToString().find("c2VjcmV0"), std::string::npos);

  Write(dir.path() + "/config.json", "{not json");
  config = DockerConfig::Load(dir.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message, "invalid " + dir.path() + "/config.json: not a JSON object");
}

TEST(DockerConfigTest, LoginAndLogoutRewriteTheFileAtomically) {
  TempDir dir;
  Write(dir.path() + "/config.json",
        R"({"auths":{"index.docker.io":{"auth":"b2xkOm9sZA=="}},"detachKeys":"ctrl-x"})");
  auto config = DockerConfig::Load(dir.path());
  ASSERT_TRUE(config.ok());
  Credentials c;
  c.username = "alice";
  c.password = "s3cret";
  ASSERT_TRUE(config->Store("docker.io", c).ok());
  ASSERT_TRUE(config->Store("reg.lab:5000", Credentials{"bob", "pw", "", ""}).ok());

  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto doc = nlohmann::json::parse(Read(dir.path() + "/config.json"));
  EXPECT_EQ(doc["detachKeys"], "ctrl-x");  // fields we do not own survive
  EXPECT_FALSE(doc["auths"].contains("index.docker.io"));  // one spelling per registry
  EXPECT_EQ(doc["auths"]["https://index.docker.io/v1/"]["auth"], "YWxpY2U6czNjcmV0");
  EXPECT_EQ(doc["auths"]["reg.lab:5000"]["auth"], Base64Encode("bob:pw"));

  auto reloaded = DockerConfig::Load(dir.path());
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->Get("docker.io")->password, "s3cret");
  auto erased = reloaded->Erase("docker.io");
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(*erased);
  EXPECT_FALSE(*reloaded->Erase("docker.io"));
  EXPECT_TRUE(DockerConfig::Load(dir.path())->Get("docker.io")->empty());
  EXPECT_EQ(DockerConfig::Load(dir.path())->Get("reg.lab:5000")->username, "bob");
  // No temp files left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(DockerConfigTest, CredentialHelpersComeFirst) {
  TempDir dir;
  Write(dir.path() + "/config.json", R"({
    "auths": {"reg.lab": {"auth": "ZmlsZTpmaWxl"}},
    "credHelpers": {"reg.lab": "lab"},
    "credsStore": "desktop"
  })");
  std::vector<std::string> calls;
  CredentialHelperRunner runner = [&calls](const std::string& name, const std::string& action,
                                           const std::string& input) -> Expected<HelperOutput> {
    calls.push_back(name + " " + action + " " + input);
    if (name == "lab") return HelperOutput{0, R"({"Username":"helper","Secret":"from-lab"})"};
    if (input == "https://index.docker.io/v1/")
      return HelperOutput{0, R"({"ServerURL":"x","Username":"<token>","Secret":"refresh"})"};
    return HelperOutput{1, "credentials not found in native keychain\n"};
  };
  auto config = DockerConfig::Load(dir.path(), runner);
  ASSERT_TRUE(config.ok());
  auto lab = config->Get("reg.lab");
  ASSERT_TRUE(lab.ok()) << lab.error().ToString();
  EXPECT_EQ(lab->username, "helper");
  EXPECT_EQ(lab->password, "from-lab");
  auto hub = config->Get("docker.io");
  EXPECT_EQ(hub->identity_token, "refresh");
  EXPECT_EQ(hub->username, "");
  EXPECT_TRUE(config->Get("elsewhere:5000")->empty());
  EXPECT_EQ(calls, (std::vector<std::string>{"lab get reg.lab",
                                             "desktop get https://index.docker.io/v1/",
                                             "desktop get elsewhere:5000"}));
}

TEST(DockerConfigTest, RealHelperProcess) {
  TempDir dir;
  std::string helper = dir.path() + "/docker-credential-fake";
  Write(helper,
        "#!/bin/sh\n"
        "read server\n"
        "case \"$1:$server\" in\n"
        "  get:reg.lab) echo '{\"ServerURL\":\"reg.lab\",\"Username\":\"u\",\"Secret\":\"p\"}';;\n"
        "  get:*) echo 'credentials not found in native keychain'; exit 1;;\n"
        "  *) echo 'boom'; exit 3;;\n"
        "esac\n");
  ::chmod(helper.c_str(), 0755);
  std::string path = "/nonexistent:" + dir.path();
  auto out = RunCredentialHelper("fake", "get", "reg.lab\n", path);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->exit_code, 0);
  EXPECT_EQ(out->out, "{\"ServerURL\":\"reg.lab\",\"Username\":\"u\",\"Secret\":\"p\"}\n");

  Write(dir.path() + "/config.json", R"({"credsStore":"fake"})");
  auto config = DockerConfig::Load(
      dir.path(), [path](const std::string& n, const std::string& a, const std::string& i) {
        return RunCredentialHelper(n, a, i, path);
      });
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->Get("reg.lab")->password, "p");
  EXPECT_TRUE(config->Get("other")->empty());
  auto failed = config->Store("reg.lab", Credentials{"u", "p", "", ""});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message,
            "credential helper docker-credential-fake store failed (exit 3): boom");

  auto missing = RunCredentialHelper("absent", "get", "", path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "credential helper docker-credential-absent not found in PATH");
  auto evil = RunCredentialHelper("../x", "get", "", path);
  ASSERT_FALSE(evil.ok());
  EXPECT_EQ(evil.error().message, "invalid credential helper name \"../x\"");
}

}  // namespace
}  // namespace manifold::registry
