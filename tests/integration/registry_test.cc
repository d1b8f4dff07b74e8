// Manifold against a real registry (Debian's docker-registry) in three
// setups: open, Basic auth over TLS, token auth. skopeo is the independent
// client that checks what we push and makes what we pull.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/integration/registry_fixture.h"
#include "tests/integration/tree_compare.h"

namespace manifold::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/state";
    setenv("MANIFOLD_ROOT", root_.c_str(), 1);
    setenv("DOCKER_CONFIG", (tmp_.path() + "/docker").c_str(), 1);
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  }

  std::string Sh(const std::string& cmd, int want = 0) {
    std::string out;
    int rc = RunCommand(cmd, &out);
    EXPECT_EQ(rc, want) << cmd << "\n" << out;
    return out;
  }

  std::string Manifold(const std::string& args, int want = 0) {
    return Sh(std::string(MF_MANIFOLD_BIN) + " " + args, want);
  }

  /// A two-platform busybox index as an OCI archive, made by manifold.
  std::string BusyboxArchive() {
    for (const char* arch : {"amd64", "arm64"}) {
      std::string d = tmp_.path() + "/bb-" + arch;
      Sh("bash tests/testdata/busybox-rootfs.sh " + std::string(arch) + " " + d);
      Manifold("import --platform linux/" + std::string(arch) + " -t busybox " + d);
    }
    std::string archive = tmp_.path() + "/bb.tar";
    Manifold("export busybox -o " + archive);
    return archive;
  }

  /// skopeo flags for `reg` as copy destination (d), copy source (s) or
  /// for inspect (i).
  static std::string SkopeoFlags(const TestRegistry& reg, char side) {
    std::string p = side == 'd' ? "--dest-" : side == 's' ? "--src-" : "--";
    switch (reg.mode()) {
      case TestRegistry::Mode::kOpen:
        return p + "tls-verify=false";
      case TestRegistry::Mode::kBasicTls:
        return p + "cert-dir=" + reg.certs_dir() + "/" + reg.host() + " " + p + "creds=" +
               TestRegistry::kUser + ":" + TestRegistry::kPassword;
      case TestRegistry::Mode::kToken:
        return p + "tls-verify=false " + p + "creds=" + TestRegistry::kUser + ":" +
               TestRegistry::kPassword;
    }
    return "";
  }

  TempDir tmp_;
  std::string root_;
};

TEST_F(RegistryTest, TheThreeSetupsServeSkopeo) {
  std::string archive = BusyboxArchive();
  for (auto mode : {TestRegistry::Mode::kOpen, TestRegistry::Mode::kBasicTls,
                    TestRegistry::Mode::kToken}) {
    std::string dir = tmp_.path() + "/reg-" + std::to_string(static_cast<int>(mode));
    fs::create_directories(dir);
    auto reg = TestRegistry::Start(mode, dir);
    ASSERT_NE(reg, nullptr);
    std::string ref = "docker://" + reg->host() + "/mf/busybox:1";
    Sh("skopeo copy -q --all " + SkopeoFlags(*reg, 'd') + " oci-archive:" + archive + " " + ref);
    json raw = json::parse(Sh("skopeo inspect --raw " + SkopeoFlags(*reg, 'i') + " " + ref + " 2>/dev/null"));
    EXPECT_EQ(raw["manifests"].size(), 2u) << raw.dump();
    EXPECT_GE(reg->CountRequests("PUT", "/v2/mf/busybox/manifests/"), 3) << reg->Log();
    if (mode != TestRegistry::Mode::kOpen) {
      // Without credentials: refused.
      std::string anon = mode == TestRegistry::Mode::kBasicTls
                             ? "--cert-dir=" + reg->certs_dir() + "/" + reg->host()
                             : "--tls-verify=false";
      Sh("skopeo inspect --raw " + anon + " " + ref + " 2>&1", 1);
    }
    if (mode == TestRegistry::Mode::kToken) EXPECT_GE(reg->TokensIssued(), 1);
  }
}

}  // namespace
}  // namespace manifold::testing
