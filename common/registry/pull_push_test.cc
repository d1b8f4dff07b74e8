// Pull and Push on a real ImageStore against FakeRegistry instances.
#include <gtest/gtest.h>

#include "common/cas/testing/temp_dir.h"
#include "common/image/image_store.h"
#include "common/image/layer_index.h"
#include "common/registry/client.h"
#include "common/registry/pull.h"
#include "common/registry/push.h"
#include "common/registry/testing/fake_registry.h"
#include "common/registry/testing/test_image.h"

namespace manifold::registry {
namespace {

using http::testing::RawResponse;
using http::testing::ReceivedRequest;
using testing::FakeRegistry;
using testing::Override;
using testing::TestImage;
using namespace std::chrono_literals;

RegistryOptions TestOptions() {
  RegistryOptions o;
  o.use_env_proxy = false;
  o.certs_dir = "";
  o.connect_timeout = 5s;
  o.io_timeout = 5s;
  o.retry.initial_backoff = 10ms;
  o.retry.max_backoff = 40ms;
  return o;
}

class PullPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = image::ImageStore::Open(dir_.path() + "/state");
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_ = std::move(*store);
    amd64_ = testing::AddImage(source_, "team/app", "linux", "amd64", {"base layer", "amd64 app"});
    arm64_ = testing::AddImage(source_, "team/app", "linux", "arm64", {"base layer", "arm64 app"});
    index_ = testing::AddIndex(source_, "team/app", "1", {amd64_, arm64_});
    pull_.registry = TestOptions();
    push_.registry = TestOptions();
  }

  std::string Ref(const FakeRegistry& r, const std::string& rest) { return r.domain() + "/" + rest; }
  bool Has(const oci::Descriptor& d) { return *store_->blobs().Has(d.digest.ToString()); }

  cas::testing::TempDir dir_;
  std::unique_ptr<image::ImageStore> store_;
  FakeRegistry source_;
  TestImage amd64_, arm64_;
  std::string index_;
  PullOptions pull_;
  PushOptions push_;
};

TEST_F(PullPushTest, PullsEveryPlatformOfAnIndex) {
  auto r = Pull(*store_, Ref(source_, "team/app:1"), pull_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->name, Ref(source_, "team/app:1"));
  EXPECT_EQ(r->root.digest, oci::Digest::Sha256Of(index_));
  EXPECT_EQ(r->root.media_type, oci::kOciImageIndex);
  EXPECT_EQ(r->blobs_fetched, 5);  // 2 configs + 3 distinct layers
  EXPECT_EQ(source_.Count("GET", "/v2/team/app/blobs/"), 5);

  auto resolved = store_->Resolve(Ref(source_, "team/app:1"));
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  ASSERT_EQ(resolved->platforms.size(), 2u);
  EXPECT_EQ(resolved->platforms[1].manifest_desc.platform->architecture, "arm64");
  EXPECT_EQ(*store_->blobs().ReadAll(r->root.digest.ToString()), index_);  // kept as served
  for (const auto& d : arm64_.layer_descs) EXPECT_TRUE(Has(d));

  image::LayerIndex layers(store_->state_dir() + "/content");
  auto found = layers.Lookup(arm64_.layer_descs[1].digest.ToString());  // diff_id == digest here
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].digest, arm64_.layer_descs[1].digest);

  // Again: nothing is fetched twice.
  auto again = Pull(*store_, Ref(source_, "team/app:1"), pull_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->blobs_fetched, 0);
  EXPECT_EQ(again->blobs_present, 5);
  EXPECT_EQ(source_.Count("GET", "/v2/team/app/blobs/"), 5);
}

TEST_F(PullPushTest, PullsOnePlatform) {
  pull_.platforms = {oci::Platform{"linux", "arm64", ""}};
  auto r = Pull(*store_, Ref(source_, "team/app:1"), pull_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->root.digest, arm64_.desc.digest);
  EXPECT_EQ(r->root.media_type, oci::kOciImageManifest);
  EXPECT_FALSE(r->root.platform.has_value());
  EXPECT_FALSE(Has(amd64_.layer_descs[1]));
  EXPECT_FALSE(Has(amd64_.config));
  auto resolved = store_->Resolve(Ref(source_, "team/app:1"));
  ASSERT_TRUE(resolved.ok());
  ASSERT_EQ(resolved->platforms.size(), 1u);
  EXPECT_EQ(resolved->platforms[0].config.architecture, "arm64");

  pull_.platforms = {oci::Platform{"linux", "s390x", ""}};
  auto none = Pull(*store_, Ref(source_, "team/app:1"), pull_);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "oci.no_platform");
}

TEST_F(PullPushTest, PullsSeveralPlatformsIntoASmallerIndex) {
  auto riscv = testing::AddImage(source_, "team/app", "linux", "riscv64", {"r"});
  std::string index = testing::AddIndex(source_, "team/app", "3", {amd64_, arm64_, riscv});
  pull_.platforms = {oci::Platform{"linux", "riscv64", ""}, oci::Platform{"linux", "amd64", ""}};
  auto r = Pull(*store_, Ref(source_, "team/app:3"), pull_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->root.media_type, oci::kOciImageIndex);
  EXPECT_NE(r->root.digest, oci::Digest::Sha256Of(index));
  auto resolved = store_->Resolve(Ref(source_, "team/app:3"));
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  ASSERT_EQ(resolved->platforms.size(), 2u);
  EXPECT_EQ(resolved->platforms[0].config.architecture, "riscv64");
  EXPECT_FALSE(Has(arm64_.layer_descs[1]));
}

TEST_F(PullPushTest, PullErrorsNameTheReference) {
  auto r = Pull(*store_, Ref(source_, "x:1"), pull_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().message, "manifest unknown: " + source_.domain() + "/x:1");
  auto bad = Pull(*store_, "UPPER/case", pull_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "reference.invalid");
}

TEST_F(PullPushTest, NothingIsNamedWhenABlobFails) {
  source_.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target.ends_with(arm64_.layer_descs[1].digest.ToString()))
      return Override{false, RawResponse(200, "OK", "tampered")};
    return std::nullopt;
  });
  auto r = Pull(*store_, Ref(source_, "team/app:1"), pull_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);
  EXPECT_FALSE(Has(arm64_.layer_descs[1]));
  EXPECT_FALSE(store_->names().Get(Ref(source_, "team/app:1"))->has_value());
}

TEST_F(PullPushTest, PushesBlobsThenManifestsThenTheIndexTag) {
  ASSERT_TRUE(Pull(*store_, Ref(source_, "team/app:1"), pull_).ok());
  FakeRegistry target;
  auto r = Push(*store_, Ref(source_, "team/app:1"), Ref(target, "ship/app:1.4"), push_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->digest, oci::Digest::Sha256Of(index_));
  EXPECT_EQ(r->blobs_uploaded, 5);
  EXPECT_EQ(r->manifests_pushed, 3);
  EXPECT_EQ(target.Manifest("ship/app", "1.4")->second, index_);
  for (const auto& d : amd64_.layer_descs) EXPECT_TRUE(target.RepoHasBlob("ship/app", d.digest.ToString()));

  // Order: every blob upload finished before the first manifest PUT; the tag last.
  auto requests = target.requests();
  std::size_t first_manifest = requests.size(), last_blob = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].method == "PUT" && requests[i].target.starts_with("/v2/ship/app/manifests/"))
      first_manifest = std::min(first_manifest, i);
    if (requests[i].target.starts_with("/v2/ship/app/blobs/")) last_blob = i;
  }
  EXPECT_LT(last_blob, first_manifest);
  EXPECT_EQ(requests.back().target, "/v2/ship/app/manifests/1.4");

  // A second push of the unchanged image uploads no blob.
  int posts = target.Count("POST", "/");
  auto again = Push(*store_, Ref(source_, "team/app:1"), Ref(target, "ship/app:1.4"), push_);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(again->blobs_uploaded, 0);
  EXPECT_EQ(again->blobs_existing, 5);
  EXPECT_EQ(target.Count("POST", "/"), posts);
  EXPECT_EQ(target.Count("PATCH", "/"), 0);
}

TEST_F(PullPushTest, PushWithinARegistryMountsBlobs) {
  ASSERT_TRUE(Pull(*store_, Ref(source_, "team/app:1"), pull_).ok());
  auto r = Push(*store_, Ref(source_, "team/app:1"), Ref(source_, "team/copy:1"), push_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->blobs_mounted, 5);
  EXPECT_EQ(r->blobs_uploaded, 0);
  EXPECT_EQ(source_.Count("PUT", "/v2/team/copy/blobs/"), 0);
  EXPECT_EQ(source_.Manifest("team/copy", "1")->second, index_);
}

TEST_F(PullPushTest, InterruptedPushLeavesTheTagAloneAndResumes) {
  ASSERT_TRUE(Pull(*store_, Ref(source_, "team/app:1"), pull_).ok());
  FakeRegistry target;
  target.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.method == "PUT" && req.target == "/v2/app/manifests/" + arm64_.desc.digest.ToString())
      return Override{false, RawResponse(400, "Bad Request",
                                         R"({"errors":[{"code":"MANIFEST_INVALID"}]})")};
    return std::nullopt;
  });
  auto r = Push(*store_, Ref(source_, "team/app:1"), Ref(target, "app:1"), push_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().ToString(),
            "pushing " + target.domain() + "/app:1: registry " + target.domain() +
                " refused (400 Bad Request) pushing manifest " + target.domain() + "/app@" +
                arm64_.desc.digest.ToString() + " (MANIFEST_INVALID)");
  EXPECT_FALSE(target.Manifest("app", "1").has_value());

  target.SetScript({});
  int posts = target.Count("POST", "/");
  auto again = Push(*store_, Ref(source_, "team/app:1"), Ref(target, "app:1"), push_);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(again->blobs_uploaded, 0);
  EXPECT_EQ(target.Count("POST", "/"), posts);
  EXPECT_TRUE(target.Manifest("app", "1").has_value());
}

// A farm's workers pushed some layers themselves: the push goes through
// without them in the store, checking with HEAD that the registry has them,
// and fails naming the blob when it does not.
TEST_F(PullPushTest, BlobsPushedElsewhereAreCheckedNotRead) {
  ASSERT_TRUE(Pull(*store_, Ref(source_, "team/app:1"), pull_).ok());
  FakeRegistry target;
  const std::string app_layer = amd64_.layer_descs[1].digest.ToString();
  auto bytes = store_->blobs().ReadAll(app_layer);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(store_->blobs().Delete(app_layer).ok());
  push_.pushed_elsewhere = {app_layer};
  auto missing = Push(*store_, Ref(source_, "team/app:1"), Ref(target, "ship/app:1"), push_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "registry.push_incomplete");
  EXPECT_NE(missing.error().message.find("blob " + app_layer + " was pushed by another node but the registry does not have it"),
            std::string::npos)
      << missing.error().message;
  EXPECT_FALSE(target.Manifest("ship/app", "1").has_value());

  FakeRegistry fresh;
  EXPECT_EQ(fresh.AddBlob("ship/app", *bytes), app_layer);  // what the worker did
  auto r = Push(*store_, Ref(source_, "team/app:1"), Ref(fresh, "ship/app:1"), push_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->blobs_existing, 1);
  EXPECT_EQ(r->blobs_uploaded, 4);
  EXPECT_EQ(fresh.Manifest("ship/app", "1")->second, index_);

  push_.pushed_elsewhere.clear();  // without the hint it is an incomplete image
  auto incomplete = Push(*store_, Ref(source_, "team/app:1"), Ref(fresh, "ship/app:2"), push_);
  ASSERT_FALSE(incomplete.ok());
  EXPECT_EQ(incomplete.error().message, "cannot push: blob " + app_layer + " is not in the local store");
}

TEST_F(PullPushTest, PushOfASinglePlatformAndOfUnknownNames) {
  pull_.platforms = {oci::Platform{"linux", "amd64", ""}};
  ASSERT_TRUE(Pull(*store_, Ref(source_, "team/app:1"), pull_).ok());
  FakeRegistry target;
  auto r = Push(*store_, Ref(source_, "team/app:1"), Ref(target, "one"), push_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->digest, amd64_.desc.digest);
  EXPECT_EQ(r->manifests_pushed, 1);
  EXPECT_EQ(target.Manifest("one", "latest")->second, amd64_.manifest);

  auto missing = Push(*store_, "nothing:here", Ref(target, "x"), push_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "image.not_found");
}

}  // namespace
}  // namespace manifold::registry
