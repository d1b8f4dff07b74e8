#include "worker/snapshot/overlay_mount.h"

#include <gtest/gtest.h>

#include "worker/snapshot/mountinfo.h"
#include "worker/snapshot/snapshot_test_util.h"

namespace manifold::worker {
namespace {

using testutil::ReadFile;
using testutil::TempDir;
using testutil::WriteFile;

OverlayOptions StepOptions() {
  OverlayOptions o;
  o.base_dir = "/state/snapshots";
  o.lowers = {"b/fs", "a/fs"};
  o.upper = "tmp-1/fs";
  o.work = "tmp-1/work";
  return o;
}

TEST(OverlayMountDataTest, Layout) {
  auto data = OverlayMountData(StepOptions());
  ASSERT_TRUE(data.ok()) << data.error().ToString();
  EXPECT_EQ(*data,
            "lowerdir=b/fs:a/fs,upperdir=tmp-1/fs,workdir=tmp-1/work,"
            "redirect_dir=off,metacopy=off,index=off");
  OverlayOptions ro = StepOptions();
  ro.upper.clear();
  ro.work.clear();
  EXPECT_EQ(*OverlayMountData(ro), "lowerdir=b/fs:a/fs,redirect_dir=off,metacopy=off,index=off");
}

TEST(OverlayMountDataTest, BudgetIsWhatTheLowersMayUse) {
  OverlayOptions o = StepOptions();
  std::size_t budget = LowerdirBudget(o);
  EXPECT_EQ(budget,
            MaxMountDataBytes() - OverlayMountData(o)->size() + std::string("b/fs:a/fs").size());
  o.lowers = {std::string(budget, 'x')};
  EXPECT_TRUE(OverlayMountData(o).ok());
  o.lowers = {std::string(budget + 1, 'x')};
  EXPECT_FALSE(OverlayMountData(o).ok());
}

TEST(OverlayMountDataTest, TooLongIsRefused) {
  OverlayOptions o = StepOptions();
  o.lowers.assign(100, std::string(64, 'a') + "/fs");
  auto data = OverlayMountData(o);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(data.error().code, "snapshot.mount.too_long");
  EXPECT_EQ(data.error().message,
            "overlay mount options are 6885 bytes, the kernel takes at most " +
                std::to_string(MaxMountDataBytes()) + " (100 lower dirs)");
}

TEST(OverlayMountDataTest, PathsThatWouldSplitAreRefused) {
  for (const std::string bad : {"a:b", "a,upperdir=/", "a\\b", "", "a\nb"}) {
    OverlayOptions o = StepOptions();
    o.lowers = {bad, "ok"};
    auto data = OverlayMountData(o);
    ASSERT_FALSE(data.ok()) << bad;
    EXPECT_EQ(data.error().code, "snapshot.mount.options");
  }
  OverlayOptions one = StepOptions();
  one.upper.clear();
  one.lowers = {"only"};
  EXPECT_EQ(OverlayMountData(one).error().message,
            "a read-only overlay needs at least two lower dirs");
  OverlayOptions none = StepOptions();
  none.lowers.clear();
  EXPECT_EQ(OverlayMountData(none).error().message, "overlay needs at least one lower dir");
}

TEST(MountInfoTest, ParsesFieldsAndEscapes) {
  auto mounts = ParseMountInfo(
      "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "45 27 0:39 / /tmp/a\\040b/m rw,relatime shared:5 master:1 - overlay overlay "
      "rw,lowerdir=l1:l2,redirect_dir=on,uuid=on\n");
  ASSERT_TRUE(mounts.ok()) << mounts.error().ToString();
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[1].id, 45u);
  EXPECT_EQ((*mounts)[1].mount_point, "/tmp/a b/m");
  EXPECT_EQ((*mounts)[1].fstype, "overlay");
  EXPECT_EQ((*mounts)[1].super_options, "rw,lowerdir=l1:l2,redirect_dir=on,uuid=on");
  auto bad = ParseMountInfo("garbage\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "snapshot.mountinfo");
}

class OverlayMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testutil::IsRoot()) GTEST_SKIP() << "mounting needs root";
    for (const char* d : {"l1", "l2", "u", "w", "m"}) {
      ASSERT_EQ(::mkdir((dir_ / d).c_str(), 0755), 0);
    }
    WriteFile(dir_ / "l1/top", "top");
    WriteFile(dir_ / "l2/bottom", "bottom");
    WriteFile(dir_ / "l2/top", "hidden");
  }
  OverlayOptions Options() {
    OverlayOptions o;
    o.base_dir = dir_.path();
    o.lowers = {"l1", "l2"};
    o.upper = "u";
    o.work = "w";
    return o;
  }
  TempDir dir_;
};

TEST_F(OverlayMountTest, MountsWithRelativePathsAndUnmounts) {
  const std::string target = dir_ / "m";
  {
    auto mount = OverlayMount::Mount(target, Options());
    ASSERT_TRUE(mount.ok()) << mount.error().ToString();
    EXPECT_TRUE(testutil::IsMountedAt(target));
    EXPECT_EQ(ReadFile(target + "/top"), "top");
    EXPECT_EQ(ReadFile(target + "/bottom"), "bottom");
    auto super = mount->SuperOptions();
    ASSERT_TRUE(super.ok()) << super.error().ToString();
    EXPECT_NE(super->find("lowerdir=l1:l2"), std::string::npos) << *super;
    EXPECT_TRUE(mount->VerifyOptions().ok());
    WriteFile(target + "/new", "n");
    // Moved: only the new owner unmounts.
    OverlayMount moved = std::move(mount).value();
    EXPECT_TRUE(testutil::IsMountedAt(target));
    ASSERT_TRUE(moved.Unmount().ok());
    EXPECT_FALSE(testutil::IsMountedAt(target));
    ASSERT_TRUE(moved.Unmount().ok());  // idempotent
    EXPECT_EQ(moved.SuperOptions().error().code, "snapshot.mount.gone");
  }
  EXPECT_EQ(ReadFile(dir_ / "u/new"), "n");
}

TEST_F(OverlayMountTest, DestructorUnmountsEvenWhenBusy) {
  const std::string target = dir_ / "m";
  int fd = -1;
  {
    auto mount = OverlayMount::Mount(target, Options());
    ASSERT_TRUE(mount.ok()) << mount.error().ToString();
    fd = ::open((target + "/top").c_str(), O_RDONLY | O_CLOEXEC);  // keeps it busy
    ASSERT_GE(fd, 0);
  }
  EXPECT_FALSE(testutil::IsMountedAt(target));
  ::close(fd);
}

TEST_F(OverlayMountTest, ReadOnlyMountOfLowersOnly) {
  OverlayOptions o = Options();
  o.upper.clear();
  o.work.clear();
  auto mount = OverlayMount::Mount(dir_ / "m", o);
  ASSERT_TRUE(mount.ok()) << mount.error().ToString();
  EXPECT_EQ(ReadFile(dir_ / "m/top"), "top");
  EXPECT_NE(::mkdir((dir_ / "m/x").c_str(), 0755), 0);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(OverlayMountTest, KernelRefusalIsReported) {
  OverlayOptions o = Options();
  o.lowers = {"l1", "does-not-exist"};
  auto mount = OverlayMount::Mount(dir_ / "m", o);
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.error().code, "fs.not_found");
  EXPECT_EQ(mount.error().kind, ErrorKind::kInternal);
  EXPECT_FALSE(testutil::IsMountedAt(dir_ / "m"));
}

}  // namespace
}  // namespace manifold::worker
