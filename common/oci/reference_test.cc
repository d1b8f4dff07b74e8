#include "common/oci/reference.h"

#include <gtest/gtest.h>

namespace manifold::oci {
namespace {

const std::string kHex(64, 'a');
const std::string kDigest = "sha256:" + kHex;

TEST(ReferenceTest, NormalisesLikeDockerDistribution) {
  struct Case {
    std::string in, domain, path, tag, digest, full, familiar, host;
  } cases[] = {
      {"busybox", "docker.io", "library/busybox", "latest", "",
       "docker.io/library/busybox:latest", "busybox:latest", "registry-1.docker.io"},
      {"busybox:1.36", "docker.io", "library/busybox", "1.36", "",
       "docker.io/library/busybox:1.36", "busybox:1.36", "registry-1.docker.io"},
      {"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest",
       "user/app:latest", "registry-1.docker.io"},
      {"docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", "",
       "docker.io/library/ubuntu:latest", "ubuntu:latest", "registry-1.docker.io"},
      {"index.docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "",
       "docker.io/library/ubuntu:22.04", "ubuntu:22.04", "registry-1.docker.io"},
      {"docker.io/library/a/b", "docker.io", "library/a/b", "latest", "",
       "docker.io/library/a/b:latest", "library/a/b:latest", "registry-1.docker.io"},
      {"localhost:5000/app:1", "localhost:5000", "app", "1", "", "localhost:5000/app:1",
       "localhost:5000/app:1", "localhost:5000"},
      {"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest",
       "localhost/app:latest", "localhost"},
      {"reg.example.com/a/b@" + kDigest, "reg.example.com", "a/b", "", kDigest,
       "reg.example.com/a/b@" + kDigest, "reg.example.com/a/b@" + kDigest, "reg.example.com"},
      {"busybox:1.36@" + kDigest, "docker.io", "library/busybox", "1.36", kDigest,
       "docker.io/library/busybox:1.36@" + kDigest, "busybox:1.36@" + kDigest,
       "registry-1.docker.io"},
      {"[::1]:5000/x_y__z.w-v--u:V_1.0-rc", "[::1]:5000", "x_y__z.w-v--u", "V_1.0-rc", "",
       "[::1]:5000/x_y__z.w-v--u:V_1.0-rc", "[::1]:5000/x_y__z.w-v--u:V_1.0-rc", "[::1]:5000"},
      {"Example.COM/app", "Example.COM", "app", "latest", "", "Example.COM/app:latest",
       "Example.COM/app:latest", "Example.COM"},
      {"localhost:5000", "docker.io", "library/localhost", "5000", "",
       "docker.io/library/localhost:5000", "localhost:5000", "registry-1.docker.io"},
  };
  for (const auto& c : cases) {
    auto r = ParseReference(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().message;
    EXPECT_EQ(r->domain, c.domain) << c.in;
    EXPECT_EQ(r->path, c.path) << c.in;
    EXPECT_EQ(r->Repository(), c.path) << c.in;
    EXPECT_EQ(r->tag, c.tag) << c.in;
    EXPECT_EQ(r->digest ? r->digest->ToString() : "", c.digest) << c.in;
    EXPECT_EQ(r->String(), c.full) << c.in;
    EXPECT_EQ(r->FamiliarString(), c.familiar) << c.in;
    EXPECT_EQ(r->RegistryHost(), c.host) << c.in;
    auto again = ParseReference(r->String());
    ASSERT_TRUE(again.ok()) << c.full;
    EXPECT_EQ(*again, *r) << c.full;
  }
}

TEST(ReferenceTest, RejectsWithDockerMessages) {
  struct Case {
    std::string in;
    std::string message;
  } cases[] = {
      {"", "invalid reference \"\": repository name must have at least one component"},
      {"Busybox", "invalid reference \"Busybox\": repository name must be lowercase"},
      {"user/App:1", "invalid reference \"user/App:1\": repository name must be lowercase"},
      {"reg.example.com/Team/app",
       "invalid reference \"reg.example.com/Team/app\": repository name must be lowercase"},
      {kHex, "invalid reference \"" + kHex + "\": cannot specify 64-byte hexadecimal strings"},
      {"busybox:", "invalid reference \"busybox:\": invalid tag format"},
      {"busybox:-x", "invalid reference \"busybox:-x\": invalid tag format"},
      {"busybox:" + std::string(129, 't'),
       "invalid reference \"busybox:" + std::string(92, 't') + "...\": invalid tag format"},
      {"a//b", "invalid reference \"a//b\": invalid reference format"},
      {"a/b/", "invalid reference \"a/b/\": invalid reference format"},
      {"-a/b", "invalid reference \"-a/b\": invalid reference format"},
      {"a_-b", "invalid reference \"a_-b\": invalid reference format"},
      {"a___b", "invalid reference \"a___b\": invalid reference format"},
      {"a..b", "invalid reference \"a..b\": invalid reference format"},
      {"a b", "invalid reference \"a b\": invalid reference format"},
      {"reg.example.com/", "invalid reference \"reg.example.com/\": repository name must have "
                           "at least one component"},
      {"reg.example.com:port/a", "invalid reference \"reg.example.com:port/a\": invalid domain"},
      {"-reg.example.com/a", "invalid reference \"-reg.example.com/a\": invalid domain"},
      {"[::1/a", "invalid reference \"[::1/a\": invalid domain"},
      {"a/" + std::string(254, 'b'),
       "invalid reference \"a/" + std::string(98, 'b') +
           "...\": repository name must not be more than 255 characters"},
  };
  for (const auto& c : cases) {
    auto r = ParseReference(c.in);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput) << c.in;
    EXPECT_EQ(r.error().code, "reference.invalid") << c.in;
    EXPECT_EQ(r.error().message, c.message) << c.in;
  }
}

TEST(ReferenceTest, DigestErrorsKeepTheirKindAndCode) {
  auto bad = ParseReference("busybox@sha256:abc");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(bad.error().code, "digest.invalid");
  EXPECT_EQ(bad.error().message,
            "invalid reference \"busybox@sha256:abc\": invalid digest \"sha256:abc\": sha256 "
            "needs 64 lowercase hex characters");
  auto md5 = ParseReference("busybox@md5:0123456789abcdef0123456789abcdef");
  ASSERT_FALSE(md5.ok());
  EXPECT_EQ(md5.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(md5.error().code, "digest.algorithm");
}

}  // namespace
}  // namespace manifold::oci
