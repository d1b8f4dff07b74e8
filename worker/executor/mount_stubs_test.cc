#include "worker/executor/mount_stubs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace manifold::worker {
namespace {

class MountStubsTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mount_stubs_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_path_ = base_ + "/root";
    host_ = base_ + "/host";
    ASSERT_EQ(mkdir(root_path_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(host_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_path_ + "/etc").c_str(), 0755), 0);
    auto root = fs::RootDir::Open(root_path_);
    if (!root.ok()) GTEST_SKIP() << root.error().ToString();
    root_.emplace(std::move(root).value());
  }
  void TearDown() override { std::system(("rm -rf " + base_).c_str()); }

  bool Exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
  }
  void Touch(const std::string& path, const std::string& content = "") {
    std::ofstream(path) << content;
  }

  std::string base_, root_path_, host_;
  std::optional<fs::RootDir> root_;
};

TEST_F(MountStubsTest, RecordsMissingComponentsDeepestFirst) {
  auto stubs = MountStubs::Record(*root_, {"/etc/hosts", "/proc", "/x/y/z", "/x/y", "/etc"});
  ASSERT_TRUE(stubs.ok()) << stubs.error().ToString();
  std::vector<std::string> got;
  for (const auto& p : stubs->paths()) got.push_back(p.str());
  EXPECT_EQ(got, (std::vector<std::string>{"x/y/z", "etc/hosts", "x/y", "proc", "x"}));
}

TEST_F(MountStubsTest, RemovesEmptyStubsKeepsContentAndRestoresParentTime) {
  struct timespec old_times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (root_path_ + "/etc").c_str(), old_times, 0), 0);
  auto stubs = MountStubs::Record(*root_, {"/etc/hosts", "/etc/resolv.conf", "/proc", "/mnt/a"});
  ASSERT_TRUE(stubs.ok());
  // What runc does, and what a step may do on top.
  Touch(root_path_ + "/etc/hosts");
  Touch(root_path_ + "/etc/resolv.conf", "nameserver 1.1.1.1\n");  // the step wrote it
  mkdir((root_path_ + "/proc").c_str(), 0555);
  mkdir((root_path_ + "/mnt").c_str(), 0755);
  mkdir((root_path_ + "/mnt/a").c_str(), 0755);
  Touch(root_path_ + "/mnt/keep");  // the step created a file next to the stub

  ASSERT_TRUE(stubs->Remove(*root_).ok());
  EXPECT_FALSE(Exists(root_path_ + "/etc/hosts"));
  EXPECT_TRUE(Exists(root_path_ + "/etc/resolv.conf"));
  EXPECT_FALSE(Exists(root_path_ + "/proc"));
  EXPECT_FALSE(Exists(root_path_ + "/mnt/a"));
  EXPECT_TRUE(Exists(root_path_ + "/mnt/keep"));
  struct stat st;
  ASSERT_EQ(stat((root_path_ + "/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
}

TEST_F(MountStubsTest, ExistingPathsAreNeverStubs) {
  Touch(root_path_ + "/etc/hosts");
  auto stubs = MountStubs::Record(*root_, {"/etc/hosts", "/etc"});
  ASSERT_TRUE(stubs.ok());
  EXPECT_TRUE(stubs->paths().empty());
  ASSERT_TRUE(stubs->Remove(*root_).ok());
  EXPECT_TRUE(Exists(root_path_ + "/etc/hosts"));
}

// RELIABILITY D2 (CVE-2024-23652): the step replaces the stub's parent with a
// symlink to "/" or to a host path; cleanup resolves inside the root and
// deletes nothing on the host.
TEST_F(MountStubsTest, SymlinkSwappedParentNeverReachesHost) {
  Touch(host_ + "/y");  // an empty host file with the stub's name
  mkdir((host_ + "/z").c_str(), 0755);
  auto stubs = MountStubs::Record(*root_, {"/x/y", "/w/z"});
  ASSERT_TRUE(stubs.ok());
  ASSERT_EQ(symlink(host_.c_str(), (root_path_ + "/x").c_str()), 0);  // absolute host path
  ASSERT_EQ(symlink("/", (root_path_ + "/w").c_str()), 0);            // the root itself
  Touch(root_path_ + "/y");                                           // <root>/y: in the root
  ASSERT_TRUE(stubs->Remove(*root_).ok());
  EXPECT_TRUE(Exists(host_ + "/y"));
  EXPECT_TRUE(Exists(host_ + "/z"));
  EXPECT_TRUE(Exists(root_path_ + "/x"));  // a symlink is not an empty stub
  EXPECT_TRUE(Exists(root_path_ + "/w"));
}

TEST_F(MountStubsTest, ParentReplacedByFileIsIgnored) {
  auto stubs = MountStubs::Record(*root_, {"/a/b"});
  ASSERT_TRUE(stubs.ok());
  Touch(root_path_ + "/a", "data");
  EXPECT_TRUE(stubs->Remove(*root_).ok());
  EXPECT_TRUE(Exists(root_path_ + "/a"));
}

}  // namespace
}  // namespace manifold::worker
