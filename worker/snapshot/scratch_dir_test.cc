#include "worker/snapshot/scratch_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>

#include "worker/snapshot/snapshot_test_util.h"

namespace manifold::worker {
namespace {

using testutil::Exists;
using testutil::ListDir;
using testutil::ReadFile;
using testutil::TempDir;
using testutil::WriteFile;

bool LockedBySomeone(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << dir;
  bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return locked;
}

TEST(ScratchDirTest, CreatesALockedDirectory) {
  TempDir parent;
  auto scratch = ScratchDir::Create(parent.path());
  ASSERT_TRUE(scratch.ok()) << scratch.error().ToString();
  EXPECT_TRUE(scratch->name().starts_with("tmp-"));
  EXPECT_EQ(scratch->path(), parent.path() + "/" + scratch->name());
  EXPECT_TRUE(LockedBySomeone(scratch->path()));
  auto sub = scratch->Mkdir("fs");
  ASSERT_TRUE(sub.ok()) << sub.error().ToString();
  EXPECT_EQ(*sub, scratch->path() + "/fs");
}

TEST(ScratchDirTest, DestructorRemovesEverything) {
  TempDir parent;
  {
    auto scratch = ScratchDir::Create(parent.path());
    ASSERT_TRUE(scratch.ok());
    WriteFile(scratch->path() + "/fs/a/b", "x");
    ScratchDir moved = std::move(scratch).value();  // the moved-from one owns nothing
  }
  EXPECT_TRUE(ListDir(parent.path()).empty());
}

TEST(ScratchDirTest, PublishRenamesAndKeepOnlyTrims) {
  TempDir parent;
  auto scratch = ScratchDir::Create(parent.path());
  ASSERT_TRUE(scratch.ok());
  WriteFile(scratch->path() + "/fs/file", "content");
  WriteFile(scratch->path() + "/work/junk/x", "junk");
  ASSERT_TRUE(scratch->KeepOnly("fs").ok());
  EXPECT_EQ(ListDir(scratch->path()), std::vector<std::string>{"fs"});
  auto published = scratch->Publish("final");
  ASSERT_TRUE(published.ok()) << published.error().ToString();
  EXPECT_TRUE(*published);
  EXPECT_EQ(ListDir(parent.path()), std::vector<std::string>{"final"});
  EXPECT_EQ(ReadFile(parent / "final/fs/file"), "content");
  EXPECT_FALSE(LockedBySomeone(parent / "final"));
  EXPECT_TRUE(scratch->path().empty());
}

TEST(ScratchDirTest, LosingThePublishRaceDiscardsOurs) {
  TempDir parent;
  WriteFile(parent / "final/fs/file", "first");
  auto scratch = ScratchDir::Create(parent.path());
  ASSERT_TRUE(scratch.ok());
  WriteFile(scratch->path() + "/fs/file", "second");
  auto published = scratch->Publish("final");
  ASSERT_TRUE(published.ok()) << published.error().ToString();
  EXPECT_FALSE(*published);
  EXPECT_EQ(ListDir(parent.path()), std::vector<std::string>{"final"});
  EXPECT_EQ(ReadFile(parent / "final/fs/file"), "first");
}

TEST(ScratchDirTest, SweepRemovesOnlyDeadScratch) {
  TempDir parent;
  WriteFile(parent / "tmp-dead/fs/x", "x");
  WriteFile(parent / "tmp-stray", "a file, not a directory");
  WriteFile(parent / "abc/fs/x", "a published snapshot");
  auto live = ScratchDir::Create(parent.path());
  ASSERT_TRUE(live.ok());
  auto removed = SweepScratchDirs(parent.path());
  ASSERT_TRUE(removed.ok()) << removed.error().ToString();
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(ListDir(parent.path()), (std::vector<std::string>{"abc", live->name()}));
}

}  // namespace
}  // namespace manifold::worker
