#include "common/oci/index.h"

#include <gtest/gtest.h>

namespace manifold::oci {
namespace {

const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');

// Docker's documented manifest list example.
const char kDockerList[] = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 7143,
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "platform": { "architecture": "ppc64le", "os": "linux" }
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 7682,
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "platform": { "architecture": "amd64", "os": "linux", "features": [ "sse4" ] }
    }
  ]
})";

std::string Entry(const std::string& media_type, char hex, const std::string& platform_json) {
  std::string e = R"({"mediaType":")" + media_type + R"(","digest":"sha256:)" +
                  std::string(64, hex) + R"(","size":1)";
  if (!platform_json.empty()) e += R"(,"platform":)" + platform_json;
  return e + "}";
}

ImageIndex MustParse(const std::string& doc) {
  auto index = ParseIndex(doc);
  EXPECT_TRUE(index.ok()) << index.error().message;
  return index.ok() ? *index : ImageIndex{};
}

std::string IndexOf(const std::vector<std::string>& entries) {
  std::string doc = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                    R"("manifests":[)";
  for (std::size_t i = 0; i < entries.size(); ++i) doc += (i ? "," : "") + entries[i];
  return doc + "]}";
}

const std::string kOci(kOciImageManifest);

TEST(IndexTest, CanonicalRoundTripIsByteIdentical) {
  const std::string doc =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" + kHexA +
      R"(","size":7143,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" + kHexB +
      R"(","size":566,"annotations":{"vnd.docker.reference.digest":"sha256:)" + kHexA +
      R"(","vnd.docker.reference.type":"attestation-manifest"},)"
      R"("platform":{"architecture":"unknown","os":"unknown"}}],)"
      R"("annotations":{"org.opencontainers.image.ref.name":"1.0"}})";
  ImageIndex index = MustParse(doc);
  ASSERT_EQ(index.manifests.size(), 2u);
  EXPECT_EQ(index.manifests[0].platform->variant, "v8");
  EXPECT_EQ(index.ToJson(), doc);
  EXPECT_EQ(Digest::Sha256Of(index.ToJson()), Digest::Sha256Of(MustParse(doc).ToJson()));
}

TEST(IndexTest, ParsesDockerManifestList) {
  ImageIndex index = MustParse(kDockerList);
  EXPECT_EQ(index.media_type, kDockerManifestList);
  ASSERT_EQ(index.manifests.size(), 2u);
  EXPECT_EQ(index.manifests[0].platform->ToString(), "linux/ppc64le");
  EXPECT_EQ(index.manifests[1].size, 7682);
  auto amd64 = SelectManifest(index, *ParsePlatform("linux/amd64"));
  ASSERT_TRUE(amd64.ok()) << amd64.error().message;
  EXPECT_EQ(amd64->digest.ToString(),
            "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270");
}

TEST(IndexTest, UnknownFieldsMediaTypesAndArtifactTypesDoNotFail) {
  std::string doc = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                    R"("artifactType":"application/vnd.example.unknown","manifests":[)" +
                    Entry("application/vnd.example.never-heard-of-it", 'a', "") + "," +
                    R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":)"
                    R"("sha256:)" + kHexB +
                    R"(","size":5,"artifactType":"application/vnd.example.signature",)"
                    R"("x-future":[{"deep":{"er":1}}]}],"x-top-level":42})";
  ImageIndex index = MustParse(doc);
  EXPECT_EQ(index.artifact_type, "application/vnd.example.unknown");
  ASSERT_EQ(index.manifests.size(), 2u);
  EXPECT_EQ(index.manifests[0].media_type, "application/vnd.example.never-heard-of-it");
  EXPECT_EQ(index.manifests[1].artifact_type, "application/vnd.example.signature");
  // An index without "mediaType" and an unknown top-level one are accepted too.
  EXPECT_TRUE(ParseIndex(R"({"schemaVersion":2,"manifests":[]})").ok());
  EXPECT_TRUE(ParseIndex(R"({"schemaVersion":2,"mediaType":"application/x-odd","manifests":[]})")
                  .ok());
}

TEST(IndexTest, SameLimitsAndAmbiguityRulesAsManifests) {
  std::string big = R"({"schemaVersion":2,"manifests":[],"annotations":{"p":")" +
                    std::string(5 << 20, 'x') + "\"}}";
  auto too_large = ParseIndex(big);
  ASSERT_FALSE(too_large.ok());
  EXPECT_EQ(too_large.error().code, "oci.too_large");
  EXPECT_EQ(too_large.error().message,
            "image index is " + std::to_string(big.size()) +
                " bytes, over the 4 MiB (4194304 bytes) limit");

  auto ambiguous = ParseIndex(R"({"schemaVersion":2,"manifests":[],"config":{}})");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(ambiguous.error().code, "oci.ambiguous");
  EXPECT_EQ(ambiguous.error().message,
            "image index is ambiguous: it has both \"manifests\" and \"layers\" or \"config\" "
            "(CVE-2021-41190)");

  auto schema1 = ParseIndex(R"({"schemaVersion":1,"fsLayers":[]})");
  ASSERT_FALSE(schema1.ok());
  EXPECT_EQ(schema1.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(schema1.error().code, "oci.schema1");
}

TEST(IndexTest, RejectsManifestsAndMalformedIndexes) {
  struct Case {
    std::string doc;
    const char* code;
    const char* message;
  } cases[] = {
      {R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"})",
       "oci.media_type",
       "expected an image index, got media type "
       "\"application/vnd.docker.distribution.manifest.v2+json\""},
      {R"({"schemaVersion":2,"config":{},"layers":[]})", "oci.media_type",
       "expected an image index, got an image manifest"},
      {R"({"schemaVersion":2})", "oci.invalid", "image index: \"manifests\" is required"},
      {R"({"schemaVersion":2,"manifests":{}})", "oci.invalid",
       "image index: \"manifests\" must be an array"},
      {R"({"schemaVersion":2,"manifests":[7]})", "oci.invalid",
       "image index: \"manifests[0]\" must be an object"},
      {R"({"manifests":[]})", "oci.invalid", "image index: \"schemaVersion\" is required"},
      {R"({"schemaVersion":2,"manifests":[)" + Entry(kOci, 'a', "") + "," +
           Entry(kOci, 'b', R"({"os":"linux","architecture":5})") + "]}",
       "oci.invalid", "image index: \"manifests[1].platform.architecture\" must be a string"},
  };
  for (const auto& c : cases) {
    auto index = ParseIndex(c.doc);
    ASSERT_FALSE(index.ok()) << c.doc;
    EXPECT_EQ(index.error().kind, ErrorKind::kInvalidInput) << c.doc;
    EXPECT_EQ(index.error().code, c.code) << c.doc;
    EXPECT_EQ(index.error().message, c.message) << c.doc;
  }
}

TEST(IndexTest, PlatformMatchingNormalises) {
  auto p = [](const char* s) { return *ParsePlatform(s); };
  EXPECT_TRUE(PlatformMatches(p("linux/arm64"), Platform{"linux", "arm64", "v8"}));
  EXPECT_TRUE(PlatformMatches(p("linux/arm64/v8"), Platform{"linux", "aarch64", ""}));
  EXPECT_TRUE(PlatformMatches(p("linux/arm"), Platform{"linux", "arm", "v7"}));
  EXPECT_TRUE(PlatformMatches(p("linux/arm/v7"), Platform{"linux", "arm", "v6"}));
  EXPECT_FALSE(PlatformMatches(p("linux/arm/v6"), Platform{"linux", "arm", "v7"}));
  EXPECT_TRUE(PlatformMatches(p("linux/amd64/v3"), Platform{"linux", "amd64", ""}));
  EXPECT_FALSE(PlatformMatches(p("linux/amd64"), Platform{"linux", "amd64", "v3"}));
  EXPECT_TRUE(PlatformMatches(p("linux/amd64"), Platform{"linux", "x86_64", ""}));
  EXPECT_FALSE(PlatformMatches(p("linux/amd64"), Platform{"windows", "amd64", ""}));
  EXPECT_FALSE(PlatformMatches(p("linux/arm64"), Platform{"linux", "arm", "v8"}));
  EXPECT_FALSE(PlatformMatches(p("linux/amd64"), Platform{"unknown", "unknown", ""}));
  EXPECT_FALSE(PlatformMatches(p("linux/amd64"), Platform{"linux", "", ""}));
}

TEST(IndexTest, SelectsManifestForPlatform) {
  ImageIndex index = MustParse(IndexOf({
      Entry("application/vnd.in-toto+json", '0', R"({"os":"linux","architecture":"amd64"})"),
      Entry(kOci, '1', R"({"os":"linux","architecture":"amd64"})"),
      Entry(kOci, '2', R"({"os":"linux","architecture":"arm64","variant":"v8"})"),
      Entry(kOci, '3', R"({"os":"linux","architecture":"arm","variant":"v6"})"),
      Entry(kOci, '4', R"({"os":"linux","architecture":"arm","variant":"v7"})"),
      Entry(kOci, '5', R"({"os":"unknown","architecture":"unknown"})"),
      Entry(kOci, '6', ""),
      Entry(kOci, '7', R"({"os":"linux","architecture":"amd64","variant":"v2"})"),
      Entry(kOci, '8', R"({"os":"windows","architecture":"amd64","os.version":"10.0.20348.1"})"),
  }));
  auto pick = [&index](const char* platform) -> std::string {
    auto d = SelectManifest(index, *ParsePlatform(platform));
    return d.ok() ? std::string(1, d->digest.hex[0]) : d.error().message;
  };
  EXPECT_EQ(pick("linux/amd64"), "1");  // first exact match; the attestation is not a manifest
  EXPECT_EQ(pick("linux/arm64"), "2");
  EXPECT_EQ(pick("linux/arm64/v8"), "2");
  EXPECT_EQ(pick("linux/aarch64"), "2");
  EXPECT_EQ(pick("linux/arm/v7"), "4");
  EXPECT_EQ(pick("linux/arm"), "4");
  EXPECT_EQ(pick("linux/arm/v6"), "3");
  EXPECT_EQ(pick("linux/amd64/v2"), "7");
  EXPECT_EQ(pick("linux/amd64/v3"), "7");  // newest compatible variant
  EXPECT_EQ(pick("windows/amd64"), "8");
  EXPECT_EQ(index.manifests[8].platform_os_version, "10.0.20348.1");
  EXPECT_EQ(pick("linux/riscv64"),
            "no manifest for platform linux/riscv64 in the image index (available: linux/amd64, "
            "linux/arm64, linux/arm/v6, linux/arm/v7, unknown/unknown, linux/amd64/v2, windows/amd64)");

  ImageIndex only_v6 =
      MustParse(IndexOf({Entry(kOci, 'c', R"({"os":"linux","architecture":"arm","variant":"v6"})")}));
  auto v7 = SelectManifest(only_v6, *ParsePlatform("linux/arm/v7"));
  ASSERT_TRUE(v7.ok());
  EXPECT_EQ(v7->digest.hex[0], 'c');

  auto none = SelectManifest(ImageIndex{}, *ParsePlatform("linux/amd64"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(none.error().code, "oci.no_platform");
  EXPECT_EQ(none.error().message,
            "no manifest for platform linux/amd64 in the image index (it lists no platform "
            "manifests)");
}

}  // namespace
}  // namespace manifold::oci
