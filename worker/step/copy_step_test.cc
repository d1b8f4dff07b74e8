#include "worker/step/copy_step.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>

#include "common/dockerfile/dockerignore.h"
#include "common/dockerfile/instruction.h"
#include "common/fs/root_dir.h"
#include "worker/step/step_test_util.h"

namespace manifold::worker {
namespace {

using dockerfile::Cmd;
using dockerfile::Instruction;
using testing::TempTree;

Instruction Copy(std::vector<std::string> sources, std::string dest) {
  Instruction in;
  in.cmd = Cmd::kCopy;
  in.args = std::move(sources);
  in.dest = std::move(dest);
  return in;
}

class CopyStepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.Write("a.txt", "A");
    ctx_.Write("b.txt", "BB");
    ctx_.Write("c.md", "C");
    ctx_.Write("dir/x", "X", 0600);
    ctx_.Write("dir/sub/y", "Y", 0755);
    ctx_.Write("dir/skip.log", "L");
    dest_.Write("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
    dest_.Write("etc/group", "root:x:0:\nstaff:x:50:\n");
    dest_.Mkdir("existing");
  }

  Expected<CopyStats> Run(const Instruction& in, std::string workdir = "/",
                          const dockerfile::IgnoreMatcher* ignore = nullptr,
                          bool keep_owners = false) {
    auto src = fs::RootDir::Open(ctx_.path()).value();
    auto dst = fs::RootDir::Open(dest_.path()).value();
    CopySource s{&src, ignore, keep_owners};
    return worker::Copy(s, dst, workdir, in);
  }

  TempTree ctx_;
  TempTree dest_;
};

TEST_F(CopyStepTest, FileToFile) {
  ASSERT_TRUE(Run(Copy({"a.txt"}, "/out/renamed")).ok());
  EXPECT_EQ(dest_.Read("out/renamed"), "A");
  EXPECT_EQ(dest_.Lstat("out").st_mode & 07777, 0755u);
}

TEST_F(CopyStepTest, FileToDirSlash) {
  auto r = Run(Copy({"a.txt"}, "/out/"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(dest_.Read("out/a.txt"), "A");
  EXPECT_EQ(r->files, 1u);
  EXPECT_EQ(r->bytes, 1u);
}

TEST_F(CopyStepTest, FileToExistingDirWithoutSlash) {
  ASSERT_TRUE(Run(Copy({"a.txt"}, "/existing")).ok());
  EXPECT_EQ(dest_.Read("existing/a.txt"), "A");
}

TEST_F(CopyStepTest, RelativeDestJoinsWorkdir) {
  ASSERT_TRUE(Run(Copy({"a.txt"}, "sub/"), "/work").ok());
  EXPECT_EQ(dest_.Read("work/sub/a.txt"), "A");
  ASSERT_TRUE(Run(Copy({"b.txt"}, "."), "/work").ok());
  EXPECT_EQ(dest_.Read("work/b.txt"), "BB");
}

TEST_F(CopyStepTest, DirectoryCopiesContents) {
  auto r = Run(Copy({"dir"}, "/app"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(dest_.Exists("app/dir"));
  EXPECT_EQ(dest_.Read("app/x"), "X");
  EXPECT_EQ(dest_.Read("app/sub/y"), "Y");
  EXPECT_EQ(dest_.Lstat("app/x").st_mode & 07777, 0600u);
  EXPECT_EQ(dest_.Lstat("app/sub/y").st_mode & 07777, 0755u);
}

TEST_F(CopyStepTest, Wildcard) {
  auto r = Run(Copy({"*.txt"}, "/w"));  // several matches: dest is a directory
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(dest_.Read("w/a.txt"), "A");
  EXPECT_EQ(dest_.Read("w/b.txt"), "BB");
  EXPECT_FALSE(dest_.Exists("w/c.md"));
  ASSERT_TRUE(Run(Copy({"[ab].t?t", "d*/s?b"}, "/w2/")).ok());
  EXPECT_EQ(dest_.Read("w2/a.txt"), "A");
  EXPECT_EQ(dest_.Read("w2/y"), "Y");
}

TEST_F(CopyStepTest, WildcardNoMatch) {
  auto r = Run(Copy({"*.nope"}, "/w/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "copy.source.not_found");
  EXPECT_EQ(r.error().message, "\"*.nope\": no source files were specified");
  auto bad = Run(Copy({"[a"}, "/w/"));
  EXPECT_EQ(bad.error().message, "bad pattern \"[a\": syntax error in pattern");
}

TEST_F(CopyStepTest, MissingSource) {
  auto r = Run(Copy({"missing.txt"}, "/w/"));
  EXPECT_EQ(r.error().code, "copy.source.not_found");
  EXPECT_EQ(r.error().message, "\"/missing.txt\": not found");
  auto none = Run(Copy({}, "/w/"));
  EXPECT_EQ(none.error().message, "no source files were specified");
}

TEST_F(CopyStepTest, MultipleSourcesNeedDirDest) {
  auto r = Run(Copy({"a.txt", "b.txt"}, "/multi"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "copy.dest.not_dir");
  EXPECT_EQ(r.error().message,
            "When using COPY with more than one source file, the destination must be a "
            "directory and end with a /");
  EXPECT_FALSE(dest_.Exists("multi"));
  ASSERT_TRUE(Run(Copy({"a.txt", "b.txt"}, "/multi/")).ok());
  EXPECT_EQ(dest_.Read("multi/b.txt"), "BB");
}

TEST_F(CopyStepTest, Parents) {
  auto in = Copy({"dir/sub/y", "a.txt", "dir/s*"}, "/p/");
  in.parents = true;
  auto r = Run(in);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(dest_.Read("p/dir/sub/y"), "Y");
  EXPECT_EQ(dest_.Read("p/a.txt"), "A");
  EXPECT_EQ(dest_.Read("p/dir/skip.log"), "L");
  EXPECT_FALSE(dest_.Exists("p/y"));
}

TEST_F(CopyStepTest, Exclude) {
  auto in = Copy({"dir"}, "/e/");
  in.excludes = {"*.log", "sub"};
  ASSERT_TRUE(Run(in).ok());
  EXPECT_EQ(dest_.Read("e/x"), "X");
  EXPECT_FALSE(dest_.Exists("e/skip.log"));
  EXPECT_FALSE(dest_.Exists("e/sub"));
  auto top = Copy({"*"}, "/t/");
  top.excludes = {"*.txt"};
  ASSERT_TRUE(Run(top).ok());
  EXPECT_FALSE(dest_.Exists("t/a.txt"));
  EXPECT_EQ(dest_.Read("t/c.md"), "C");
}

TEST_F(CopyStepTest, DockerignoreHidesPaths) {
  auto m = dockerfile::IgnoreMatcher::Parse("*.md\ndir/sub\n", ".dockerignore").value();
  ASSERT_TRUE(Run(Copy({"."}, "/ctx/"), "/", &m).ok());
  EXPECT_TRUE(dest_.Exists("ctx/a.txt"));
  EXPECT_FALSE(dest_.Exists("ctx/c.md"));
  EXPECT_TRUE(dest_.Exists("ctx/dir/x"));
  EXPECT_FALSE(dest_.Exists("ctx/dir/sub"));
  EXPECT_EQ(Run(Copy({"c.md"}, "/q/"), "/", &m).error().code, "copy.source.not_found");
}

TEST_F(CopyStepTest, OwnersDefaultToRootForContext) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_EQ(chown((ctx_ / "a.txt").c_str(), 123, 456), 0);
  ASSERT_TRUE(Run(Copy({"a.txt"}, "/o/")).ok());
  EXPECT_EQ(dest_.Lstat("o/a.txt").st_uid, 0u);
  EXPECT_EQ(dest_.Lstat("o/a.txt").st_gid, 0u);
  ASSERT_TRUE(Run(Copy({"a.txt"}, "/k/"), "/", nullptr, /*keep_owners=*/true).ok());
  EXPECT_EQ(dest_.Lstat("k/a.txt").st_uid, 123u);
  EXPECT_EQ(dest_.Lstat("k/a.txt").st_gid, 456u);
}

TEST_F(CopyStepTest, ChownByNameAndId) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto in = Copy({"dir"}, "/new/deep/");
  in.chown = "app:staff";
  ASSERT_TRUE(Run(in).ok());
  for (const char* p : {"new", "new/deep", "new/deep/x", "new/deep/sub", "new/deep/sub/y"}) {
    EXPECT_EQ(dest_.Lstat(p).st_uid, 1000u) << p;
    EXPECT_EQ(dest_.Lstat(p).st_gid, 50u) << p;
  }
  EXPECT_EQ(dest_.Lstat("etc").st_uid, 0u) << "existing parents keep their owner";
  auto byname = Copy({"a.txt"}, "/n/");
  byname.chown = "app";
  ASSERT_TRUE(Run(byname).ok());
  EXPECT_EQ(dest_.Lstat("n/a.txt").st_gid, 1001u);
  auto byid = Copy({"a.txt"}, "/i/");
  byid.chown = "42";
  ASSERT_TRUE(Run(byid).ok());
  EXPECT_EQ(dest_.Lstat("i/a.txt").st_uid, 42u);
  EXPECT_EQ(dest_.Lstat("i/a.txt").st_gid, 42u);
  auto unknown = Copy({"a.txt"}, "/u/");
  unknown.chown = "ghost";
  EXPECT_EQ(Run(unknown).error().message,
            "unable to find user ghost: no matching entries in passwd file");
}

TEST_F(CopyStepTest, Chmod) {
  auto in = Copy({"dir"}, "/m/");
  in.chmod = "640";
  ASSERT_TRUE(Run(in).ok());
  EXPECT_EQ(dest_.Lstat("m/x").st_mode & 07777, 0640u);
  EXPECT_EQ(dest_.Lstat("m/sub").st_mode & 07777, 0640u);
  auto sym = Copy({"a.txt"}, "/s/");
  sym.chmod = "u+x,go-r";
  ASSERT_TRUE(Run(sym).ok());
  EXPECT_EQ(dest_.Lstat("s/a.txt").st_mode & 07777, 0700u);
  auto bad = Copy({"a.txt"}, "/s/");
  bad.chmod = "9z";
  EXPECT_EQ(Run(bad).error().message, "invalid chmod \"9z\"");
}

TEST_F(CopyStepTest, ApplyChmodForms) {
  EXPECT_EQ(ApplyChmod("755", 0, false).value(), 0755u);
  EXPECT_EQ(ApplyChmod("a+X", 0644, true).value(), 0755u);
  EXPECT_EQ(ApplyChmod("a+X", 0644, false).value(), 0644u);
  EXPECT_EQ(ApplyChmod("u=rw,g=r,o=", 0777, false).value(), 0640u);
  EXPECT_FALSE(ApplyChmod("u+q", 0, false).ok());
  EXPECT_FALSE(ApplyChmod("77777", 0, false).ok());
}

TEST_F(CopyStepTest, MtimePreserved) {
  struct timespec times[2] = {{1000000, 0}, {1234567, 890}};
  ASSERT_EQ(utimensat(AT_FDCWD, (ctx_ / "dir/x").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (ctx_ / "dir/sub").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_TRUE(Run(Copy({"dir"}, "/t/")).ok());
  EXPECT_EQ(dest_.Lstat("t/x").st_mtim.tv_sec, 1234567);
  EXPECT_EQ(dest_.Lstat("t/x").st_mtim.tv_nsec, 890);
  EXPECT_EQ(dest_.Lstat("t/sub").st_mtim.tv_sec, 1234567);
}

TEST_F(CopyStepTest, SymlinksAndHardlinksPreserved) {
  ASSERT_EQ(symlink("../a.txt", (ctx_ / "dir/link").c_str()), 0);
  ASSERT_EQ(link((ctx_ / "dir/x").c_str(), (ctx_ / "dir/x2").c_str()), 0);
  auto r = Run(Copy({"dir"}, "/l/"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  char buf[64] = {};
  ASSERT_EQ(readlink((dest_ / "l/link").c_str(), buf, sizeof(buf)), 8);
  EXPECT_EQ(std::string(buf), "../a.txt");
  EXPECT_EQ(dest_.Lstat("l/x").st_ino, dest_.Lstat("l/x2").st_ino);
  EXPECT_EQ(r->symlinks, 1u);
  EXPECT_EQ(r->hardlinks, 1u);
}

TEST_F(CopyStepTest, SourceSymlinkIsFollowedInsideRoot) {
  ASSERT_EQ(symlink("a.txt", (ctx_ / "alias").c_str()), 0);
  ASSERT_TRUE(Run(Copy({"alias"}, "/f/")).ok());
  EXPECT_EQ(dest_.Lstat("f/alias").st_mode & S_IFMT, static_cast<unsigned>(S_IFREG));
  EXPECT_EQ(dest_.Read("f/alias"), "A");
}

TEST_F(CopyStepTest, ContextSymlinkOutsideResolvedInsideRoot) {
  // Absolute and climbing links to the host's /etc/passwd: resolved inside
  // the context they name <ctx>/etc/passwd, a decoy.
  ctx_.Write("etc/passwd", "decoy\n");
  ASSERT_EQ(symlink("/etc/passwd", (ctx_ / "abs").c_str()), 0);
  ASSERT_EQ(symlink("../../../../../../../../etc/passwd", (ctx_ / "rel").c_str()), 0);
  ASSERT_EQ(symlink("/etc", (ctx_ / "etcdir").c_str()), 0);
  ASSERT_TRUE(Run(Copy({"abs", "rel", "etcdir/passwd"}, "/h/")).ok());
  std::string host = TempTree::ReadHost("/etc/passwd");
  ASSERT_FALSE(host.empty());
  EXPECT_EQ(dest_.Read("h/abs"), "decoy\n");
  EXPECT_EQ(dest_.Read("h/rel"), "decoy\n");
  EXPECT_EQ(dest_.Read("h/passwd"), "decoy\n");
  EXPECT_NE(dest_.Read("h/abs"), host);
  // Without the decoy the link dangles inside the root.
  TempTree bare;
  ASSERT_EQ(symlink("/etc/passwd", (bare / "abs").c_str()), 0);
  auto src = fs::RootDir::Open(bare.path()).value();
  auto dst = fs::RootDir::Open(dest_.path()).value();
  auto r = worker::Copy(CopySource{&src}, dst, "/", Copy({"abs"}, "/z/"));
  EXPECT_EQ(r.error().code, "copy.source.not_found");
  EXPECT_FALSE(dest_.Exists("z"));
}

TEST_F(CopyStepTest, LexicalEscapeRefused) {
  for (const char* s : {"../../etc/passwd", "/../etc/passwd", "dir/../../x"}) {
    auto r = Run(Copy({s}, "/x/"));
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(r.error().code, "copy.source.outside_context");
    EXPECT_EQ(r.error().message, std::string("source \"") + s + "\" is outside the build context");
  }
  EXPECT_FALSE(dest_.Exists("x"));
  ASSERT_TRUE(Run(Copy({"dir/../a.txt"}, "/ok/")).ok());
  EXPECT_EQ(dest_.Read("ok/a.txt"), "A");
}

TEST_F(CopyStepTest, DestinationLinkStaysInsideDestRoot) {
  dest_.Mkdir("inroot");
  ASSERT_EQ(symlink("/../../../inroot", (dest_ / "out").c_str()), 0);
  ASSERT_TRUE(Run(Copy({"a.txt"}, "/out/")).ok());
  EXPECT_EQ(dest_.Read("inroot/a.txt"), "A");
  EXPECT_FALSE(TempTree::ReadHost("/inroot/a.txt") == "A");
  ASSERT_EQ(symlink("/nowhere", (dest_ / "dangling").c_str()), 0);
  auto r = Run(Copy({"a.txt"}, "/dangling/"));
  EXPECT_EQ(r.error().code, "fs.exists");
  EXPECT_TRUE(S_ISLNK(dest_.Lstat("dangling").st_mode));
}

TEST_F(CopyStepTest, SpecialFiles) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_EQ(mkfifo((ctx_ / "dir/fifo").c_str(), 0640), 0);
  ASSERT_EQ(mknod((ctx_ / "dir/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  auto r = Run(Copy({"dir"}, "/d/"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_TRUE(S_ISFIFO(dest_.Lstat("d/fifo").st_mode));
  EXPECT_TRUE(S_ISCHR(dest_.Lstat("d/null").st_mode));
  EXPECT_EQ(dest_.Lstat("d/null").st_rdev, makedev(1, 3));
  EXPECT_EQ(r->devices, 2u);
}

TEST_F(CopyStepTest, Heredoc) {
  Instruction in = Copy({}, "/hd/");
  in.heredoc_sources = {{"script.sh", "echo hi\n", true}};
  ASSERT_TRUE(Run(in).ok());
  EXPECT_EQ(dest_.Read("hd/script.sh"), "echo hi\n");
  EXPECT_EQ(dest_.Lstat("hd/script.sh").st_mode & 07777, 0644u);
  Instruction exact = Copy({}, "/bin/run");
  exact.heredoc_sources = {{"EOF", "data", true}};
  exact.chmod = "755";
  ASSERT_TRUE(Run(exact).ok());
  EXPECT_EQ(dest_.Read("bin/run"), "data");
  EXPECT_EQ(dest_.Lstat("bin/run").st_mode & 07777, 0755u);
}

// ADD

class AddTest : public CopyStepTest {
 protected:
  void MakeArchive(const std::string& name, const std::string& flag) {
    TempTree t;
    t.Write("top/file.txt", "inside");
    t.Write("root.txt", "R");
    std::string cmd = "tar -C " + t.path() + " -c " + flag + " -f " + (ctx_ / name) +
                      " top root.txt";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  Instruction Add(std::vector<std::string> sources, std::string dest) {
    Instruction in = Copy(std::move(sources), std::move(dest));
    in.cmd = Cmd::kAdd;
    return in;
  }
};

TEST_F(AddTest, ExtractsEveryCompression) {
  struct Case {
    const char* name;
    const char* flag;
  } cases[] = {{"a.tar", ""},          {"a.tar.gz", "-z"},     {"a.tar.xz", "-J"},
               {"a.tar.bz2", "-j"},    {"a.tar.zst", "--zstd"}, {"misnamed.bin", "-J"}};
  for (const auto& c : cases) {
    MakeArchive(c.name, c.flag);
    std::string dest = std::string("/x/") + c.name;
    auto r = Run(Add({c.name}, dest));
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.error().ToString();
    EXPECT_EQ(r->archives, 1u) << c.name;
    EXPECT_EQ(dest_.Read(std::string("x/") + c.name + "/top/file.txt"), "inside") << c.name;
    EXPECT_EQ(dest_.Read(std::string("x/") + c.name + "/root.txt"), "R") << c.name;
  }
}

TEST_F(AddTest, PlainFileCopied) {
  ctx_.Write("notar.gz", std::string("\x1f\x8b\x08garbage", 10));
  auto r = Run(Add({"a.txt", "notar.gz"}, "/p/"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->archives, 0u);
  EXPECT_EQ(dest_.Read("p/a.txt"), "A");
  EXPECT_EQ(dest_.Read("p/notar.gz"), std::string("\x1f\x8b\x08garbage", 10));
}

TEST_F(AddTest, ArchiveInsideDirectoryNotExtracted) {
  MakeArchive("dir/in.tar.gz", "-z");
  ASSERT_TRUE(Run(Add({"dir"}, "/d/")).ok());
  EXPECT_TRUE(S_ISREG(dest_.Lstat("d/in.tar.gz").st_mode));
}

TEST_F(AddTest, UrlIsNotOurs) {
  auto r = Run(Add({"https://example.com/x.tar"}, "/u/"));
  EXPECT_EQ(r.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(r.error().code, "step.add.url");
}

}  // namespace
}  // namespace manifold::worker
