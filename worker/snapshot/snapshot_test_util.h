// Helpers for the snapshot tests: temp dirs, layers built from small trees,
// and tree descriptions to compare a mounted rootfs with an applied one.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "common/crypto/sha256.h"
#include "common/fs/root_dir.h"
#include "common/layer/apply.h"
#include "common/layer/layer_writer.h"

namespace manifold::worker::testutil {

inline bool IsRoot() { return ::geteuid() == 0; }

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "/tmp/mf-snap-") {
    std::string tmpl = prefix + "XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    EXPECT_FALSE(path_.empty()) << prefix;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// An overlay whiteout, as the kernel leaves it in an upper dir.
inline void MakeWhiteout(const std::string& path) {
  ASSERT_EQ(::mknod(path.c_str(), S_IFCHR, makedev(0, 0)), 0) << path;
}

inline void MakeOpaque(const std::string& dir) {
  ASSERT_EQ(::lsetxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0), 0) << dir;
}

inline std::string Xattr(const std::string& path, const std::string& key) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), key.c_str(), buf, sizeof buf);
  return n < 0 ? "<none>" : std::string(buf, static_cast<std::size_t>(n));
}

struct Layer {
  std::string tar;  // uncompressed
  std::string diff_id;
};

// Builds a tree with `fill` in a temp dir and writes it as a layer;
// `overlay_upper` turns char 0/0 devices and opaque xattrs into OCI markers.
inline Layer MakeLayer(const std::function<void(const std::string&)>& fill,
                       bool overlay_upper = false) {
  TempDir dir;
  fill(dir.path());
  layer::StringSink sink;
  layer::DiffOptions options;
  options.overlay_upper = overlay_upper;
  options.source_date_epoch = 1700000000;
  auto info = layer::WriteLayer(dir.path(), sink, layer::Compression::kNone, options);
  EXPECT_TRUE(info.ok()) << info.error().ToString();
  if (!info.ok()) return {};
  return Layer{sink.data(), info->diff_id};
}

// Applies layers in order into `dir` (OCI semantics, no overlay).
inline void ApplyAll(const std::string& dir, const std::vector<const Layer*>& layers) {
  auto root = fs::RootDir::Open(dir);
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  for (const Layer* l : layers) {
    layer::StringSource source(l->tar);
    auto stats = layer::Apply(*root, source);
    ASSERT_TRUE(stats.ok()) << stats.error().ToString();
    ASSERT_EQ(stats->diff_id, l->diff_id);
  }
}

using Tree = std::map<std::string, std::string>;

// Every entry below `root` (not the root itself): type, mode, owner, and
// content or link target. No times, no inode numbers.
inline Tree DescribeTree(const std::string& root) {
  Tree out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::ostringstream os;
    os << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISREG(st.st_mode)) os << " sha=" << crypto::Sha256Hex(ReadFile(p)).substr(0, 16);
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
      os << " -> " << std::string(buf, n < 0 ? 0 : static_cast<std::size_t>(n));
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      os << " dev=" << major(st.st_rdev) << "," << minor(st.st_rdev);
    }
    out[p.substr(root.size())] = os.str();
  }
  EXPECT_FALSE(ec) << ec.message();
  return out;
}

inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline bool IsMountedAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + path + " ") != std::string::npos) return true;
  }
  return false;
}

}  // namespace manifold::worker::testutil
