#include "common/layer/layer_writer.h"

#include <gtest/gtest.h>

#include <string>

#include "common/crypto/sha256.h"
#include "common/layer/diff_test_util.h"

namespace manifold::layer {
namespace {

using testutil::BuildSampleTree;
using testutil::RunShell;
using testutil::SetAllMtimes;
using testutil::TempDir;
using testutil::WriteFile;

struct Layer {
  LayerInfo info;
  std::string bytes;
};

Layer Make(const std::string& dir, Compression c, const DiffOptions& options = {}) {
  StringSink sink;
  auto info = WriteLayer(dir, sink, c, options);
  EXPECT_TRUE(info.ok()) << info.error().ToString();
  if (!info.ok()) return {};
  return {*info, sink.data()};
}

TEST(LayerWriterTest, UncompressedLayerDigestIsItsDiffId) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  Layer tar = Make(dir.path(), Compression::kNone);
  EXPECT_EQ(tar.info.media_type, "application/vnd.oci.image.layer.v1.tar");
  EXPECT_EQ(tar.info.diff_id, "sha256:" + crypto::Sha256Hex(tar.bytes));
  EXPECT_EQ(tar.info.digest, tar.info.diff_id);
  EXPECT_EQ(tar.info.size, tar.bytes.size());
  EXPECT_EQ(tar.info.uncompressed_size, tar.bytes.size());
  EXPECT_EQ(tar.info.stats.entries, 12u);
}

TEST(LayerWriterTest, GzipLayerDecompressesWithGzip) {
  TempDir dir, work;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  // Enough data to span several compression blocks.
  std::string big;
  for (int i = 0; i < 40000; ++i) big += "line " + std::to_string(i) + "\n";
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / "big.txt", big));
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(dir.path(), 1600000000));

  Layer tar = Make(dir.path(), Compression::kNone);
  Layer gz = Make(dir.path(), Compression::kGzip);
  EXPECT_EQ(gz.info.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(gz.info.diff_id, tar.info.diff_id);
  EXPECT_EQ(gz.info.uncompressed_size, tar.bytes.size());
  EXPECT_EQ(gz.info.digest, "sha256:" + crypto::Sha256Hex(gz.bytes));
  EXPECT_EQ(gz.info.size, gz.bytes.size());
  EXPECT_LT(gz.info.size, gz.info.uncompressed_size);
  EXPECT_EQ(Make(dir.path(), Compression::kGzip).bytes, gz.bytes);

  ASSERT_NO_FATAL_FAILURE(WriteFile(work / "layer.tar.gz", gz.bytes));
  int status = 0;
  std::string out = RunShell("gzip -dc " + (work / "layer.tar.gz"), &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(out == tar.bytes) << "gzip -dc output differs (" << out.size() << " vs "
                                << tar.bytes.size() << " bytes)";
}

TEST(LayerWriterTest, ZstdLayerDecompressesWithZstd) {
  TempDir dir, work;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  Layer tar = Make(dir.path(), Compression::kNone);
  Layer zst = Make(dir.path(), Compression::kZstd);
  EXPECT_EQ(zst.info.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(zst.info.diff_id, tar.info.diff_id);
  EXPECT_EQ(zst.info.digest, "sha256:" + crypto::Sha256Hex(zst.bytes));

  ASSERT_NO_FATAL_FAILURE(WriteFile(work / "layer.tar.zst", zst.bytes));
  int status = 0;
  std::string out = RunShell("zstd -dcq " + (work / "layer.tar.zst") + " 2>/dev/null", &status);
  if (status == 127 * 256) GTEST_SKIP() << "no zstd command";
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(out == tar.bytes);
}

TEST(LayerWriterTest, ErrorsCarryThroughThePipeline) {
  StringSink sink;
  auto missing = WriteLayer(std::string("/nonexistent/manifold"), sink, Compression::kGzip, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "layer.diff.io");

  TempDir dir;
  CompressOptions bad;
  bad.gzip_level = 9;
  auto level = WriteLayer(dir.path(), sink, Compression::kGzip, {}, bad);
  ASSERT_FALSE(level.ok());
  EXPECT_EQ(level.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(level.error().code, "layer.compress.level");
  EXPECT_TRUE(sink.data().empty());
}

}  // namespace
}  // namespace manifold::layer
