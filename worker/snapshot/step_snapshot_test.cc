#include "worker/snapshot/step_snapshot.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <cerrno>
#include <filesystem>

#include "common/layer/diff_test_util.h"
#include "worker/snapshot/snapshot_test_util.h"
#include "worker/snapshot/snapshotter.h"

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

std::vector<std::string> TarNames(const std::string& tar) {
  std::vector<std::string> names;
  for (const auto& e : layer::testutil::ReadTar(tar)) names.push_back(e.entry.path);
  return names;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class StepSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testutil::IsRoot()) GTEST_SKIP() << "step snapshots need root (overlayfs)";
    auto store = Snapshotter::Open(state_.path());
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_.emplace(std::move(store).value());
    base_ = MakeLayer([](const std::string& d) {
      WriteFile(d + "/usr/share/doc/a", "doc a\n");
      WriteFile(d + "/etc/x", "x\n");
      WriteFile(d + "/etc/y", "y\n", 0600);
    });
    layer::StringSource source(base_.tar);
    ASSERT_TRUE(store_->Unpack(base_.diff_id, source).ok());
  }

  // Runs `edit` on the step's rootfs (standing in for a RUN), commits, and
  // checks the round trip: base + new layer applied in a fresh directory
  // equals the live rootfs, and so does the committed snapshot stacked on
  // the base. Returns the new layer.
  Layer RunAndCommit(const std::function<void(const std::string&)>& edit) {
    auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
    EXPECT_TRUE(step.ok()) << step.error().ToString();
    if (!step.ok()) return {};
    edit(step->rootfs());
    testutil::Tree live = DescribeTree(step->rootfs());
    layer::StringSink sink;
    auto info = step->Commit(layer::Compression::kNone, 1700000000, sink);
    EXPECT_TRUE(info.ok()) << info.error().ToString();
    if (!info.ok()) return {};
    Layer out{sink.data(), info->diff_id};
    EXPECT_FALSE(testutil::IsMountedAt(step->rootfs()));

    TempDir applied;
    ApplyAll(applied.path(), {&base_, &out});
    EXPECT_EQ(DescribeTree(applied.path()), live);

    // The upper dir is now the new layer's snapshot.
    auto snap = store_->TryUnpacked(out.diff_id);
    EXPECT_TRUE(snap.ok() && snap->has_value());
    auto next =
        StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id, out.diff_id});
    EXPECT_TRUE(next.ok()) << next.error().ToString();
    if (next.ok()) {
      EXPECT_EQ(DescribeTree(next->rootfs()), live);
    }

    // And unpacking the layer elsewhere gives the same stack.
    TempDir other_state;
    auto other = Snapshotter::Open(other_state.path());
    EXPECT_TRUE(other.ok());
    if (!other.ok()) return out;
    layer::StringSource s1(base_.tar), s2(out.tar);
    EXPECT_TRUE(other->Unpack(base_.diff_id, s1).ok());
    EXPECT_TRUE(other->Unpack(out.diff_id, s2).ok());
    auto there =
        StepSnapshot::Prepare(*other, std::vector<std::string>{base_.diff_id, out.diff_id});
    EXPECT_TRUE(there.ok()) << there.error().ToString();
    if (there.ok()) {
      EXPECT_EQ(DescribeTree(there->rootfs()), live);
    }
    return out;
  }

  TempDir state_;
  std::optional<Snapshotter> store_;
  Layer base_;
};

// C1: RUN rm -rf /usr/share/doc
TEST_F(StepSnapshotTest, RemovedDirectoryBecomesWhiteout) {
  Layer l = RunAndCommit(
      [](const std::string& root) { std::filesystem::remove_all(root + "/usr/share/doc"); });
  auto names = TarNames(l.tar);
  EXPECT_TRUE(Contains(names, "usr/share/.wh.doc")) << ::testing::PrintToString(names);
  EXPECT_FALSE(Contains(names, "etc/"));
}

// C2: RUN rm -rf /etc && mkdir /etc && touch /etc/x
TEST_F(StepSnapshotTest, RecreatedDirectoryBecomesOpaque) {
  Layer l = RunAndCommit([](const std::string& root) {
    std::filesystem::remove_all(root + "/etc");
    ASSERT_EQ(::mkdir((root + "/etc").c_str(), 0755), 0);
    WriteFile(root + "/etc/x", "");
  });
  auto names = TarNames(l.tar);
  EXPECT_TRUE(Contains(names, "etc/.wh..wh..opq")) << ::testing::PrintToString(names);
  EXPECT_TRUE(Contains(names, "etc/x"));
}

TEST_F(StepSnapshotTest, ChangedFilesAndLinks) {
  Layer l = RunAndCommit([](const std::string& root) {
    WriteFile(root + "/etc/x", "changed\n", 0640);
    ASSERT_EQ(::chown((root + "/etc/y").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::symlink("../etc/x", (root + "/usr/xlink").c_str()), 0);
    ASSERT_EQ(::link((root + "/etc/x").c_str(), (root + "/etc/x2").c_str()), 0);
    WriteFile(root + "/new/deep/file", "new");
  });
  auto names = TarNames(l.tar);
  EXPECT_TRUE(Contains(names, "etc/x2"));
  EXPECT_FALSE(Contains(names, "usr/share/doc/a"));
}

// Without redirect_dir, renaming a lower directory is refused (EXDEV): `mv`
// then copies, and the diff stays exact.
TEST_F(StepSnapshotTest, RenameOfALowerDirectoryIsRefused) {
  RunAndCommit([](const std::string& root) {
    EXPECT_EQ(::rename((root + "/etc").c_str(), (root + "/etc2").c_str()), -1);
    EXPECT_EQ(errno, EXDEV);
    std::filesystem::copy(root + "/etc", root + "/etc2", std::filesystem::copy_options::recursive);
    std::filesystem::remove_all(root + "/etc");
  });
}

// C3: an overlay mounted with redirect_dir=on and `mv /etc /etc2`: the
// mount fails verification, and the diff refuses the redirect.
TEST_F(StepSnapshotTest, RedirectDirFailsTheDiff) {
  auto scratch = store_->NewScratch();
  ASSERT_TRUE(scratch.ok());
  ASSERT_TRUE(scratch->Mkdir("fs").ok());
  ASSERT_TRUE(scratch->Mkdir("work").ok());
  auto merged = scratch->Mkdir("merged");
  ASSERT_TRUE(merged.ok());
  OverlayOptions options;
  options.base_dir = store_->dir();
  options.lowers = {base_.diff_id.substr(7) + "/fs"};
  options.upper = scratch->name() + "/fs";
  options.work = scratch->name() + "/work";
  options.features = "redirect_dir=on,metacopy=off,index=off";

  auto refused = OverlayMount::Mount(*merged, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(refused.error().code, "snapshot.overlay.redirect_dir");
  EXPECT_EQ(
      refused.error().message,
      "overlay at " + *merged + " has redirect_dir=on; the overlayfs differ does not support it");
  EXPECT_FALSE(testutil::IsMountedAt(*merged));

  options.verify = false;
  auto mount = OverlayMount::Mount(*merged, options);
  ASSERT_TRUE(mount.ok()) << mount.error().ToString();
  EXPECT_EQ(mount->VerifyOptions().error().code, "snapshot.overlay.redirect_dir");
  ASSERT_EQ(::rename((*merged + "/etc").c_str(), (*merged + "/etc2").c_str()), 0);
  ASSERT_TRUE(mount->Unmount().ok());
  layer::StringSink sink;
  layer::DiffOptions diff;
  diff.overlay_upper = true;
  auto info = layer::WriteLayer(scratch->path() + "/fs", sink, layer::Compression::kGzip, diff);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(info.error().code, "layer.diff.redirect");
  EXPECT_EQ(info.error().message,
            "redirect_dir is used but it's not supported in overlayfs differ");
}

TEST_F(StepSnapshotTest, FailedCommitPublishesNothing) {
  auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  // What a redirect_dir mount would have left: the differ refuses it.
  ASSERT_EQ(::mkdir((step->upper() + "/moved").c_str(), 0755), 0);
  ASSERT_EQ(
      ::lsetxattr((step->upper() + "/moved").c_str(), "trusted.overlay.redirect", "/etc", 4, 0), 0);
  layer::StringSink sink;
  auto info = step->Commit(layer::Compression::kNone, std::nullopt, sink);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "layer.diff.redirect");
  auto again = step->Commit(layer::Compression::kNone, std::nullopt, sink);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "snapshot.step.done");
  EXPECT_EQ(ListDir(store_->dir()).size(), 2u);  // the base and our scratch
  ASSERT_TRUE(step->Discard().ok());
  EXPECT_EQ(ListDir(store_->dir()), std::vector<std::string>{base_.diff_id.substr(7)});
}

TEST_F(StepSnapshotTest, CommitWaitsForTheRootfsToBeIdle) {
  auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  WriteFile(step->rootfs() + "/late", "1");
  int fd = ::open((step->rootfs() + "/late").c_str(), O_WRONLY | O_CLOEXEC);  // a straggler
  ASSERT_GE(fd, 0);
  layer::StringSink sink;
  auto busy = step->Commit(layer::Compression::kNone, std::nullopt, sink);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(busy.error().code, "snapshot.mount.busy");
  EXPECT_EQ(busy.error().message, "overlay at " + step->rootfs() + " is still in use");
  EXPECT_TRUE(testutil::IsMountedAt(step->rootfs()));
  ::close(fd);
  auto info = step->Commit(layer::Compression::kNone, std::nullopt, sink);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_TRUE(store_->TryUnpacked(info->diff_id)->has_value());
}

TEST_F(StepSnapshotTest, DiscardUnmountsAndRemoves) {
  auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  EXPECT_TRUE(testutil::IsMountedAt(step->rootfs()));
  EXPECT_EQ(ReadFile(step->rootfs() + "/etc/x"), "x\n");
  WriteFile(step->rootfs() + "/scribble", "s");
  ASSERT_TRUE(step->Discard().ok());
  ASSERT_TRUE(step->Discard().ok());
  EXPECT_FALSE(testutil::IsMountedAt(step->rootfs()));
  EXPECT_EQ(ListDir(store_->dir()), std::vector<std::string>{base_.diff_id.substr(7)});
}

TEST_F(StepSnapshotTest, DestructorCleansUp) {
  std::string rootfs;
  {
    auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
    ASSERT_TRUE(step.ok()) << step.error().ToString();
    rootfs = step->rootfs();
  }
  EXPECT_FALSE(testutil::IsMountedAt(rootfs));
  EXPECT_EQ(ListDir(store_->dir()), std::vector<std::string>{base_.diff_id.substr(7)});
}

TEST_F(StepSnapshotTest, StepWithoutParentLayers) {
  auto step = StepSnapshot::Prepare(*store_, std::vector<std::string>{});
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  EXPECT_TRUE(ListDir(step->rootfs()).empty());
  WriteFile(step->rootfs() + "/hello", "hi");
  layer::StringSink sink;
  auto info = step->Commit(layer::Compression::kZstd, std::nullopt, sink);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  auto snap = store_->Unpacked(info->diff_id);
  ASSERT_TRUE(snap.ok()) << snap.error().ToString();
  EXPECT_EQ(ListDir(*snap), std::vector<std::string>{"hello"});
  EXPECT_EQ(ListDir(*snap + "/.."), std::vector<std::string>{"fs"});
}

TEST_F(StepSnapshotTest, CommitOfAnExistingSnapshotKeepsTheFirst) {
  auto first = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
  auto second = StepSnapshot::Prepare(*store_, std::vector<std::string>{base_.diff_id});
  ASSERT_TRUE(first.ok() && second.ok());
  for (auto* s : {&*first, &*second}) WriteFile(s->rootfs() + "/same", "same");
  layer::StringSink a, b;  // SOURCE_DATE_EPOCH clamps both uppers' mtimes alike
  auto ia = first->Commit(layer::Compression::kNone, 1000, a);
  auto ib = second->Commit(layer::Compression::kNone, 1000, b);
  ASSERT_TRUE(ia.ok() && ib.ok());
  EXPECT_EQ(ia->diff_id, ib->diff_id);
  EXPECT_EQ(ListDir(store_->dir()).size(), 2u);  // base + one snapshot, no scratch
}

}  // namespace
}  // namespace manifold::worker
