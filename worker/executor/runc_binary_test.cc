#include "worker/executor/runc_binary.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace manifold::worker {
namespace {

TEST(RuncBinaryTest, ParsesUpstreamVersion) {
  auto v = ParseRuncVersion(
      "runc version 1.1.12\ncommit: v1.1.12-0-g51d5e946\nspec: 1.0.2-dev\ngo: go1.20.13\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->major, 1);
  EXPECT_EQ(v->minor, 1);
  EXPECT_EQ(v->patch, 12);
  EXPECT_EQ(v->version, "1.1.12");
  EXPECT_EQ(v->commit, "v1.1.12-0-g51d5e946");
  EXPECT_TRUE(CheckRuncVersion(*v).ok());
}

TEST(RuncBinaryTest, AcceptsNewerVersions) {
  for (const char* text : {"runc version 1.2.0\n", "runc version 1.1.15\n",
                           "runc version 2.0.0-rc.1\n", "runc version 1.2\n"}) {
    auto v = ParseRuncVersion(text);
    ASSERT_TRUE(v.ok()) << text;
    EXPECT_TRUE(CheckRuncVersion(*v).ok()) << text;
  }
}

TEST(RuncBinaryTest, RefusesVersionsWithoutTheFdLeakFix) {
  auto v = ParseRuncVersion("runc version 1.1.11\ncommit: v1.1.11-0-g4bccb38c\n");
  ASSERT_TRUE(v.ok());
  auto c = CheckRuncVersion(*v);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(c.error().code, "executor.runc.version");
  EXPECT_EQ(c.error().message,
            "runc 1.1.11 (v1.1.11-0-g4bccb38c) lacks the fix for CVE-2024-21626; install runc "
            "1.1.12 or later");
  // Debian 12 before its security update.
  v = ParseRuncVersion("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(CheckRuncVersion(*v).error().code, "executor.runc.version");
  v = ParseRuncVersion("runc version 1.0.0-rc93\n");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(CheckRuncVersion(*v).ok());
}

TEST(RuncBinaryTest, AcceptsDebianBackport) {
  auto v = ParseRuncVersion(
      "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n"
      "libseccomp: 2.5.4\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->patch, 5);
  EXPECT_TRUE(CheckRuncVersion(*v).ok());
  v = ParseRuncVersion("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u3\n");
  EXPECT_TRUE(CheckRuncVersion(*v).ok());
  v = ParseRuncVersion("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u0\n");
  EXPECT_FALSE(CheckRuncVersion(*v).ok());
}

TEST(RuncBinaryTest, UnreadableVersion) {
  auto v = ParseRuncVersion("crun version 1.8\n");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(v.error().code, "executor.runc.version");
  EXPECT_EQ(v.error().message, "cannot read runc's version from `runc --version`");
}

class RuncBinaryFsTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/runc_binary_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string MakeExe(const std::string& name, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n";
    chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(RuncBinaryFsTest, FindsInPathSkippingRelativeEntries) {
  std::string exe = MakeExe("runc", 0755);
  auto found = FindRunc("", "relative/bin::" + dir_ + ":/nonexistent");
  ASSERT_TRUE(found.ok()) << found.error().ToString();
  EXPECT_EQ(*found, exe);
  auto missing = FindRunc("", "/nonexistent:/also/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(missing.error().code, "executor.runc.missing");
  EXPECT_EQ(missing.error().message, "runc not found in PATH; install it (apt-get install runc)");
}

TEST_F(RuncBinaryFsTest, ConfiguredPath) {
  std::string exe = MakeExe("my-runc", 0755);
  symlink(exe.c_str(), (dir_ + "/link").c_str());
  auto found = FindRunc(dir_ + "/link", "");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, exe);  // symlink resolved
  EXPECT_EQ(FindRunc("bin/runc", "").error().code, "executor.runc.path");
  EXPECT_EQ(FindRunc(dir_ + "/nope", "").error().message, "runc not found at " + dir_ + "/nope");
}

TEST_F(RuncBinaryFsTest, PermissionChecks) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create root-owned files";
  std::string good = MakeExe("runc", 0755);
  EXPECT_TRUE(CheckRuncPermissions(good).ok());

  std::string writable = MakeExe("runc-w", 0775);
  auto r = CheckRuncPermissions(writable);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "executor.runc.permissions");
  EXPECT_EQ(r.error().message, "runc binary " + writable + " is writable by group or others");

  std::string foreign = MakeExe("runc-u", 0755);
  ASSERT_EQ(chown(foreign.c_str(), 1000, 1000), 0);
  EXPECT_EQ(CheckRuncPermissions(foreign).error().message,
            "runc binary " + foreign + " is owned by uid 1000, not root");

  chmod(dir_.c_str(), 0777);
  EXPECT_EQ(CheckRuncPermissions(good).error().message,
            "runc directory " + dir_ + " is writable by group or others");
}

}  // namespace
}  // namespace manifold::worker
