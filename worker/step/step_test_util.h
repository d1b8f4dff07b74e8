// Temp trees for worker/step tests. Tests join host paths as strings; the
// code under test never does.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace manifold::worker::testing {

class TempTree {
 public:
  TempTree() {
    char tmpl[] = "/tmp/mf_step_test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempTree() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  void Write(const std::string& rel, const std::string& data, mode_t mode = 0644) const {
    std::filesystem::create_directories(std::filesystem::path(*this / rel).parent_path());
    std::ofstream(*this / rel, std::ios::binary) << data;
    chmod((*this / rel).c_str(), mode);
  }
  void Mkdir(const std::string& rel, mode_t mode = 0755) const {
    std::filesystem::create_directories(*this / rel);
    chmod((*this / rel).c_str(), mode);
  }
  std::string Read(const std::string& rel) const {
    std::ifstream in(*this / rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static std::string ReadHost(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& rel) const {
    struct stat st;
    return lstat((*this / rel).c_str(), &st) == 0;
  }
  struct stat Lstat(const std::string& rel) const {
    struct stat st {};
    lstat((*this / rel).c_str(), &st);
    return st;
  }

 private:
  std::string path_;
};

}  // namespace manifold::worker::testing
