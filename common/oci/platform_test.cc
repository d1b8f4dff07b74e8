#include "common/oci/platform.h"

#include <gtest/gtest.h>

namespace manifold::oci {
namespace {

TEST(PlatformTest, NormalisesArchitectures) {
  struct Case { const char* in; const char* out; } cases[] = {
      {"linux/amd64", "linux/amd64"},   {"linux/x86_64", "linux/amd64"},
      {"linux/aarch64", "linux/arm64"}, {"linux/arm64/v8", "linux/arm64"},
      {"linux/arm64", "linux/arm64"},   {"linux/arm", "linux/arm/v7"},
      {"linux/armhf", "linux/arm/v7"},  {"linux/arm/6", "linux/arm/v6"},
      {"arm64", "linux/arm64"},         {"Linux/AMD64", "linux/amd64"},
      {"linux/riscv64", "linux/riscv64"},
  };
  for (const auto& c : cases) {
    auto p = ParsePlatform(c.in);
    ASSERT_TRUE(p.ok()) << c.in;
    EXPECT_EQ(p->ToString(), c.out) << c.in;
  }
}

TEST(PlatformTest, RejectsMalformed) {
  for (const char* bad : {"", "../", "linux/", "/amd64", "linux/amd64/v8/x", "linux/a b", "linux/.."}) {
    auto p = ParsePlatform(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(p.error().code, "platform.invalid");
  }
  EXPECT_EQ(ParsePlatform("../").error().message, "invalid platform \"../\": bad component \"..\"");
}

TEST(PlatformTest, ParsesListsAndDeduplicates) {
  auto l = ParsePlatformList("linux/amd64,linux/arm64,linux/x86_64");
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[1].ToString(), "linux/arm64");
  EXPECT_FALSE(ParsePlatformList("linux/amd64,").ok());
  std::string many;
  for (int i = 0; i < 100; ++i) many += (i ? ",linux/v" : "linux/v") + std::to_string(i);
  auto m = ParsePlatformList(many);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "platform.too_many");
}

TEST(PlatformTest, NativeIsNormalised) {
  auto n = NativePlatform();
  EXPECT_EQ(n.os, "linux");
  EXPECT_TRUE(n.architecture == "amd64" || n.architecture == "arm64") << n.architecture;
}

}  // namespace
}  // namespace manifold::oci
