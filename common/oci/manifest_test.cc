#include "common/oci/manifest.h"

#include <gtest/gtest.h>

#include "common/oci/index.h"

namespace manifold::oci {
namespace {

const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');

const std::string kCanonicalOci =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
    R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
    kHexA +
    R"(","size":7023},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",)"
    R"("digest":"sha256:)" +
    kHexB + R"(","size":32654}],"annotations":{"com.example.key1":"value1"}})";

// Docker's documented example, as a registry serves it (indented, size before digest).
const char kDockerV2s2[] = R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 7023,
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 32654,
            "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"
        },
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 16724,
            "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"
        }
    ]
})";

const char kSchema1[] = R"({
   "name": "hello-world", "tag": "latest", "architecture": "amd64",
   "fsLayers": [{"blobSum": "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}],
   "history": [{"v1Compatibility": "{}"}],
   "schemaVersion": 1,
   "signatures": []
})";

void ExpectError(const Expected<ImageManifest>& m, ErrorKind kind, const std::string& code,
                 const std::string& message) {
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, kind);
  EXPECT_EQ(m.error().code, code);
  EXPECT_EQ(m.error().message, message);
}

// A document of exactly `size` bytes: padding goes into an annotation.
std::string PaddedManifest(std::size_t size) {
  std::string head = R"({"schemaVersion":2,"config":{"digest":"sha256:)" + kHexA +
                     R"(","size":1},"annotations":{"pad":")";
  std::string tail = "\"}}";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

TEST(ManifestTest, CanonicalRoundTripIsByteIdentical) {
  auto m = ParseManifest(kCanonicalOci);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->schema_version, 2);
  EXPECT_EQ(m->media_type, kOciImageManifest);
  EXPECT_EQ(m->config.size, 7023);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].digest.hex, kHexB);
  EXPECT_EQ(m->ToJson(), kCanonicalOci);
  auto again = ParseManifest(m->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *m);
}

TEST(ManifestTest, SameManifestWrittenTwiceHasTheSameDigest) {
  auto build = [](bool reverse) {
    ImageManifest m;
    m.config = DescribeBytes(std::string(kOciImageConfig), "{\"architecture\":\"amd64\"}");
    m.layers.push_back(DescribeBytes(std::string(kOciLayerGzip), "layer"));
    if (reverse) {
      m.annotations["org.opencontainers.image.title"] = "t";
      m.annotations["org.opencontainers.image.created"] = "2024-01-01T00:00:00Z";
    } else {
      m.annotations["org.opencontainers.image.created"] = "2024-01-01T00:00:00Z";
      m.annotations["org.opencontainers.image.title"] = "t";
    }
    return m;
  };
  std::string first = build(false).ToJson();
  EXPECT_EQ(first, build(true).ToJson());
  EXPECT_EQ(Digest::Sha256Of(first), Digest::Sha256Of(build(false).ToJson()));
  EXPECT_EQ(first,
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
            R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                Digest::Sha256Of("{\"architecture\":\"amd64\"}").ToString() +
                R"(","size":24},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",)"
                R"("digest":")" +
                Digest::Sha256Of("layer").ToString() +
                R"(","size":5}],"annotations":{"org.opencontainers.image.created":)"
                R"("2024-01-01T00:00:00Z","org.opencontainers.image.title":"t"}})");
}

TEST(ManifestTest, ParsesDockerSchema2) {
  auto m = ParseManifest(kDockerV2s2);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->media_type, kDockerManifest);
  EXPECT_EQ(m->config.media_type, kDockerConfig);
  EXPECT_EQ(m->config.digest.ToString(),
            "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7");
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].size, 16724);
  EXPECT_TRUE(IsLayer(m->layers[1].media_type));
  // Written back with its Docker media types, canonical key order, no whitespace.
  EXPECT_EQ(m->ToJson().find(R"({"schemaVersion":2,"mediaType":"application/vnd.docker.)"
                             R"(distribution.manifest.v2+json","config":{"mediaType":)"),
            0u);
}

TEST(ManifestTest, RejectsFiveMebibytesNamingTheLimit) {
  ExpectError(ParseManifest(PaddedManifest(5 << 20)), ErrorKind::kInvalidInput, "oci.too_large",
              "manifest is 5242880 bytes, over the 4 MiB (4194304 bytes) limit");
  auto at_limit = ParseManifest(PaddedManifest(kMaxManifestBytes));
  EXPECT_TRUE(at_limit.ok()) << at_limit.error().message;
  ExpectError(ParseManifest(PaddedManifest(kMaxManifestBytes + 1)), ErrorKind::kInvalidInput,
              "oci.too_large", "manifest is 4194305 bytes, over the 4 MiB (4194304 bytes) limit");
}

TEST(ManifestTest, RejectsAmbiguousDocument) {
  std::string doc = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                    R"("config":{"digest":"sha256:)" +
                    kHexA + R"(","size":1},"layers":[],"manifests":[]})";
  ExpectError(ParseManifest(doc), ErrorKind::kInvalidInput, "oci.ambiguous",
              "manifest is ambiguous: it has both \"manifests\" and \"layers\" or \"config\" "
              "(CVE-2021-41190)");
  std::string layers_only = R"({"schemaVersion":2,"layers":[],"manifests":[]})";
  EXPECT_EQ(ParseManifest(layers_only).error().code, "oci.ambiguous");
}

TEST(ManifestTest, RejectsSchema1WithGuidance) {
  const std::string guidance =
      "Docker schema1 manifests are not supported: rebuild the image and push it as Docker "
      "schema2 or OCI";
  ExpectError(ParseManifest(kSchema1), ErrorKind::kUnimplemented, "oci.schema1", guidance);
  ExpectError(ParseManifest(R"({"schemaVersion":2,"mediaType":)"
                            R"("application/vnd.docker.distribution.manifest.v1+prettyjws"})"),
              ErrorKind::kUnimplemented, "oci.schema1", guidance);
}

TEST(ManifestTest, RejectsAnIndex) {
  ExpectError(ParseManifest(R"({"schemaVersion":2,"mediaType":)"
                            R"("application/vnd.oci.image.index.v1+json","manifests":[]})"),
              ErrorKind::kInvalidInput, "oci.media_type",
              "expected an image manifest, got media type "
              "\"application/vnd.oci.image.index.v1+json\"");
  ExpectError(ParseManifest(R"({"schemaVersion":2,"manifests":[]})"), ErrorKind::kInvalidInput,
              "oci.media_type", "expected an image manifest, got an image index");
}

TEST(ManifestTest, UnknownFieldsAndArtifactTypesDoNotFail) {
  std::string doc = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                    R"("artifactType":"application/vnd.example.sbom.v1","config":{"mediaType":)"
                    R"("application/vnd.oci.empty.v1+json","digest":"sha256:)" +
                    kHexA +
                    R"(","size":2},"layers":[{"mediaType":"application/vnd.example.thing",)"
                    R"("digest":"sha256:)" +
                    kHexB +
                    R"(","size":9,"future":true}],"subject":{"mediaType":)"
                    R"("application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                    kHexA + R"(","size":3},"x-vendor":{"nested":[1,{"a":null}]}})";
  auto m = ParseManifest(doc);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->artifact_type, "application/vnd.example.sbom.v1");
  EXPECT_EQ(m->layers[0].media_type, "application/vnd.example.thing");
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->size, 3);
  auto again = ParseManifest(m->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToJson(), m->ToJson());
}

TEST(ManifestTest, RejectsMalformedDocuments) {
  const std::string config = R"("config":{"digest":"sha256:)" + kHexA + R"(","size":1})";
  ExpectError(ParseManifest(""), ErrorKind::kInvalidInput, "oci.invalid_json",
              "manifest is not valid JSON (error at byte 1)");
  ExpectError(ParseManifest("{\"schemaVersion\":2,"), ErrorKind::kInvalidInput,
              "oci.invalid_json", "manifest is not valid JSON (error at byte 20)");
  ExpectError(ParseManifest("[]"), ErrorKind::kInvalidInput, "oci.invalid_json",
              "manifest is not a JSON object");
  ExpectError(ParseManifest("{\"a\":\"\xff\"}"), ErrorKind::kInvalidInput, "oci.invalid_json",
              "manifest is not valid JSON (error at byte 7)");
  ExpectError(ParseManifest(R"({"schemaVersion":2,"schemaVersion":2,)" + config + "}"),
              ErrorKind::kInvalidInput, "oci.duplicate_key",
              "manifest has duplicate key \"schemaVersion\"");
  ExpectError(ParseManifest(R"({"schemaVersion":2,"config":{"size":1,"size":2}})"),
              ErrorKind::kInvalidInput, "oci.duplicate_key", "manifest has duplicate key \"size\"");
  ExpectError(ParseManifest(std::string(1000, '[') + std::string(1000, ']')),
              ErrorKind::kInvalidInput, "oci.too_deep", "manifest nests deeper than 32 levels");
  ExpectError(ParseManifest("{" + config + "}"), ErrorKind::kInvalidInput, "oci.invalid",
              "manifest: \"schemaVersion\" is required");
  ExpectError(ParseManifest(R"({"schemaVersion":3,)" + config + "}"), ErrorKind::kInvalidInput,
              "oci.invalid", "manifest: \"schemaVersion\" must be 2");
  ExpectError(ParseManifest(R"({"schemaVersion":2})"), ErrorKind::kInvalidInput, "oci.invalid",
              "manifest: \"config\" is required");
  ExpectError(ParseManifest(R"({"schemaVersion":2,)" + config + R"(,"layers":{}})"),
              ErrorKind::kInvalidInput, "oci.invalid", "manifest: \"layers\" must be an array");
  ExpectError(ParseManifest(R"({"schemaVersion":2,)" + config + R"(,"layers":[{"digest":"sha256:)" +
                            kHexA + R"(","size":1},{"digest":"sha256:)" + kHexA + R"("}]})"),
              ErrorKind::kInvalidInput, "oci.invalid", "manifest: \"layers[1].size\" is required");
  ExpectError(ParseManifest(R"({"schemaVersion":2,"config":{"digest":"md5:abc","size":1}})"),
              ErrorKind::kUnimplemented, "digest.algorithm",
              "manifest: \"config.digest\": unsupported digest algorithm \"md5\" (supported: "
              "sha256, sha512)");
}

TEST(ManifestTest, DeepButLegalNestingInStringsIsNotCounted) {
  std::string doc = R"({"schemaVersion":2,"config":{"digest":"sha256:)" + kHexA +
                    R"(","size":1},"annotations":{"k":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"[["}})";
  auto m = ParseManifest(doc);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->annotations.at("k"), std::string(36, '[') + "\"[[");
}

}  // namespace
}  // namespace manifold::oci
