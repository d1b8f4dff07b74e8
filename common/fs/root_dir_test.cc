#include "common/fs/root_dir.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace manifold::fs {
namespace {

// Tests may join host paths as strings; the code under test never does.
std::string ReadHost(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteHost(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

struct stat LstatHost(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

Path P(const std::string& raw) { return *Path::Parse(raw); }

class RootDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mf-rootdir-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_path_ = base_ + "/root";
    outside_ = base_ + "/outside";
    ASSERT_EQ(mkdir(root_path_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    WriteHost(outside_ + "/secret", "secret\n");
    ASSERT_EQ(chmod((outside_ + "/secret").c_str(), 0600), 0);
    auto root = RootDir::Open(root_path_);
    ASSERT_TRUE(root.ok()) << root.error().ToString();
    root_.emplace(std::move(*root));
  }

  void TearDown() override {
    // The sibling directory must never change.
    EXPECT_EQ(ReadHost(outside_ + "/secret"), "secret\n");
    EXPECT_EQ(LstatHost(outside_ + "/secret").st_mode & 07777, 0600u);
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(outside_)) ++n;
    EXPECT_EQ(n, 1u) << "something was created next to the root";
    root_.reset();
    std::filesystem::remove_all(base_);
  }

  std::string In(const std::string& rel) const { return root_path_ + "/" + rel; }

  std::string base_, root_path_, outside_;
  std::optional<RootDir> root_;
};

TEST_F(RootDirTest, Openat2IsAvailable) { EXPECT_TRUE(CheckOpenat2().ok()); }

TEST_F(RootDirTest, OpenRejectsMissingAndNonDirectories) {
  auto missing = RootDir::Open(base_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "fs.not_found");
  auto file = RootDir::Open(outside_ + "/secret");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().code, "fs.not_dir");
}

TEST_F(RootDirTest, MkdirAllFollowsAbsoluteSymlinkInsideRoot) {
  ASSERT_EQ(mkdir(In("etc").c_str(), 0755), 0);
  ASSERT_EQ(symlink("/etc", In("localetc").c_str()), 0);
  auto d = root_->MkdirAll(P("localetc/mf-rootdir-test/x"), 0750);
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_TRUE(S_ISDIR(LstatHost(In("etc/mf-rootdir-test/x")).st_mode));
  EXPECT_FALSE(Exists("/etc/mf-rootdir-test"));
  mode_t mask = umask(0);
  umask(mask);
  EXPECT_EQ(LstatHost(In("etc/mf-rootdir-test")).st_mode & 07777, 0750u & ~mask);
}

TEST_F(RootDirTest, DotDotInSymlinkIsClampedAtRoot) {
  ASSERT_EQ(symlink("../../../outside", In("up").c_str()), 0);
  ASSERT_EQ(mkdir(In("outside").c_str(), 0755), 0);
  auto d = root_->MkdirAll(P("up/x"), 0755);
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_TRUE(Exists(In("outside/x")));
  EXPECT_FALSE(Exists(outside_ + "/x"));
}

TEST_F(RootDirTest, MkdirAllRefusesDanglingSymlink) {
  ASSERT_EQ(symlink(outside_.c_str(), In("s").c_str()), 0);  // host path, dangling in root
  auto d = root_->MkdirAll(P("s/x"), 0755);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, "fs.not_found");
  EXPECT_EQ(d.error().message, "mkdir (dangling symlink?) \"s\": No such file or directory");
}

TEST_F(RootDirTest, MagicLinksAreRefused) {
  // Resolved inside a root that is the host "/": /proc/self/root is a magic link.
  auto host = RootDir::Open("/");
  ASSERT_TRUE(host.ok());
  auto d = host->OpenDir(P("proc/self/root"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, "fs.loop");
  // Inside our root, "/proc/self/root" is just a missing path.
  ASSERT_EQ(symlink("/proc/self/root", In("p").c_str()), 0);
  auto in_root = root_->TryOpenDir(P("p"));
  ASSERT_TRUE(in_root.ok());
  EXPECT_FALSE(in_root->has_value());
}

TEST_F(RootDirTest, OpenFileNeverFollowsFinalSymlink) {
  ASSERT_EQ(symlink((outside_ + "/secret").c_str(), In("link").c_str()), 0);
  auto read = root_->OpenFile(P("link"), O_RDONLY);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, "fs.loop");
  auto create = root_->OpenFile(P("link"), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_FALSE(create.ok());
  EXPECT_EQ(create.error().code, "fs.exists");
  auto fresh = root_->OpenFile(P("new"), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_TRUE(fresh.ok()) << fresh.error().ToString();
  ASSERT_EQ(write(fresh->get(), "hi", 2), 2);
  EXPECT_EQ(ReadHost(In("new")), "hi");
}

TEST_F(RootDirTest, SymlinkStoresTargetVerbatim) {
  ASSERT_TRUE(root_->Symlink(P("abs"), "/etc/passwd").ok());
  ASSERT_TRUE(root_->Symlink(P("rel"), "../../x").ok());
  char buf[64] = {};
  ASSERT_GT(readlink(In("abs").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "/etc/passwd");
  auto again = root_->Symlink(P("abs"), "y");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "fs.exists");
}

TEST_F(RootDirTest, LinkResolvesTargetInsideRoot) {
  ASSERT_EQ(mkdir(In("etc").c_str(), 0755), 0);
  WriteHost(In("etc/passwd"), "in-root\n");
  ASSERT_EQ(symlink("../../etc", In("d1").c_str()), 0);
  ASSERT_TRUE(root_->Link(P("mypasswd"), P("d1/passwd")).ok());
  EXPECT_EQ(LstatHost(In("mypasswd")).st_ino, LstatHost(In("etc/passwd")).st_ino);
  EXPECT_NE(LstatHost(In("mypasswd")).st_ino, LstatHost("/etc/passwd").st_ino);
  // A link to a symlink links the symlink itself.
  ASSERT_EQ(symlink((outside_ + "/secret").c_str(), In("s").c_str()), 0);
  ASSERT_TRUE(root_->Link(P("s2"), P("s")).ok());
  EXPECT_TRUE(S_ISLNK(LstatHost(In("s2")).st_mode));
  EXPECT_EQ(LstatHost(outside_ + "/secret").st_nlink, 1u);
}

TEST_F(RootDirTest, UnlinkAndRemoveAllNeverFollowSymlinks) {
  ASSERT_EQ(mkdir(In("tree").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(In("tree/sub").c_str(), 0755), 0);
  WriteHost(In("tree/sub/f"), "x");
  ASSERT_EQ(symlink(outside_.c_str(), In("tree/abs").c_str()), 0);
  ASSERT_EQ(symlink("../../outside", In("tree/sub/rel").c_str()), 0);
  ASSERT_EQ(symlink(outside_.c_str(), In("top").c_str()), 0);
  ASSERT_TRUE(root_->Unlink(P("top")).ok());
  EXPECT_FALSE(Exists(In("top")));
  ASSERT_TRUE(root_->RemoveAll(P("tree")).ok());
  EXPECT_FALSE(Exists(In("tree")));
  EXPECT_TRUE(root_->RemoveAll(P("tree")).ok());          // missing is fine
  EXPECT_TRUE(root_->RemoveAll(P("nope/deeper")).ok());   // so is a missing parent
  auto empty_dir = root_->Mkdir(P("e"), 0755);
  ASSERT_TRUE(empty_dir.ok());
  EXPECT_TRUE(root_->Unlink(P("e")).ok());
}

TEST_F(RootDirTest, RemoveAllEmptiesLargeDirectories) {
  ASSERT_EQ(mkdir(In("big").c_str(), 0755), 0);
  for (int i = 0; i < 3000; ++i) WriteHost(In("big/f" + std::to_string(i)), "");
  ASSERT_TRUE(root_->RemoveAll(P("big")).ok());
  EXPECT_FALSE(Exists(In("big")));
}

TEST_F(RootDirTest, MetadataCallsActOnTheLinkNotTheTarget) {
  WriteHost(In("target"), "t");
  ASSERT_EQ(chmod(In("target").c_str(), 0640), 0);
  ASSERT_EQ(symlink("target", In("link").c_str()), 0);
  struct stat before = LstatHost(In("target"));

  timespec t{1000, 0};
  ASSERT_TRUE(root_->SetTimes(P("link"), t, t).ok());
  EXPECT_EQ(LstatHost(In("link")).st_mtim.tv_sec, 1000);
  ASSERT_TRUE(root_->Chmod(P("link"), 0777).ok());  // no-op on a symlink
  if (geteuid() == 0) {
    ASSERT_TRUE(root_->Lchown(P("link"), 4242, 4343).ok());
    EXPECT_EQ(LstatHost(In("link")).st_uid, 4242u);
  }
  auto x = root_->SetXattr(P("link"), "user.test", "v");
  ASSERT_FALSE(x.ok());
  EXPECT_EQ(x.error().code, "fs.xattr.unsupported");

  struct stat after = LstatHost(In("target"));
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(getxattr(In("target").c_str(), "user.test", nullptr, 0), -1);
}

TEST_F(RootDirTest, ChmodAndXattrOnFiles) {
  WriteHost(In("f"), "x");
  ASSERT_TRUE(root_->Chmod(P("f"), 04751).ok());
  EXPECT_EQ(LstatHost(In("f")).st_mode & 07777, 04751u);
  auto x = root_->SetXattr(P("f"), "user.k", "value");
  ASSERT_TRUE(x.ok()) << x.error().ToString();
  char buf[16] = {};
  ASSERT_EQ(getxattr(In("f").c_str(), "user.k", buf, sizeof buf), 5);
  EXPECT_STREQ(buf, "value");
}

TEST_F(RootDirTest, MknodCreatesExactModeInsideRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  mode_t old = umask(022);
  auto made = root_->Mknod(P("null"), S_IFCHR | 0666, makedev(1, 3));
  umask(old);
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  struct stat st = LstatHost(In("null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  EXPECT_EQ(major(st.st_rdev), 1u);
  EXPECT_EQ(minor(st.st_rdev), 3u);
  ASSERT_TRUE(root_->Mknod(P("fifo"), S_IFIFO | 0640, 0).ok());
  EXPECT_TRUE(S_ISFIFO(LstatHost(In("fifo")).st_mode));
  auto bad = root_->Mknod(P("reg"), S_IFREG | 0644, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "fs.invalid");
}

TEST_F(RootDirTest, StatIsLstat) {
  ASSERT_EQ(symlink("/", In("l").c_str()), 0);
  auto st = root_->Stat(P("l"));
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISLNK(st->st_mode));
  auto missing = root_->TryStat(P("nope/x"));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto err = root_->Stat(P("nope"));
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().code, "fs.not_found");
  EXPECT_EQ(err.error().kind, ErrorKind::kInvalidInput);
  EXPECT_TRUE(root_->Stat(Path()).ok());
}

TEST_F(RootDirTest, RootItselfIsNotAnEntry) {
  auto e = root_->Mkdir(Path(), 0755);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, "fs.path.root");
  EXPECT_FALSE(root_->RemoveAll(Path()).ok());
}

TEST_F(RootDirTest, DirForEachChildAndOpenDir) {
  ASSERT_EQ(mkdir(In("d").c_str(), 0755), 0);
  WriteHost(In("d/a"), "");
  WriteHost(In("d/b"), "");
  ASSERT_EQ(symlink("/", In("d/l").c_str()), 0);
  auto d = root_->OpenDir(P("d"));
  ASSERT_TRUE(d.ok());
  std::set<std::string> names;
  ASSERT_TRUE(d->ForEachChild([&](std::string_view n) -> Expected<void> {
                 names.insert(std::string(n));
                 return Ok();
               }).ok());
  EXPECT_EQ(names, (std::set<std::string>{"a", "b", "l"}));
  auto through = d->OpenDir("l");  // a symlink child is never followed
  ASSERT_FALSE(through.ok());
  EXPECT_EQ(through.error().code, "fs.not_dir");
  EXPECT_THROW(d->Stat("../x").value(), InternalError);  // callers pass single components
}

}  // namespace
}  // namespace manifold::fs
