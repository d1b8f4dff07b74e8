#include "common/oci/digest.h"

#include <gtest/gtest.h>

#include <map>
#include <unordered_set>

namespace manifold::oci {
namespace {

constexpr char kEmptySha256[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, ParsesSha256AndSha512) {
  auto d = ParseDigest(kEmptySha256);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->algorithm, "sha256");
  EXPECT_EQ(d->hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(d->ToString(), kEmptySha256);

  std::string sha512 = "sha512:" + std::string(128, 'a');
  auto e = ParseDigest(sha512);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->algorithm, "sha512");
  EXPECT_EQ(e->ToString(), sha512);
}

TEST(DigestTest, Sha256OfHashesBytes) {
  EXPECT_EQ(Digest::Sha256Of("").ToString(), kEmptySha256);
  EXPECT_EQ(Digest::Sha256Of("abc").ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, RejectsMalformed) {
  struct Case {
    std::string in;
    std::string message;
  } cases[] = {
      {"", "invalid digest \"\": expected <algorithm>:<hex>"},
      {"e3b0c442", "invalid digest \"e3b0c442\": expected <algorithm>:<hex>"},
      {":abc", "invalid digest \":abc\": expected <algorithm>:<hex>"},
      {"sha256:", "invalid digest \"sha256:\": expected <algorithm>:<hex>"},
      {"SHA256:abc", "invalid digest \"SHA256:abc\": expected <algorithm>:<hex>"},
      {"sha256:abc", "invalid digest \"sha256:abc\": sha256 needs 64 lowercase hex characters"},
      {"sha256:" + std::string(64, 'A'),
       "invalid digest \"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\": "
       "sha256 needs 64 lowercase hex characters"},
      {"sha256:" + std::string(63, 'a') + "g",
       "invalid digest \"sha256:" + std::string(63, 'a') +
           "g\": sha256 needs 64 lowercase hex characters"},
      {"sha512:" + std::string(64, 'a'),
       "invalid digest \"sha512:" + std::string(64, 'a') +
           "\": sha512 needs 128 lowercase hex characters"},
      {"sha256:a b", "invalid digest \"sha256:a b\": expected <algorithm>:<hex>"},
  };
  for (const auto& c : cases) {
    auto d = ParseDigest(c.in);
    ASSERT_FALSE(d.ok()) << c.in;
    EXPECT_EQ(d.error().kind, ErrorKind::kInvalidInput) << c.in;
    EXPECT_EQ(d.error().code, "digest.invalid") << c.in;
    EXPECT_EQ(d.error().message, c.message) << c.in;
  }
}

TEST(DigestTest, UnsupportedAlgorithmIsUnimplemented) {
  for (std::string in : {"sha384:" + std::string(96, 'a'), std::string("blake3:abcd"),
                         std::string("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564")}) {
    auto d = ParseDigest(in);
    ASSERT_FALSE(d.ok()) << in;
    EXPECT_EQ(d.error().kind, ErrorKind::kUnimplemented) << in;
    EXPECT_EQ(d.error().code, "digest.algorithm") << in;
  }
  EXPECT_EQ(ParseDigest("blake3:abcd").error().message,
            "unsupported digest algorithm \"blake3\" (supported: sha256, sha512)");
}

TEST(DigestTest, LongHostileInputIsTruncatedAndEscapedInMessages) {
  std::string in = "sha256:\x1b[31m" + std::string(500, 'x');
  auto d = ParseDigest(in);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message,
            "invalid digest \"sha256:\\x1b[31m" + std::string(88, 'x') +
                "...\": expected <algorithm>:<hex>");
}

TEST(DigestTest, ComparableHashableAndUsableAsKeys) {
  Digest a = Digest::Sha256Of("a");
  Digest b = Digest::Sha256Of("b");
  Digest a2 = *ParseDigest(a.ToString());
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  EXPECT_EQ(a < b, a.hex < b.hex);
  EXPECT_EQ(std::hash<Digest>{}(a), std::hash<Digest>{}(a2));
  std::map<Digest, int> ordered{{a, 1}, {b, 2}};
  std::unordered_set<Digest> set{a, b, a2};
  EXPECT_EQ(ordered.at(a2), 1);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(Digest{}.empty());
  EXPECT_EQ(Digest{}.ToString(), "");
}

}  // namespace
}  // namespace manifold::oci
