#include "worker/step/user_db.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include "common/fs/root_dir.h"
#include "worker/step/step_test_util.h"

namespace manifold::worker {
namespace {

using testing::TempTree;

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "\n"
    "app:x:1000:1001:App:/home/app:/bin/sh\n"
    "broken:x:notanumber:1:::\n"
    "svc:x:200:300::/:/sbin/nologin\n";
constexpr const char* kGroup =
    "root:x:0:\n"
    "app:x:1001:\n"
    "staff:x:50:app,svc\n"
    "wheel:x:10:root,app\n"
    "staff2:x:50:app\n";

class UserDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Write("etc/passwd", kPasswd);
    tree_.Write("etc/group", kGroup);
    root_.emplace(std::move(fs::RootDir::Open(tree_.path()).value()));
  }
  TempTree tree_;
  std::optional<fs::RootDir> root_;
};

TEST_F(UserDbTest, NumericNeedsNoFiles) {
  TempTree empty;
  auto root = fs::RootDir::Open(empty.path()).value();
  EXPECT_EQ(ResolveUser(root, "1234").value(), (UidGid{1234, 0}));
  EXPECT_EQ(ResolveUser(root, "1234:55").value(), (UidGid{1234, 55}));
  EXPECT_EQ(ResolveChown(root, "1234").value(), (UidGid{1234, 1234}));
  EXPECT_EQ(ResolveChown(root, "1234:7").value(), (UidGid{1234, 7}));
}

TEST_F(UserDbTest, NumericUserTakesPasswdGidForUser) {
  EXPECT_EQ(ResolveUser(*root_, "1000").value(), (UidGid{1000, 1001}));
  EXPECT_EQ(ResolveChown(*root_, "1000").value(), (UidGid{1000, 1000}));
}

TEST_F(UserDbTest, Names) {
  EXPECT_EQ(ResolveUser(*root_, "app").value(), (UidGid{1000, 1001}));
  EXPECT_EQ(ResolveUser(*root_, "app:staff").value(), (UidGid{1000, 50}));
  EXPECT_EQ(ResolveUser(*root_, "app:77").value(), (UidGid{1000, 77}));
  EXPECT_EQ(ResolveUser(*root_, "0:wheel").value(), (UidGid{0, 10}));
  EXPECT_EQ(ResolveChown(*root_, "svc").value(), (UidGid{200, 300}));
}

TEST_F(UserDbTest, UnknownUser) {
  auto r = ResolveUser(*root_, "nobody");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "step.user.unknown");
  EXPECT_EQ(r.error().message, "unable to find user nobody: no matching entries in passwd file");
  auto b = ResolveUser(*root_, "broken");
  EXPECT_EQ(b.error().code, "step.user.unknown");
}

TEST_F(UserDbTest, UnknownGroup) {
  auto r = ResolveUser(*root_, "app:nogroup");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "step.group.unknown");
  EXPECT_EQ(r.error().message, "unable to find group nogroup: no matching entries in group file");
}

TEST_F(UserDbTest, RangeAndEmpty) {
  EXPECT_EQ(ResolveUser(*root_, "4294967296").error().message,
            "uid 4294967296 is out of range 0-2147483647");
  EXPECT_EQ(ResolveUser(*root_, "2147483648").error().code, "step.user.range");
  EXPECT_EQ(ResolveUser(*root_, "app:3000000000").error().message,
            "gid 3000000000 is out of range 0-2147483647");
  EXPECT_EQ(ResolveUser(*root_, "").error().code, "step.user.empty");
  EXPECT_EQ(ResolveUser(*root_, ":5").error().code, "step.user.empty");
}

TEST_F(UserDbTest, MissingFilesMeanNoNames) {
  TempTree empty;
  auto root = fs::RootDir::Open(empty.path()).value();
  EXPECT_EQ(ResolveUser(root, "app").error().message,
            "unable to find user app: no matching entries in passwd file");
}

TEST_F(UserDbTest, SymlinkedPasswdStaysInsideRoot) {
  // The host has "root" in /etc/passwd; the rootfs's passwd links to a host
  // path (climbing with "..") that, resolved inside the root, does not exist.
  TempTree t;
  t.Mkdir("etc");
  ASSERT_EQ(symlink("../../../../../../etc/os-release", (t / "etc/passwd").c_str()), 0);
  auto root = fs::RootDir::Open(t.path()).value();
  EXPECT_EQ(ResolveUser(root, "root").error().code, "step.user.unknown");
  // A link to an in-root file is followed.
  TempTree u;
  u.Write("data/pw", "zed:x:5:6::/:/bin/sh\n");
  u.Mkdir("etc");
  ASSERT_EQ(symlink("/../data/pw", (u / "etc/passwd").c_str()), 0);
  auto root2 = fs::RootDir::Open(u.path()).value();
  EXPECT_EQ(ResolveUser(root2, "zed").value(), (UidGid{5, 6}));
  EXPECT_EQ(ResolveUser(root2, "root").error().code, "step.user.unknown");
}

TEST_F(UserDbTest, FileTooLarge) {
  TempTree t;
  t.Write("etc/passwd", std::string(kMaxUserFileBytes + 1, '#'));
  auto root = fs::RootDir::Open(t.path()).value();
  auto r = ResolveUser(root, "app");
  EXPECT_EQ(r.error().code, "step.user.file_too_large");
  EXPECT_EQ(r.error().message, "/etc/passwd is larger than 1048576 bytes");
  EXPECT_EQ(ResolveChown(root, "12").value(), (UidGid{12, 12}));  // reads no file
}

TEST_F(UserDbTest, AdditionalGids) {
  EXPECT_EQ(AdditionalGids(*root_, "app").value(), (std::vector<std::uint32_t>{50, 10}));
  EXPECT_EQ(AdditionalGids(*root_, "1000").value(), (std::vector<std::uint32_t>{50, 10}));
  EXPECT_EQ(AdditionalGids(*root_, "svc").value(), (std::vector<std::uint32_t>{50}));
  EXPECT_EQ(AdditionalGids(*root_, "9999").value(), (std::vector<std::uint32_t>{}));
  EXPECT_EQ(AdditionalGids(*root_, "root").value(), (std::vector<std::uint32_t>{10}));
}

}  // namespace
}  // namespace manifold::worker
