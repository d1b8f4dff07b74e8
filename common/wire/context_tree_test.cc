#include "common/wire/context_tree.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>

#include "common/cas/testing/temp_dir.h"
#include "common/crypto/sha256.h"

namespace manifold::wire {
namespace {

using cas::testing::TempDir;

std::string DigestOf(std::string_view data) { return "sha256:" + crypto::Sha256Hex(data); }

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::int64_t MtimeNs(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

ContextFileData Entry(std::string path, std::uint32_t mode, std::int64_t mtime_ns = 0) {
  ContextFileData f;
  f.path = std::move(path);
  f.mode = mode;
  f.uid = ::geteuid();
  f.gid = ::getegid();
  f.mtime_ns = mtime_ns;
  return f;
}

class ContextTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = cas::LocalBlobStore::Open(dir_.path() + "/store");
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_ = std::move(*store);
  }

  /// Puts `data` in the store and returns its digest.
  std::string Ingest(const std::string& data) {
    const std::string digest = DigestOf(data);
    auto writer = store_->BeginIngest(digest, data.size());
    EXPECT_TRUE(writer.ok()) << writer.error().ToString();
    if (!writer.ok()) return digest;
    auto w = (*writer)->Write(data);
    EXPECT_TRUE(w.ok()) << w.error().ToString();
    auto committed = (*writer)->Commit();
    EXPECT_TRUE(committed.ok()) << committed.error().ToString();
    return digest;
  }

  ContextFileData File(std::string path, std::uint32_t perm, const std::string& data,
                       std::int64_t mtime_ns) {
    ContextFileData f = Entry(std::move(path), S_IFREG | perm, mtime_ns);
    f.size = data.size();
    f.digest = Ingest(data);
    return f;
  }

  TempDir dir_;
  std::unique_ptr<cas::LocalBlobStore> store_;
};

TEST_F(ContextTreeTest, RebuildsFilesDirectoriesAndSymlinks) {
  const std::int64_t kDirTime = 1'600'000'000'123'456'789;
  const std::int64_t kFileTime = 1'500'000'000'000'000'001;
  const std::int64_t kNestedTime = 1'400'000'000'999'999'999;
  const std::int64_t kLinkTime = 1'300'000'000'000'000'000;

  ContextFileData link = Entry("latest", S_IFLNK | 0777, kLinkTime);
  link.link_target = "src/main.c";
  link.size = link.link_target.size();
  const std::vector<ContextFileData> files = {
      Entry("src", S_IFDIR | 0750, kDirTime),
      File("src/main.c", 0640, "int main() { return 0; }\n", kNestedTime),
      File("run.sh", 0755, "#!/bin/sh\necho hi\n", kFileTime),
      File("empty", 0600, "", kFileTime),
      File("deep/er/file.txt", 0644, "deep\n", kFileTime),  // parents not listed
      link,
  };
  const std::string out = dir_.path() + "/ctx";
  auto made = MaterializeContext(out, files, *store_);
  ASSERT_TRUE(made.ok()) << made.error().ToString();

  struct stat st {};
  ASSERT_EQ(::lstat((out + "/src").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(MtimeNs(st), kDirTime);  // set after its children were written

  ASSERT_EQ(::lstat((out + "/src/main.c").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(MtimeNs(st), kNestedTime);
  EXPECT_EQ(ReadFile(out + "/src/main.c"), "int main() { return 0; }\n");

  ASSERT_EQ(::lstat((out + "/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'500'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 1);
  EXPECT_EQ(ReadFile(out + "/run.sh"), "#!/bin/sh\necho hi\n");

  ASSERT_EQ(::lstat((out + "/empty").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 0);

  ASSERT_EQ(::lstat((out + "/deep/er").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(ReadFile(out + "/deep/er/file.txt"), "deep\n");

  ASSERT_EQ(::lstat((out + "/latest").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(MtimeNs(st), kLinkTime);
  char target[PATH_MAX] = {};
  ASSERT_EQ(::readlink((out + "/latest").c_str(), target, sizeof target - 1), 10);
  EXPECT_STREQ(target, "src/main.c");
}

TEST_F(ContextTreeTest, ReplacesWhatWasThere) {
  const std::string out = dir_.path() + "/ctx";
  std::filesystem::create_directories(out + "/stale/dir");
  std::ofstream(out + "/stale/dir/old.txt") << "old";
  auto made = MaterializeContext(out, {File("new.txt", 0644, "new", 0)}, *store_);
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  EXPECT_FALSE(std::filesystem::exists(out + "/stale"));
  EXPECT_EQ(ReadFile(out + "/new.txt"), "new");
}

// A second job of the build reads other files of the context: they are added
// next to the first job's, which stay as they were; a directory listed again
// gets its time back after its new children were written.
TEST_F(ContextTreeTest, AddsToWhatAnEarlierJobMaterialized) {
  const std::int64_t kDirTime = 1'600'000'000'000'000'000;
  const std::string out = dir_.path() + "/ctx";
  auto made = MaterializeContext(out, {Entry("src", S_IFDIR | 0755, kDirTime), File("src/a.c", 0644, "a", 7)}, *store_);
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  auto added = AddToContext(out, {Entry("src", S_IFDIR | 0755, kDirTime), File("src/b.c", 0600, "b", 9),
                                  File("doc/readme", 0644, "r", 9)},
                            *store_);
  ASSERT_TRUE(added.ok()) << added.error().ToString();
  EXPECT_EQ(ReadFile(out + "/src/a.c"), "a");
  EXPECT_EQ(ReadFile(out + "/src/b.c"), "b");
  EXPECT_EQ(ReadFile(out + "/doc/readme"), "r");
  struct stat st {};
  ASSERT_EQ(::lstat((out + "/src").c_str(), &st), 0);
  EXPECT_EQ(MtimeNs(st), kDirTime);
  ASSERT_EQ(::lstat((out + "/src/b.c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A file already there is the same entry listed twice: refused, not
  // overwritten under a job that may be reading it.
  auto twice = AddToContext(out, {File("src/a.c", 0644, "changed", 7)}, *store_);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, "context.io");
  EXPECT_EQ(ReadFile(out + "/src/a.c"), "a");
}

TEST_F(ContextTreeTest, RefusesToWriteThroughASymlink) {
  // "a" -> "/tmp", then "a/<name>": the file must not land in /tmp.
  const std::string name = "mf_context_evil_" + std::to_string(::getpid());
  const std::string escaped = "/tmp/" + name;
  ASSERT_FALSE(std::filesystem::exists(escaped)) << "leftover " << escaped;

  ContextFileData link = Entry("a", S_IFLNK | 0777);
  link.link_target = "/tmp";
  const std::vector<ContextFileData> files = {link, File("a/" + name, 0644, "pwned", 0)};
  const std::string out = dir_.path() + "/ctx";
  auto made = MaterializeContext(out, files, *store_);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(made.error().code, "context.path");
  EXPECT_EQ(made.error().message,
            "context entry \"a/" + name + "\" lies under \"a\", which is not a directory");
  EXPECT_FALSE(std::filesystem::exists(escaped));
  std::error_code ec;
  std::filesystem::remove(escaped, ec);  // keep /tmp clean even if the check failed
}

TEST_F(ContextTreeTest, RefusesToWriteThroughASymlinkDeeperDown) {
  TempDir outside;
  ContextFileData link = Entry("d/escape", S_IFLNK | 0777);
  link.link_target = outside.path();
  const std::vector<ContextFileData> files = {
      Entry("d", S_IFDIR | 0755), link, File("d/escape/sub/x", 0644, "x", 0)};
  auto made = MaterializeContext(dir_.path() + "/ctx", files, *store_);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(made.error().code, "context.path");
  EXPECT_EQ(made.error().message,
            "context entry \"d/escape/sub/x\" lies under \"d/escape\", which is not a directory");
  EXPECT_TRUE(std::filesystem::is_empty(outside.path()));
}

TEST_F(ContextTreeTest, RefusesAFileInTheWayOfADirectory) {
  const std::vector<ContextFileData> files = {File("f", 0644, "file", 0),
                                              File("f/child", 0644, "child", 0)};
  auto made = MaterializeContext(dir_.path() + "/ctx", files, *store_);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(made.error().code, "context.path");
  EXPECT_EQ(made.error().message,
            "context entry \"f/child\" lies under \"f\", which is not a directory");

  const std::vector<ContextFileData> twice = {File("g", 0644, "file", 0),
                                              Entry("g", S_IFDIR | 0755)};
  made = MaterializeContext(dir_.path() + "/ctx", twice, *store_);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(made.error().code, "context.path");
  EXPECT_EQ(made.error().message, "context entry \"g\" is listed twice");
}

TEST_F(ContextTreeTest, MissingBlobIsNotFound) {
  ContextFileData f = Entry("f", S_IFREG | 0644);
  f.digest = DigestOf("never stored");
  f.size = 12;
  auto made = MaterializeContext(dir_.path() + "/ctx", {f}, *store_);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(made.error().code, "cas.not_found");
  EXPECT_EQ(made.error().message, "blob " + f.digest + " not found");
}

}  // namespace
}  // namespace manifold::wire
