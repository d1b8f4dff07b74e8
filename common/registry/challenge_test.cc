#include "common/registry/challenge.h"

#include <gtest/gtest.h>

namespace manifold::registry {
namespace {

TEST(ChallengeTest, BearerWithQuotedParams) {
  auto c = ParseChallenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params.at("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].params.at("service"), "registry.docker.io");
  EXPECT_EQ(c[0].params.at("scope"), "repository:library/busybox:pull");
}

TEST(ChallengeTest, SeveralChallengesAndSpacing) {
  auto c = ParseChallenges(R"(Basic realm="Registry Realm", BEARER Realm = "https://a/t" , service=reg)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params.at("realm"), "Registry Realm");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].params.at("realm"), "https://a/t");
  EXPECT_EQ(c[1].params.at("service"), "reg");
}

TEST(ChallengeTest, EscapesAndSchemeWithoutParams) {
  auto c = ParseChallenges(R"(Basic, Bearer realm="a\"b")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(c[0].params.empty());
  EXPECT_EQ(c[1].params.at("realm"), "a\"b");
}

TEST(ChallengeTest, GarbageIsNotFatal) {
  EXPECT_TRUE(ParseChallenges("").empty());
  EXPECT_TRUE(ParseChallenges(" , ,").empty());
  auto c = ParseChallenges("=== junk, Bearer realm=\"x\"");
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c.back().scheme, "bearer");
}

}  // namespace
}  // namespace manifold::registry
