#include "common/image/image_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/image/import.h"
#include "common/image/layer_index.h"
#include "common/image/unpack.h"

namespace manifold::image {
namespace {

namespace stdfs = std::filesystem;

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/manifold-image-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto s = ImageStore::Open(dir_ + "/state");
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    store_ = std::move(*s);
    tree_ = dir_ + "/tree";
    stdfs::create_directories(tree_ + "/etc");
    std::ofstream(tree_ + "/etc/hello") << "hello\n";
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  ImportResult MustImport(const std::string& name, const std::string& platform) {
    ImportOptions opts;
    opts.platform = *oci::ParsePlatform(platform);
    opts.source_date_epoch = 1700000000;
    auto r = Import(*store_, tree_, name, opts);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : ImportResult{};
  }

  std::string dir_, tree_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, NamesAreNormalised) {
  EXPECT_EQ(*ImageStore::NormalizeName("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(*ImageStore::NormalizeName("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
  auto bad = ImageStore::NormalizeName("Bad/Name");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "reference.invalid");
}

TEST_F(ImageStoreTest, PlatformsAccumulateIntoAnIndexAndReplaceTheirOwn) {
  auto amd = MustImport("app", "linux/amd64");
  EXPECT_EQ(amd.root.media_type, "application/vnd.oci.image.manifest.v1+json");
  auto arm = MustImport("app", "linux/arm64");
  EXPECT_EQ(arm.root.media_type, "application/vnd.oci.image.index.v1+json");
  auto img = store_->Resolve("app");
  ASSERT_TRUE(img.ok());
  ASSERT_EQ(img->platforms.size(), 2u);
  EXPECT_EQ(img->platforms[0].manifest_desc.platform->ToString(), "linux/amd64");
  EXPECT_EQ(img->platforms[1].config.architecture, "arm64");
  auto again = MustImport("app", "linux/arm64");
  EXPECT_EQ(again.root.digest, arm.root.digest);  // same tree, same platform: same index
  auto missing = store_->Resolve("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "image.not_found");
}

TEST_F(ImageStoreTest, LayersAreKnownByDiffIdAndReencodedWithoutRebuilding) {
  auto r = MustImport("app", "linux/amd64");
  LayerIndex index(dir_ + "/state/content");
  auto known = index.Lookup(r.diff_id);
  ASSERT_TRUE(known.ok());
  ASSERT_EQ(known->size(), 1u);
  EXPECT_EQ((*known)[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  auto zstd = index.Encode(store_->blobs(), r.diff_id, layer::Compression::kZstd);
  ASSERT_TRUE(zstd.ok()) << zstd.error().ToString();
  EXPECT_EQ(zstd->media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_NE(zstd->digest, (*known)[0].digest);
  EXPECT_TRUE(*store_->blobs().Has(zstd->digest.ToString()));
  EXPECT_EQ(index.Lookup(r.diff_id)->size(), 2u);
  // Asking again finds it; gzip is the original blob.
  EXPECT_EQ(index.Encode(store_->blobs(), r.diff_id, layer::Compression::kZstd)->digest, zstd->digest);
  EXPECT_EQ(index.Encode(store_->blobs(), r.diff_id, layer::Compression::kGzip)->digest, (*known)[0].digest);
  auto plain = index.Encode(store_->blobs(), r.diff_id, layer::Compression::kNone);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->digest.ToString(), r.diff_id);  // an uncompressed layer's digest is its diff_id
  auto unknown = index.Encode(store_->blobs(), "sha256:" + std::string(64, 'b'), layer::Compression::kZstd);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "layer.unknown_diff_id");
}

TEST_F(ImageStoreTest, UnpackRefusesAnExistingDestination) {
  MustImport("app", "linux/amd64");
  auto img = store_->Resolve("app");
  ASSERT_TRUE(img.ok());
  stdfs::create_directories(dir_ + "/exists");
  auto u = Unpack(*store_, img->platforms[0], dir_ + "/exists");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, "image.unpack.dest");
  auto ok = Unpack(*store_, img->platforms[0], dir_ + "/out");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  std::ifstream in(dir_ + "/out/etc/hello");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hello");
}

TEST_F(ImageStoreTest, PruneKeepsNamedImagesOnly) {
  MustImport("keep", "linux/amd64");
  std::ofstream(tree_ + "/etc/other") << "different layer\n";
  MustImport("drop", "linux/amd64");
  ASSERT_TRUE(store_->names().Update([](std::map<std::string, NameRecord>* t) -> Expected<void> {
    t->erase("docker.io/library/drop:latest");
    return Ok();
  }).ok());
  auto stats = store_->Prune();
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->removed_blobs, 3u);
  EXPECT_TRUE(store_->Resolve("keep").ok());
}

}  // namespace
}  // namespace manifold::image
