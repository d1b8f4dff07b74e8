#include "common/cache/step_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace manifold::cache {
namespace {

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mf-step-cache-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

const std::string kKey = "sha256:" + std::string(64, 'a');
const std::string kDigest = "sha256:" + std::string(64, 'b');

TEST_F(StepCacheTest, PutThenGetRoundTrips) {
  auto c = StepCache::Open(dir_.string());
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  StepRecord r{kDigest, {{"application/vnd.oci.image.layer.v1.tar+gzip", kDigest,
                          "sha256:" + std::string(64, 'c'), 42}}};
  ASSERT_TRUE(c->Put(kKey, r).ok());
  auto got = c->Get(kKey);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, r);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "cache/steps" / (std::string(64, 'a') + ".json")));
  // No temp files left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_ / "cache/steps")) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(StepCacheTest, MissIsNullopt) {
  auto c = StepCache::Open(dir_.string());
  auto got = c->Get(kKey);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(StepCacheTest, CorruptRecordIsAMiss) {
  auto c = StepCache::Open(dir_.string());
  std::ofstream(dir_ / "cache/steps" / (std::string(64, 'a') + ".json")) << "{\"config\": 1";
  auto got = c->Get(kKey);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(StepCacheTest, MalformedKeyNeverNamesAPath) {
  auto c = StepCache::Open(dir_.string());
  auto got = c->Get("sha256:../../etc/passwd");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, "cache.key");
  auto put = c->Put("../x", StepRecord{kDigest, {}});
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, "cache.key");
}

}  // namespace
}  // namespace manifold::cache
