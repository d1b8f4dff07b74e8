#include "common/oci/media_types.h"

#include <gtest/gtest.h>

namespace manifold::oci {
namespace {

TEST(MediaTypesTest, ClassifiesDocuments) {
  EXPECT_TRUE(IsIndex("application/vnd.oci.image.index.v1+json"));
  EXPECT_TRUE(IsIndex("application/vnd.docker.distribution.manifest.list.v2+json"));
  EXPECT_FALSE(IsIndex(kOciImageManifest));
  EXPECT_TRUE(IsManifest("application/vnd.oci.image.manifest.v1+json"));
  EXPECT_TRUE(IsManifest("application/vnd.docker.distribution.manifest.v2+json"));
  EXPECT_FALSE(IsManifest(kDockerSchema1Manifest));
  EXPECT_FALSE(IsManifest(kOciImageIndex));
  EXPECT_TRUE(IsImageConfig("application/vnd.oci.image.config.v1+json"));
  EXPECT_TRUE(IsImageConfig("application/vnd.docker.container.image.v1+json"));
  EXPECT_FALSE(IsImageConfig(kOciEmptyJson));
  EXPECT_TRUE(IsDockerSchema1("application/vnd.docker.distribution.manifest.v1+json"));
  EXPECT_TRUE(IsDockerSchema1("application/vnd.docker.distribution.manifest.v1+prettyjws"));
  EXPECT_FALSE(IsDockerSchema1(kDockerManifest));
  EXPECT_FALSE(IsIndex("application/vnd.oci.image.index.v1+json; charset=utf-8"));
}

TEST(MediaTypesTest, ClassifiesLayers) {
  for (std::string_view mt : {"application/vnd.oci.image.layer.v1.tar",
                              "application/vnd.oci.image.layer.v1.tar+gzip",
                              "application/vnd.oci.image.layer.v1.tar+zstd",
                              "application/vnd.oci.image.layer.nondistributable.v1.tar",
                              "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                              "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                              "application/vnd.docker.image.rootfs.diff.tar.gzip",
                              "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"})
    EXPECT_TRUE(IsLayer(mt)) << mt;
  for (std::string_view mt : {"application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                              "application/vnd.oci.image.config.v1+json",
                              "application/vnd.cncf.helm.chart.content.v1.tar+gzip", ""})
    EXPECT_FALSE(IsLayer(mt)) << mt;
  EXPECT_TRUE(IsNondistributableLayer(kDockerForeignLayerGzip));
  EXPECT_FALSE(IsNondistributableLayer(kOciLayerGzip));
  static_assert(IsIndex(kOciImageIndex));  // usable at compile time
}

}  // namespace
}  // namespace manifold::oci
