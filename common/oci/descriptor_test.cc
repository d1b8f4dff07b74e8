#include "common/oci/descriptor.h"

#include <gtest/gtest.h>

namespace manifold::oci {
namespace {

const std::string kHexA(64, 'a');

TEST(DescriptorTest, CanonicalRoundTripIsByteIdentical) {
  const std::string doc =
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" + kHexA +
      R"(","size":7143,"urls":["https://example.com/blob"],"annotations":{"a":"1","b":"2"},)"
      R"("data":"e30=","platform":{"architecture":"amd64","os":"windows","os.version":)"
      R"("10.0.17763.1040","os.features":["win32k"],"variant":"v2"},)"
      R"("artifactType":"application/vnd.example.sbom"})";
  auto d = ParseDescriptor(doc);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(d->digest.hex, kHexA);
  EXPECT_EQ(d->size, 7143);
  EXPECT_EQ(d->urls, std::vector<std::string>{"https://example.com/blob"});
  EXPECT_EQ(d->annotations.at("b"), "2");
  EXPECT_EQ(d->data, "e30=");
  ASSERT_TRUE(d->platform.has_value());
  EXPECT_EQ(d->platform->ToString(), "windows/amd64/v2");
  EXPECT_EQ(d->platform_os_version, "10.0.17763.1040");
  EXPECT_EQ(d->platform_os_features, std::vector<std::string>{"win32k"});
  EXPECT_EQ(d->artifact_type, "application/vnd.example.sbom");
  EXPECT_EQ(d->ToJson(), doc);
}

TEST(DescriptorTest, WritesFixedKeyOrderAndOmitsEmptyFields) {
  Descriptor d;
  d.annotations["z"] = "last";
  d.annotations["a"] = "first";
  d.size = 2;
  d.digest = Digest::Sha256Of("{}");
  d.media_type = "application/vnd.oci.empty.v1+json";
  EXPECT_EQ(d.ToJson(),
            R"({"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:)"
            R"(44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,)"
            R"("annotations":{"a":"first","z":"last"}})");
}

TEST(DescriptorTest, DescribeBytes) {
  Descriptor d = DescribeBytes("application/vnd.oci.empty.v1+json", "{}");
  EXPECT_EQ(d.digest.ToString(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  EXPECT_EQ(d.size, 2);
}

TEST(DescriptorTest, UnknownFieldsAndMediaTypesAreAccepted) {
  auto d = ParseDescriptor(R"({"mediaType":"application/x-unknown","digest":"sha256:)" + kHexA +
                           R"(","size":1,"future":{"x":[1,2,3]},"platform":{"os":"linux",)"
                           R"("architecture":"arm64","features":["sve"]}})");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->media_type, "application/x-unknown");
  EXPECT_EQ(d->platform->ToString(), "linux/arm64");
}

TEST(DescriptorTest, RejectsBadFieldsWithExactMessages) {
  struct Case {
    std::string doc;
    const char* code;
    const char* message;
  } cases[] = {
      {R"({"size":1})", "oci.invalid", "descriptor: \"digest\" is required"},
      {R"({"digest":"sha256:)" + kHexA + R"("})", "oci.invalid", "descriptor: \"size\" is required"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":-1})", "oci.invalid",
       "descriptor: \"size\" must be a non-negative integer"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":1.5})", "oci.invalid",
       "descriptor: \"size\" must be a non-negative integer"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":9223372036854775808})", "oci.invalid",
       "descriptor: \"size\" must be a non-negative integer"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":"1"})", "oci.invalid",
       "descriptor: \"size\" must be a non-negative integer"},
      {R"({"digest":"sha256:abc","size":1})", "digest.invalid",
       "descriptor: \"digest\": invalid digest \"sha256:abc\": sha256 needs 64 lowercase hex "
       "characters"},
      {R"({"digest":7,"size":1})", "oci.invalid", "descriptor: \"digest\" must be a string"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":1,"annotations":{"k":1}})", "oci.invalid",
       "descriptor: \"annotations.k\" must be a string"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":1,"urls":["a",2]})", "oci.invalid",
       "descriptor: \"urls[1]\" must be a string"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":1,"platform":[]})", "oci.invalid",
       "descriptor: \"platform\" must be an object"},
      {R"({"digest":"sha256:)" + kHexA + R"(","size":1,"platform":{"os":1}})", "oci.invalid",
       "descriptor: \"platform.os\" must be a string"},
  };
  for (const auto& c : cases) {
    auto d = ParseDescriptor(c.doc);
    ASSERT_FALSE(d.ok()) << c.doc;
    EXPECT_EQ(d.error().kind, ErrorKind::kInvalidInput) << c.doc;
    EXPECT_EQ(d.error().code, c.code) << c.doc;
    EXPECT_EQ(d.error().message, c.message) << c.doc;
  }
}

}  // namespace
}  // namespace manifold::oci
