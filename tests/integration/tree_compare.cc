#include "tests/integration/tree_compare.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace manifold::testing {

namespace fs = std::filesystem;

namespace {

struct Node {
  struct stat st {};
  std::string link;
  std::string content;
  std::map<std::string, std::string> xattrs;
};

std::map<std::string, std::string> Xattrs(const std::string& p) {
  std::map<std::string, std::string> out;
  char names[65536];
  ssize_t n = llistxattr(p.c_str(), names, sizeof names);
  for (ssize_t i = 0; i > -1 && i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.rfind("trusted.", 0) == 0 || name.rfind("system.", 0) == 0) continue;
    char val[65536];
    ssize_t v = lgetxattr(p.c_str(), name.c_str(), val, sizeof val);
    if (v >= 0) out[name] = std::string(val, static_cast<size_t>(v));
  }
  return out;
}

std::map<std::string, Node> Walk(const std::string& root) {
  std::map<std::string, Node> out;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none);
       it != fs::recursive_directory_iterator(); ++it) {
    std::string full = it->path().string();
    std::string rel = fs::relative(it->path(), root).string();
    Node n;
    lstat(full.c_str(), &n.st);
    if (S_ISLNK(n.st.st_mode)) {
      n.link = fs::read_symlink(it->path()).string();
      it.disable_recursion_pending();
    } else if (S_ISREG(n.st.st_mode)) {
      std::ifstream in(full, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      n.content = ss.str();
    }
    n.xattrs = Xattrs(full);
    out[rel] = std::move(n);
  }
  return out;
}

std::string Octal(unsigned v) {
  char b[16];
  snprintf(b, sizeof b, "%04o", v);
  return b;
}

}  // namespace

std::vector<std::string> CompareTrees(const std::string& a, const std::string& b,
                                      const TreeCompareOptions& opts) {
  std::vector<std::string> diffs;
  auto ta = Walk(a), tb = Walk(b);
  std::map<ino_t, std::string> first_a, first_b;
  for (const auto& [path, na] : ta) {
    auto it = tb.find(path);
    if (it == tb.end()) {
      diffs.push_back(path + ": only in " + a);
      continue;
    }
    const Node& nb = it->second;
    if ((na.st.st_mode & S_IFMT) != (nb.st.st_mode & S_IFMT)) {
      diffs.push_back(path + ": type differs");
      continue;
    }
    if ((na.st.st_mode & 07777) != (nb.st.st_mode & 07777))
      diffs.push_back(path + ": mode " + Octal(na.st.st_mode & 07777) + " != " + Octal(nb.st.st_mode & 07777));
    if (na.st.st_uid != nb.st.st_uid || na.st.st_gid != nb.st.st_gid)
      diffs.push_back(path + ": owner " + std::to_string(na.st.st_uid) + ":" + std::to_string(na.st.st_gid) +
                      " != " + std::to_string(nb.st.st_uid) + ":" + std::to_string(nb.st.st_gid));
    if (na.link != nb.link) diffs.push_back(path + ": link " + na.link + " != " + nb.link);
    if (na.content != nb.content) diffs.push_back(path + ": content differs");
    if (S_ISCHR(na.st.st_mode) || S_ISBLK(na.st.st_mode))
      if (na.st.st_rdev != nb.st.st_rdev) diffs.push_back(path + ": device differs");
    if (opts.compare_xattrs && na.xattrs != nb.xattrs) diffs.push_back(path + ": xattrs differ");
    if (opts.compare_mtime && !S_ISLNK(na.st.st_mode) && na.st.st_mtime != nb.st.st_mtime)
      diffs.push_back(path + ": mtime differs");
    // Hardlinks: the first path seen for an inode names the group.
    if (S_ISREG(na.st.st_mode) && (na.st.st_nlink > 1 || nb.st.st_nlink > 1)) {
      auto ga = first_a.emplace(na.st.st_ino, path).first->second;
      auto gb = first_b.emplace(nb.st.st_ino, path).first->second;
      if (ga != gb) diffs.push_back(path + ": hardlinked to " + ga + " vs " + gb);
    }
  }
  for (const auto& [path, nb] : tb)
    if (!ta.count(path)) diffs.push_back(path + ": only in " + b);
  return diffs;
}

int RunCommand(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "manifold-test-XXXXXX").string();
  path_ = mkdtemp(tmpl.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

}  // namespace manifold::testing
