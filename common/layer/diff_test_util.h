// Test helpers shared by diff_test.cc and layer_writer_test.cc: temp dirs,
// tree building with fixed metadata, reading a tar back, running a command.
// Void helpers use ASSERT_*: wrap calls in ASSERT_NO_FATAL_FAILURE.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/layer/byte_stream.h"
#include "common/layer/tar_reader.h"

namespace manifold::layer::testutil {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/manifold_diff_XXXXXX";
    char* p = ::mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(std::string_view rel) const { return path_ + "/" + std::string(rel); }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, std::string_view content, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ASSERT_EQ(::fchmod(fd, mode), 0);
  ::close(fd);
}

inline void MakeDir(const std::string& path, mode_t mode = 0755) {
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0) << path;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

inline void MakeSymlink(const std::string& target, const std::string& path) {
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0) << path;
}

inline void MakeHardlink(const std::string& from, const std::string& to) {
  ASSERT_EQ(::link(from.c_str(), to.c_str()), 0) << to;
}

inline void SetXattr(const std::string& path, const std::string& name, std::string_view value) {
  ASSERT_EQ(::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0), 0)
      << path << " " << name;
}

inline void SetMtime(const std::string& path, std::int64_t sec) {
  struct timespec times[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Every entry below `root` (and `root` itself) gets mtime `sec`.
inline void SetAllMtimes(const std::string& root, std::int64_t sec) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    ASSERT_NO_FATAL_FAILURE(SetMtime(e.path().string(), sec));
  }
  ASSERT_NO_FATAL_FAILURE(SetMtime(root, sec));
}

// The tree most tests use. Walk order (sorted names, depth first):
//   a.txt b/ b/c/ b/c/d.txt b/h2 b-x bin/ bin/su bin/tool empty/ h1 link
// b/h2 is seen before h1, so h1 becomes the hardlink.
inline void BuildSampleTree(const std::string& root) {
  ASSERT_NO_FATAL_FAILURE(WriteFile(root + "/a.txt", "alpha\n"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(root + "/a.txt", "user.foo", "bar"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(root + "/b"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(root + "/b/c", 0700));
  ASSERT_NO_FATAL_FAILURE(WriteFile(root + "/b/c/d.txt", "delta", 0600));
  ASSERT_NO_FATAL_FAILURE(WriteFile(root + "/b-x", "dash"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(root + "/bin"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(root + "/bin/su", "su", 04755));
  ASSERT_NO_FATAL_FAILURE(WriteFile(root + "/bin/tool", "#!/bin/sh\n", 0755));
  ASSERT_NO_FATAL_FAILURE(MakeDir(root + "/empty"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(root + "/h1", "linked"));
  ASSERT_NO_FATAL_FAILURE(MakeHardlink(root + "/h1", root + "/b/h2"));
  ASSERT_NO_FATAL_FAILURE(MakeSymlink("/etc/passwd", root + "/link"));
}

struct ReadEntry {
  TarEntry entry;
  std::string data;
};

// Every entry of an uncompressed tar, with its data, through TarReader.
inline std::vector<ReadEntry> ReadTar(const std::string& tar) {
  std::vector<ReadEntry> out;
  StringSource source(tar, 1000);
  auto reader = TarReader::Open(source);
  EXPECT_TRUE(reader.ok()) << reader.error().ToString();
  if (!reader.ok()) return out;
  for (;;) {
    auto next = (*reader)->Next();
    EXPECT_TRUE(next.ok()) << next.error().ToString();
    if (!next.ok() || !*next) return out;
    ReadEntry e{**next, ""};
    char buf[8192];
    for (;;) {
      auto n = (*reader)->ReadData(buf);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      e.data.append(buf, *n);
    }
    out.push_back(std::move(e));
  }
}

// Runs `cmd` through the shell; returns its stdout (stderr merged if the
// command says 2>&1) and stores the exit status.
inline std::string RunShell(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  char buf[65536];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

}  // namespace manifold::layer::testutil
