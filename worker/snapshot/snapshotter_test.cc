#include "worker/snapshot/snapshotter.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <thread>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/layer/tar_writer.h"
#include "worker/snapshot/snapshot_test_util.h"
#include "worker/snapshot/step_snapshot.h"

namespace manifold::worker {
namespace {

using testutil::ApplyAll;
using testutil::DescribeTree;
using testutil::Exists;
using testutil::Layer;
using testutil::ListDir;
using testutil::MakeLayer;
using testutil::ReadFile;
using testutil::TempDir;
using testutil::WriteFile;

Layer BaseLayer() {
  return MakeLayer([](const std::string& d) {
    WriteFile(d + "/usr/share/doc/a", "doc a\n");
    WriteFile(d + "/etc/x", "x\n");
    WriteFile(d + "/etc/y", "y\n", 0600);
    ASSERT_EQ(::symlink("x", (d + "/etc/link").c_str()), 0);
  });
}

std::string Hex(const std::string& diff_id) { return diff_id.substr(7); }

class SnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testutil::IsRoot()) GTEST_SKIP() << "snapshots need root (overlayfs, whiteouts)";
    auto store = Snapshotter::Open(state_.path());
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_.emplace(std::move(store).value());
  }

  Expected<std::string> Unpack(const Layer& l) {
    layer::StringSource source(l.tar, 3000);
    return store_->Unpack(l.diff_id, source);
  }

  TempDir state_;
  std::optional<Snapshotter> store_;
};

TEST(ChainIdTest, FollowsImageSpec) {
  const std::string a = "sha256:" + std::string(64, 'a');
  const std::string b = "sha256:" + std::string(64, 'b');
  const std::string c = "sha256:" + std::string(64, 'c');
  EXPECT_EQ(ChainId(std::vector<std::string>{a}), a);
  std::string ab = "sha256:" + crypto::Sha256Hex(a + " " + b);
  EXPECT_EQ(ChainId(std::vector<std::string>{a, b}), ab);
  EXPECT_EQ(ChainId(std::vector<std::string>{a, b, c}),
            "sha256:" + crypto::Sha256Hex(ab + " " + c));
}

TEST(CheckDiffIdTest, RejectsWhatCannotNameADirectory) {
  auto bad = Snapshotter::CheckDiffId("sha256:../../etc");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(bad.error().code, "digest.invalid");
  auto sha512 = Snapshotter::CheckDiffId("sha512:" + std::string(128, 'a'));
  ASSERT_FALSE(sha512.ok());
  EXPECT_EQ(sha512.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(sha512.error().code, "snapshot.diff_id.algorithm");
  auto good = Snapshotter::CheckDiffId("sha256:" + std::string(64, 'f'));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, std::string(64, 'f'));
}

TEST_F(SnapshotterTest, UnpackPublishesTheLayersTree) {
  Layer base = BaseLayer();
  auto none = store_->TryUnpacked(base.diff_id);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto missing = store_->Unpacked(base.diff_id);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(missing.error().code, "snapshot.missing");
  EXPECT_EQ(missing.error().message, "layer " + base.diff_id + " is not unpacked");

  auto path = Unpack(base);
  ASSERT_TRUE(path.ok()) << path.error().ToString();
  EXPECT_EQ(*path, store_->dir() + "/" + Hex(base.diff_id) + "/fs");
  EXPECT_EQ(*store_->Unpacked(base.diff_id), *path);
  EXPECT_EQ(ReadFile(*path + "/usr/share/doc/a"), "doc a\n");
  TempDir expected;
  ASSERT_NO_FATAL_FAILURE(ApplyAll(expected.path(), {&base}));
  EXPECT_EQ(DescribeTree(*path), DescribeTree(expected.path()));
  EXPECT_EQ(ListDir(store_->dir()), std::vector<std::string>{Hex(base.diff_id)});
  EXPECT_EQ(ListDir(store_->dir() + "/" + Hex(base.diff_id)), std::vector<std::string>{"fs"});

  // Present: the source is not read again.
  layer::StringSource empty("");
  auto again = store_->Unpack(base.diff_id, empty);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(*again, *path);
}

TEST_F(SnapshotterTest, WrongDiffIdIsIntegrityErrorAndNothingIsPublished) {
  Layer base = BaseLayer();
  const std::string wrong = "sha256:" + std::string(64, '0');
  layer::StringSource source(base.tar);
  auto path = store_->Unpack(wrong, source);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(path.error().code, "layer.diffid_mismatch");
  EXPECT_EQ(path.error().message, "layer uncompresses to " + base.diff_id + ", expected " + wrong);
  EXPECT_EQ(path.error().context, std::vector<std::string>{"unpacking layer " + wrong});
  EXPECT_TRUE(ListDir(store_->dir()).empty());
  EXPECT_FALSE(store_->TryUnpacked(wrong)->has_value());
}

TEST_F(SnapshotterTest, BadLayerPublishesNothing) {
  Layer base = BaseLayer();
  std::string truncated = base.tar.substr(0, base.tar.size() / 2);
  layer::StringSource source(truncated);
  auto path = store_->Unpack(base.diff_id, source);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(path.error().code, "layer.truncated");
  EXPECT_TRUE(ListDir(store_->dir()).empty());
}

TEST_F(SnapshotterTest, ConcurrentUnpacksOfOneLayerGiveOneSnapshot) {
  Layer base = BaseLayer();
  constexpr int kThreads = 4;
  std::vector<Expected<std::string>> results(kThreads, Expected<std::string>(std::string()));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([this, &base, &results, i] {
      layer::StringSource source(base.tar, 512);  // slow: the threads overlap
      results[i] = store_->Unpack(base.diff_id, source);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(*r, store_->dir() + "/" + Hex(base.diff_id) + "/fs");
  }
  EXPECT_EQ(ListDir(store_->dir()), std::vector<std::string>{Hex(base.diff_id)});
  EXPECT_EQ(ReadFile(*results[0] + "/etc/x"), "x\n");
}

TEST_F(SnapshotterTest, LeftoverScratchIsSweptAtOpen) {
  Layer base = BaseLayer();
  ASSERT_TRUE(Unpack(base).ok());
  const std::string dir = store_->dir();
  // A crashed unpack, and a crashed step that left its rootfs mounted.
  WriteFile(dir + "/tmp-dead01/fs/etc/half", "half");
  ASSERT_EQ(::mkdir((dir + "/tmp-dead02").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir + "/tmp-dead02/merged").c_str(), 0700), 0);
  ASSERT_EQ(::mount("tmpfs", (dir + "/tmp-dead02/merged").c_str(), "tmpfs", 0, "size=1m"), 0);
  WriteFile(dir + "/tmp-dead02/merged/f", "in tmpfs");
  // A live scratch dir of another owner is kept.
  auto live = store_->NewScratch();
  ASSERT_TRUE(live.ok()) << live.error().ToString();

  auto reopened = Snapshotter::Open(state_.path());
  ASSERT_TRUE(reopened.ok()) << reopened.error().ToString();
  EXPECT_FALSE(Exists(dir + "/tmp-dead01"));
  EXPECT_FALSE(Exists(dir + "/tmp-dead02"));
  EXPECT_FALSE(testutil::IsMountedAt(dir + "/tmp-dead02/merged"));
  EXPECT_TRUE(Exists(live->path()));
  EXPECT_TRUE(reopened->TryUnpacked(base.diff_id)->has_value());
  std::string live_path = live->path();
  ASSERT_TRUE(live->Remove().ok());
  EXPECT_FALSE(Exists(live_path));
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{Hex(base.diff_id)});
}

// A layer with whiteouts and opaque directories, stored in overlay form and
// stacked, shows what applying both layers in order gives.
TEST_F(SnapshotterTest, StackedSnapshotsReproduceTheImage) {
  Layer base = MakeLayer([](const std::string& d) {
    WriteFile(d + "/usr/share/doc/a", "doc a\n");
    WriteFile(d + "/etc/x", "x\n");
    WriteFile(d + "/etc/y", "y\n");
    WriteFile(d + "/opt/app/old", "old");
    WriteFile(d + "/keep", "keep");
  });
  Layer top = MakeLayer(
      [](const std::string& d) {
        ASSERT_EQ(::mkdir((d + "/usr").c_str(), 0755), 0);
        ASSERT_EQ(::mkdir((d + "/usr/share").c_str(), 0755), 0);
        testutil::MakeWhiteout(d + "/usr/share/doc");
        ASSERT_EQ(::mkdir((d + "/etc").c_str(), 0755), 0);
        testutil::MakeWhiteout(d + "/etc/y");
        WriteFile(d + "/etc/z", "z\n");
        WriteFile(d + "/opt/app/new", "new");
        testutil::MakeOpaque(d + "/opt/app");
      },
      /*overlay_upper=*/true);
  ASSERT_NE(top.tar.find("usr/share/.wh.doc"), std::string::npos);
  ASSERT_NE(top.tar.find("opt/app/.wh..wh..opq"), std::string::npos);
  ASSERT_TRUE(Unpack(base).ok());
  auto top_path = Unpack(top);
  ASSERT_TRUE(top_path.ok()) << top_path.error().ToString();
  // Stored in overlay form, not as OCI marker files.
  EXPECT_FALSE(Exists(*top_path + "/usr/share/.wh.doc"));
  struct stat st;
  ASSERT_EQ(::lstat((*top_path + "/usr/share/doc").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(testutil::Xattr(*top_path + "/opt/app", "trusted.overlay.opaque"), "y");

  auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{base.diff_id, top.diff_id});
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  TempDir expected;
  ASSERT_NO_FATAL_FAILURE(ApplyAll(expected.path(), {&base, &top}));
  EXPECT_EQ(DescribeTree(step->rootfs()), DescribeTree(expected.path()));
  EXPECT_FALSE(Exists(step->rootfs() + "/usr/share/doc"));
  EXPECT_FALSE(Exists(step->rootfs() + "/opt/app/old"));
  EXPECT_EQ(ReadFile(step->rootfs() + "/keep"), "keep");
  ASSERT_TRUE(step->Discard().ok());
}

TEST_F(SnapshotterTest, OpaqueRootHidesTheLayersBelow) {
  Layer base = BaseLayer();
  // An upper dir's root is never opaque, so write this layer by hand.
  Layer reset;
  {
    layer::StringSink sink;
    layer::TarWriter tar(sink);
    layer::TarHeader only;
    only.path = "only";
    only.mode = 0644;
    only.size = 4;
    ASSERT_TRUE(tar.WriteHeader(only).ok());
    ASSERT_TRUE(tar.WriteData("only").ok());
    layer::TarHeader marker;
    marker.path = ".wh..wh..opq";
    ASSERT_TRUE(tar.WriteHeader(marker).ok());
    ASSERT_TRUE(tar.Finish().ok());
    reset = Layer{sink.data(), "sha256:" + crypto::Sha256Hex(sink.data())};
  }
  Layer above = MakeLayer([](const std::string& d) { WriteFile(d + "/above", "above"); });
  ASSERT_TRUE(Unpack(base).ok());
  ASSERT_TRUE(Unpack(reset).ok());
  ASSERT_TRUE(Unpack(above).ok());
  std::vector<std::string> chain{base.diff_id, reset.diff_id, above.diff_id};
  auto lowers = store_->Lowers(chain, 4000);
  ASSERT_TRUE(lowers.ok()) << lowers.error().ToString();
  EXPECT_EQ(*lowers,
            (std::vector<std::string>{Hex(above.diff_id) + "/fs", Hex(reset.diff_id) + "/fs"}));
  auto step = StepSnapshot::Prepare(*store_, chain);
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  EXPECT_EQ(ListDir(step->rootfs()), (std::vector<std::string>{"above", "only"}));
}

// The empty layer shows up many times in real images; overlayfs refuses a
// lower dir given twice.
TEST_F(SnapshotterTest, RepeatedLayerInAChain) {
  Layer base = BaseLayer();
  Layer empty = MakeLayer([](const std::string&) {});
  EXPECT_EQ(empty.diff_id,
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
  Layer add = MakeLayer([](const std::string& d) { WriteFile(d + "/etc/added", "a"); });
  Layer drop = MakeLayer(
      [](const std::string& d) {
        ASSERT_EQ(::mkdir((d + "/etc").c_str(), 0755), 0);
        testutil::MakeWhiteout(d + "/etc/x");
      },
      true);
  for (const Layer* l : {&base, &empty, &add, &drop}) ASSERT_TRUE(Unpack(*l).ok());
  std::vector<std::string> chain{base.diff_id,  empty.diff_id, add.diff_id,
                                 empty.diff_id, drop.diff_id,  add.diff_id};
  auto lowers = store_->Lowers(chain, 4000);
  ASSERT_TRUE(lowers.ok()) << lowers.error().ToString();
  EXPECT_EQ(lowers->size(), 4u);
  auto step = StepSnapshot::Prepare(*store_, chain);
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  TempDir expected;
  ASSERT_NO_FATAL_FAILURE(ApplyAll(expected.path(), {&base, &empty, &add, &empty, &drop, &add}));
  EXPECT_EQ(DescribeTree(step->rootfs()), DescribeTree(expected.path()));
  EXPECT_FALSE(Exists(step->rootfs() + "/etc/x"));
}

TEST_F(SnapshotterTest, LowersOfAMissingLayerFail) {
  auto lowers = store_->Lowers(std::vector<std::string>{"sha256:" + std::string(64, 'e')}, 4000);
  ASSERT_FALSE(lowers.ok());
  EXPECT_EQ(lowers.error().code, "snapshot.missing");
}

// 80 layers under a long state path: far over the one-page limit of mount
// options, so a 32-layer prefix is flattened (once) and stacked below the
// rest. Whiteouts and opaque dirs on both sides of the cut still work.
TEST_F(SnapshotterTest, LongChainIsFlattenedAndStillMounts) {
  std::string long_parent = state_.path();
  for (int i = 0; i < 6; ++i) {
    long_parent += "/" + std::string(40, static_cast<char>('a' + i));
    ASSERT_EQ(::mkdir(long_parent.c_str(), 0700), 0);
  }
  auto store = Snapshotter::Open(long_parent);
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  std::vector<std::string> chain;
  for (int i = 0; i < 80; ++i) {
    Layer l = MakeLayer(
        [i](const std::string& d) {
          WriteFile(d + "/layers/f" + std::to_string(i), "layer " + std::to_string(i));
          if (i == 2) WriteFile(d + "/opq/old", "old");
          if (i == 10) {  // inside the flattened prefix
            WriteFile(d + "/opq/new", "new");
            testutil::MakeOpaque(d + "/opq");
          }
          if (i == 20) testutil::MakeWhiteout(d + "/layers/f5");  // inside
          if (i == 40) testutil::MakeWhiteout(d + "/layers/f3");  // above the cut
          if (i == 50) testutil::MakeWhiteout(d + "/opq");        // above the cut
        },
        true);
    layer::StringSource source(l.tar);
    auto path = store->Unpack(l.diff_id, source);
    ASSERT_TRUE(path.ok()) << i << ": " << path.error().ToString();
    chain.push_back(l.diff_id);
  }
  const std::string flat = "chain-" + ChainId(std::span(chain).first(32)).substr(7);

  auto step = StepSnapshot::Prepare(*store, chain);
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  EXPECT_TRUE(Exists(store->dir() + "/" + flat + "/fs"));
  const std::string root = step->rootfs();
  EXPECT_EQ(ReadFile(root + "/layers/f79"), "layer 79");
  EXPECT_EQ(ReadFile(root + "/layers/f0"), "layer 0");
  EXPECT_EQ(ReadFile(root + "/layers/f31"), "layer 31");
  EXPECT_EQ(ReadFile(root + "/layers/f32"), "layer 32");
  EXPECT_FALSE(Exists(root + "/layers/f5"));
  EXPECT_FALSE(Exists(root + "/layers/f3"));
  EXPECT_FALSE(Exists(root + "/opq"));
  EXPECT_EQ(ListDir(root + "/layers").size(), 78u);
  ASSERT_TRUE(step->Discard().ok());

  // The flattened prefix as applied in order: layers 0..31.
  auto flat_tree = DescribeTree(store->dir() + "/" + flat + "/fs");
  EXPECT_EQ(flat_tree.count("/opq/old"), 0u);
  EXPECT_EQ(flat_tree.count("/opq/new"), 1u);
  EXPECT_EQ(flat_tree.count("/layers/f5"), 0u);
  EXPECT_EQ(flat_tree.count("/layers/f31"), 1u);
  EXPECT_EQ(flat_tree.count("/layers/f32"), 0u);

  // A longer chain over the same base reuses the flattened prefix.
  Layer extra = MakeLayer([](const std::string& d) { WriteFile(d + "/extra", "e"); });
  layer::StringSource source(extra.tar);
  ASSERT_TRUE(store->Unpack(extra.diff_id, source).ok());
  chain.push_back(extra.diff_id);
  auto longer = StepSnapshot::Prepare(*store, chain);
  ASSERT_TRUE(longer.ok()) << longer.error().ToString();
  EXPECT_EQ(ReadFile(longer->rootfs() + "/extra"), "e");
  EXPECT_EQ(ReadFile(longer->rootfs() + "/layers/f0"), "layer 0");
  std::size_t chains = 0;
  for (const std::string& name : ListDir(store->dir())) chains += name.starts_with("chain-");
  EXPECT_EQ(chains, 1u);
}

}  // namespace
}  // namespace manifold::worker
